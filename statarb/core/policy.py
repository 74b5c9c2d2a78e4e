"""The strategy's tunable policy, declared once: the hyperopt space, how its values become
the signal rules and the regime multipliers, and which fee the costs are charged at.

Why here: the Freqtrade strategy (:mod:`statarb.ft.strategy`, which turns
:data:`STRATEGY_PARAMS` into its ``DecimalParameter`` attributes), research
(:mod:`statarb.research`) and the simulator's parity checks all read these, so a change of
a range, a default or a rule reaches every one of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from statarb.core.regime import Regime
from statarb.core.settings import StrategySettings
from statarb.core.signals import SignalParams

__all__ = [
    "DEFAULT_PARAMS",
    "STRATEGY_PARAMS",
    "StrategyParam",
    "regime_multipliers",
    "signal_params",
    "trading_fee",
]


@dataclass(frozen=True)
class StrategyParam:
    """One hyperoptable parameter (a Freqtrade ``DecimalParameter``)."""

    name: str
    space: str
    default: float
    low: float
    high: float
    decimals: int


#: The hyperopt space: they only enter the signal plan and the stake, never an indicator.
STRATEGY_PARAMS: tuple[StrategyParam, ...] = (
    StrategyParam("entry_z", "buy", 2.0, 1.5, 3.0, 1),
    StrategyParam("regime_high_mult", "buy", 0.5, 0.25, 1.0, 2),
    StrategyParam("regime_extreme_mult", "buy", 0.25, 0.05, 0.5, 2),
    StrategyParam("exit_z", "sell", 0.0, -0.5, 1.0, 1),
    StrategyParam("stop_z", "sell", 4.0, 3.0, 5.0, 1),
    StrategyParam("time_stop_half_lives", "sell", 3.0, 1.0, 6.0, 1),
)
DEFAULT_PARAMS: dict[str, float] = {p.name: p.default for p in STRATEGY_PARAMS}


def signal_params(settings: StrategySettings, params: Mapping[str, float], *,
                  max_open_couples: int, fee: float) -> SignalParams:
    """The signal rules for a config and parameter values (a round trip pays ``fee`` on
    both fills)."""
    return SignalParams(
        entry_z=float(params["entry_z"]), exit_z=float(params["exit_z"]),
        stop_z=float(params["stop_z"]),
        time_stop_half_lives=float(params["time_stop_half_lives"]),
        pair_stop=settings.pair_stop, max_open_couples=max_open_couples,
        round_trip_cost=2 * fee, min_edge_ratio=settings.min_edge_ratio,
    )


def regime_multipliers(params: Mapping[str, float]) -> dict[Regime, float]:
    """The stake multiplier of each volatility regime (calm regimes trade full size)."""
    return {
        Regime.LOW: 1.0, Regime.NORMAL: 1.0,
        Regime.HIGH: float(params["regime_high_mult"]),
        Regime.EXTREME: float(params["regime_extreme_mult"]),
    }


def trading_fee(config: Mapping[str, Any], market: Mapping[str, Any] | None) -> float:
    """The fee a fill pays, as Freqtrade's backtest charges it: the config's ``fee`` when
    set, otherwise the worse of the exchange's maker and taker fee for the market.

    Raises :class:`ValueError` naming the value when neither gives a fee in [0, 0.1).
    """
    value = config.get("fee")
    if value is None:
        if not market:
            raise ValueError("no fee: the config sets no 'fee' and no market data was given")
        value = max(float(market.get("maker") or 0.0), float(market.get("taker") or 0.0))
    fee = float(value)
    if not (math.isfinite(fee) and 0 <= fee < 0.1):
        raise ValueError(f"fee={value!r} must be a fraction of the notional in [0, 0.1)")
    return fee

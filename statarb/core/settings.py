"""The ``statarb`` section of a Freqtrade config, validated.

Why a section of its own: Freqtrade's schema does not know these settings, so nothing
would reject a typo. Every key here is checked, unknown keys are errors naming what is
allowed, and values are turned into the core's parameter objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from statarb.core.capital import CapitalParams
from statarb.core.params import reject_unknown
from statarb.core.regime import RegimeParams
from statarb.core.selection import SelectionParams
from statarb.core.walkforward import WalkForwardParams

__all__ = ["LiveParams", "StrategySettings", "timeframe_name"]

HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class LiveParams:
    """Order handling in dry-run and live (``statarb.live``).

    ``error_retry_secs``: how long the bot waits after a temporary exchange error before
    its next loop. Freqtrade's own wait is 30 s, long for a couple with one leg placed;
    the default (None) is one bot loop, ``internals.process_throttle_secs``.
    ``max_close_attempts``: failed attempts to close a lone leg or an untracked position
    before new entries stop and a person is called (the attempts go on, with backoff).
    """

    error_retry_secs: float | None = None
    max_close_attempts: int = 5

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LiveParams:
        reject_unknown("live key", values, {"error_retry_secs", "max_close_attempts"})
        params = cls(**values)
        if params.error_retry_secs is not None and not 1.0 <= float(
                params.error_retry_secs) <= 30.0:
            raise ValueError(
                f"live.error_retry_secs={params.error_retry_secs} must be between 1 and 30 "
                "seconds"
            )
        if int(params.max_close_attempts) != params.max_close_attempts or \
                not 1 <= params.max_close_attempts <= 100:
            raise ValueError(
                f"live.max_close_attempts={params.max_close_attempts} must be a whole number "
                "between 1 and 100"
            )
        return params


def _number(value: Any) -> Any:
    """A number as a float (YAML's 0 and 0.0 are one setting); anything else as given,
    for the parameter's own check to name."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else value


def _candles(key: str, value: Any, candle: pd.Timedelta, *, least: int = 1, why: str = "",
             unit: str = "h") -> int:
    """A wall-time window (``key``, in hours or with ``unit="days"`` in days) as a whole
    number of ``candle`` candles.

    Why: windows are set in wall time so one config means the same span at 5m and at 1h;
    a span that is not a whole number of candles, or too few candles for what reads it,
    is refused by name instead of being rounded into a different window.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"statarb.{key}={value!r} must be a positive number of "
                         f"{'days' if unit == 'days' else 'hours'}")
    span = pd.Timedelta(days=float(value)) if unit == "days" else pd.Timedelta(hours=float(value))
    count = span / candle
    tf = timeframe_name(candle)
    if abs(count - round(count)) > 1e-9:
        raise ValueError(f"statarb.{key}={value:g} is not a whole number of {tf} candles "
                         f"({count:g}); give a multiple of {candle / HOUR:g} h")
    if round(count) < least:
        raise ValueError(f"statarb.{key}={value:g} is {round(count)} {tf} candles; {why} "
                         f"needs at least {least} ({least * candle / HOUR:g} h at {tf})")
    return round(count)


def timeframe_name(candle: pd.Timedelta) -> str:
    """Freqtrade's name of a candle width (``15m``, ``1h``)."""
    minutes = int(candle / pd.Timedelta(minutes=1))
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


#: Keys that counted candles, refused with their wall-time replacement: a window in
#: candles is a different span on every timeframe.
_CANDLE_KEYS = {
    ("walk_forward", "z_window"): "z_window_hours",
    ("regime", "vol_window"): "vol_window_hours",
    ("regime", "lookback"): "lookback_hours",
    ("regime", "cooldown"): "cooldown_hours",
}


def _refuse_candle_keys(part: str, values: dict[str, Any]) -> None:
    for (where, old), new in _CANDLE_KEYS.items():
        if where == part and old in values:
            raise ValueError(
                f"statarb.{part}.{old}={values[old]!r} counts candles, so it would mean a "
                f"different span on each timeframe; set statarb.{part}.{new} (hours; on 1h "
                "candles the same number)"
            )


def _half_spread(costs: dict[str, Any]) -> dict[str, float]:
    reject_unknown("costs key", costs, {"half_spread"})
    values = costs.get("half_spread") or {}
    if not isinstance(values, dict):
        raise ValueError(f"statarb.costs.half_spread={values!r} must map coins (BTC) to a "
                         "fraction of the notional")
    out = {}
    for coin, value in values.items():
        if "/" in str(coin):
            raise ValueError(f"statarb.costs.half_spread key {coin!r} must be a coin (BTC), "
                             "not a pair")
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not 0 <= value < 0.01:
            raise ValueError(f"statarb.costs.half_spread.{coin}={value!r} must be a fraction "
                             "of the notional in [0, 0.01)")
        out[str(coin)] = float(value)
    return out


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"statarb.{name}={value!r} must be true or false")
    return value


@dataclass(frozen=True)
class StrategySettings:
    """The ``statarb`` config section, validated (unknown keys are errors).

    ``formation_cache``: keep a backtest's walk-forward formations in
    ``user_data/statarb_cache`` (:mod:`statarb.research.cache`), so a second backtest,
    hyperopt or research sweep on the same data and settings does not recompute them.
    ``capital``: how much a couple entry gets (:mod:`statarb.core.capital`).
    ``half_spread``: ``statarb.costs.half_spread``, per coin (``BTC``) the spread cost of one
    fill as a fraction of the notional, charged on top of the fee in backtests and research
    (:mod:`statarb.core.spread`; written by ``python -m statarb.tools.spread``). Coins it
    does not name pay none.
    """

    selection: SelectionParams
    walk_forward: WalkForwardParams
    pair_stop: float
    min_edge_ratio: float
    regime_pair: str
    regime: RegimeParams
    leverage: float
    protections: list[dict[str, Any]]
    live: LiveParams = LiveParams()
    formation_cache: bool = True
    capital: CapitalParams = field(default_factory=CapitalParams)
    half_spread: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict[str, Any], candle: pd.Timedelta) -> StrategySettings:
        section = dict(config.get("statarb") or {})
        allowed = {
            "selection", "walk_forward", "signals", "regime", "leverage", "protections", "live",
            "formation_cache", "capital", "costs",
        }
        unknown = sorted(set(section) - allowed)
        if unknown:
            raise ValueError(
                f"unknown key(s) {unknown} in the 'statarb' config section; allowed: "
                f"{sorted(allowed)}"
            )
        wf = dict(section.get("walk_forward") or {})
        _refuse_candle_keys("walk_forward", wf)
        wf_allowed = {"formation_days", "reform_hours", "z_window_hours", "z_half_lives",
                      "horizon_hours"}
        reject_unknown("walk_forward key", wf, wf_allowed)
        walk = WalkForwardParams(
            formation=_candles("walk_forward.formation_days", wf.get("formation_days", 60),
                               candle, least=100, why="the ADF lag search of a formation",
                               unit="days"),
            reform_every=_candles("walk_forward.reform_hours", wf.get("reform_hours", 24),
                                  candle),
            z_window=_candles("walk_forward.z_window_hours", wf.get("z_window_hours", 100),
                              candle, least=10, why="the rolling z-score"),
            horizon=int(_number(wf.get("horizon_hours", 168)) * (HOUR / candle)),
            z_half_lives=_number(wf.get("z_half_lives", 0.0)),
        )
        sig = dict(section.get("signals") or {})
        sig_allowed = {"pair_stop", "min_edge_ratio"}
        if set(sig) - sig_allowed:
            raise ValueError(
                f"unknown signals key(s) {sorted(set(sig) - sig_allowed)}; allowed: "
                f"{sorted(sig_allowed)} (entry_z, exit_z, stop_z and the time stop are "
                "strategy parameters: set them in the strategy's parameter file or hyperopt)"
            )
        reg = dict(section.get("regime") or {})
        regime_pair = str(reg.pop("pair", "BTC/USDT:USDT"))
        if "multipliers" in reg:
            raise ValueError(
                "statarb.regime.multipliers is not a config key: the HIGH and EXTREME "
                "multipliers are the hyperoptable strategy parameters regime_high_mult and "
                "regime_extreme_mult (LOW and NORMAL trade full size)"
            )
        _refuse_candle_keys("regime", reg)
        for key, default, least, why in (
                ("vol_window_hours", 24, 2, "the volatility window"),
                ("lookback_hours", 720, 2, "the volatility percentile lookback"),
                ("cooldown_hours", 12, 1, "the shock cooldown")):
            # Hourly candles at every timeframe (statarb.core.regime.regime_on_candles).
            reg[key.removesuffix("_hours")] = _candles(
                f"regime.{key}", reg.pop(key, default), HOUR, least=least, why=why)
        if "bounds" in reg:
            reg["bounds"] = tuple(reg["bounds"])
        leverage = float(section.get("leverage", 1.0))
        if not 1.0 <= leverage <= 5.0:
            raise ValueError(f"leverage={leverage} must be between 1 and 5 (isolated margin)")
        return cls(
            selection=SelectionParams.from_dict(dict(section.get("selection") or {})),
            walk_forward=walk,
            pair_stop=float(sig.get("pair_stop", 0.05)),
            min_edge_ratio=float(sig.get("min_edge_ratio", 0.0)),
            regime_pair=regime_pair,
            regime=RegimeParams(**reg),
            leverage=leverage,
            protections=list(section.get("protections") or []),
            live=LiveParams.from_dict(dict(section.get("live") or {})),
            formation_cache=_flag("formation_cache", section.get("formation_cache", True)),
            capital=CapitalParams.from_dict(dict(section.get("capital") or {})),
            half_spread=_half_spread(dict(section.get("costs") or {})),
        )

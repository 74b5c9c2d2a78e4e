"""How much notional a couple entry gets: the one sizing rule of backtest, research and bot.

Why a module of its own: Freqtrade's own rule (``stake_amount: "unlimited"``) gives every
trade ``1 / max_open_trades`` of the wallet, so a couple always gets two slots' worth
however few couples are open, and a strategy that holds one couple most of the time
leaves most of its capital idle. The rules here decide a couple's margin from what
Freqtrade's wallet reports at the entry (free stake, total stake, free slots) and, for
``target_vol``, from the spread's recent volatility; the Freqtrade adapter
(:mod:`statarb.ft.entries`) and the research engine (:mod:`statarb.research.engine`) both
call :func:`couple_notional`, so they cannot size differently.

Sizing modes (``statarb.core.capital.sizing``):

- ``slots`` (default): two of Freqtrade's proposed stakes, as a pair of ordinary trades
  would get.
- ``free_share``: the free stake shared equally among the couples entering on this candle
  (at most the free couple slots), each capped at ``max_couple_fraction`` of the total
  stake.
- ``target_vol``: the y leg's notional is ``target_daily_vol x total stake`` divided by
  the spread's daily volatility over the last ``vol_hours`` candles up to the signal
  candle (never later: no look-ahead), the x leg ``|beta|`` times that; capped like
  ``free_share``.

Every mode is then scaled by the volatility-regime multiplier and the leverage. Margin
and Freqtrade's stake rules still apply after: the legs are split on the exchange's
grid by :func:`statarb.core.sizing.size_legs`, and Freqtrade clamps each stake to what the
wallet and the market allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from statarb.core.params import reject_unknown

__all__ = ["SIZING_MODES", "CapitalParams", "couple_margin", "couple_notional",
           "entry_vol", "spread_daily_vol"]

SIZING_MODES = ("slots", "free_share", "target_vol")


@dataclass(frozen=True)
class CapitalParams:
    """The ``statarb.core.capital`` config section (see the module for the modes)."""

    sizing: str = "slots"
    max_couple_fraction: float = 0.5
    target_daily_vol: float = 0.01
    vol_hours: int = 168

    def __post_init__(self) -> None:
        if self.sizing not in SIZING_MODES:
            raise ValueError(
                f"capital.sizing={self.sizing!r} is not a sizing mode; allowed: "
                f"{list(SIZING_MODES)}"
            )
        if not (isinstance(self.max_couple_fraction, int | float)
                and 0 < self.max_couple_fraction <= 1):
            raise ValueError(
                f"capital.max_couple_fraction={self.max_couple_fraction!r} must be a number "
                "in (0, 1]: the share of the total stake one couple may take as margin"
            )
        if not (isinstance(self.target_daily_vol, int | float)
                and 0 < self.target_daily_vol <= 0.2):
            raise ValueError(
                f"capital.target_daily_vol={self.target_daily_vol!r} must be a number in "
                "(0, 0.2]: the daily P&L standard deviation one couple aims at, as a "
                "fraction of the total stake"
            )
        if not (isinstance(self.vol_hours, int) and 24 <= self.vol_hours <= 24 * 90):
            raise ValueError(
                f"capital.vol_hours={self.vol_hours!r} must be a whole number of hours "
                "between 24 and 2160"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CapitalParams:
        reject_unknown("capital key", values,
                       {"sizing", "max_couple_fraction", "target_daily_vol", "vol_hours"})
        return cls(**values)


def spread_daily_vol(closes_y: np.ndarray, closes_x: np.ndarray, beta: float, row: int,
                     window: int, candles_per_day: float) -> float:
    """Daily standard deviation of the log spread's changes over the ``window`` candles
    ending at ``row`` (inclusive): what one unit of y notional hedged by ``beta`` units
    of x moves in a day. NaN when fewer than half the window's changes are known."""
    lo = max(row - window, 0)
    y = np.log(np.asarray(closes_y[lo:row + 1], dtype="float64"))
    x = np.log(np.asarray(closes_x[lo:row + 1], dtype="float64"))
    changes = np.diff(y - beta * x)
    changes = changes[np.isfinite(changes)]
    if len(changes) < max(window // 2, 2):
        return math.nan
    return float(np.std(changes, ddof=1) * math.sqrt(candles_per_day))


def entry_vol(params: CapitalParams, closes_y: np.ndarray, closes_x: np.ndarray,
              beta: float, row: int, candle: pd.Timedelta) -> float:
    """The spread's daily volatility at a signal candle when the mode needs it, else NaN."""
    if params.sizing != "target_vol":
        return math.nan
    window = max(round(pd.Timedelta(hours=params.vol_hours) / candle), 2)
    return spread_daily_vol(closes_y, closes_x, beta, row, window, pd.Timedelta(days=1) / candle)


def couple_margin(
    params: CapitalParams,
    *,
    proposed_stake: float,
    available: float,
    total: float,
    entering: int,
    free_slots: int,
    beta: float = 1.0,
    daily_vol: float = math.nan,
    leverage: float = 1.0,
) -> float:
    """Margin (stake currency) for both legs of one couple before the regime multiplier.

    ``proposed_stake``: Freqtrade's stake for one trade; ``available``: the stake
    Freqtrade still allows; ``total``: the total stake (tied plus available);
    ``entering``: couples, this one included, still to enter on this candle;
    ``free_slots``: couple slots free now. 0 means do not enter.
    """
    if params.sizing == "slots":
        return max(2 * proposed_stake, 0.0)
    share = max(available, 0.0) / max(1, min(entering, free_slots))
    margin = min(share, params.max_couple_fraction * total)
    if params.sizing == "target_vol":
        if not (math.isfinite(daily_vol) and daily_vol > 0):
            return 0.0
        notional = params.target_daily_vol * total / daily_vol * (1 + abs(beta))
        margin = min(margin, notional / leverage)
    return max(margin, 0.0)


def couple_notional(params: CapitalParams, *, multiplier: float, leverage: float,
                    **wallet: float) -> float:
    """Total notional of both legs: :func:`couple_margin` x regime multiplier x leverage."""
    return couple_margin(params, leverage=leverage, **wallet) * multiplier * leverage

"""Volatility regime of the market and the stake multiplier it implies.

Why: a spread's behaviour changes with the market's volatility, and a cointegration
relationship estimated in calm weeks is least reliable in a crash. The regime is the
percentile of the current realised volatility within its own trailing history (causal:
only candles up to t), bucketed into LOW / NORMAL / HIGH / EXTREME; new couples are sized
by a multiplier per regime, and a one-candle shock stops new entries for a cooldown.

At every timeframe the regime is read from hourly closes (:func:`regime_on_candles`): its
windows are hours, so a 30-day lookback is 720 values at 5m as at 1h, and a running bot at
15m needs only 744 hourly candles of the reference, not 2,976 of its own candles (more
than Freqtrade loads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import pandas as pd

__all__ = [
    "Regime", "RegimeParams", "classify", "hourly_closes", "market_regime", "realised_vol",
    "regime_on_candles", "shock_block",
]

HOUR = pd.Timedelta(hours=1)


class Regime(IntEnum):
    LOW = 0
    NORMAL = 1
    HIGH = 2
    EXTREME = 3


def _default_multipliers() -> dict[str, float]:
    return {"LOW": 1.0, "NORMAL": 1.0, "HIGH": 0.5, "EXTREME": 0.25}


@dataclass(frozen=True)
class RegimeParams:
    """Regime settings; validated on construction.

    ``bounds`` are the percentile edges between LOW|NORMAL, NORMAL|HIGH and HIGH|EXTREME.
    """

    vol_window: int = 24
    lookback: int = 24 * 30
    bounds: tuple[float, float, float] = (0.25, 0.75, 0.95)
    multipliers: dict[str, float] = field(default_factory=_default_multipliers)
    shock_sigma: float = 5.0
    cooldown: int = 12

    def __post_init__(self) -> None:
        if self.vol_window < 2:
            raise ValueError(f"vol_window={self.vol_window} must be at least 2 candles")
        if self.lookback < self.vol_window:
            raise ValueError(f"lookback={self.lookback} must be >= vol_window={self.vol_window}")
        lo, mid, hi = self.bounds
        if not 0 < lo < mid < hi < 1:
            raise ValueError(f"bounds={self.bounds} must be increasing inside (0, 1)")
        names = {r.name for r in Regime}
        if set(self.multipliers) != names:
            raise ValueError(
                f"multipliers must name exactly {sorted(names)}, got {sorted(self.multipliers)}"
            )
        bad = {k: v for k, v in self.multipliers.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"multipliers {bad} must be in [0, 1]")
        if self.shock_sigma <= 0:
            raise ValueError(f"shock_sigma={self.shock_sigma} must be positive")
        if self.cooldown < 0:
            raise ValueError(f"cooldown={self.cooldown} must be >= 0 candles")

    def multiplier(self, regime: Regime | int) -> float:
        return self.multipliers[Regime(int(regime)).name]


def realised_vol(log_close: pd.Series, window: int) -> pd.Series:
    """Rolling standard deviation of one-candle log returns over ``window`` candles."""
    return log_close.diff().rolling(window, min_periods=window).std(ddof=1).rename("vol")


def classify(vol: pd.Series, params: RegimeParams) -> pd.Series:
    """Regime per candle from the percentile rank of ``vol`` in its trailing lookback.

    NaN (float) until the lookback is full; otherwise the :class:`Regime` value.
    """
    rank = vol.rolling(params.lookback, min_periods=params.lookback).rank(pct=True)
    codes = np.searchsorted(np.asarray(params.bounds), rank.to_numpy(), side="left")
    return pd.Series(np.where(rank.isna(), np.nan, codes), index=vol.index, name="regime")


def shock_block(log_close: pd.Series, vol: pd.Series, params: RegimeParams) -> pd.Series:
    """True where new entries are blocked: a one-candle return beyond ``shock_sigma`` times
    the volatility known before it, and the ``cooldown`` candles after it."""
    shock = log_close.diff().abs() > params.shock_sigma * vol.shift(1)
    # Blocked at t when a shock happened at any of t - cooldown .. t.
    window = shock.astype(np.int8).rolling(params.cooldown + 1, min_periods=1).max()
    return (window > 0).rename("shock_block")


def market_regime(log_close: pd.Series, params: RegimeParams) -> tuple[pd.Series, pd.Series]:
    """Regime per candle and where new entries are blocked: after a shock, and while the
    regime is unknown (its lookback is not full yet, or the reference has no candle)."""
    vol = realised_vol(log_close, params.vol_window)
    regime = classify(vol, params)
    blocked = shock_block(log_close, vol, params) | regime.isna()
    return regime, blocked.rename("entry_blocked")


def hourly_closes(close: pd.Series, width: pd.Timedelta) -> pd.Series:
    """Close of every complete hour of ``close`` (candles of ``width`` indexed by open
    time), indexed by the hour's open: the last candle's close of each hour whose last
    candle is there. Equal to the hourly candles' closes, as Binance builds them."""
    if width == HOUR:
        return close
    if width > HOUR or HOUR % width:
        raise ValueError(f"candles of {width} do not divide an hour")
    hours = close.index.floor(HOUR)
    last_open = pd.Series(close.index, index=close.index).groupby(hours).max()
    values = close.groupby(hours).last()
    return values[last_open.to_numpy() == (last_open.index + HOUR - width)]


def regime_on_candles(ref_close: pd.Series, index: pd.DatetimeIndex, params: RegimeParams,
                      *, ref_width: pd.Timedelta | None = None
                      ) -> tuple[pd.Series, pd.Series]:
    """:func:`market_regime` of the hourly closes of ``ref_close``, per candle of
    ``index`` (its windows are hourly candles at every timeframe).

    ``ref_close``: the reference's closes by candle open time, of ``ref_width`` (default
    the width of ``index``; a running intraday bot passes its 1h candles). A candle sees
    the regime of the last hour that closed by its own close, so a 15m candle opening at
    10:45 sees 10:00's and one opening at 10:30 sees 09:00's: nothing from after it. On
    1h candles this is the candle's own regime, as before.
    """
    width = index[1] - index[0] if len(index) > 1 else HOUR
    ref_width = width if ref_width is None else ref_width
    if width == HOUR and ref_width == HOUR:
        regime, blocked = market_regime(np.log(ref_close.reindex(index)), params)
        return regime, blocked
    hourly = hourly_closes(ref_close, ref_width)
    regime, blocked = market_regime(np.log(hourly.astype("float64")), params)
    seen = (index + width).floor(HOUR) - HOUR
    out_regime = pd.Series(regime.reindex(seen).to_numpy(), index=index, name="regime")
    out_blocked = pd.Series(blocked.reindex(seen).fillna(True).to_numpy(dtype=bool),
                            index=index, name="entry_blocked")
    return out_regime, out_blocked

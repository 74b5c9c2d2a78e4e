"""Causal spread and rolling z-score of a couple.

Why causal: a backtest that normalises the spread with statistics of the whole series
trades on information it could not have had. Every value at candle t here is computed
from candles up to and including t (Freqtrade acts on a candle after it closes and fills
on the next one), so truncating the input at t never changes anything before t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["rolling_zscore", "spread"]


def spread(log_y: pd.Series, log_x: pd.Series, alpha: float, beta: float) -> pd.Series:
    """``log y - beta * log x - alpha`` on the common index (log units)."""
    if not np.isfinite(alpha) or not np.isfinite(beta):
        raise ValueError(f"alpha={alpha} and beta={beta} must be finite numbers")
    return (log_y - beta * log_x - alpha).rename("spread")


def rolling_zscore(values: pd.Series, window: int, min_periods: int | None = None) -> pd.Series:
    """``(s_t - mean) / std`` over the last ``window`` values up to t (ddof 1).

    NaN until ``min_periods`` (default: ``window``) values exist, and where the window's
    standard deviation is zero: a flat spread gives no signal rather than an infinite one.
    """
    if window < 2:
        raise ValueError(f"window={window} must be at least 2 candles")
    min_periods = window if min_periods is None else min_periods
    if not 2 <= min_periods <= window:
        raise ValueError(f"min_periods={min_periods} must be between 2 and window={window}")
    roll = values.rolling(window, min_periods=min_periods)
    std = roll.std(ddof=1)
    z = (values - roll.mean()) / std.where(std > 0)
    return z.rename("zscore")

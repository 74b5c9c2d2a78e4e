"""Bid-ask spread estimated from the candles alone, and the cost it puts on a fill.

Why: a taker fill pays the fee and half the spread (it buys at the ask, sells at the bid).
At 1h the fee dominates; at 5m a round trip is shorter and the half-spread is a larger
share of what it earns. The exchange's order book history is not in the data, so the
spread is estimated from highs, lows and closes with a published estimator:

- ``corwin_schultz``: Corwin & Schultz (2012), "A Simple Way to Estimate Bid-Ask Spreads
  from Daily High and Low Prices", J. Finance 67(2). A bar's high is usually a buy at the
  ask and its low a sell at the bid, so the high-low range holds volatility plus the
  spread; the range over two bars holds twice the variance but the same spread, which
  separates them. Two-bar estimates below zero count as zero (the paper's choice).
- ``abdi_ranaldo``: Abdi & Ranaldo (2017), "A Simple Estimation of Bid-Ask Spreads from
  Daily Close, High, and Low Prices", Rev. Financial Studies 30(12): the squared spread is
  ``4 E[(c_t - eta_t)(c_t - eta_t+1)]`` with ``c`` the log close and ``eta`` the mid-range
  of the log high and low. As the paper does with daily bars and monthly estimates, the
  mean is taken per period (here a UTC day of 5m bars), a negative one counts as zero,
  and the spread is the mean of the periods' estimates.

On synthetic bars with a known bid-ask bounce (``tests/test_spread.py``) Abdi-Ranaldo
recovers the spread within 15% where Corwin-Schultz, whose zero floor is hit whenever the
spread is small against a bar's volatility, overstates it up to threefold; on the liquid
perpetuals of the data both are dominated by volatility at bars of 15m and longer, so the
cost is estimated once per coin on the finest bars (5m) and used at every timeframe
(``python -m statarb.tools.spread``). The cost of a fill is half the spread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["ESTIMATORS", "abdi_ranaldo", "corwin_schultz", "half_spread_costs",
           "spread_estimate"]

ESTIMATORS = ("none", "corwin_schultz", "abdi_ranaldo")
_K = 3.0 - 2.0 * math.sqrt(2.0)


def _logs(values: pd.Series | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(array > 0, np.log(array), np.nan)


def corwin_schultz(high: pd.Series | np.ndarray, low: pd.Series | np.ndarray) -> float:
    """Mean two-bar Corwin-Schultz spread (fraction of the price), negatives as zero."""
    h, lo = _logs(high), _logs(low)
    one = (h - lo) ** 2
    beta = one[:-1] + one[1:]
    gamma = (np.maximum(h[:-1], h[1:]) - np.minimum(lo[:-1], lo[1:])) ** 2
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / _K - np.sqrt(gamma / _K)
    spread = 2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha))
    spread = spread[np.isfinite(spread)]
    return float(np.maximum(spread, 0.0).mean()) if spread.size else math.nan


def abdi_ranaldo(high: pd.Series | np.ndarray, low: pd.Series | np.ndarray,
                 close: pd.Series | np.ndarray, periods: np.ndarray | None = None) -> float:
    """Abdi-Ranaldo spread (fraction of the price): one estimate per period label of
    ``periods`` (one per bar; None: the whole sample is one period), each zero when
    negative, averaged."""
    c = _logs(close)
    eta = (_logs(high) + _logs(low)) / 2.0
    products = (c[:-1] - eta[:-1]) * (c[:-1] - eta[1:])
    keep = np.isfinite(products)
    if not keep.any():
        return math.nan
    labels = np.zeros(len(products)) if periods is None else np.asarray(periods)[:-1]
    means = pd.Series(products[keep]).groupby(labels[keep]).mean().to_numpy()
    return float(np.sqrt(np.maximum(4.0 * means, 0.0)).mean())


def spread_estimate(frame: pd.DataFrame, method: str) -> float:
    """The spread of one coin's candles (``high``, ``low``, ``close``; Abdi-Ranaldo per
    UTC day of ``date`` when the frame has it) by ``method``."""
    if method not in ESTIMATORS:
        raise ValueError(f"spread estimator {method!r} must be one of {list(ESTIMATORS)}")
    if method == "none":
        return 0.0
    if method == "corwin_schultz":
        return corwin_schultz(frame["high"], frame["low"])
    days = pd.DatetimeIndex(frame["date"]).floor("1D").asi8 if "date" in frame else None
    return abdi_ranaldo(frame["high"], frame["low"], frame["close"], days)


def half_spread_costs(frames: Mapping[str, pd.DataFrame], method: str) -> dict[str, float]:
    """Per coin, the cost of one fill: half its estimated spread (0 where it cannot be
    estimated, or with ``method="none"``)."""
    out = {}
    for coin, frame in frames.items():
        value = spread_estimate(frame, method) / 2.0
        out[coin] = value if math.isfinite(value) else 0.0
    return out

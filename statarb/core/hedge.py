"""Hedge ratios of a couple's log prices other than the Engle-Granger OLS fit.

Why: OLS of log y on log x treats x as known exactly and puts all the noise in y, so the
ratio depends on which coin is called y (beta(y on x) is not 1 / beta(x on y)). Total
least squares fits the line that minimises the perpendicular distances instead: it is
symmetric in the two coins, which suits a spread where both legs are noisy prices.

A Kalman filter lets the ratio move: a relationship between two coins drifts within the
weeks a formation is traded, and a ratio frozen at the formation time hedges the drift
badly. The state is the intercept and the ratio, a random walk, observed through
``log y_t = alpha_t + beta_t log x_t + noise``; each candle's close updates it, so the
ratio at candle t uses candles up to t only (causal, like every other decision).

The cointegration test itself stays Engle-Granger's on the OLS residuals (its MacKinnon
critical values assume them, and it is what statsmodels' ``coint`` computes); the
``selection.hedge`` setting only changes the ratio and intercept the chosen couple is
traded with, computed from the same formation window (never later candles), and, for the
Kalman filter, from the candles after it as they close.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

__all__ = [
    "HEDGES", "KALMAN_COLUMNS", "KalmanStart", "has_kalman_state", "kalman_filter",
    "kalman_start", "tls_fit", "with_hedge",
]

HEDGES = ("ols", "tls", "kalman")
# The filter's state at the end of a formation window, carried by a chosen couple (and
# by the pairlist's published selection, so a running bot filters as the backtest does).
KALMAN_COLUMNS = ("kf_paa", "kf_pab", "kf_pbb", "kf_r", "kf_waa", "kf_wab", "kf_wbb")


def has_kalman_state(couples: pd.DataFrame) -> bool:
    """Whether a couple table carries the Kalman filter's state (chosen with
    ``hedge: kalman``)."""
    return not couples.empty and all(c in couples.columns for c in KALMAN_COLUMNS)


def tls_fit(log_y: np.ndarray, log_x: np.ndarray) -> tuple[float, float]:
    """``(alpha, beta)`` of the total-least-squares line ``log y = alpha + beta log x``.

    The slope is the direction of the larger eigenvector of the 2x2 covariance:
    ``(s_yy - s_xx + sqrt((s_yy - s_xx)^2 + 4 s_xy^2)) / (2 s_xy)``, and the line goes
    through the means. Uncorrelated or constant series have no such line (ValueError).
    """
    y = np.asarray(log_y, dtype=np.float64)
    x = np.asarray(log_x, dtype=np.float64)
    if y.shape != x.shape or y.ndim != 1 or len(y) < 3:
        raise ValueError(f"need two equal 1-D series of at least 3 values, got {y.shape} "
                         f"and {x.shape}")
    if not (np.isfinite(y).all() and np.isfinite(x).all()):
        raise ValueError("log prices must be finite for a hedge ratio")
    my, mx = y.mean(), x.mean()
    dy, dx = y - my, x - mx
    syy, sxx, sxy = float(dy @ dy), float(dx @ dx), float(dy @ dx)
    if sxy == 0 or sxx == 0 or syy == 0:
        raise ValueError("uncorrelated or constant log prices have no total-least-squares "
                         "hedge ratio")
    diff = syy - sxx
    beta = (diff + np.hypot(diff, 2 * sxy)) / (2 * sxy)
    return float(my - beta * mx), float(beta)


@dataclass(frozen=True)
class KalmanStart:
    """A couple's Kalman filter at the end of its formation window.

    State ``(alpha, beta)`` with covariance ``(paa, pab, pbb)``; ``r`` the observation
    noise (the variance of the window's OLS residuals, estimated, not a setting);
    ``(waa, wab, wbb)`` the state noise added per candle.

    How it is set (:func:`kalman_start`): the filter starts at the window's first candle
    from the window's OLS line with the uncertainty of one candle's information,
    ``P0 = r (X'X / n)^-1``, takes state noise ``W = delta / (1 - delta) * P0`` per
    candle, and runs through the window. So the ratio at the formation time is already
    the filter's own, weighing about ``1 / sqrt(delta)`` recent candles in steady state
    (1e-4: about 100 hours), whatever the coins' price levels; and with ``delta = 0`` it
    is exactly least squares: the OLS line at the formation time, then the least-squares
    fit of the window and every candle since, the window's candles weighted ``1 + 1/n``
    by the prior (a test checks it against statsmodels' WLS).
    """

    alpha: float
    beta: float
    paa: float
    pab: float
    pbb: float
    r: float
    waa: float
    wab: float
    wbb: float

    @classmethod
    def from_row(cls, row: object) -> KalmanStart:
        """From a chosen couple's row (``alpha``, ``beta`` and :data:`KALMAN_COLUMNS`)."""
        return cls(float(row.alpha), float(row.beta),  # type: ignore[attr-defined]
                   *(float(getattr(row, c)) for c in KALMAN_COLUMNS))

    @property
    def valid(self) -> bool:
        return bool(np.isfinite(list(asdict(self).values())).all()) and self.r > 0

    def columns(self) -> dict[str, float]:
        """The values of :data:`KALMAN_COLUMNS`."""
        return {c: getattr(self, c[3:]) for c in KALMAN_COLUMNS}


def kalman_start(log_y: np.ndarray, log_x: np.ndarray, delta: float) -> KalmanStart:
    """The filter run through a formation window (see :class:`KalmanStart`)."""
    if not 0.0 <= delta < 1.0:
        raise ValueError(f"kalman_delta={delta!r} must be in [0, 1)")
    y = np.asarray(log_y, dtype=np.float64)
    x = np.asarray(log_x, dtype=np.float64)
    n = len(y)
    if y.shape != x.shape or y.ndim != 1 or n < 3:
        raise ValueError(f"need two equal 1-D series of at least 3 values, got {y.shape} "
                         f"and {x.shape}")
    if not (np.isfinite(y).all() and np.isfinite(x).all()):
        raise ValueError("log prices must be finite for a hedge ratio")
    design = np.column_stack([np.ones(n), x])
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - alpha - beta * x
    r = float(resid @ resid) / (n - 2)
    if not r > 1e-14 * float(np.var(y)):  # rounding residue is not noise
        raise ValueError("a perfect fit leaves no observation noise for a Kalman filter")
    p0 = r * n * np.linalg.inv(design.T @ design)
    w = delta / (1.0 - delta) * p0
    prior = KalmanStart(float(alpha), float(beta), p0[0, 0], p0[0, 1], p0[1, 1], r,
                        w[0, 0], w[0, 1], w[1, 1])
    return _run(y, x, prior, predict_first=False)[2]


def kalman_filter(
    log_y: np.ndarray, log_x: np.ndarray, start: KalmanStart
) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha_t, beta_t)`` after each candle's update, for the candles after the
    formation window whose filter is ``start``.

    The recursion, per candle with ``h = (1, log x_t)``: predict ``P += W`` (the state is
    a random walk), then with the innovation ``e = log y_t - h.theta`` and its variance
    ``S = h P h' + r``: ``K = P h' / S``, ``theta += K e``, ``P -= K h P``. A candle
    without both prices updates nothing (the prediction still runs) and its values are
    NaN.
    """
    if not start.valid:
        raise ValueError(f"not a usable Kalman start: {start}")
    alphas, betas, _ = _run(log_y, log_x, start, predict_first=True)
    return alphas, betas


def _run(
    log_y: np.ndarray, log_x: np.ndarray, state: KalmanStart, *, predict_first: bool
) -> tuple[np.ndarray, np.ndarray, KalmanStart]:
    """The recursion of :func:`kalman_filter`, and the state after the last candle.
    Scalar arithmetic on purpose: the state is 2 numbers, and a loop of floats is much
    faster than numpy calls on 2x2 arrays. ``predict_first`` False: the first candle is
    the prior's own (the first candle of a formation window)."""
    y = np.asarray(log_y, dtype=np.float64)
    x = np.asarray(log_x, dtype=np.float64)
    if y.shape != x.shape or y.ndim != 1:
        raise ValueError(f"need two equal 1-D series, got {y.shape} and {x.shape}")
    a, b, r = state.alpha, state.beta, state.r
    paa, pab, pbb = state.paa, state.pab, state.pbb
    waa, wab, wbb = state.waa, state.wab, state.wbb
    n = len(y)
    alphas, betas = np.full(n, np.nan), np.full(n, np.nan)
    for t, (yt, xt) in enumerate(zip(y.tolist(), x.tolist(), strict=True)):
        if t or predict_first:
            paa, pab, pbb = paa + waa, pab + wab, pbb + wbb
        if not (math.isfinite(yt) and math.isfinite(xt)):
            continue
        ha = paa + pab * xt  # P h'
        hb = pab + pbb * xt
        s = ha + hb * xt + r
        ka, kb = ha / s, hb / s
        e = yt - a - b * xt
        a, b = a + ka * e, b + kb * e
        paa, pab, pbb = paa - ka * ha, pab - ka * hb, pbb - kb * hb
        alphas[t], betas[t] = a, b
    return alphas, betas, KalmanStart(a, b, paa, pab, pbb, r, waa, wab, wbb)


def with_hedge(
    chosen: pd.DataFrame, log_prices: pd.DataFrame, hedge: str, *, kalman_delta: float = 0.0
) -> pd.DataFrame:
    """The chosen couples with ``alpha`` and ``beta`` refitted by ``hedge`` on the window
    they were selected on (``ols``: unchanged). The OLS values stay in ``alpha_ols`` and
    ``beta_ols``. ``kalman``: the filter's line at the end of the window, and its state
    (:data:`KALMAN_COLUMNS`); the walk-forward runs it on over the candles after it."""
    if hedge not in HEDGES:
        raise ValueError(f"hedge={hedge!r} must be one of {HEDGES}")
    if hedge == "ols" or chosen.empty:
        return chosen
    if hedge == "kalman":
        starts = [kalman_start(log_prices[y].to_numpy(), log_prices[x].to_numpy(), kalman_delta)
                  for y, x in zip(chosen["y"], chosen["x"], strict=True)]
        return chosen.assign(
            alpha_ols=chosen["alpha"], beta_ols=chosen["beta"],
            alpha=[k.alpha for k in starts], beta=[k.beta for k in starts],
            **{c: [k.columns()[c] for k in starts] for c in KALMAN_COLUMNS},
        )
    fits = [tls_fit(log_prices[y].to_numpy(), log_prices[x].to_numpy())
            for y, x in zip(chosen["y"], chosen["x"], strict=True)]
    return chosen.assign(alpha_ols=chosen["alpha"], beta_ols=chosen["beta"],
                         alpha=[a for a, _ in fits], beta=[b for _, b in fits])

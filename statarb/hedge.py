"""Hedge ratios of a couple's log prices other than the Engle-Granger OLS fit.

Why: OLS of log y on log x treats x as known exactly and puts all the noise in y, so the
ratio depends on which coin is called y (beta(y on x) is not 1 / beta(x on y)). Total
least squares fits the line that minimises the perpendicular distances instead: it is
symmetric in the two coins, which suits a spread where both legs are noisy prices.

The cointegration test itself stays Engle-Granger's on the OLS residuals (its MacKinnon
critical values assume them, and it is what statsmodels' ``coint`` computes); the
``selection.hedge`` setting only changes the ratio and intercept the chosen couple is
traded with, computed from the same formation window (never later candles).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["HEDGES", "tls_fit", "with_hedge"]

HEDGES = ("ols", "tls")


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


def with_hedge(chosen: pd.DataFrame, log_prices: pd.DataFrame, hedge: str) -> pd.DataFrame:
    """The chosen couples with ``alpha`` and ``beta`` refitted by ``hedge`` on the window
    they were selected on (``ols``: unchanged). The OLS values stay in ``alpha_ols`` and
    ``beta_ols``."""
    if hedge not in HEDGES:
        raise ValueError(f"hedge={hedge!r} must be one of {HEDGES}")
    if hedge == "ols" or chosen.empty:
        return chosen
    fits = [tls_fit(log_prices[y].to_numpy(), log_prices[x].to_numpy())
            for y, x in zip(chosen["y"], chosen["x"], strict=True)]
    return chosen.assign(alpha_ols=chosen["alpha"], beta_ols=chosen["beta"],
                         alpha=[a for a, _ in fits], beta=[b for _, b in fits])

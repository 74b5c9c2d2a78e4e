"""Hedge ratios other than OLS: total least squares against an SVD, the Kalman filter
against a naive matrix loop and statsmodels' least squares, and what selection trades."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from statarb.core.hedge import (
    KALMAN_COLUMNS,
    KalmanStart,
    kalman_filter,
    kalman_start,
    tls_fit,
    with_hedge,
)
from statarb.core.selection import SelectionParams, choose_couples
from tests.shared_data import coins, log_window


def _svd_line(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """The orthogonal-regression line from an SVD of the centred points: its normal is
    the right singular vector of the smallest singular value."""
    points = np.column_stack([x - x.mean(), y - y.mean()])
    normal = np.linalg.svd(points, full_matrices=False)[2][-1]
    beta = -normal[0] / normal[1]
    return y.mean() - beta * x.mean(), beta


@pytest.mark.parametrize("slope", [0.7, 1.9, -0.4])
def test_tls_matches_an_svd_and_is_symmetric(slope: float) -> None:
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.normal(0, 0.02, 2000)) + 2.0
    y = 0.3 + slope * x + rng.normal(0, 0.05, 2000)
    alpha, beta = tls_fit(y, x)
    ref_alpha, ref_beta = _svd_line(y, x)
    assert beta == pytest.approx(ref_beta, rel=1e-10)
    assert alpha == pytest.approx(ref_alpha, rel=1e-9, abs=1e-12)
    # Symmetric in the two coins: x on y is the same line.
    assert tls_fit(x, y)[1] * beta == pytest.approx(1.0, rel=1e-10)
    # OLS is not: its two slopes multiply to r^2 < 1.
    ols_yx = np.polyfit(x, y, 1)[0]
    ols_xy = np.polyfit(y, x, 1)[0]
    assert ols_yx * ols_xy < 0.999


def test_tls_rejects_what_has_no_line() -> None:
    with pytest.raises(ValueError, match="constant"):
        tls_fit(np.ones(10), np.arange(10.0))
    with pytest.raises(ValueError, match="finite"):
        tls_fit(np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="hedge='kalmann'"):
        with_hedge(pd.DataFrame(), pd.DataFrame(), "kalmann")
    with pytest.raises(ValueError, match="hedge='svd' must be one of"):
        SelectionParams(hedge="svd")


def test_selection_trades_the_tls_line_of_its_own_window() -> None:
    panel = log_window("2025-12-01", 24 * 60, coins())
    ols = choose_couples(panel, SelectionParams(correction="none"))
    tls = choose_couples(panel, SelectionParams(correction="none", hedge="tls"))
    assert len(ols) >= 2
    # The same couples and test statistics: only the traded line changes.
    for col in ("y", "x", "tstat", "pvalue", "half_life"):
        assert tls[col].tolist() == ols[col].tolist(), col
    np.testing.assert_array_equal(tls["beta_ols"], ols["beta"])
    for row in tls.itertuples(index=False):
        alpha, beta = _svd_line(panel[row.y].to_numpy(), panel[row.x].to_numpy())
        assert row.beta == pytest.approx(beta, rel=1e-9)
        assert row.alpha == pytest.approx(alpha, rel=1e-9, abs=1e-12)
    assert (tls["beta"] != ols["beta"]).all()


def _drifting(n_window: int, n_after: int, seed: int = 2) -> tuple[np.ndarray, ...]:
    """Log prices whose true ratio (of one-candle moves) is 1.2 through the window, then
    drifts to 1.7, around a mean-reverting spread (AR(1), half-life ~ 7 candles)."""
    rng = np.random.default_rng(seed)
    n = n_window + n_after
    dx = rng.normal(0, 0.01, n)
    beta = np.r_[np.full(n_window, 1.2), np.linspace(1.2, 1.7, n_after)]
    noise = np.zeros(n)
    for t in range(1, n):
        noise[t] = 0.9 * noise[t - 1] + rng.normal(0, 0.004)
    return 0.1 + np.cumsum(beta * dx) + noise, np.cumsum(dx) + 3.0, beta


def _naive_kalman(y, x, theta, p, r, w, *, first_is_prior: bool) -> np.ndarray:
    """The textbook recursion with 2x2 matrices, one candle at a time."""
    theta, p = np.array(theta, dtype=float), np.array(p, dtype=float)
    out = np.full((len(y), 2), np.nan)
    for t in range(len(y)):
        if t or not first_is_prior:
            p = p + w
        if not (np.isfinite(y[t]) and np.isfinite(x[t])):
            continue
        h = np.array([1.0, x[t]])
        s = h @ p @ h + r
        k = p @ h / s
        theta = theta + k * (y[t] - h @ theta)
        p = (np.eye(2) - np.outer(k, h)) @ p
        out[t] = theta
    return out


@pytest.mark.parametrize("delta", [0.0, 1e-5, 1e-3])
def test_kalman_matches_a_naive_matrix_loop(delta: float) -> None:
    y, x, _ = _drifting(600, 400)
    y[700], x[750:753] = np.nan, np.nan  # missing candles after the window
    window = slice(0, 600)
    ols = sm.OLS(y[window], sm.add_constant(x[window])).fit()
    r = float(ols.ssr / ols.df_resid)
    design = sm.add_constant(x[window])
    p0 = r * 600 * np.linalg.inv(design.T @ design)
    w = delta / (1 - delta) * p0
    ref = _naive_kalman(y, x, ols.params, p0, r, w, first_is_prior=True)

    start = kalman_start(y[window], x[window], delta)
    assert (start.alpha, start.beta) == pytest.approx(tuple(ref[599]), rel=1e-9)
    assert start.r == pytest.approx(r, rel=1e-9)
    alphas, betas = kalman_filter(y[600:], x[600:], start)
    np.testing.assert_allclose(alphas, ref[600:, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(betas, ref[600:, 1], rtol=1e-9, atol=1e-12)
    assert np.isnan(betas[[100, 150, 151, 152]]).all()
    # The state is carried in the published columns and read back unchanged.
    row = pd.DataFrame([{"alpha": start.alpha, "beta": start.beta, **start.columns()}])
    assert KalmanStart.from_row(next(row.itertuples(index=False))) == start
    assert set(start.columns()) == set(KALMAN_COLUMNS)


def test_kalman_without_state_noise_is_least_squares_on_every_candle_so_far() -> None:
    """delta = 0: at the formation time the window's OLS line, and at every later candle
    the weighted least-squares fit of the window and the candles since (the prior's one
    candle of information is the window's own fit: its rows weigh 1 + 1/n)."""
    y, x, _ = _drifting(500, 300)
    start = kalman_start(y[:500], x[:500], 0.0)
    ols = sm.OLS(y[:500], sm.add_constant(x[:500])).fit()
    assert (start.alpha, start.beta) == pytest.approx(tuple(ols.params), rel=1e-9)
    alphas, betas = kalman_filter(y[500:], x[500:], start)
    for t in (0, 37, 150, 299):
        m = 500 + t + 1
        weights = np.r_[np.full(500, 1 + 1 / 500), np.ones(t + 1)]
        wls = sm.WLS(y[:m], sm.add_constant(x[:m]), weights=weights).fit()
        assert (alphas[t], betas[t]) == pytest.approx(tuple(wls.params), rel=1e-8)


def test_kalman_follows_a_drifting_ratio_that_ols_misses() -> None:
    y, x, true_beta = _drifting(1000, 500)
    ols = sm.OLS(y[:1000], sm.add_constant(x[:1000])).fit().params[1]
    late = slice(400, 500)

    def error(delta: float) -> float:
        _, betas = kalman_filter(y[1000:], x[1000:], kalman_start(y[:1000], x[:1000], delta))
        return float(np.abs(betas[late] - true_beta[1000:][late]).mean())

    frozen = float(np.abs(ols - true_beta[1000:][late]).mean())
    assert error(1e-3) < 0.6 * frozen, (error(1e-3), frozen)
    # No state noise (recursive least squares) lags further behind.
    assert error(0.0) > 1.2 * error(1e-3), (error(0.0), error(1e-3))


def test_kalman_settings_are_checked() -> None:
    for bad in (-1e-6, 0.02, "1e-5", True):
        with pytest.raises(ValueError, match="kalman_delta="):
            SelectionParams(hedge="kalman", kalman_delta=bad)
    with pytest.raises(ValueError, match="perfect fit"):
        kalman_start(np.arange(10.0) * 2 + 1, np.arange(10.0), 1e-5)
    with pytest.raises(ValueError, match="usable Kalman start"):
        kalman_filter(np.ones(3), np.ones(3), KalmanStart(0, 1, 1, 0, 1, 0.0, 0, 0, 0))

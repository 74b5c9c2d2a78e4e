"""Total-least-squares hedge ratio: against an SVD, symmetric, and what selection trades."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from statarb.hedge import tls_fit, with_hedge
from statarb.selection import SelectionParams, choose_couples
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
    with pytest.raises(ValueError, match="hedge='kalman'"):
        with_hedge(pd.DataFrame(), pd.DataFrame(), "kalman")
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

"""Deflated Sharpe ratio against independent references: Monte Carlo, quadrature, the paper.

Every reference here is computed without the module's formulas (simulation, numerical
integration, or the formula re-typed from the paper with scipy.stats.norm), so a wrong sign,
a swapped kurtosis convention or a missing sqrt(n - 1) fails a test.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

from statarb.research.deflated import (
    DeflatedSharpe,
    annualised,
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    sharpe,
)


def _psr_reference(sr: float, n: int, skew: float, kurt: float, bench: float) -> float:
    """PSR typed independently from Bailey & López de Prado (2014), eq. for PSR."""
    se = math.sqrt((1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr) / (n - 1.0))
    return float(stats.norm.cdf((sr - bench) / se))


def _exact_expected_max(n: int, sigma: float) -> float:
    """E[max of n iid N(0, sigma^2)] by quadrature of x * n * phi(x) * Phi(x)^(n-1)."""
    f = lambda x: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1)  # noqa: E731
    val, _ = integrate.quad(f, -12.0, 12.0, limit=200)
    return sigma * val


# --- sharpe ------------------------------------------------------------------------------


def test_sharpe_matches_mean_over_sample_std() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.005, np.nan, 0.0])
    f = r[np.isfinite(r)]
    assert sharpe(r) == pytest.approx(f.mean() / f.std(ddof=1), rel=1e-12)


@pytest.mark.parametrize("r", [[], [0.1], [np.nan, 0.1], [0.02, 0.02, 0.02]])
def test_sharpe_degenerate_is_nan(r: list[float]) -> None:
    assert math.isnan(sharpe(r))


def test_annualised() -> None:
    assert annualised(0.1, 365 * 24) == pytest.approx(0.1 * math.sqrt(8760))
    with pytest.raises(ValueError, match="periods_per_year=0"):
        annualised(0.1, 0)


# --- expected_max_sharpe -----------------------------------------------------------------


@pytest.mark.parametrize("n_trials", [10, 50, 200])
def test_expected_max_matches_monte_carlo(n_trials: int) -> None:
    sigma = 0.05
    rng = np.random.default_rng(20140601 + n_trials)
    mc = rng.normal(0.0, sigma, size=(20_000, n_trials)).max(axis=1).mean()
    # The formula is an asymptotic (extreme-value) approximation, not exact: it is 2.3% above
    # the exact mean at N=10, 1.2% at N=50 and 0.7% at N=200. The Monte Carlo standard error
    # is about 0.3% of the mean at N=10 (std of the max ~0.59 sigma / sqrt(20000)), so 4%
    # holds the approximation error plus more than 5 standard errors of noise.
    assert expected_max_sharpe(n_trials, sigma**2) == pytest.approx(mc, rel=0.04)


@pytest.mark.parametrize("n_trials", [2, 10, 100, 1000])
def test_expected_max_close_to_exact_quadrature_and_conservative(n_trials: int) -> None:
    sigma = 0.1
    exact = _exact_expected_max(n_trials, sigma)
    approx = expected_max_sharpe(n_trials, sigma**2)
    # Close to the exact value for N >= 10 (a few percent); at N >= 10 it is above the
    # exact value, so the penalty errs on the side of caution.
    if n_trials >= 10:
        assert approx == pytest.approx(exact, rel=0.03)
        assert approx > exact
    else:
        assert approx == pytest.approx(exact, abs=0.3 * sigma)


def test_expected_max_edge_cases_and_scaling() -> None:
    assert expected_max_sharpe(1, 0.3) == 0.0
    assert expected_max_sharpe(50, 0.0) == 0.0
    # Linear in the standard deviation, increasing in N.
    assert expected_max_sharpe(30, 4.0) == pytest.approx(2.0 * expected_max_sharpe(30, 1.0))
    vals = [expected_max_sharpe(k, 1.0) for k in (2, 5, 20, 100, 1000)]
    assert all(a < b for a, b in itertools.pairwise(vals))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 1.0), "n_trials=0"),
        ((2.5, 1.0), "n_trials=2.5"),
        ((True, 1.0), "n_trials=True"),
        ((10, -0.1), "var_sharpe=-0.1"),
        ((10, float("nan")), "var_sharpe=nan"),
    ],
)
def test_expected_max_bad_input(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        expected_max_sharpe(*args)


# --- probabilistic_sharpe ----------------------------------------------------------------


def test_paper_numerical_example() -> None:
    """Bailey & López de Prado (2014), numerical example: N=100 trials, V[SR]=1/2 and best
    SR=2.5 (both annualised), T=1250 daily returns, skew=-3, kurtosis=10. The paper reports
    SR0 = 0.1132 (per period) and DSR = 0.9004."""
    per_year = 250
    sr0 = expected_max_sharpe(100, 0.5 / per_year)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe(2.5 / math.sqrt(per_year), 1250, -3.0, 10.0, sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


@pytest.mark.parametrize(
    ("sr", "n", "skew", "kurt", "bench"),
    [
        (0.1, 250, 0.0, 3.0, 0.0),
        (0.05, 1000, -1.5, 8.0, 0.02),
        (-0.03, 500, 0.7, 4.5, 0.0),
        (0.2, 60, -0.4, 12.0, 0.15),
    ],
)
def test_psr_matches_independent_formula(
    sr: float, n: int, skew: float, kurt: float, bench: float
) -> None:
    got = probabilistic_sharpe(sr, n, skew, kurt, bench)
    assert got == pytest.approx(_psr_reference(sr, n, skew, kurt, bench), rel=1e-12)


def test_psr_half_at_benchmark_and_monotonic() -> None:
    assert probabilistic_sharpe(0.08, 500, 0.0, 3.0, 0.08) == pytest.approx(0.5)
    psr = [probabilistic_sharpe(0.05, n, 0.0, 3.0) for n in (10, 50, 250, 1000, 5000)]
    assert all(a < b for a, b in itertools.pairwise(psr))
    # Negative skew and fat tails make the same Sharpe less convincing.
    assert probabilistic_sharpe(0.1, 250, -2.0, 10.0) < probabilistic_sharpe(0.1, 250, 0.0, 3.0)
    # Below the benchmark, more data makes it *more* certain the true Sharpe is lower.
    assert probabilistic_sharpe(0.0, 1000, 0.0, 3.0, 0.05) < probabilistic_sharpe(
        0.0, 100, 0.0, 3.0, 0.05
    )


def test_psr_calibrated_on_normal_returns() -> None:
    """For iid normal returns with zero true mean, PSR against 0 is ~uniform: it exceeds 0.95
    in about 5% of samples. A wrong standard error (e.g. missing sqrt(n-1)) breaks this."""
    rng = np.random.default_rng(7)
    r = rng.normal(0.0, 0.01, size=(4000, 250))
    srs = r.mean(axis=1) / r.std(axis=1, ddof=1)
    psr = np.array([probabilistic_sharpe(float(s), 250, 0.0, 3.0) for s in srs])
    # Binomial standard error at p=0.05, 4000 draws: 0.34%.
    assert np.mean(psr > 0.95) == pytest.approx(0.05, abs=0.015)
    assert np.mean(psr) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 1}, "n=1"),
        ({"n": 100.5}, "n=100.5"),
        ({"sr": float("nan")}, "sr=nan"),
        ({"skew": float("inf")}, "skew=inf"),
        ({"kurtosis": 0.0}, "kurtosis=0.0"),
        ({"sr_benchmark": float("nan")}, "sr_benchmark=nan"),
        ({"sr": 1.0, "skew": 3.0, "kurtosis": 1.0}, "must be > 0"),
    ],
)
def test_psr_bad_input(kwargs: dict, match: str) -> None:
    args = {"sr": 0.1, "n": 100, "skew": 0.0, "kurtosis": 3.0} | kwargs
    with pytest.raises(ValueError, match=match):
        probabilistic_sharpe(**args)


# --- deflated_sharpe ---------------------------------------------------------------------


def _returns(seed: int, mean: float = 0.0005, n: int = 500) -> np.ndarray:
    return np.random.default_rng(seed).standard_t(5, size=n) * 0.01 + mean


def test_deflated_one_trial_is_psr_against_zero() -> None:
    r = _returns(1, mean=0.001)
    d = deflated_sharpe(r, [sharpe(r)])
    assert isinstance(d, DeflatedSharpe)
    assert d.n == 500 and d.n_trials == 1 and d.sr_benchmark == 0.0
    assert d.skew == pytest.approx(stats.skew(r))
    assert d.kurtosis == pytest.approx(stats.kurtosis(r) + 3.0)
    assert d.dsr == pytest.approx(_psr_reference(d.sr, 500, d.skew, d.kurtosis, 0.0), rel=1e-12)


def test_deflated_lower_with_more_trials_and_ignores_nan_trials() -> None:
    r = _returns(2, mean=0.002)
    sr = sharpe(r)
    rng = np.random.default_rng(3)
    others = rng.normal(0.0, 0.05, size=200)
    dsrs = [deflated_sharpe(r, np.r_[sr, others[: k - 1]]).dsr for k in (1, 5, 20, 200)]
    assert all(a > b for a, b in itertools.pairwise(dsrs))
    with_nan = deflated_sharpe(r, np.r_[sr, others[:9], np.nan, np.inf])
    assert with_nan == deflated_sharpe(r, np.r_[sr, others[:9]])
    assert with_nan.n_trials == 10
    var = np.var(np.r_[sr, others[:9]], ddof=1)
    assert with_nan.sr_benchmark == pytest.approx(expected_max_sharpe(10, var))


def test_deflated_penalty_controls_false_positives() -> None:
    """The point of the penalty: 300 sweeps of N=20 variants with zero true Sharpe. Keeping
    the best by Sharpe, its naive PSR against 0 exceeds 0.95 most of the time (roughly
    1 - 0.95^20 = 64%); its DSR does so rarely (at or below the nominal 5%)."""
    rng = np.random.default_rng(2014)
    n_sweeps, n_var, n_obs = 300, 20, 250
    naive_hits = dsr_hits = 0
    for _ in range(n_sweeps):
        r = rng.standard_t(6, size=(n_var, n_obs)) * 0.01
        srs = r.mean(axis=1) / r.std(axis=1, ddof=1)
        best = int(np.argmax(srs))
        d = deflated_sharpe(r[best], srs)
        naive = probabilistic_sharpe(d.sr, d.n, d.skew, d.kurtosis, 0.0)
        naive_hits += naive > 0.95
        dsr_hits += d.dsr > 0.95
    assert naive_hits / n_sweeps > 0.45
    assert dsr_hits / n_sweeps < 0.10


def test_deflated_still_detects_real_skill() -> None:
    """A penalty that always said 0 would pass the false-positive test: a variant with a true
    per-period Sharpe of 0.4 among 19 unskilled ones must still clear DSR > 0.95 mostly.

    Expected power ~90%: its Sharpe inflates the trials' variance, so the benchmark is about
    0.2 and z ~ (0.4 - 0.2) sqrt(249) ~ 3.1 with one unit of sampling noise."""
    rng = np.random.default_rng(99)
    hits = 0
    for _ in range(100):
        r = rng.normal(0.0, 0.01, size=(20, 250))
        r[0] += 0.004
        srs = r.mean(axis=1) / r.std(axis=1, ddof=1)
        hits += deflated_sharpe(r[0], srs).dsr > 0.95
    assert hits / 100 > 0.8


@pytest.mark.parametrize("r", [[], [0.01], [np.nan, np.nan, 0.01], [0.0] * 50])
def test_deflated_degenerate_returns_give_nan_row(r: list[float]) -> None:
    d = deflated_sharpe(r, [0.1, 0.2, 0.05])
    assert math.isnan(d.dsr) and math.isnan(d.sr)
    assert d.n_trials == 3 and d.sr_benchmark > 0.0


def test_deflated_bad_trials_raise() -> None:
    with pytest.raises(ValueError, match="0 finite entries"):
        deflated_sharpe(_returns(4), [np.nan])
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        deflated_sharpe(_returns(4), [[0.1, 0.2], [0.3, 0.4]])

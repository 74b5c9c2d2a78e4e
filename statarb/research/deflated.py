"""Deflated Sharpe ratio: the multiple-testing penalty for choosing among strategy variants.

Why: a parameter sweep tries many variants on the same in-sample data and keeps the best.
Even if no variant has any skill, the best of N Sharpe ratios is biased upwards, and the
more variants are tried the higher the best one looks. Comparing it with zero, or reading
its probabilistic Sharpe ratio (PSR) against zero, then reports skill that is only
selection. The deflated Sharpe ratio (DSR) instead compares the chosen variant with the
Sharpe ratio that the best of ``N`` *unskilled* trials would be expected to show: it is the
probability that the variant's true Sharpe exceeds that expected maximum, accounting for
the track record's length, skewness and fat tails.

Reference: D. H. Bailey and M. López de Prado, "The Deflated Sharpe Ratio: Correcting for
Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management
40(5), 2014, pp. 94-107 (equations for PSR, the expected maximum Sharpe ratio and DSR).

All Sharpe ratios here are *per period* (not annualised): the formulas use the number of
returns ``n`` and per-period moments. Use :func:`annualised` only for display.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = [
    "DeflatedSharpe",
    "annualised",
    "deflated_sharpe",
    "expected_max_sharpe",
    "probabilistic_sharpe",
    "sharpe",
]


def _finite(values: ArrayLike, name: str) -> np.ndarray:
    """The finite entries of a 1-D array (NaN marks a missing return or a failed variant)."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    return arr[np.isfinite(arr)]


def _check_finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a finite real number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}={value} must be a finite real number")
    return value


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value} must be an integer >= {minimum}")
    return int(value)


def sharpe(returns: ArrayLike) -> float:
    """Per-period Sharpe ratio, mean / std (ddof=1), of the finite entries of ``returns``.

    NaN (not an exception) when there are fewer than 2 finite returns or they are all equal,
    so a sweep over many variants can record a degenerate variant and move on.
    """
    r = _finite(returns, "returns")
    if r.size < 2:
        return float("nan")
    sd = float(np.std(r, ddof=1))
    if not sd > 0.0:
        return float("nan")
    return float(np.mean(r)) / sd


def annualised(sr_per_period: float, periods_per_year: float) -> float:
    """Scale a per-period Sharpe ratio to a yearly one, ``sr * sqrt(periods_per_year)``.

    Only for display: the square-root rule assumes iid returns, and every formula in this
    module takes the per-period value.
    """
    ppy = _check_finite("periods_per_year", periods_per_year)
    if ppy <= 0:
        raise ValueError(f"periods_per_year={ppy} must be > 0 (e.g. 365 * 24 for 1h candles)")
    return float(sr_per_period) * math.sqrt(ppy)


def probabilistic_sharpe(
    sr: float, n: int, skew: float, kurtosis: float, sr_benchmark: float = 0.0
) -> float:
    """Probabilistic Sharpe ratio: P(true Sharpe > ``sr_benchmark``) given the estimate ``sr``.

    ``PSR = Phi((sr - sr*) sqrt(n - 1) / sqrt(1 - skew sr + (kurtosis - 1) / 4 sr^2))``.

    Why: the standard error of an estimated Sharpe ratio grows with negative skew and fat
    tails, so the same ``sr`` over the same ``n`` is less convincing for a strategy that
    collects small gains and occasionally loses big. ``sr`` and ``sr_benchmark`` are per
    period, ``n`` is the number of returns, ``kurtosis`` is Pearson's (non-excess: 3 for
    normal returns).
    """
    sr = _check_finite("sr", sr)
    n = _check_int("n", n, 2)
    skew = _check_finite("skew", skew)
    kurtosis = _check_finite("kurtosis", kurtosis)
    sr_benchmark = _check_finite("sr_benchmark", sr_benchmark)
    if kurtosis < 1.0:
        raise ValueError(
            f"kurtosis={kurtosis} must be >= 1: it is Pearson's (non-excess) kurtosis, 3 for "
            "normal returns; add 3 to an excess (Fisher) kurtosis"
        )
    radicand = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if radicand <= 0.0:
        raise ValueError(
            f"1 - skew*sr + (kurtosis-1)/4*sr^2 = {radicand} must be > 0 (sr={sr}, skew={skew}, "
            f"kurtosis={kurtosis}): these moments are inconsistent (for any distribution "
            "kurtosis >= skew^2 + 1), so the Sharpe ratio's standard error is undefined"
        )
    z = (sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(radicand)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(n_trials: int, var_sharpe: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe estimates whose true Sharpe is zero.

    ``E[max SR] ~ sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``, ``g`` the
    Euler-Mascheroni constant, ``V`` the variance of the trials' Sharpe ratios. This is the
    bar the best of ``N`` unskilled variants clears by luck alone; it is an asymptotic
    approximation (slightly above the exact value for small ``N``, which errs on the side of
    caution). One trial gives 0: nothing was selected.
    """
    n_trials = _check_int("n_trials", n_trials, 1)
    var_sharpe = _check_finite("var_sharpe", var_sharpe)
    if var_sharpe < 0.0:
        raise ValueError(f"var_sharpe={var_sharpe} must be >= 0 (it is a variance)")
    if n_trials == 1:
        return 0.0
    g = float(np.euler_gamma)
    z = (1.0 - g) * stats.norm.ppf(1.0 - 1.0 / n_trials) + g * stats.norm.ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return math.sqrt(var_sharpe) * float(z)


@dataclass(frozen=True)
class DeflatedSharpe:
    """One variant's deflated Sharpe ratio and what went into it (all per period).

    ``sr_benchmark`` is the expected maximum Sharpe of ``n_trials`` unskilled trials, and
    ``dsr`` the probability that this variant's true Sharpe exceeds it. ``dsr`` (and the
    moments) are NaN when the returns are degenerate.
    """

    sr: float
    n: int
    skew: float
    kurtosis: float
    n_trials: int
    sr_benchmark: float
    dsr: float


def deflated_sharpe(returns: ArrayLike, trial_sharpes: ArrayLike) -> DeflatedSharpe:
    """Deflated Sharpe ratio of the variant with ``returns``, chosen among ``trial_sharpes``.

    ``trial_sharpes`` holds the per-period Sharpe of *every* variant tried on the same data,
    this one included; leaving out the losers understates the penalty. Non-finite entries
    (failed variants) are ignored. The benchmark is :func:`expected_max_sharpe` with the
    number of finite trials and their variance (ddof=1; 0 for a single trial, which makes
    DSR the PSR against zero).

    Skewness and kurtosis are the biased (population, ``bias=True``) moments of the finite
    returns from :mod:`scipy.stats`, kurtosis non-excess. Being the moments of the empirical
    distribution they satisfy ``kurtosis >= skew^2 + 1``, which keeps PSR's radicand >= 0.

    Degenerate returns (fewer than 2 finite values, zero std, or a two-valued series whose
    radicand is 0) give NaN ``dsr`` rather than an exception, so a sweep table keeps the row.
    """
    trials = _finite(trial_sharpes, "trial_sharpes")
    if trials.size == 0:
        raise ValueError(
            f"trial_sharpes has {trials.size} finite entries: it must hold the Sharpe of "
            "every variant tried, including this one (at least 1)"
        )
    n_trials = int(trials.size)
    var_sharpe = float(np.var(trials, ddof=1)) if n_trials > 1 else 0.0
    benchmark = expected_max_sharpe(n_trials, var_sharpe)

    r = _finite(returns, "returns")
    n = int(r.size)
    sr = sharpe(r)
    nan = float("nan")
    if not math.isfinite(sr):
        return DeflatedSharpe(sr, n, nan, nan, n_trials, benchmark, nan)
    skew = float(stats.skew(r, bias=True))
    kurt = float(stats.kurtosis(r, fisher=False, bias=True))
    radicand = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    if not (math.isfinite(skew) and math.isfinite(kurt) and radicand > 0.0):
        return DeflatedSharpe(sr, n, skew, kurt, n_trials, benchmark, nan)
    dsr = probabilistic_sharpe(sr, n, skew, kurt, benchmark)
    return DeflatedSharpe(sr, n, skew, kurt, n_trials, benchmark, dsr)

"""Batched Engle-Granger cointegration tests for every ordered couple of a price panel.

Why this module exists: scanning a universe means testing hundreds or thousands of
ordered couples, and looping ``statsmodels.tsa.stattools.coint`` over them takes minutes.
The numbers must stay exactly those of statsmodels (its ``coint`` is the reference every
quant reaches for), so this module reproduces the same estimator, the same lag search and
the same p-value, but as array algebra across all couples at once:

* Step 1, the cointegrating regression ``log y = alpha + beta * log x + e``, is plain
  covariance algebra: one covariance matrix of the panel gives every couple's OLS fit.
* Step 2, the augmented Dickey-Fuller regression on the residual ``e`` with the lag chosen
  by an information criterion, is 1 + maxlag nested OLS fits per couple that share their
  columns. Every entry of their Gram matrices is a windowed sum of one of a few lagged
  products (``d[u] * d[u-h]`` and ``e[u] * d[u-h]``, with ``d`` the differenced residual):
  a full sum minus short head and tail partial sums. Because ``e = Y - beta X`` and
  ``d = dY - beta dX`` (Y, X the centred log prices), each full sum is a quadratic form in
  beta of coin-level sums: ``sum dY[u] dY[u-h] - beta (sum dY[u] dX[u-h] + sum dX[u]
  dY[u-h]) + beta^2 sum dX[u] dX[u-h]``. Those come for every couple at once from K+1
  matrix products of the panel's differences (K = maxlag), at BLAS speed; the level sums
  from one more product (lag 0) and a recurrence (``e[u+1] = e[u] + d[u]``) for the other
  lags; the head and tail sums, O(K^2) per couple, from each residual's first and last
  points. The combination cancels where two coins nearly coincide; a couple whose terms
  exceed its sum by more than ``_CANCELLATION_LIMIT`` (never in the real data) gets its
  full sums from its own residual instead (measured: t-statistics within 1e-11 relative
  of the per-couple sums, real or near-collinear couples). The nested
  fits then come out of one Cholesky factorisation per couple of the Gram matrix bordered
  by the response (the leading block of a Cholesky factor is the factor of the leading
  block, and its last row carries every fit's residual sum of squares), and the final
  regression, grouped by chosen lag, out of one small factorisation more. Only each
  residual's total and mean crossings still need all its points.
* Step 3, MacKinnon's (1994) approximate p-value for the two-variable, constant-only
  cointegration case, is evaluated with statsmodels' own coefficient tables.

The public entry point is :func:`engle_granger`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.tsa import adfvalues

from statarb.core.adf_kernel import AUTOLAG_CODES, couple_adf

__all__ = [
    "RESULT_COLUMNS", "count_crossings", "default_maxlag", "engle_granger", "mackinnon_pvalue",
]

#: Columns of the frame returned by :func:`engle_granger`, with their meaning and unit.
RESULT_COLUMNS: dict[str, str] = {
    "y": "dependent coin (column name of the panel); the spread is long y",
    "x": "independent coin (column name of the panel); the spread is short beta units of x",
    "alpha": "OLS intercept of log y on log x (log-price units)",
    "beta": "OLS hedge ratio of log y on log x (dimensionless: y notional per unit x notional)",
    "tstat": "ADF t-statistic of the residual, no deterministic terms (as statsmodels coint)",
    "pvalue": "MacKinnon (1994) approximate p-value, cointegration case N=2, constant trend",
    "lag": "number of lagged differences in the ADF regression (chosen by autolag)",
    "nobs": "number of candles in the formation window (rows of the panel)",
    "half_life": (
        "spread half-life from its AR(1) fit, in candles (inf if lambda >= 0, NaN if lambda <= -1)"
    ),
    "ar_lambda": "lambda of the AR(1) fit d e_t = c + lambda * e_{t-1} (per candle)",
    "corr": "Pearson correlation of log y and log x levels (dimensionless)",
    "ret_corr": "Pearson correlation of one-candle log returns of y and x (dimensionless)",
    "r2": "R squared of the cointegrating regression (dimensionless)",
    "spread_mean": "mean of the spread log y - beta log x - alpha over the window (log units)",
    "spread_std": "standard deviation (ddof=1) of the spread over the window (log units)",
    "crossings": (
        "number of times the spread crosses its mean in the window (count; -1: not counted)"
    ),
}

_AUTOLAG_CHOICES = ("aic", "bic", None)
# Same collinearity guard as statsmodels.coint: R^2 this close to 1 means the couple is
# (almost) the same series, the ADF is meaningless and statsmodels reports -inf.
_SQRTEPS = float(np.sqrt(np.finfo(np.float64).eps))
_COLLINEAR_R2 = 1.0 - 100.0 * _SQRTEPS


def default_maxlag(nobs: int) -> int:
    """The ADF maxlag statsmodels uses for a residual of ``nobs`` points.

    Schwert's rule ``ceil(12 * (nobs / 100) ** 0.25)``, capped at ``nobs // 2 - 1``
    (the ``regression="n"`` case that ``coint`` runs on its residual).
    """
    maxlag = int(np.ceil(12.0 * np.power(nobs / 100.0, 1 / 4.0)))
    maxlag = min(nobs // 2 - 1, maxlag)
    if maxlag < 0:
        raise ValueError(f"window of {nobs} candles is too short for an ADF regression")
    return maxlag


def mackinnon_pvalue(tstat: np.ndarray | float, n_vars: int = 2) -> np.ndarray:
    """Vectorised ``statsmodels.tsa.adfvalues.mackinnonp(t, regression="c", N=n_vars)``.

    Uses statsmodels' own MacKinnon (1994) tables so the numbers are the reference's.
    """
    if not 1 <= n_vars <= 6:
        raise ValueError(f"n_vars={n_vars} is outside MacKinnon's tables (1..6)")
    t = np.asarray(tstat, dtype=np.float64)
    i = n_vars - 1
    with np.errstate(invalid="ignore"):  # +-inf statistics: overwritten just below
        small = np.polyval(adfvalues.tau_c_smallp[i][::-1], t)
        large = np.polyval(adfvalues.tau_c_largep[i][::-1], t)
    p = norm.cdf(np.where(t <= adfvalues.tau_star_c[i], small, large))
    p = np.where(t > adfvalues.tau_max_c[i], 1.0, p)
    p = np.where(t < adfvalues.tau_min_c[i], 0.0, p)
    return p


# --- Per-couple sums: the reference path ----------------------------------------------------
#
# _edges forms every full lagged sum of a couple from its own residual (2 (K+1) dot
# products of length N per couple), and _gram / _chol_solve / _adf_autolag are the ADF
# step as first written. They are the engine before the coin-level sums: kept, unchanged,
# as the reference the batch engine is tested and benchmarked against
# (_engle_granger_reference), and _Edges is the common form of the sums.


@dataclass(frozen=True)
class _Edges:
    """Full sums and head/tail partial sums of the lagged products of one chunk.

    Shapes use C = couples in the chunk and K = maxlag.
    ``a_full[c, h]``: sum over u in [h, N-1] of d[u] d[u-h];  (C, K+1)
    ``a_head[c, h, s]``: sum over u in [h, s-1] of d[u] d[u-h] (0 when s <= h);  (C, K+1, K+1)
    ``a_tail[c, h, i]``: sum over u in [N-i, N-1] of d[u] d[u-h];  (C, K+1, K+1)
    ``b_full``, ``b_head``: the same for e[u] d[u-h];
    ``ee_full[c]``, ``ee_head[c, s]``: the same for e[u] ** 2.
    """

    a_full: np.ndarray
    a_head: np.ndarray
    a_tail: np.ndarray
    b_full: np.ndarray
    b_head: np.ndarray
    ee_full: np.ndarray
    ee_head: np.ndarray


def _edges(e: np.ndarray, d: np.ndarray, maxlag: int) -> _Edges:
    """Lagged-product sums for residuals ``e`` (C, T) and their differences ``d`` (C, T-1).

    Cost: 2 (K + 1) dot products of length N per couple, the only O(N K) work of the ADF
    step; everything after it is O(K^2) or O(K^3) per couple.
    """
    c, n = d.shape
    k1 = maxlag + 1
    lev = e[:, :n]  # e_m for m = 0..N-1, the lagged level paired with d[m]
    a_full = np.empty((c, k1))
    b_full = np.empty((c, k1))
    a_head = np.zeros((c, k1, k1))
    a_tail = np.zeros((c, k1, k1))
    b_head = np.zeros((c, k1, k1))
    for h in range(k1):
        a_full[:, h] = np.einsum("ij,ij->i", d[:, h:], d[:, : n - h])
        b_full[:, h] = np.einsum("ij,ij->i", lev[:, h:], d[:, : n - h])
        if h < maxlag:  # head: u in [h, maxlag - 1]
            a_head[:, h, h + 1 :] = np.cumsum(d[:, h:maxlag] * d[:, : maxlag - h], axis=1)
            b_head[:, h, h + 1 :] = np.cumsum(lev[:, h:maxlag] * d[:, : maxlag - h], axis=1)
        if maxlag:  # tail: u in [N - i, N - 1] for i in 1..maxlag
            prod = d[:, n - maxlag :] * d[:, n - maxlag - h : n - h]
            a_tail[:, h, 1:] = np.cumsum(prod[:, ::-1], axis=1)
    ee_full = np.einsum("ij,ij->i", lev, lev)
    ee_head = np.zeros((c, k1))
    if maxlag:
        ee_head[:, 1:] = np.cumsum(lev[:, :maxlag] ** 2, axis=1)
    return _Edges(a_full, a_head, a_tail, b_full, b_head, ee_full, ee_head)


def _gram(
    ed: _Edges, start: np.ndarray | int, maxlag: int, *, level_last: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gram matrix of the ADF regressors over the sample m in [start, N-1], per couple.

    Regressors are ``[e_m, d[m-1], ..., d[m-maxlag]]`` (``level_last`` puts ``e_m`` after
    the lagged differences) and the response is ``d[m]``. ``start`` is one int or one per
    couple (C,); it must be >= every lag later used (entries for longer lags are garbage
    and must be masked by the caller). Returns ``G`` (C, K+1, K+1), ``g = X'y`` (C, K+1)
    and ``y'y`` (C,).
    """
    k1 = maxlag + 1
    c = ed.a_full.shape[0]
    lags = np.arange(1, k1)
    lo = np.minimum.outer(lags, lags)
    hh = np.abs(np.subtract.outer(lags, lags))
    flat = k1 * k1
    a_head = ed.a_head.reshape(c, flat)
    # Windowed sums over m in [s, N-1] are full sums minus head sums: a_head[c, h, s].
    s_col = np.broadcast_to(np.asarray(start, dtype=np.int64), (c,))[:, None]
    head_s = np.arange(k1)[None, :] * k1 + s_col  # (C, K+1) flat index of (h, s)
    a_win = ed.a_full - np.take_along_axis(a_head, head_s, axis=1)
    b_win = ed.b_full - np.take_along_axis(ed.b_head.reshape(c, flat), head_s, axis=1)
    ee_win = ed.ee_full - np.take_along_axis(ed.ee_head, s_col, axis=1)[:, 0]
    # d-d block: sum_{m=s}^{N-1} d[m-i] d[m-j] = sum over u in [s-i, N-1-i] of d[u] d[u-h],
    # with i = min(i, j) and h = |i - j|: full sum - head(s - i) - tail(i).
    head_idx = (hh * k1)[None] + np.clip(s_col[:, :, None] - lo[None], 0, maxlag)
    head = np.take_along_axis(a_head, head_idx.reshape(c, -1), axis=1).reshape(c, maxlag, maxlag)
    tail = ed.a_tail.reshape(c, flat)[:, (hh * k1 + lo).ravel()].reshape(c, maxlag, maxlag)
    dd = ed.a_full[:, hh] - head - tail
    gm = np.empty((c, k1, k1))
    g = np.empty((c, k1))
    lv, dl = (maxlag, slice(0, maxlag)) if level_last else (0, slice(1, k1))
    gm[:, lv, lv] = ee_win
    gm[:, lv, dl] = b_win[:, 1:]
    gm[:, dl, lv] = b_win[:, 1:]
    gm[:, dl, dl] = dd
    g[:, lv] = b_win[:, 0]
    g[:, dl] = a_win[:, 1:]
    return gm, g, a_win[:, 0]


def _chol_solve(gm: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``w = L^-1 g`` with ``G = L L'`` per couple; NaN rows where G is not positive definite.

    A singular Gram matrix means a degenerate residual (e.g. two coins that are the same
    series); those couples get NaN statistics and are never selected.
    """
    try:
        return np.linalg.solve(np.linalg.cholesky(gm), g[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        out = np.full(g.shape, np.nan)
        for i in range(gm.shape[0]):
            try:
                out[i] = np.linalg.solve(np.linalg.cholesky(gm[i]), g[i])
            except np.linalg.LinAlgError:
                continue
        return out


def _adf_autolag(
    ed: _Edges, n: int, maxlag: int, autolag: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """ADF t-statistic (no constant) and chosen lag per couple, from the lagged sums.

    ``n`` is the number of differences (T - 1).
    """
    c = ed.a_full.shape[0]
    k1 = maxlag + 1
    if autolag is None:
        best = np.full(c, maxlag, dtype=np.int64)
    else:
        # Lag search on the common sample m in [maxlag, N-1], as statsmodels does, so the
        # information criteria are comparable across lags. The fit with the first k
        # regressors has SSR = y'y - |w[:k]|^2 with w = L^-1 X'y and L the Cholesky
        # factor of the whole Gram matrix: one factorisation serves every lag.
        gm, g, yy = _gram(ed, maxlag, maxlag)
        w = _chol_solve(gm, g)
        ssr = yy[:, None] - np.cumsum(w**2, axis=1)
        nobs = n - maxlag
        k = np.arange(1, k1 + 1)
        penalty = 2.0 * k if autolag == "aic" else np.log(nobs) * k
        with np.errstate(divide="ignore", invalid="ignore"):
            ic = nobs * np.log(ssr / nobs) + penalty
        # argmin returns the first minimum: statsmodels' min over (ic, lag) tuples also
        # prefers the shorter lag on an exact tie.
        best = np.argmin(np.where(np.isfinite(ic), ic, np.inf), axis=1).astype(np.int64)
        best[~np.isfinite(ic).any(axis=1)] = 0
    # Final regression with the chosen lag on its own (longer) sample m in [lag, N-1].
    # Columns beyond the chosen lag are replaced by independent unit columns, and the
    # level regressor is moved last: its t-statistic is then w_last / sigma.
    gm, g, yy = _gram(ed, best, maxlag, level_last=True)
    used = np.ones((c, k1), dtype=bool)
    used[:, :-1] = np.arange(1, k1)[None, :] <= best[:, None]
    gm = np.where(used[:, :, None] & used[:, None, :], gm, 0.0)
    diag = np.arange(k1)
    gm[:, diag, diag] = np.where(used, gm[:, diag, diag], 1.0)
    g = np.where(used, g, 0.0)
    w = _chol_solve(gm, g)
    ssr = yy - np.einsum("ci,ci->c", w, w)
    dof = (n - best) - (best + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = w[:, -1] / np.sqrt(ssr / dof)
    return tstat, best


# --- The batch engine: coin-level sums, combined per couple --------------------------------


@dataclass(frozen=True)
class _PanelSums:
    """Coin-level lagged cross-products that every couple's full sums are combined from,
    laid out for :func:`statarb.core.adf_kernel.couple_adf` (a couple's K+1 numbers contiguous).

    With P the centred log prices (T, k), dP their differences (N = T-1 rows), K = maxlag
    and ``A_ij[h] = sum over u in [h, N-1] of dP_i[u] dP_j[u-h]``:
    ``adiag[i, h]``: A_ii[h];  (k, K+1)
    ``asum[i, j, h]``: A_ij[h] + A_ji[h];  (k, k, K+1)
    ``b_sym[i, j]``: B_ij + B_ji, where B_ij = sum over m in [0, N-1] of P_i[m] dP_j[m]
    (the level row m paired with the difference d[m], as in :func:`_edges`);  (k, k)
    ``b_diag[i]``: B_ii;  (k,)
    ``cov``: P'P over all T rows (the OLS step's unnormalised covariance);  (k, k)
    """

    adiag: np.ndarray
    asum: np.ndarray
    b_sym: np.ndarray
    b_diag: np.ndarray
    cov: np.ndarray

    @classmethod
    def from_products(cls, a: np.ndarray, b: np.ndarray, cov: np.ndarray) -> _PanelSums:
        """From ``a[h, i, j] = A_ij[h]`` (K+1, k, k), ``b[i, j] = B_ij`` and ``cov``."""
        asum = np.ascontiguousarray((a + a.transpose(0, 2, 1)).transpose(1, 2, 0))
        adiag = np.ascontiguousarray(np.einsum("hii->ih", a))
        return cls(adiag, asum, b + b.T, np.diag(b).copy(), np.ascontiguousarray(cov))


def _panel_sums(centred: np.ndarray, cov: np.ndarray, maxlag: int) -> _PanelSums:
    """The coin-level sums: K+2 matrix products of the panel, at BLAS speed.

    A couple's residual is linear in its two coins (e = Y - beta X, d = dY - beta dX), so
    each of its full lagged sums is a quadratic form in beta of these k x k matrices: the
    products cost 2 (K+2) k^2 N flops once, where the per-couple path spends 4 (K+1) N per
    couple in scattered dot products. The level-times-lagged-difference sums for h >= 1
    need no product: they follow per couple from the h = 0 one (``e[u+1] = e[u] + d[u]``).
    """
    d_p = np.diff(centred, axis=0)
    n, k = d_p.shape
    a = np.empty((maxlag + 1, k, k))
    for h in range(maxlag + 1):
        np.matmul(d_p[h:].T, d_p[: n - h], out=a[h])
    return _PanelSums.from_products(a, centred[:n].T @ d_p, cov)


# Largest cancellation accepted in a combined sum: the sum of the terms' magnitudes over
# the result. The combination loses about log10 of it in digits (1e4: ~4 of 16, so sums
# good to ~1e-12); beyond it (near-collinear couples, never the real data, whose largest
# is ~1e3) the couple's full sums are recomputed from its own residual, as _edges does.
_CANCELLATION_LIMIT = 1e4


def _ordered_couples(n: int) -> tuple[np.ndarray, np.ndarray]:
    yi, xi = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = yi != xi
    return yi[keep], xi[keep]


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """The engine's worker threads, started once: the kernels release the GIL (numpy's
    and the compiled one), so chunks of couples run in parallel. A walk-forward calls the
    engine hundreds of times; starting threads for each call cost it ~1 ms a call."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, 4)),
                                   thread_name_prefix="statarb-eg")
    return _POOL


def _chunks(total: int, size: int) -> Iterator[slice]:
    for lo in range(0, total, size):
        yield slice(lo, min(lo + size, total))


def _validate(log_prices: pd.DataFrame, maxlag: int | None, autolag: str | None) -> int:
    if not isinstance(log_prices, pd.DataFrame):
        raise TypeError(f"log_prices must be a pandas DataFrame, got {type(log_prices).__name__}")
    if autolag not in _AUTOLAG_CHOICES:
        raise ValueError(f"autolag={autolag!r} is not supported; use one of {_AUTOLAG_CHOICES}")
    if log_prices.shape[1] < 2:
        raise ValueError(
            f"need at least two coins (columns) to form a couple, got {log_prices.shape[1]}"
        )
    if not log_prices.columns.is_unique:
        dup = log_prices.columns[log_prices.columns.duplicated()].tolist()
        raise ValueError(f"coin columns must be unique, duplicated: {dup}")
    values = log_prices.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        cols = log_prices.columns[bad.any(axis=0)].tolist()
        raise ValueError(
            f"log_prices has NaN or infinite values in {cols}; drop or fill them first "
            "(the engine never fills gaps silently)"
        )
    nobs = values.shape[0]
    limit = nobs // 2 - 1
    if maxlag is None:
        maxlag = default_maxlag(nobs)
    elif not 0 <= maxlag <= limit:
        raise ValueError(
            f"maxlag={maxlag} is not allowed for a window of {nobs} candles; "
            f"it must be between 0 and nobs // 2 - 1 = {limit}"
        )
    if nobs < 2 * (maxlag + 2) + 2 or nobs < 20:
        raise ValueError(f"window of {nobs} candles is too short (need at least 20)")
    constant = values.max(axis=0) == values.min(axis=0)
    if constant.any():
        raise ValueError(
            f"constant price series in {log_prices.columns[constant].tolist()}: "
            "cannot test cointegration"
        )
    return maxlag


def _crossings(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total and mean crossings of residuals ``e`` (C, T): the only statistics that need
    every point of a couple's residual."""
    total = e.sum(axis=1)
    above = e > (total / e.shape[1])[:, None]
    return total, np.count_nonzero(above[:, 1:] != above[:, :-1], axis=1)


def _moments(
    total: np.ndarray, first: np.ndarray, last: np.ndarray, ee: np.ndarray, b0: np.ndarray,
    t_len: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spread mean, std (ddof 1) and AR(1) lambda of residuals with these totals and end
    points, from sums the ADF step already has (``b0`` = sum e_m d[m] and ``ee`` = sum
    e_m^2, m < T-1)."""
    mean = total / t_len
    sq = ee + last**2
    std = np.sqrt(np.maximum(sq - t_len * mean**2, 0.0) / (t_len - 1))
    # AR(1) with intercept, d e_t = c + lambda * e_{t-1}: lambda = cov(e_lag, d) / var(e_lag)
    n = t_len - 1
    lev_mean = (total - last) / n
    d_mean = (last - first) / n
    cov_ld = b0 - n * lev_mean * d_mean
    var_l = ee - n * lev_mean**2
    with np.errstate(divide="ignore", invalid="ignore"):  # zero residual: NaN
        lam = cov_ld / var_l
    return mean, std, lam


@dataclass(frozen=True)
class _Window:
    """A formation window in the form the engine reads: what every couple's OLS step and
    residual come from. ``rows`` (k, T) are the centred log prices, one coin per row
    (each couple's series contiguous); ``means`` the coins' mean log prices; ``cov`` the
    unnormalised covariance of the levels over all T rows, ``rcov`` that of the one-candle
    returns (N = T - 1 rows)."""

    names: np.ndarray
    means: np.ndarray
    rows: np.ndarray
    cov: np.ndarray
    rcov: np.ndarray

    @classmethod
    def of(cls, log_prices: pd.DataFrame) -> _Window:
        p = log_prices.to_numpy(dtype=np.float64)
        means = p.mean(axis=0)
        centred = p - means
        rets = np.diff(p, axis=0)
        rets -= rets.mean(axis=0)
        return cls(np.asarray(log_prices.columns, dtype=object), means,
                   np.ascontiguousarray(centred.T), centred.T @ centred, rets.T @ rets)


def _scan(
    log_prices: pd.DataFrame,
    maxlag: int | None,
    autolag: str | None,
    chunk_size: int,
    *,
    batch: bool,
    crossings: bool = True,
) -> pd.DataFrame:
    """Every ordered couple of the panel, by the batch engine or (``batch=False``) the
    per-couple reference path. Both share the OLS step, the moments and the p-values."""
    maxlag = _validate(log_prices, maxlag, autolag)
    win = _Window.of(log_prices)
    sums = _panel_sums(np.ascontiguousarray(win.rows.T), win.cov, maxlag) if batch else None
    return _table(win, sums, maxlag, autolag, chunk_size, crossings=crossings)


def _table(
    win: _Window,
    sums: _PanelSums | None,
    maxlag: int,
    autolag: str | None,
    chunk_size: int,
    *,
    crossings: bool = True,
    prune: float | None = None,
) -> pd.DataFrame:
    """The result frame of :func:`engle_granger` for a prepared window: from the
    coin-level ``sums`` by the compiled kernel, or (``sums=None``) by the per-couple
    reference path (which always counts crossings).

    ``prune`` (kernel only): test each couple's orientation y < x (panel order) first, and
    its other orientation only where the first one's p-value is at most ``prune``; the
    rows left untested have NaN statistics and ``lag`` -1. For a selection that judges a
    couple on the larger p-value of its two orientations with a threshold at most
    ``prune``, nothing left untested could change a verdict (see
    :class:`statarb.core.sliding.SlidingScan`); it halves the work on a universe of mostly
    unrelated coins.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    rows, cov, means = win.rows, win.cov, win.means
    n_coins, t_len = rows.shape
    var = np.diag(cov)
    rvar = np.diag(win.rcov)

    yi, xi = _ordered_couples(n_coins)
    beta = cov[yi, xi] / var[xi]
    alpha = means[yi] - beta * means[xi]
    corr = cov[yi, xi] / np.sqrt(var[yi] * var[xi])
    ret_corr = win.rcov[yi, xi] / np.sqrt(rvar[yi] * rvar[xi])
    r2 = corr**2
    collinear = r2 >= _COLLINEAR_R2

    m = yi.shape[0]
    tstat = np.full(m, np.nan)
    lag = np.full(m, -1, dtype=np.int64)
    lam = np.full(m, np.nan)
    spread_mean = np.full(m, np.nan)
    spread_std = np.full(m, np.nan)
    cross = np.full(m, -1, dtype=np.int64)
    csum = rows.sum(axis=1)
    code = AUTOLAG_CODES[autolag]

    def run(sl: slice, at: np.ndarray) -> None:
        idx = at[sl]
        yc, xc, bc = yi[idx], xi[idx], beta[idx]
        c = idx.shape[0]
        if sums is None:  # the reference: whole residuals, sums per couple
            e = rows[xc]
            e *= bc[:, None]
            np.subtract(rows[yc], e, out=e)
            ed = _edges(e, np.diff(e, axis=1), maxlag)
            ts, lg = _adf_autolag(ed, t_len - 1, maxlag, autolag)
            total, cr = _crossings(e)
            first, last, ee, b0 = e[:, 0], e[:, -1], ed.ee_full, ed.b_full[:, 0]
        else:
            ts, b0, ee, first, last, total = (np.empty(c) for _ in range(6))
            lg, cr = np.empty(c, dtype=np.int64), np.empty(c, dtype=np.int64)
            couple_adf(
                rows, sums.adiag, sums.asum, sums.b_diag, sums.b_sym, sums.cov, csum,
                yc, xc, bc, maxlag, code, _CANCELLATION_LIMIT, crossings,
                ts, lg, b0, ee, first, last, total, cr,
            )
        tstat[idx], lag[idx], cross[idx] = ts, lg, cr
        spread_mean[idx], spread_std[idx], lam[idx] = _moments(total, first, last, ee, b0,
                                                               t_len)

    def run_all(at: np.ndarray) -> None:
        parts = list(_chunks(at.shape[0], chunk_size))
        if len(parts) == 1:  # a small panel: no thread hand-off
            run(parts[0], at)
        else:
            list(_pool().map(lambda sl: run(sl, at), parts))

    if prune is None or sums is None:
        run_all(np.arange(m))
    else:
        forward = np.flatnonzero(yi < xi)
        run_all(forward)
        p_first = mackinnon_pvalue(np.where(collinear[forward], -np.inf, tstat[forward]))
        keep = p_first <= prune
        # Row of (x, y) for a couple (y, x): rows are every ordered couple, y-major.
        fy, fx = yi[forward[keep]], xi[forward[keep]]
        run_all(fx * (n_coins - 1) + fy - (fy > fx))

    tstat = np.where(collinear & (lag >= 0), -np.inf, tstat)
    pvalue = mackinnon_pvalue(tstat, n_vars=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        # lambda >= 0: no pull back to the mean (inf); lambda <= -1: the fit overshoots,
        # the AR(1) half-life is undefined (NaN) and filters reject it.
        reverting = -np.log(2.0) / np.log1p(np.clip(lam, -1 + 1e-15, -1e-300))
        half_life = np.where(lam >= 0, np.inf, np.where(lam > -1, reverting, np.nan))
    # Coin names as one string array gathered by code: ~10x faster than building the
    # columns from per-couple Python strings.
    names = pd.array(win.names.astype(str), dtype="str")
    return pd.DataFrame(
        {
            "y": names.take(yi),
            "x": names.take(xi),
            "alpha": alpha,
            "beta": beta,
            "tstat": tstat,
            "pvalue": pvalue,
            "lag": lag,
            "nobs": np.full(m, t_len, dtype=np.int64),
            "half_life": half_life,
            "ar_lambda": lam,
            "corr": corr,
            "ret_corr": ret_corr,
            "r2": r2,
            "spread_mean": spread_mean,
            "spread_std": spread_std,
            "crossings": cross,
        }
    )


def engle_granger(
    log_prices: pd.DataFrame,
    *,
    maxlag: int | None = None,
    autolag: str | None = "aic",
    chunk_size: int = 2048,
    crossings: bool = True,
) -> pd.DataFrame:
    """Engle-Granger test of every ordered couple (y, x) of a log-price panel.

    ``log_prices`` has one row per candle (oldest first) and one column per coin, holding
    log prices with no gaps. For each ordered couple the result equals
    ``statsmodels.tsa.stattools.coint(log y, log x, trend="c", autolag=autolag,
    maxlag=maxlag)`` for ``tstat``, ``pvalue`` and the ADF ``lag``; ``maxlag=None`` uses the
    same Schwert rule as statsmodels. ``autolag`` is ``"aic"`` (default), ``"bic"`` or
    ``None`` (use exactly ``maxlag`` lags).

    Returns one row per ordered couple, columns described in :data:`RESULT_COLUMNS`.
    ``crossings=False`` leaves the mean crossings uncounted (-1): they are the one
    statistic that needs every point of every residual, and selection counts them only
    for the couples that pass its other filters (:func:`count_crossings`).
    ``chunk_size`` bounds memory: couples are processed that many at a time, and the
    coin-level sums, 2 (maxlag + 1) k^2 floats for k coins (100 MB for 500 coins), are
    held for the whole call.
    """
    return _scan(log_prices, maxlag, autolag, chunk_size, batch=True, crossings=crossings)


def count_crossings(log_prices: pd.DataFrame, couples: pd.DataFrame) -> np.ndarray:
    """Mean crossings of the spread of each couple (``y``, ``x``, ``beta``) over the window
    ``log_prices``: the ``crossings`` column of :func:`engle_granger`, for the couples
    given (the same residual, centred log y minus beta times centred log x, and the same
    count of the points where it changes side of its mean)."""
    if couples.empty:
        return np.zeros(0, dtype=np.int64)
    cols = {c: i for i, c in enumerate(log_prices.columns)}
    missing = sorted({*couples["y"], *couples["x"]} - set(cols))
    if missing:
        raise ValueError(f"couples name coins that are not in the window: {missing}")
    p = log_prices.to_numpy(dtype=np.float64)
    rows = (p - p.mean(axis=0)).T
    yc = np.fromiter((cols[c] for c in couples["y"]), dtype=np.intp, count=len(couples))
    xc = np.fromiter((cols[c] for c in couples["x"]), dtype=np.intp, count=len(couples))
    e = rows[yc] - couples["beta"].to_numpy(dtype=np.float64)[:, None] * rows[xc]
    return _crossings(e)[1]


def _engle_granger_reference(
    log_prices: pd.DataFrame,
    *,
    maxlag: int | None = None,
    autolag: str | None = "aic",
    chunk_size: int = 512,
) -> pd.DataFrame:
    """:func:`engle_granger` by the per-couple reference path (:func:`_edges`,
    :func:`_adf_autolag`): the engine as it was before the coin-level sums, for the parity
    tests and the benchmark. Same arguments and result columns; several times slower."""
    return _scan(log_prices, maxlag, autolag, chunk_size, batch=False)

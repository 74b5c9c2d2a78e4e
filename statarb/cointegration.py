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

import itertools
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from math import isqrt

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular
from scipy.stats import norm
from statsmodels.tsa import adfvalues

__all__ = ["RESULT_COLUMNS", "default_maxlag", "engle_granger", "mackinnon_pvalue"]

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
    "crossings": "number of times the spread crosses its mean in the window (count)",
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
    """Coin-level lagged cross-products that every couple's full sums are combined from.

    With P the centred log prices (T, k), dP their differences (N = T-1 rows) and
    K = maxlag:
    ``a[h, i, j]``: A_ij[h] = sum over u in [h, N-1] of dP_i[u] dP_j[u-h];  (K+1, k, k)
    ``a_diag[h, i]``: A_ii[h];  (K+1, k)
    ``b_sym[i, j]``: B_ij + B_ji, where B_ij = sum over m in [0, N-1] of P_i[m] dP_j[m]
    (the level row m paired with the difference d[m], as in :func:`_edges`);  (k, k)
    ``b_diag[i]``: B_ii;  (k,)
    ``cov``: P'P over all T rows (the OLS step's unnormalised covariance);  (k, k)
    """

    a: np.ndarray
    a_diag: np.ndarray
    b_sym: np.ndarray
    b_diag: np.ndarray
    cov: np.ndarray


def _panel_sums(centred: np.ndarray, cov: np.ndarray, maxlag: int) -> _PanelSums:
    """The coin-level sums: K+2 matrix products of the panel, at BLAS speed.

    A couple's residual is linear in its two coins (e = Y - beta X, d = dY - beta dX), so
    each of its full lagged sums is a quadratic form in beta of these k x k matrices: the
    products cost 2 (K+2) k^2 N flops once, where the per-couple path spends 4 (K+1) N per
    couple in scattered dot products. The level-times-lagged-difference sums for h >= 1
    need no product: they follow per couple from the h = 0 one (see :func:`_couple_sums`).
    """
    d_p = np.diff(centred, axis=0)
    n, k = d_p.shape
    a = np.empty((maxlag + 1, k, k))
    for h in range(maxlag + 1):
        np.matmul(d_p[h:].T, d_p[: n - h], out=a[h])
    b = centred[:n].T @ d_p
    return _PanelSums(a, np.einsum("hii->hi", a).copy(), b + b.T, np.diag(b).copy(), cov)


@cache
def _sum_layout(maxlag: int) -> dict[str, int]:
    """Row offsets of a chunk's sums in one (width, C) buffer (see :func:`_couple_sums`).

    One row per sum and one column per couple, so every step below works on contiguous
    rows of C numbers and a Gram entry is one row gather. Tables are row-major in
    (t, h): ``a_head + t * (K+1) + h`` holds the head sum of lag h up to t (an
    :class:`_Edges` ``a_head[c, h, t]``), ``a_tail + i * (K+1) + h`` the last-i-terms sum.
    Only the entries a Gram matrix reads are ever written (head: h <= t, tail:
    i + h <= K); the others, and the ``zero`` row, stay as the buffer was zeroed.
    """
    k1 = maxlag + 1
    sq = k1 * k1
    offsets: dict[str, int] = {}
    pos = 0
    for name, size in (
        ("a_full", k1), ("b_full", k1), ("ee_full", 1), ("zero", 1),
        ("a_head", sq), ("b_head", sq), ("ee_head", k1), ("a_tail", sq),
    ):  # fmt: skip
        offsets[name] = pos
        pos += size
    offsets["width"] = pos
    return offsets


# Largest cancellation accepted in a combined sum: the sum of the terms' magnitudes over
# the result. The combination loses about log10 of it in digits (1e4: ~4 of 16, so sums
# good to ~1e-12); beyond it (near-collinear couples, never the real data, whose largest
# is ~1e3) the couple's full sums are recomputed from its own residual, as _edges does.
_CANCELLATION_LIMIT = 1e4


def _couple_sums(
    ps: _PanelSums,
    rows: np.ndarray,
    yc: np.ndarray,
    xc: np.ndarray,
    bc: np.ndarray,
    head: np.ndarray,
    tail: np.ndarray,
    maxlag: int,
    buf: np.ndarray,
) -> _Edges:
    """The lagged sums of a chunk of couples, combined from the coin-level sums.

    ``rows`` (k, T): the centred log prices; ``yc``, ``xc``, ``bc``: the chunk's coin
    indices and hedge ratios; ``head`` (C, K+1) and ``tail`` (C, 2K+1): the first and last
    points of its residuals e[0..T-1], all of the residuals this needs unless a couple's
    combination cancels more than ``_CANCELLATION_LIMIT`` (then that couple's full sums
    come from its whole residual). The sums are written to ``buf`` (width, C), laid out by
    :func:`_sum_layout`, which :func:`_adf` gathers its Gram matrices from; it must be
    zeroed once (entries no Gram matrix reads are never written, so a buffer can be reused
    for chunk after chunk). Returns the same sums as :class:`_Edges` views, equal to
    :func:`_edges` to rounding wherever a Gram matrix reads them:

    * full sums: a_full[h] = A_yy[h] - beta (A_yx[h] + A_xy[h]) + beta^2 A_xx[h];
      b_full[0] likewise from B; ee_full from the covariance matrix minus the last level
      (the level rows are m in [0, N-1]). No centring term is needed: P is the centred
      panel, the very numbers the residual is formed from.
    * b_full[h+1] = b_full[h] + a_full[h] - e[N] d[N-1-h], from e[u+1] = e[u] + d[u]:
      K more sums for O(K) work instead of K more matrix products.
    * head and tail partial sums (O(K^2) per couple), accumulated in the same order as
      :func:`_edges` from the couple's own first and last points.
    """
    c = head.shape[0]
    k1 = maxlag + 1
    lay = _sum_layout(maxlag)

    def table(name: str, *shape: int) -> np.ndarray:
        lo = lay[name]
        return buf[lo : lo + int(np.prod(shape))].reshape(*shape, c)

    a_full, b_full = table("a_full", k1), table("b_full", k1)
    a_head, b_head = table("a_head", k1, k1), table("b_head", k1, k1)
    a_tail, ee_head = table("a_tail", k1, k1), table("ee_head", k1)
    ee_full = buf[lay["ee_full"]]

    size = np.abs(bc)
    # A_yx + A_xy: two gathers per couple cost less than symmetrising k x k matrices.
    a_y, a_yx, a_x = ps.a_diag[:, yc], ps.a[:, yc, xc] + ps.a[:, xc, yc], ps.a_diag[:, xc]
    a_full[:] = a_y - bc * a_yx + bc**2 * a_x
    last = tail[:, -1]
    b_y, b_yx, b_x = ps.b_diag[yc], ps.b_sym[yc, xc], ps.b_diag[xc]
    b_full[0] = b_y - bc * b_yx + bc**2 * b_x
    c_y, c_yx, c_x = ps.cov[yc, yc], ps.cov[yc, xc], ps.cov[xc, xc]
    ee_all = c_y - 2.0 * bc * c_yx + bc**2 * c_x
    ee_full[:] = ee_all - last**2
    with np.errstate(divide="ignore", invalid="ignore"):
        cancel = np.maximum.reduce(
            [
                (a_y[0] + size * np.abs(a_yx[0]) + bc**2 * a_x[0]) / np.abs(a_full[0]),
                (np.abs(b_y) + size * np.abs(b_yx) + bc**2 * np.abs(b_x)) / np.abs(b_full[0]),
                (c_y + 2.0 * size * np.abs(c_yx) + bc**2 * c_x) / np.abs(ee_all),
            ]
        )
    exact = np.flatnonzero(~(cancel <= _CANCELLATION_LIMIT))  # NaN (0 / 0) included

    lev = np.ascontiguousarray(head[:, :maxlag].T)  # e[0..K-1]
    d_head = np.diff(head, axis=1).T.copy()  # d[0..K-1]
    d_tail = np.diff(tail, axis=1).T.copy()  # d[N-2K..N-1]
    for t in range(maxlag):
        # Head sums up to t+1: add the term u = t of every lag h <= t (d[u-h], h = 0..t).
        lagged = d_head[t::-1]
        np.add(a_head[t, : t + 1], d_head[t] * lagged, out=a_head[t + 1, : t + 1])
        np.add(b_head[t, : t + 1], lev[t] * lagged, out=b_head[t + 1, : t + 1])
        np.add(ee_head[t], lev[t] ** 2, out=ee_head[t + 1])
        # Tail sums of the last t+1 terms: add u = N-1-t for the lags read with them
        # (d[u-h], h = 0..K-t-1: a Gram entry with tail length i has lag h <= K - i).
        u = 2 * maxlag - 1 - t  # d[N-1-t] in d_tail
        top = maxlag - t
        np.add(
            a_tail[t, :top], d_tail[u] * d_tail[u - top + 1 : u + 1][::-1], out=a_tail[t + 1, :top]
        )
        np.add(b_full[t], a_full[t] - last * d_tail[u], out=b_full[t + 1])
    if exact.size:
        e = rows[yc[exact]] - bc[exact, None] * rows[xc[exact]]
        ref = _edges(e, np.diff(e, axis=1), maxlag)
        a_full[:, exact], b_full[:, exact], ee_full[exact] = ref.a_full.T, ref.b_full.T, ref.ee_full
    return _Edges(
        a_full.T,
        a_head.transpose(2, 1, 0),
        a_tail.transpose(2, 1, 0),
        b_full.T,
        b_head.transpose(2, 1, 0),
        ee_full,
        ee_head.T,
    )


@cache
def _gram_index(maxlag: int, start: int, lags: int, level_last: bool) -> np.ndarray:
    """Where each entry of a bordered ADF Gram matrix comes from in the sums buffer.

    The matrix is that of the columns ``[e_m, d[m-1], ..., d[m-lags]]`` (``level_last``
    puts ``e_m`` after the lagged differences) bordered by the response ``d[m]`` as the
    last column, over the sample m in [start, N-1] (start >= lags). Returns (3, q*q) row
    indices (q = lags + 2) into the :func:`_sum_layout` buffer: entry = full - head - tail,
    the windowed sums :func:`_gram` reads (an absent term points at the zero row).
    """
    lay = _sum_layout(maxlag)
    k1 = maxlag + 1
    lagged: list[int | None] = list(range(1, lags + 1))  # None: the level e_m
    cols = [*lagged, None, 0] if level_last else [None, *lagged, 0]  # 0: the response
    q = len(cols)
    idx = np.full((3, q, q), lay["zero"], dtype=np.intp)
    for r, ci in enumerate(cols):
        for s, cj in enumerate(cols):
            if ci is None and cj is None:
                idx[0, r, s] = lay["ee_full"]
                idx[1, r, s] = lay["ee_head"] + start
            elif ci is None or cj is None:
                i = cj if ci is None else ci
                idx[0, r, s] = lay["b_full"] + i
                idx[1, r, s] = lay["b_head"] + start * k1 + i
            else:
                h, lo = abs(ci - cj), min(ci, cj)
                idx[0, r, s] = lay["a_full"] + h
                idx[1, r, s] = lay["a_head"] + (start - lo) * k1 + h
                idx[2, r, s] = lay["a_tail"] + lo * k1 + h
    return idx.reshape(3, q * q)


def _forward_solve(m: np.ndarray) -> np.ndarray:
    """``w = L^-1 g`` for ``G = L L'`` per couple, where ``m = [[G, g], [g', y'y]]``.

    The last row of the Cholesky factor of the bordered matrix is ``[w', sqrt(y'y - w'w)]``,
    so one batched factorisation gives every nested fit's residual sum of squares with no
    separate triangular solve. Matrices that are not positive definite are redone alone:
    the border can fail on its own (a perfect fit) while G is fine, and a singular G (a
    degenerate residual) gives a NaN row, as in :func:`_chol_solve`.
    """
    try:
        return np.linalg.cholesky(m)[:, -1, :-1]
    except np.linalg.LinAlgError:
        out = np.full((m.shape[0], m.shape[1] - 1), np.nan)
        for i in range(m.shape[0]):
            try:
                out[i] = np.linalg.cholesky(m[i])[-1, :-1]
                continue
            except np.linalg.LinAlgError:
                pass
            try:
                low = np.linalg.cholesky(m[i, :-1, :-1])
            except np.linalg.LinAlgError:
                continue
            out[i] = solve_triangular(low, m[i, -1, :-1], lower=True)
        return out


# Gram entries per batched factorisation: the (q*q, block) Gram rows (0.7 MB: 128 couples
# at K = 24, every couple of a small lag's group at once) stay in a core's L2 cache while
# numpy copies each matrix out for LAPACK, and the calls stay few.
_FACTOR_ENTRIES = 26 * 26 * 128


@cache
def _lower(q: int) -> np.ndarray:
    """Flat indices of the lower triangle (diagonal included) of a q x q matrix."""
    r, s = np.tril_indices(q)
    return r * q + s


def _solve_gram(
    buf: np.ndarray, idx: np.ndarray, cols: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``w`` (C', q-1) and ``y'y`` (C',) of the bordered Gram matrices ``idx`` of the
    couples ``cols`` (None: all), gathered and factorised in cache-sized blocks.

    Only the lower triangle is gathered: it is all the Cholesky factorisation (LAPACK's
    lower variant) and :func:`_forward_solve` read; the upper one stays zero.
    """
    width = buf.shape[1] if cols is None else cols.size
    q = isqrt(idx.shape[1])
    low = _lower(q)
    full, head, tail = idx[0, low], idx[1, low], idx[2, low]
    w = np.empty((width, q - 1))
    yy = np.empty(width)
    size = max(1, _FACTOR_ENTRIES // (q * q))
    gram = np.zeros((q * q, min(width, size)))
    for sl in _chunks(width, size):
        block = gram[:, : sl.stop - sl.start]
        if cols is None:
            block[low] = buf[full, sl] - buf[head, sl] - buf[tail, sl]
        else:
            pick = cols[sl][None, :]
            block[low] = (
                buf[full[:, None], pick] - buf[head[:, None], pick] - buf[tail[:, None], pick]
            )
        m = block.reshape(q, q, -1).transpose(2, 0, 1)
        w[sl] = _forward_solve(m)
        yy[sl] = m[:, -1, -1]
    return w, yy


def _adf(
    buf: np.ndarray, n: int, maxlag: int, autolag: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """ADF t-statistic (no constant) and chosen lag per couple: :func:`_adf_autolag`, faster.

    Same estimator and lag rule. The work per couple is one bordered Cholesky
    factorisation of size K+2 for the lag search and one of size lag+2 for the final
    regression (couples grouped by their chosen lag, small for most), where
    :func:`_adf_autolag` factorises and then LU-solves two (K+1) x (K+1) matrices.
    """
    c = buf.shape[1]
    k1 = maxlag + 1
    if autolag is None:
        best = np.full(c, maxlag, dtype=np.int64)
    else:
        # Lag search on the common sample m in [maxlag, N-1] (see _adf_autolag).
        w, yy = _solve_gram(buf, _gram_index(maxlag, maxlag, maxlag, False), None)
        ssr = yy[:, None] - np.cumsum(w**2, axis=1)
        nobs = n - maxlag
        k = np.arange(1, k1 + 1)
        penalty = 2.0 * k if autolag == "aic" else np.log(nobs) * k
        with np.errstate(divide="ignore", invalid="ignore"):
            ic = nobs * np.log(ssr / nobs) + penalty
        best = np.argmin(np.where(np.isfinite(ic), ic, np.inf), axis=1).astype(np.int64)
        best[~np.isfinite(ic).any(axis=1)] = 0
    # Final regression with the chosen lag on its own sample m in [lag, N-1], level last:
    # its t-statistic is w_last / sigma.
    tstat = np.empty(c)
    present = np.unique(best)
    for lag in present.tolist():
        cols = None if present.size == 1 else np.flatnonzero(best == lag)
        w, yy = _solve_gram(buf, _gram_index(maxlag, lag, lag, True), cols)
        ssr = yy - np.einsum("ci,ci->c", w, w)
        dof = (n - lag) - (lag + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = w[:, -1] / np.sqrt(ssr / dof)
        tstat[slice(None) if cols is None else cols] = t
    return tstat, best


def _ordered_couples(n: int) -> tuple[np.ndarray, np.ndarray]:
    yi, xi = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = yi != xi
    return yi[keep], xi[keep]


def _chunks(total: int, size: int) -> Iterator[slice]:
    for lo in range(0, total, size):
        yield slice(lo, min(lo + size, total))


def _blocks(keys: np.ndarray, size: int) -> Iterator[slice]:
    """Slices of at most ``size`` that never straddle a change of ``keys`` (sorted runs)."""
    edges = np.r_[0, np.flatnonzero(keys[1:] != keys[:-1]) + 1, keys.size]
    for lo, hi in itertools.pairwise(edges.tolist()):
        for sl in _chunks(hi - lo, size):
            yield slice(lo + sl.start, lo + sl.stop)


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
    total: np.ndarray, first: np.ndarray, last: np.ndarray, ed: _Edges, t_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spread mean, std (ddof 1) and AR(1) lambda of residuals with these totals and end
    points, from sums the ADF step already has (sum e_m d[m] and sum e_m^2, m < T-1)."""
    mean = total / t_len
    sq = ed.ee_full + last**2
    std = np.sqrt(np.maximum(sq - t_len * mean**2, 0.0) / (t_len - 1))
    # AR(1) with intercept, d e_t = c + lambda * e_{t-1}: lambda = cov(e_lag, d) / var(e_lag)
    n = t_len - 1
    lev_mean = (total - last) / n
    d_mean = (last - first) / n
    cov_ld = ed.b_full[:, 0] - n * lev_mean * d_mean
    var_l = ed.ee_full - n * lev_mean**2
    with np.errstate(divide="ignore", invalid="ignore"):  # zero residual: NaN
        lam = cov_ld / var_l
    return mean, std, lam


# Couples whose whole residuals are formed at once in the batch engine: 128 x 1440 points
# (1.5 MB) stay in cache, where a chunk's worth (tens of MB) costs several times more in
# memory traffic and fresh pages than the arithmetic.
_RESIDUAL_BLOCK = 128


def _scan(
    log_prices: pd.DataFrame,
    maxlag: int | None,
    autolag: str | None,
    chunk_size: int,
    *,
    batch: bool,
) -> pd.DataFrame:
    """Every ordered couple of the panel, by the batch engine or (``batch=False``) the
    per-couple reference path. Both share the OLS step, the moments and the p-values."""
    maxlag = _validate(log_prices, maxlag, autolag)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    names = np.asarray(log_prices.columns, dtype=object)
    p = log_prices.to_numpy(dtype=np.float64)
    t_len, n_coins = p.shape
    means = p.mean(axis=0)
    centred = p - means
    cov = centred.T @ centred  # unnormalised: only ratios are used
    var = np.diag(cov)
    rets = np.diff(p, axis=0)
    rets -= rets.mean(axis=0)
    rcov = rets.T @ rets
    rvar = np.diag(rcov)

    yi, xi = _ordered_couples(n_coins)
    beta = cov[yi, xi] / var[xi]
    alpha = means[yi] - beta * means[xi]
    corr = cov[yi, xi] / np.sqrt(var[yi] * var[xi])
    ret_corr = rcov[yi, xi] / np.sqrt(rvar[yi] * rvar[xi])
    r2 = corr**2

    m = yi.shape[0]
    tstat = np.empty(m)
    lag = np.empty(m, dtype=np.int64)
    lam = np.empty(m)
    spread_mean = np.empty(m)
    spread_std = np.empty(m)
    crossings = np.empty(m, dtype=np.int64)
    rows = np.ascontiguousarray(centred.T)  # (coins, T): each couple's series contiguous
    sums = _panel_sums(centred, cov, maxlag) if batch else None

    def residuals(yc: np.ndarray, xc: np.ndarray, bc: np.ndarray) -> np.ndarray:
        scaled = rows[xc]
        scaled *= bc[:, None]
        # e = Y - beta X; one y row broadcast when the block shares it (couples are
        # ordered by y), saving a gather of the whole block.
        level = rows[yc[0]] if yc[0] == yc[-1] else rows[yc]
        return np.subtract(level, scaled, out=scaled)

    workspaces = threading.local()  # each worker's zeroed sums buffer, reused per chunk

    def workspace(c: int) -> np.ndarray:
        buf = getattr(workspaces, "buf", None)
        if buf is None or buf.shape[1] < c:
            buf = workspaces.buf = np.zeros((_sum_layout(maxlag)["width"], c))
        return buf[:, :c]

    def run(sl: slice) -> None:
        yc, xc, bc = yi[sl], xi[sl], beta[sl]
        if sums is None:  # the reference: whole residuals, sums per couple
            e = residuals(yc, xc, bc)
            ed = _edges(e, np.diff(e, axis=1), maxlag)
            tstat[sl], lag[sl] = _adf_autolag(ed, t_len - 1, maxlag, autolag)
            total, crossings[sl] = _crossings(e)
            first, last = e[:, 0], e[:, -1]
        else:
            # Each residual is formed once, in cache-sized blocks, for its total, its
            # crossings and its first and last points; every other sum is combined.
            c = yc.shape[0]
            total = np.empty(c)
            head = np.empty((c, maxlag + 1))
            tail = np.empty((c, 2 * maxlag + 1))
            for blk in _blocks(yc, _RESIDUAL_BLOCK):
                e = residuals(yc[blk], xc[blk], bc[blk])
                total[blk], crossings[sl][blk] = _crossings(e)
                head[blk] = e[:, : maxlag + 1]
                tail[blk] = e[:, t_len - 1 - 2 * maxlag :]
            buf = workspace(c)
            ed = _couple_sums(sums, rows, yc, xc, bc, head, tail, maxlag, buf)
            tstat[sl], lag[sl] = _adf(buf, t_len - 1, maxlag, autolag)
            first, last = head[:, 0], tail[:, -1]
        spread_mean[sl], spread_std[sl], lam[sl] = _moments(total, first, last, ed, t_len)

    # numpy releases the GIL in the heavy kernels, so chunks run in parallel threads.
    workers = max(1, min(os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, _chunks(m, chunk_size)))

    collinear = r2 >= _COLLINEAR_R2
    tstat = np.where(collinear, -np.inf, tstat)
    pvalue = mackinnon_pvalue(tstat, n_vars=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        # lambda >= 0: no pull back to the mean (inf); lambda <= -1: the fit overshoots,
        # the AR(1) half-life is undefined (NaN) and filters reject it.
        reverting = -np.log(2.0) / np.log1p(np.clip(lam, -1 + 1e-15, -1e-300))
        half_life = np.where(lam >= 0, np.inf, np.where(lam > -1, reverting, np.nan))
    return pd.DataFrame(
        {
            "y": names[yi],
            "x": names[xi],
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
            "crossings": crossings,
        }
    )


def engle_granger(
    log_prices: pd.DataFrame,
    *,
    maxlag: int | None = None,
    autolag: str | None = "aic",
    chunk_size: int = 2048,
) -> pd.DataFrame:
    """Engle-Granger test of every ordered couple (y, x) of a log-price panel.

    ``log_prices`` has one row per candle (oldest first) and one column per coin, holding
    log prices with no gaps. For each ordered couple the result equals
    ``statsmodels.tsa.stattools.coint(log y, log x, trend="c", autolag=autolag,
    maxlag=maxlag)`` for ``tstat``, ``pvalue`` and the ADF ``lag``; ``maxlag=None`` uses the
    same Schwert rule as statsmodels. ``autolag`` is ``"aic"`` (default), ``"bic"`` or
    ``None`` (use exactly ``maxlag`` lags).

    Returns one row per ordered couple, columns described in :data:`RESULT_COLUMNS`.
    ``chunk_size`` bounds memory: couples are processed that many at a time, each worker
    thread holding about 3 (maxlag + 1)^2 floats per couple of its chunk (32 MB at the
    default and maxlag 24), and the coin-level sums, (maxlag + 1) k^2 floats for k coins
    (50 MB for 500 coins), are held for the whole call.
    """
    return _scan(log_prices, maxlag, autolag, chunk_size, batch=True)


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

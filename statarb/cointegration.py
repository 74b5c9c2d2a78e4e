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
  products (``d[u] * d[u-h]`` and ``e[u] * d[u-h]``, with ``d`` the differenced residual).
  We compute each product's full sum once plus short head and tail partial sums, and read
  the Gram matrix of any sample window from them. The nested fits then come out of one
  Cholesky factorisation per couple (the leading block of a Cholesky factor is the
  factor of the leading block).
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
    small = np.polyval(adfvalues.tau_c_smallp[i][::-1], t)
    large = np.polyval(adfvalues.tau_c_largep[i][::-1], t)
    p = norm.cdf(np.where(t <= adfvalues.tau_star_c[i], small, large))
    p = np.where(t > adfvalues.tau_max_c[i], 1.0, p)
    p = np.where(t < adfvalues.tau_min_c[i], 0.0, p)
    return p


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


def _ordered_couples(n: int) -> tuple[np.ndarray, np.ndarray]:
    yi, xi = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = yi != xi
    return yi[keep], xi[keep]


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


def engle_granger(
    log_prices: pd.DataFrame,
    *,
    maxlag: int | None = None,
    autolag: str | None = "aic",
    chunk_size: int = 512,
) -> pd.DataFrame:
    """Engle-Granger test of every ordered couple (y, x) of a log-price panel.

    ``log_prices`` has one row per candle (oldest first) and one column per coin, holding
    log prices with no gaps. For each ordered couple the result equals
    ``statsmodels.tsa.stattools.coint(log y, log x, trend="c", autolag=autolag,
    maxlag=maxlag)`` for ``tstat``, ``pvalue`` and the ADF ``lag``; ``maxlag=None`` uses the
    same Schwert rule as statsmodels. ``autolag`` is ``"aic"`` (default), ``"bic"`` or
    ``None`` (use exactly ``maxlag`` lags).

    Returns one row per ordered couple, columns described in :data:`RESULT_COLUMNS`.
    ``chunk_size`` bounds memory: couples are processed that many at a time.
    """
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

    def run(sl: slice) -> None:
        e = rows[yi[sl]] - beta[sl, None] * rows[xi[sl]]
        d = np.diff(e, axis=1)
        ed = _edges(e, d, maxlag)
        tstat[sl], lag[sl] = _adf_autolag(ed, t_len - 1, maxlag, autolag)
        # Moments from sums the ADF step already has: sum e_m d[m] (m < T-1) and sum e_m^2.
        first, last = e[:, 0], e[:, -1]
        total = e.sum(axis=1)
        mean = total / t_len
        sq = ed.ee_full + last**2
        spread_mean[sl] = mean
        spread_std[sl] = np.sqrt(np.maximum(sq - t_len * mean**2, 0.0) / (t_len - 1))
        # AR(1) with intercept, d e_t = c + lambda * e_{t-1}: lambda = cov(e_lag, d) / var(e_lag)
        n = t_len - 1
        lev_mean = (total - last) / n
        d_mean = (last - first) / n
        cov_ld = ed.b_full[:, 0] - n * lev_mean * d_mean
        var_l = ed.ee_full - n * lev_mean**2
        with np.errstate(divide="ignore", invalid="ignore"):  # zero residual: NaN
            lam[sl] = cov_ld / var_l
        above = e > mean[:, None]
        crossings[sl] = (above[:, 1:] != above[:, :-1]).sum(axis=1)

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

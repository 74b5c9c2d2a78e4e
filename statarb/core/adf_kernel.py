"""The per-couple part of the batch Engle-Granger engine, compiled (numba).

Why a compiled kernel: once the coin-level sums are known (matrix products, at BLAS
speed, or slid from the previous formation), what is left per couple is small dense
algebra on K ~ 24 numbers: combine its full lagged sums from the coin-level ones, build
the head and tail partial sums from its first and last K points, assemble one bordered
(K+2)-square Gram matrix, factorise it for the lag search, and one smaller one for the
final regression. In numpy that is a chain of batched calls, each writing and re-reading
tables of C x K^2 numbers; measured on 200 coins, the numpy chain spent about 12 us per
couple against the ~3 us the arithmetic needs. Fused into one loop per couple, every
table lives in a few KB of cache and the work is the arithmetic. The kernel releases the
GIL, so the engine runs chunks of couples in parallel threads with no numba threading
layer (nothing to configure, nothing unsafe about being called from several threads).

The algebra is the one documented in :mod:`statarb.core.cointegration` (and its per-couple
reference path, :func:`statarb.core.cointegration._engle_granger_reference`, which the parity
tests hold this kernel to).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["AUTOLAG_CODES", "LANES", "couple_adf"]

#: How the kernel is told the lag rule: statsmodels' autolag names to small ints.
AUTOLAG_CODES: dict[str | None, int] = {"aic": 0, "bic": 1, None: 2}


#: Couples factorised together: the lag-search Cholesky runs lane by lane over this many
#: couples at once (innermost loop over couples, so it vectorises with no change to any
#: couple's arithmetic), where one couple's 26 x 26 factorisation alone runs its short
#: dot products at about 1 GFLOP/s (measured: 2.7 us per couple alone, ~0.8 us in lanes).
LANES = 16


@njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)
def _factor_lanes(m: np.ndarray, q: int, ok: np.ndarray, inv: np.ndarray) -> None:
    """Cholesky factors (lower, row by row) of the leading (q-1)-square blocks of the
    ``LANES`` matrices ``m`` (q, q, LANES), and the forward solve of their borders:
    ``w = L^-1 g`` for ``m = [[G, g], [g', y'y]]``, left in ``m[q-1, :q-1, l]``.

    In place in the lower triangles; the same operations in the same order for every
    lane, the innermost loop over lanes. Off-diagonal entries are scaled by the pivot's
    reciprocal (``inv`` (q, LANES), scratch), as LAPACK's unblocked Cholesky does. The
    border's own diagonal is left as ``y'y`` (each nested fit's SSR is
    ``y'y - |w[:k]|^2``, so a perfect fit, which would fail it, still gives ``w``).
    ``ok[l]`` turns False where lane l's G is not positive definite, by LAPACK's rule (a
    pivot <= 0 or NaN): a degenerate residual; its pivot is then replaced by 1 so the
    other lanes go on, and its numbers are garbage.
    """
    lanes = m.shape[2]
    for i in range(q):
        for j in range(i + 1):
            if i == q - 1 and j == i:
                break  # the border's diagonal stays y'y
            out = m[i, j]
            for k in range(j):
                left = m[i, k]
                right = m[j, k]
                for lane in range(lanes):
                    out[lane] -= left[lane] * right[lane]
            if i == j:
                for lane in range(lanes):
                    v = out[lane]
                    good = v > 0.0
                    ok[lane] = ok[lane] and good
                    r = np.sqrt(v) if good else 1.0
                    out[lane] = r
                    inv[i, lane] = 1.0 / r
            else:
                scale = inv[j]
                for lane in range(lanes):
                    out[lane] *= scale[lane]


@njit(nogil=True, cache=True, error_model="numpy", boundscheck=False, inline="always")
def _tables(
    eh: np.ndarray, et: np.ndarray, depth: int, maxlag: int, ah: np.ndarray, bh: np.ndarray,
    at: np.ndarray, eeh: np.ndarray, dh: np.ndarray, dt: np.ndarray,
) -> None:
    """A couple's head and tail partial sums, as deep as a regression with ``depth`` lags
    reads them, from its first points ``eh`` = e[0..K] and last ``et`` = e[T-1-K..T-1]
    (``dh``, ``dt``: scratch for their differences).

    ``ah[t, h]`` = sum over u in [h, t-1] of d[u] d[u-h] (t <= depth), ``bh[t, h]`` the same
    for e[u] d[u-h], ``eeh[t]`` = sum over m < t of e[m]^2, ``at[i, h]`` = sum over u in
    [N-i, N-1] of d[u] d[u-h] (i + h <= depth). Entries at t = h, i = 0 must be 0. Rows
    by t (or i), so each step's update is one contiguous run over h.
    """
    for t in range(depth):
        dh[t] = eh[t + 1] - eh[t]  # d[t]
        dt[t] = et[maxlag - t] - et[maxlag - 1 - t]  # d[N-1-t]
    for t in range(depth):
        eeh[t + 1] = eeh[t] + eh[t] * eh[t]
        d_t = dh[t]
        e_t = eh[t]
        for h in range(t + 1):
            ah[t + 1, h] = ah[t, h] + d_t * dh[t - h]
            bh[t + 1, h] = bh[t, h] + e_t * dh[t - h]
    for i in range(depth):  # at[i+1, h] = at[i, h] + d[N-1-i] d[N-1-i-h]
        d_u = dt[i]
        for h in range(depth - i):
            at[i + 1, h] = at[i, h] + d_u * dt[i + h]


@njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)
def couple_adf(
    rows: np.ndarray,
    adiag: np.ndarray,
    asum: np.ndarray,
    b_diag: np.ndarray,
    b_sym: np.ndarray,
    cov: np.ndarray,
    csum: np.ndarray,
    yc: np.ndarray,
    xc: np.ndarray,
    bc: np.ndarray,
    maxlag: int,
    autolag: int,
    limit: float,
    crossings: bool,
    tstat: np.ndarray,
    lag: np.ndarray,
    b0: np.ndarray,
    ee: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    total: np.ndarray,
    cross: np.ndarray,
) -> None:
    """ADF t-statistic and lag (``autolag`` coded by :data:`AUTOLAG_CODES`) of the
    residual ``e = rows[y] - beta rows[x]`` of every couple ``(yc, xc, bc)``.

    Inputs, with k coins, T candles, N = T - 1 differences and K = ``maxlag``:
    ``rows`` (k, T) centred log prices; ``adiag`` (k, K+1) ``A_ii[h]`` and ``asum``
    (k, k, K+1) ``A_ij[h] + A_ji[h]``, where ``A_ij[h] = sum_u dP_i[u] dP_j[u-h]``;
    ``b_diag`` (k,) and ``b_sym`` (k, k) the level-times-difference sums ``B_ii`` and
    ``B_ij + B_ji`` (``B_ij = sum_{m<N} P_i[m] dP_j[m]``); ``cov`` (k, k) ``P'P``; ``csum``
    (k,) column sums of ``rows``. A couple whose combined sums cancel more than ``limit``
    (sum of the terms' magnitudes over the result, or NaN) gets them from its own
    residual instead.

    Outputs per couple: ``tstat``, ``lag``, ``b0`` (sum e[m] d[m]), ``ee`` (sum e[m]^2,
    m < N), ``first`` and ``last`` (e[0], e[T-1]), ``total`` (sum of e: over every point
    when ``crossings``, else from ``csum``) and ``cross`` (mean crossings; -1 unless
    ``crossings``). NaN statistics where a Gram matrix is singular.

    Two passes over the couples. First, ``LANES`` at a time: each one's full sums, head
    and tail tables and lag-search Gram matrix alone, then their factorisations together
    (:func:`_factor_lanes`) and each one's lag. Then, in order of chosen lag, ``LANES``
    at a time again: the final regressions, factorised together at nearly one size.
    """
    k1 = maxlag + 1
    t_len = rows.shape[1]
    n = t_len - 1
    q = maxlag + 2
    n_couples = yc.shape[0]
    # Per couple, what the final regression is rebuilt from: full sums and end points.
    st_af = np.empty((n_couples, k1))
    st_bf = np.empty((n_couples, k1))
    st_eh = np.empty((n_couples, k1))  # e[0..K]
    st_et = np.empty((n_couples, k1))  # e[T-1-K..T-1]
    # Per lane: head/tail tables. Only the entries a Gram matrix reads are written, and
    # they are rewritten for every couple; the others (t = h, i = 0, ...) stay 0.
    ah = np.zeros((LANES, k1, k1))
    bh = np.zeros((LANES, k1, k1))
    at = np.zeros((LANES, k1, k1))
    eeh = np.zeros((LANES, k1))
    dh = np.empty(k1)
    dt = np.empty(k1)
    e = np.empty(t_len)
    mb = np.empty((q, q, LANES))
    ok = np.empty(LANES, dtype=np.bool_)
    inv = np.empty((q, LANES))

    for g in range(0, n_couples, LANES):
        used = min(LANES, n_couples - g)
        for lane in range(used):
            c = g + lane
            y = yc[c]
            x = xc[c]
            b = bc[c]
            b2 = b * b
            size = abs(b)
            af, bf, eh, et = st_af[c], st_bf[c], st_eh[c], st_et[c]
            for t in range(k1):
                eh[t] = rows[y, t] - b * rows[x, t]
                et[t] = rows[y, t_len - k1 + t] - b * rows[x, t_len - k1 + t]
            e_last = et[maxlag]
            first[c] = eh[0]
            last[c] = e_last

            # Full sums: quadratic forms in beta of the coin-level sums.
            for h in range(k1):
                af[h] = adiag[y, h] - b * asum[y, x, h] + b2 * adiag[x, h]
            bf[0] = b_diag[y] - b * b_sym[y, x] + b2 * b_diag[x]
            ee_all = cov[y, y] - 2.0 * b * cov[y, x] + b2 * cov[x, x]
            # Each ratio is the sum of the terms' magnitudes over the result; NaN (0 / 0)
            # counts as cancelling.
            ra = (adiag[y, 0] + size * abs(asum[y, x, 0]) + b2 * adiag[x, 0]) / abs(af[0])
            rb = (abs(b_diag[y]) + size * abs(b_sym[y, x]) + b2 * abs(b_diag[x])) / abs(bf[0])
            rc = (cov[y, y] + 2.0 * size * abs(cov[y, x]) + b2 * cov[x, x]) / abs(ee_all)
            cancels = not (ra <= limit and rb <= limit and rc <= limit)
            if crossings or cancels:
                for t in range(t_len):
                    e[t] = rows[y, t] - b * rows[x, t]
            if cancels:  # the couple's own residual
                for h in range(k1):
                    sa = 0.0
                    sb = 0.0
                    for u in range(h, n):
                        du = e[u + 1] - e[u]
                        dl = e[u - h + 1] - e[u - h]
                        sa += du * dl
                        sb += e[u] * dl
                    af[h] = sa
                    bf[h] = sb
                s = 0.0
                for t in range(n):
                    s += e[t] * e[t]
                ee[c] = s
            else:
                ee[c] = ee_all - e_last * e_last
                # e[u+1] = e[u] + d[u]: b_full[h+1] = b_full[h] + a_full[h] - e[N] d[N-1-h]
                for h in range(maxlag):
                    bf[h + 1] = bf[h] + af[h] - e_last * (et[maxlag - h] - et[maxlag - 1 - h])
            b0[c] = bf[0]
            if crossings:
                s = 0.0
                for t in range(t_len):
                    s += e[t]
                total[c] = s
                mean = s / t_len
                count = 0
                above = e[0] > mean
                for t in range(1, t_len):
                    now = e[t] > mean
                    if now != above:
                        count += 1
                    above = now
                cross[c] = count
            else:
                total[c] = csum[y] - b * csum[x]
                cross[c] = -1
            if autolag == 2:
                continue
            # Lag-search Gram on the common sample m in [K, N-1]: columns
            # [e_m, d[m-1..m-K]] bordered by the response d[m] (lag 0).
            lah, lbh, lat, leh = ah[lane], bh[lane], at[lane], eeh[lane]
            _tables(eh, et, maxlag, maxlag, lah, lbh, lat, leh, dh, dt)
            # Each entry is a full sum minus its head (before m = K) and tail partial sums:
            # lags i >= j over m in [K, N-1] are sum of d[u] d[u-h], h = i - j, u in
            # [K - j, N-1-j]; the level with lag i is sum of e_m d[m-i].
            mb[0, 0, lane] = ee[c] - leh[maxlag]
            for i in range(1, q - 1):
                mb[i, 0, lane] = bf[i] - lbh[maxlag, i]
                for j in range(1, i + 1):
                    h = i - j
                    mb[i, j, lane] = af[h] - lah[maxlag - j, h] - lat[j, h]
            mb[q - 1, 0, lane] = bf[0] - lbh[maxlag, 0]
            for j in range(1, q):
                j_lag = j if j < q - 1 else 0  # the response is lag 0
                mb[q - 1, j, lane] = af[j_lag] - lah[maxlag, j_lag]
        if autolag == 2:
            for lane in range(used):
                lag[g + lane] = maxlag
            continue
        for lane in range(used, LANES):  # a short last group: identity, never read
            for i in range(q):
                for j in range(i + 1):
                    mb[i, j, lane] = 1.0 if i == j else 0.0
        ok[:] = True
        _factor_lanes(mb, q, ok, inv)
        # One factorisation gives every lag's SSR: y'y - |w[:k]|^2.
        nobs = n - maxlag
        for lane in range(used):
            best = 0
            if ok[lane]:
                yy = mb[q - 1, q - 1, lane]
                acc = 0.0
                best_ic = np.inf
                for j in range(k1):
                    wj = mb[q - 1, j, lane]
                    acc += wj * wj
                    pen = 2.0 * (j + 1) if autolag == 0 else np.log(nobs) * (j + 1)
                    ic = nobs * np.log((yy - acc) / nobs) + pen
                    if np.isfinite(ic) and ic < best_ic:
                        best_ic = ic
                        best = j
            lag[g + lane] = best

    # Final regressions with each couple's chosen lag p on its own sample m in [p, N-1],
    # columns [d[m-1..m-p], e_m] bordered by d[m] (t = w_level / sigma). Couples go in
    # order of lag, so each group is factorised at its largest lag P with little waste: a
    # lane with p < P gets P - p unit columns, orthogonal to the rest, between its lags
    # and its level, which leave every other entry of its factor as without them.
    order = np.argsort(lag[:n_couples], kind="mergesort")
    for g in range(0, n_couples, LANES):
        used = min(LANES, n_couples - g)
        top = lag[order[g + used - 1]]
        qf = top + 2
        for lane in range(LANES):
            if lane >= used:
                for i in range(qf):
                    for j in range(i + 1):
                        mb[i, j, lane] = 1.0 if i == j else 0.0
                continue
            c = order[g + lane]
            p = lag[c]
            af, bf, ee_c = st_af[c], st_bf[c], ee[c]
            lah, lbh, lat, leh = ah[lane], bh[lane], at[lane], eeh[lane]
            _tables(st_eh[c], st_et[c], p, maxlag, lah, lbh, lat, leh, dh, dt)
            # Rows: lags 1..p, unit columns (p..P-1), the level (P), the response (P+1).
            for i in range(qf):
                for j in range(i + 1):
                    mb[i, j, lane] = 0.0
            for i in range(p, top):
                mb[i, i, lane] = 1.0
            for i in range(p):
                for j in range(i + 1):
                    h = i - j
                    mb[i, j, lane] = af[h] - lah[p - 1 - j, h] - lat[j + 1, h]
            for j in range(p):
                mb[top, j, lane] = bf[j + 1] - lbh[p, j + 1]
                mb[top + 1, j, lane] = af[j + 1] - lah[p, j + 1]
            mb[top, top, lane] = ee_c - leh[p]
            mb[top + 1, top, lane] = bf[0] - lbh[p, 0]
            mb[top + 1, top + 1, lane] = af[0] - lah[p, 0]
        ok[:] = True
        _factor_lanes(mb, qf, ok, inv)
        for lane in range(used):
            c = order[g + lane]
            if not ok[lane]:
                tstat[c] = np.nan
                continue
            p = lag[c]
            acc = 0.0
            for j in range(qf - 1):
                acc += mb[qf - 1, j, lane] * mb[qf - 1, j, lane]
            dof = (n - p) - (p + 1)
            tstat[c] = mb[qf - 1, top, lane] / np.sqrt((mb[qf - 1, qf - 1, lane] - acc) / dof)

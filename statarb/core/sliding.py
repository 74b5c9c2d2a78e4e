"""Engle-Granger over a formation window that slides: the walk-forward's incremental engine.

Why: the walk-forward tests every couple again at each re-formation, and consecutive
formation windows share all but ``reform_every`` candles. The batch engine
(:func:`statarb.core.cointegration.engle_granger`) spends its O(N) work per window on
coin-level sums (the covariance of log prices for the OLS step, and the lagged
cross-products of the coins' differenced log prices, and of levels with differences, that
every couple's ADF Gram matrices are combined from). Each of those is a sum over the
window's candles, so it slides: add the terms of the candles that enter, subtract those
of the candles that leave. A slide of s candles costs about 4 (K+1) s k^2 flops, against
2 (K+2) N k^2 for the batch products (N = 1439, s = 24: 30x less), and leaves the
per-couple step (:func:`statarb.core.adf_kernel.couple_adf`) exactly as the batch engine runs
it.

How the sums are kept exact:

* Every coin of the panel is kept, present or not: a missing price is a 0 in the sums,
  and a difference with a missing end is 0, so a coin's terms are genuine wherever its
  window is complete. Only couples of coins with complete windows are ever tested
  (:meth:`SlidingScan.results` refuses others), and a zero term that entered leaves as
  the same zero.
* Sums are kept around a fixed per-coin reference (its mean at the last rebuild) and
  centred when read: ``P'P = S - T m m'`` with ``m`` the window's mean offset, and the
  level-times-difference sums ``B - m r'`` with ``r`` the window's total difference (its
  last minus its first price, exact). The reference keeps those subtractions small.
* Additions and subtractions round, and the rounding of hundreds of slides adds up: the
  sums are rebuilt from the window every ``rebuild_every`` slides (default 30). Measured
  on the shared data and on synthetic panels (``benchmarks/bench_walkforward.py``,
  ``tests/test_sliding.py``): without any rebuild, p-values stay within 1e-12 of the
  batch engine's after 700 slides; with it, within the batch engine's own rounding.

What it leaves untested (``prune``). The walk-forward only needs the couples a selection
can choose. A selection that judges a couple on the larger p-value of its two
orientations (``both_orientations``, the default) rejects every couple whose first
orientation has a p-value above its threshold, whatever the other one's: the scan then
tests the other orientation only where the first passes (NaN statistics elsewhere,
``lag`` -1). Benjamini-Hochberg is unchanged by it: a couple above the threshold, untested
or not, counts in the family and never in the ranks that decide (the adjusted p-value of
a couple at or under the threshold is a minimum over couples at or under it). Most couples
of a broad universe are unrelated, so this skips close to half the per-couple work; the
chosen couples are then retested from the window alone
(:func:`statarb.core.selection.choose_couples`).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pandas as pd

from statarb.core.cointegration import (
    _ordered_couples,
    _PanelSums,
    _table,
    _validate,
    _Window,
    default_maxlag,
)

__all__ = ["SlidingScan"]


class SlidingScan:
    """Engle-Granger tables of windows of ``window`` candles of one log-price panel,
    each slid from the last.

    ``log_prices`` (candles, coins) holds the whole panel, NaN where a coin has no price;
    ``coins`` names its columns. Call :meth:`results` with windows in time order (any
    order works, but a jump backwards or of more than a window rebuilds the sums).
    Instances are also :data:`statarb.core.selection.Scan` callables: given a window's rows of
    the panel as a frame whose index is the panel's row numbers, they return that
    window's table. ``prune``: a p-value threshold; each couple's second orientation is
    tested only where its first one's p-value is at or under it (module docstring).
    """

    def __init__(
        self,
        log_prices: np.ndarray,
        coins: list[str],
        window: int,
        *,
        maxlag: int | None = None,
        autolag: str | None = "aic",
        rebuild_every: int = 30,
        keep: int = 10,
        prune: float | None = None,
    ) -> None:
        values = np.asarray(log_prices, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(coins):
            raise ValueError(f"log_prices has shape {values.shape}; expected (candles, "
                             f"{len(coins)} coins)")
        if len(set(coins)) != len(coins):
            raise ValueError("coin names must be unique")
        if not 20 <= window <= values.shape[0]:
            raise ValueError(f"window={window} must be between 20 and the panel's "
                             f"{values.shape[0]} candles")
        if isinstance(rebuild_every, bool) or not isinstance(rebuild_every, int) or (
                rebuild_every < 1):
            raise ValueError(f"rebuild_every={rebuild_every!r} must be a whole number of "
                             "slides >= 1")
        if prune is not None and not 0.0 < prune <= 1.0:
            raise ValueError(f"prune={prune!r} must be a p-value threshold in (0, 1], or None "
                             "to test both orientations of every couple")
        self.prune = prune
        self.values = values
        self.coins = list(coins)
        self._col = {c: i for i, c in enumerate(self.coins)}
        self.window = window
        self.maxlag = default_maxlag(window) if maxlag is None else maxlag
        self.autolag = autolag
        self.rebuild_every = rebuild_every
        self.valid = np.isfinite(values)
        self._end = -1
        self._slides = 0
        #: Slides and rebuilds done: how the work was split (for benchmarks and tests).
        self.stats = {"slides": 0, "rebuilds": 0}
        self._cache: OrderedDict[int, tuple[pd.DataFrame, list[str]]] = OrderedDict()
        self._couples: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._keep = keep

    # --- the sums --------------------------------------------------------------------------

    def _q(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo..hi-1 of the panel around the reference, 0 where missing."""
        return np.where(self.valid[lo:hi], self.values[lo:hi] - self._ref, 0.0)

    def _d(self, lo: int, hi: int) -> np.ndarray:
        """Differences D[g] = Q[g+1] - Q[g] for g in lo..hi-1, 0 where an end is missing."""
        q = self._q(lo, hi + 1)
        both = self.valid[lo:hi] & self.valid[lo + 1:hi + 1]
        return np.where(both, q[1:] - q[:-1], 0.0)

    def _rebuild(self, end: int) -> None:
        lo = end - self.window
        block = self.values[lo:end]
        ok = self.valid[lo:end]
        with np.errstate(invalid="ignore", divide="ignore"):
            ref = np.where(ok, block, 0.0).sum(axis=0) / ok.sum(axis=0)
        # A coin absent from the whole window: its next price, so it enters near 0.
        absent = ~np.isfinite(ref)
        if absent.any():
            later = self.values[end:, absent]
            seen = np.isfinite(later)
            first = np.where(seen.any(axis=0), later[np.argmax(seen, axis=0),
                                                    np.arange(later.shape[1])], 0.0)
            ref[absent] = first
        self._ref = ref
        q = self._q(lo, end)
        d = self._d(lo, end - 1)  # N = window - 1 differences
        n, k = d.shape
        k1 = self.maxlag + 1
        self._s1 = q.sum(axis=0)
        self._s2 = q.T @ q
        self._a = np.empty((k1, k, k))
        for h in range(k1):
            np.matmul(d[h:].T, d[: n - h], out=self._a[h])
        self._b = q[:n].T @ d
        self._end = end
        self._slides = 0
        self.stats["rebuilds"] += 1

    def _slide(self, end: int) -> None:
        """Move the window from [lo, old end) to [lo + s, end): s candles in, s out."""
        old = self._end
        s = end - old
        lo, lo2 = old - self.window, end - self.window
        k1 = self.maxlag + 1
        q_in, q_out = self._q(old, end), self._q(lo, lo2)
        self._s1 += q_in.sum(axis=0) - q_out.sum(axis=0)
        self._s2 += q_in.T @ q_in - q_out.T @ q_out
        # Differences g in [old-1, end-2] enter, g in [lo, lo2-1] leave. Lag h pairs
        # D[g] with D[g-h]: the entering ones with the K rows before them, the leaving
        # ones with the K rows after them. One batched product per side, (K+1, k, k).
        d_in = self._d(old - 1 - self.maxlag, end - 1)  # D[old-1-K .. end-2]
        d_out = self._d(lo, lo2 + self.maxlag)  # D[lo .. lo2-1+K]
        new = d_in[self.maxlag:]
        leaving = d_out[:s]
        steps = np.arange(s)[None, :]
        lags = np.arange(k1)[:, None]
        lagged = d_in[self.maxlag - lags + steps]  # (K+1, s, k): D[g-h]
        leads = d_out[lags + steps]  # (K+1, s, k): D[g+h] for the leaving g
        # added[h, i, j] = sum_g D[g, i] D[g-h, j]; removed[h, i, j] = sum_g D[g+h, i] D[g, j]
        self._a += np.matmul(new.T, lagged)
        self._a -= np.matmul(leads.transpose(0, 2, 1), leaving)
        # Level rows m in [old-1, end-2] enter (paired with D[m]), m in [lo, lo2-1] leave.
        lev_in = self._q(old - 1, end - 1)
        self._b += lev_in.T @ new - q_out.T @ leaving
        self._end = end
        self._slides += 1
        self.stats["slides"] += 1

    def _move_to(self, end: int) -> None:
        s = end - self._end
        if self._end < 0 or s < 0 or s >= self.window - self.maxlag - 1 or (
                self._slides >= self.rebuild_every):
            self._rebuild(end)
        elif s > 0:
            self._slide(end)

    # --- the tables ------------------------------------------------------------------------

    def complete(self, end: int) -> list[str]:
        """The coins with a price for every candle of the window ending before ``end``."""
        lo = end - self.window
        ok = self.valid[lo:end].all(axis=0)
        return [c for c, good in zip(self.coins, ok, strict=True) if good]

    def results(self, end: int, members: list[str] | None = None) -> pd.DataFrame:
        """The :func:`statarb.core.cointegration.engle_granger` table (crossings uncounted,
        -1) of the window of candles ``end - window .. end - 1`` for the couples of
        ``members`` (default: every coin complete in the window).

        The table is computed once per window for every complete coin and kept for the
        last ``keep`` windows, so the earlier windows of a stability check
        (``stable_of``), and a smaller member set, cost a row filter.
        """
        if not self.window <= end <= self.values.shape[0]:
            raise ValueError(f"end={end} must be between the window ({self.window}) and "
                             f"the panel's {self.values.shape[0]} candles")
        cached = self._cache.get(end)
        if cached is None:
            cached = self._cache[end] = self._compute(end)
            while len(self._cache) > self._keep:
                self._cache.popitem(last=False)
        table, names = cached
        if members is None:
            return table
        unknown = sorted(set(members) - set(names))
        if unknown:
            raise ValueError(f"coins {unknown} have no complete window ending at row {end}: "
                             "they cannot be tested there")
        if len(members) == len(names):
            return table
        # The table's rows are every ordered couple of ``names`` in order: filter by code.
        yi, xi = self._ordered(len(names))
        keep = np.isin(np.asarray(names, dtype=object), np.asarray(members, dtype=object))
        return table[keep[yi] & keep[xi]].reset_index(drop=True)

    def _ordered(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n not in self._couples:
            self._couples[n] = _ordered_couples(n)
        return self._couples[n]

    def _compute(self, end: int) -> tuple[pd.DataFrame, list[str]]:
        names = self.complete(end)
        lo = end - self.window
        if len(names) < 2:
            return pd.DataFrame(columns=["y", "x", "alpha", "beta", "tstat", "pvalue", "lag",
                                         "crossings"]), names
        cols = np.array([self._col[c] for c in names], dtype=np.intp)
        frame = pd.DataFrame(self.values[lo:end, cols], columns=names)
        maxlag = _validate(frame, self.maxlag, self.autolag)
        self._move_to(end)
        t_len, n = self.window, self.window - 1
        ix = np.ix_(cols, cols)
        mean_q = self._s1[cols] / t_len
        means = self._ref[cols] + mean_q
        cov = self._s2[ix] - t_len * np.outer(mean_q, mean_q)
        q_first = self.values[lo, cols] - self._ref[cols]
        q_last = self.values[end - 1, cols] - self._ref[cols]
        total_d = q_last - q_first  # sum of the window's differences, exact
        a = self._a if len(cols) == len(self.coins) else self._a[:, cols[:, None], cols]
        rcov = a[0] - np.outer(total_d, total_d) / n
        b = self._b[ix] - np.outer(mean_q, total_d)
        rows = np.ascontiguousarray((self.values[lo:end, cols] - means).T)
        win = _Window(np.asarray(names, dtype=object), means, rows, cov, rcov)
        table = _table(win, _PanelSums.from_products(a, b, cov), maxlag, self.autolag, 2048,
                       crossings=False, prune=self.prune)
        return table, names

    def __call__(self, window: pd.DataFrame) -> pd.DataFrame:
        """The table of ``window``: rows ``lo .. end-1`` of the panel (its index), the
        coins its columns. What :func:`statarb.core.selection.choose_couples` calls."""
        index = window.index
        if len(index) != self.window or not isinstance(index, pd.RangeIndex) or (
                index.step != 1):
            raise ValueError(f"a sliding scan tests windows of {self.window} consecutive panel "
                             f"rows indexed by row number; got {len(index)} rows indexed "
                             f"{type(index).__name__}")
        return self.results(int(index.stop), list(window.columns))

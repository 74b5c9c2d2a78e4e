"""Benchmark: the walk-forward's formations, sliding engine against the batch engine.

Prints, side by side in one run on the same panel (default 200 coins x 2 years of 1h
candles, the strategy's default settings: 60-day formation re-formed every 24 h, AIC lag
search, Benjamini-Hochberg over every couple):

* ``walk_forward(engine="sliding")``: the Engle-Granger sums slid from one formation
  window to the next (:class:`statarb.core.sliding.SlidingScan`), wall time, formations,
  milliseconds per formation, slides and rebuilds;
* ``walk_forward(engine="batch")``: every window from scratch
  (:func:`statarb.core.cointegration.engle_granger`), the same figures and the ratio;
* parity at every re-formation: the same couples in the same order, and the largest
  differences of their hedge ratios, t-statistics and p-values;
* drift: a sliding scan never rebuilt, against the batch engine on every ``--every``-th
  window (every couple of the window): the largest p-value and relative t-statistic
  differences after that many slides.

The panel is synthetic and seeded: coins in sectors (a common random walk each, plus
each coin's own mean-reverting spread and noise), so some couples are cointegrated, and
a tenth of the coins are listed part-way through, as on the exchange. Not a unit test:
timings depend on the machine and its load.

    python benchmarks/bench_walkforward.py [--coins 200] [--days 730] [--every 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from statarb.core.cointegration import engle_granger  # noqa: E402
from statarb.core.selection import SelectionParams  # noqa: E402
from statarb.core.sliding import SlidingScan  # noqa: E402
from statarb.core.walkforward import WalkForwardParams, price_matrix, walk_forward  # noqa: E402


def synthetic_frames(n_coins: int, days: int, seed: int = 11) -> dict[str, pd.DataFrame]:
    """Hourly candles (``date``, ``open``, ``close``) of ``n_coins`` synthetic coins."""
    rng = np.random.default_rng(seed)
    hours = days * 24
    dates = pd.date_range("2024-01-01", periods=hours, freq="1h", tz="UTC")
    sectors = max(1, n_coins // 8)
    factor = np.cumsum(rng.normal(0, 0.006, (hours, sectors)), axis=0)
    frames = {}
    for i in range(n_coins):
        sector = i % sectors
        load = rng.uniform(0.6, 1.4)
        # The coin's own part: mean-reverting (AR(1), half-life 5-60 h) for most coins, a
        # random walk for a third of them (not cointegrated with anything).
        phi = 1.0 if i % 3 == 0 else 0.5 ** (1 / rng.uniform(5, 60))
        shocks = rng.normal(0, 0.004, hours)
        own = np.empty(hours)
        own[0] = 0.0
        for t in range(1, hours):
            own[t] = phi * own[t - 1] + shocks[t]
        log_close = rng.uniform(-2, 6) + load * factor[:, sector] + own
        close = np.exp(log_close)
        opens = np.r_[close[0], close[:-1]]
        frame = pd.DataFrame({"date": dates, "open": opens, "close": close})
        if i % 10 == 9:  # listed part-way through the period
            frame = frame.iloc[int(rng.uniform(0.1, 0.6) * hours):]
        frames[f"C{i:03d}"] = frame.reset_index(drop=True)
    return frames


def timed_walk_forward(frames, sel, wf, engine):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    universe = walk_forward(frames, sel, wf, engine=engine)
    return universe, time.perf_counter() - start


def _rel(a: pd.DataFrame, b: pd.DataFrame, col: str) -> float:
    x, y = a[col].to_numpy(float), b[col].to_numpy(float)
    return float(np.max(np.abs(x - y) / np.abs(y)))


def parity(sliding, batch) -> tuple[int, float, float, float]:  # type: ignore[no-untyped-def]
    """Formations whose couples differ, and the largest relative beta and t-statistic and
    absolute p-value differences of the couples of the others."""
    differ, d_beta, d_t, d_p = 0, 0.0, 0.0, 0.0
    for a, b in zip(sliding.formations, batch.formations, strict=True):
        ca, cb = a.couples, b.couples
        if list(zip(ca["y"], ca["x"], strict=True)) != list(zip(cb["y"], cb["x"], strict=True)):
            differ += 1
            continue
        if ca.empty:
            continue
        d_beta, d_t = max(d_beta, _rel(ca, cb, "beta")), max(d_t, _rel(ca, cb, "tstat"))
        d_p = max(d_p, float(np.max(np.abs(ca["pvalue"].to_numpy(float)
                                           - cb["pvalue"].to_numpy(float)))))
    return differ, d_beta, d_t, d_p


def drift(frames, wf, starts: list[int], every: int) -> list[tuple[int, float, float]]:  # type: ignore[no-untyped-def]
    """(slides, max |p diff|, max rel t-stat diff) of a never-rebuilt sliding scan against
    the batch engine, on every ``every``-th formation window (all its complete coins)."""
    coins = list(frames)
    index = pd.date_range(min(f["date"].iloc[0] for f in frames.values()),
                          max(f["date"].iloc[-1] for f in frames.values()), freq="1h")
    log_closes = np.log(price_matrix(frames, index, "close"))
    scan = SlidingScan(log_closes, coins, wf.formation, rebuild_every=10**9)
    out = []
    for i, end in enumerate(starts):
        table = scan.results(end)
        if i % every and i != len(starts) - 1:
            continue
        names = scan.complete(end)
        cols = [coins.index(c) for c in names]
        ref = engle_granger(pd.DataFrame(log_closes[end - wf.formation:end, cols], columns=names),
                            crossings=False)
        finite = np.isfinite(ref["tstat"].to_numpy())
        rel_t = np.abs(table["tstat"].to_numpy()[finite] - ref["tstat"].to_numpy()[finite]) / \
            np.abs(ref["tstat"].to_numpy()[finite])
        dp = np.abs(table["pvalue"].to_numpy() - ref["pvalue"].to_numpy())
        out.append((scan.stats["slides"], float(np.nanmax(dp)), float(np.nanmax(rel_t))))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--coins", type=int, default=200)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--every", type=int, default=50, help="drift: batch check every N windows")
    ap.add_argument("--no-batch", action="store_true", help="time the sliding engine only")
    args = ap.parse_args()
    sel, wf = SelectionParams(), WalkForwardParams()
    frames = synthetic_frames(args.coins, args.days)
    walk_forward(dict(list(frames.items())[:4]), sel, wf)  # warm-up: imports, compiled kernel
    print(f"machine: {os.cpu_count()} cores. Panel: {args.coins} synthetic coins x {args.days} "
          f"days of 1h candles ({sum(i % 10 == 9 for i in range(args.coins))} listed part-way). "
          f"Settings: formation {wf.formation} candles, re-formed every {wf.reform_every}, "
          f"selection {sel.correction} at p <= {sel.max_pvalue}, AIC lags.")
    sliding, t_sliding = timed_walk_forward(frames, sel, wf, "sliding")
    n = len(sliding.formations)
    members = np.mean([len(f.universe) for f in sliding.formations])
    couples = members * (members - 1)
    print(f"{'engine':<8} {'seconds':>8} {'formations':>10} {'ms/formation':>12} "
          f"{'us/couple':>9}")
    print(f"{'sliding':<8} {t_sliding:>8.1f} {n:>10} {t_sliding / n * 1e3:>12.1f} "
          f"{t_sliding / n / couples * 1e6:>9.2f}")
    if not args.no_batch:
        batch, t_batch = timed_walk_forward(frames, sel, wf, "batch")
        print(f"{'batch':<8} {t_batch:>8.1f} {n:>10} {t_batch / n * 1e3:>12.1f} "
              f"{t_batch / n / couples * 1e6:>9.2f}")
        print(f"batch / sliding: {t_batch / t_sliding:.1f}x. Goal: sliding under 60 s.")
        differ, d_beta, d_t, d_p = parity(sliding, batch)
        chosen = sum(len(f.couples) for f in sliding.formations)
        print(f"parity over {n} re-formations ({chosen} couples chosen, mean "
              f"{members:.0f} coins = {couples:.0f} ordered couples tested each): formations "
              f"whose couples differ {differ}; largest rel beta diff {d_beta:.1e}, rel "
              f"t-stat diff {d_t:.1e}, |p diff| {d_p:.1e}")
    starts = [f.start for f in sliding.formations]
    print("drift of a sliding scan never rebuilt, against the batch engine (every couple of "
          "the window):")
    for slides, dp, dt in drift(frames, wf, starts, args.every):
        print(f"  after {slides:>4} slides: max |p diff| {dp:.1e}, max rel t-stat diff {dt:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

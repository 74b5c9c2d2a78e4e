"""Benchmark: the batch Engle-Granger engine, the per-couple reference path and statsmodels.

Prints, side by side on the same machine and the same panels (100, 200 and 500 coins x
1440 candles by default, every ordered couple, AIC lag search):

* the batch engine (``statarb.core.cointegration.engle_granger``: coin-level lagged
  cross-products combined per couple), best of R runs;
* the per-couple reference path (``_engle_granger_reference``: the engine as it was, every
  lagged sum a dot product per couple), best of ``--ref-runs`` runs;
* statsmodels ``coint(y, x, trend="c", autolag="aic")`` timed on a random sample of the
  couples and EXTRAPOLATED linearly to all of them (the output says so);
* the ratios, and each engine's peak memory, measured in a fresh process per engine and
  panel: the peak traced by tracemalloc during one call (numpy's arrays included) and the
  process's peak resident set (``ru_maxrss``: interpreter, libraries and panel included);
* the parity that the speed must not hide: batch against reference (largest relative
  t-statistic difference, largest p-value difference, lags that differ) and both against
  statsmodels on the sampled couples.

The panel is the real shared data (every coin spanning the last T candles) widened with
independent random-walk coins up to N columns, because the shared data has 35 coins.
Not a unit test: timings depend on the machine and its load.

    python benchmarks/bench_scan.py [--coins 100,200,500] [--candles 1440] [--sample 200]
        [--runs 3] [--ref-runs 1]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from statsmodels.tsa.stattools import coint
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from statarb.core.cointegration import _engle_granger_reference, engle_granger  # noqa: E402

FUTURES = ROOT.parent / "shared" / "data" / "binance" / "futures"
ENGINES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "batch": engle_granger,
    "per-couple": _engle_granger_reference,
}


def panel(n_coins: int, candles: int, seed: int = 7) -> pd.DataFrame:
    real = {}
    for path in sorted(FUTURES.glob("*_USDT_USDT-1h-futures.feather")):
        close = pd.read_feather(path).set_index("date")["close"]
        if len(close) >= candles:
            real[path.name.split("_")[0]] = np.log(close.to_numpy()[-candles:])
    frame = pd.DataFrame(real)
    frame = frame.iloc[:, :n_coins]
    rng = np.random.default_rng(seed)
    extra = n_coins - frame.shape[1]
    if extra > 0:
        walks = np.cumsum(rng.normal(0, 0.01, (candles, extra)), axis=0) + rng.uniform(0, 5, extra)
        frame = pd.concat(
            [frame, pd.DataFrame(walks, columns=[f"RW{i:03d}" for i in range(extra)])], axis=1
        )
    return frame


@dataclass(frozen=True)
class Run:
    seconds: float  # best of the timed runs
    traced_mib: float  # tracemalloc peak during one call
    rss_mib: float  # the process's peak resident set after all calls
    result: pd.DataFrame


def measure(engine: str, n_coins: int, candles: int, runs: int) -> Run:
    """One engine on one panel, in the calling (fresh) process."""
    fn = ENGINES[engine]
    fn(panel(8, candles))  # warm-up: imports, thread pool, cached index tables
    data = panel(n_coins, candles)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn(data)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return Run(min(times), peak / 2**20, rss, result)


def in_fresh_process(engine: str, n_coins: int, candles: int, runs: int) -> Run:
    """``measure`` in a new interpreter, so its peak resident set is this run's alone."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(measure, engine, n_coins, candles, runs).result()


def statsmodels_sample(
    data: pd.DataFrame, results: list[pd.DataFrame], sample: int
) -> tuple[float, int, float, list[float]]:
    """Seconds per couple of statsmodels ``coint`` on a random sample, the sample size, the
    sampling time, and each result's largest p-value difference from it.

    The sample is timed twice, with BLAS at its default threads and limited to one, and
    the faster is kept: on two cores the threaded small least-squares fits inside
    ``adfuller`` can be several times slower, and the comparison should not gain from it.
    """
    n = data.shape[1]
    couples = n * (n - 1)
    idx = np.random.default_rng(0).choice(couples, size=min(sample, couples), replace=False)
    arrays = {c: data[c].to_numpy() for c in data.columns}
    pairs = [(results[0].y.iloc[i], results[0].x.iloc[i]) for i in idx]
    worst = [0.0] * len(results)
    best = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coint(arrays[pairs[0][0]], arrays[pairs[0][1]])  # warm-up
        for limit in (None, 1):
            with threadpool_limits(limits=limit):
                start = time.perf_counter()
                pvalues = [
                    float(coint(arrays[y], arrays[x], trend="c", autolag="aic")[1])
                    for y, x in pairs
                ]
                best = min(best, time.perf_counter() - start)
    for j, res in enumerate(results):
        worst[j] = float(np.max(np.abs(np.asarray(pvalues) - res.pvalue.to_numpy()[idx])))
    return best / len(idx), len(idx), best, worst


def parity(new: pd.DataFrame, ref: pd.DataFrame) -> str:
    finite = np.isfinite(ref.tstat.to_numpy())
    t_new, t_ref = new.tstat.to_numpy()[finite], ref.tstat.to_numpy()[finite]
    rel = float(np.max(np.abs(t_new - t_ref) / np.abs(t_ref))) if finite.any() else 0.0
    dp = float(np.max(np.abs(new.pvalue.to_numpy() - ref.pvalue.to_numpy())))
    lags = int((new.lag != ref.lag).sum())
    return f"max rel tstat diff {rel:.1e}, max |p diff| {dp:.1e}, lags differing {lags}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--coins", default="100,200,500", help="comma-separated panel widths")
    ap.add_argument("--candles", type=int, default=1440)
    ap.add_argument("--sample", type=int, default=200, help="couples timed with statsmodels")
    ap.add_argument("--runs", type=int, default=3, help="timed runs of the batch engine")
    ap.add_argument("--ref-runs", type=int, default=1, help="timed runs of the reference")
    args = ap.parse_args()
    widths = [int(w) for w in args.coins.split(",")]

    real = panel(max(widths), args.candles).columns
    n_real = sum(not c.startswith("RW") for c in real)
    print(
        f"machine: {os.cpu_count()} cores. Panels: N coins x {args.candles} candles "
        f"({n_real} real shared coins, the rest random walks), every ordered couple, AIC lag "
        "search. Each engine and panel runs in a fresh process (its peak memory alone)."
    )
    print(
        "statsmodels times are EXTRAPOLATED: coint timed on a random sample of "
        f"{args.sample} couples (BLAS threads default and 1, the faster kept), times the "
        "number of couples."
    )
    header = (
        f"{'coins':>5} {'couples':>8} | {'batch s':>8} {'per-couple s':>12} "
        f"{'statsmodels s*':>14} | {'per-couple/batch':>16} {'statsmodels/batch':>17} | "
        f"{'batch MiB traced/RSS':>20} {'per-couple MiB traced/RSS':>25}"
    )
    rows, notes = [], []
    for n in widths:
        batch = in_fresh_process("batch", n, args.candles, args.runs)
        ref = in_fresh_process("per-couple", n, args.candles, args.ref_runs)
        data = panel(n, args.candles)
        per, size, elapsed, (p_batch, p_ref) = statsmodels_sample(
            data, [batch.result, ref.result], args.sample
        )
        couples = n * (n - 1)
        t_sm = per * couples
        rows.append(
            f"{n:>5} {couples:>8} | {batch.seconds:>8.3f} {ref.seconds:>12.2f} "
            f"{t_sm:>14.1f} | {ref.seconds / batch.seconds:>15.1f}x "
            f"{t_sm / batch.seconds:>16.0f}x | "
            f"{batch.traced_mib:>8.0f} / {batch.rss_mib:<9.0f} "
            f"{ref.traced_mib:>10.0f} / {ref.rss_mib:<12.0f}"
        )
        notes.append(
            f"{n} coins: batch vs per-couple: {parity(batch.result, ref.result)}; "
            f"vs statsmodels on {size} sampled couples ({elapsed:.1f} s, {per * 1e3:.2f} ms "
            f"each): max |p diff| batch {p_batch:.1e}, per-couple {p_ref:.1e}"
        )
        print(f"  done: {n} coins", file=sys.stderr, flush=True)
    print(header)
    print("-" * len(header))
    print("\n".join(rows))
    print(
        f"* extrapolated. batch: best of {args.runs}, per-couple: best of {args.ref_runs}. "
        "Targets: 500 coins in <= 3 s, peak < 2048 MiB, p-values within 1e-6 of statsmodels."
    )
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: batched Engle-Granger engine against looping statsmodels ``coint``.

Prints, side by side on the same machine and the same panel:
* the engine's wall time for every ordered couple of N coins x T candles (best of R runs),
* statsmodels ``coint(y, x, trend="c", autolag="aic")`` timed on a random sample of the
  same couples and extrapolated linearly to all of them (said so in the output), and the
  ratio of the two,
* the engine's peak traced memory (tracemalloc, numpy allocations included) for 200 coins,
* the largest p-value difference on the sampled couples, so speed never hides a wrong
  answer.

The panel is the real shared data (every coin spanning the last T candles) widened with
independent random-walk coins up to N columns, because the shared data has 35 coins.

    python benchmarks/bench_scan.py [--coins 100] [--candles 1440] [--sample 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from statsmodels.tsa.stattools import coint

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from statarb.cointegration import engle_granger  # noqa: E402

FUTURES = ROOT.parent / "shared" / "data" / "binance" / "futures"


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


def best_of(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--coins", type=int, default=100)
    ap.add_argument("--candles", type=int, default=1440)
    ap.add_argument("--sample", type=int, default=300, help="couples timed with statsmodels")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--memory-coins", type=int, default=200)
    args = ap.parse_args()

    data = panel(args.coins, args.candles)
    n = data.shape[1]
    couples = n * (n - 1)
    print(
        f"machine: {os.cpu_count()} cores; panel {n} coins x {args.candles} candles "
        f"({sum(not c.startswith('RW') for c in data.columns)} real shared coins, rest "
        f"random walks) = {couples} ordered couples, AIC lag search"
    )

    engle_granger(data)  # warm-up (imports, thread pool)
    t_engine = best_of(lambda: engle_granger(data), args.runs)
    result = engle_granger(data)

    rng = np.random.default_rng(0)
    idx = rng.choice(couples, size=min(args.sample, couples), replace=False)
    sample = result.iloc[idx]
    arrays = {c: data[c].to_numpy() for c in data.columns}
    worst = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        for row in sample.itertuples(index=False):
            ref = coint(arrays[row.y], arrays[row.x], trend="c", autolag="aic")
            worst = max(worst, abs(float(ref[1]) - row.pvalue))
        t_sample = time.perf_counter() - start
    t_sm = t_sample / len(sample) * couples

    print(
        f"engine (statarb.cointegration.engle_granger): {t_engine:8.3f} s  "
        f"(best of {args.runs}; target < 1 s)"
    )
    print(
        f"statsmodels coint loop:  {t_sm:8.1f} s  (EXTRAPOLATED from {len(sample)} randomly "
        f"sampled couples timed in {t_sample:.2f} s: {t_sample / len(sample) * 1e3:.2f} ms each)"
    )
    print(f"speed-up: {t_sm / t_engine:8.0f}x  (target >= 300x)")
    print(f"max |p-value difference| on the sampled couples: {worst:.2e}  (target <= 1e-6)")

    big = panel(args.memory_coins, args.candles)
    m = big.shape[1]
    tracemalloc.start()
    t0 = time.perf_counter()
    engle_granger(big)
    t_big = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"memory: {m} coins ({m * (m - 1)} ordered couples) peak traced {peak / 2**20:8.1f} MiB "
        f"(target < 2048 MiB), {t_big:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

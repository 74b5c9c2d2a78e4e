"""Profile of the batch Engle-Granger engine against this machine's arithmetic limit.

Prints:
* the machine's matrix-multiply speed (a 4000 x 4000 float64 numpy matmul, BLAS at its
  default threads and at one thread): the arithmetic limit the flop counts are held to;
* the flops the engine needs for one scan of N coins x T candles, split into the
  coin-level matrix products and the per-couple work (the bordered Cholesky
  factorisations of the lag search and of the final regression, the Gram assembly, the
  head/tail tables, the residual pass), and the time they would take at that limit;
* the measured wall time (best of R, default threads) and a single-threaded breakdown by
  stage, in seconds and microseconds per couple.

Not a unit test. The breakdown wraps the engine's private stages and runs its chunks in
one thread (so that stage times add up); the wall time is the plain call.

    python benchmarks/profile_scan.py [--coins 500] [--candles 1440] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_scan import panel  # noqa: E402

from statarb.core import cointegration as engine  # noqa: E402

STAGES = {
    "_panel_sums": "coin-level matrix products (BLAS threads)",
    "couple_adf": "compiled per-couple kernel (sums, tables, Gram, Cholesky)",
    "_moments": "spread moments and AR(1) lambda",
}


def matmul_gflops(threads: int | None, size: int = 4000) -> float:
    a = np.random.default_rng(0).normal(size=(size, size))
    with threadpool_limits(limits=threads):
        a @ a
        best = min(_timed(lambda: a @ a) for _ in range(3))
    return 2 * size**3 / best / 1e9


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class _Serial:
    """Stands in for the engine's thread pool: chunks one after another, in this thread."""

    def __init__(self, max_workers: int) -> None:
        del max_workers

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn: Callable[[Any], Any], items: Iterator[Any]) -> Iterator[Any]:
        return map(fn, items)


@contextmanager
def stage_clock(spent: dict[str, float]) -> Iterator[None]:
    """Time the engine's stages (module functions) while inside, then restore them."""
    lock = threading.Lock()
    saved = {name: getattr(engine, name) for name in STAGES}
    saved_pool = engine.ThreadPoolExecutor

    def clocked(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

        return run

    try:
        for name, fn in saved.items():
            setattr(engine, name, clocked(name, fn))
        engine.ThreadPoolExecutor = _Serial  # type: ignore[misc, assignment]
        yield
    finally:
        for name, fn in saved.items():
            setattr(engine, name, fn)
        engine.ThreadPoolExecutor = saved_pool  # type: ignore[misc]


def flops(n_coins: int, candles: int, lags: np.ndarray) -> dict[str, float]:
    """Floating-point operations of one scan (a multiply-add counts 2)."""
    k, n = n_coins, candles - 1
    maxlag = engine.default_maxlag(candles)
    couples = k * (k - 1)
    q = maxlag + 2
    panel_products = sum(2.0 * k * k * (n - h) for h in range(maxlag + 1)) + 2.0 * k * k * n
    tables = 2.0 * (maxlag * (maxlag + 1) + maxlag * (maxlag + 1) / 2 + 4 * maxlag)
    per_couple = {
        "lag-search Cholesky ((K+2)^3/6 multiply-adds)": 2.0 * q**3 / 6,
        "final Cholesky ((lag+2)^3/6, mean over couples)": float(
            np.mean(2.0 * (lags + 2.0) ** 3 / 6)
        ),
        "Gram assembly (2 subtractions per lower-triangle entry)": 2.0 * q * (q + 1) / 2,
        "head/tail tables and the b recurrence": tables,
        "residual e = Y - beta X, its total and crossings": 5.0 * candles,
    }
    out = {"coin-level matrix products (A[h], B, 2 K+2 products)": panel_products}
    out.update({name: value * couples for name, value in per_couple.items()})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--coins", type=int, default=500)
    ap.add_argument("--candles", type=int, default=1440)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    peak = matmul_gflops(None)
    single = matmul_gflops(1)
    print(
        f"matmul 4000x4000 float64: {peak:.1f} GFLOP/s (default threads), "
        f"{single:.1f} (1 thread)"
    )

    data = panel(args.coins, args.candles)
    couples = args.coins * (args.coins - 1)
    engine.engle_granger(panel(8, args.candles))  # warm-up
    wall = min(_timed(lambda: engine.engle_granger(data)) for _ in range(args.runs))
    result = engine.engle_granger(data)
    counts = flops(args.coins, args.candles, result["lag"].to_numpy(dtype=np.float64))
    total = sum(counts.values())
    print(
        f"\nflops of one scan, {args.coins} coins x {args.candles} candles "
        f"({couples} ordered couples, maxlag {engine.default_maxlag(args.candles)}):"
    )
    for name, value in counts.items():
        print(
            f"  {name:58s} {value / 1e9:7.2f} GFLOP  {value / couples / 1e3:7.1f} kflop/couple"
            f"  {value / (peak * 1e9):6.3f} s at the limit"
        )
    print(f"  {'total':58s} {total / 1e9:7.2f} GFLOP  -> {total / (peak * 1e9):.3f} s at the limit")
    print(
        f"\nmeasured: {wall:.3f} s wall (best of {args.runs}, default threads): "
        f"{total / wall / 1e9:.1f} GFLOP/s, {100 * total / wall / (peak * 1e9):.0f}% of the "
        f"matmul limit"
    )

    spent: dict[str, float] = {}
    with stage_clock(spent):
        start = time.perf_counter()
        engine.engle_granger(data)
        serial = time.perf_counter() - start
    print(f"\nsingle-threaded breakdown (chunks in one thread): {serial:.3f} s")
    accounted = 0.0
    for name, label in STAGES.items():
        value = spent.get(name, 0.0)
        if not label.startswith(" "):
            accounted += value
        print(f"  {label:58s} {value:7.3f} s  {value / couples * 1e6:6.2f} us/couple")
    rest = serial - accounted
    print(
        f"  {'the rest (OLS step, p-values, half-lives, frame)':58s} {rest:7.3f} s  "
        f"{rest / couples * 1e6:6.2f} us/couple"
    )
    products = spent.get("_panel_sums", 0.0)
    first = next(iter(counts.values()))
    print(
        f"  coin-level products ran at {first / products / 1e9:.1f} GFLOP/s "
        f"({100 * first / products / (peak * 1e9):.0f}% of the limit)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

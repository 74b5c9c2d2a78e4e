"""Benchmark: the research sweep and the formation cache, against a Freqtrade backtest.

What is measured, side by side on this machine and in this session:

1. ``freqtrade backtesting`` of the default strategy on all the shared data, once with an
   empty user data directory (the walk-forward formations are computed) and once more with
   the formation cache the first run left (``user_data/statarb_cache``): the cache's saving
   for ``make backtest`` and hyperopt.
2. The research evaluation of the same default variant in-process: formations built
   (cold), then the variant alone on formations in memory (what every further variant
   of a sweep costs), and the ratio against the Freqtrade backtest.
3. The benchmark sweep (``research/bench.yml``, 288 variants) with ``--jobs`` local
   processes: with an empty formation cache and again with the cache the first sweep
   wrote; the target is under 10 minutes.

    python benchmarks/bench_research.py [--datadir DIR] [--variants research/bench.yml]
        [--jobs 2] [--skip-freqtrade]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pandas as pd  # noqa: E402

from statarb.research.cache import FormationCache  # noqa: E402
from statarb.research.evaluate import Workbench  # noqa: E402
from statarb.research.sweep import run_sweep  # noqa: E402
from statarb.research.variants import load_variants  # noqa: E402

CCXT_MARKETS = ROOT.parent / "shared" / "markets" / "binance_usdm_markets.json"
TARGET_SWEEP_S = 600.0


def freqtrade_runs(datadir: Path, tmp: Path) -> tuple[float, float, int]:
    """Seconds of a cold and a warm-cache ``freqtrade backtesting``, and their trades."""
    from bench_backtest import OVERLAY, RunFailed, backtest, child_env

    from statarb.sim.market_data import DEFAULT_MARKETS, MarketData
    from statarb.sim.run import write_overlay
    from statarb.sim.server import SimServer

    env = child_env()
    with SimServer(market_data=MarketData(datadir, DEFAULT_MARKETS)) as sim:
        overlay = write_overlay(OVERLAY, sim.port, datadir, tmp)
        kwargs = {"overlay": overlay, "datadir": datadir, "timerange": "20240101-20260101",
                  "env": env}
        try:
            cold = backtest("CointPairsStrategy", workdir=tmp / "cold", **kwargs)
            cache = tmp / "cold" / "user_data" / "statarb_cache"
            if not any(cache.glob("formations-*.npz")):
                raise RunFailed(f"the cold backtest left no formation cache in {cache}")
            shutil.copytree(cache, tmp / "warm" / "user_data" / "statarb_cache")
            warm = backtest("CointPairsStrategy", workdir=tmp / "warm", **kwargs)
        except RunFailed as exc:
            raise SystemExit(f"FAILED {exc}") from exc
    if cold.trades != warm.trades:
        raise SystemExit(f"FAILED: cold {cold.trades} trades, warm {warm.trades}")
    return cold.seconds, warm.seconds, cold.trades


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datadir", type=Path, default=ROOT.parent / "shared" / "data" / "binance")
    ap.add_argument("--variants", type=Path, default=ROOT / "research" / "bench.yml")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-freqtrade", action="store_true")
    args = ap.parse_args()
    datadir = args.datadir.resolve()
    from bench_backtest import cpu_line

    print(cpu_line(), flush=True)
    config = json.loads((ROOT / "config.json").read_text())
    variants = load_variants(args.variants)
    split = pd.Timestamp("2025-03-14", tz="UTC")
    with tempfile.TemporaryDirectory(prefix="statarb-bench-research-") as name:
        tmp = Path(name)
        ft = None
        if not args.skip_freqtrade:
            ft = freqtrade_runs(datadir, tmp)
            print(f"freqtrade backtesting, default strategy: {ft[0]:.1f} s with empty cache, "
                  f"{ft[1]:.1f} s with the formation cache ({ft[0] - ft[1]:.1f} s saved, "
                  f"{ft[2]} trades both)", flush=True)
        started = time.perf_counter()
        bench = Workbench.from_files(config, datadir, CCXT_MARKETS)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        bench.run({}, {}, split=split)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        outcome = bench.run({}, {"entry_z": 2.2}, split=split)
        warm_s = time.perf_counter() - started
        print(f"research, one variant: data {load_s:.1f} s, formations + variant {cold_s:.1f} s,"
              f" a further variant {warm_s:.2f} s ({len(outcome.legs)} legs)", flush=True)
        if ft:
            print(f"ratio freqtrade backtest / research variant: cold {ft[0] / cold_s:.1f}x, "
                  f"further variant {ft[0] / warm_s:.0f}x", flush=True)
        times = []
        for label in ("empty cache", "warm cache"):
            fresh = Workbench.from_files(config, datadir, CCXT_MARKETS,
                                         cache=FormationCache(tmp / "research_cache"))
            started = time.perf_counter()
            table = run_sweep(fresh, variants, split, n_jobs=args.jobs)
            seconds = time.perf_counter() - started
            times.append(seconds)
            c = fresh.cache
            print(f"sweep of {len(table)} variants, {args.jobs} jobs, {label}: {seconds:.1f} s "
                  f"({c.misses} formation set(s) built in {c.build_seconds:.1f} s of worker "
                  f"time, {c.hits} loaded in {c.load_seconds:.1f} s)", flush=True)
    verdict = "met" if times[0] <= TARGET_SWEEP_S else "NOT met"
    print(f"target: a sweep of >= 200 variants in <= {TARGET_SWEEP_S:.0f} s: {verdict} "
          f"({len(variants)} variants, {times[0]:.1f} s cold, {times[1]:.1f} s warm; "
          f"the cache saves {times[0] - times[1]:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

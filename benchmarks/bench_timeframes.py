"""Benchmark: a 15m Freqtrade backtest of the 5m data's coins over the year, against the
1h backtest of the same coins and year (target: at most 2x).

Both timeframes are made from the 5m candles the way a user makes them (``freqtrade
download-data`` through the simulator, :mod:`statarb.tools.timeframe_data`), before any
timing. Each timeframe runs twice on one user data directory: the first run builds the
walk-forward formations and writes them to the formation cache, the second reads them;
the target compares the second runs ("formations cached"). Runs alternate between the
timeframes. Same checks as ``bench_backtest.py``: exit 0, a summary, no ERROR.

    python benchmarks/bench_timeframes.py [--datadir ../shared/data/binance_5m]
        [--timerange 20240101-20260101] [--timeframes 1h,15m]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_backtest import CONFIG, OVERLAY, RunFailed, backtest, child_env, cpu_line  # noqa: E402

from statarb.sim.market_data import DEFAULT_MARKETS, MarketData  # noqa: E402
from statarb.sim.run import write_overlay  # noqa: E402
from statarb.sim.server import SimServer  # noqa: E402
from statarb.tools.timeframe_data import datadir_for, pairs_with_data  # noqa: E402

TARGET_RATIO = 2.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datadir", type=Path, default=ROOT.parent / "shared" / "data" / "binance_5m")
    ap.add_argument("--markets", type=Path, default=DEFAULT_MARKETS)
    ap.add_argument("--timerange", default="20240101-20260101")
    ap.add_argument("--timeframes", default="1h,15m")
    args = ap.parse_args()
    if not args.datadir.is_dir():
        ap.error(f"--datadir {args.datadir}: no such directory")
    timeframes = args.timeframes.split(",")
    if len(timeframes) != 2:
        ap.error("--timeframes takes two, the reference first (1h,15m)")
    print(cpu_line())
    market = MarketData(args.datadir, args.markets)
    whitelist = json.loads(CONFIG.read_text())["exchange"]["pair_whitelist"]
    pairs = pairs_with_data(market, whitelist)
    print(f"{len(pairs)} coins of {args.datadir}, timerange {args.timerange}, timeframes "
          f"{', '.join(timeframes)}; each run twice, formations cached on the second")
    env = child_env()
    best: dict[str, list[float]] = {tf: [] for tf in timeframes}
    with tempfile.TemporaryDirectory(prefix="statarb-bench-tf-") as tmp_name, \
            SimServer(market_data=market) as sim:
        tmp = Path(tmp_name)
        data = {tf: datadir_for(args.datadir, tf, tmp / "data", args.markets)
                for tf in timeframes}
        overlay = write_overlay(OVERLAY, sim.port, args.datadir.resolve(), tmp)
        for attempt in range(2):
            for tf in timeframes:
                try:
                    run = backtest(
                        "CointPairsStrategy", overlay=overlay, datadir=data[tf],
                        timerange=args.timerange, workdir=tmp / f"run-{attempt}-{tf}", env=env,
                        extra=("--timeframe", tf, "--pairs", *pairs),
                        userdir=tmp / f"user_data_{tf}")
                except RunFailed as exc:
                    print(f"FAILED {exc}", file=sys.stderr)
                    return 1
                label = "formations built" if attempt == 0 else "formations cached"
                print(f"  {tf:>4} ({label}): {run.seconds:6.1f} s, {run.trades} trades",
                      flush=True)
                best[tf].append(run.seconds)
    ref, other = timeframes
    ratio = best[other][1] / best[ref][1]
    print(f"{other} / {ref} with formations cached: {best[other][1]:.1f} s / "
          f"{best[ref][1]:.1f} s = {ratio:.2f}x (built: {best[other][0]:.1f} s / "
          f"{best[ref][0]:.1f} s = {best[other][0] / best[ref][0]:.2f}x)")
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"target: {other} at most {TARGET_RATIO:.0f}x the {ref} backtest: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

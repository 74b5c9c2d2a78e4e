"""Benchmark: the full offline strategy backtest against Freqtrade's own sample strategy.

A backtest time means little on its own: it depends on the machine, the data and
Freqtrade's fixed costs (imports, exchange set-up, data loading, result export). Running
Freqtrade's ``SampleStrategy`` on exactly the same config, pairs, datadir, timerange and
export, on the same machine and in the same session, gives a yardstick for those fixed
costs, so the ratio says how much the strategy itself adds.

Each run is one complete ``freqtrade backtesting`` subprocess, timed from start to exit
(data loading and export included), the same command as ``make backtest`` except that:

* the markets come from one in-process simulator (``statarb.sim``) started before any
  timing, so its start-up is not charged to either strategy;
* results, logs and the user data directory go to a temporary directory, so the
  repository's ``user_data`` is never touched;
* the sample strategy is copied from the installed Freqtrade package into a temporary
  strategy directory at run time, so no copy of it ever lives in the repository;
* HTTP proxies point at a closed port so a request to a real host fails.

A run counts only if it exits 0, prints Freqtrade's summary tables and logs no ERROR:
Freqtrade exits 0 on some configuration errors, so the exit code alone proves nothing.
Runs alternate between the two strategies (and swap which goes first on every repeat), so
a warming page cache or a busy neighbour does not favour one side.

    python benchmarks/bench_backtest.py [--timerange 20240101-20260101] [--repeat 1]
        [--strategy CointPairsStrategy] [--datadir DIR] [--markets FILE]
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from statarb.harness.offline import offline_env  # noqa: E402
from statarb.sim.market_data import DEFAULT_DATADIR, DEFAULT_MARKETS, MarketData  # noqa: E402
from statarb.sim.run import write_overlay  # noqa: E402
from statarb.sim.server import SimServer  # noqa: E402

FREQTRADE = Path(sys.executable).parent / "freqtrade"
CONFIG = ROOT / "config.json"
OVERLAY = ROOT / "config.offline.json"
SAMPLE = "SampleStrategy"
TARGET_S = 300.0
# Export as `make backtest` does; both strategies pay for the same export.
EXPORT = "signals"
# Freqtrade prints at least one of these headings with the results of a completed backtest.
SUMMARY_MARKERS = ("STRATEGY SUMMARY", "SUMMARY METRICS")
# Freqtrade's log format is "<time> - <logger> - <LEVEL> - <message>".
ERROR_MARKERS = (" - ERROR - ", " - CRITICAL - ")
RUN_TIMEOUT_S = 3600


class RunFailed(RuntimeError):
    """A backtest that did not complete; the message carries the tail of its output."""


@dataclass(frozen=True)
class Run:
    """One timed backtest: wall seconds and the number of trades it reported."""

    strategy: str
    seconds: float
    trades: int


def child_env() -> dict[str, str]:
    """Environment of the Freqtrade subprocess.

    Proxies go to a closed loopback port, so anything that tries to leave the machine fails
    loudly instead of silently timing a network round trip. No REST API credentials: the
    project's config.json has no api_server section (that is config.api.json, for
    ``make dry-run``), and credentials in the environment would make Freqtrade build one
    without ``enabled`` and refuse it. A wide COLUMNS keeps Freqtrade's tables readable
    when the output is shown after a failure.
    """
    return offline_env(COLUMNS="200")


def copy_sample_strategy(target: Path) -> Path:
    """Copy Freqtrade's bundled sample strategy into ``target``; return the directory.

    Taken from the installed package, so it always matches the Freqtrade version that runs
    it and never needs to be kept in the repository.
    """
    source = importlib.resources.files("freqtrade.templates") / "sample_strategy.py"
    target.mkdir(parents=True, exist_ok=True)
    (target / "sample_strategy.py").write_text(source.read_text(encoding="utf-8"))
    return target


def count_trades(results: Path, strategy: str) -> int:
    """Number of trades in the result archive Freqtrade wrote into ``results``.

    Read from the exported JSON rather than the printed tables, whose layout changes
    between Freqtrade versions and with the terminal width.
    """
    archives = sorted(results.glob("backtest-result-*.zip"))
    if not archives:
        raise RunFailed(f"{strategy}: no backtest-result-*.zip in {results}")
    with zipfile.ZipFile(archives[-1]) as archive:
        name = next(
            n for n in archive.namelist() if n.endswith(".json") and not n.endswith("_config.json")
        )
        doc = json.loads(archive.read(name))
    stats = doc["strategy"][strategy]
    return int(stats.get("total_trades", len(stats.get("trades", []))))


def backtest(
    strategy: str,
    *,
    overlay: Path,
    datadir: Path,
    timerange: str,
    workdir: Path,
    env: dict[str, str],
    strategy_path: Path | None = None,
    extra: tuple[str, ...] = (),
    userdir: Path | None = None,
) -> Run:
    """Run and time one complete ``freqtrade backtesting`` subprocess; check it completed.

    ``extra``: more arguments (a ``--timeframe``, ``--pairs``); ``userdir``: a user data
    directory kept between runs (its formation cache), instead of one in ``workdir``.
    """
    userdir = userdir or workdir / "user_data"
    userdir.mkdir(parents=True, exist_ok=True)  # Freqtrade fills one in but will not create it
    results = workdir / "backtest_results"
    results.mkdir(parents=True)
    cmd = [
        str(FREQTRADE), "backtesting",
        "--config", str(CONFIG), "--config", str(overlay),
        "--datadir", str(datadir), "--userdir", str(userdir),
        "--strategy", strategy, "--timerange", timerange,
        "--export", EXPORT, "--backtest-directory", str(results), "--cache", "none",
        *extra,
    ]  # fmt: skip
    if strategy_path is not None:
        cmd += ["--strategy-path", str(strategy_path)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,  # config.json's strategy_path is relative to the repository
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise RunFailed(f"{strategy}: no exit after {RUN_TIMEOUT_S} s") from exc
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    tail = "\n".join(output.splitlines()[-40:])
    if proc.returncode != 0:
        raise RunFailed(f"{strategy}: exit code {proc.returncode}\n{tail}")
    errors = [line for line in output.splitlines() if any(m in line for m in ERROR_MARKERS)]
    if errors:
        raise RunFailed(f"{strategy}: logged errors despite exit code 0\n" + "\n".join(errors))
    if not any(marker in proc.stdout for marker in SUMMARY_MARKERS):
        raise RunFailed(f"{strategy}: exit code 0 but no results summary printed\n{tail}")
    return Run(strategy, seconds, count_trades(results, strategy))


def cpu_line() -> str:
    """CPU count, and the CPUs this process may actually use when a container limits it."""
    total = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total
    extra = f", {usable} usable by this process" if usable != total else ""
    return f"machine: {total} CPUs{extra}; {platform.python_implementation()} " + (
        f"{platform.python_version()} on {platform.system()} {platform.machine()}"
    )


def describe(label: str, runs: list[Run]) -> str:
    """One result line: best time, all times and the trade count(s)."""
    best = min(r.seconds for r in runs)
    times = ", ".join(f"{r.seconds:.1f}" for r in runs)
    trades = sorted({r.trades for r in runs})
    trade_text = str(trades[0]) if len(trades) == 1 else "/".join(map(str, trades))
    return f"{label:<28} best {best:7.1f} s  (all runs: {times} s)  trades: {trade_text}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--timerange", default="20240101-20260101")
    ap.add_argument("--datadir", type=Path, default=DEFAULT_DATADIR)
    ap.add_argument("--markets", type=Path, default=DEFAULT_MARKETS)
    ap.add_argument("--repeat", type=int, default=1, help="runs per strategy; best is reported")
    ap.add_argument("--strategy", default="CointPairsStrategy")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if not args.datadir.is_dir():
        ap.error(f"--datadir {args.datadir}: no such directory")
    if not args.markets.is_file():
        ap.error(f"--markets {args.markets}: no such file")
    datadir = args.datadir.resolve()

    from freqtrade import __version__ as ft_version

    print(cpu_line())
    print(
        f"freqtrade {ft_version} backtesting, timerange {args.timerange}, --export {EXPORT}, "
        f"--cache none; datadir {datadir}; {args.repeat} run(s) per strategy"
    )
    env = child_env()
    runs: dict[str, list[Run]] = {args.strategy: [], SAMPLE: []}
    with (
        tempfile.TemporaryDirectory(prefix="statarb-bench-") as tmp_name,
        SimServer(market_data=MarketData(datadir, args.markets)) as sim,
    ):
        tmp = Path(tmp_name)
        overlay = write_overlay(OVERLAY, sim.port, datadir, tmp)
        sample_dir = copy_sample_strategy(tmp / "sample_strategy")
        paths: dict[str, Path | None] = {args.strategy: None, SAMPLE: sample_dir}
        for i in range(args.repeat):
            order = [args.strategy, SAMPLE] if i % 2 == 0 else [SAMPLE, args.strategy]
            for strategy in order:
                try:
                    run = backtest(
                        strategy,
                        overlay=overlay,
                        datadir=datadir,
                        timerange=args.timerange,
                        workdir=tmp / f"run-{i}-{strategy}",
                        env=env,
                        strategy_path=paths[strategy],
                    )
                except RunFailed as exc:
                    print(f"FAILED {exc}", file=sys.stderr)
                    return 1
                runs[strategy].append(run)
                print(
                    f"  run {i + 1}/{args.repeat} {strategy}: {run.seconds:.1f} s, "
                    f"{run.trades} trades",
                    flush=True,
                )
                shutil.rmtree(tmp / f"run-{i}-{strategy}", ignore_errors=True)
        served = ", ".join(f"{path} x{n}" for path, n in sorted(sim.stats.by_path.items()))

    best = min(r.seconds for r in runs[args.strategy])
    best_sample = min(r.seconds for r in runs[SAMPLE])
    print(describe(args.strategy, runs[args.strategy]))
    print(describe(f"{SAMPLE} (freqtrade)", runs[SAMPLE]))
    print(f"ratio {args.strategy}/{SAMPLE}: {best / best_sample:.2f}x  (best against best)")
    verdict = "met" if best <= TARGET_S else "NOT met"
    print(f"target: full backtest <= {TARGET_S:.0f} s: {verdict} ({best:.1f} s)")
    print(f"simulator requests over all runs: {served or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

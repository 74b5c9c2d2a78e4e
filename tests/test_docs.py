"""Every command the README and docs/ show is run by a test, exactly as written.

A command a reader types sits in a ```sh block. Each one must be listed in
:data:`RUN_BY` with the test that runs that exact string; a new command in the docs
fails here until a test runs it. The README's plain ``freqtrade`` commands are run below,
against the simulator on port 8765 (what ``make sim`` serves), and must find data and
write a plot: a backtest that finds no data, or a plot command that writes 0 plots, fails.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from statarb.harness.offline import stop_process
from tests.offline import REPO, offline_env, wait_for
from tests.shared_data import DATADIR, require_shared

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_OFFLINE = "--config config.json --config config.offline.json"
BACKTEST = (f"freqtrade backtesting {_OFFLINE} --strategy CointPairsStrategy "
            "--timerange 20251001-20251201")
PLOT = (f"freqtrade plot-dataframe {_OFFLINE} --strategy CointPairsStrategy "
        "-p WLD/USDT:USDT --timerange 20251001-20251201 --no-trades")
BASELINE = f"freqtrade backtesting {_OFFLINE} --strategy TrendBaselineStrategy " \
    "--timerange 20250101-20250401"
WRAPPED = f"python -m statarb.sim.run -- {BASELINE}"
PAIRLIST = f"freqtrade test-pairlist {_OFFLINE}"
DOWNLOAD = (f"freqtrade download-data {_OFFLINE} --datadir /tmp/dl "
            "--timerange 20250101-20250201 --timeframes 1h")
TELEGRAM = "python -m tests.telegram_fake --port 8081"
HERE = "tests/test_docs.py::test_the_plain_commands_against_make_sim"
FC = "tests/test_freqtrade_commands.py"
HYPEROPT = "test_hyperopt_runs_in_parallel_workers_and_the_parameters_change_the_result"
DRY_RUN = "test_dry_run_trades_the_published_couples_and_keeps_legs_together"
RESEARCH = "test_research_command_writes_table_csv_chart_and_runnable_variant"
TIMEFRAMES = "test_the_timeframe_sweep_reports_each_timeframe_the_costs_and_the_coarsening"

#: Shown command -> the test that runs exactly that string.
RUN_EXACTLY: dict[str, str] = {
    "make backtest": "tests/test_backtest_offline.py::test_make_backtest_as_written",
    "make backtest DATADIR=../shared/data/binance_5m TIMEFRAME=15m":
        "tests/test_backtest_offline.py::test_make_backtest_at_15m_on_the_5m_data",
    "make test": ".ci/run",
    "make sim": HERE,
    BACKTEST: HERE, PLOT: HERE, BASELINE: HERE, WRAPPED: HERE, PAIRLIST: HERE, DOWNLOAD: HERE,
    TELEGRAM: "tests/test_docs.py::test_the_fake_telegram_command_prints_what_to_export",
}
#: Shown ``make`` target -> the test that runs the Freqtrade or module command of its
#: recipe (through the same simulator wrapper), not ``make`` itself.
RUN_AS_RECIPE: dict[str, str] = {
    "make test-fast": "tests/test_docs.py::test_make_test_fast_is_the_unit_tier",
    "make hyperopt": f"{FC}::{HYPEROPT}",
    "make plot": f"{FC}::test_plot_dataframe_draws_the_couple_subplots_and_trades",
    "make analysis": f"{FC}::test_backtesting_analysis_groups_the_trades_by_couple",
    "make test-pairlist": f"{FC}::test_test_pairlist_prints_the_coins_of_the_chosen_couples",
    "make bias": f"{FC}::test_lookahead_analysis_finds_no_bias",
    "make dry-run": f"tests/test_dry_run_e2e.py::{DRY_RUN}",
    "make dry-run DATADIR=../shared/data/binance_5m TIMEFRAME=15m "
    "REPLAY_START=2025-06-11T01:00:00Z":
        "tests/test_dry_run_15m.py::test_dry_run_at_15m_selects_analyses_and_opens_a_couple",
    "make spread": f"tests/test_research_timeframes.py::{TIMEFRAMES}",
    "make research-timeframes": f"tests/test_research_timeframes.py::{TIMEFRAMES}",
    "make chaos": "tests/test_chaos.py::test_scenario",
    "make research": f"tests/test_research.py::{RESEARCH}",
    "make scan": "tests/test_scan.py::test_explicit_coins_and_timerange_through_the_cli",
    "make report": "tests/test_report.py",
}
#: Shown, and not run by the suite: benchmarks of minutes of full-data work each, which
#: print their figures for a person to read.
BENCHMARKS = {"make bench", "make bench-walkforward", "make bench-research",
              "make bench-backtest"}


def shown_commands() -> dict[str, list[str]]:
    """Command -> the files that show it, from every ```sh block (comments dropped)."""
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        for block in re.findall(r"^```sh\n(.*?)^```$", doc.read_text(encoding="utf-8"),
                                flags=re.S | re.M):
            for line in block.splitlines():
                command = line.split(" #", 1)[0].strip()
                if command and not command.startswith("#"):
                    found.setdefault(command, []).append(doc.name)
    return found


def test_every_shown_command_is_run_by_a_named_test() -> None:
    install = (REPO / "docs" / "install.md").read_text(encoding="utf-8")
    installed = {line.strip() for block in re.findall(r"^```sh\n(.*?)^```$", install,
                                                       flags=re.S | re.M)
                 for line in block.splitlines() if line.strip()}
    known = {*RUN_EXACTLY, *RUN_AS_RECIPE, *BENCHMARKS, *installed}
    missing = {c: files for c, files in shown_commands().items() if c not in known}
    assert missing == {}, f"commands shown but run by no test: {missing}"
    for command, where in {**RUN_EXACTLY, **RUN_AS_RECIPE}.items():
        path, _, name = where.partition("::")
        text = (REPO / path).read_text(encoding="utf-8")
        assert not name or f"def {name}(" in text, (command, where)
    makefile = (REPO / "Makefile").read_text()
    for command in [*RUN_AS_RECIPE, *BENCHMARKS]:
        assert f"\n{command.split()[1]}:" in makefile, command
    assert (REPO / ".ci" / "run").read_text().strip().endswith("make test")
    # docs/install.md's blocks are run, as written, by the wheel install test.
    assert "def test_a_user_installs_the_wheel_into_their_own_freqtrade(" in (
        REPO / "tests" / "test_install.py").read_text()


def test_make_test_fast_is_the_unit_tier() -> None:
    """``make test-fast`` runs pytest on ``-m "not slow"``, the tier tests/conftest.py
    keeps free of subprocesses."""
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ntest-fast:", 1)[1].split("\n\n", 1)[0]
    assert '-m "not slow"' in recipe and "pytest" in recipe


@pytest.mark.slow
def test_the_fake_telegram_command_prints_what_to_export() -> None:
    proc = subprocess.Popen(["bash", "-c", TELEGRAM], cwd=REPO, env=_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "fake Telegram Bot API at http://127.0.0.1:8081" in first
    assert "STATARB_TELEGRAM_API_URL=http://127.0.0.1:8081" in second


def _env() -> dict[str, str]:
    """The shell of a reader who ran ``. .venv/bin/activate``."""
    base = offline_env(COLUMNS="250")
    return {**base, "PATH": f"{Path(sys.executable).parent}:{base['PATH']}"}


@pytest.mark.slow
@pytest.mark.xdist_group("checkout")  # make sim on 8765, writes user_data
def test_the_plain_commands_against_make_sim(tmp_path: Path) -> None:
    """``make sim`` in one terminal, the README's and docs/simulator.md's plain commands in
    another, exactly as written."""
    require_shared()
    assert (REPO / "user_data" / "data" / "binance").resolve() == DATADIR.resolve()
    shutil.rmtree("/tmp/dl", ignore_errors=True)
    log = tmp_path / "sim.log"
    with log.open("w") as out:
        sim = subprocess.Popen(["bash", "-c", "exec make sim"], cwd=REPO, env=_env(),
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def up() -> bool:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8765/fapi/v1/ping", timeout=2):
                return True
        except OSError:
            return False

    outputs = {}
    try:
        wait_for("make sim on 8765", up, 120, sim, log)
        for command in (BACKTEST, PLOT, BASELINE, WRAPPED, PAIRLIST, DOWNLOAD):
            proc = subprocess.run(["bash", "-c", command], cwd=REPO, env=_env(),
                                  capture_output=True, text=True, timeout=900)
            outputs[command] = proc.stdout + proc.stderr
            assert proc.returncode == 0, (command, outputs[command][-6000:])
            assert " - ERROR - " not in outputs[command], (command, outputs[command][-6000:])
            assert "No data found" not in outputs[command], command
    finally:
        stop_process(sim)
    for command in (BACKTEST, BASELINE, WRAPPED):
        match = re.search(r"│\s*TOTAL\s*│\s*(\d+)\s*│", outputs[command])
        assert match and int(match.group(1)) >= 2, (command, outputs[command][-6000:])
    plotted = re.search(r"End of plotting process\. (\d+) plots generated", outputs[PLOT])
    assert plotted and int(plotted.group(1)) == 1, outputs[PLOT][-4000:]
    pairs = re.search(r"Pairs for USDT: \n(\[.*?\])", outputs[PAIRLIST])
    assert pairs and 2 <= pairs.group(1).count("/USDT:USDT") < 35, outputs[PAIRLIST][-3000:]
    downloaded = sorted(p.name for p in Path("/tmp/dl/futures").glob("*-1h-futures.feather"))
    assert len(downloaded) == 35, downloaded
    shutil.rmtree("/tmp/dl", ignore_errors=True)

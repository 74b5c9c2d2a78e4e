"""Every Freqtrade command the README names for CointPairsStrategy, run for real.

Each runs the plain ``freqtrade`` command with the project's config and the offline
overlay through a private simulator, as the Makefile does, and checks what a user would
look at: the result files and tables, not only the exit code (Freqtrade exits 0 after
some errors, so :func:`tests.offline.run_freqtrade` also fails on any ERROR line).

``backtesting`` on the whole data is in ``test_strategy_backtest.py``, ``trade
--dry-run`` in ``test_dry_run_e2e.py`` and ``download-data`` in ``test_sim_freqtrade.py``.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import subprocess
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from statarb.core.legs import parse_leg_tag
from statarb.sim.run import DEFAULT_OVERLAY, write_overlay
from tests.offline import (
    FREQTRADE,
    REPLAY_START,
    REPO,
    free_port,
    offline_env,
    run_freqtrade,
    stop_process,
    wait_for,
)
from tests.shared_data import DATADIR, MARKETS

pytestmark = pytest.mark.slow

STRATEGY = ["--strategy", "CointPairsStrategy", "--datadir", str(DATADIR)]
# Two months near the end of the data, where every whitelisted coin is listed.
RANGE = "20251001-20251201"


def _strategy_dir(tmp: Path) -> Path:
    """A copy of the strategy: hyperopt writes its parameter file beside it, and a run
    must not pick up a parameter file a user left in strategies/."""
    target = tmp / "strategies"
    target.mkdir()
    shutil.copy(REPO / "strategies" / "CointPairsStrategy.py", target)
    return target


def _user_data(tmp: Path) -> str:
    """A fresh Freqtrade user directory (what ``freqtrade create-userdir`` makes)."""
    root = tmp / "user_data"
    for sub in ("backtest_results", "data", "hyperopt_results", "logs", "plot"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return str(root)


@pytest.fixture(scope="module")
def short_backtest(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """One backtest of RANGE with signals exported, shared by plot and analysis."""
    tmp = tmp_path_factory.mktemp("short_bt")
    results = tmp / "backtest_results"
    results.mkdir()
    run_freqtrade(
        "backtesting", *STRATEGY, "--strategy-path", str(_strategy_dir(tmp)),
        "--timerange", RANGE, "--export", "signals", "--backtest-directory", str(results),
        "--cache", "none",
    )
    (zip_path,) = sorted(results.glob("backtest-result-*.zip"))
    with zipfile.ZipFile(zip_path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".json") and "_config" not in n)
        doc = json.loads(archive.read(name))
    trades = pd.DataFrame(doc["strategy"]["CointPairsStrategy"]["trades"])
    assert len(trades) >= 6, "the range must hold a few couple trips for the checks below"
    return results, trades


def test_backtest_enter_tag_table_has_one_row_per_couple(short_backtest) -> None:
    """Freqtrade's own report groups by enter_tag: each couple is one row holding both
    legs (the legs of a trip share the tag), with their combined profit."""
    results, trades = short_backtest
    (zip_path,) = sorted(results.glob("backtest-result-*.zip"))
    with zipfile.ZipFile(zip_path) as archive:
        doc = json.loads(archive.read(f"{zip_path.stem}.json"))
    table = {row["key"]: row for row in doc["strategy"]["CointPairsStrategy"]
             ["results_per_enter_tag"] if row["key"] != "TOTAL"}
    assert set(table) == set(trades["enter_tag"]), (sorted(table), trades["enter_tag"].unique())
    for tag, legs in trades.groupby("enter_tag"):
        assert "~" in tag and legs["pair"].nunique() == 2, (tag, legs["pair"].unique())
        assert table[tag]["trades"] == len(legs)
        assert table[tag]["profit_total_abs"] == pytest.approx(legs["profit_abs"].sum())


# ------------------------------------------------------------------ hyperopt
def test_hyperopt_runs_in_parallel_workers_and_the_parameters_change_the_result(
    tmp_path: Path,
) -> None:
    """``-j 2`` sends the strategy to joblib workers: it must pickle (a live-only lock
    did not). The epochs must differ, or the spaces would not reach the strategy."""
    epochs = 6
    strategies = _strategy_dir(tmp_path)
    output = run_freqtrade(
        "hyperopt", *STRATEGY, "--strategy-path", str(strategies),
        "--user-data-dir", _user_data(tmp_path), "--timerange", "20250701-20250901",
        "--spaces", "buy", "sell", "--hyperopt-loss", "SharpeHyperOptLossDaily",
        "--epochs", str(epochs), "-j", "2", "--random-state", "42", "--min-trades", "1",
        timeout=900,
    )
    assert "Best result:" in output, output[-3000:]
    (results_file,) = (tmp_path / "user_data" / "hyperopt_results").glob("*.fthypt")
    rows = [json.loads(line) for line in results_file.read_text().splitlines()]
    assert len(rows) == epochs
    outcomes = {(r["results_metrics"]["total_trades"],
                 round(r["results_metrics"]["profit_total"], 10)) for r in rows}
    assert len(outcomes) >= 2, outcomes
    assert all(r["results_metrics"]["total_trades"] > 0 for r in rows)
    # The best epoch's parameters are written where later backtests pick them up.
    params = json.loads((strategies / "CointPairsStrategy.json").read_text())["params"]
    best = min(rows, key=lambda r: r["loss"])
    assert params["buy"]["entry_z"] == pytest.approx(best["params_dict"]["entry_z"])
    assert params["sell"]["exit_z"] == pytest.approx(best["params_dict"]["exit_z"])


# ------------------------------------------------------------------ plot-dataframe
def _plotly_traces(html: str) -> dict[str, np.ndarray]:
    """Trace name -> y values of the figure in a plotly HTML file (binary arrays decoded)."""
    start = html.index("Plotly.newPlot(")
    start = html.index("[", start)
    traces, _ = json.JSONDecoder().raw_decode(html[start:])
    out = {}
    for trace in traces:
        y = trace.get("y")
        if isinstance(y, dict) and "bdata" in y:
            y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"]))
        out[trace.get("name", "")] = np.asarray(y if y is not None else [], dtype=object)
    return out


def test_plot_dataframe_draws_the_couple_subplots_and_trades(short_backtest, tmp_path) -> None:
    results, trades = short_backtest
    pair = trades["pair"].value_counts().index[0]  # the most traded leg
    run_freqtrade(
        "plot-dataframe", *STRATEGY, "--user-data-dir", _user_data(tmp_path),
        "-p", pair, "--timerange", RANGE, "--export-filename", str(results),
    )
    (html_file,) = (tmp_path / "user_data" / "plot").glob("*.html")
    assert pair.split("/")[0] in html_file.name
    traces = _plotly_traces(html_file.read_text())
    from strategies.CointPairsStrategy import CointPairsStrategy

    drawn = [c for sub in CointPairsStrategy.plot_config["subplots"].values() for c in sub]
    assert {"couple_z", "regime_level"} <= set(drawn)
    for name in drawn:
        assert name in traces, sorted(traces)
        values = pd.to_numeric(pd.Series(traces[name]), errors="coerce")
        assert values.notna().sum() > 24 * 7, f"{name} has almost no values"
    # Every regime draws a bar: LOW is level 1, not a gap.
    levels = pd.to_numeric(pd.Series(traces["regime_level"]), errors="coerce").dropna()
    assert levels.isin([1, 2, 3, 4]).all() and (levels == 1).any(), levels.value_counts()
    z = pd.to_numeric(pd.Series(traces["couple_z"]), errors="coerce").dropna()
    assert z.abs().max() >= 2, "no z-score reaches the entry band in a range with entries"
    # The backtest's trades of this pair are drawn on the candles.
    assert any("trade" in name.lower() for name in traces), sorted(traces)


# ------------------------------------------------------------------ backtesting-analysis
def test_backtesting_analysis_groups_the_trades_by_couple(short_backtest, tmp_path) -> None:
    results, trades = short_backtest
    out_dir = tmp_path / "analysis"
    out_dir.mkdir()
    run_freqtrade(
        "backtesting-analysis", "--backtest-directory", str(results),
        "--analysis-groups", "0", "--analysis-to-csv", "--analysis-csv-path", str(out_dir),
    )
    (table,) = out_dir.glob("*group_0*.csv")
    with table.open() as f:
        rows = list(csv.DictReader(f))
    counted = {r["enter_reason"]: int(float(r["total_num_buys"])) for r in rows}
    expected = trades["enter_tag"].value_counts().to_dict()
    assert counted == expected, (counted, expected)
    # Every group is one couple, "Y~X", holding both its legs: as many y as x entries.
    for tag, n in counted.items():
        legs = trades[trades["enter_tag"] == tag]
        roles = [parse_leg_tag(tag, pair) for pair in legs["pair"]]
        assert all(r is not None and r[0] == tag for r in roles), (tag, legs["pair"].unique())
        assert sorted(r[1] for r in roles).count("y") * 2 == n, (tag, roles)


# ------------------------------------------------------------------ test-pairlist
def test_test_pairlist_prints_the_coins_of_the_chosen_couples(tmp_path: Path) -> None:
    user_data = Path(_user_data(tmp_path))
    output = run_freqtrade(
        "test-pairlist", "--user-data-dir", str(user_data), "--print-json",
        sim_args=("--start", REPLAY_START, "--shift-to-now"),
    )
    printed = json.loads(re.findall(r"^\[.*\]$", output, re.MULTILINE)[-1])
    selection = json.loads((user_data / "statarb_selection.json").read_text())
    couples = [(c["y"], c["x"]) for c in selection["couples"]]
    assert ("WLD/USDT:USDT", "ARB/USDT:USDT") in couples  # the Makefile's replay instant
    expected = list(dict.fromkeys(p for couple in couples for p in couple))
    assert printed == expected


def test_plain_test_pairlist_against_make_sim_needs_no_exported_variable(tmp_path: Path) -> None:
    """What a user types: ``make sim`` in one terminal, then plain
    ``freqtrade test-pairlist --config config.json --config config.offline.json`` with
    nothing exported. config.json has no API server, so no credentials are needed, and
    ``make sim`` replays the data as now, so the filter finds candles up to now."""
    assert "api_server" not in json.loads((REPO / "config.json").read_text())
    port = free_port()
    env = {k: v for k, v in offline_env().items() if not k.startswith("FREQTRADE__")}
    sim_log = tmp_path / "sim.log"
    with sim_log.open("w") as out:
        sim = subprocess.Popen(
            ["make", "-s", "sim", f"SIM_PORT={port}", f"DATADIR={DATADIR}",
             f"MARKETS={MARKETS}"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/fapi/v1/ping", timeout=2):
                    return True
            except OSError:
                return False
        wait_for("make sim", up, 120, sim, sim_log)
        overlay = write_overlay(DEFAULT_OVERLAY, port, DATADIR, tmp_path)  # the port only
        user_data = Path(_user_data(tmp_path))
        proc = subprocess.run(
            [FREQTRADE, "test-pairlist", "--config", "config.json", "--config", str(overlay),
             "--user-data-dir", str(user_data), "--print-json"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    finally:
        stop_process(sim)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and " - ERROR - " not in output, output[-4000:]
    assert "required property" not in output and "no candles" not in output, output[-4000:]
    printed = json.loads(re.findall(r"^\[.*\]$", output, re.MULTILINE)[-1])
    assert {"WLD/USDT:USDT", "ARB/USDT:USDT"} <= set(printed), printed


# ------------------------------------------------------------------ bias checks
def test_lookahead_analysis_finds_no_bias(tmp_path: Path) -> None:
    report = tmp_path / "lookahead.csv"
    run_freqtrade(
        "lookahead-analysis", *STRATEGY, "--user-data-dir", _user_data(tmp_path),
        "--timerange", RANGE, "--targeted-trade-amount", "8", "--minimum-trade-amount", "6",
        "--lookahead-analysis-exportfilename", str(report), timeout=1200,
    )
    (row,) = pd.read_csv(report).to_dict("records")
    assert row["strategy"] == "CointPairsStrategy"
    assert int(row["total_signals"]) >= 6  # enough trades were really checked
    assert str(row["has_bias"]) == "False", row
    assert int(row["biased_entry_signals"]) == 0 and int(row["biased_exit_signals"]) == 0
    assert pd.isna(row["biased_indicators"]) or not str(row["biased_indicators"]).strip()


def _rich_table(output: str, title: str) -> list[list[str]]:
    """Rows of a table Freqtrade printed with rich (header first)."""
    lines = output[output.index(title):].splitlines()[1:]
    rows = []
    for line in lines:
        if line.startswith(("┏", "┡", "└")):
            if line.startswith("└"):
                break
            continue
        if line.startswith(("┃", "│")):
            rows.append([c.strip() for c in re.split(r"[┃│]", line)[1:-1]])
    return rows


def test_recursive_analysis_is_stable_at_the_declared_startup(tmp_path: Path) -> None:
    """A pair that is in a couple at the end of the range, so the couple columns have
    values to compare: missing below the formation window, equal from the declared
    startup candle count on."""
    output = run_freqtrade(
        "recursive-analysis", *STRATEGY, "--user-data-dir", _user_data(tmp_path),
        "--timerange", "20251001-20251107", "-p", "WLD/USDT:USDT",
    )
    header, *rows = _rich_table(output, "Recursive Analysis")
    declared = next(i for i, h in enumerate(header) if "from strategy" in h)
    assert header[declared].startswith("1540")
    table = {r[0]: r for r in rows}
    assert {"couple_z", "couple_spread", "couple_beta"} <= set(table), table
    for name, row in table.items():
        assert row[declared] == "-", f"{name} differs at the declared startup: {row}"
        for i in range(declared + 1, len(header)):
            assert row[i] == "-", f"{name} differs with more startup candles: {row}"
    # Too little history shows: the check had real values to compare.
    assert table["couple_z"][header.index("199")] != "-"
    assert "No lookahead bias on indicators found" in output

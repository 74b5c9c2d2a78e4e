"""The research command: engine pieces against Freqtrade, the formation cache, the sweep
(local processes and a dask cluster give the same numbers), the honest choice and the CLI.

The engine's parity with a real ``freqtrade backtesting`` run over all the shared data is
in tests/test_strategy_backtest.py (it reuses that module's backtest).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from statarb.core.policy import STRATEGY_PARAMS
from statarb.research.cache import FormationCache
from statarb.research.engine import Account, FundingBook
from statarb.research.evaluate import DEFAULT_PARAMS, Workbench
from statarb.research.sweep import MIN_TRIPS, choose, run_sweep
from statarb.research.variants import parse_variants
from tests.offline import REPO
from tests.research_data import PAIRS, SMALL, small_config
from tests.shared_data import CCXT_MARKETS, DATADIR, require_shared

HOUR = pd.Timedelta(hours=1)




@pytest.fixture(scope="module")
def bench() -> Workbench:
    """Eight real pairs over the last seven months of the shared data."""
    require_shared()
    from statarb.ft.data import load_frames, load_funding, timerange_from_string

    timerange = timerange_from_string("20250601-20260101")
    frames = load_frames(DATADIR, PAIRS, timerange=timerange)
    funding = load_funding(DATADIR, PAIRS, timerange=timerange)
    markets = json.loads(CCXT_MARKETS.read_text())
    return Workbench(small_config(), frames, markets, funding)


SPLIT = pd.Timestamp("2025-10-01", tz="UTC")


def test_default_params_are_the_strategy_defaults() -> None:
    assert {p.name: p.default for p in STRATEGY_PARAMS} == DEFAULT_PARAMS


# ---------------------------------------------------------------------- engine pieces
def test_proposed_stake_follows_freqtrade_wallets() -> None:
    """Freqtrade's unlimited stake: (available + tied) / max_open_trades, capped by what
    is available; available = (start + closed profit) * ratio - tied."""
    acc = Account(10_000, "unlimited", 0.95, 10)
    assert acc.proposed_stake(0.0, 0.0) == pytest.approx(950.0)
    assert acc.proposed_stake(500.0, 0.0) == pytest.approx(997.5)
    # Tied stake does not lower the next trade's share ...
    assert acc.proposed_stake(0.0, 4000.0) == pytest.approx(950.0)
    # ... until less than one share is left.
    assert acc.proposed_stake(0.0, 9000.0) == pytest.approx(500.0)
    assert Account(10_000, 300.0, 0.95, 10).proposed_stake(0.0, 9400.0) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="stake_amount='lots'"):
        Account(stake_amount="lots")
    with pytest.raises(ValueError, match="max_open_trades=1"):
        Account(max_open_trades=1)


def test_funding_book_matches_freqtrade_calculate_funding_fees() -> None:
    """Against Freqtrade's own summation on the same frame: ends included, sign by side."""
    from freqtrade.exchange import Exchange

    dates = pd.date_range("2025-01-01", periods=12, freq="8h", tz="UTC")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"date": dates, "open_fund": rng.normal(1e-4, 2e-4, 12),
                          "open_mark": rng.uniform(90, 110, 12)})
    combined = Exchange._add_funding_columns(frame.copy())
    book = FundingBook({"X": pd.DataFrame({"date": dates,
                                           "fee_per_unit": combined["_ff_fee_per_unit"]})})
    for lo, hi in ((0, 11), (1, 1), (2, 7), (3, 3)):
        for short in (False, True):
            opened, closed = dates[lo], dates[hi] + pd.Timedelta(hours=hi % 2)
            ours = book.funding("X", 2.5, short, opened, closed)
            theirs = Exchange.calculate_funding_fees(
                None, combined, 2.5, short, opened.to_pydatetime(), closed.to_pydatetime())
            assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    assert book.funding("X", 1.0, False, dates[0], dates[0]) != 0  # the entry time counts
    assert book.funding("missing", 1.0, False, dates[0], dates[-1]) == 0.0


# The formation cache has its own tests: tests/test_formation_cache.py.


# ---------------------------------------------------------------------- sweep
def variants():
    return parse_variants({
        "grid": {"params.entry_z": [1.8, 2.2], "params.exit_z": [0.0, 0.5]},
        "variants": [{"name": "default", "statarb": SMALL}],
        "base": {"statarb": SMALL},
    }, "test")


def _plain(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["is_returns", "oos_returns"])


def test_sweep_rows_are_the_single_runs(bench: Workbench) -> None:
    points = variants()
    table = run_sweep(bench, points, SPLIT, n_jobs=2, chunk_size=2)
    assert list(table["variant"]) == [v.name for v in points]
    for v in (points[0], points[-1]):
        outcome = bench.run(v.statarb, v.params, split=SPLIT)
        row = table[table["variant"] == v.name].iloc[0]
        for part in ("is", "oos"):
            for key in ("total_return", "couple_trips", "fees_paid", "capital_in_use"):
                assert row[f"{part}_{key}"] == pytest.approx(outcome.figures[part][key])
    # The variants differ: a sweep that ignored its parameters would not.
    assert table["is_couple_trips"].nunique() + table["oos_total_return"].nunique() > 2
    assert (table["is_couple_trips"] + table["oos_couple_trips"]).min() > 0


@pytest.mark.parametrize("jobs", [1, 2])
def test_sweep_builds_each_formation_setting_once(tmp_path: Path, bench: Workbench,
                                                   jobs: int) -> None:
    """Several formation settings at once (the builds finish while others are still being
    sent to the workers), in worker processes or in this one: one build per setting,
    counted once, and a second sweep loads them all from the cache."""
    points = parse_variants({
        "base": {"statarb": SMALL},
        "grid": {"statarb.walk_forward.z_window_hours": [40, 50, 60],
                 "statarb.selection.hedge": ["ols", "tls"]},
    }, "test")
    fresh = copy.copy(bench)
    fresh.universes, fresh.cache = {}, FormationCache(tmp_path)
    table = run_sweep(fresh, points, SPLIT, n_jobs=jobs, chunk_size=2)
    assert len(table) == 6 and len(fresh.universes) == 6
    assert (fresh.cache.misses, fresh.cache.hits) == (6, 0)
    again = copy.copy(bench)
    again.universes, again.cache = {}, FormationCache(tmp_path)
    second = run_sweep(again, points, SPLIT, n_jobs=jobs, chunk_size=2)
    assert (again.cache.misses, again.cache.hits) == (0, 6)
    pd.testing.assert_frame_equal(_plain(second), _plain(table))


@pytest.mark.slow
def test_dask_cluster_gives_the_local_numbers(bench: Workbench) -> None:
    from distributed import LocalCluster

    points = variants()
    local = run_sweep(bench, points, SPLIT, n_jobs=2, chunk_size=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        remote = run_sweep(bench, points, SPLIT, dask_address=cluster.scheduler_address,
                           chunk_size=2)
    pd.testing.assert_frame_equal(_plain(local), _plain(remote))


def _table(is_sharpes, oos_sharpes, n=300, seed=0, trips=50):
    rng = np.random.default_rng(seed)
    rows = []
    for i, (s_is, s_oos) in enumerate(zip(is_sharpes, oos_sharpes, strict=True)):
        returns = rng.normal(0, 0.01, n)
        returns = (returns - returns.mean()) / returns.std(ddof=1) * 0.01 + s_is * 0.01
        rows.append({"variant": "default" if i == 0 else f"v{i}", "is_returns": returns,
                     "is_daily_sharpe": float(returns.mean() / returns.std(ddof=1)),
                     "oos_returns": rng.normal(s_oos * 0.01, 0.01, n), "oos_sharpe": s_oos,
                     "is_couple_trips": trips})
    return pd.DataFrame(rows)


def test_choice_penalises_trials_and_ignores_out_of_sample() -> None:
    # One variant far ahead: it replaces the default.
    table, choice = choose(_table([0.0, 0.02, 0.3, 0.01], [0, 0, 0, 0]), "default")
    assert choice.chosen == "v2" and choice.replaces_default and choice.n_trials == 4
    assert table.loc[table["variant"] == "v2", "is_dsr"].iloc[0] > 0.95
    # A variant that trades exactly like another is not another trial.
    base = _table([0.0, 0.02, 0.3, 0.01], [0, 0, 0, 0])
    doubled = pd.concat([base, base.iloc[[1]].assign(variant="copy")], ignore_index=True)
    table2, choice2 = choose(doubled, "default")
    assert choice2.n_trials == 4
    pd.testing.assert_series_equal(table2["is_dsr"].iloc[:4], table["is_dsr"])
    # Out-of-sample figures cannot move the choice.
    _, again = choose(_table([0.0, 0.02, 0.3, 0.01], [5, -5, -5, 9]), "default")
    assert again.chosen == "v2"
    # A research-only variant (Freqtrade cannot run it) is a trial, never the choice.
    only = base.assign(freqtrade=[True, True, False, True])
    table3, research_only = choose(only, "default")
    assert research_only.n_trials == 4 and research_only.chosen != "v2"
    pd.testing.assert_series_equal(table3["is_dsr"], table["is_dsr"])
    # A variant with fewer than MIN_TRIPS trips in sample is a trial, never the choice.
    few = base.assign(is_couple_trips=[50, 50, MIN_TRIPS - 1, 50])
    table4, sparse = choose(few, "default")
    assert sparse.n_trials == 4 and sparse.chosen != "v2"
    pd.testing.assert_series_equal(table4["is_dsr"], table["is_dsr"])
    # The best of many near-equal variants is luck: the default stays.
    sharpes = [0.0, *np.linspace(-0.05, 0.08, 60)]
    table, choice = choose(_table(sharpes, [0] * 61), "default")
    best = table.loc[table["is_daily_sharpe"].idxmax(), "variant"]
    assert best != "default"
    assert not choice.replaces_default and choice.chosen == "default", choice
    assert "luck" in choice.reason
    # The same best variant alone against the default would have looked convincing
    # (naive, without the penalty for the 59 other trials).
    pair = table[table["variant"].isin(["default", best])].reset_index(drop=True)
    assert choose(pair, "default")[0]["is_dsr"].max() > table["is_dsr"].max()


# ---------------------------------------------------------------------- command line
@pytest.mark.slow
def test_research_command_writes_table_csv_chart_and_runnable_variant(tmp_path: Path) -> None:
    require_shared()
    config = small_config()
    (tmp_path / "config.json").write_text(json.dumps(config))
    sweep = tmp_path / "sweep.yml"
    sweep.write_text("grid:\n  params.entry_z: [1.8, 2.2]\nvariants:\n  - name: default\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "statarb.research", "--variants", str(sweep),
           "--config", str(tmp_path / "config.json"), "--jobs", "2", "--out", str(out),
           "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "by in-sample DSR" in proc.stdout and "choice" in proc.stdout
    csv = pd.read_csv(out / "sweep.csv")
    assert set(csv["variant"]) == {"entry_z=1.8", "entry_z=2.2", "default"}
    for col in ("is_sharpe", "oos_sharpe", "is_dsr", "oos_capital_in_use",
                "oos_btc_correlation", "is_fees_paid", "oos_funding_paid"):
        assert col in csv
    summary = json.loads((out / "summary.json").read_text())
    distinct = csv[["is_sharpe", "is_couple_trips", "is_total_return"]].round(9).drop_duplicates()
    assert summary["choice"]["n_trials"] == len(distinct)
    assert summary["split"].startswith("2025-03-14")  # 60% of 2024-01-01 .. 2025-12-31
    assert summary["cache"]["misses"] == 1
    assert "plotly" in (out / "sharpe_is_oos.html").read_text().lower()
    chosen = summary["choice"]["chosen"]
    overlay, params = (Path(p) for p in summary["chosen_files"])
    assert json.loads(params.read_text())["params"]["buy"]["entry_z"] == \
        {"default": 2.0, "entry_z=1.8": 1.8, "entry_z=2.2": 2.2}[chosen]
    assert "statarb" in json.loads(overlay.read_text())
    # A second run reads the formations from the cache.
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((out / "summary.json").read_text())
    assert again["cache"] == {**again["cache"], "hits": 1, "misses": 0}
    pd.testing.assert_frame_equal(pd.read_csv(out / "sweep.csv"), csv)


@pytest.mark.slow
def test_research_command_rejects_a_bad_sweep_file(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yml"
    sweep.write_text("grid:\n  params.entry_zz: [1.8]\n")
    proc = subprocess.run([sys.executable, "-m", "statarb.research", "--variants", str(sweep),
                           "--out", str(tmp_path / "out")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "entry_zz" in proc.stdout and "entry_z" in proc.stdout
    assert not (tmp_path / "out").exists()


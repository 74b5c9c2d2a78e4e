"""The scanner CLI on the real shared data, checked against an independent re-computation.

The reference numbers are recomputed here from the shared feather files read with plain
pandas, never copied from a previous run.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from statarb.core.cointegration import RESULT_COLUMNS, engle_granger
from statarb.core.selection import SelectionParams, choose_couples
from statarb.ft.data import available_pairs, load_closes
from statarb.tools.scan import main
from tests.shared_data import DATADIR, FUTURES, ROOT, close_panel, coins, require_shared

QUOTE = "/USDT:USDT"
DATA_END = pd.Timestamp("2026-01-01", tz="UTC")
DEFAULT_START = DATA_END - pd.Timedelta(days=60)


def pair(coin: str) -> str:
    return f"{coin}{QUOTE}"


def read_csv(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    for col in ("selected", "eligible"):
        # Only the traded orientation carries a verdict; the other row is empty.
        table[col] = table[col].map({True: True, False: False, "True": True, "False": False})
    return table


@pytest.fixture(scope="module")
def default_scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_shared()
    out = tmp_path_factory.mktemp("scan")
    code = main(["--datadir", str(DATADIR), "--out", str(out)])
    doc = json.loads((out / "pairs_config.json").read_text(encoding="utf-8"))
    table = read_csv(out / "cointegration_results.csv")
    return {"code": code, "out": out, "doc": doc, "table": table}


@pytest.fixture(scope="module")
def reference_window() -> pd.DataFrame:
    """Log closes of every shared coin spanning the last 60 days, read with pandas only."""
    panel = close_panel(coins())
    window = panel[(panel.index >= DEFAULT_START) & (panel.index < DATA_END)]
    assert len(window) == 1440
    window = window.dropna(axis=1)
    return np.log(window.rename(columns=pair))


def test_default_scan_writes_the_formation_window_and_counts(
    default_scan: dict[str, Any], reference_window: pd.DataFrame
) -> None:
    assert default_scan["code"] == 0
    doc = default_scan["doc"]
    assert doc["formation"] == {
        "start": "2025-11-02T00:00:00+00:00",
        "end": "2026-01-01T00:00:00+00:00",
        "candles": 1440,
    }
    assert pd.Timestamp(doc["formation"]["start"]) == DEFAULT_START
    assert doc["universe"] == list(reference_window.columns)
    everyone = {pair(c) for c in coins()}
    assert set(doc["skipped"]) == everyone - set(doc["universe"])
    assert doc["skipped"], "the shared data has coins ending before the default window"
    n = len(doc["universe"])
    counts = doc["counts"]
    assert counts["coins"] == n
    assert counts["ordered_couples_tested"] == n * (n - 1)
    assert counts["couples_tested"] == n * (n - 1) // 2
    assert counts["selected"] == len(doc["couples"])
    assert counts["pvalue_pass"] >= counts["eligible"] >= counts["selected"]
    assert doc["selection"] == SelectionParams().to_dict()


def test_default_scan_couples_are_disjoint_and_match_the_csv(
    default_scan: dict[str, Any],
) -> None:
    doc, table = default_scan["doc"], default_scan["table"]
    couples = doc["couples"]
    assert 1 <= len(couples) <= SelectionParams().max_couples
    coins_used = [c[k] for c in couples for k in ("y", "x")]
    assert len(coins_used) == len(set(coins_used))
    for c in couples:
        for key in ("alpha", "beta", "half_life_hours", "pvalue", "spread_mean", "spread_std"):
            assert isinstance(c[key], float) and np.isfinite(c[key]), (c["id"], key)
        assert 1.0 <= c["half_life_hours"] <= 24.0
        assert c["pvalue_adj"] <= 0.05
        assert c["spread_std"] > 0
        assert set(c["id"].split("-")) == {c["y"].removesuffix(QUOTE), c["x"].removesuffix(QUOTE)}

    selected = table[table["selected"] == True]  # noqa: E712 (column also holds NaN)
    selected = selected.sort_values("tstat", kind="stable").reset_index(drop=True)
    assert [(c["y"], c["x"]) for c in couples] == list(
        zip(selected["y"], selected["x"], strict=True)
    )
    for c, r in zip(couples, selected.itertuples(index=False), strict=True):
        assert c["alpha"] == pytest.approx(r.alpha, rel=1e-12)
        assert c["beta"] == pytest.approx(r.beta, rel=1e-12)
        assert c["pvalue"] == pytest.approx(r.pvalue, rel=1e-12)
        assert c["half_life_hours"] == pytest.approx(r.half_life_hours, rel=1e-12)
        assert c["spread_std"] == pytest.approx(r.spread_std, rel=1e-12)
        assert c["spread_mean"] == pytest.approx(r.spread_mean, rel=1e-9, abs=1e-15)

    counts = doc["counts"]
    traded = table[table["traded_orientation"]]
    assert len(traded) == counts["couples_tested"]
    assert int((traded["pvalue_adj"] <= 0.05).sum()) == counts["pvalue_pass"]
    assert int((traded["eligible"] == True).sum()) == counts["eligible"]  # noqa: E712


def test_csv_has_every_ordered_couple_with_the_engine_statistics(
    default_scan: dict[str, Any], reference_window: pd.DataFrame
) -> None:
    table = default_scan["table"]
    n = reference_window.shape[1]
    assert len(table) == n * (n - 1)
    assert set(zip(table["y"], table["x"], strict=True)) == set(
        itertools.permutations(reference_window.columns, 2)
    )
    assert list(table.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert table[list(RESULT_COLUMNS)].notna().all().all()
    expected = engle_granger(reference_window)
    merged = expected.merge(table, on=["y", "x"], suffixes=("_ref", ""), validate="one_to_one")
    assert len(merged) == len(expected)
    for col in RESULT_COLUMNS:
        if col in ("y", "x"):
            continue
        np.testing.assert_allclose(
            merged[col].to_numpy(dtype=float),
            merged[f"{col}_ref"].to_numpy(dtype=float),
            rtol=1e-9,
            atol=1e-12,
            err_msg=col,
        )
    # Exactly one orientation of each unordered couple carries the verdict.
    traded = table[table["traded_orientation"]]
    keys = [frozenset(k) for k in zip(traded["y"], traded["x"], strict=True)]
    assert len(keys) == len(set(keys)) == n * (n - 1) // 2
    assert table.loc[~table["traded_orientation"], "selected"].isna().all()


def test_independent_rerun_of_the_selection_gives_the_same_couples(
    default_scan: dict[str, Any], reference_window: pd.DataFrame
) -> None:
    doc = default_scan["doc"]
    chosen = choose_couples(reference_window, SelectionParams())
    assert [(c["y"], c["x"]) for c in doc["couples"]] == list(
        zip(chosen["y"], chosen["x"], strict=True)
    )
    np.testing.assert_allclose(
        [c["beta"] for c in doc["couples"]], chosen["beta"].to_numpy(), rtol=1e-9
    )
    np.testing.assert_allclose(
        [c["alpha"] for c in doc["couples"]], chosen["alpha"].to_numpy(), rtol=1e-9, atol=1e-12
    )
    without = choose_couples(reference_window, SelectionParams(correction="none"))
    assert doc["counts"]["selected_with_correction_none"] == len(without)


def test_plots_link_one_chart_per_selected_couple(default_scan: dict[str, Any]) -> None:
    plots = default_scan["out"] / "plots"
    couples = default_scan["doc"]["couples"]
    assert (plots / "plotly.min.js").is_file()
    assert (plots / "plotly.min.js").stat().st_size > 100_000
    index = (plots / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', index)
    assert len(links) == len(set(links)) == len(couples)
    assert sorted(p.name for p in plots.glob("*.html") if p.name != "index.html") == sorted(links)
    for link, c in zip(links, couples, strict=True):
        page = (plots / link).read_text(encoding="utf-8")
        assert "plotly" in page
        assert 'src="plotly.min.js"' in page
        # Plotly's JSON escapes "/" as \u002f; the coin names must be there either way.
        text = page.replace("\\u002f", "/")
        for name in (c["y"], c["x"]):
            assert name in text
            assert name.removesuffix(QUOTE) in link


@pytest.mark.slow
def test_explicit_coins_and_timerange_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "scan"
    cmd = [sys.executable, "-m", "statarb.tools.scan", "--datadir", str(DATADIR), "--out", str(out)]
    args = ["--coins", "BTC,ETH,SOL,LTC", "--timerange", "20240301-20240501", "--no-plots"]
    proc = subprocess.run(
        [*cmd, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((out / "pairs_config.json").read_text(encoding="utf-8"))
    universe = [pair(c) for c in ("BTC", "ETH", "SOL", "LTC")]
    assert doc["universe"] == universe
    assert doc["formation"]["start"] == "2024-03-01T00:00:00+00:00"
    assert doc["formation"]["end"] == "2024-05-01T00:00:00+00:00"
    assert doc["formation"]["candles"] == (31 + 30) * 24
    table = read_csv(out / "cointegration_results.csv")
    assert len(table) == 12
    assert set(zip(table["y"], table["x"], strict=True)) == set(itertools.permutations(universe, 2))
    assert not (out / "plots").exists()

    # The same command line with bad input exits with code 2 from the real entry point.
    proc = subprocess.run(
        [*cmd[:4], str(tmp_path / "missing"), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "500"},
    )
    assert proc.returncode == 2
    message = " ".join(proc.stdout.split())
    assert f"--datadir {tmp_path / 'missing'} is not a directory" in message


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


def run_bad(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.setenv("COLUMNS", "500")  # rich would wrap long messages at 80 columns
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    return " ".join(captured.out.split())


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--coins", "BTC"], ["need at least two coins", "found 1"]),
        (["--coins", "BTC,btc"], ["need at least two coins", "found 1"]),
        (["--coins", " , "], ["names no coin"]),
        (["--coins", "BTC,NOPE"], ["NOPE/USDT:USDT", "no 1h futures candles"]),
        (["--coins", "BTC,ETH", "--days", "2000"], ["do not span the window"]),
        (["--days", "2000"], ["2000 days", "longer than the data"]),
        (["--days", "0"], ["--days 0"]),
        (["--timerange", "2024-03-01"], ["--timerange '2024-03-01'", "YYYYMMDD-YYYYMMDD"]),
        (["--timerange", "20240501-20240301"], ["--timerange '20240501-20240301'"]),
        (["--timerange", "-20240501"], ["needs a start date"]),
        (["--max-pvalue", "1.5"], ["max_pvalue=1.5"]),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    extra: list[str],
    expected: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    message = run_bad(
        ["--datadir", str(DATADIR), "--out", str(out), "--no-plots", *extra], capsys, monkeypatch
    )
    assert message.startswith("error:")
    for part in expected:
        assert part in message, message
    assert not (out / "pairs_config.json").exists()


def test_missing_datadir_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no_such_dir"
    message = run_bad(["--datadir", str(missing), "--out", str(tmp_path)], capsys, monkeypatch)
    assert str(missing) in message and "not a directory" in message


def test_datadir_without_futures_candles_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "futures").mkdir()
    shutil.copy(FUTURES / "BTC_USDT_USDT-1h-futures.feather", tmp_path / "futures")
    message = run_bad(
        ["--datadir", str(tmp_path), "--out", str(tmp_path / "o")], capsys, monkeypatch
    )
    assert "need at least two coins" in message and "found 1" in message


GAP = pd.date_range("2025-12-10 05:00", periods=3, freq="1h", tz="UTC")
NAN_AT = pd.Timestamp("2025-12-20 13:00", tz="UTC")


@pytest.fixture(scope="module")
def damaged_datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BTC, ETH and SOL copied with pandas; ETH loses 3 candles, SOL gets a NaN close."""
    require_shared()
    root = tmp_path_factory.mktemp("damaged")
    (root / "futures").mkdir()
    for coin in ("BTC", "ETH", "SOL"):
        name = f"{coin}_USDT_USDT-1h-futures.feather"
        frame = pd.read_feather(FUTURES / name)
        if coin == "ETH":
            frame = frame[~frame["date"].isin(GAP)].reset_index(drop=True)
        if coin == "SOL":
            frame.loc[frame["date"] == NAN_AT, "close"] = np.nan
        frame.to_feather(root / "futures" / name)
    return root


def test_damaged_files_are_read_by_freqtrade_as_written(damaged_datadir: Path) -> None:
    pairs = [pair(c) for c in ("BTC", "ETH", "SOL")]
    assert available_pairs(damaged_datadir) == sorted(pairs)
    loaded = load_closes(damaged_datadir, pairs)
    original = close_panel(["BTC", "ETH", "SOL"])
    assert len(loaded[pair("BTC")]) == len(original["BTC"].dropna())
    eth = loaded[pair("ETH")]
    assert len(eth) == len(original["ETH"].dropna()) - len(GAP)
    assert not eth.index.isin(GAP).any()
    sol = loaded[pair("SOL")]
    assert np.isnan(sol[NAN_AT])
    assert int(sol.isna().sum()) == 1
    np.testing.assert_array_equal(loaded[pair("BTC")].to_numpy(), original["BTC"].dropna())


def test_gap_and_nan_in_the_window_exit_2_naming_both(
    damaged_datadir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    message = run_bad(["--datadir", str(damaged_datadir), "--out", str(out)], capsys, monkeypatch)
    assert "ETH/USDT:USDT" in message
    assert f"{len(GAP)} missing candle(s)" in message
    assert str(GAP[0]) in message
    assert "SOL/USDT:USDT" in message
    assert "NaN" in message and str(NAN_AT) in message
    assert "BTC/USDT:USDT:" not in message  # the intact coin is not blamed
    assert not out.exists()


def test_damaged_datadir_scans_fine_on_a_window_before_the_damage(
    damaged_datadir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = ["--datadir", str(damaged_datadir), "--out", str(out), "--no-plots"]
    assert main([*argv, "--timerange", "20250901-20251101"]) == 0
    doc = json.loads((out / "pairs_config.json").read_text(encoding="utf-8"))
    assert doc["universe"] == [pair(c) for c in ("BTC", "ETH", "SOL")]
    assert doc["counts"]["ordered_couples_tested"] == 6


def test_four_hour_candles_convert_half_lives_to_hours(tmp_path: Path) -> None:
    """A 4h datadir (resampled from the shared 1h files): hours are 4 x candles."""
    datadir = tmp_path / "data"
    (datadir / "futures").mkdir(parents=True)
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    for coin in ("BTC", "ETH", "LTC", "XRP", "ADA"):
        frame = pd.read_feather(FUTURES / f"{coin}_USDT_USDT-1h-futures.feather")
        four = frame.set_index("date").resample("4h").agg(agg).reset_index()
        four.to_feather(datadir / "futures" / f"{coin}_USDT_USDT-4h-futures.feather")
    out = tmp_path / "out"
    argv = ["--datadir", str(datadir), "--out", str(out), "--timeframe", "4h", "--no-plots"]
    loose = ["--correction", "none", "--max-pvalue", "0.9", "--max-half-life-hours", "1e6"]
    assert main([*argv, "--days", "120", *loose]) == 0
    doc = json.loads((out / "pairs_config.json").read_text(encoding="utf-8"))
    assert doc["formation"]["candles"] == 120 * 6
    assert doc["formation"]["end"] == "2026-01-01T00:00:00+00:00"
    table = read_csv(out / "cointegration_results.csv")
    traded = table[table["traded_orientation"]]
    assert len(traded) == 10
    np.testing.assert_allclose(traded["half_life_hours"], 4.0 * traded["half_life"], rtol=1e-12)
    assert doc["couples"], "loose filters should let at least one couple through"
    for c in doc["couples"]:
        assert c["half_life_hours"] == pytest.approx(4.0 * c["half_life_candles"], rel=1e-12)

"""The README's main job: a plain `freqtrade backtesting` on the shared data, offline.

Runs the project's own config.json + config.offline.json through the simulator wrapper,
exactly as `make backtest` does, with proxies pointed at a closed port so that any
attempt to reach a real host fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.offline import FREQTRADE, REPO, offline_env
from tests.shared_data import DATADIR, MARKETS, require_shared

pytestmark = pytest.mark.slow


def test_offline_backtest_with_the_project_config(tmp_path: Path) -> None:
    require_shared()
    results = tmp_path / "backtest_results"
    results.mkdir()
    cmd = [
        sys.executable, "-m", "statarb.sim.run", "--datadir", str(DATADIR),
        "--markets", str(MARKETS), "--",
        FREQTRADE, "backtesting", "--config", "config.json", "--config", "config.offline.json",
        "--datadir", str(DATADIR), "--strategy", "TrendBaselineStrategy",
        "--timerange", "20250101-20250401", "--export", "trades",
        "--backtest-directory", str(results), "--cache", "none",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=offline_env(),  # no API credentials: plain config.json needs none
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "ERROR" not in output, output[-4000:]
    # The simulator served the markets; nothing else was needed.
    assert "requests served" in output
    served = int(output.split("statarb.sim.run: ")[-1].split(" requests served")[0])
    assert served >= 1
    zips = sorted(results.glob("backtest-result-*.zip"))
    assert zips, f"no backtest result in {results}: {output[-2000:]}"
    with zipfile.ZipFile(zips[-1]) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".json") and "_config" not in n)
        doc = json.loads(archive.read(name))
    strat = doc["strategy"]["TrendBaselineStrategy"]
    trades = strat["trades"]
    assert len(trades) > 10
    whitelist = set(json.loads((REPO / "config.json").read_text())["exchange"]["pair_whitelist"])
    assert {t["pair"] for t in trades} <= whitelist
    assert any(t["is_short"] for t in trades) and any(not t["is_short"] for t in trades)
    # Funding is charged from the shared funding/mark data on futures trades.
    assert any(abs(t.get("funding_fees", 0.0)) > 0 for t in trades)
    assert strat["backtest_start"].startswith("2025-01")


@pytest.mark.xdist_group("checkout")  # writes user_data/backtest_results
def test_make_backtest_as_written() -> None:
    """The README's main job, ``make backtest``, exactly as a user types it: the default
    strategy over the whole shared data, every leg with its partner."""
    require_shared()
    proc = subprocess.run(["make", "backtest"], cwd=REPO, env=offline_env(COLUMNS="250"),
                          capture_output=True, text=True, timeout=1200)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert " - ERROR - " not in output and "No data found" not in output, output[-6000:]
    summary = re.search(r"│\s*CointPairsStrategy\s*│\s*(\d+)\s*│", output)
    assert summary, output[-6000:]
    legs = int(summary.group(1))
    assert legs >= 100 and legs % 2 == 0, legs
    tags = re.findall(r"│\s*(\w+~\w+(?:@[\dT:-]+)?)\s*│\s*(\d+)\s*│", output)
    assert tags and all(int(n) % 2 == 0 for _, n in tags), tags[:10]


@pytest.mark.xdist_group("checkout")  # writes user_data/backtest_results
def test_make_backtest_at_15m_on_the_5m_data() -> None:
    """``make backtest DATADIR=../shared/data/binance_5m TIMEFRAME=15m`` as written: a real
    Freqtrade backtest on 15m candles (downloaded once through the simulator from the 5m
    files), every leg with its partner, entries on the quarter hours."""
    from statarb.ft.results import load_result

    require_shared()
    proc = subprocess.run(
        ["make", "backtest", "DATADIR=../shared/data/binance_5m", "TIMEFRAME=15m"], cwd=REPO,
        env=offline_env(COLUMNS="250"), capture_output=True, text=True, timeout=1200)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert " - ERROR - " not in output and "No history" not in output, output[-6000:]
    result = load_result(directory=REPO / "user_data" / "backtest_results")
    assert result.timeframe == "15m" and result.datadir is not None
    assert result.datadir.name == "binance_5m-15m"
    trades = result.trades
    assert len(trades) >= 2 and len(trades) % 2 == 0, len(trades)
    assert trades.groupby("enter_tag").size().mod(2).eq(0).all()
    opens = pd.to_datetime(trades["open_date"], utc=True)
    assert (opens.dt.minute % 15 == 0).all() and (opens.dt.minute != 0).any()
    assert set(trades["pair"]) <= {f"{c}/USDT:USDT" for c in (
        "BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "BCH", "OP", "ZEC")}

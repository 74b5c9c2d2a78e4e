"""The timeframe sweep (`make research-timeframes`): every variant at every timeframe on
the 5m data, the choice over all of them, the costs against gross profit, and the
bar-coarsening check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from statarb.research.timeframes import resample_frames
from tests.offline import REPO, offline_env
from tests.shared_data import DATADIR_5M, require_shared


def test_resampled_frames_are_binance_buckets_and_drop_an_incomplete_last_one() -> None:
    dates = pd.date_range("2025-01-01", periods=10, freq="5min", tz="UTC")
    frame = pd.DataFrame({"date": dates, "open": np.arange(10.0), "high": np.arange(10.0) + 1,
                          "low": np.arange(10.0) - 1, "close": np.arange(10.0) + 0.5,
                          "volume": np.ones(10)})
    out = resample_frames({"A": frame}, "15m")["A"]
    assert out["date"].tolist() == list(pd.date_range("2025-01-01", periods=3, freq="15min",
                                                      tz="UTC"))
    assert out["open"].tolist() == [0.0, 3.0, 6.0]
    assert out["high"].tolist() == [3.0, 6.0, 9.0]
    assert out["low"].tolist() == [-1.0, 2.0, 5.0]
    assert out["close"].tolist() == [2.5, 5.5, 8.5]
    assert out["volume"].tolist() == [3.0, 3.0, 3.0]  # the 10th candle's bucket is dropped
    assert resample_frames({"A": frame}, "5m")["A"] is frame


@pytest.mark.slow
def test_the_timeframe_sweep_reports_each_timeframe_the_costs_and_the_coarsening(
        tmp_path: Path) -> None:
    require_shared()
    variants = tmp_path / "variants.yml"
    variants.write_text("variants:\n  - name: default\n  - name: wide\n"
                        "    params: {entry_z: 2.5}\n")
    costs = tmp_path / "spread.json"
    done = subprocess.run(
        [sys.executable, "-m", "statarb.tools.spread", "--datadir", str(DATADIR_5M),
         "--out", str(costs)], cwd=REPO, env=offline_env(), capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stderr
    for coin in ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "BCH", "INJ", "OP", "ZEC"):
        assert f"│ {coin:<4} │ 105,408 │" in done.stdout, done.stdout
    half = json.loads(costs.read_text())["statarb"]["costs"]["half_spread"]
    assert 0 < half["BTC"] < half["ZEC"] < 0.001
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "statarb.research.timeframes", "--variants", str(variants),
         "--datadir", str(DATADIR_5M), "--costs", str(costs), "--timeframes", "15m,1h",
         "--jobs", "1", "--out", str(out), "--no-cache"],
        cwd=REPO, env=offline_env(COLUMNS="250"), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timeframes"] == ["15m", "1h"] and len(summary["coins"]) == 9
    for label in ("with spread", "fees only"):
        result = summary["results"][label]
        assert result["choice"]["n_trials"] >= 2
        assert set(result["per_timeframe"]) == {"15m", "1h"}
        for entry in result["per_timeframe"].values():
            assert entry["variants"] == 2
            assert {"q25", "q50", "q75", "share_positive", "median_trips",
                    "median_capital_in_use", "fee_share", "spread_share"} <= set(entry["is"])
    with_spread = pd.read_csv(out / "timeframes_with_spread.csv")
    fees_only = pd.read_csv(out / "timeframes_fees_only.csv")
    assert (with_spread["is_spread_paid"] > 0).any() and (fees_only["is_spread_paid"] == 0).all()
    assert set(with_spread["variant"]) == {"15m default", "15m wide", "1h default", "1h wide"}
    check = summary["coarsening"]
    if check is not None:  # the best intraday variant, on bars four times coarser
        assert (check["fine"], check["coarse"]) == ("15m", "1h")
        assert check["verdict"].split(":")[0] in ("bounce", "no intraday edge to check") \
            or check["verdict"].startswith("the edge survives")
    assert "bar-coarsening check" in proc.stdout or check is None

"""Real freqtrade 2026.9 subprocesses against the simulator.

``download-data`` through the simulator must reproduce the shared feather files exactly,
which proves the simulator speaks Binance well enough for freqtrade's own download path
(paging, the ``since=0`` listing probe, mark candles, funding history). The child runs
with proxies pointed at a closed loopback port so any request to a real host fails, and the
simulator's request counter proves the data came from it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from statarb.sim import DEFAULT_DATADIR, SimServer
from statarb.sim.run import DEFAULT_OVERLAY, write_overlay
from tests.offline import FREQTRADE, offline_env

pytestmark = pytest.mark.slow

COINS = ("BTC", "ETH", "SOL")  # SOL: the mark file holds 8h-spaced rows only
KINDS = ("futures", "mark", "funding_rate")
START, END = pd.Timestamp("2025-01-01T00:00Z"), pd.Timestamp("2025-03-01T00:00Z")
SERVED_PATHS = {
    "/fapi/v1/exchangeInfo",
    "/fapi/v1/klines",
    "/fapi/v1/markPriceKlines",
    "/fapi/v1/fundingRate",
}


def write_config(tmp: Path, port: int | None = None) -> Path:
    """Minimal futures config; the simulator URLs come from the overlay."""
    config = {
        "exchange": {"name": "binance", "pair_whitelist": [f"{c}/USDT:USDT" for c in COINS]},
        "trading_mode": "futures",
        "margin_mode": "isolated",
        "stake_currency": "USDT",
        "dry_run": True,
        "datadir": str(tmp / "data"),
    }
    path = tmp / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@dataclass
class Download:
    result: subprocess.CompletedProcess[str]
    datadir: Path
    requests: dict[str, int]
    unhandled: dict[str, int]


@pytest.fixture(scope="module")
def download(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Download]:
    tmp = tmp_path_factory.mktemp("ftdl")
    (tmp / "user_data").mkdir()
    with SimServer() as sim:
        overlay = write_overlay(DEFAULT_OVERLAY, sim.port, DEFAULT_DATADIR, tmp)
        result = subprocess.run(
            [
                FREQTRADE,
                "download-data",
                "--config",
                str(write_config(tmp)),
                "--config",
                str(overlay),
                "--userdir",
                str(tmp / "user_data"),
                "--datadir",
                str(tmp / "data"),
                "--trading-mode",
                "futures",
                "--timeframes",
                "1h",
                "--timerange",
                f"{START:%Y%m%d}-{END:%Y%m%d}",
            ],
            cwd=tmp,
            env=offline_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        yield Download(result, tmp / "data", dict(sim.stats.by_path), dict(sim.stats.unhandled))


def test_download_succeeds_through_the_simulator_only(download: Download) -> None:
    assert download.result.returncode == 0, download.result.stderr[-3000:]
    assert download.unhandled == {}
    assert set(download.requests) == SERVED_PATHS
    assert download.requests["/fapi/v1/klines"] >= len(COINS) * 2  # probe + pages per coin
    log = download.result.stdout + download.result.stderr
    assert "Traceback" not in log and "ERROR" not in log


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("coin", COINS)
def test_downloaded_data_equals_the_source_exactly(
    download: Download, coin: str, kind: str
) -> None:
    name = f"futures/{coin}_USDT_USDT-1h-{kind}.feather"
    got = pd.read_feather(download.datadir / name)
    src = pd.read_feather(DEFAULT_DATADIR / name)
    assert got["date"].iloc[0] == START and got["date"].iloc[-1] >= END - pd.Timedelta("8h")
    # freqtrade does not clip the last page at --timerange's end, so compare over the
    # span it stored. Under pandas 3 freqtrade writes dates as datetime64[us]; the shared
    # files hold datetime64[ns]. Same instants; only the storage unit differs.
    assert str(got["date"].dtype) == "datetime64[us, UTC]"
    got["date"] = got["date"].dt.as_unit("ns")
    want = src[(src["date"] >= got["date"].iloc[0]) & (src["date"] <= got["date"].iloc[-1])]
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_exact=True)


def test_freqtrade_loads_the_download_like_the_source(download: Download) -> None:
    """What backtesting sees (freqtrade's own loader, exact dtypes) is identical too."""
    from freqtrade.data.history import get_datahandler
    from freqtrade.enums import CandleType

    mine = get_datahandler(download.datadir, "feather")
    theirs = get_datahandler(DEFAULT_DATADIR, "feather")
    for coin in COINS:
        for kind in (CandleType.FUTURES, CandleType.MARK, CandleType.FUNDING_RATE):
            got = mine.ohlcv_load(f"{coin}/USDT:USDT", "1h", candle_type=kind)
            want = theirs.ohlcv_load(f"{coin}/USDT:USDT", "1h", candle_type=kind)
            want = want[want["date"].between(got["date"].iloc[0], got["date"].iloc[-1])]
            pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_exact=True)


COINS_5M = ("BTC", "OP")
START_5M, END_5M = pd.Timestamp("2025-03-01T00:00Z"), pd.Timestamp("2025-04-01T00:00Z")


@pytest.fixture(scope="module")
def download15m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Download]:
    """``download-data --timeframes 15m`` through a simulator serving the 5m data."""
    from tests.shared_data import DATADIR_5M

    tmp = tmp_path_factory.mktemp("ftdl15")
    (tmp / "user_data").mkdir()
    config = json.loads(write_config(tmp).read_text())
    config["exchange"]["pair_whitelist"] = [f"{c}/USDT:USDT" for c in COINS_5M]
    (tmp / "config.json").write_text(json.dumps(config))
    with SimServer(datadir=DATADIR_5M) as sim:
        overlay = write_overlay(DEFAULT_OVERLAY, sim.port, DATADIR_5M, tmp)
        result = subprocess.run(
            [FREQTRADE, "download-data", "--config", str(tmp / "config.json"),
             "--config", str(overlay), "--userdir", str(tmp / "user_data"),
             "--datadir", str(tmp / "data"), "--trading-mode", "futures",
             "--timeframes", "15m", "--timerange", f"{START_5M:%Y%m%d}-{END_5M:%Y%m%d}"],
            cwd=tmp, env=offline_env(), capture_output=True, text=True, timeout=300,
        )
        yield Download(result, tmp / "data", dict(sim.stats.by_path), dict(sim.stats.unhandled))


@pytest.mark.parametrize("coin", COINS_5M)
def test_download_at_15m_reproduces_the_5m_data_resampled(download15m: Download,
                                                          coin: str) -> None:
    """The 15m candles freqtrade stores equal the shared 5m candles resampled by pandas
    (open times from midnight UTC, as Binance aligns them; volumes summed), and the hourly
    marks and the funding beside them equal their files."""
    from tests.shared_data import FUTURES_5M

    assert download15m.result.returncode == 0, download15m.result.stderr[-3000:]
    assert download15m.unhandled == {}
    got = pd.read_feather(download15m.datadir / f"futures/{coin}_USDT_USDT-15m-futures.feather")
    src = pd.read_feather(FUTURES_5M / f"{coin}_USDT_USDT-5m-futures.feather")
    want = src.set_index("date").resample("15min").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    got = got.set_index(got["date"].dt.as_unit("ns")).drop(columns="date")
    assert got.index[0] == START_5M and got.index[-1] >= END_5M - pd.Timedelta("15min")
    want = want.loc[got.index[0]:got.index[-1]]
    assert got.index.tolist() == want.index.tolist()
    for col in ("open", "high", "low", "close"):
        assert got[col].tolist() == want[col].tolist(), col
    pd.testing.assert_series_equal(got["volume"], want["volume"], check_exact=False,
                                   rtol=1e-12, check_names=False, check_freq=False)
    for kind in ("mark", "funding_rate"):
        name = f"futures/{coin}_USDT_USDT-1h-{kind}.feather"
        mine = pd.read_feather(download15m.datadir / name)
        mine["date"] = mine["date"].dt.as_unit("ns")
        theirs = pd.read_feather(FUTURES_5M.parent / name)
        theirs = theirs[theirs["date"].between(mine["date"].iloc[0], mine["date"].iloc[-1])]
        pd.testing.assert_frame_equal(mine, theirs.reset_index(drop=True), check_exact=True)


def test_run_wrapper_with_freqtrade(tmp_path: Path) -> None:
    """``python -m statarb.sim.run -- freqtrade ... config.offline.json`` end to end."""
    (tmp_path / "user_data").mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "statarb.sim.run",
            "--",
            FREQTRADE,
            "list-pairs",
            "--config",
            str(write_config(tmp_path)),
            "--config",
            "config.offline.json",
            "--userdir",
            str(tmp_path / "user_data"),
            "--trading-mode",
            "futures",
            "--base",
            *COINS,
            "--quote",
            "USDT",
            "--print-csv",
        ],
        cwd=tmp_path,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "BTCUSDT,BTC/USDT:USDT" in result.stdout and "SOLUSDT,SOL/USDT:USDT" in result.stdout
    assert "requests served, exit code 0" in result.stderr

"""Faithfulness of the offline Binance USDT-M simulator (HTTP and ccxt level).

Every number checked here comes from the shared feather files, read independently with
pandas, so a test passing means the simulator serves the recorded data, not itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ccxt
import ccxt.pro
import numpy as np
import pandas as pd
import pytest

from statarb.sim import DEFAULT_DATADIR, DEFAULT_MARKETS, MarketData, ReplayClock, SimServer
from statarb.sim import api as sim_api
from statarb.sim.cli import main as cli_main
from statarb.sim.clock import parse_instant
from statarb.sim.run import DEFAULT_OVERLAY, retarget, substitute_config
from tests.sim_helpers import (
    HOUR,
    feather,
    get,
    ms,
    overlay_exchange,
    subprocess_env,
)


@pytest.fixture(scope="module")
def market_data() -> MarketData:
    return MarketData(DEFAULT_DATADIR, DEFAULT_MARKETS)


@pytest.fixture(scope="module")
def sim(market_data: MarketData) -> Iterator[SimServer]:
    """Default server: clock frozen at the end of the data."""
    with SimServer(market_data=market_data) as server:
        yield server


@pytest.fixture
def sim_at(market_data: MarketData) -> Iterator[SimServer]:
    """Server with its own clock, for tests that move it (starts 2025-06-01T00:30Z)."""
    clock = ReplayClock.fixed("2025-06-01T00:30:00Z")
    with SimServer(market_data=market_data, clock=clock) as server:
        yield server




# --- plain endpoints --------------------------------------------------------------------


def test_exchange_info_is_the_recorded_file_byte_for_byte(sim: SimServer) -> None:
    with urllib.request.urlopen(f"{sim.url}/fapi/v1/exchangeInfo", timeout=10) as resp:
        body = resp.read()
        assert resp.headers["Content-Type"] == "application/json"
        assert int(resp.headers["X-MBX-USED-WEIGHT-1M"]) >= 1
    assert body == DEFAULT_MARKETS.read_bytes()


def test_ping_time_and_default_clock(sim: SimServer) -> None:
    assert get(sim, "/fapi/v1/ping")[:2] == (200, {})
    last_open = int(ms(feather("BTC", "futures")["date"]).max())
    assert sim.clock.now_ms() == last_open + HOUR == parse_instant("2026-01-01T00:00:00Z")
    assert get(sim, "/fapi/v1/time")[1] == {"serverTime": last_open + HOUR}


# --- klines -----------------------------------------------------------------------------


def test_klines_default_limit_is_last_500_up_to_clock(sim: SimServer) -> None:
    status, rows, _ = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h")
    src = feather("BTC", "futures")
    assert status == 200 and len(rows) == 500
    assert [r[0] for r in rows] == ms(src["date"])[-500:].tolist()
    first = rows[0]
    assert len(first) == 12 and isinstance(first[0], int) and isinstance(first[6], int)
    assert all(isinstance(first[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
    assert first[6] == first[0] + HOUR - 1 and first[11] == "0"


def test_klines_limit_bounds(sim: SimServer) -> None:
    ok = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", limit=1500)
    assert ok[0] == 200 and len(ok[1]) == 1500
    for bad in (1501, 0):
        status, body, _ = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", limit=bad)
        assert (status, body["code"]) == (400, -1130) and "'limit'" in body["msg"]
    status, body, _ = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", limit="ten")
    assert (status, body["code"]) == (400, -1100) and "'limit'" in body["msg"]
    status, body, _ = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", startTime="-5")
    assert (status, body["code"]) == (400, -1100) and "'startTime'" in body["msg"]


def test_klines_time_bounds_are_inclusive_on_open_time(sim: SimServer) -> None:
    t0 = parse_instant("2025-01-01T00:00:00Z")
    both = get(
        sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="1h", startTime=t0, endTime=t0 + 5 * HOUR
    )[1]
    assert [r[0] for r in both] == [t0 + i * HOUR for i in range(6)]
    capped = get(
        sim,
        "/fapi/v1/klines",
        symbol="ETHUSDT",
        interval="1h",
        startTime=t0,
        endTime=t0 + 50 * HOUR,
        limit=3,
    )[1]
    assert [r[0] for r in capped] == [t0, t0 + HOUR, t0 + 2 * HOUR]  # first `limit` of range
    start_only = get(
        sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="1h", startTime=t0 + 1, limit=2
    )[1]
    assert [r[0] for r in start_only] == [t0 + HOUR, t0 + 2 * HOUR]
    end_only = get(sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="1h", endTime=t0, limit=3)[1]
    assert [r[0] for r in end_only] == [t0 - 2 * HOUR, t0 - HOUR, t0]
    from_zero = get(sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="1h", startTime=0, limit=1)
    assert from_zero[1][0][0] == int(ms(feather("ETH", "futures")["date"])[0])
    status, body, _ = get(
        sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="1h", startTime=t0 + HOUR, endTime=t0
    )
    assert (status, body["code"]) == (400, -1023)


@pytest.mark.parametrize(
    ("base", "path", "kind"),
    [
        ("BTC", "/fapi/v1/klines", "futures"),
        ("SOL", "/fapi/v1/markPriceKlines", "mark"),
        ("1000PEPE", "/fapi/v1/klines", "futures"),
    ],
)
def test_paging_the_whole_file_reproduces_it_exactly(
    sim: SimServer, base: str, path: str, kind: str
) -> None:
    rows: list[list[Any]] = []
    start = 0
    while True:
        page = get(sim, path, symbol=f"{base}USDT", interval="1h", startTime=start, limit=1500)[1]
        if not page:
            break
        rows += page
        start = page[-1][0] + 1
    got = pd.DataFrame(
        {
            "date": pd.to_datetime([r[0] for r in rows], unit="ms", utc=True).as_unit("ns"),
            **{
                c: [float(r[i]) for r in rows]
                for i, c in enumerate(("open", "high", "low", "close", "volume"), start=1)
            },
        }
    )
    pd.testing.assert_frame_equal(got, feather(base, kind), check_exact=True)


def test_resampled_intervals_match_pandas_resample(sim: SimServer) -> None:
    src = feather("ETH", "futures").set_index("date")
    for interval, rule in (("4h", "4h"), ("1d", "1D")):
        agg = src.resample(rule).agg(  # default origin: midnight UTC, as Binance
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        )
        rows = get(
            sim,
            "/fapi/v1/klines",
            symbol="ETHUSDT",
            interval=interval,
            limit=30,
            startTime=parse_instant("2025-03-01T00:00:00Z"),
        )[1]
        want = agg.loc["2025-03-01":].iloc[:30]
        assert [r[0] for r in rows] == ms(want.index.to_series()).tolist()
        assert [float(r[1]) for r in rows] == want["open"].tolist()
        assert [float(r[2]) for r in rows] == want["high"].tolist()
        assert [float(r[4]) for r in rows] == want["close"].tolist()
        assert np.allclose([float(r[5]) for r in rows], want["volume"], rtol=1e-12)
        assert rows[0][6] - rows[0][0] + 1 == pd.Timedelta(rule) // pd.Timedelta("1ms")


def test_interval_errors(sim: SimServer) -> None:
    status, body, _ = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="5m")
    assert (status, body) == (400, {"code": -1120, "msg": "Invalid interval."})
    status, body, _ = get(sim, "/fapi/v1/klines", symbol="BTCUSDT")
    assert (status, body["code"]) == (400, -1102) and "'interval'" in body["msg"]


# --- the clock --------------------------------------------------------------------------


def test_nothing_after_the_clock_is_served(sim_at: SimServer) -> None:
    now = sim_at.clock.now_ms()
    for path in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines"):
        rows = get(
            sim_at,
            path,
            symbol="BTCUSDT",
            interval="1h",
            startTime=now - 3 * HOUR,
            endTime=now + 100 * HOUR,
        )[1]
        assert rows and max(r[0] for r in rows) <= now
        assert get(sim_at, path, symbol="BTCUSDT", interval="1h", startTime=now + HOUR)[1] == []
        assert get(sim_at, path, symbol="BTCUSDT", interval="1h")[1][-1][0] <= now
    day = get(sim_at, "/fapi/v1/klines", symbol="BTCUSDT", interval="1d", limit=1)[1]
    assert day[0][0] == parse_instant("2025-06-01T00:00:00Z")  # forming daily bucket
    funding = get(
        sim_at,
        "/fapi/v1/fundingRate",
        symbol="BTCUSDT",
        startTime=now - 48 * HOUR,
        endTime=now + 1000 * HOUR,
    )[1]
    assert funding and max(f["fundingTime"] for f in funding) <= now
    assert (
        get(sim_at, "/fapi/v1/fundingRate", symbol="BTCUSDT", limit=1000)[1][-1]["fundingTime"]
        <= now
    )


def test_forming_candle_shows_only_the_price_so_far(sim_at: SimServer) -> None:
    src = feather("BTC", "futures").set_index("date")
    hour = src.loc[pd.Timestamp("2025-06-01T00:00:00Z")]
    o, c, v = float(hour["open"]), float(hour["close"]), float(hour["volume"])
    t = parse_instant("2025-06-01T00:00:00Z")

    row = get(sim_at, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", limit=1)[1][0]
    price = o + (c - o) * 0.5
    assert row[0] == t and row[6] == t + HOUR - 1
    assert [float(x) for x in row[1:6]] == [o, max(o, price), min(o, price), price, v * 0.5]
    ticker = get(sim_at, "/fapi/v1/ticker/price", symbol="BTCUSDT")[1]
    assert float(ticker["price"]) == price

    sim_at.clock.set(t)  # the candle's first instant: nothing about it is known yet
    row = get(sim_at, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", limit=1)[1][0]
    assert [float(x) for x in row[1:6]] == [o, o, o, o, 0.0]

    sim_at.clock.set(t + HOUR)  # complete: the recorded candle, and the next one forming
    rows = get(sim_at, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", limit=2)[1]
    assert [float(x) for x in rows[0][1:6]] == [
        float(hour[k]) for k in ("open", "high", "low", "close", "volume")
    ]
    assert rows[1][0] == t + HOUR and float(rows[1][5]) == 0.0


def test_running_clock_advances_at_speed() -> None:
    clock = ReplayClock.running("2025-06-01T00:00:00Z", speed=3600.0)
    start = clock.now_ms()
    time.sleep(0.05)
    advanced = clock.now_ms() - start
    assert 0.04 * 3_600_000 <= advanced <= 5 * 3_600_000
    with pytest.raises(ValueError):
        ReplayClock.running(0, speed=0)


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/fapi/v1/klines",
        "/fapi/v1/depth",
        "/fapi/v1/ticker/24hr",
        "/fapi/v1/fundingRate",
        "/fapi/v1/premiumIndex",
        "/fapi/v1/markPriceKlines",
    ],
)
def test_unknown_symbol_is_binance_error_1121(sim: SimServer, path: str) -> None:
    status, body, _ = get(sim, path, symbol="NOPEUSDT", interval="1h")
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})


@pytest.mark.parametrize("path", ["/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/depth"])
def test_missing_symbol_is_binance_error_1102(sim: SimServer, path: str) -> None:
    status, body, _ = get(sim, path, interval="1h")
    assert status == 400
    assert body == {
        "code": -1102,
        "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
    }


def test_unknown_path_and_method_are_json_404(sim: SimServer) -> None:
    status, body, _ = get(sim, "/fapi/v1/nope")
    assert status == 404 and body["code"] == -5000 and "/fapi/v1/nope" in body["msg"]
    req = urllib.request.Request(f"{sim.url}/fapi/v1/order", data=b"x=1", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 404 and json.loads(err.value.read())["code"] == -5000
    assert sim.stats.unhandled["/fapi/v1/nope"] >= 1


def test_internal_error_is_json_500(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any) -> Any:
        raise RuntimeError("kaput")

    monkeypatch.setitem(sim_api.ROUTES, "/fapi/v1/ping", boom)
    status, body, _ = get(sim, "/fapi/v1/ping")
    assert status == 500 and body["code"] == -1000 and "kaput" not in body["msg"]


def test_listed_symbol_without_data(sim: SimServer, market_data: MarketData) -> None:
    assert "BTCUSDC" in market_data.symbols and "BTCUSDC" not in market_data.symbols_with_data
    assert get(sim, "/fapi/v1/klines", symbol="BTCUSDC", interval="1h")[:2] == (200, [])
    tickers = get(sim, "/fapi/v1/ticker/24hr")[1]
    assert sorted(t["symbol"] for t in tickers) == sorted(market_data.symbols_with_data)
    assert len(tickers) == 35


# --- tickers, book, funding -------------------------------------------------------------


def test_ticker_endpoints_agree(sim_at: SimServer) -> None:
    for path in (
        "/fapi/v1/ticker/price",
        "/fapi/v2/ticker/price",
        "/fapi/v1/ticker/bookTicker",
        "/fapi/v1/premiumIndex",
        "/fapi/v1/ticker/24hr",
    ):
        assert len(get(sim_at, path)[1]) == 35, path
    price = float(get(sim_at, "/fapi/v1/ticker/price", symbol="ETHUSDT")[1]["price"])
    day = get(sim_at, "/fapi/v1/ticker/24hr", symbol="ETHUSDT")[1]
    assert float(day["lastPrice"]) == price
    src = feather("ETH", "futures").set_index("date")
    assert float(day["openPrice"]) == float(src.loc[pd.Timestamp("2025-05-31T01:00Z"), "open"])
    book = get(sim_at, "/fapi/v1/ticker/bookTicker", symbol="ETHUSDT")[1]
    assert Decimal(book["askPrice"]) - Decimal(book["bidPrice"]) == Decimal("0.01")
    assert float(book["bidPrice"]) <= price <= float(book["askPrice"])
    prem = get(sim_at, "/fapi/v1/premiumIndex", symbol="ETHUSDT")[1]
    assert set(prem) == {
        "symbol",
        "markPrice",
        "indexPrice",
        "estimatedSettlePrice",
        "lastFundingRate",
        "interestRate",
        "nextFundingTime",
        "time",
    }
    fund = feather("ETH", "funding_rate")
    settled = fund[fund["date"] <= pd.Timestamp("2025-06-01T00:30Z")].iloc[-1]
    assert float(prem["lastFundingRate"]) == float(settled["funding_rate"])
    assert prem["nextFundingTime"] == parse_instant("2025-06-01T08:00:00Z")
    assert prem["interestRate"] == "0.00010000" and prem["time"] == sim_at.clock.now_ms()


def test_depth_is_a_sane_tick_grid_book(sim: SimServer, market_data: MarketData) -> None:
    tick, step = market_data.symbols["BTCUSDT"].tick, market_data.symbols["BTCUSDT"].step
    for limit in (5, 100, 1000):
        book = get(sim, "/fapi/v1/depth", symbol="BTCUSDT", limit=limit)[1]
        bids = [Decimal(p) for p, _ in book["bids"]]
        asks = [Decimal(p) for p, _ in book["asks"]]
        assert len(bids) == len(asks) == limit
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
        assert asks[0] - bids[0] == tick
        assert all(p % tick == 0 for p in bids + asks)
        qty = [Decimal(q) for _, q in book["bids"] + book["asks"]]
        assert all(q > 0 and q % step == 0 for q in qty)
    assert len(get(sim, "/fapi/v1/depth", symbol="BTCUSDT")[1]["bids"]) == 500
    status, body, _ = get(sim, "/fapi/v1/depth", symbol="BTCUSDT", limit=7)
    assert (status, body["code"]) == (400, -1130)


def test_funding_rate_history(sim: SimServer) -> None:
    src = feather("XTZ", "funding_rate")
    default = get(sim, "/fapi/v1/fundingRate", symbol="XTZUSDT")[1]
    assert len(default) == 100
    assert [f["fundingTime"] for f in default] == ms(src["date"])[-100:].tolist()
    assert [float(f["fundingRate"]) for f in default] == src["funding_rate"].iloc[-100:].tolist()
    assert set(default[0]) == {"symbol", "fundingTime", "fundingRate", "markPrice"}
    assert len(get(sim, "/fapi/v1/fundingRate", symbol="XTZUSDT", limit=1000)[1]) == 1000
    assert get(sim, "/fapi/v1/fundingRate", symbol="XTZUSDT", limit=1001)[1]["code"] == -1130
    everyone = get(sim, "/fapi/v1/fundingRate", limit=50)[1]
    assert len(everyone) == 50 and len({f["symbol"] for f in everyone}) > 1


# --- ccxt -------------------------------------------------------------------------------


def test_overlay_routes_every_ccxt_url_to_loopback() -> None:
    config = json.loads(DEFAULT_OVERLAY.read_text())
    assert config["datadir"] == "../shared/data/binance"

    def leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in tree.items():
            out.update(leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
        return out

    for key, instance in (
        ("ccxt_config", ccxt.binanceusdm),
        ("ccxt_config", ccxt.binance),
        ("ccxt_async_config", ccxt.pro.binanceusdm),
        ("ccxt_async_config", ccxt.pro.binance),
    ):
        section = config["exchange"][key]
        assert set(section) == {"urls", "options"}
        assert section["options"] == {"fetchMarkets": {"types": ["linear"]}}
        real = leaves(instance().urls["api"])
        routed = leaves(instance(section).urls["api"])  # ccxt deep-merges constructor urls
        assert routed.keys() == real.keys()
        for name, url in routed.items():
            parts = urlsplit(url)
            assert parts.hostname == "127.0.0.1" and parts.port == 8765, name
            assert parts.path == urlsplit(real[name]).path, name


def test_ccxt_binanceusdm_against_the_simulator(sim_at: SimServer) -> None:
    ex = ccxt.binanceusdm(overlay_exchange(sim_at))
    assert len(ex.load_markets()) == 347
    assert ex.fetch_time() == sim_at.clock.now_ms()
    since = parse_instant("2025-05-20T00:00:00Z")
    src = feather("BTC", "futures")
    want = src[src["date"] >= pd.Timestamp(since, unit="ms", tz="UTC")].iloc[:10]
    ohlcv = ex.fetch_ohlcv("BTC/USDT:USDT", "1h", since=since, limit=10)
    assert [r[0] for r in ohlcv] == ms(want["date"]).tolist()
    cols = ["open", "high", "low", "close", "volume"]
    assert [r[1:] for r in ohlcv] == want[cols].to_numpy().tolist()
    mark = ex.fetch_ohlcv("SOL/USDT:USDT", "1h", since=since, limit=5, params={"price": "mark"})
    msrc = feather("SOL", "mark")
    msrc = msrc[msrc["date"] >= pd.Timestamp(since, unit="ms", tz="UTC")].iloc[:5]
    assert [r[4] for r in mark] == msrc["close"].tolist()
    rates = ex.fetch_funding_rate_history("ETH/USDT:USDT", since=since, limit=6)
    fsrc = feather("ETH", "funding_rate")
    fsrc = fsrc[fsrc["date"] >= pd.Timestamp(since, unit="ms", tz="UTC")].iloc[:6]
    assert [r["fundingRate"] for r in rates] == fsrc["funding_rate"].tolist()
    assert [r["timestamp"] for r in rates] == ms(fsrc["date"]).tolist()
    ticker = ex.fetch_ticker("BTC/USDT:USDT")
    assert ticker["last"] == float(
        get(sim_at, "/fapi/v1/ticker/price", symbol="BTCUSDT")[1]["price"]
    )
    book = ex.fetch_order_book("BTC/USDT:USDT", limit=20)
    assert len(book["bids"]) == 20 and book["bids"][0][0] < book["asks"][0][0]
    assert book["bids"][0][0] <= ticker["last"] <= book["asks"][0][0]
    with pytest.raises(ccxt.BadSymbol):
        ex.fapiPublicGetKlines({"symbol": "NOPEUSDT", "interval": "1h"})
    assert not sim_at.stats.unhandled


# --- command line -----------------------------------------------------------------------


def test_cli_rejects_bad_paths_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["--datadir", str(tmp_path / "missing")])
    assert exc.value.code == 2 and "--datadir" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli_main(["--markets", str(tmp_path / "missing.json")])
    assert exc.value.code == 2 and "--markets" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "statarb.sim", "--port", "0", "--clock", "2025-06-01T00:00:00Z"],
        cwd="/",
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        url = banner.split(" on ")[1].split()[0]
        with urllib.request.urlopen(f"{url}/fapi/v1/time", timeout=10) as resp:
            assert json.loads(resp.read()) == {"serverTime": parse_instant("2025-06-01T00:00Z")}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_substitutes_the_overlay() -> None:
    tmp = Path("/tmp/x/config.offline.json")
    assert substitute_config(
        ["ft", "-c", "config.json", "-c", "config.offline.json"], DEFAULT_OVERLAY, tmp
    ) == ["ft", "-c", "config.json", "-c", str(tmp)]
    assert substitute_config(["ft", f"--config={DEFAULT_OVERLAY}"], DEFAULT_OVERLAY, tmp) == [
        "ft",
        f"--config={tmp}",
    ]
    assert substitute_config(["ft", "-c", "config.json"], DEFAULT_OVERLAY, tmp) == [
        "ft",
        "-c",
        "config.json",
        "--config",
        str(tmp),
    ]
    moved = retarget({"a": ["http://127.0.0.1:8765/fapi/v1", "https://example.com:8765/x"]}, 9)
    assert moved == {"a": ["http://127.0.0.1:9/fapi/v1", "https://example.com:8765/x"]}


@pytest.mark.slow
def test_run_wrapper_end_to_end() -> None:
    """The command sees a port-substituted overlay that works, and its exit code comes back."""
    probe = (
        "import json, sys, urllib.request\n"
        "cfg = json.load(open(sys.argv[1]))\n"
        "url = cfg['exchange']['ccxt_config']['urls']['api']['fapiPublic'] + '/time'\n"
        "t = json.load(urllib.request.urlopen(url))['serverTime']\n"
        "assert cfg['datadir'].startswith('/'), cfg['datadir']\n"
        "sys.exit(3 if t == 1748736000000 else 1)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "statarb.sim.run",
            "--clock",
            "2025-06-01T00:00:00Z",
            "--",
            sys.executable,
            "-c",
            probe,
            "config.offline.json",
        ],
        cwd="/",
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr

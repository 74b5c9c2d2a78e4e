"""The simulator shifted to now: a 2025 replay served as if it were happening on the wall clock.

Freqtrade trades only on candles dated close to its own wall clock, so a dry run against the
replay needs every served time moved by a whole number of hours while the prices stay the
recorded ones. Expected values come from the shared feather files read with pandas and from
the machine's clock, never from the simulator itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import ccxt
import numpy as np
import pandas as pd
import pytest

from statarb.sim import DEFAULT_DATADIR, DEFAULT_MARKETS, MarketData, ReplayClock, SimServer
from statarb.sim.api import ROUTES
from statarb.sim.clock import align_to_wall, parse_instant
from statarb.sim.klines import resample
from statarb.sim.market_data import Candles
from statarb.sim.shift import SHIFTERS, shift_query
from tests.sim_helpers import HOUR, feather, get, ms, overlay_exchange, subprocess_env

REPLAY_START = "2025-06-01T10:00:00Z"
DAY = 24 * HOUR
COLS = ["open", "high", "low", "close", "volume"]


def wall_ms() -> int:
    return int(time.time() * 1000)


def wall_hour() -> int:
    return wall_ms() // HOUR * HOUR


def steady_hour(margin_s: float = 20.0) -> None:
    """Wait out the end of a wall-clock hour, so "the current hour" cannot flip mid-test."""
    left = (HOUR - wall_ms() % HOUR) / 1000.0
    if left < margin_s:
        time.sleep(left + 0.5)


def data_row(base: str, kind: str, at: int) -> pd.Series:
    src = feather(base, kind).set_index("date")
    return src.loc[pd.Timestamp(at, unit="ms", tz="UTC")]


@pytest.fixture(scope="module")
def live() -> Iterator[SimServer]:
    """Replay from 2025-06-01T10:00Z, shown on the wall clock."""
    steady_hour()
    market_data = MarketData(DEFAULT_DATADIR, DEFAULT_MARKETS)
    clock = ReplayClock.fixed(REPLAY_START)
    with SimServer(market_data=market_data, clock=clock, shift_to_now=True) as server:
        yield server


def replay_hour(live: SimServer) -> int:
    """Data hour forming now: the wall hour moved back by the offset."""
    return wall_hour() - live.offset_ms


# --- the offset -------------------------------------------------------------------------


def test_align_to_wall_keeps_hours_and_takes_wall_minutes() -> None:
    start = parse_instant("2025-06-01T10:40:00Z")
    wall = parse_instant("2026-11-21T03:12:34Z") + 567
    replay, offset = align_to_wall(start, wall)
    assert replay == parse_instant("2025-06-01T10:12:34Z") + 567  # start's hour + wall minutes
    assert offset == parse_instant("2026-11-21T03:00Z") - parse_instant("2025-06-01T10:00Z")
    assert offset % HOUR == 0 and replay + offset == wall
    on_the_hour = align_to_wall(parse_instant(REPLAY_START), wall)
    assert on_the_hour == (replay, offset)  # only the start's hour matters


def test_shifted_clock_shows_the_wall_clock() -> None:
    wall = parse_instant("2026-11-21T03:12:00Z")
    clock = ReplayClock.shifted_to_now("2025-06-01T10:40:00Z", wall_ms=wall)
    assert clock.speed == 1.0 and clock.shifted
    assert clock.start_ms == parse_instant("2025-06-01T10:12:00Z")
    assert clock.shown(clock.start_ms) == wall
    now = ReplayClock.shifted_to_now(REPLAY_START)
    assert abs(now.shown(now.now_ms()) - wall_ms()) < 1000
    assert "shown +" in now.describe()
    assert not ReplayClock.fixed(REPLAY_START).shifted


def test_server_offset(live: SimServer) -> None:
    assert live.offset_ms == live.clock.offset_ms
    assert live.offset_ms % HOUR == 0
    started_hour = int(live.clock.wall_at_start_ms) // HOUR * HOUR
    assert live.offset_ms == started_hour - parse_instant(REPLAY_START)
    assert live.clock.start_ms // HOUR * HOUR == parse_instant(REPLAY_START)


def test_shift_to_now_needs_a_start() -> None:
    with pytest.raises(ValueError, match="shift_to_now"):
        SimServer(shift_to_now=True)


def test_every_route_says_where_its_times_are() -> None:
    assert set(SHIFTERS) == set(ROUTES)


def test_query_times_move_back_and_bad_values_stay() -> None:
    q = {"startTime": "5000", "endTime": "100", "limit": "7", "symbol": "X"}
    assert shift_query(q, 1000) == {
        "startTime": "4000",
        "endTime": "0",
        "limit": "7",
        "symbol": "X",
    }
    assert shift_query({"startTime": "-5", "endTime": ""}, 1000) == {
        "startTime": "-5",
        "endTime": "",
    }


def test_resample_aligns_buckets_in_shown_time() -> None:
    opens = np.arange(0, 48, dtype=np.int64) * HOUR
    ones = np.ones(48)
    c = Candles(opens, ones, ones, ones, ones, ones)
    shift = 5 * HOUR
    daily = resample(c, DAY, shift)
    assert (daily.open_ms + shift).tolist() == [0, DAY, 2 * DAY]  # midnights as shown
    assert daily.volume.tolist() == [19.0, 24.0, 5.0]


# --- what the server answers ------------------------------------------------------------


def test_time_is_the_wall_clock(live: SimServer) -> None:
    before = wall_ms()
    served = get(live, "/fapi/v1/time")[1]["serverTime"]
    assert before - 5 <= served <= wall_ms() + 5


def test_last_kline_is_the_current_wall_hour_with_the_replay_hour_data(live: SimServer) -> None:
    steady_hour()
    before = live.clock.now_ms()
    rows = get(live, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", limit=3)[1]
    after = live.clock.now_ms()
    hour, data_hour = wall_hour(), replay_hour(live)
    assert [r[0] for r in rows] == [hour - 2 * HOUR, hour - HOUR, hour]
    assert rows[-1][6] == hour + HOUR - 1
    for row, at in zip(rows[:2], (data_hour - 2 * HOUR, data_hour - HOUR), strict=True):
        assert [float(x) for x in row[1:6]] == data_row("BTC", "futures", at)[COLS].tolist()
    # The forming candle: recorded open, then only the way from open to close so far.
    src = data_row("BTC", "futures", data_hour)
    o, c, v = float(src["open"]), float(src["close"]), float(src["volume"])
    lo_frac, hi_frac = ((t - data_hour) / HOUR for t in (before, after))
    forming = [float(x) for x in rows[-1][1:6]]
    assert forming[0] == o
    reached = sorted((o + (c - o) * lo_frac, o + (c - o) * hi_frac))
    assert reached[0] <= forming[3] <= reached[1]
    assert forming[1] == max(o, forming[3]) and forming[2] == min(o, forming[3])
    assert v * lo_frac <= forming[4] <= v * hi_frac


def test_mark_and_index_klines_are_shifted_too(live: SimServer) -> None:
    steady_hour()
    for path, key in (
        ("/fapi/v1/markPriceKlines", "symbol"),
        ("/fapi/v1/indexPriceKlines", "pair"),
        ("/fapi/v1/continuousKlines", "pair"),
    ):
        params = {key: "ETHUSDT", "interval": "1h", "limit": 2}
        if path == "/fapi/v1/continuousKlines":
            params["contractType"] = "PERPETUAL"
        rows = get(live, path, **params)[1]
        assert [r[0] for r in rows] == [wall_hour() - HOUR, wall_hour()], path
    at = replay_hour(live) - HOUR
    row = get(live, "/fapi/v1/markPriceKlines", symbol="ETHUSDT", interval="1h", limit=2)[1][0]
    assert float(row[4]) == float(data_row("ETH", "mark", at)["close"])


def test_shifted_time_range_returns_the_recorded_candles(live: SimServer) -> None:
    t0 = parse_instant("2025-05-20T00:00:00Z")
    shown = t0 + live.offset_ms
    rows = get(
        live,
        "/fapi/v1/klines",
        symbol="ETHUSDT",
        interval="1h",
        startTime=shown,
        endTime=shown + 5 * HOUR,
    )[1]
    assert [r[0] for r in rows] == [shown + i * HOUR for i in range(6)]
    src = feather("ETH", "futures")
    want = src[src["date"] >= pd.Timestamp(t0, unit="ms", tz="UTC")].iloc[:6]
    assert [[float(x) for x in r[1:6]] for r in rows] == want[COLS].to_numpy().tolist()
    start_only = get(
        live, "/fapi/v1/klines", symbol="ETHUSDT", interval="1h", startTime=shown + 1, limit=2
    )[1]
    assert [r[0] for r in start_only] == [shown + HOUR, shown + 2 * HOUR]
    # A shown time before the shifted data start is still a valid query: the first candle.
    first = get(live, "/fapi/v1/klines", symbol="ETHUSDT", interval="1h", startTime=0, limit=1)
    assert first[1][0][0] == int(ms(src["date"])[0]) + live.offset_ms


def test_daily_klines_open_at_shown_midnight(live: SimServer) -> None:
    steady_hour()
    rows = get(live, "/fapi/v1/klines", symbol="BTCUSDT", interval="1d", limit=2)[1]
    today = wall_ms() // DAY * DAY
    assert [r[0] for r in rows] == [today - DAY, today]
    src = feather("BTC", "futures").set_index("date")
    start = pd.Timestamp(today - DAY - live.offset_ms, unit="ms", tz="UTC")
    day = src.loc[start : start + pd.Timedelta("23h")]
    assert float(rows[0][1]) == float(day["open"].iloc[0])
    assert float(rows[0][4]) == float(day["close"].iloc[-1])
    assert float(rows[0][2]) == float(day["high"].max())


def test_funding_times_are_shifted(live: SimServer) -> None:
    now = wall_ms()
    rows = get(live, "/fapi/v1/fundingRate", symbol="BTCUSDT", limit=5)[1]
    src = feather("BTC", "funding_rate")
    settled = src[src["date"] <= pd.Timestamp(now - live.offset_ms, unit="ms", tz="UTC")].iloc[-5:]
    assert [r["fundingTime"] for r in rows] == (ms(settled["date"]) + live.offset_ms).tolist()
    assert [float(r["fundingRate"]) for r in rows] == settled["funding_rate"].tolist()
    t = rows[0]["fundingTime"]
    ranged = get(live, "/fapi/v1/fundingRate", symbol="BTCUSDT", startTime=t, endTime=t)[1]
    assert [r["fundingTime"] for r in ranged] == [t]
    prem = get(live, "/fapi/v1/premiumIndex", symbol="BTCUSDT")[1]
    assert rows[-1]["fundingTime"] < prem["nextFundingTime"] <= rows[-1]["fundingTime"] + 8 * HOUR
    assert prem["nextFundingTime"] > now and abs(prem["time"] - now) < 2000
    assert float(prem["lastFundingRate"]) == float(settled["funding_rate"].iloc[-1])


def test_nothing_after_now_is_served(live: SimServer) -> None:
    steady_hour()
    now = wall_ms()
    for path in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines"):
        rows = get(
            live,
            path,
            symbol="BTCUSDT",
            interval="1h",
            startTime=now - 3 * HOUR,
            endTime=now + 100 * HOUR,
        )[1]
        assert rows and max(r[0] for r in rows) == wall_hour() <= now
        later = get(live, path, symbol="BTCUSDT", interval="1h", startTime=wall_hour() + HOUR)
        assert later[1] == []
    funding = get(
        live,
        "/fapi/v1/fundingRate",
        symbol="BTCUSDT",
        startTime=now - DAY,
        endTime=now + 1000 * HOUR,
    )[1]
    assert funding and max(f["fundingTime"] for f in funding) <= now
    everyone = get(live, "/fapi/v1/fundingRate", limit=1000)[1]
    assert max(f["fundingTime"] for f in everyone) <= wall_ms()


def test_tickers_and_book_carry_the_wall_time(live: SimServer) -> None:
    before = wall_ms()
    day = get(live, "/fapi/v1/ticker/24hr", symbol="BTCUSDT")[1]
    price = get(live, "/fapi/v1/ticker/price", symbol="BTCUSDT")[1]
    price2 = get(live, "/fapi/v2/ticker/price", symbol="BTCUSDT")[1]
    book = get(live, "/fapi/v1/ticker/bookTicker", symbol="BTCUSDT")[1]
    depth = get(live, "/fapi/v1/depth", symbol="BTCUSDT", limit=5)[1]
    after = wall_ms() + 5
    assert before - 5 <= day["closeTime"] <= after and day["openTime"] == day["closeTime"] - DAY
    for t in (price["time"], price2["time"], book["time"], depth["E"], depth["T"]):
        assert before - 5 <= t <= after
    everyone = get(live, "/fapi/v1/ticker/price")[1]
    assert len(everyone) == 35 and all(before - 5 <= p["time"] <= wall_ms() + 5 for p in everyone)


def test_exchange_info_and_errors_are_unchanged(live: SimServer) -> None:
    with urllib.request.urlopen(f"{live.url}/fapi/v1/exchangeInfo", timeout=10) as resp:
        assert resp.read() == DEFAULT_MARKETS.read_bytes()
    status, body, _ = get(live, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", startTime="-5")
    assert (status, body["code"]) == (400, -1100) and "'startTime'" in body["msg"]
    t = wall_ms()
    status, body, _ = get(
        live, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", startTime=t, endTime=t - HOUR
    )
    assert (status, body["code"]) == (400, -1023)
    assert get(live, "/fapi/v1/klines", symbol="NOPEUSDT", interval="1h")[1]["code"] == -1121
    assert not live.stats.unhandled


# --- ccxt -------------------------------------------------------------------------------


def test_ccxt_sees_the_current_hour(live: SimServer) -> None:
    steady_hour()
    ex = ccxt.binanceusdm(overlay_exchange(live))
    ex.load_markets()
    ohlcv = ex.fetch_ohlcv("BTC/USDT:USDT", "1h", limit=5)
    hour = wall_hour()
    assert [r[0] for r in ohlcv] == [hour - i * HOUR for i in range(4, -1, -1)]
    data_hour = replay_hour(live)
    assert ohlcv[-2][1:] == data_row("BTC", "futures", data_hour - HOUR)[COLS].tolist()
    assert ohlcv[-1][1] == float(data_row("BTC", "futures", data_hour)["open"])
    assert abs(ex.fetch_time() - wall_ms()) < 2000
    rates = ex.fetch_funding_rate_history("ETH/USDT:USDT", limit=3)
    assert all(r["timestamp"] <= wall_ms() for r in rates)
    assert rates[-1]["timestamp"] > wall_ms() - 8 * HOUR - 60_000
    assert not live.stats.unhandled


# --- command line -----------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statarb.sim", *args],
        cwd="/",
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_cli_shift_to_now_needs_start_at_speed_one() -> None:
    missing = _cli("--shift-to-now")
    assert missing.returncode == 2 and "--shift-to-now needs --start" in missing.stderr
    fast = _cli("--start", REPLAY_START, "--speed", "60", "--shift-to-now")
    assert fast.returncode == 2 and "speed 1" in fast.stderr
    frozen = _cli("--clock", REPLAY_START, "--shift-to-now")
    assert frozen.returncode == 2


@pytest.mark.slow
def test_cli_serves_shifted_time() -> None:
    steady_hour()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "statarb.sim",
            "--port",
            "0",
            "--start",
            "2025-06-01T10:40:00Z",
            "--shift-to-now",
        ],
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
            assert abs(json.loads(resp.read())["serverTime"] - wall_ms()) < 2000
        query = "symbol=BTCUSDT&interval=1h&limit=1"
        with urllib.request.urlopen(f"{url}/fapi/v1/klines?{query}", timeout=10) as resp:
            row: list[Any] = json.loads(resp.read())[0]
        assert row[0] == wall_hour()
        assert float(row[1]) == float(
            data_row("BTC", "futures", parse_instant(REPLAY_START))["open"]
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        log = proc.stderr.read() if proc.stderr else ""
        assert "shown as" in banner and "replay 2025-06-01T10:00:00Z shown as" in log
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_run_wrapper_shift_to_now() -> None:
    probe = (
        "import json, sys, time, urllib.request\n"
        "cfg = json.load(open(sys.argv[1]))\n"
        "url = cfg['exchange']['ccxt_config']['urls']['api']['fapiPublic'] + '/time'\n"
        "t = json.load(urllib.request.urlopen(url))['serverTime']\n"
        "sys.exit(3 if abs(t - time.time() * 1000) < 2000 else 1)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "statarb.sim.run",
            "--start",
            REPLAY_START,
            "--shift-to-now",
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
    assert "shown as" in done.stderr


def test_shifted_clock_waits_out_a_candle_close_that_would_fall_inside_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import statarb.harness.offline as offline

    slept: list[float] = []
    wall = [parse_instant("2026-11-21T06:59:00Z") / 1000]
    monkeypatch.setattr(offline.time, "time", lambda: wall[0])
    monkeypatch.setattr(offline.time, "sleep", lambda s: slept.append(s))
    offline.shifted_clock(REPLAY_START, run_s=150)  # 60 s to the close: wait it out
    assert slept == [pytest.approx(62.0)]
    wall[0] = parse_instant("2026-11-21T06:30:00Z") / 1000
    offline.shifted_clock(REPLAY_START, run_s=150)  # 30 min left: go at once
    assert len(slept) == 1

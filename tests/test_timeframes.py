"""The timeframe is a setting: windows are wall time, so a config means the same span at
5m, 15m, 30m and 1h, and a span too short (or not whole) at a timeframe is refused by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from statarb.core.settings import StrategySettings
from statarb.sim import MarketData, ReplayClock, SimServer
from statarb.sim.clock import parse_instant
from tests.sim_helpers import get

TIMEFRAMES = {"5m": 5, "15m": 15, "30m": 30, "1h": 60}


@pytest.mark.parametrize("tf", sorted(TIMEFRAMES))
def test_every_window_is_the_same_wall_time_at_every_timeframe(tf: str) -> None:
    candle = pd.Timedelta(minutes=TIMEFRAMES[tf])
    s = StrategySettings.from_config({"statarb": {"walk_forward": {"z_window_hours": 50}}},
                                     candle)
    per_hour = pd.Timedelta(hours=1) / candle
    wf, reg = s.walk_forward, s.regime
    assert wf.formation * candle == pd.Timedelta(days=60)
    assert wf.reform_every * candle == pd.Timedelta(hours=24)
    assert wf.z_window == 50 * per_hour
    assert wf.horizon * candle == pd.Timedelta(hours=168)
    # The regime reads hourly closes at every timeframe: its windows are hourly candles.
    assert (reg.vol_window, reg.lookback, reg.cooldown) == (24, 720, 12)


@pytest.mark.parametrize(
    ("tf", "section", "match"),
    [
        # A formation of 3 days is 72 hourly candles: too few for the ADF lag search.
        ("1h", {"walk_forward": {"formation_days": 3}},
         r"formation_days=3 is 72 1h candles; the ADF lag search .* at least 100"),
        ("5m", {"walk_forward": {"z_window_hours": 0.5}},
         r"z_window_hours=0.5 is 6 5m candles; the rolling z-score needs at least 10"),
        ("1h", {"walk_forward": {"reform_hours": 0.25}},
         r"reform_hours=0.25 is not a whole number of 1h candles"),
        ("15m", {"regime": {"vol_window_hours": 1.5}}, r"vol_window_hours=1.5 is not a whole"),
        ("1h", {"walk_forward": {"z_window_hours": "100"}},
         r"z_window_hours='100' must be a positive number of hours"),
        # The old candle-counted keys name their wall-time replacement.
        ("1h", {"walk_forward": {"z_window": 100}}, r"z_window=100 counts candles.*z_window_hours"),
        ("1h", {"regime": {"lookback": 720}},
         r"regime.lookback=720 counts candles.*lookback_hours"),
    ],
)
def test_a_window_that_does_not_fit_the_timeframe_is_refused_by_name(
        tf: str, section: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StrategySettings.from_config({"statarb": section}, pd.Timedelta(minutes=TIMEFRAMES[tf]))


# ---------------------------------------------------------------- the simulator at 5m
OHLCV = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def resampled(coin: str, rule: str) -> pd.DataFrame:
    """The shared 5m candles of ``coin`` resampled by pandas (buckets from midnight UTC,
    as Binance aligns its intervals): the independent reference for the simulator."""
    from tests.shared_data import FUTURES_5M

    src = pd.read_feather(FUTURES_5M / f"{coin}_USDT_USDT-5m-futures.feather")
    return src.set_index("date").resample(rule).agg(OHLCV)


@pytest.fixture(scope="module")
def sim5m() -> Iterator[SimServer]:
    from tests.shared_data import DATADIR_5M, MARKETS

    market = MarketData(DATADIR_5M, MARKETS)
    clock = ReplayClock.fixed("2025-06-01T00:07:30Z")  # half-way through a 5m candle
    with SimServer(market_data=market, clock=clock) as server:
        yield server


def _klines(sim: SimServer, interval: str, **params: Any) -> list[list[Any]]:
    status, rows, _ = get(sim, "/fapi/v1/klines", symbol="OPUSDT", interval=interval,
                          **params)
    assert status == 200, rows
    return rows


@pytest.mark.parametrize("interval", ["5m", "15m", "30m", "1h", "4h"])
def test_the_simulator_serves_5m_data_and_resamples_it_as_binance(
        sim5m: SimServer, interval: str) -> None:
    rows = _klines(sim5m, interval, startTime=parse_instant("2025-05-01T00:00:00Z"),
                   limit=150)
    want = resampled("OP", interval.replace("m", "min")).loc["2025-05-01":].iloc[:150]
    width = pd.Timedelta(interval.replace("m", "min")) // pd.Timedelta("1ms")
    assert [r[0] for r in rows] == (want.index.as_unit("ms").asi8).tolist()
    assert all(r[6] - r[0] + 1 == width for r in rows)
    for i, col in enumerate(("open", "high", "low", "close"), start=1):
        assert [float(r[i]) for r in rows] == want[col].tolist(), col
    assert np.allclose([float(r[5]) for r in rows], want["volume"], rtol=1e-12, atol=0)


def test_the_forming_candle_at_each_interval_shows_only_the_price_so_far(
        sim5m: SimServer) -> None:
    """At 00:07:30 the 5m candle of 00:05 is half done; the 15m, 30m and 1h candles of
    00:00 hold the two closed 5m candles and that half, never the candle's final close."""
    full = resampled("OP", "5min").loc["2025-06-01 00:00":"2025-06-01 00:05"]
    half = full["open"].iloc[1] + (full["close"].iloc[1] - full["open"].iloc[1]) * 0.5
    last5 = _klines(sim5m, "5m", limit=2)
    assert last5[-1][0] == parse_instant("2025-06-01T00:05:00Z")
    assert float(last5[-1][4]) == pytest.approx(half, rel=1e-12)
    for interval in ("15m", "30m", "1h"):
        forming = _klines(sim5m, interval, limit=1)[-1]
        assert forming[0] == parse_instant("2025-06-01T00:00:00Z")
        assert float(forming[1]) == full["open"].iloc[0]
        assert float(forming[4]) == pytest.approx(half, rel=1e-12)


def test_an_interval_finer_than_the_data_is_refused_as_binance_refuses_a_bad_one(
        sim5m: SimServer) -> None:
    status, body, _ = get(sim5m, "/fapi/v1/klines", symbol="OPUSDT", interval="1m")
    assert (status, body) == (400, {"code": -1120, "msg": "Invalid interval."})
    status, body, _ = get(sim5m, "/fapi/v1/markPriceKlines", symbol="OPUSDT",
                          interval="15m")  # marks are hourly
    assert (status, body["code"]) == (400, -1120)


def test_hourly_marks_and_funding_are_served_beside_5m_candles(sim5m: SimServer) -> None:
    from tests.shared_data import FUTURES_5M

    rows = get(sim5m, "/fapi/v1/markPriceKlines", symbol="OPUSDT", interval="1h",
               startTime=parse_instant("2025-05-01T00:00:00Z"), limit=48)[1]
    mark = pd.read_feather(FUTURES_5M / "OP_USDT_USDT-1h-mark.feather").set_index("date")
    want = mark.loc["2025-05-01":].iloc[:48]
    assert [float(r[4]) for r in rows] == want["close"].tolist()
    funding = get(sim5m, "/fapi/v1/fundingRate", symbol="OPUSDT",
                  startTime=parse_instant("2025-03-21T00:00:00Z"), limit=20)[1]
    rates = pd.read_feather(FUTURES_5M / "OP_USDT_USDT-1h-funding_rate.feather")
    rates = rates[rates["date"] >= "2025-03-21"].iloc[:20]
    assert [f["fundingTime"] for f in funding] == rates["date"].dt.as_unit("ms").astype(
        "int64").tolist()
    assert [float(f["fundingRate"]) for f in funding] == rates["funding_rate"].tolist()


def test_a_datadir_with_two_candle_widths_is_refused(tmp_path: Path) -> None:
    from tests.shared_data import FUTURES, FUTURES_5M, MARKETS

    (tmp_path / "futures").mkdir()
    for path in (FUTURES / "BTC_USDT_USDT-1h-futures.feather",
                 FUTURES_5M / "ETH_USDT_USDT-5m-futures.feather"):
        (tmp_path / "futures" / path.name).symlink_to(path)
    with pytest.raises(ValueError, match=r"several timeframes \['5m', '1h'\]"):
        MarketData(tmp_path, MARKETS)


# ---------------------------------------------------------------- the regime reads hours
def _btc_close(rule: str) -> pd.Series:
    return resampled("BTC", rule)["close"]


def test_the_regime_at_15m_is_the_hourly_regime_known_at_each_candles_close() -> None:
    """From 15m candles (a backtest) or from 1h candles (a running bot) the regime per
    15m candle is the same, and each candle sees only hours closed by its own close."""
    from statarb.core.regime import RegimeParams, market_regime, regime_on_candles

    params = RegimeParams()
    close15, close1h = _btc_close("15min"), _btc_close("1h")
    index = close15.index
    from_15m = regime_on_candles(close15, index, params)
    from_1h = regime_on_candles(close1h, index, params, ref_width=pd.Timedelta(hours=1))
    for a, b in zip(from_15m, from_1h, strict=True):
        pd.testing.assert_series_equal(a, b)
    regime, blocked = from_15m
    assert regime.notna().sum() > 0.85 * len(regime)
    hourly, hourly_blocked = market_regime(np.log(close1h), params)
    t = pd.Timestamp("2025-06-11 10:30", tz="UTC")
    assert regime[t] == hourly[t - pd.Timedelta("90min")]  # 09:00, closed at 10:00
    assert regime[t + pd.Timedelta("15min")] == hourly[t - pd.Timedelta("30min")]  # 10:00
    assert blocked[t] == hourly_blocked[t - pd.Timedelta("90min")]
    # Nothing after a candle's close reaches it: a later price moves no earlier regime.
    cut = pd.Timestamp("2025-06-11 11:00", tz="UTC")
    moved = close15.copy()
    moved[moved.index >= cut] *= 3.0
    again, _ = regime_on_candles(moved, index, params)
    before = index + pd.Timedelta("15min") <= cut
    pd.testing.assert_series_equal(again[before], regime[before])
    assert not again[~before].equals(regime[~before])


def test_the_regime_at_1h_is_the_candles_own() -> None:
    from statarb.core.regime import RegimeParams, market_regime, regime_on_candles

    close = _btc_close("1h")
    got = regime_on_candles(close, close.index, RegimeParams())
    want = market_regime(np.log(close), RegimeParams())
    for a, b in zip(got, want, strict=True):
        pd.testing.assert_series_equal(a, b, check_names=False)

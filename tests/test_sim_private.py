"""Signed endpoints, faults and journal of the simulator, seen through ccxt's binanceusdm.

ccxt is configured as Freqtrade configures it (the offline overlay's URLs, retargeted to
the test server) with dummy keys, so every answer goes through ccxt's own parsing and
error mapping. Prices are recomputed from the shared feather files with pandas.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import ccxt
import pandas as pd
import pytest

from statarb.sim import MarketData, ReplayClock, SimServer
from statarb.sim.clock import parse_instant
from statarb.sim.journal import naked_intervals
from tests.sim_helpers import HOUR, feather, overlay_exchange

START = "2025-06-01T10:30:00Z"
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
TIMEOUT_MS = 1000


TICKS = {"BTC": Decimal("0.1"), "ETH": Decimal("0.01")}  # PRICE_FILTER tickSize


def replayed_price(base: str, at: int) -> Decimal:
    """Fill price at ``at`` from the feather file: linear inside the forming 1h candle,
    on the symbol's tick grid as Binance fills are."""
    df = feather(base, "futures")
    t = pd.Timestamp(at // HOUR * HOUR, unit="ms", tz="UTC")
    row = df.set_index("date").loc[t]
    frac = (at % HOUR) / HOUR
    raw = Decimal(repr(float(row["open"] + (row["close"] - row["open"]) * frac)))
    tick = TICKS[base]
    return (raw / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * tick


@pytest.fixture(scope="module")
def sim(market_data: MarketData) -> Iterator[SimServer]:
    with SimServer(market_data=market_data, clock=ReplayClock.fixed(START)) as server:
        yield server


@pytest.fixture(scope="module")
def market_data() -> MarketData:
    from statarb.sim import DEFAULT_DATADIR, DEFAULT_MARKETS

    return MarketData(DEFAULT_DATADIR, DEFAULT_MARKETS)


def make_exchange(sim: SimServer, **extra: Any) -> ccxt.binanceusdm:
    config = {
        **overlay_exchange(sim),
        "apiKey": "dummy-key",
        "secret": "dummy-secret",
        "timeout": TIMEOUT_MS,
        **extra,
    }
    ex = ccxt.binanceusdm(config)
    ex.load_markets()
    return ex


@pytest.fixture(scope="module")
def exchange_(sim: SimServer) -> ccxt.binanceusdm:
    return make_exchange(sim)


@pytest.fixture
def ex(sim: SimServer, exchange_: ccxt.binanceusdm) -> ccxt.binanceusdm:
    """The shared ccxt instance on a fresh account at the start instant."""
    sim.reset(wallet=10_000)
    sim.clock.set(START)
    return exchange_


def contracts(ex: ccxt.binanceusdm, symbol: str) -> float:
    """Signed position size; ccxt leaves flat positions out of fetch_positions."""
    return sum(
        p["contracts"] * (1 if p["side"] == "long" else -1) for p in ex.fetch_positions([symbol])
    )


def control(sim: SimServer, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{sim.url}/_sim{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


# --- account and orders ---------------------------------------------------------------


def test_balance_leverage_margin_mode_and_market_order(sim: SimServer, ex) -> None:
    assert ex.fetch_balance()["USDT"]["total"] == pytest.approx(10_000)
    ex.set_margin_mode("isolated", BTC)
    ex.set_leverage(4, BTC)
    order = ex.create_order(BTC, "market", "buy", 0.01)
    price = replayed_price("BTC", parse_instant(START))
    assert order["status"] == "closed" and order["filled"] == pytest.approx(0.01)
    assert order["average"] == pytest.approx(float(price), rel=1e-9)
    fee = Decimal("0.01") * price * Decimal("0.0005")
    [pos] = ex.fetch_positions([BTC])
    assert pos["contracts"] == pytest.approx(0.01) and pos["side"] == "long"
    assert pos["leverage"] == 4 and pos["marginMode"] == "isolated"
    assert pos["entryPrice"] == pytest.approx(float(price))
    bal = ex.fetch_balance()["USDT"]
    assert bal["total"] == pytest.approx(float(10_000 - fee))
    assert bal["used"] == pytest.approx(float(Decimal("0.01") * price / 4))
    [trade] = ex.fetch_my_trades(BTC)
    assert trade["order"] == order["id"] and trade["fee"]["cost"] == pytest.approx(float(fee))
    fetched = ex.fetch_order(order["id"], BTC)
    assert fetched["status"] == "closed" and fetched["clientOrderId"] == order["clientOrderId"]
    income = ex.fapiPrivateGetIncome({"symbol": "BTCUSDT"})
    assert [(i["incomeType"], Decimal(i["income"])) for i in income] == [("COMMISSION", -fee)]
    tiers = ex.fetch_leverage_tiers([BTC])[BTC]
    assert tiers[0]["maxLeverage"] >= 20
    assert not sim.stats.unhandled


def test_limit_order_rests_fills_when_replay_crosses_and_cancel(sim: SimServer, ex) -> None:
    start = parse_instant(START)
    p0 = replayed_price("BTC", start)
    df = feather("BTC", "futures")
    opens = df.assign(t=df["date"].dt.as_unit("ms").astype("int64")).query("t > @start")
    target = opens[opens["open"] < float(p0) * 0.995].iloc[0]
    limit_price = float(target["open"]) + 0.5  # above that open, below the start price
    order = ex.create_order(BTC, "limit", "buy", 0.01, limit_price)
    assert order["status"] == "open"
    other = ex.create_order(BTC, "limit", "buy", 0.01, float(p0) * 0.5)
    assert {o["id"] for o in ex.fetch_open_orders(BTC)} == {order["id"], other["id"]}
    assert ex.cancel_order(other["id"], BTC)["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(other["id"], BTC)
    sim.clock.set(int(target["t"]))
    filled = ex.fetch_order(order["id"], BTC)
    assert filled["status"] == "closed" and filled["average"] == pytest.approx(limit_price)
    [trade] = ex.fetch_my_trades(BTC)
    assert trade["takerOrMaker"] == "maker"
    assert trade["fee"]["cost"] == pytest.approx(0.01 * limit_price * 0.0002)
    assert [o["status"] for o in ex.fetch_orders(BTC)] == ["closed", "canceled"]


def test_reduce_only_and_closing_realises_pnl(sim: SimServer, ex) -> None:
    # -2022; ccxt maps it to InvalidOrder only for binance.com hosts
    with pytest.raises(ccxt.ExchangeError, match="-2022"):
        ex.create_order(ETH, "market", "sell", 0.1, params={"reduceOnly": True})
    ex.create_order(ETH, "market", "sell", 0.1)
    p0 = replayed_price("ETH", parse_instant(START))
    sim.clock.advance(2 * HOUR)
    p1 = replayed_price("ETH", parse_instant(START) + 2 * HOUR)
    close = ex.create_order(ETH, "market", "buy", 0.5, params={"reduceOnly": True})
    assert close["filled"] == pytest.approx(0.1)
    assert contracts(ex, ETH) == 0
    pnl = (p0 - p1) * Decimal("0.1")
    fees = (p0 + p1) * Decimal("0.1") * Decimal("0.0005")
    assert ex.fetch_balance()["USDT"]["total"] == pytest.approx(float(10_000 + pnl - fees))
    trades = ex.fetch_my_trades(ETH)
    assert float(trades[-1]["info"]["realizedPnl"]) == pytest.approx(float(pnl))


def test_missing_api_key_is_an_authentication_error(sim: SimServer, ex) -> None:
    req = urllib.request.Request(f"{sim.url}/fapi/v2/balance?timestamp=1&signature=x")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert json.loads(err.value.read())["code"] == -2014
    anonymous = ccxt.binanceusdm({**overlay_exchange(sim), "timeout": TIMEOUT_MS})
    anonymous.markets, anonymous.markets_by_id = ex.markets, ex.markets_by_id
    anonymous.apiKey, anonymous.secret = "", "s"
    with pytest.raises(ccxt.AuthenticationError):
        anonymous.fetch_balance()


# --- faults -----------------------------------------------------------------------------


def test_reject_insufficient_margin(sim: SimServer, ex) -> None:
    sim.faults.add("reject", symbol="BTCUSDT", code=-2019)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(BTC, "market", "buy", 0.01)
    ex.create_order(BTC, "market", "buy", 0.01)  # used up: the next one goes through
    [fault] = [e for e in sim.journal.entries() if e["event"] == "fault"]
    assert fault["reason"] == "reject" and fault["detail"]["code"] == -2019


def test_reject_rate_limit_answers_429(sim: SimServer, ex) -> None:
    sim.faults.add("reject", code=-1003, count=2)
    for _ in range(2):
        with pytest.raises(ccxt.DDoSProtection):  # RateLimitExceeded is one
            ex.create_order(BTC, "market", "buy", 0.01)
    assert ex.fetch_open_orders(BTC) == []
    assert ex.create_order(BTC, "market", "buy", 0.01)["status"] == "closed"


def test_real_insufficient_margin_is_rejected_too(sim: SimServer, ex) -> None:
    sim.reset(wallet=50)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(BTC, "market", "buy", 0.1)


def test_timeout_before_creates_no_order(sim: SimServer, ex) -> None:
    sim.faults.add("timeout_before", symbol="BTCUSDT", delay_s=2 * TIMEOUT_MS / 1000)
    with pytest.raises(ccxt.RequestTimeout):
        ex.create_order(BTC, "market", "buy", 0.01)
    assert ex.fetch_orders(BTC) == []
    assert [e["reason"] for e in sim.journal.entries()] == ["timeout_before"]


def test_timeout_after_leaves_a_ghost_order(sim: SimServer, ex) -> None:
    sim.faults.add("timeout_after", symbol="BTCUSDT", delay_s=2 * TIMEOUT_MS / 1000)
    with pytest.raises(ccxt.RequestTimeout):
        ex.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "ghost-1"})
    [ghost] = ex.fetch_orders(BTC)
    assert ghost["clientOrderId"] == "ghost-1" and ghost["status"] == "closed"
    assert contracts(ex, BTC) == pytest.approx(0.01)
    fault = sim.journal.entries()[-1]
    assert fault["event"] == "fault" and fault["detail"]["when"] == "after"
    assert fault["order_id"] == int(ghost["id"])


def test_timeout_answered_with_504(sim: SimServer, ex) -> None:
    sim.faults.add("timeout_after", delay_s=0.1, respond=504)
    with pytest.raises(ccxt.RequestTimeout):  # -1007 in the body
        ex.create_order(BTC, "market", "buy", 0.01)
    assert len(ex.fetch_orders(BTC)) == 1


def test_dropped_connections_fail_private_requests_for_a_while(sim: SimServer, ex) -> None:
    sim.faults.add("drop", duration_s=1.5)
    with pytest.raises(ccxt.NetworkError):
        ex.fetch_balance()
    with pytest.raises(ccxt.NetworkError):
        ex.create_order(BTC, "market", "buy", 0.01)
    assert ex.fetch_ticker(BTC)["last"] > 0  # public data still flows
    time.sleep(1.6)
    assert ex.fetch_balance()["USDT"]["total"] == pytest.approx(10_000)
    assert ex.fetch_orders(BTC) == []


def test_partial_fill_rest_open_then_cancelled(sim: SimServer, ex) -> None:
    sim.faults.add("partial", symbol="BTCUSDT", ratio=0.4)
    order = ex.create_order(BTC, "market", "buy", 0.01)
    assert order["status"] == "open" and order["filled"] == pytest.approx(0.004)
    assert order["remaining"] == pytest.approx(0.006)
    assert contracts(ex, BTC) == pytest.approx(0.004)
    assert ex.cancel_order(order["id"], BTC)["status"] == "canceled"
    reasons = [(e["event"], e["reason"]) for e in sim.journal.entries()]
    assert reasons == [("order", "new"), ("fill", "partial"), ("cancel", "cancel")]


def test_partial_fill_rest_cancelled_by_exchange(sim: SimServer, ex) -> None:
    control(sim, "POST", "/faults", {"kind": "partial", "ratio": 0.5, "rest": "cancel"})
    order = ex.create_order(ETH, "market", "sell", 0.1)
    assert order["status"] == "canceled" and order["filled"] == pytest.approx(0.05)
    assert contracts(ex, ETH) == pytest.approx(-0.05)
    assert sim.journal.entries()[-1]["reason"] == "fault"


def test_liquidation_through_the_control_endpoint(sim: SimServer, ex) -> None:
    ex.create_order(BTC, "market", "buy", 0.01)
    ex.create_order(ETH, "market", "sell", 0.3)
    control(sim, "POST", "/faults", {"kind": "liquidate", "symbol": "BTCUSDT", "ratio": 1})
    assert contracts(ex, BTC) == 0
    orders = ex.fetch_orders(BTC)
    auto = orders[-1]
    assert auto["clientOrderId"].startswith("autoclose-") and auto["status"] == "closed"
    assert auto["side"] == "sell" and auto["filled"] == pytest.approx(0.01)
    assert len(ex.fetch_my_trades(BTC)) == 2
    journal = control(sim, "GET", "/journal?symbol=BTCUSDT")
    assert journal[-1]["reason"] == "liquidation" and journal[-1]["position_after"] == "0"
    # ETH was left alone without its partner from the liquidation on
    naked = naked_intervals(
        control(sim, "GET", "/journal"), "ETHUSDT", "BTCUSDT", until=journal[-1]["wall_ms"] + 1
    )
    assert naked[-1][0] == journal[-1]["wall_ms"]
    state = control(sim, "GET", "/state")
    assert state["positions"]["ETHUSDT"]["amount"] == "-0.3"


def test_delist_rejects_orders_and_shows_settling(sim: SimServer, ex) -> None:
    ex.create_order(ETH, "market", "buy", 0.1)
    sim.faults.add("delist", symbol="ETHUSDT", settle=True)
    with pytest.raises(ccxt.BadSymbol):
        ex.create_order(ETH, "market", "buy", 0.1)
    assert contracts(ex, ETH) == 0
    assert sim.journal.entries()[-1]["reason"] == "delist"
    fresh = make_exchange(sim)
    assert fresh.markets[ETH]["active"] is False and fresh.markets[BTC]["active"] is True
    sim.reset()
    assert make_exchange(sim).markets[ETH]["active"] is True


def test_control_api_lists_clears_and_validates_faults(sim: SimServer, ex) -> None:
    armed = control(
        sim,
        "POST",
        "/faults",
        [{"kind": "reject", "count": 3}, {"kind": "partial", "symbol": "BTCUSDT"}],
    )
    assert [f["kind"] for f in armed] == ["reject", "partial"]
    assert len(control(sim, "GET", "/faults")["pending"]) == 2
    control(sim, "DELETE", "/faults")
    assert control(sim, "GET", "/faults")["pending"] == []
    with pytest.raises(urllib.error.HTTPError) as err:
        control(sim, "POST", "/faults", {"kind": "meteor"})
    assert err.value.code == 400
    with pytest.raises(ValueError):
        sim.faults.add("partial", ratio=1.5)
    control(sim, "POST", "/reset", {"wallet": 123})
    assert ex.fetch_balance()["USDT"]["total"] == pytest.approx(123)
    # the control prefix is not served under a Binance API path
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{sim.url}/fapi/v1/_sim/state", timeout=5)
    assert json.loads(err.value.read())["code"] == -5000


def test_funding_is_settled_on_held_positions_as_binance_charges_it(sim: SimServer,
                                                                    ex) -> None:
    # START is 10:30; Binance settles BTC funding at 16:00 UTC. Hold a long BTC and a
    # short ETH across it; the settlement uses the mark price at 16:00 and that rate.
    ex.create_order(BTC, "market", "buy", 0.02)
    ex.create_order(ETH, "market", "sell", 0.5)
    ex.fetch_balance()  # a request before the settlement: nothing to settle yet
    assert ex.fapiPrivateGetIncome({"incomeType": "FUNDING_FEE"}) == []
    wallet_before = sim.private.account.wallet  # wallet balance, without unrealised PnL
    sim.clock.set("2025-06-01T16:10:00Z")
    income = ex.fapiPrivateGetIncome({"incomeType": "FUNDING_FEE"})
    settle = pd.Timestamp("2025-06-01T16:00:00Z")
    expected = {}
    for base, signed in (("BTC", Decimal("0.02")), ("ETH", Decimal("-0.5"))):
        rates = feather(base, "funding_rate").set_index("date")
        marks = feather(base, "mark").set_index("date")
        # Independent of the simulator: the recorded rate and the mark candle's open.
        rate = rates.loc[rates.index > pd.Timestamp(START), "funding_rate"].iloc[0]
        assert rates.index[rates.index > pd.Timestamp(START)][0] == settle
        mark = Decimal(repr(float(marks.loc[settle, "open"])))
        expected[f"{base}USDT"] = -signed * mark * Decimal(repr(float(rate)))
    got = {i["symbol"]: Decimal(i["income"]) for i in income}
    assert set(got) == set(expected)
    for symbol, value in expected.items():
        assert float(got[symbol]) == pytest.approx(float(value), rel=1e-9)
    assert {i["time"] for i in income} == {int(settle.timestamp() * 1000)}
    assert float(sim.private.account.wallet - wallet_before) == pytest.approx(
        float(sum(expected.values())), abs=1e-9)
    # Settled once: more requests after it charge nothing more.
    ex.fetch_balance()
    assert len(ex.fapiPrivateGetIncome({"incomeType": "FUNDING_FEE"})) == 2
    assert [e["symbol"] for e in sim.journal.entries() if e["event"] == "funding"] == [
        "BTCUSDT", "ETHUSDT"]

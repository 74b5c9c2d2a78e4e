"""Matching engine of the simulated account, with every expected number worked out here.

Fees (taker 0.05%, maker 0.02% of notional), entry averaging, realised PnL and margin are
recomputed in each test from the inputs, never read back from the engine's own helpers.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from statarb.sim.journal import naked_intervals
from statarb.sim.matching import (
    Account,
    Order,
    Position,
    Rejected,
    Trade,
    apply_fill,
    opening_qty,
)

T0 = 1_748_772_000_000


def account(wallet: str = "10000", slippage: str = "0") -> Account:
    return Account(wallet=D(wallet), slippage_bps=D(slippage))


def market(acc: Account, side: str, qty: str, price: str, **kw: Any) -> tuple[Order, list[Trade]]:
    return acc.new_order(
        symbol=kw.pop("symbol", "BTCUSDT"),
        side=side,
        type="MARKET",
        qty=D(qty),
        price=D(0),
        market_price=D(price),
        now=kw.pop("now", T0),
        tick=D("0.1"),
        step=D("0.001"),
        **kw,
    )


def limit(
    acc: Account, side: str, qty: str, price: str, market_price: str, **kw: Any
) -> tuple[Order, list[Trade]]:
    return acc.new_order(
        symbol="BTCUSDT",
        side=side,
        type="LIMIT",
        qty=D(qty),
        price=D(price),
        market_price=D(market_price),
        now=T0,
        tick=D("0.1"),
        step=D("0.001"),
        **kw,
    )


def test_market_order_fills_at_replayed_price_with_taker_fee() -> None:
    acc = account()
    order, trades = market(acc, "BUY", "0.010", "100000")
    assert order.status == "FILLED" and order.executed_qty == D("0.010")
    assert order.avg_price == D("100000")
    fee = D("0.010") * D("100000") * D("0.0005")  # 0.5 USDT
    assert trades[0].fee == fee == D("0.5")
    assert acc.wallet == D("10000") - fee
    pos = acc.positions["BTCUSDT"]
    assert (pos.amount, pos.entry_price) == (D("0.010"), D("100000"))
    # isolated margin at the default 20x: 1000 / 20 = 50 USDT held
    assert acc.available() == D("10000") - fee - D("50")


def test_market_slippage_moves_against_the_taker_on_the_tick_grid() -> None:
    acc = account(slippage="10")  # 10 bps
    buy, _ = market(acc, "BUY", "0.001", "100000.05")
    sell, _ = market(acc, "SELL", "0.001", "100000.05")
    assert buy.avg_price == D("100100.1")  # 100000.05 * 1.001 = 100100.10005 -> tick 0.1
    assert sell.avg_price == D("99900.0")  # 100000.05 * 0.999 = 99900.00 (on tick)


def test_round_trip_realises_pnl_minus_both_fees() -> None:
    acc = account()
    market(acc, "SELL", "2", "50")  # short 2 @ 50
    _, trades = market(acc, "BUY", "2", "45")  # cover @ 45
    pnl = (D(50) - D(45)) * 2  # short gains 10
    fees = (D(2) * 50 + D(2) * 45) * D("0.0005")
    assert trades[0].realised_pnl == pnl
    assert acc.wallet == D(10000) + pnl - fees
    pos = acc.positions["BTCUSDT"]
    assert pos.amount == 0 and pos.entry_price == 0 and pos.realised_pnl == pnl
    incomes = [(i.income_type, i.amount) for i in acc.incomes]
    assert ("REALIZED_PNL", pnl) in incomes
    assert sum(a for k, a in incomes if k == "COMMISSION") == -fees


def test_adding_averages_entry_and_flipping_reopens_at_fill_price() -> None:
    pos = Position("X")
    assert apply_fill(pos, D(1), D(100)) == 0
    assert apply_fill(pos, D(3), D(120)) == 0
    assert pos.entry_price == (D(100) + 3 * D(120)) / 4  # 115
    realised = apply_fill(pos, D(-6), D(110))  # close 4 @110 (-5 each), open short 2 @110
    assert realised == (D(110) - D(115)) * 4
    assert (pos.amount, pos.entry_price) == (D(-2), D(110))
    assert opening_qty(D(-2), D(5)) == D(3)
    assert opening_qty(D(-2), D(-1)) == D(1)
    assert opening_qty(D(2), D(-1)) == 0


def test_limit_rests_then_fills_as_maker_when_price_crosses() -> None:
    acc = account()
    order, trades = limit(acc, "BUY", "1.000", "95", "100")
    assert trades == [] and order.status == "NEW"
    assert acc.available() == D(10000) - D(95) / 20  # margin reserved by the resting order
    assert acc.cross("BTCUSDT", D("96"), T0 + 1) == []
    [(filled, trade)] = acc.cross("BTCUSDT", D("94"), T0 + 2)
    assert filled.status == "FILLED" and trade.maker and trade.price == D(95)
    assert trade.fee == D(95) * D("0.0002")
    assert acc.wallet == D(10000) - D(95) * D("0.0002")


def test_marketable_limit_fills_at_once_as_taker_never_worse_than_limit() -> None:
    acc = account()
    order, [trade] = limit(acc, "SELL", "1.000", "90", "100")
    assert order.status == "FILLED" and not trade.maker
    assert trade.price == D(100)  # the better replayed price
    assert trade.fee == D(100) * D("0.0005")


def test_ioc_limit_that_does_not_cross_expires() -> None:
    order, _ = limit(account(), "BUY", "1.000", "90", "100", time_in_force="IOC")
    assert order.status == "EXPIRED"


def test_reduce_only_is_clipped_and_rejected_when_it_cannot_reduce() -> None:
    acc = account()
    with pytest.raises(Rejected) as err:
        market(acc, "SELL", "1.000", "100", reduce_only=True)
    assert err.value.code == -2022
    market(acc, "BUY", "1.000", "100")
    order, [trade] = market(acc, "SELL", "5.000", "110", reduce_only=True)
    assert order.qty == D(1) and trade.qty == D(1) and order.status == "FILLED"
    assert acc.positions["BTCUSDT"].amount == 0
    with pytest.raises(Rejected):
        market(acc, "BUY", "1.000", "100", reduce_only=True)


def test_insufficient_margin_is_rejected_with_2019() -> None:
    acc = account("100")
    acc.set_leverage("BTCUSDT", 2)
    market(acc, "BUY", "1.000", "150")  # 75 margin + 0.075 fee
    with pytest.raises(Rejected) as err:
        market(acc, "BUY", "1.000", "150")
    assert err.value.code == -2019
    # closing needs no margin
    market(acc, "SELL", "1.000", "150")
    assert acc.positions["BTCUSDT"].amount == 0


def test_partial_fill_leaves_the_rest_open_or_cancelled() -> None:
    acc = account()
    order, [trade] = market(acc, "BUY", "1.000", "100", fill_ratio=D("0.3"))
    assert trade.qty == D("0.3") and order.status == "PARTIALLY_FILLED"
    order2, _ = market(acc, "BUY", "1.000", "100", fill_ratio=D("0.25"), cancel_rest=True)
    assert order2.executed_qty == D("0.25") and order2.status == "CANCELED"
    assert acc.positions["BTCUSDT"].amount == D("0.55")


def test_wrong_precision_and_leverage_are_rejected() -> None:
    acc = account()
    with pytest.raises(Rejected) as err:
        market(acc, "BUY", "0.0015", "100")
    assert err.value.code == -1111
    with pytest.raises(Rejected):
        acc.set_leverage("BTCUSDT", 0)


def test_exchange_close_is_a_filled_autoclose_order() -> None:
    acc = account()
    market(acc, "SELL", "2.000", "100")
    order, trade = acc.close_by_exchange("BTCUSDT", D("0.5"), D(120), T0, "autoclose", D("0.001"))
    assert order.client_order_id.startswith("autoclose-") and order.status == "FILLED"
    assert order.side == "BUY" and trade.qty == D(1)
    assert trade.realised_pnl == (D(100) - D(120)) * 1
    assert acc.positions["BTCUSDT"].amount == D(-1)


def test_naked_intervals_from_position_entries() -> None:
    entries = [
        {"symbol": "A", "position_after": "1", "wall_ms": 10},
        {"symbol": "B", "position_after": "-2", "wall_ms": 15},
        {"symbol": "B", "position_after": "0", "wall_ms": 40},
        {"symbol": "A", "position_after": "0", "wall_ms": 70},
        {"symbol": "B", "event": "fault", "wall_ms": 80},
    ]
    assert naked_intervals(entries, "A", "B") == [(10, 15), (40, 70)]
    assert naked_intervals(entries, "B", "A") == []

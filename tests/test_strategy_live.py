"""The strategy's live leg handling on Freqtrade's real trade database, with the exchange
faked at the edge: concurrent confirmations, a leg sent once, ghost adoption, closing
untracked positions, bounded close retries and the manual-intervention alert.

The chaos suite (``tests/test_chaos.py``) runs the same code in ``freqtrade trade``
against the simulator; these tests pin each decision down without a bot process.
"""

from __future__ import annotations

import importlib.util
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freqtrade.enums import RunMode
from freqtrade.persistence import Trade, init_db

from statarb.legs import CoupleTicket, leg_tag
from tests.offline import REPO

WLD, ARB = "WLD/USDT:USDT", "ARB/USDT:USDT"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(minutes=5)


def _strategy_class() -> type:
    spec = importlib.util.spec_from_file_location(
        "CointPairsStrategy", REPO / "strategies" / "CointPairsStrategy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CointPairsStrategy


class FakeExchange:
    """The exchange calls the strategy makes through statarb.ft, recorded."""

    id = "binance"
    trading_mode = "futures"
    precisionMode = 4
    precision_mode_price = 4

    def __init__(self) -> None:
        self.positions: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.cancelled: list[tuple[str, str]] = []
        self.fail_create: Exception | None = None

    def cancel_order(self, order_id: str, pair: str) -> None:
        self.cancelled.append((pair, order_id))

    def fetch_positions(self) -> list[dict[str, Any]]:
        return self.positions

    def fetch_orders(self, pair: str, since: datetime) -> list[dict[str, Any]]:
        return [o for o in self.orders if o["symbol"] == pair]

    def _order_contracts_to_amount(self, order: dict[str, Any]) -> dict[str, Any]:
        return order

    def _order_needs_price(self, side: str, ordertype: str) -> bool:
        return False  # Binance market orders

    def create_order(self, **kw: Any) -> dict[str, Any]:
        if self.fail_create is not None:
            raise self.fail_create
        self.created.append(kw)
        return {"id": f"close-{len(self.created)}"}

    def get_fee(self, **kw: Any) -> float:
        return 0.0005

    def get_pair_base_currency(self, pair: str) -> str:
        return pair.split("/")[0]

    def get_precision_amount(self, pair: str) -> float:
        return 0.1

    def get_precision_price(self, pair: str) -> float:
        return 0.0001

    def get_contract_size(self, pair: str) -> float:
        return 1.0


class FakeDp:
    runmode = RunMode.LIVE

    def __init__(self, exchange: FakeExchange) -> None:
        self._exchange = exchange
        self.sent: list[str] = []

    def current_whitelist(self) -> list[str]:
        return [WLD, ARB]

    def market(self, pair: str) -> dict[str, Any]:
        return {"precision": {"amount": 0.1}}

    def send_msg(self, text: str, always_send: bool = False) -> None:
        self.sent.append(text)


@pytest.fixture
def strategy() -> Any:
    init_db("sqlite://")
    config = {"max_open_trades": 10, "stake_currency": "USDT", "timeframe": "1h",
              "dry_run": False, "runmode": RunMode.LIVE,
              "statarb": {"live": {"max_close_attempts": 2, "error_retry_secs": 30}}}
    strat = _strategy_class()(config)
    strat.dp = FakeDp(FakeExchange())
    yield strat
    Trade.session.remove()


@pytest.fixture
def clock(strategy: Any, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The strategy's monotonic clock, set by the test: ``clock[0] = seconds``."""
    now = [0.0]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return now[0]

    monkeypatch.setitem(type(strategy)._close_lone.__globals__, "time", Clock)
    return now


def _ticket(accepted: list[str]) -> CoupleTicket:
    signal = NOW.replace(minute=0) - timedelta(hours=1)
    return CoupleTicket(couple="WLD~ARB", y=WLD, x=ARB, side=1, alpha=0.1, beta=1.195,
                        half_life=16.0, z_entry=-2.74, signal_time=signal,
                        entry_time=NOW.replace(minute=0), amount_y=1210.0, amount_x=3842.7,
                        price_y=0.715, price_x=0.269, accepted=list(accepted))


def _open_trade(pair: str, tag: str, amount: float, short: bool) -> Trade:
    trade = Trade(pair=pair, base_currency=pair.split("/")[0], stake_currency="USDT",
                  stake_amount=amount * 0.5, amount=amount, open_rate=0.5, is_open=True,
                  open_date=NOW, exchange="binance", enter_tag=tag, is_short=short,
                  leverage=1.0, fee_open=0.0005, fee_close=0.0005, trading_mode="futures",
                  amount_precision=0.1, price_precision=0.0001, precision_mode=4)
    Trade.session.add(trade)
    Trade.commit()
    return trade


def _confirm(strat: Any, pair: str, role: str, amount: float) -> bool:
    return strat.confirm_trade_entry(
        pair=pair, order_type="market", amount=amount, rate=0.5, time_in_force="GTC",
        current_time=NOW, entry_tag=leg_tag("WLD~ARB", role), side="short")


def test_simultaneous_second_leg_confirmations_accept_it_once(strategy: Any) -> None:
    ticket = _ticket(["y"])
    strategy._tickets[strategy._ticket_key("WLD~ARB", NOW)] = ticket
    _open_trade(WLD, "WLD~ARB:y", 1210.0, short=False)
    start = threading.Barrier(8)
    results: list[bool] = []

    def confirm() -> None:
        start.wait()
        results.append(_confirm(strategy, ARB, "x", 3842.7))

    threads = [threading.Thread(target=confirm) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert ticket.accepted == ["y", "x"]
    assert ticket.couple_id in strategy._live.pending  # watched until its trade exists
    # The bot's next loop (or a force entry) asking again: still refused, never re-sent.
    assert not _confirm(strategy, ARB, "x", 3842.7)


def test_a_filled_ghost_second_leg_is_adopted_as_its_trade(strategy: Any) -> None:
    ticket = _ticket(["y", "x"])
    strategy._live.pending[ticket.couple_id] = (ticket, "x")
    strategy._tickets[strategy._ticket_key("WLD~ARB", NOW)] = ticket
    _open_trade(WLD, "WLD~ARB:y", 1210.0, short=False)
    strategy._entered[ticket.couple_id] = {"y"}  # the first leg's fill was recorded
    exchange = strategy.dp._exchange
    exchange.orders = [{"id": "77", "symbol": ARB, "side": "sell", "status": "closed",
                        "filled": 3842.7, "amount": 3842.7, "average": 0.269, "price": None,
                        "remaining": 0.0, "type": "market", "timestamp": None,
                        "reduceOnly": False}]
    exchange.positions = [
        {"symbol": WLD, "contracts": 1210.0, "contractSize": 1, "side": "long"},
        {"symbol": ARB, "contracts": 3842.7, "contractSize": 1, "side": "short"},
    ]
    strategy._watch_exchange()
    adopted = [t for t in Trade.get_open_trades() if t.pair == ARB]
    assert len(adopted) == 1
    trade = adopted[0]
    assert (trade.enter_tag, trade.is_short, trade.amount) == ("WLD~ARB:x", True, 3842.7)
    assert trade.open_rate == pytest.approx(0.269)
    assert trade.orders[0].order_id == "77"
    assert trade.get_custom_data("couple_id") == ticket.couple_id
    assert trade.get_custom_data("partner") == WLD
    assert exchange.created == []  # nothing sent: no duplicate, nothing closed
    assert not strategy._live.pending and not strategy._live.untracked
    assert any("adopted as trade" in m for m in strategy.dp.sent)
    assert any(m.startswith("statarb couple opened") for m in strategy.dp.sent)


def test_no_ghost_leaves_the_first_leg_to_the_lone_leg_rule(strategy: Any) -> None:
    ticket = _ticket(["y", "x"])
    strategy._live.pending[ticket.couple_id] = (ticket, "x")
    _open_trade(WLD, "WLD~ARB:y", 1210.0, short=False)
    strategy.dp._exchange.positions = [
        {"symbol": WLD, "contracts": 1210.0, "contractSize": 1, "side": "long"}]
    strategy._watch_exchange()
    assert not strategy._live.pending and strategy.dp._exchange.created == []
    assert any("the exchange has none" in m for m in strategy.dp.sent)


def test_untracked_position_is_closed_reduce_only_after_two_sightings(strategy: Any) -> None:
    exchange = strategy.dp._exchange
    exchange.positions = [
        {"symbol": WLD, "contracts": 1210.0, "contractSize": 1, "side": "long"},
        {"symbol": "BTC/USDT:USDT", "contracts": 0.5, "contractSize": 1, "side": "long"},
    ]
    strategy._watch_exchange()
    assert exchange.created == [] and strategy._live.untracked == {WLD}
    strategy._watch_exchange()
    assert len(exchange.created) == 1  # BTC is not a pair this bot trades: left alone
    order = exchange.created[0]
    assert (order["pair"], order["side"], order["amount"], order["reduceOnly"]) == (
        WLD, "sell", 1210.0, True)
    assert any("untracked: WLD/USDT:USDT position +1210" in m for m in strategy.dp.sent)
    foreign = [m for m in strategy.dp.sent if "BTC/USDT:USDT" in m]
    assert len(foreign) == 1 and "left alone" in foreign[0]  # reported once


def test_failing_closes_back_off_then_stop_entries_and_call_a_person(
    strategy: Any, clock: list[float]
) -> None:
    clock[0] = 1000.0
    trade = _open_trade(WLD, "WLD~ARB:y", 1210.0, short=False)
    calls = []
    for t in (0, 2, 3, 4, 6, 8, 13.9, 14):  # the leg never closes: every exit fails
        clock[0] = 1000.0 + t
        calls.append(strategy._close_lone(trade, "WLD~ARB@t", ARB))
    exit_ = "partner_exit"
    # t=0 first try. t=2 it failed: retry 2 s after it (now). t=3 failed again: the limit
    # (2) is reached, alert, next try 4 s after it (t=6). t=8 failed: 8 s after it (t=14).
    assert calls == [exit_, exit_, None, None, exit_, None, None, exit_]
    alerts = [m for m in strategy.dp.sent if "MANUAL INTERVENTION REQUIRED" in m]
    assert alerts == ["statarb MANUAL INTERVENTION REQUIRED: cannot close long 1210 "
                      "WLD/USDT:USDT after 2 attempts (its exit did not fill); new entries "
                      "are stopped, closing retries go on; close it on the exchange if it "
                      "persists"]
    assert strategy._live.halted
    # The leg finally closes: entries resume, once.
    trade.is_open = False
    strategy._leg_closed(trade, None)
    assert strategy._live.halted is None
    assert strategy.dp.sent[-1] == "statarb entries resumed: WLD/USDT:USDT is closed"


def test_resting_order_types_are_refused_by_name() -> None:
    config = {"max_open_trades": 10, "stake_currency": "USDT", "timeframe": "1h",
              "order_types": {"entry": "limit", "exit": "market"}}
    with pytest.raises(ValueError, match=r"\{'entry': 'limit'\} are not supported"):
        _strategy_class()(config)


def test_an_open_ghost_order_holds_the_first_leg_for_three_loops(strategy: Any) -> None:
    ticket = _ticket(["y", "x"])
    strategy._live.pending[ticket.couple_id] = (ticket, "x")
    first = _open_trade(WLD, "WLD~ARB:y", 1210.0, short=False)
    exchange = strategy.dp._exchange
    exchange.orders = [{"id": "78", "symbol": ARB, "side": "sell", "status": "open",
                        "filled": 0.0, "amount": 3842.7, "reduceOnly": False}]
    exchange.positions = [{"symbol": WLD, "contracts": 1210.0, "contractSize": 1,
                           "side": "long"}]
    for _ in range(3):  # the partner may still fill: the first leg is not alone yet
        strategy._watch_exchange()
        assert strategy._close_lone(first, ticket.couple_id, ARB) is None
    strategy._watch_exchange()  # still open after three loops: give up on it
    assert not strategy._live.pending and not strategy._live.ghost_waits
    assert exchange.cancelled == [(ARB, "78")]  # cancelled, never duplicated
    assert any("stayed open on the exchange for three loops" in m for m in strategy.dp.sent)
    assert strategy._close_lone(first, ticket.couple_id, ARB) == "partner_exit"
    assert exchange.created == []


def test_an_untracked_position_that_will_not_close_calls_a_person_then_resumes(
    strategy: Any, clock: list[float]
) -> None:
    clock[0] = 500.0
    exchange = strategy.dp._exchange
    exchange.fail_create = RuntimeError("-1001 Internal error")
    exchange.positions = [{"symbol": WLD, "contracts": 5.0, "contractSize": 1,
                           "side": "short"}]
    for t in (0, 2, 4, 5, 8, 9):  # seen at 0; tries at 2 (fails), 4 (fails: the limit)
        clock[0] = 500.0 + t
        strategy._watch_exchange()
    alerts = [m for m in strategy.dp.sent if "MANUAL INTERVENTION REQUIRED" in m]
    assert len(alerts) == 1 and "cannot close short 5 WLD/USDT:USDT after 2 attempts" in alerts[0]
    assert "-1001 Internal error" in alerts[0]
    assert strategy._live.halted and strategy._live.untracked == {WLD}
    exchange.fail_create = None
    clock[0] = 520.0  # past the backoff: this attempt goes through
    strategy._watch_exchange()
    assert [o["side"] for o in exchange.created] == ["buy"]
    exchange.positions = []  # the exchange is flat now
    strategy._watch_exchange()
    assert strategy._live.halted is None and strategy._live.untracked == set()
    assert strategy.dp.sent[-1] == "statarb entries resumed: WLD/USDT:USDT is closed"

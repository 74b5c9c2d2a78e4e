"""The strategy's live leg supervision on Freqtrade's real trade database, with the exchange
faked at the edge: the ledger written before the first order, concurrent confirmations, a
leg sent once, adoption of unrecorded fills (a ghost, a crash), top-ups and trims through
``adjust_trade_position``, closing lone legs and untracked positions, bounded retries and
the manual-intervention alert.

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
from freqtrade.persistence import Order, Trade, init_db

from statarb.core.ledger import CoupleLedger, LegTarget
from statarb.core.legs import CoupleTicket, leg_tag
from statarb.ft import ledger_store
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

    def get_analyzed_dataframe(self, pair: str, timeframe: str) -> tuple[Any, Any]:
        import pandas as pd

        return pd.DataFrame(), None

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
    """The supervisor's monotonic clock, set by the test: ``clock[0] = seconds``."""
    now = [0.0]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return now[0]

        @staticmethod
        def time() -> float:
            return 1.7e9 + now[0]

    monkeypatch.setitem(type(strategy.supervisor).check.__globals__, "time", Clock)
    return now


def _ticket(accepted: list[str]) -> CoupleTicket:
    signal = NOW.replace(minute=0) - timedelta(hours=1)
    return CoupleTicket(couple="WLD~ARB", y=WLD, x=ARB, side=1, alpha=0.1, beta=1.195,
                        half_life=16.0, z_entry=-2.74, signal_time=signal,
                        entry_time=NOW.replace(minute=0), amount_y=1210.0, amount_x=3842.7,
                        price_y=0.715, price_x=0.269, accepted=list(accepted))


def _ledger(y: float = 1210.0, x: float = -3842.7) -> CoupleLedger:
    """WLD~ARB long the spread: long WLD, short ARB (what _ticket describes)."""
    ledger = CoupleLedger(_ticket([]).couple_id, LegTarget(WLD, y, 0.1), LegTarget(ARB, x, 0.1),
                          stage="open", since=NOW.timestamp() - 60)
    ledger_store.save(ledger)
    return ledger


def _open_trade(pair: str, tag: str, amount: float, short: bool, filled: float | None = None,
                ticket: CoupleTicket | None = None, role: str | None = None) -> Trade:
    """An open trade whose entry order filled ``filled`` (default: ``amount``)."""
    trade = Trade(pair=pair, base_currency=pair.split("/")[0], stake_currency="USDT",
                  stake_amount=amount * 0.5, amount=amount, open_rate=0.5, is_open=True,
                  open_date=NOW, exchange="binance", enter_tag=tag, is_short=short,
                  leverage=1.0, fee_open=0.0005, fee_close=0.0005, trading_mode="futures",
                  amount_precision=0.1, price_precision=0.0001, precision_mode=4)
    side = "sell" if short else "buy"
    trade.orders.append(Order(
        ft_order_side=side, ft_pair=pair, ft_is_open=False, ft_amount=amount, ft_price=0.5,
        order_id=f"entry-{pair}", status="closed", symbol=pair, order_type="market",
        side=side, price=0.5, average=0.5, amount=amount,
        filled=amount if filled is None else filled, remaining=0.0))
    Trade.session.add(trade)
    Trade.commit()
    if ticket is not None and role is not None:
        for key, value in ticket.custom_data(role).items():
            trade.set_custom_data(key, value)
    return trade


def _positions(exchange: FakeExchange, **amounts: float) -> None:
    exchange.positions = [
        {"symbol": f"{coin}/USDT:USDT", "contracts": abs(a), "contractSize": 1,
         "side": "long" if a > 0 else "short"}
        for coin, a in amounts.items() if a
    ]


def _confirm(strat: Any, pair: str, role: str, amount: float) -> bool:
    return strat.confirm_trade_entry(
        pair=pair, order_type="market", amount=amount, rate=0.5, time_in_force="GTC",
        current_time=NOW, entry_tag=leg_tag("WLD~ARB", role), side="short")


def _adjust(strat: Any, trade: Trade, rate: float = 0.5) -> Any:
    return strat.adjust_trade_position(
        trade=trade, current_time=NOW, current_rate=rate, current_profit=0.0, min_stake=None,
        max_stake=1e9, current_entry_rate=rate, current_exit_rate=rate,
        current_entry_profit=0.0, current_exit_profit=0.0)


def _exit(strat: Any, trade: Trade) -> str | None:
    return strat.supervisor.forced_exit(trade)


def test_simultaneous_second_leg_confirmations_accept_it_once(strategy: Any) -> None:
    ticket = _ticket(["y"])
    strategy.entries.tickets[strategy.entries.ticket_key("WLD~ARB", NOW)] = ticket
    _open_trade(WLD, "WLD~ARB", 1210.0, short=False)
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
    # The bot's next loop (or a force entry) asking again: still refused, never re-sent.
    assert not _confirm(strategy, ARB, "x", 3842.7)


def test_the_ledger_is_written_before_the_first_order(strategy: Any, monkeypatch) -> None:
    ticket = _ticket([])
    strategy.entries.tickets[strategy.entries.ticket_key("WLD~ARB", NOW)] = ticket
    monkeypatch.setattr(strategy.entries, "has_signal", lambda *a: True)
    monkeypatch.setattr(strategy, "is_pair_locked", lambda *a, **k: False)
    assert _confirm(strategy, WLD, "y", 1210.0)  # Freqtrade sends the order after this
    (ledger,) = ledger_store.load_all().values()
    assert ledger.couple_id == ticket.couple_id and ledger.stage == "entering"
    assert (ledger.y.pair, ledger.y.amount) == (WLD, 1210.0)
    assert (ledger.x.pair, ledger.x.amount) == (ARB, -3842.7)  # short, hedged by beta


def test_a_filled_ghost_second_leg_is_adopted_as_its_trade(strategy: Any) -> None:
    ticket = _ticket(["y", "x"])
    strategy.entries.tickets[strategy.entries.ticket_key("WLD~ARB", NOW)] = ticket
    _ledger()
    _open_trade(WLD, "WLD~ARB", 1210.0, short=False, ticket=ticket, role="y")
    strategy.entries._entered[ticket.couple_id] = {"y"}  # the first leg's fill was recorded
    exchange = strategy.dp._exchange
    exchange.orders = [{"id": "77", "symbol": ARB, "side": "sell", "status": "closed",
                        "filled": 3842.7, "amount": 3842.7, "average": 0.269, "price": None,
                        "remaining": 0.0, "type": "market", "timestamp": None,
                        "reduceOnly": False}]
    _positions(exchange, WLD=1210.0, ARB=-3842.7)
    strategy.supervisor.check()
    adopted = [t for t in Trade.get_open_trades() if t.pair == ARB]
    assert len(adopted) == 1
    trade = adopted[0]
    assert (trade.enter_tag, trade.is_short, trade.amount) == ("WLD~ARB", True, 3842.7)
    assert trade.open_rate == pytest.approx(0.269)
    assert trade.orders[0].order_id == "77"
    assert trade.get_custom_data("couple_id") == ticket.couple_id
    assert trade.get_custom_data("partner") == WLD
    assert exchange.created == []  # nothing sent: no duplicate, nothing closed
    assert any("adopted as trade" in m for m in strategy.dp.sent)
    assert any(m.startswith("statarb couple opened") for m in strategy.dp.sent)
    strategy.supervisor.check()  # the couple is whole now: nothing more to do
    assert exchange.created == [] and not strategy.supervisor.state.to_close


def test_after_a_restart_an_unrecorded_second_fill_is_adopted_from_the_ledger(
    strategy: Any,
) -> None:
    """Killed after the second order reached the exchange, before the bot processed it:
    no ticket survives; the ledger and the first leg's record rebuild the second leg."""
    ticket = _ticket(["y", "x"])
    _ledger()
    _open_trade(WLD, "WLD~ARB", 1210.0, short=False, ticket=ticket, role="y")
    exchange = strategy.dp._exchange
    exchange.orders = [{"id": "91", "symbol": ARB, "side": "sell", "status": "closed",
                        "filled": 3842.7, "amount": 3842.7, "average": 0.27, "price": None,
                        "remaining": 0.0, "type": "market", "timestamp": None,
                        "reduceOnly": False}]
    _positions(exchange, WLD=1210.0, ARB=-3842.7)
    strategy.bot_start()
    (trade,) = [t for t in Trade.get_open_trades() if t.pair == ARB]
    assert trade.get_custom_data("role") == "x"
    assert trade.get_custom_data("partner") == WLD
    assert trade.get_custom_data("beta") == pytest.approx(1.195)
    assert trade.get_custom_data("target_amount") == pytest.approx(3842.7)
    assert exchange.created == []  # the healthy first leg is not closed


def test_a_lone_first_leg_is_closed_when_its_partner_has_no_order(strategy: Any) -> None:
    _ledger()
    first = _open_trade(WLD, "WLD~ARB", 1210.0, short=False)
    _positions(strategy.dp._exchange, WLD=1210.0)
    strategy.supervisor.check()
    assert _exit(strategy, first) == "partner_exit"
    assert strategy.dp._exchange.created == []  # closed by Freqtrade's own exit
    assert any("ARB/USDT:USDT has no position; closing it at market" in m
               for m in strategy.dp.sent)


def test_a_partly_filled_second_leg_is_topped_up_once(strategy: Any) -> None:
    _ledger()
    _open_trade(WLD, "WLD~ARB", 1210.0, short=False)
    x = _open_trade(ARB, "WLD~ARB", 2305.6, short=True)  # 60%, the rest expired
    _positions(strategy.dp._exchange, WLD=1210.0, ARB=-2305.6)
    strategy.supervisor.check()
    stake, tag = _adjust(strategy, x, rate=0.27)
    assert tag == "statarb_top_up"
    assert stake / 0.27 == pytest.approx(3842.7 - 2305.6, rel=1e-5)
    assert _adjust(strategy, x) is None  # one order, not one per call
    assert any("topping it up by 1537.1" in m for m in strategy.dp.sent)


def test_a_top_up_that_keeps_failing_becomes_a_trim_of_the_partner(
    strategy: Any, clock: list[float],
) -> None:
    _ledger()
    y = _open_trade(WLD, "WLD~ARB", 1210.0, short=False)
    x = _open_trade(ARB, "WLD~ARB", 2305.6, short=True)
    _positions(strategy.dp._exchange, WLD=1210.0, ARB=-2305.6)
    for t in (0, 1, 3, 6, 10):  # every top-up is refused (never fills)
        clock[0] = float(t)
        strategy.supervisor.check()
        _adjust(strategy, x)
    stake, tag = _adjust(strategy, y) or (None, None)
    assert tag == "statarb_trim"
    # Freqtrade exits |stake| * amount / stake_amount: 1210 -> 725.9, the 60.0% ARB holds
    # (2305.6 / 3842.7) rounded down to WLD's step.
    assert abs(stake) * y.amount / y.stake_amount == pytest.approx(484.1, rel=1e-6)
    (ledger,) = ledger_store.load_all().values()
    assert (ledger.y.amount, ledger.x.amount) == (725.9, -2305.6)


def test_a_leg_reduced_on_the_exchange_trims_its_partner(strategy: Any) -> None:
    """A partial liquidation of ARB (Freqtrade's trade has not seen it yet)."""
    _ledger()
    y = _open_trade(WLD, "WLD~ARB", 1210.0, short=False)
    _open_trade(ARB, "WLD~ARB", 3842.7, short=True)
    _positions(strategy.dp._exchange, WLD=1210.0, ARB=-2690.0)  # 70% left
    strategy.supervisor.check()
    stake, tag = _adjust(strategy, y)
    assert tag == "statarb_trim"
    assert abs(stake) * y.amount / y.stake_amount == pytest.approx(1210.0 - 847.0, rel=1e-6)
    (ledger,) = ledger_store.load_all().values()
    assert (ledger.y.amount, ledger.x.amount) == (847.0, -2690.0)
    assert any("WLD/USDT:USDT must follow: ARB/USDT:USDT holds 70% of its target after a "
               "reduction; trimming it by 363" in m for m in strategy.dp.sent)


def test_untracked_position_is_closed_reduce_only_after_two_sightings(strategy: Any) -> None:
    exchange = strategy.dp._exchange
    exchange.positions = [
        {"symbol": WLD, "contracts": 1210.0, "contractSize": 1, "side": "long"},
        {"symbol": "BTC/USDT:USDT", "contracts": 0.5, "contractSize": 1, "side": "long"},
    ]
    strategy.supervisor.check()
    assert exchange.created == [] and strategy.supervisor.state.untracked == {WLD}
    strategy.supervisor.check()
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
    _ledger()
    trade = _open_trade(WLD, "WLD~ARB", 1210.0, short=False)
    _positions(strategy.dp._exchange, WLD=1210.0)
    exits = []
    for t in (0, 2, 3, 4, 6, 8, 13.9, 14):  # the leg never closes: every exit fails
        clock[0] = 1000.0 + t
        strategy.supervisor.check()
        exits.append(_exit(strategy, trade))
    # t=0 first try. t=2: it failed (1); retry 1 s after it: now. t=3: failed (2), the
    # limit: alert; retry 2 s after it: t=4. t=6: failed (3); 4 s after it: t=8.
    # t=13.9: failed (4); 8 s after it: t=16.
    assert exits == ["partner_exit", "partner_exit", None, "partner_exit", None,
                     "partner_exit", None, None]
    alerts = [m for m in strategy.dp.sent if "MANUAL INTERVENTION REQUIRED" in m]
    assert alerts == ["statarb MANUAL INTERVENTION REQUIRED: cannot close long 1210 "
                      "WLD/USDT:USDT after 2 attempts (its exit did not fill); new entries "
                      "are stopped, closing retries go on; close it on the exchange if it "
                      "persists"]
    assert strategy.supervisor.state.halted
    assert not _confirm(strategy, WLD, "y", 1210.0)  # no new couple meanwhile
    # The leg finally closes: entries resume, once.
    trade.is_open = False
    Trade.commit()
    _positions(strategy.dp._exchange)
    strategy.supervisor.check()
    assert strategy.supervisor.state.halted is None
    assert strategy.dp.sent[-1] == "statarb entries resumed: WLD/USDT:USDT is closed"
    assert ledger_store.load_all() == {}  # flat: the couple's entry is gone


def test_resting_order_types_are_refused_by_name() -> None:
    config = {"max_open_trades": 10, "stake_currency": "USDT", "timeframe": "1h",
              "order_types": {"entry": "limit", "exit": "market"}}
    with pytest.raises(ValueError, match=r"\{'entry': 'limit'\} are not supported"):
        _strategy_class()(config)


def test_a_shared_reference_leg_is_refused_by_name() -> None:
    config = {"max_open_trades": 10, "stake_currency": "USDT", "timeframe": "1h",
              "statarb": {"selection": {"reference": "BTC", "share_reference": True}}}
    with pytest.raises(ValueError, match="share_reference=true is a research estimate"):
        _strategy_class()(config)


def test_an_open_ghost_order_is_cancelled_and_the_couple_repaired_at_once(
    strategy: Any,
) -> None:
    """The second order rests on the exchange and no trade records it (its answer was
    lost, or the bot died after sending it): nobody would manage it, so it is cancelled
    and the lone first leg closed in the same check; never a second order."""
    _ledger()
    first = _open_trade(WLD, "WLD~ARB", 1210.0, short=False)
    exchange = strategy.dp._exchange
    exchange.orders = [{"id": "78", "symbol": ARB, "side": "sell", "status": "open",
                        "filled": 0.0, "amount": 3842.7, "reduceOnly": False}]
    _positions(exchange, WLD=1210.0)

    def cancel(order_id: str, pair: str) -> None:
        exchange.cancelled.append((pair, order_id))
        exchange.orders[0]["status"] = "canceled"

    exchange.cancel_order = cancel
    strategy.supervisor.check()
    assert exchange.cancelled == [(ARB, "78")]  # cancelled, never duplicated
    assert any("is open on the exchange and no trade records it" in m
               for m in strategy.dp.sent)
    assert _exit(strategy, first) == "partner_exit"
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
        strategy.supervisor.check()
    alerts = [m for m in strategy.dp.sent if "MANUAL INTERVENTION REQUIRED" in m]
    assert len(alerts) == 1 and "cannot close short 5 WLD/USDT:USDT after 2 attempts" in alerts[0]
    assert "-1001 Internal error" in alerts[0]
    assert strategy.supervisor.state.halted and strategy.supervisor.state.untracked == {WLD}
    exchange.fail_create = None
    clock[0] = 520.0  # past the backoff: this attempt goes through
    strategy.supervisor.check()
    assert [o["side"] for o in exchange.created] == ["buy"]
    exchange.positions = []  # the exchange is flat now
    clock[0] = 522.0
    strategy.supervisor.check()
    assert strategy.supervisor.state.halted is None and strategy.supervisor.state.untracked == set()
    assert strategy.dp.sent[-1] == "statarb entries resumed: WLD/USDT:USDT is closed"


# ------------------------------------------------------------------ leaving means flat
def _confirm_exit(strat: Any, trade: Trade) -> bool:
    return strat.confirm_trade_exit(
        pair=trade.pair, trade=trade, order_type="market", amount=trade.amount, rate=0.5,
        time_in_force="GTC", exit_reason="force_exit", current_time=NOW)


def _exit_order(trade: Trade, amount: float, filled: float, status: str = "closed",
                age_s: float = 5.0, order_type: str = "market") -> Order:
    side = "buy" if trade.is_short else "sell"
    order = Order(
        ft_order_side=side, ft_pair=trade.pair, ft_is_open=status == "open",
        ft_amount=amount, ft_price=0.5, order_id=f"exit-{trade.pair}", status=status,
        symbol=trade.pair, order_type=order_type, side=side, price=0.5, average=0.5,
        amount=amount, filled=filled, remaining=amount - filled,
        order_date=datetime.now(UTC) - timedelta(seconds=age_s))
    trade.orders.append(order)
    Trade.commit()
    return order


def test_a_partly_filled_force_exit_leaves_flat_not_smaller(strategy: Any) -> None:
    """/forceexit of WLD filled 40 %, the rest cancelled: the couple's exit had begun, so
    both legs close (the open stage would trim ARB to 60 % and stay open)."""
    _ledger()
    ticket = _ticket(["y", "x"])
    y = _open_trade(WLD, "WLD~ARB", 1210.0, short=False, ticket=ticket, role="y")
    x = _open_trade(ARB, "WLD~ARB", 3842.7, short=True, ticket=ticket, role="x")
    strategy.supervisor.check()
    assert _confirm_exit(strategy, y) is True  # never refused
    (ledger,) = ledger_store.load_all().values()
    assert ledger.stage == "exiting"  # written before the order goes
    _exit_order(y, 1210.0, 484.0, status="canceled")
    y.amount = 726.0  # what Freqtrade records once it has processed the cancel
    Trade.commit()
    _positions(strategy.dp._exchange, WLD=726.0, ARB=-3842.7)
    strategy.supervisor.check()
    assert _exit(strategy, y) == "reconcile_close"
    assert _exit(strategy, x) == "reconcile_close"
    assert _adjust(strategy, x) is None  # no trim: leaving means flat
    assert any("the couple is leaving; closing it at market" in m for m in strategy.dp.sent)


def test_a_leaving_couples_stuck_market_exit_is_cancelled(strategy: Any) -> None:
    _ledger()
    ticket = _ticket(["y", "x"])
    y = _open_trade(WLD, "WLD~ARB", 1210.0, short=False, ticket=ticket, role="y")
    _open_trade(ARB, "WLD~ARB", 3842.7, short=True, ticket=ticket, role="x")
    stuck = _exit_order(y, 1210.0, 484.0, status="open")
    _positions(strategy.dp._exchange, WLD=726.0, ARB=-3842.7)
    strategy.supervisor.check()

    def timed_out(order: Order) -> bool:
        return strategy.check_exit_timeout(pair=WLD, trade=y, order=order, current_time=NOW)

    assert not timed_out(stuck)  # an open stage waits for Freqtrade's own timeout
    _confirm_exit(strategy, y)
    strategy.supervisor.check()
    assert timed_out(stuck)
    # Filled in part, it is stuck at once; unfilled, only a second after its answer.
    stuck.order_date = datetime.now(UTC)
    assert timed_out(stuck)
    stuck.filled = 0.0
    assert not timed_out(stuck)
    stuck.order_date = datetime.now(UTC) - timedelta(seconds=5)
    assert timed_out(stuck)
    # A limit exit is Freqtrade's unfilledtimeout's business.
    stuck.order_type = "limit"
    assert not timed_out(stuck)


def test_a_liquidation_is_recorded_on_the_trade_on_the_second_sighting(
        strategy: Any) -> None:
    """ARB partly liquidated: its trade comes down to the position with the exchange's own
    autoclose order (realised P&L included), and WLD is trimmed to the ratio."""
    _ledger()
    ticket = _ticket(["y", "x"])
    _open_trade(WLD, "WLD~ARB", 1210.0, short=False, ticket=ticket, role="y")
    x = _open_trade(ARB, "WLD~ARB", 3842.7, short=True, ticket=ticket, role="x")
    exchange = strategy.dp._exchange
    exchange.orders = [{"id": "autoclose-7", "symbol": ARB, "side": "buy", "type": "market",
                        "status": "closed", "amount": 1152.8, "filled": 1152.8,
                        "remaining": 0.0, "price": 0.6, "average": 0.6,
                        "timestamp": int(NOW.timestamp() * 1000) + 1000}]
    _positions(exchange, WLD=1210.0, ARB=-2689.9)
    strategy.supervisor.check()
    assert x.amount == pytest.approx(3842.7)  # seen once: maybe an exit being committed
    strategy.supervisor.adjustment(x, 0.5)  # Freqtrade takes the decided trim of WLD meanwhile
    strategy.supervisor.state.adjust.clear()
    strategy.supervisor.check()
    assert x.amount == pytest.approx(2689.9)
    assert [o.order_id for o in x.orders] == ["entry-ARB/USDT:USDT", "autoclose-7"]
    assert x.is_open and x.realized_profit < 0  # a short bought back above its entry


def test_a_reduction_no_order_explains_is_booked_at_the_last_price(strategy: Any) -> None:
    _ledger()
    ticket = _ticket(["y", "x"])
    y = _open_trade(WLD, "WLD~ARB", 1210.0, short=False, ticket=ticket, role="y")
    _open_trade(ARB, "WLD~ARB", 3842.7, short=True, ticket=ticket, role="x")
    _positions(strategy.dp._exchange, WLD=968.0, ARB=-3842.7)
    for _ in range(2):
        strategy.supervisor.check()
    assert y.amount == pytest.approx(968.0)
    assert y.orders[-1].ft_order_tag == "statarb_record"


def test_a_trade_left_open_on_a_flat_position_is_closed_in_the_records(
        strategy: Any) -> None:
    """Both exits filled while the bot was down; one answer was lost: the restart finds
    the order on the exchange and closes the trade with it, then forgets the couple."""
    _ledger().with_stage("exiting")
    ledger_store.save(ledger_store.load_all()[_ticket([]).couple_id].with_stage("exiting"))
    ticket = _ticket(["y", "x"])
    y = _open_trade(WLD, "WLD~ARB", 1210.0, short=False, ticket=ticket, role="y")
    strategy.dp._exchange.orders = [{
        "id": "lost-exit", "symbol": WLD, "side": "sell", "type": "market",
        "status": "closed", "amount": 1210.0, "filled": 1210.0, "remaining": 0.0,
        "price": 0.52, "average": 0.52, "timestamp": int(NOW.timestamp() * 1000) + 1000}]
    for _ in range(2):
        strategy.supervisor.check()
    assert not y.is_open and y.close_rate == pytest.approx(0.52)
    assert y.exit_reason == "exit_on_exchange"
    strategy.supervisor.check()
    assert ledger_store.load_all() == {}

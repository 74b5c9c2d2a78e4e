"""Signed (account and trading) Binance USDT-M endpoints over the simulated account.

What ``freqtrade trade`` with ``dry_run: false`` and ccxt's binanceusdm ask for: balances,
positions, leverage and margin settings, orders and fills. Signatures are not checked (any
will do) but the API key header must be there, as Binance answers -2014 without it, so a
client that forgot its credentials fails here as it would live.

Prices come from the same replayed candles as the tickers (:func:`price_now` at the replay
clock), and resting LIMIT orders are matched against them at the start of every private
request, so a bot polling its orders sees them fill as the replayed price moves; funding
is settled there too, on the positions held at each settlement of the symbol's recorded
funding history (:meth:`PrivateApi.settle_funding`). Faults
armed in :attr:`PrivateApi.faults` are applied here, and every order event and position
change is written to :attr:`PrivateApi.journal`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from statarb.sim.api import BinanceError, Query, invalid_symbol, mandatory
from statarb.sim.clock import ReplayClock
from statarb.sim.faults import Fault, FaultBook
from statarb.sim.journal import Journal
from statarb.sim.klines import price_now
from statarb.sim.market_data import MarketData
from statarb.sim.matching import Account, Income, Order, Rejected, Trade, dec
from statarb.sim.private_json import (
    account_json,
    balance_json,
    income_json,
    order_json,
    position_json,
    trade_json,
)

logger = logging.getLogger("statarb.sim")

PrivateHandler = Callable[[Query, int], Any]
"""``(query, replay instant) -> JSON``."""

FALLBACK_BRACKET = {
    "bracket": 1,
    "initialLeverage": 20,
    "notionalCap": 5_000_000,
    "notionalFloor": 0,
    "maintMarginRatio": 0.01,
    "cum": 0.0,
}


class Stall(Exception):
    """Hold the request ``seconds``, then close without an answer (or answer ``respond``)."""

    def __init__(self, seconds: float, respond: int | None = None) -> None:
        super().__init__(f"stall {seconds}s")
        self.seconds = seconds
        self.respond = respond


class Dropped(Exception):
    """Cut the connection at once, with no answer."""


def _rejection(err: Rejected) -> BinanceError:
    return BinanceError(err.status, err.code, err.msg)


def _decimal(q: Query, name: str, required: bool = True) -> Decimal | None:
    raw = q.get(name, "")
    if not raw:
        if required:
            raise mandatory(name)
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
    if not value.is_finite():
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return value


def _int(q: Query, name: str) -> int | None:
    raw = q.get(name, "")
    if not raw:
        return None
    if not raw.lstrip("-").isdigit():
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return int(raw)


def _flag(q: Query, name: str) -> bool:
    return q.get(name, "").lower() == "true"


def _window(
    items: list[Any], q: Query, time_of: Callable[[Any], int], default: int, maximum: int
) -> list[Any]:
    start, end = _int(q, "startTime"), _int(q, "endTime")
    limit = min(_int(q, "limit") or default, maximum)
    chosen = [
        i
        for i in items
        if (start is None or time_of(i) >= start) and (end is None or time_of(i) <= end)
    ]
    return chosen[:limit] if start is not None else chosen[-limit:]


def leverage_brackets(symbols: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Binance's leverage brackets per symbol, from freqtrade's recorded tiers when present.

    Freqtrade ships the tiers Binance published (``binance_leverage_tiers.json``); reading
    the file (not importing freqtrade) keeps the simulator free of that dependency.
    Symbols without a record get one generic 20x bracket.
    """
    recorded: dict[str, list[dict[str, Any]]] = {}
    spec = importlib.util.find_spec("freqtrade")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "exchange" / "binance_leverage_tiers.json"
        if path.is_file():
            for pair, tiers in json.loads(path.read_text()).items():
                symbol = pair.split(":")[0].replace("/", "")
                recorded[symbol] = [
                    {
                        "bracket": int(t["info"]["bracket"]),
                        "initialLeverage": int(t["info"]["initialLeverage"]),
                        "notionalCap": float(t["info"]["notionalCap"]),
                        "notionalFloor": float(t["info"]["notionalFloor"]),
                        "maintMarginRatio": float(t["info"]["maintMarginRatio"]),
                        "cum": float(t["info"]["cum"]),
                    }
                    for t in tiers
                ]
    return {s: recorded.get(s, [dict(FALLBACK_BRACKET)]) for s in symbols}


class PrivateApi:
    """The simulated account behind the signed endpoints, with its faults and journal."""

    def __init__(
        self,
        market_data: MarketData,
        clock: ReplayClock,
        *,
        wallet: float | Decimal = 10_000,
        slippage_bps: float | Decimal = 0,
    ) -> None:
        self.market_data = market_data
        self.clock = clock
        self.wallet = dec(wallet)
        self.slippage_bps = dec(slippage_bps)
        self.lock = threading.RLock()
        self.account = Account(wallet=self.wallet, slippage_bps=self.slippage_bps)
        self.journal = Journal()
        self.faults = FaultBook()
        self.faults.on_immediate = self._act_now
        self._brackets: dict[str, list[dict[str, Any]]] | None = None
        self._funded_to: int | None = None  # replay instant funding is settled up to
        self._exchange_info: tuple[frozenset[str], bytes] | None = None
        self.routes: dict[tuple[str, str], PrivateHandler] = {}
        for version in ("v2", "v3"):
            self.routes[("GET", f"/fapi/{version}/account")] = self.get_account
            self.routes[("GET", f"/fapi/{version}/balance")] = self.get_balance
            self.routes[("GET", f"/fapi/{version}/positionRisk")] = self.get_positions
        self.routes.update(
            {
                ("GET", "/fapi/v1/account"): self.get_account,
                ("GET", "/fapi/v1/balance"): self.get_balance,
                ("POST", "/fapi/v1/leverage"): self.set_leverage,
                ("POST", "/fapi/v1/marginType"): self.set_margin_type,
                ("GET", "/fapi/v1/leverageBracket"): self.get_brackets,
                ("GET", "/fapi/v1/positionSide/dual"): lambda q, now: {"dualSidePosition": False},
                ("POST", "/fapi/v1/positionSide/dual"): self.set_position_mode,
                ("GET", "/fapi/v1/multiAssetsMargin"): lambda q, now: {"multiAssetsMargin": False},
                ("GET", "/fapi/v1/commissionRate"): self.get_commission,
                ("POST", "/fapi/v1/order"): self.new_order,
                ("GET", "/fapi/v1/order"): self.get_order,
                ("DELETE", "/fapi/v1/order"): self.cancel_order,
                ("GET", "/fapi/v1/openOrder"): self.get_order,
                ("GET", "/fapi/v1/openOrders"): self.open_orders,
                ("DELETE", "/fapi/v1/allOpenOrders"): self.cancel_all,
                ("GET", "/fapi/v1/allOrders"): self.all_orders,
                ("GET", "/fapi/v1/userTrades"): self.user_trades,
                ("GET", "/fapi/v1/income"): self.income,
                ("POST", "/fapi/v1/listenKey"): lambda q, now: {"listenKey": "sim-listen-key"},
                ("PUT", "/fapi/v1/listenKey"): lambda q, now: {},
                ("DELETE", "/fapi/v1/listenKey"): lambda q, now: {},
                # ccxt's fetchCurrencies asks the spot wallet once keys are set; with no
                # coins listed it names currencies after the markets, as for public use.
                ("GET", "/sapi/v1/capital/config/getall"): lambda q, now: [],
                ("GET", "/sapi/v1/margin/allPairs"): lambda q, now: [],
            }
        )

    # --- dispatch ---------------------------------------------------------------------

    def handles(self, method: str, path: str) -> bool:
        return (method, path) in self.routes

    def handle(self, method: str, path: str, q: Query, api_key: str | None) -> Any:
        """Serve one signed request; raises BinanceError, :class:`Stall` or :class:`Dropped`."""
        if self.faults.dropping():
            raise Dropped()
        if not api_key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        now = self.clock.now_ms()
        with self.lock:
            self.settle_funding(now)
            self._match_resting(now)
        fault = self.faults.take(method, path, q.get("symbol"))
        if fault is not None and fault.kind in ("reject", "timeout_before"):
            self._record_fault(fault, now, q, "before")
            if fault.kind == "reject":
                raise BinanceError(fault.http_status, fault.code, fault.message)
            raise Stall(fault.delay_s, fault.respond)
        handler = self.routes[(method, path)]
        try:
            with self.lock:
                if handler == self.new_order:
                    result = self.new_order(q, now, fault)
                else:
                    result = handler(q, now)
        except Rejected as err:
            raise _rejection(err) from None
        if fault is not None and fault.kind == "timeout_after":
            self._record_fault(fault, now, q, "after", result)
            raise Stall(fault.delay_s, fault.respond)
        return result

    # --- prices and journal -----------------------------------------------------------

    def price(self, symbol: str, now: int) -> Decimal:
        """Replayed last price of ``symbol`` at ``now`` (what the tickers report)."""
        p = price_now(self.market_data.candles(symbol, "futures"), now)
        if p is None:
            raise invalid_symbol()
        return dec(p)

    def _marks(self, now: int) -> dict[str, Decimal]:
        out = {}
        for s, p in self.account.positions.items():
            if p.amount:
                raw = price_now(self.market_data.candles(s, "futures"), now)
                out[s] = dec(raw) if raw is not None else p.entry_price
        return out

    def _record_order(
        self,
        event: str,
        reason: str,
        order: Order,
        now: int,
        trade: Trade | None = None,
        **detail: Any,
    ) -> None:
        pos = self.account.position(order.symbol)
        self.journal.record(
            event,
            reason,
            replay_ms=now,
            shown_ms=self.clock.shown(now),
            symbol=order.symbol,
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            side=order.side,
            type=order.type,
            qty=trade.qty if trade else order.qty,
            price=trade.price if trade else order.price,
            fee=trade.fee if trade else None,
            realised_pnl=trade.realised_pnl if trade else None,
            status=order.status,
            position_after=pos.amount,
            entry_price_after=pos.entry_price,
            wallet_after=self.account.wallet,
            detail=detail or None,
        )

    def _record_fault(
        self, fault: Fault, now: int, q: Query, when: str, result: Any = None
    ) -> None:
        order_id = result.get("orderId") if isinstance(result, dict) else None
        self.journal.record(
            "fault",
            fault.kind,
            replay_ms=now,
            shown_ms=self.clock.shown(now),
            symbol=q.get("symbol"),
            side=q.get("side"),
            qty=q.get("quantity"),
            order_id=order_id,
            detail={
                "fault_id": fault.id,
                "when": when,
                "code": fault.code if fault.kind == "reject" else None,
            },
        )

    def settle_funding(self, now: int) -> list[tuple[str, int, Decimal]]:
        """Charge or pay funding for every settlement since the last call, as Binance does:
        ``-position x mark price x rate`` at each settlement time of the symbol's funding
        history (longs pay a positive rate). Returns ``(symbol, time, amount)`` settled.

        Called at the start of every private request (and before the exchange acts on its
        own), before that request's orders, so a settlement sees the positions held at its
        time: orders only ever come with a request. Settlements before the first call
        (before the simulator served anyone) are not charged.
        """
        start, self._funded_to = self._funded_to, now
        if start is None or now <= start:
            return []
        settled = []
        for symbol, pos in self.account.positions.items():
            if not pos.amount:
                continue
            funding = self.market_data.funding(symbol)
            if funding is None:
                continue
            lo, hi = np.searchsorted(funding.time_ms, [start, now], side="right")
            for t, rate in zip(funding.time_ms[lo:hi], funding.rate[lo:hi], strict=True):
                mark = price_now(self.market_data.candles(symbol, "mark"), int(t))
                if mark is None:
                    mark = price_now(self.market_data.candles(symbol, "futures"), int(t))
                if mark is None or not np.isfinite(rate):
                    continue
                amount = -pos.amount * dec(mark) * dec(float(rate))
                shown = self.clock.shown(int(t))
                self.account.wallet += amount
                self.account.incomes.append(Income(self.account.next_id(), symbol,
                                                   "FUNDING_FEE", amount, shown))
                self.journal.record(
                    "funding", "settled", replay_ms=int(t), shown_ms=shown, symbol=symbol,
                    qty=pos.amount, price=dec(mark), rate=float(rate), income=amount,
                    wallet_after=self.account.wallet,
                )
                settled.append((symbol, int(t), amount))
        return settled

    def _match_resting(self, now: int) -> None:
        shown = self.clock.shown(now)
        symbols = {
            o.symbol for o in self.account.orders.values() if o.is_open and o.type == "LIMIT"
        }
        for symbol in symbols:
            raw = price_now(self.market_data.candles(symbol, "futures"), now)
            if raw is None:
                continue
            for order, trade in self.account.cross(symbol, dec(raw), shown):
                reason = "fill" if order.status == "FILLED" else "partial"
                self._record_order("fill", reason, order, now, trade, maker=True)

    def _act_now(self, fault: Fault) -> None:
        """Liquidation and delisting: the exchange acts on the account by itself."""
        assert fault.symbol is not None
        now = self.clock.now_ms()
        with self.lock:
            self.settle_funding(now)
        self.journal.record(
            "fault",
            fault.kind,
            replay_ms=now,
            shown_ms=self.clock.shown(now),
            symbol=fault.symbol,
            detail={"fault_id": fault.id},
        )
        if fault.kind == "delist":
            with self.lock:
                for order in self.account.orders.values():
                    if order.symbol == fault.symbol and order.is_open:
                        self.account.cancel(order.order_id, self.clock.shown(now))
                        self._record_order("cancel", "delist", order, now)
            if not fault.settle:
                return
        ratio = dec(fault.ratio) if fault.kind == "liquidate" else Decimal(1)
        prefix = "autoclose" if fault.kind == "liquidate" else "settlement_autoclose"
        reason = "liquidation" if fault.kind == "liquidate" else "delist"
        with self.lock:
            info = self.market_data.symbols.get(fault.symbol)
            if info is None:
                raise ValueError(f"unknown symbol {fault.symbol}")
            done = self.account.close_by_exchange(
                fault.symbol,
                ratio,
                self.price(fault.symbol, now),
                self.clock.shown(now),
                prefix,
                info.step,
            )
            if done is not None:
                self._record_order("fill", reason, done[0], now, done[1])

    def exchange_info_bytes(self) -> bytes:
        """exchangeInfo as recorded, with delisted symbols shown ``SETTLING``."""
        raw = self.market_data.exchange_info_bytes
        delisted = frozenset(self.faults.delisted)
        if not delisted:
            return raw
        if self._exchange_info is None or self._exchange_info[0] != delisted:
            info = json.loads(raw)
            for entry in info.get("symbols", []):
                if entry.get("symbol") in delisted:
                    entry["status"] = "SETTLING"
            self._exchange_info = (delisted, json.dumps(info).encode())
        return self._exchange_info[1]

    def reset(self, wallet: float | Decimal | None = None) -> None:
        """Fresh account, empty journal, no faults (between scenarios)."""
        with self.lock:
            if wallet is not None:
                self.wallet = dec(wallet)
            self.account = Account(wallet=self.wallet, slippage_bps=self.slippage_bps)
            self._funded_to = None
            self.journal.clear()
            self.faults.clear()

    # --- account endpoints ------------------------------------------------------------

    def _shown(self, now: int) -> int:
        return self.clock.shown(now)

    def get_account(self, q: Query, now: int) -> Any:
        return account_json(self.account, self._marks(now), self._shown(now))

    def get_balance(self, q: Query, now: int) -> Any:
        return balance_json(self.account, self._marks(now), self._shown(now))

    def get_positions(self, q: Query, now: int) -> Any:
        symbol = q.get("symbol")
        if symbol and symbol not in self.market_data.symbols:
            raise invalid_symbol()
        marks = self._marks(now)
        out = []
        for s, p in self.account.positions.items():
            if symbol and s != symbol:
                continue
            out.append(position_json(p, marks.get(s, p.entry_price), self._shown(now)))
        if symbol and not out:
            out.append(position_json(self.account.position(symbol), Decimal(0), self._shown(now)))
        return out

    def _symbol(self, q: Query) -> str:
        symbol = q.get("symbol", "")
        if not symbol:
            raise mandatory("symbol")
        if symbol not in self.market_data.symbols:
            raise invalid_symbol()
        return symbol

    def set_leverage(self, q: Query, now: int) -> Any:
        symbol = self._symbol(q)
        leverage = _int(q, "leverage")
        if leverage is None:
            raise mandatory("leverage")
        self.account.set_leverage(symbol, leverage)
        return {"leverage": leverage, "maxNotionalValue": "5000000", "symbol": symbol}

    def set_margin_type(self, q: Query, now: int) -> Any:
        symbol = self._symbol(q)
        kind = q.get("marginType", "").upper()
        if kind not in ("ISOLATED", "CROSSED"):
            raise mandatory("marginType")
        self.account.set_isolated(symbol, kind == "ISOLATED")
        return {"code": 200, "msg": "success"}

    def set_position_mode(self, q: Query, now: int) -> Any:
        if _flag(q, "dualSidePosition"):
            raise BinanceError(400, -4059, "Hedge mode is not simulated.")
        return {"code": 200, "msg": "success"}

    def get_brackets(self, q: Query, now: int) -> Any:
        if self._brackets is None:
            self._brackets = leverage_brackets(list(self.market_data.symbols))
        symbol = q.get("symbol")
        if symbol:
            if symbol not in self._brackets:
                raise invalid_symbol()
            return [{"symbol": symbol, "brackets": self._brackets[symbol]}]
        return [{"symbol": s, "brackets": b} for s, b in self._brackets.items()]

    def get_commission(self, q: Query, now: int) -> Any:
        return {
            "symbol": self._symbol(q),
            "makerCommissionRate": str(self.account.maker_fee),
            "takerCommissionRate": str(self.account.taker_fee),
        }

    # --- orders -----------------------------------------------------------------------

    def new_order(self, q: Query, now: int, fault: Fault | None = None) -> Any:
        symbol = self._symbol(q)
        if symbol in self.faults.delisted:
            raise BinanceError(400, -1121, "Invalid symbol.")
        info = self.market_data.symbols[symbol]
        otype = q.get("type", "").upper()
        if not otype:
            raise mandatory("type")
        qty = _decimal(q, "quantity")
        price = _decimal(q, "price", required=otype == "LIMIT") or Decimal(0)
        assert qty is not None
        partial = fault is not None and fault.kind == "partial"
        order, trades = self.account.new_order(
            symbol=symbol,
            side=q.get("side", "").upper(),
            type=otype,
            qty=qty,
            price=price,
            market_price=self.price(symbol, now),
            now=self._shown(now),
            tick=info.tick,
            step=info.step,
            reduce_only=_flag(q, "reduceOnly"),
            client_order_id=q.get("newClientOrderId", ""),
            time_in_force=q.get("timeInForce", "GTC"),
            fill_ratio=dec(fault.ratio) if partial and fault else Decimal(1),
            cancel_rest=bool(partial and fault and fault.rest == "cancel"),
        )
        detail = {"fault_id": fault.id} if partial and fault else {}
        self._record_order("order", "new", order, now, **detail)
        for trade in trades:
            reason = "fill" if order.status == "FILLED" else "partial"
            self._record_order("fill", reason, order, now, trade, maker=False, **detail)
        if order.status == "CANCELED":
            self._record_order("cancel", "fault" if partial else "cancel", order, now, **detail)
        return order_json(order)

    def _find(self, q: Query) -> Order:
        symbol = self._symbol(q)
        order_id = _int(q, "orderId")
        client_id = q.get("origClientOrderId")
        if order_id is None and not client_id:
            raise mandatory("orderId")
        order = self.account.find(order_id, client_id)
        if order.symbol != symbol:
            raise Rejected(-2013, "Order does not exist.")
        return order

    def get_order(self, q: Query, now: int) -> Any:
        return order_json(self._find(q))

    def cancel_order(self, q: Query, now: int) -> Any:
        try:
            order = self._find(q)
        except Rejected:
            raise Rejected(-2011, "Unknown order sent.") from None
        self.account.cancel(order.order_id, self._shown(now))
        self._record_order("cancel", "cancel", order, now)
        return order_json(order)

    def cancel_all(self, q: Query, now: int) -> Any:
        symbol = self._symbol(q)
        for order in list(self.account.orders.values()):
            if order.symbol == symbol and order.is_open:
                self.account.cancel(order.order_id, self._shown(now))
                self._record_order("cancel", "cancel", order, now)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def open_orders(self, q: Query, now: int) -> Any:
        symbol = q.get("symbol") and self._symbol(q)
        return [
            order_json(o)
            for o in self.account.orders.values()
            if o.is_open and (not symbol or o.symbol == symbol)
        ]

    def all_orders(self, q: Query, now: int) -> Any:
        symbol = self._symbol(q)
        from_id = _int(q, "orderId") or 0
        orders = [
            o for o in self.account.orders.values() if o.symbol == symbol and o.order_id >= from_id
        ]
        return [order_json(o) for o in _window(orders, q, lambda o: o.time, 500, 1000)]

    def user_trades(self, q: Query, now: int) -> Any:
        symbol = self._symbol(q)
        order_id = _int(q, "orderId")
        from_id = _int(q, "fromId") or 0
        trades = [
            t
            for t in self.account.trades
            if t.symbol == symbol
            and t.trade_id >= from_id
            and (order_id is None or t.order_id == order_id)
        ]
        return [trade_json(t) for t in _window(trades, q, lambda t: t.time, 500, 1000)]

    def income(self, q: Query, now: int) -> Any:
        symbol = q.get("symbol")
        kind = q.get("incomeType")
        items = [
            i
            for i in self.account.incomes
            if (not symbol or i.symbol == symbol) and (not kind or i.income_type == kind)
        ]
        return [income_json(i) for i in _window(items, q, lambda i: i.time, 100, 1000)]

"""Matching engine of the simulated futures account: orders, fills, positions, wallet.

Pure bookkeeping with no HTTP and no clock: callers pass the replayed price and the instant,
so every rule can be unit-tested with numbers worked out by hand. Arithmetic is Decimal
because Binance reports quantities, prices, fees and PnL as exact decimal strings and a
float round-off would show up as a position of ``1e-17`` that never closes.

Rules, as Binance applies them to a one-way (``positionSide=BOTH``) USDT-M account:

* MARKET orders fill at once at the replayed price moved against the taker by the
  configured slippage; taker fee 0.05% of the notional.
* LIMIT orders that cross the replayed price on arrival fill at once as taker at that
  price (never worse than the limit); the others rest and fill at their limit price as
  maker (0.02%) once the price reaches them (:meth:`Account.cross`).
* A fill first reduces an opposite position (realising PnL against the entry price) and
  opens the rest at the fill price; adding to a position averages the entry price.
* ``reduceOnly`` orders are clipped to what closes the position and rejected (-2022)
  when they would not reduce it.
* Opening exposure needs isolated margin ``notional / leverage`` plus the fee out of the
  available balance (wallet minus margin held by positions and open orders), else -2019.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)
TAKER_FEE = Decimal("0.0005")
MAKER_FEE = Decimal("0.0002")
DEFAULT_LEVERAGE = 20
MAX_LEVERAGE = 125
BPS = Decimal("0.0001")

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")

INSUFFICIENT_MARGIN = "Account has insufficient balance for requested action."
"""Message sent with -2019. Binance says "Margin is insufficient.", but ccxt maps futures
error codes only for responses from ``fapi.binance.com``; against a local URL it falls back
to its common table, where -2019 is unknown and this message means InsufficientFunds, the
class a client gets live. The code stays -2019 for clients that read it."""


class Rejected(Exception):
    """An order or setting the exchange refuses, with Binance's error code and message."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def dec(value: float | int | str | Decimal) -> Decimal:
    """Exact decimal of a number; floats go through ``repr`` so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def round_to(value: Decimal, step: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``value`` on the grid of ``step`` (unchanged when step is 0)."""
    if step <= 0:
        return value
    return (value / step).quantize(Decimal(1), rounding=rounding) * step


@dataclass
class Order:
    """One order as Binance tracks it; quantities and prices are exact decimals."""

    order_id: int
    client_order_id: str
    symbol: str
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT
    qty: Decimal
    price: Decimal  # limit price, 0 for MARKET
    reduce_only: bool
    time_in_force: str
    time: int
    update_time: int
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def sign(self) -> int:
        return 1 if self.side == "BUY" else -1


@dataclass
class Position:
    """Net position of one symbol in one-way mode: signed amount, entry, realised PnL."""

    symbol: str
    amount: Decimal = ZERO
    entry_price: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    leverage: int = DEFAULT_LEVERAGE
    isolated: bool = True
    update_time: int = 0

    @property
    def margin(self) -> Decimal:
        """Initial margin the position holds: entry notional over leverage."""
        return abs(self.amount) * self.entry_price / self.leverage

    def unrealised(self, price: Decimal) -> Decimal:
        return (price - self.entry_price) * self.amount


@dataclass(frozen=True)
class Trade:
    """One fill, as ``/fapi/v1/userTrades`` reports it."""

    trade_id: int
    order_id: int
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    realised_pnl: Decimal
    maker: bool
    time: int


@dataclass(frozen=True)
class Income:
    """One wallet movement, as ``/fapi/v1/income`` reports it."""

    tran_id: int
    symbol: str
    income_type: str  # REALIZED_PNL | COMMISSION | FUNDING_FEE
    amount: Decimal
    time: int
    trade_id: int | None = None


def apply_fill(pos: Position, signed_qty: Decimal, price: Decimal) -> Decimal:
    """Apply a fill of ``signed_qty`` (buy > 0) at ``price`` to ``pos``; return realised PnL.

    The part of the fill against the position closes it at the entry price, the rest opens
    (or adds to) a position in the fill's direction with a quantity-weighted entry.
    """
    amount = pos.amount
    realised = ZERO
    if amount and (amount > 0) != (signed_qty > 0):
        closed = min(abs(signed_qty), abs(amount))
        direction = 1 if amount > 0 else -1
        realised = (price - pos.entry_price) * closed * direction
        amount += closed * (1 if signed_qty > 0 else -1)
        rest = abs(signed_qty) - closed
        if rest:  # flipped through zero: the remainder opens at the fill price
            amount = rest * (1 if signed_qty > 0 else -1)
            pos.entry_price = price
        elif amount == 0:
            pos.entry_price = ZERO
    else:
        new = amount + signed_qty
        pos.entry_price = (abs(amount) * pos.entry_price + abs(signed_qty) * price) / abs(new)
        amount = new
    pos.amount = amount
    pos.realised_pnl += realised
    return realised


def opening_qty(pos_amount: Decimal, signed_qty: Decimal) -> Decimal:
    """How much of an order of ``signed_qty`` increases the absolute position."""
    if pos_amount == 0 or (pos_amount > 0) == (signed_qty > 0):
        return abs(signed_qty)
    return max(ZERO, abs(signed_qty) - abs(pos_amount))


@dataclass
class Account:
    """A single-asset (USDT) futures account: wallet, positions, orders, fills, income."""

    wallet: Decimal = Decimal(10_000)
    slippage_bps: Decimal = ZERO
    taker_fee: Decimal = TAKER_FEE
    maker_fee: Decimal = MAKER_FEE
    default_leverage: int = DEFAULT_LEVERAGE
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    incomes: list[Income] = field(default_factory=list)
    _next_id: int = 1_000_000

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def next_id(self) -> int:
        """A fresh id for an order, trade or income record."""
        return self._id()

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol, leverage=self.default_leverage)
        return pos

    # --- settings ---------------------------------------------------------------------

    def set_leverage(self, symbol: str, leverage: int) -> Position:
        if not 1 <= leverage <= MAX_LEVERAGE:
            raise Rejected(-4028, f"Leverage {leverage} is not valid")
        pos = self.position(symbol)
        pos.leverage = leverage
        return pos

    def set_isolated(self, symbol: str, isolated: bool) -> Position:
        pos = self.position(symbol)
        if pos.amount and pos.isolated != isolated:
            raise Rejected(-4048, "Margin type cannot be changed if there exists position.")
        pos.isolated = isolated
        return pos

    # --- balances ---------------------------------------------------------------------

    def order_margin(self) -> Decimal:
        """Margin reserved by resting orders that would open exposure."""
        held = ZERO
        for o in self.orders.values():
            if o.is_open and not o.reduce_only and o.price:
                pos = self.position(o.symbol)
                opening = opening_qty(pos.amount, o.remaining * o.sign)
                held += opening * o.price / pos.leverage
        return held

    def position_margin(self) -> Decimal:
        return sum((p.margin for p in self.positions.values()), ZERO)

    def available(self) -> Decimal:
        """Wallet less the margin held by positions and resting orders."""
        return self.wallet - self.position_margin() - self.order_margin()

    # --- orders -----------------------------------------------------------------------

    def market_fill_price(self, side: str, price: Decimal, tick: Decimal) -> Decimal:
        """Replayed price moved against the taker by the slippage, on the tick grid."""
        factor = 1 + self.slippage_bps * BPS * (1 if side == "BUY" else -1)
        return max(round_to(price * factor, tick), tick if tick > 0 else price)

    def new_order(
        self,
        *,
        symbol: str,
        side: str,
        type: str,
        qty: Decimal,
        price: Decimal,
        market_price: Decimal,
        now: int,
        tick: Decimal = ZERO,
        step: Decimal = ZERO,
        reduce_only: bool = False,
        client_order_id: str = "",
        time_in_force: str = "GTC",
        fill_ratio: Decimal = Decimal(1),
        cancel_rest: bool = False,
    ) -> tuple[Order, list[Trade]]:
        """Accept (or reject) an order and fill what fills at once.

        ``fill_ratio`` < 1 fills only that share of an order that would fill at once (the
        partial-fill fault); the rest then rests (``cancel_rest=False``, for a MARKET order
        until it is cancelled) or is cancelled.
        """
        if side not in ("BUY", "SELL"):
            raise Rejected(-1117, "Invalid side.")
        if type not in ("MARKET", "LIMIT"):
            raise Rejected(-1116, "Invalid orderType.")
        if qty <= 0:
            raise Rejected(-4003, "Quantity less than or equal to zero.")
        if step > 0 and round_to(qty, step, ROUND_DOWN) != qty:
            raise Rejected(-1111, "Precision is over the maximum defined for this asset.")
        if type == "LIMIT" and price <= 0:
            raise Rejected(-4001, "Price less than 0.")
        pos = self.position(symbol)
        sign = 1 if side == "BUY" else -1
        if reduce_only:
            closable = abs(pos.amount) if pos.amount and (pos.amount > 0) != (sign > 0) else ZERO
            if closable == 0:
                raise Rejected(-2022, "ReduceOnly Order is rejected.")
            qty = min(qty, closable)
        buy = side == "BUY"
        crosses = type == "MARKET" or (price >= market_price if buy else price <= market_price)
        if type == "MARKET":
            fill_price = self.market_fill_price(side, market_price, tick)
        else:
            fill_price = min(price, market_price) if buy else max(price, market_price)
        if not reduce_only:
            opening = opening_qty(pos.amount, qty * sign)
            ref = fill_price if crosses else price
            fee = qty * ref * self.taker_fee
            if opening * ref / pos.leverage + fee > self.available():
                raise Rejected(-2019, INSUFFICIENT_MARGIN)
        order = Order(
            order_id=self._id(),
            client_order_id=client_order_id or f"sim{self._next_id}",
            symbol=symbol,
            side=side,
            type=type,
            qty=qty,
            price=price if type == "LIMIT" else ZERO,
            reduce_only=reduce_only,
            time_in_force=time_in_force,
            time=now,
            update_time=now,
        )
        self.orders[order.order_id] = order
        trades: list[Trade] = []
        if crosses:
            fill_qty = qty
            if fill_ratio < 1:
                fill_qty = round_to(qty * fill_ratio, step, ROUND_DOWN)
            if fill_qty > 0:
                trades.append(self.fill(order, fill_qty, fill_price, maker=False, now=now))
            if order.remaining and cancel_rest:
                order.status = "CANCELED"
        elif time_in_force in ("IOC", "FOK"):
            order.status = "EXPIRED"
        return order, trades

    def fill(self, order: Order, qty: Decimal, price: Decimal, *, maker: bool, now: int) -> Trade:
        """Fill ``qty`` of ``order`` at ``price``: position, wallet, fees, order status."""
        pos = self.position(order.symbol)
        if order.reduce_only:
            closable = abs(pos.amount) if pos.amount and (pos.amount > 0) != (order.sign > 0) else 0
            qty = min(qty, dec(closable))
        fee = qty * price * (self.maker_fee if maker else self.taker_fee)
        realised = apply_fill(pos, qty * order.sign, price)
        pos.update_time = now
        self.wallet += realised - fee
        order.executed_qty += qty
        order.cum_quote += qty * price
        order.update_time = now
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        if order.reduce_only and pos.amount == 0 and order.remaining > 0:
            order.status = "EXPIRED" if order.executed_qty == 0 else "FILLED"
        trade = Trade(
            self._id(),
            order.order_id,
            order.symbol,
            order.side,
            qty,
            price,
            fee,
            realised,
            maker,
            now,
        )
        self.trades.append(trade)
        if realised:
            self.incomes.append(
                Income(self._id(), order.symbol, "REALIZED_PNL", realised, now, trade.trade_id)
            )
        if fee:
            self.incomes.append(
                Income(self._id(), order.symbol, "COMMISSION", -fee, now, trade.trade_id)
            )
        return trade

    def cross(self, symbol: str, market_price: Decimal, now: int) -> list[tuple[Order, Trade]]:
        """Fill resting LIMIT orders of ``symbol`` that the replayed price has reached."""
        out: list[tuple[Order, Trade]] = []
        for order in list(self.orders.values()):
            if order.symbol != symbol or not order.is_open or order.type != "LIMIT":
                continue
            reached = (
                market_price <= order.price
                if order.side == "BUY"
                else (market_price >= order.price)
            )
            if reached:
                out.append(
                    (order, self.fill(order, order.remaining, order.price, maker=True, now=now))
                )
        return out

    def cancel(self, order_id: int, now: int) -> Order:
        order = self.orders.get(order_id)
        if order is None or not order.is_open:
            raise Rejected(-2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_time = now
        return order

    def find(self, order_id: int | None, client_order_id: str | None) -> Order:
        for order in self.orders.values():
            if order.order_id == order_id or (
                client_order_id and order.client_order_id == client_order_id
            ):
                return order
        raise Rejected(-2013, "Order does not exist.")

    def close_by_exchange(
        self,
        symbol: str,
        ratio: Decimal,
        price: Decimal,
        now: int,
        client_prefix: str,
        step: Decimal = ZERO,
    ) -> tuple[Order, Trade] | None:
        """Close ``ratio`` of the position at ``price`` on the exchange's initiative.

        What a liquidation or auto-deleverage looks like to the client: a filled MARKET
        order it never sent (client id ``autoclose-...`` as Binance names them), a user
        trade with the realised PnL, and a smaller (or no) position.
        """
        pos = self.position(symbol)
        if not pos.amount:
            return None
        qty = abs(pos.amount) * ratio
        if step > 0:
            qty = round_to(qty, step, ROUND_DOWN)
        if qty <= 0:
            return None
        side = "SELL" if pos.amount > 0 else "BUY"
        order = Order(
            order_id=self._id(),
            client_order_id=f"{client_prefix}-{self._next_id}",
            symbol=symbol,
            side=side,
            type="MARKET",
            qty=qty,
            price=ZERO,
            reduce_only=True,
            time_in_force="IOC",
            time=now,
            update_time=now,
        )
        self.orders[order.order_id] = order
        return order, self.fill(order, qty, price, maker=False, now=now)

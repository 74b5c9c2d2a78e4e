"""Bring a trade's record down to the exchange's position.

Why: Freqtrade learns of a position's changes from its own orders. A reduction it did
not order (a partial liquidation, a trim on the exchange's website) or an exit whose
answer a crash lost leaves its trade recording more than the exchange holds: ``/status``,
FreqUI, ``/couples`` and the P&L are then wrong, and its next exit asks for an amount that
is not there ("Not enough ... in wallet to exit"). The leg supervisor's ``record`` repair
calls :func:`record_reduction`, which does what ``FreqtradeBot.handle_onexchange_order``
does for the orders it can find (attach them, let the trade recompute itself) and, for a
reduction no order explains, books one fill at the current price, so the trade's amount
equals the position and its realised P&L counts the reduction.

Freqtrade-internal (orders and trades of its database, the exchange behind the dp):
hence this package.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from freqtrade.persistence import Order, Trade

from statarb.ft import FREQTRADE_VERSION
from statarb.ft.exchange import exchange_of

__all__ = ["FREQTRADE_VERSION", "RECORD_TAG", "record_reduction"]

RECORD_TAG = "statarb_record"


def _last_price(exchange: Any, pair: str, fallback: float) -> float:
    try:
        ticker = exchange.fetch_ticker(pair)
    except Exception:  # the record matters more than its price: keep the entry price
        return fallback
    price = ticker.get("last") or ticker.get("close") or ticker.get("mark")
    return float(price) if price else fallback


def record_reduction(dp: Any, trade: Trade, held: float) -> list[str]:
    """Record on ``trade`` that the exchange now holds ``held`` (unsigned) of it.

    First the exchange's own filled orders on the trade's exit side that no trade knows
    (a liquidation's ``autoclose`` order, an exit whose answer was lost), oldest first, as
    long as they fit the difference; then, for what is still missing, one fill at the
    last price tagged :data:`RECORD_TAG`. Returns the order ids recorded. A trade brought
    to zero is closed by Freqtrade's own arithmetic (``Trade.update_trade``).
    """
    exchange = exchange_of(dp)
    step = float(trade.amount_precision or 0.0)
    tolerance = max(step / 2, 1e-12)
    missing = float(trade.amount) - held
    recorded: list[str] = []
    if missing <= tolerance:
        return recorded
    known = {o.order_id for o in trade.orders}
    orders = exchange.fetch_orders(trade.pair, trade.open_date_utc - timedelta(seconds=10))
    for raw in sorted(orders, key=lambda o: o.get("timestamp") or 0):
        order = exchange._order_contracts_to_amount(dict(raw))
        order_id = str(order.get("id"))
        filled = float(order.get("filled") or 0.0)
        if (order.get("side") != trade.exit_side or filled <= 0 or order_id in known
                or order.get("status") == "open" or filled > missing + tolerance
                or Order.order_by_id(order_id, trade.pair) is not None):
            continue
        obj = Order.parse_from_ccxt_object(order, trade.pair, trade.exit_side)
        trade.orders.append(obj)
        trade.update_trade(obj)
        recorded.append(order_id)
        missing -= filled
        if missing <= tolerance or not trade.is_open:
            break
    if missing > tolerance and trade.is_open:
        price = _last_price(exchange, trade.pair, float(trade.open_rate))
        now_ms = int(time.time() * 1000)
        order_id = f"{RECORD_TAG}-{trade.id}-{now_ms}"
        obj = Order.parse_from_ccxt_object({
            "id": order_id, "symbol": trade.pair, "side": trade.exit_side, "type": "market",
            "status": "closed", "amount": missing, "filled": missing, "remaining": 0.0,
            "price": price, "average": price, "cost": missing * price, "timestamp": now_ms,
        }, trade.pair, trade.exit_side)
        obj.ft_order_tag = RECORD_TAG
        trade.orders.append(obj)
        trade.update_trade(obj)
        recorded.append(order_id)
    if not trade.is_open and not trade.exit_reason:
        trade.exit_reason = "exit_on_exchange"
    Trade.commit()
    return recorded

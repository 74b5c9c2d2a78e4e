"""Exchange state and orders the strategy needs beyond Freqtrade's public strategy API.

Why here: keeping a couple hedged live means looking at the exchange itself - its
positions (restart reconciliation, untracked positions), the orders it holds for a leg
whose answer was lost (a "ghost") and closing a position no trade owns. The strategy
interface offers none of these; the exchange object behind the DataProvider is
Freqtrade-internal, so every use of it is here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from statarb.ft import FREQTRADE_VERSION

__all__ = [
    "FREQTRADE_VERSION", "cancel_order", "close_position", "entry_orders", "exchange_of",
    "open_positions",
]


def exchange_of(dp: Any) -> Any:
    return dp._exchange  # Freqtrade-internal: the Exchange instance behind the dp


def open_positions(dp: Any) -> dict[str, float]:
    """Signed position size (base currency, negative = short) per pair, from the exchange.

    Raises whatever the exchange raises: the caller decides whether to retry.
    """
    out: dict[str, float] = {}
    for pos in exchange_of(dp).fetch_positions():
        contracts = float(pos.get("contracts") or 0.0)
        if not contracts:
            continue
        size = contracts * float(pos.get("contractSize") or 1.0)
        out[pos["symbol"]] = -size if pos.get("side") == "short" else size
    return out


def entry_orders(dp: Any, pair: str, side: str, since: datetime) -> list[dict[str, Any]]:
    """Orders the exchange holds for ``pair`` on ``side`` ("buy"/"sell") since ``since``
    that open a position (not reduce-only), newest last, amounts in base currency.

    This is how a ghost is found: an order the exchange accepted while the bot never got
    the answer. Raises whatever the exchange raises.
    """
    exchange = exchange_of(dp)
    orders = exchange.fetch_orders(pair, since)
    out = []
    for order in orders:
        if order.get("side") != side or order.get("reduceOnly"):
            continue
        out.append(exchange._order_contracts_to_amount(dict(order)))
    return sorted(out, key=lambda o: o.get("timestamp") or 0)


def close_position(dp: Any, pair: str, signed_amount: float, leverage: float) -> dict[str, Any]:
    """Close ``signed_amount`` of ``pair`` (negative: a short) at market, reduce-only, so
    it can never open or flip a position. Returns the exchange's order; raises on failure.

    For positions no trade owns (Freqtrade would never close them): a leg whose order was
    sent just before a crash, an untracked leftover.
    """
    exchange = exchange_of(dp)
    side = "sell" if signed_amount > 0 else "buy"
    rate = 0.0  # Binance takes market orders without a price: no ticker request on the way
    if exchange._order_needs_price(side, "market"):
        ticker = exchange.fetch_ticker(pair)
        rate = float(ticker.get("last") or ticker.get("close") or 0.0)
    return exchange.create_order(
        pair=pair, ordertype="market", side=side, amount=abs(signed_amount), rate=rate,
        leverage=leverage, reduceOnly=True, initial_order=False,
    )


def cancel_order(dp: Any, pair: str, order_id: str) -> None:
    """Cancel an order Freqtrade does not know (a ghost still open). Raises on failure."""
    exchange_of(dp).cancel_order(order_id, pair)

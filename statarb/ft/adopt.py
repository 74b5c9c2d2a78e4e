"""Adopt an order the exchange filled but Freqtrade never recorded (a "ghost").

When a leg's order is accepted by the exchange and the answer is lost (a timeout after
acceptance), Freqtrade has no trade for it while the position is real. Placing the leg
again would double it; closing it would throw away a hedge the couple needs. Adopting
records the filled order as the trade Freqtrade would have created, so the couple is
whole and every later decision (exits, FreqUI, Telegram) sees both legs.

The trade is built the way ``FreqtradeBot.execute_entry`` builds a new one - Freqtrade
internals, hence this module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from freqtrade.exchange import timeframe_to_minutes
from freqtrade.persistence import Order, Trade

from statarb.ft import FREQTRADE_VERSION
from statarb.ft.exchange import exchange_of

__all__ = ["FREQTRADE_VERSION", "adopt_entry"]


def adopt_entry(strategy: Any, pair: str, order: dict[str, Any], enter_tag: str,
                leverage: float) -> Trade:
    """Record ``order`` (a ccxt order, filled, amounts in base currency) as a new open trade
    of ``strategy`` and return it (committed, with an id)."""
    filled = float(order.get("filled") or 0.0)
    price = float(order.get("average") or order.get("price") or 0.0)
    if filled <= 0 or price <= 0:
        raise ValueError(
            f"cannot adopt order {order.get('id')} on {pair}: filled={filled}, price={price} "
            "(only an order with a fill and a price can become a trade)"
        )
    exchange = exchange_of(strategy.dp)
    config = strategy.config
    side = str(order["side"])
    fee = exchange.get_fee(symbol=pair, taker_or_maker="maker")
    opened = order.get("timestamp")
    trade = Trade(
        pair=pair,
        base_currency=exchange.get_pair_base_currency(pair),
        stake_currency=config["stake_currency"],
        stake_amount=filled * price / leverage,
        amount=0,
        is_open=True,
        amount_requested=float(order.get("amount") or filled),
        fee_open=fee,
        fee_close=fee,
        open_rate=price,
        open_rate_requested=price,
        open_date=datetime.fromtimestamp(opened / 1000, UTC) if opened else datetime.now(UTC),
        exchange=exchange.id,
        strategy=strategy.get_strategy_name(),
        enter_tag=enter_tag,
        timeframe=timeframe_to_minutes(config["timeframe"]),
        leverage=leverage,
        is_short=side == "sell",
        trading_mode=exchange.trading_mode,
        funding_fees=0.0,
        amount_precision=exchange.get_precision_amount(pair),
        price_precision=exchange.get_precision_price(pair),
        precision_mode=exchange.precisionMode,
        precision_mode_price=exchange.precision_mode_price,
        contract_size=exchange.get_contract_size(pair),
    )
    trade.adjust_stop_loss(price, strategy.stoploss, initial=True)
    entry = Order.parse_from_ccxt_object(order, pair, side, filled, price)
    entry.ft_order_tag = enter_tag
    trade.orders.append(entry)
    trade.recalc_trade_from_orders()
    Trade.session.add(trade)
    Trade.commit()
    return trade

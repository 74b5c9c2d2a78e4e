"""A backtest trade's fees with the coin's spread cost added: the fee overlay of
``statarb.costs.half_spread``.

Why a fee and not a fill price: Freqtrade's backtest fills market orders at the candle
open and asks the strategy for a price only for limit orders, which this strategy does
not place (both legs at market so they fill together). A fee rate is the same cost to the
first order (half the spread times the notional, on each fill), is charged per trade, and
shows in the result's ``fee_open``/``fee_close``.

Why Freqtrade internals: Freqtrade hands the strategy's callbacks a deep copy of the trade
(so a strategy cannot change a trade by accident), so the rates are set on the backtest's
own trade object, found by id among its open trades. Its entry has just filled and
Freqtrade values the position right after the callback, with these rates.
"""

from __future__ import annotations

from typing import Any

from freqtrade.persistence import Trade

from statarb.ft import FREQTRADE_VERSION

__all__ = ["FREQTRADE_VERSION", "add_to_fees"]


def add_to_fees(trade: Any, half_spread: float) -> bool:
    """Add ``half_spread`` to the fee rate of both fills of the backtest trade ``trade`` is
    a copy of; False when that trade is not found (nothing is changed then)."""
    if not half_spread:
        return True
    for own in Trade.get_trades_proxy(pair=trade.pair, is_open=True):
        if own.id == trade.id:
            own.fee_open = float(own.fee_open) + half_spread
            own.fee_close = float(own.fee_close) + half_spread
            own.recalc_open_trade_value()
            return True
    return False

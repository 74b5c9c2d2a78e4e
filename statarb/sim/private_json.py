"""Binance USDT-M JSON shapes of the simulated account (orders, trades, positions, balances).

ccxt parses these answers field by field, so they carry Binance's names and types: numbers
as decimal strings, times as epoch ms integers, ``positionSide`` ``BOTH`` (one-way mode).
Times in the account are already the ones the client sees (shifted when the clock is).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from statarb.sim.matching import ZERO, Account, Income, Order, Position, Trade

MAINT_MARGIN_RATE = Decimal("0.005")
ACCOUNT_ALIAS = "SimFutures"


def num(value: Decimal) -> str:
    """Decimal as Binance writes it: plain notation, no trailing zeros, ``0`` for zero."""
    if not value:
        return "0"
    return format(value.normalize(), "f")


def order_json(o: Order) -> dict[str, Any]:
    return {
        "orderId": o.order_id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_order_id,
        "price": num(o.price),
        "avgPrice": num(o.avg_price),
        "origQty": num(o.qty),
        "executedQty": num(o.executed_qty),
        "cumQty": num(o.executed_qty),
        "cumQuote": num(o.cum_quote),
        "timeInForce": o.time_in_force,
        "type": o.type,
        "origType": o.type,
        "reduceOnly": o.reduce_only,
        "closePosition": False,
        "side": o.side,
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "time": o.time,
        "updateTime": o.update_time,
    }


def trade_json(t: Trade) -> dict[str, Any]:
    return {
        "symbol": t.symbol,
        "id": t.trade_id,
        "orderId": t.order_id,
        "side": t.side,
        "price": num(t.price),
        "qty": num(t.qty),
        "realizedPnl": num(t.realised_pnl),
        "quoteQty": num(t.qty * t.price),
        "commission": num(t.fee),
        "commissionAsset": "USDT",
        "time": t.time,
        "positionSide": "BOTH",
        "buyer": t.side == "BUY",
        "maker": t.maker,
    }


def income_json(i: Income) -> dict[str, Any]:
    return {
        "symbol": i.symbol,
        "incomeType": i.income_type,
        "income": num(i.amount),
        "asset": "USDT",
        "info": i.income_type,
        "time": i.time,
        "tranId": i.tran_id,
        "tradeId": "" if i.trade_id is None else str(i.trade_id),
    }


def liquidation_price(p: Position) -> Decimal:
    """Isolated liquidation price, one maintenance tier: where the margin is used up."""
    if not p.amount:
        return ZERO
    move = Decimal(1) / p.leverage - MAINT_MARGIN_RATE
    if p.amount > 0:
        return max(ZERO, p.entry_price * (1 - move))
    return p.entry_price * (1 + move)


def position_json(p: Position, mark: Decimal, now: int) -> dict[str, Any]:
    notional = p.amount * mark
    unrealised = p.unrealised(mark)
    margin = p.margin
    return {
        "symbol": p.symbol,
        "positionSide": "BOTH",
        "positionAmt": num(p.amount),
        "entryPrice": num(p.entry_price),
        "breakEvenPrice": num(p.entry_price),
        "markPrice": num(mark),
        "unRealizedProfit": num(unrealised),
        "liquidationPrice": num(liquidation_price(p)),
        "leverage": str(p.leverage),
        "maxNotionalValue": "5000000",
        "marginType": "isolated" if p.isolated else "cross",
        "isolatedMargin": num(margin + unrealised) if p.isolated else "0",
        "isolatedWallet": num(margin) if p.isolated else "0",
        "isAutoAddMargin": "false",
        "notional": num(notional),
        "marginAsset": "USDT",
        "initialMargin": num(margin),
        "maintMargin": num(abs(notional) * MAINT_MARGIN_RATE),
        "positionInitialMargin": num(margin),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": p.update_time or now,
    }


def _totals(acc: Account, marks: dict[str, Decimal]) -> dict[str, Decimal]:
    unrealised = sum(
        (p.unrealised(marks[s]) for s, p in acc.positions.items() if p.amount and s in marks),
        ZERO,
    )
    return {
        "wallet": acc.wallet,
        "unrealised": unrealised,
        "position_margin": acc.position_margin(),
        "order_margin": acc.order_margin(),
        "available": acc.available(),
    }


def balance_json(acc: Account, marks: dict[str, Decimal], now: int) -> list[dict[str, Any]]:
    t = _totals(acc, marks)
    return [
        {
            "accountAlias": ACCOUNT_ALIAS,
            "asset": "USDT",
            "balance": num(t["wallet"]),
            "crossWalletBalance": num(t["wallet"] - t["position_margin"]),
            "crossUnPnl": "0",
            "availableBalance": num(t["available"]),
            "maxWithdrawAmount": num(t["available"]),
            "marginAvailable": True,
            "updateTime": now,
        }
    ]


def account_json(acc: Account, marks: dict[str, Decimal], now: int) -> dict[str, Any]:
    t = _totals(acc, marks)
    margin = t["position_margin"] + t["order_margin"]
    asset = {
        "asset": "USDT",
        "walletBalance": num(t["wallet"]),
        "unrealizedProfit": num(t["unrealised"]),
        "marginBalance": num(t["wallet"] + t["unrealised"]),
        "maintMargin": "0",
        "initialMargin": num(margin),
        "positionInitialMargin": num(t["position_margin"]),
        "openOrderInitialMargin": num(t["order_margin"]),
        "crossWalletBalance": num(t["wallet"] - t["position_margin"]),
        "crossUnPnl": "0",
        "availableBalance": num(t["available"]),
        "maxWithdrawAmount": num(t["available"]),
        "marginAvailable": True,
        "updateTime": now,
    }
    positions = []
    for s, p in acc.positions.items():
        mark = marks.get(s, p.entry_price)
        positions.append(
            {
                "symbol": s,
                "positionSide": "BOTH",
                "positionAmt": num(p.amount),
                "entryPrice": num(p.entry_price),
                "breakEvenPrice": num(p.entry_price),
                "unrealizedProfit": num(p.unrealised(mark)),
                "initialMargin": num(p.margin),
                "maintMargin": num(abs(p.amount) * mark * MAINT_MARGIN_RATE),
                "positionInitialMargin": num(p.margin),
                "openOrderInitialMargin": "0",
                "isolatedMargin": num(p.margin) if p.isolated else "0",
                "isolatedWallet": num(p.margin) if p.isolated else "0",
                "leverage": str(p.leverage),
                "isolated": p.isolated,
                "notional": num(p.amount * mark),
                "maxNotional": "5000000",
                "bidNotional": "0",
                "askNotional": "0",
                "updateTime": p.update_time or now,
            }
        )
    return {
        "feeTier": 0,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
        "totalInitialMargin": num(margin),
        "totalMaintMargin": "0",
        "totalWalletBalance": num(t["wallet"]),
        "totalUnrealizedProfit": num(t["unrealised"]),
        "totalMarginBalance": num(t["wallet"] + t["unrealised"]),
        "totalPositionInitialMargin": num(t["position_margin"]),
        "totalOpenOrderInitialMargin": num(t["order_margin"]),
        "totalCrossWalletBalance": num(t["wallet"] - t["position_margin"]),
        "totalCrossUnPnl": "0",
        "availableBalance": num(t["available"]),
        "maxWithdrawAmount": num(t["available"]),
        "assets": [asset],
        "positions": positions,
    }

"""How a couple's leg orders fill in research: at market (Freqtrade's backtest) or as
limit orders with a conservative rule, to estimate what maker execution would be worth.

Why: Freqtrade's backtest charges every fill the worse of the maker and taker fee and
fills at the next candle's open, which is what the strategy does live (market orders, so
both legs fill together). Resting limit orders would pay the maker fee (0.02% against
0.05% on Binance USDT-M) but may not fill, and an unfilled leg must then be taken at
market, later and at a worse price. Before live limit-order legs are worth building, the
research engine estimates the saving under a rule that does not flatter it:

- each leg's order is a limit at the **close of the decision candle** (the last price the
  strategy saw);
- it fills only when the next candle **trades through** the limit (a buy when that
  candle's low is strictly below it, a sell when its high is strictly above): touching
  the price is not a fill, since the queue ahead of the order may take all of it;
- a leg that does not fill is taken at market at the **close of that candle** with the
  taker fee (an hour later, at whatever price the market moved to).

``taker`` (default) is Freqtrade's fill, the one the parity test checks.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FILL_MODELS", "Fill", "FillModel"]

FILL_MODELS = ("taker", "maker")


@dataclass(frozen=True)
class Fill:
    """A leg's fill: price, fee rate and whether it rested as a maker order."""

    price: float
    fee: float
    maker: bool


@dataclass(frozen=True)
class FillModel:
    """``taker``: at the next open, taker fee. ``maker``: the limit rule of the module."""

    model: str = "taker"
    taker_fee: float = 0.0005
    maker_fee: float = 0.0002

    def __post_init__(self) -> None:
        if self.model not in FILL_MODELS:
            raise ValueError(f"fills={self.model!r} must be one of {list(FILL_MODELS)}")
        for name in ("taker_fee", "maker_fee"):
            value = getattr(self, name)
            if not 0 <= value < 0.1:
                raise ValueError(f"{name}={value} must be a fraction of the notional in "
                                 "[0, 0.1)")

    def order_price(self, open_: float, decision_close: float) -> float:
        """The price a leg is sized at: the next open (market) or the limit."""
        return open_ if self.model == "taker" else decision_close

    def fill(self, *, buy: bool, open_: float, high: float, low: float, close: float,
             decision_close: float) -> Fill:
        """The fill of one leg's order placed after the decision candle."""
        if self.model == "taker":
            return Fill(open_, self.taker_fee, False)
        limit = decision_close
        through = low < limit if buy else high > limit
        if through:
            return Fill(limit, self.maker_fee, True)
        return Fill(close, self.taker_fee, False)

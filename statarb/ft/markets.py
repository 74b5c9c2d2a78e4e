"""Exchange limits of a leg as Freqtrade will apply them.

Freqtrade refuses an order under its minimum stake, which it derives from the market's
cost and amount minimums times a reserve (``amount_reserve_percent`` and a stop-loss
reserve capped at 50%). A couple must know both legs' minimums before it opens the first
leg, so the strategy sizes against the same numbers; the reserve rule is Freqtrade's
internal logic and therefore lives here.
"""

from __future__ import annotations

from typing import Any

from freqtrade.constants import DEFAULT_AMOUNT_RESERVE_PERCENT

from statarb.core.sizing import LegLimits
from statarb.ft import FREQTRADE_VERSION

__all__ = ["FREQTRADE_VERSION", "STOPLOSS_RESERVE_CAP", "leg_limits"]

# Freqtrade caps the stop-loss reserve at 50%; with the strategy's per-leg stop-loss off
# (-0.99) live trading hits the cap, so the cap is the reserve that holds in every mode.
STOPLOSS_RESERVE_CAP = 1.5


def leg_limits(market: dict[str, Any], config: dict[str, Any]) -> LegLimits:
    """:class:`LegLimits` of a ccxt market, in base-currency amounts and quote notional."""
    try:
        contract = float(market.get("contractSize") or 1.0)
        step = float(market["precision"]["amount"]) * contract
        limits = market["limits"]
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"market {market.get('symbol', '?')} has no amount precision or limits: {exc}"
        ) from exc
    margin_reserve = 1.0 + float(
        config.get("amount_reserve_percent", DEFAULT_AMOUNT_RESERVE_PERCENT)
    )
    min_cost = (limits.get("cost") or {}).get("min") or 0.0
    min_amount = (limits.get("amount") or {}).get("min") or 0.0
    return LegLimits(
        amount_step=step,
        min_amount=float(min_amount) * contract * margin_reserve,
        min_notional=float(min_cost) * contract * STOPLOSS_RESERVE_CAP,
    )

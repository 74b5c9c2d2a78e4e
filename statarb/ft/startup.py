"""How many candles the strategy asks Freqtrade for before a run's first candle.

Why here: a walk-forward wants a whole formation before its first trade (60 days: 1,440
hourly candles, 5,760 of 15m), but Freqtrade refuses a strategy whose startup is more than
five exchange requests of candles (Binance futures: 5 x 499 - 1 = 2,494), in backtesting
as in a running bot. So the startup is the formation plus the z window, capped at that
limit; above it, a backtest trades from the first full formation inside its timerange.
The limit is Freqtrade's internal rule (``Exchange.validate_required_startup_candles``
and the exchange classes' ``_ft_has``), read without building an exchange, so the
strategy, research and the parity tests all use the same number.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import freqtrade.exchange as ft_exchange

from statarb.core.walkforward import WalkForwardParams
from statarb.ft import FREQTRADE_VERSION

__all__ = ["FREQTRADE_VERSION", "max_startup_candles", "startup_candles"]

logger = logging.getLogger(__name__)

#: How many candle requests per pair Freqtrade allows for a strategy's startup.
STARTUP_CALLS = 5


def max_startup_candles(config: Mapping[str, Any], timeframe: str) -> int:
    """The largest ``startup_candle_count`` Freqtrade accepts for this exchange, trading
    mode and timeframe."""
    name = str((config.get("exchange") or {}).get("name") or "binance")
    name = ft_exchange.MAP_EXCHANGE_CHILDCLASS.get(name, name).title()
    cls = getattr(ft_exchange, name, ft_exchange.Exchange)
    has: dict[str, Any] = {**ft_exchange.Exchange._ft_has_default, **cls._ft_has}
    if config.get("trading_mode") == "futures":
        has.update(cls._ft_has_futures)
    limit = int((has.get("ohlcv_candle_limit_per_timeframe") or {}).get(
        timeframe, has.get("ohlcv_candle_limit", 500)))
    return limit * STARTUP_CALLS - 1 if has.get("ohlcv_has_history", True) else limit - 1


def startup_candles(wf: WalkForwardParams, config: Mapping[str, Any], timeframe: str) -> int:
    """The formation plus the z window, at most what Freqtrade accepts (logged when the
    cap cuts into the formation: the first trades then come later in the timerange)."""
    wanted = wf.formation + wf.z_window
    most = max_startup_candles(config, timeframe)
    if wanted > most:
        logger.info(
            "statarb: a formation and z window of %d %s candles is more than the %d "
            "Freqtrade loads before a timerange; a backtest's first couples enter once a "
            "whole formation lies inside it", wanted, timeframe, most)
    return min(wanted, most)

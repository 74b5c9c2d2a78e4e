"""A deliberately simple long/short EMA-cross strategy.

Why it exists: it is the smallest honest strategy that exercises the whole offline
toolchain (simulator-served markets, shared futures data, funding fees, shorts) so that
`make backtest` proves the plumbing before the pairs strategy is involved. It is not a
recommendation to trade anything.
"""

from __future__ import annotations

import talib.abstract as ta
from freqtrade.strategy import IntParameter, IStrategy
from pandas import DataFrame


class TrendBaselineStrategy(IStrategy):
    """Long when the fast EMA crosses above the slow one, short on the opposite cross."""

    INTERFACE_VERSION = 3
    timeframe = "1h"
    can_short = True
    process_only_new_candles = True
    startup_candle_count = 200

    minimal_roi = {"0": 100.0}  # exits come from the opposite cross or the stop
    stoploss = -0.10
    trailing_stop = False
    use_exit_signal = True

    fast = IntParameter(10, 40, default=20, space="buy", optimize=False)
    slow = IntParameter(50, 200, default=100, space="buy", optimize=False)

    plot_config = {
        "main_plot": {"ema_fast": {"color": "orange"}, "ema_slow": {"color": "blue"}},
    }

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["ema_fast"] = ta.EMA(dataframe, timeperiod=self.fast.value)
        dataframe["ema_slow"] = ta.EMA(dataframe, timeperiod=self.slow.value)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        above = dataframe["ema_fast"] > dataframe["ema_slow"]
        dataframe.loc[above & ~above.shift(1, fill_value=True), "enter_long"] = 1
        dataframe.loc[~above & above.shift(1, fill_value=False), "enter_short"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        above = dataframe["ema_fast"] > dataframe["ema_slow"]
        dataframe.loc[~above, "exit_long"] = 1
        dataframe.loc[above, "exit_short"] = 1
        return dataframe

    def leverage(
        self,
        pair: str,
        current_time,
        current_rate: float,
        proposed_leverage: float,
        max_leverage: float,
        entry_tag: str | None,
        side: str,
        **kwargs,
    ) -> float:
        return 1.0

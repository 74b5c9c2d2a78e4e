"""NaiveCouplesStrategy: the textbook baseline CointPairsStrategy is measured against.

Same legs, sizing and exits as CointPairsStrategy, minus what it adds: the couples and
their hedge ratios are fitted once on the whole backtest window (hindsight, which favours
this baseline), the thresholds are fixed (enter 2, exit 0, stop 4, 3 half-lives) and there
is no volatility regime (full size always, no shock cooldown); couples are chosen on raw
p-values (no false-discovery correction) with half-lives up to a week. Not for trading.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

# Freqtrade loads strategies by file; the adapter it extends lives beside it.
from CointPairsStrategy import CointPairsStrategy
from freqtrade.strategy import DecimalParameter

from statarb.core.regime import Regime
from statarb.core.walkforward import Universe, full_window


class NaiveCouplesStrategy(CointPairsStrategy):
    entry_z = DecimalParameter(2.0, 2.0, default=2.0, decimals=1, space="buy", optimize=False)
    exit_z = DecimalParameter(0.0, 0.0, default=0.0, decimals=1, space="sell", optimize=False)
    stop_z = DecimalParameter(4.0, 4.0, default=4.0, decimals=1, space="sell", optimize=False)
    time_stop_half_lives = DecimalParameter(
        3.0, 3.0, default=3.0, decimals=1, space="sell", optimize=False
    )

    def build_universe(self, frames: dict[str, pd.DataFrame]) -> Universe:
        timerange = self.config.get("timerange")
        start = (
            pd.Timestamp(timerange.split("-")[0], tz="UTC")
            if timerange and timerange.split("-")[0]
            else min(f["date"].iloc[0] for f in frames.values())
            + pd.Timedelta(self.timeframe) * self.startup_candle_count
        )
        # Textbook selection: raw p-values (no false-discovery correction), and half-lives
        # up to a week: over a whole year no couple reverts within a day.
        selection = replace(
            self.settings.selection, correction="none", max_half_life_hours=7 * 24
        )
        return full_window(
            frames, selection, self.settings.walk_forward.z_window,
            max(start, min(f["date"].iloc[0] for f in frames.values())
                + pd.Timedelta(self.timeframe) * self.startup_candle_count),
            freq=pd.Timedelta(self.timeframe),
        )

    def market_regime(self, ref_close: pd.Series, index: pd.DatetimeIndex,
                      ref_width: pd.Timedelta) -> tuple[pd.Series, pd.Series]:
        normal = pd.Series(float(Regime.NORMAL), index=index)
        return normal, pd.Series(False, index=index)

    def regime_multiplier(self, regime: Regime) -> float:
        return 1.0

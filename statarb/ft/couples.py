"""The couples a strategy trades, per candle: universe, walk-forward plan and chart values.

Why here: the strategy's callbacks see one pair at a time, a couple needs all of them.
This gathers every pair's candles through Freqtrade's DataProvider once per run
(backtesting, hyperopt, plot, bias checks) or once per new candle (dry-run, live), runs
the selection and the plan of the core (:mod:`statarb.core.walkforward`,
:mod:`statarb.core.signals`) and answers the strategy's per-pair questions: the columns of a
pair's dataframe, the plan's trade behind an entry signal, the z-score of an open couple
now. The strategy decides the policy (its hooks ``build_universe``, ``market_regime``,
``signal_params``); nothing here is math of its own.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from freqtrade.persistence import Trade

from statarb.core.signals import (
    Plan,
    build_plan,
    coin_views,
    couple_pnl,
    exit_reason,
    latest_zscore,
)
from statarb.core.walkforward import Universe
from statarb.ft import FREQTRADE_VERSION
from statarb.ft.runmode import universe_pairs

if TYPE_CHECKING:  # the strategy that owns this helper (no import cycle at run time)
    from statarb.ft.strategy import CointPairsStrategy

__all__ = ["FREQTRADE_VERSION", "CouplePlan"]

logger = logging.getLogger(__name__)


def _take(values: np.ndarray, rows: np.ndarray, fill: Any = np.nan) -> np.ndarray:
    out = values[np.clip(rows, 0, None)]
    if out.dtype == object:
        out = out.copy()
    out[rows < 0] = fill
    return out


class CouplePlan:
    """Universe and plan of one strategy instance (see the module docstring)."""

    def __init__(self, strategy: CointPairsStrategy) -> None:
        self.s = strategy
        self.universe: Universe | None = None
        self._key: tuple | None = None
        self.pairs: dict[str, str] = {}  # coin -> pair
        self.regime: np.ndarray | None = None
        self.blocked: np.ndarray | None = None
        self._base_views: dict[str, Any] = {}
        self._plan: Plan | None = None

    @property
    def _freq(self) -> pd.Timedelta:
        return pd.Timedelta(self.s.timeframe)

    # ------------------------------------------------------------------ universe and plan
    def ensure_universe(self) -> Universe:
        """Selection for the whole universe, once per new candle (live) or once per run
        (history: the whole history is known at once)."""
        s = self.s
        pairs = universe_pairs(s.mode, s.config, s.dp)
        if self.universe is not None and s.mode.history and self._key == (tuple(pairs), None):
            return self.universe
        frames: dict[str, pd.DataFrame] = {}
        for pair in pairs:
            frame = s.dp.get_pair_dataframe(pair, s.timeframe)
            if frame is not None and not frame.empty:
                frames[pair.split("/")[0]] = frame[["date", "open", "close"]]
        last = max((f["date"].iloc[-1] for f in frames.values()), default=None)
        selection = None if s.mode.history else s.selection_file.latest()
        key = (tuple(pairs), None if s.mode.history else (last, id(selection)))
        if self.universe is not None and self._key == key:
            return self.universe
        if len(frames) < 2:
            raise ValueError(f"need candles for at least 2 whitelisted pairs, got {list(frames)}")
        self.pairs = {p.split("/")[0]: p for p in pairs}
        universe = s.build_universe(frames)
        ref = s.dp.get_pair_dataframe(s.settings.regime_pair, s.regime_timeframe)
        if ref is None or ref.empty:
            raise ValueError(
                f"no candles for the regime pair {s.settings.regime_pair}; add its data "
                "or set statarb.regime.pair to a pair you have"
            )
        regime, blocked = s.market_regime(ref.set_index("date")["close"], universe.index,
                                          pd.Timedelta(s.regime_timeframe))
        self.regime, self.blocked = regime.to_numpy(), blocked.to_numpy()
        self._base_views = coin_views(universe, [])
        self.universe, self._key, self._plan = universe, key, None
        n_couples = sum(len(f.couples) for f in universe.formations)
        logger.info(
            "statarb: %d coins, %d re-formations, %d couple selections",
            len(universe.coins), len(universe.formations), n_couples,
        )
        return universe

    def plan(self) -> Plan:
        """The plan for the current parameters (history: every candle; a running bot:
        the last candle, against the real open trades)."""
        universe = self.ensure_universe()
        params = self.s.signal_params()
        if not self.s.mode.trading:
            key: tuple = (id(universe), params)
            # Freqtrade trades a pair from its startup_candle_count-th candle on.
            scope: dict[str, Any] = {
                "tradable_from": universe.tradable_from(self.s.startup_candle_count)}
        else:
            open_pairs = [t.pair for t in Trade.get_open_trades()]
            busy = {p.split("/")[0] for p in open_pairs}
            scope = {"start_row": len(universe.index) - 1, "busy": busy,
                     "open_couples": (len(open_pairs) + 1) // 2}
            key = (id(universe), params, tuple(sorted(busy)))
        if self._plan is None or self._plan.key != key:
            self._plan = build_plan(universe, params, blocked=self.blocked, key=key, **scope)
        return self._plan

    def rows(self, dataframe: pd.DataFrame) -> np.ndarray:
        assert self.universe is not None
        return self.universe.index.get_indexer(pd.DatetimeIndex(dataframe["date"]))

    def signal_row(self, current_time: datetime) -> int:
        """Row of the last closed candle at ``current_time``."""
        assert self.universe is not None
        candle = pd.Timestamp(current_time).floor(self._freq)
        return int(self.universe.index.searchsorted(candle, side="left")) - 1

    def price_now(self, pair: str, current_time: datetime) -> float:
        """Price a market order of ``pair`` would get now (history: the candle open)."""
        assert self.universe is not None
        if self.s.mode.history:
            row = self.signal_row(current_time) + 1
            return float(self.universe.opens[row, self.universe.col(pair.split("/")[0])])
        ticker = self.s.dp.ticker(pair)
        price = ticker.get("last") or ticker.get("close")
        if not price:
            raise ValueError(f"no ticker price for {pair}")
        return float(price)

    # ------------------------------------------------------------------ dataframe columns
    def indicators(self, dataframe: pd.DataFrame, pair: str) -> pd.DataFrame:
        """The regime and the coin's current couple (z-score, spread, hedge ratio)."""
        self.ensure_universe()
        rows = self.rows(dataframe)
        assert self.regime is not None
        dataframe["regime"] = _take(self.regime, rows)
        # What the chart draws: a bar for every regime, LOW (code 0) included, over a zero
        # line that keeps FreqUI's axis at 0.
        dataframe["regime_level"] = dataframe["regime"] + 1
        dataframe["regime_zero"] = 0.0
        view = self._base_views.get(pair.split("/")[0])
        if view is not None:
            dataframe["couple_z"] = _take(view.z, rows)
            dataframe["couple_spread"] = _take(view.spread, rows)
            dataframe["couple_beta"] = _take(view.beta, rows)
        return dataframe

    def entries(self, dataframe: pd.DataFrame, pair: str) -> pd.DataFrame:
        """Entry signals of the plan's trades (tag ``Y~X``, both legs) and the z bands."""
        plan = self.plan()
        coin = pair.split("/")[0]
        rows = self.rows(dataframe)
        dataframe["enter_long"] = 0
        dataframe["enter_short"] = 0
        dataframe["enter_tag"] = None
        view = plan.views.get(coin)
        if view is not None:
            dataframe["couple"] = _take(view.couple, rows, "")
            dataframe["couple_z"] = _take(view.z, rows)
            dataframe["couple_spread"] = _take(view.spread, rows)
            dataframe["couple_beta"] = _take(view.beta, rows)
            dataframe["couple_half_life"] = _take(view.half_life, rows)
        params = plan.key[1]
        dataframe["z_entry_hi"], dataframe["z_entry_lo"] = params.entry_z, -params.entry_z
        dataframe["z_stop_hi"], dataframe["z_stop_lo"] = params.stop_z, -params.stop_z
        dataframe["z_exit"] = params.exit_z
        position = {int(r): i for i, r in enumerate(rows) if r >= 0}
        for row, long, tag in plan.signals.get(coin, []):
            i = position.get(row)
            if i is None:
                continue
            dataframe.iat[i, dataframe.columns.get_loc("enter_long" if long else "enter_short")] = 1
            dataframe.iat[i, dataframe.columns.get_loc("enter_tag")] = tag
        return dataframe

    # ------------------------------------------------------------------ exits
    def couple_z(self, y_pair: str, x_pair: str, beta: float, half_life: float,
                 current_time: datetime) -> tuple[float, int] | None:
        """z-score of an open couple at the last closed candle, on its own hedge ratio
        (:func:`statarb.core.signals.latest_zscore` over the window its half-life gives), and
        that candle's row; None while the window does not fit. The one computation behind
        the exit decision and what ``/couples`` shows as the current z."""
        universe = self.universe or self.ensure_universe()
        row = self.signal_row(current_time)
        lo = row - universe.params.window_for(half_life) + 1
        if lo < 0:
            return None
        iy = universe.col(y_pair.split("/")[0])
        ix = universe.col(x_pair.split("/")[0])
        z = latest_zscore(np.log(universe.closes[lo:row + 1, iy]),
                          np.log(universe.closes[lo:row + 1, ix]), beta)
        return float(z), row

    def couple_exit(self, trade: Any, partner: Any, current_time: datetime) -> str | None:
        """Why an open couple leaves now (the rules of :func:`statarb.core.signals.exit_reason`
        on its own hedge ratio, the z-score of the last closed candle and both legs' real
        entry prices), or None."""
        role = trade.get_custom_data("role")
        y, x = (trade, partner) if role == "y" else (partner, trade)
        beta = float(trade.get_custom_data("beta"))
        half_life = float(trade.get_custom_data("half_life"))
        held = self.couple_z(y.pair, x.pair, beta, half_life, current_time)
        if held is None:
            return None
        z, row = held
        universe = self.universe
        assert universe is not None
        iy = universe.col(y.pair.split("/")[0])
        ix = universe.col(x.pair.split("/")[0])
        side = int(trade.get_custom_data("side"))
        signal_row = int(universe.index.searchsorted(
            pd.Timestamp(trade.get_custom_data("signal_time")), side="left"))
        pnl = couple_pnl(side, beta, y.open_rate, x.open_rate,
                         universe.closes[row, iy], universe.closes[row, ix])
        return exit_reason(z, side, row - signal_row, half_life, pnl,
                           self.s.signal_params())

    def planned_exit(self, trade: Any, current_time: datetime) -> str | None:
        """The exit of the leg's planned couple trade, once its decision candle has closed.

        Only for Freqtrade's bias checks, which back-test one pair at a time: the partner
        is not traded there, so the leg leaves when the plan says the couple leaves. The
        backtest makes the plan's trades (a test compares them), so this checks the very
        decisions a backtest takes.
        """
        plan = self.plan()
        assert self.universe is not None
        entry_row = int(self.universe.index.searchsorted(
            pd.Timestamp(trade.get_custom_data("signal_time")), side="left"))
        trip = plan.by_entry.get((str(trade.get_custom_data("couple")), entry_row))
        if trip is None or trip.exit_row < 0 or self.signal_row(current_time) < trip.exit_row:
            return None
        return trip.reason

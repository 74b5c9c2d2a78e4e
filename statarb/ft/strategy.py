"""CointPairsStrategy: cointegration pairs trading on Binance USDT-M futures, 1h candles.

A thin Freqtrade adapter: the callbacks below hand each question to the ``statarb`` core
through three small Freqtrade-facing helpers (no math here):

- couples and signals (:mod:`statarb.ft.couples`): walk-forward Engle-Granger selection
  over the whitelist (the same selection function as the scanner and the pairlist), the
  plan of couple trades on the rolling z-score of each spread, the chart columns;
- the two legs as one entry (:mod:`statarb.ft.entries`): one ticket per couple sizes both
  legs by the hedge ratio at exchange precision, scaled by the volatility regime; the
  second leg opens only after the first, once;
- live, the leg supervisor (:mod:`statarb.ft.supervisor`): every loop the couple ledger
  against the exchange, and the repairs (adopt, top up, trim, close).

Settings live in the ``statarb`` section of the config (selection, walk-forward, signals,
regime, leverage, protections, live); the z thresholds, the time stop and the regime
multipliers are hyperoptable. See the README for every key.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from freqtrade.persistence import Order, Trade
from freqtrade.strategy import DecimalParameter, IStrategy

from statarb.core import messages, published
from statarb.core.hedge import has_kalman_state
from statarb.core.legs import lone_leg
from statarb.core.policy import STRATEGY_PARAMS, regime_multipliers, signal_params, trading_fee
from statarb.core.regime import Regime, regime_on_candles
from statarb.core.settings import StrategySettings
from statarb.core.signals import SignalParams
from statarb.core.walkforward import Universe, align_closes, from_couples, walk_forward
from statarb.ft import redact
from statarb.ft.costs import add_to_fees
from statarb.ft.couples import CouplePlan
from statarb.ft.entries import CoupleEntries
from statarb.ft.results import record_datadir
from statarb.ft.runmode import Mode, run_mode, universe_pairs
from statarb.ft.startup import startup_candles
from statarb.ft.supervisor import LegSupervisor
from statarb.ft.worker import set_error_retry
from statarb.research.cache import FormationCache

logger = logging.getLogger(__name__)


class CointPairsStrategy(IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "1h"
    can_short = True
    # Legs never exit alone: ROI and the per-leg stop-loss are off, every exit is a couple
    # decision made in custom_exit (z exit / z stop / time stop / pair stop / lone leg).
    minimal_roi = {"0": 100.0}
    stoploss = -0.99
    trailing_stop = False
    use_exit_signal = True
    exit_profit_only = False
    ignore_roi_if_entry_signal = True
    process_only_new_candles = True
    # Only the leg supervisor adjusts a position (a top-up to target, a trim to the ratio).
    position_adjustment_enable = True
    # Formation window (60 days) plus the z-score window; set from the config's
    # walk_forward section in __init__ so a longer formation loads enough history.
    startup_candle_count = 60 * 24 + 100

    order_types = {
        "entry": "market",
        "exit": "market",
        "emergency_exit": "market",
        "force_entry": "market",
        "force_exit": "market",
        "stoploss": "market",
        "stoploss_on_exchange": False,
    }

    # Hyperoptable: the DecimalParameter attributes entry_z, exit_z, stop_z,
    # time_stop_half_lives, regime_high_mult and regime_extreme_mult are made below the
    # class from statarb.core.policy.STRATEGY_PARAMS, the one declaration of the space.

    # Two subplots, so FreqUI's trade view (one short chart panel) stays readable: the
    # z-score with its entry, exit and stop bands, and the regime. couple_spread and
    # couple_beta are in the dataframe too (plot-dataframe --indicators2, or FreqUI's
    # plot configurator).
    plot_config = {
        "main_plot": {},
        "subplots": {
            "z-score": {
                "couple_z": {"color": "#1f77b4"},
                "z_entry_hi": {"color": "#d62728"},
                "z_entry_lo": {"color": "#d62728"},
                "z_stop_hi": {"color": "#7f7f7f"},
                "z_stop_lo": {"color": "#7f7f7f"},
                "z_exit": {"color": "#2ca02c"},
            },
            # Bars of 1 LOW .. 4 EXTREME (the regime code + 1) over a zero line: FreqUI
            # starts a subplot's axis at its smallest value, so without the zero line a
            # LOW candle would be a bar of no height, a gap.
            "regime": {
                "regime_level": {"color": "#ff7f0e", "type": "bar"},
                "regime_zero": {"color": "#9e9e9e"},
            },
        },
    }

    # ------------------------------------------------------------------ set-up
    def __init__(self, config: dict) -> None:
        super().__init__(config)
        # Freqtrade sets the config's timeframe on the strategy only after __init__; the
        # windows are turned into candles of the timeframe the run will use.
        self.timeframe = str(config.get("timeframe") or self.timeframe)
        self.settings = StrategySettings.from_config(config, pd.Timedelta(self.timeframe))
        wf = self.settings.walk_forward
        self.startup_candle_count = startup_candles(wf, config, self.timeframe)
        longest = self.time_stop_half_lives.high * self.settings.selection.max_half_life_hours
        if longest > wf.horizon:
            raise ValueError(
                f"walk_forward.horizon_hours={wf.horizon} must cover the longest time stop "
                f"({self.time_stop_half_lives.high} half-lives x max_half_life_hours="
                f"{self.settings.selection.max_half_life_hours} = {longest} h)"
            )
        if self.settings.selection.share_reference:
            raise ValueError(
                "selection.share_reference=true is a research estimate only: Freqtrade holds "
                "one trade per pair, so a reference coin in several open couples would need "
                "their legs netted into one trade, which this strategy does not do. Set it "
                "to false: each couple with the reference then trades alone (a coin in at "
                "most one open couple)"
            )
        self.mode = run_mode(config)
        mot = config.get("max_open_trades", 0)
        if self.mode.solo_legs and mot in (-1, math.inf):
            mot = 2 * 10**6  # lookahead-analysis: no slot limit, for every pair
        mot = int(mot)
        if mot < 2 or mot % 2:
            raise ValueError(
                f"max_open_trades={mot} must be an even number >= 2: each couple takes two "
                "trade slots (one per leg)"
            )
        self.max_couples = mot // 2
        types = config.get("order_types") or {}
        resting = sorted(k for k in ("entry", "exit", "force_entry", "force_exit")
                         if types.get(k, "market") != "market")
        if resting:
            raise ValueError(
                f"order_types {({k: types[k] for k in resting})} are not supported: "
                "CointPairsStrategy places both legs of a couple at market so they fill "
                "together; set them to \"market\" (or leave them out of the config)"
            )
        # What the pairlist published (dry-run and live): its file is the one channel.
        self.selection_file = published.SelectionFile(
            published.selection_path(config.get("user_data_dir")))
        self.couples = CouplePlan(self)
        self.entries = CoupleEntries(self)
        self._exits: dict[str, str] = {}  # couple id -> exit reason decided by one leg
        self._last_regime: str | None = None
        # Live leg supervision: only in a running bot (see statarb.ft.runmode).
        self.supervisor: LegSupervisor | None = None
        if self.mode.trading:
            self.supervisor = LegSupervisor(self)
            retry = self.settings.live.error_retry_secs
            throttle = (config.get("internals") or {}).get("process_throttle_secs", 5)
            set_error_retry(float(retry if retry is not None else max(1, throttle)))
        if self.mode is Mode.PLOT:
            # plot-dataframe loads the plotted pairs with this many candles before its
            # timerange; the partners' candles must reach as far back.
            config.setdefault("startup_candle_count", self.startup_candle_count)

    @property
    def protections(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """Freqtrade's protections (circuit breakers), from ``statarb.protections``."""
        return self.settings.protections

    def informative_pairs(self) -> list[tuple[str, str]]:
        pairs = universe_pairs(self.mode, self.config, self.dp) if self.dp else []
        if self.settings.regime_pair not in pairs:
            pairs.append(self.settings.regime_pair)
        wanted = [(p, self.timeframe) for p in pairs]
        if self.regime_timeframe != self.timeframe:
            wanted.append((self.settings.regime_pair, self.regime_timeframe))
        return wanted

    def leverage(self, pair: str, current_time: datetime, current_rate: float,
                 proposed_leverage: float, max_leverage: float, entry_tag: str | None,
                 side: str, **kwargs) -> float:
        return min(self.settings.leverage, max_leverage)

    # ------------------------------------------------------------------ policy hooks
    def build_universe(self, frames: dict[str, pd.DataFrame]) -> Universe:
        """Couples over time. History: the walk-forward selection. Dry-run and live:
        exactly the couples the CointegrationFilter pairlist published (none yet: none)."""
        freq = pd.Timedelta(self.timeframe)
        if self.mode.history:
            def build() -> Universe:
                return walk_forward(frames, self.settings.selection,
                                    self.settings.walk_forward, freq=freq)
            if not self.settings.formation_cache:
                return build()
            # The walk-forward is the slow part; a second run on the same data reuses it.
            folder = Path(self.config.get("user_data_dir") or "user_data") / "statarb_cache"
            return FormationCache(folder).get_or_build(frames, self.settings, build)
        selection = self.selection_file.latest()
        index = align_closes(frames, freq)
        couples = (selection.couples_frame(frames, freq / pd.Timedelta(hours=1)) if selection
                   else pd.DataFrame(columns=["y", "x", "alpha", "beta", "half_life"]))
        wf = self.settings.walk_forward
        # Values for the last week (what FreqUI shows); decisions only on the last candle.
        start = max(wf.z_window - 1, len(index) - int(pd.Timedelta(days=7) / freq))
        filter_from = None
        if selection is not None and has_kalman_state(couples):
            # The Kalman ratio goes on from the candle after the formation window, as in
            # the walk-forward.
            filter_from = selection.filter_row(index)
            if pd.Timestamp(selection.formation_end) < index[0]:
                logger.warning("statarb: candles start after the formation end %s; the "
                               "Kalman ratio is filtered from %s", selection.formation_end,
                               index[0])
        return from_couples(frames, couples, wf, start, freq=freq, filter_from=filter_from)

    def market_regime(self, ref_close: pd.Series, index: pd.DatetimeIndex,
                      ref_width: pd.Timedelta) -> tuple[pd.Series, pd.Series]:
        """Regime per candle of ``index`` and the candles where new entries are blocked,
        from the reference's closes (candles of ``ref_width``)."""
        return regime_on_candles(ref_close, index, self.settings.regime, ref_width=ref_width)

    @property
    def regime_timeframe(self) -> str:
        """The reference's candles the regime reads: hourly ones in a running bot on a
        shorter timeframe (its windows are hours; Freqtrade would not load 30 days of
        15m candles), otherwise the strategy's own (history has them all)."""
        if self.mode.trading and pd.Timedelta(self.timeframe) < pd.Timedelta(hours=1):
            return "1h"
        return self.timeframe

    def param_values(self) -> dict[str, float]:
        """The hyperoptable parameters' current values (defaults, a hyperopt epoch's, or
        the strategy's ``.json``)."""
        return {p.name: float(getattr(self, p.name).value) for p in STRATEGY_PARAMS}

    def regime_multiplier(self, regime: Regime) -> float:
        return regime_multipliers(self.param_values())[regime]

    def trading_fee(self) -> float:
        """Freqtrade's fee: the config's ``fee``, else the worse of the exchange's maker
        and taker fee of the first pair (as Freqtrade's backtest charges it)."""
        pairs = self.config["exchange"]["pair_whitelist"]
        market = self.dp.market(pairs[0]) if self.dp is not None and pairs else None
        return trading_fee(self.config, market)

    def signal_params(self) -> SignalParams:
        return signal_params(self.settings, self.param_values(),
                             max_open_couples=self.max_couples, fee=self.trading_fee())

    # ------------------------------------------------------------------ dataframe
    def populate_indicators(self, dataframe: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        return self.couples.indicators(dataframe, metadata["pair"])

    def populate_entry_trend(self, dataframe: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        return self.couples.entries(dataframe, metadata["pair"])

    def populate_exit_trend(self, dataframe: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        # Exits are couple decisions taken in custom_exit, never one leg's signal.
        dataframe["exit_long"] = 0
        dataframe["exit_short"] = 0
        return dataframe

    # ------------------------------------------------------------------ entries
    def custom_stake_amount(self, pair: str, current_time: datetime, current_rate: float,
                            proposed_stake: float, min_stake: float | None, max_stake: float,
                            leverage: float, entry_tag: str | None, side: str,
                            **kwargs) -> float:
        return self.entries.stake(pair, entry_tag, current_time, current_rate,
                                  proposed_stake, leverage)

    def confirm_trade_entry(self, pair: str, order_type: str, amount: float, rate: float,
                            time_in_force: str, current_time: datetime, entry_tag: str | None,
                            side: str, **kwargs) -> bool:
        return self.entries.confirm(pair, amount, rate, current_time, entry_tag)

    def order_filled(self, pair: str, trade: Trade, order: Order, current_time: datetime,
                     **kwargs) -> None:
        # History: the coin's spread cost on both fills (live fills pay the real one).
        first_fill = order.ft_order_side == trade.entry_side \
            and not trade.get_custom_data("couple_id")
        half = self.settings.half_spread.get(pair.split("/")[0], 0.0)
        if not self.mode.trading and first_fill and not add_to_fees(trade, half):
            logger.warning("statarb: no backtest trade %s of %s to charge its spread cost on",
                           trade.id, pair)
        self.entries.filled(trade, order)

    # ------------------------------------------------------------------ live
    def bot_start(self, **kwargs) -> None:
        """Secrets out of the logs (FreqUI's websocket token in uvicorn's request lines);
        backtests record their datadir in the result (``make report`` reads BTC from it);
        dry-run and live: the leg supervisor reconciles what a restart found."""
        redact.install()
        if self.mode.simulated:
            record_datadir(self.config)
        if self.supervisor is not None:
            self.supervisor.start()

    def bot_loop_start(self, current_time: datetime, **kwargs) -> None:
        """Dry-run and live: reconcile every couple, then report a regime change."""
        if self.supervisor is None:
            return
        self.supervisor.check()
        regime = self.couples.regime
        if regime is None or not len(regime):
            return
        code = regime[-1]
        name = Regime(int(code)).name if math.isfinite(code) else "UNKNOWN"
        if self._last_regime is not None and name != self._last_regime:
            mult = self.regime_multiplier(Regime(int(code))) if math.isfinite(code) else 0.0
            blocked = bool(self.couples.blocked[-1]) if self.couples.blocked is not None \
                else False
            self.notify(messages.regime_changed(self._last_regime, name, mult, blocked))
        self._last_regime = name

    def adjust_trade_position(self, trade: Trade, current_time: datetime,
                              current_rate: float, current_profit: float,
                              min_stake: float | None, max_stake: float,
                              current_entry_rate: float, current_exit_rate: float,
                              current_entry_profit: float, current_exit_profit: float,
                              **kwargs) -> tuple[float, str] | None:
        """Only the leg supervisor resizes a leg (a top-up to its target, a trim to the
        hedge ratio); a couple is never scaled in or out by signal."""
        if self.supervisor is None:
            return None
        return self.supervisor.adjustment(trade, current_entry_rate)

    def notify(self, text: str) -> None:
        """Log and send a message through Freqtrade's RPC (Telegram, webhook)."""
        logger.info(text)
        if self.dp is not None:
            self.dp.send_msg(text, always_send=True)

    # ------------------------------------------------------------------ exits
    def confirm_trade_exit(self, pair: str, trade: Trade, order_type: str, amount: float,
                           rate: float, time_in_force: str, exit_reason: str,
                           current_time: datetime, **kwargs) -> bool:
        """Every full exit of a leg (signal, stop, force exit from REST, Telegram or
        FreqUI) starts the couple's exit; never refused."""
        if self.supervisor is not None:
            self.supervisor.exit_started(trade)
        return True

    def check_exit_timeout(self, pair: str, trade: Trade, order: Order,
                           current_time: datetime, **kwargs) -> bool:
        """A leaving couple's exit at market that the exchange left resting is cancelled;
        the leg supervisor closes the rest."""
        return self.supervisor is not None and self.supervisor.cancel_exit(trade, order)

    def custom_exit(self, pair: str, trade: Trade, current_time: datetime, current_rate: float,
                    current_profit: float, **kwargs) -> str | None:
        if self.supervisor is not None and (forced := self.supervisor.forced_exit(trade)):
            return forced
        couple_id = trade.get_custom_data("couple_id")
        if couple_id is None:
            return None  # not a couple leg
        if self.mode.solo_legs:
            return self.couples.planned_exit(trade, current_time)
        decided = self._exits.pop(couple_id, None)
        if decided is not None:
            return decided  # the partner decided the couple's exit: leave with it
        partner = next(
            (t for t in Trade.get_trades_proxy(pair=trade.get_custom_data("partner"),
                                               is_open=True)
             if t.get_custom_data("couple_id") == couple_id),
            None,
        )
        if partner is None:
            if self.supervisor is not None:
                return None  # live, a leg without its partner is the supervisor's repair
            # Backtesting handles pairs one after the other within a candle, so a leg
            # entered on this candle may not see its partner yet.
            candle = pd.Timestamp(current_time).floor(pd.Timedelta(self.timeframe))
            grace = pd.Timestamp(trade.open_date_utc) >= candle
            return "partner_exit" if lone_leg(partner_open=False, opened_this_candle=grace) \
                else None
        reason = self.couples.couple_exit(trade, partner, current_time)
        if reason:
            self._exits[couple_id] = reason
            if self.supervisor is not None:
                self.supervisor.stage(couple_id, "exiting")
        return reason


__all__ = ["CointPairsStrategy"]


# The hyperopt space, from its one declaration: Freqtrade finds these class attributes
# (hyperopt, the strategy's .json of chosen values) as if they were written above.
for _param in STRATEGY_PARAMS:
    setattr(CointPairsStrategy, _param.name, DecimalParameter(
        _param.low, _param.high, default=_param.default, decimals=_param.decimals,
        space=_param.space,
    ))
del _param

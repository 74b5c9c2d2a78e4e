"""CointPairsStrategy: cointegration pairs trading on Binance USDT-M futures, 1h candles.

A thin Freqtrade adapter over the ``statarb`` core (no math here):

- couples: walk-forward Engle-Granger selection over the whitelist
  (:mod:`statarb.walkforward`, the same selection function as the scanner and pairlist);
- signals: rolling z-score of each couple's spread (:mod:`statarb.signals`);
- sizing: both legs split by the hedge ratio at exchange precision (:mod:`statarb.sizing`),
  scaled by the market's volatility regime (:mod:`statarb.regime`);
- paired legs: a ticket per couple entry and the leg decisions of :mod:`statarb.legs`.

Settings live in the ``statarb`` section of the config (selection, walk-forward, signals,
regime, leverage, protections); the z thresholds, the time stop and the regime multipliers
are hyperoptable. See the README for every key.
"""

from __future__ import annotations

import contextlib
import logging
import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from freqtrade.persistence import Order, Trade
from freqtrade.strategy import DecimalParameter, IStrategy

from statarb import messages, published
from statarb.ft.markets import leg_limits
from statarb.ft.runmode import Mode, run_mode, universe_pairs
from statarb.ft.supervisor import LegSupervisor
from statarb.ft.worker import set_error_retry
from statarb.legs import (
    CoupleTicket,
    amount_mismatch,
    first_leg_refusal,
    leg_tag,
    lone_leg,
    parse_leg_tag,
    partial_entry,
    second_leg_refusal,
)
from statarb.regime import Regime, market_regime
from statarb.settings import StrategySettings
from statarb.signals import (
    Plan,
    SignalParams,
    build_plan,
    coin_views,
    couple_pnl,
    exit_reason,
)
from statarb.sizing import size_legs
from statarb.walkforward import Universe, align_closes, from_couples, walk_forward

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
    # Formation window (60 days) plus the z-score window; re-read from the config in
    # bot_start so a longer formation loads enough history.
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

    # Hyperoptable: they only enter the signal plan and the stake, never an indicator.
    entry_z = DecimalParameter(1.5, 3.0, default=2.0, decimals=1, space="buy")
    regime_high_mult = DecimalParameter(0.25, 1.0, default=0.5, decimals=2, space="buy")
    regime_extreme_mult = DecimalParameter(0.05, 0.5, default=0.25, decimals=2, space="buy")
    exit_z = DecimalParameter(-0.5, 1.0, default=0.0, decimals=1, space="sell")
    stop_z = DecimalParameter(3.0, 5.0, default=4.0, decimals=1, space="sell")
    time_stop_half_lives = DecimalParameter(1.0, 6.0, default=3.0, decimals=1, space="sell")

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
            "spread": {"couple_spread": {"color": "#9467bd"}},
            "hedge ratio": {"couple_beta": {"color": "#8c564b"}},
            "regime": {"regime": {"color": "#ff7f0e", "type": "bar"}},
        },
    }

    # ------------------------------------------------------------------ set-up
    def __init__(self, config: dict) -> None:
        super().__init__(config)
        self.settings = StrategySettings.from_config(config, pd.Timedelta(self.timeframe))
        wf = self.settings.walk_forward
        self.startup_candle_count = wf.formation + wf.z_window
        longest = self.time_stop_half_lives.high * self.settings.selection.max_half_life_hours
        if longest > wf.horizon:
            raise ValueError(
                f"walk_forward.horizon_hours={wf.horizon} must cover the longest time stop "
                f"({self.time_stop_half_lives.high} half-lives x max_half_life_hours="
                f"{self.settings.selection.max_half_life_hours} = {longest} h)"
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
        self._universe: Universe | None = None
        self._universe_key: tuple | None = None
        self._pairs: dict[str, str] = {}  # coin -> pair
        self._regime: np.ndarray | None = None
        self._blocked: np.ndarray | None = None
        self._base_views: dict[str, Any] = {}
        self._plan: Plan | None = None
        self._tickets: dict[tuple[str, pd.Timestamp], CoupleTicket] = {}
        self._exits: dict[str, str] = {}  # couple id -> exit reason decided by one leg
        self._entered: dict[str, set[str]] = {}  # couple id -> roles filled
        self._closed: dict[str, list[tuple[str, str, float]]] = {}  # couple id -> legs closed
        self._last_regime: str | None = None
        # Live leg supervision: only in a running bot (see statarb.ft.runmode).
        self._live: LegSupervisor | None = None
        if self.mode.trading:
            self._live = LegSupervisor(self)
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
        return [(p, self.timeframe) for p in pairs]

    def leverage(self, pair: str, current_time: datetime, current_rate: float,
                 proposed_leverage: float, max_leverage: float, entry_tag: str | None,
                 side: str, **kwargs) -> float:
        return min(self.settings.leverage, max_leverage)

    # ------------------------------------------------------------------ universe and plan

    def _ensure_universe(self) -> Universe:
        """Walk-forward selection for the whole whitelist, once per new candle (live) or
        once per run (backtesting)."""
        pairs = universe_pairs(self.mode, self.config, self.dp)
        if self._universe is not None and self.mode.history and self._universe_key == (
            tuple(pairs), None
        ):
            return self._universe  # backtesting: the whole history is known at once
        frames: dict[str, pd.DataFrame] = {}
        for pair in pairs:
            frame = self.dp.get_pair_dataframe(pair, self.timeframe)
            if frame is not None and not frame.empty:
                frames[pair.split("/")[0]] = frame[["date", "open", "close"]]
        last = max((f["date"].iloc[-1] for f in frames.values()), default=None)
        selection = None if self.mode.history else published.latest()
        key = (tuple(pairs), None if self.mode.history else (last, id(selection)))
        if self._universe is not None and self._universe_key == key:
            return self._universe
        if len(frames) < 2:
            raise ValueError(f"need candles for at least 2 whitelisted pairs, got {list(frames)}")
        self._pairs = {p.split("/")[0]: p for p in pairs}
        universe = self.build_universe(frames)
        ref = self.dp.get_pair_dataframe(self.settings.regime_pair, self.timeframe)
        if ref is None or ref.empty:
            raise ValueError(
                f"no candles for the regime pair {self.settings.regime_pair}; add its data "
                "or set statarb.regime.pair to a pair you have"
            )
        log_ref = np.log(ref.set_index("date")["close"].reindex(universe.index))
        regime, blocked = self.market_regime(log_ref)
        self._regime, self._blocked = regime.to_numpy(), blocked.to_numpy()
        self._base_views = coin_views(universe, [])
        self._universe, self._universe_key, self._plan = universe, key, None
        n_couples = sum(len(f.couples) for f in universe.formations)
        logger.info(
            "statarb: %d coins, %d re-formations, %d couple selections",
            len(universe.coins), len(universe.formations), n_couples,
        )
        return universe

    def build_universe(self, frames: dict[str, pd.DataFrame]) -> Universe:
        """Couples over time. Backtesting: the walk-forward selection. Dry-run and live:
        exactly the couples the CointegrationFilter pairlist published (none yet: none)."""
        if self.mode.history:
            return walk_forward(
                frames, self.settings.selection, self.settings.walk_forward,
                freq=pd.Timedelta(self.timeframe),
            )
        selection = published.latest()
        hours = pd.Timedelta(self.timeframe) / pd.Timedelta(hours=1)
        couples = pd.DataFrame(
            [
                {"y": c.y.split("/")[0], "x": c.x.split("/")[0], "alpha": c.alpha,
                 "beta": c.beta, "half_life": c.half_life_hours / hours}
                for c in (selection.couples if selection else ())
                if c.y.split("/")[0] in frames and c.x.split("/")[0] in frames
            ],
            columns=["y", "x", "alpha", "beta", "half_life"],
        )
        n = len(align_closes(frames, pd.Timedelta(self.timeframe)))
        wf = self.settings.walk_forward
        # Values for the last week (what FreqUI shows); decisions only on the last candle.
        start = max(wf.z_window - 1, n - 7 * 24)
        return from_couples(frames, couples, wf, start, freq=pd.Timedelta(self.timeframe))

    def market_regime(self, log_ref: pd.Series) -> tuple[pd.Series, pd.Series]:
        """Regime per candle and the candles where new entries are blocked."""
        return market_regime(log_ref, self.settings.regime)

    def regime_multiplier(self, regime: Regime) -> float:
        return {
            Regime.LOW: 1.0, Regime.NORMAL: 1.0,
            Regime.HIGH: float(self.regime_high_mult.value),
            Regime.EXTREME: float(self.regime_extreme_mult.value),
        }[regime]

    def signal_params(self) -> SignalParams:
        fee = 0.0005
        return SignalParams(
            entry_z=float(self.entry_z.value),
            exit_z=float(self.exit_z.value),
            stop_z=float(self.stop_z.value),
            time_stop_half_lives=float(self.time_stop_half_lives.value),
            pair_stop=self.settings.pair_stop,
            max_open_couples=self.max_couples,
            round_trip_cost=2 * fee,
            min_edge_ratio=self.settings.min_edge_ratio,
        )

    def _ensure_plan(self) -> Plan:
        universe = self._ensure_universe()
        params = self.signal_params()
        if not self.mode.trading:
            key: tuple = (id(universe), params)
            # Freqtrade trades a pair from its startup_candle_count-th candle on.
            scope: dict[str, Any] = {
                "tradable_from": universe.tradable_from(self.startup_candle_count)}
        else:  # decide the last candle against the real open trades
            open_pairs = [t.pair for t in Trade.get_open_trades()]
            busy = {p.split("/")[0] for p in open_pairs}
            scope = {"start_row": len(universe.index) - 1, "busy": busy,
                     "open_couples": (len(open_pairs) + 1) // 2}
            key = (id(universe), params, tuple(sorted(busy)))
        if self._plan is None or self._plan.key != key:
            self._plan = build_plan(universe, params, blocked=self._blocked, key=key, **scope)
        return self._plan

    def _rows(self, dataframe: pd.DataFrame) -> np.ndarray:
        assert self._universe is not None
        return self._universe.index.get_indexer(pd.DatetimeIndex(dataframe["date"]))

    @staticmethod
    def _take(values: np.ndarray, rows: np.ndarray, fill: Any = np.nan) -> np.ndarray:
        out = values[np.clip(rows, 0, None)]
        if out.dtype == object:
            out = out.copy()
        out[rows < 0] = fill
        return out

    # ------------------------------------------------------------------ dataframe
    def populate_indicators(self, dataframe: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        self._ensure_universe()
        rows = self._rows(dataframe)
        assert self._regime is not None
        dataframe["regime"] = self._take(self._regime, rows)
        view = self._base_views.get(metadata["pair"].split("/")[0])
        if view is not None:
            dataframe["couple_z"] = self._take(view.z, rows)
            dataframe["couple_spread"] = self._take(view.spread, rows)
            dataframe["couple_beta"] = self._take(view.beta, rows)
        return dataframe

    def populate_entry_trend(self, dataframe: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        plan = self._ensure_plan()
        coin = metadata["pair"].split("/")[0]
        rows = self._rows(dataframe)
        dataframe["enter_long"] = 0
        dataframe["enter_short"] = 0
        dataframe["enter_tag"] = None
        view = plan.views.get(coin)
        if view is not None:
            dataframe["couple"] = self._take(view.couple, rows, "")
            dataframe["couple_z"] = self._take(view.z, rows)
            dataframe["couple_spread"] = self._take(view.spread, rows)
            dataframe["couple_beta"] = self._take(view.beta, rows)
            dataframe["couple_half_life"] = self._take(view.half_life, rows)
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

    def populate_exit_trend(self, dataframe: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        # Exits are couple decisions taken in custom_exit, never one leg's signal.
        dataframe["exit_long"] = 0
        dataframe["exit_short"] = 0
        return dataframe

    # ------------------------------------------------------------------ entries
    def _signal_row(self, current_time: datetime) -> int:
        """Row of the last closed candle at ``current_time``."""
        assert self._universe is not None
        candle = pd.Timestamp(current_time).floor(pd.Timedelta(self.timeframe))
        return int(self._universe.index.searchsorted(candle, side="left")) - 1

    def _ticket_key(self, couple: str, when: datetime) -> tuple[str, pd.Timestamp]:
        """Tickets are keyed by couple and signal candle, the same for both legs."""
        candle = pd.Timedelta(self.timeframe)
        return couple, pd.Timestamp(when).floor(candle) - candle

    def _price_now(self, pair: str, current_time: datetime) -> float:
        """Price a market order of ``pair`` would get now (backtesting: the candle open)."""
        assert self._universe is not None
        coin = pair.split("/")[0]
        if self.mode.history:
            row = self._signal_row(current_time) + 1
            return float(self._universe.opens[row, self._universe.col(coin)])
        ticker = self.dp.ticker(pair)
        price = ticker.get("last") or ticker.get("close")
        if not price:
            raise ValueError(f"no ticker price for {pair}")
        return float(price)

    def _ticket(self, pair: str, entry_tag: str | None, current_time: datetime,
                current_rate: float, proposed_stake: float) -> CoupleTicket | None:
        parsed = parse_leg_tag(entry_tag)
        if parsed is None:
            return None
        couple, role = parsed
        plan = self._ensure_plan()
        row = self._signal_row(current_time)
        key = self._ticket_key(couple, current_time)
        if key in self._tickets:
            return self._tickets[key]
        trip = plan.by_entry.get((couple, row))
        if trip is None:
            logger.warning("statarb: no planned entry for %s at %s", couple, current_time)
            return None
        ticket = CoupleTicket(
            couple=couple, y=self._pairs[trip.y], x=self._pairs[trip.x], side=trip.side,
            alpha=trip.alpha, beta=trip.beta, half_life=trip.half_life, z_entry=trip.z_entry,
            signal_time=self._universe.index[row].to_pydatetime(),  # type: ignore[union-attr]
            entry_time=self._universe.index[row + 1].to_pydatetime()  # type: ignore[union-attr]
            if row + 1 < len(self._universe.index)  # type: ignore[union-attr]
            else pd.Timestamp(current_time).floor(pd.Timedelta(self.timeframe)).to_pydatetime(),
        )
        regime_code = self._regime[row] if self._regime is not None else np.nan
        regime = Regime(int(regime_code)) if np.isfinite(regime_code) else Regime.NORMAL
        mult = self.regime_multiplier(regime)
        ticket.regime = regime.name
        partner = ticket.pair(ticket.partner_role(role))
        prices = {pair: current_rate, partner: self._price_now(partner, current_time)}
        ticket.price_y, ticket.price_x = prices[ticket.y], prices[ticket.x]
        lev = self.settings.leverage
        # Two slots' worth of Freqtrade's proposed stake, scaled by the regime.
        notional = 2 * proposed_stake * mult * lev
        sizes = size_legs(
            notional, trip.beta, ticket.price_y, ticket.price_x,
            leg_limits(self.dp.market(ticket.y) or {}, self.config),
            leg_limits(self.dp.market(ticket.x) or {}, self.config),
        )
        ticket.amount_y, ticket.amount_x, ticket.ratio_error = (
            sizes.amount_y, sizes.amount_x, sizes.ratio_error,
        )
        if not sizes.ok:
            ticket.refused = sizes.skip_reason
            logger.info("statarb: skip %s at %s: %s", couple, current_time, sizes.skip_reason)
        # Tickets live a day: long enough for a slow live fill to find its ticket.
        oldest = key[1] - pd.Timedelta(days=1)
        self._tickets = {k: v for k, v in self._tickets.items() if k[1] >= oldest}
        self._tickets[key] = ticket
        return ticket

    def custom_stake_amount(self, pair: str, current_time: datetime, current_rate: float,
                            proposed_stake: float, min_stake: float | None, max_stake: float,
                            leverage: float, entry_tag: str | None, side: str,
                            **kwargs) -> float:
        ticket = self._ticket(pair, entry_tag, current_time, current_rate, proposed_stake)
        if ticket is None or ticket.refused:
            return 0.0
        role = "y" if pair == ticket.y else "x"
        if ticket.accepted and self.mode.trading:
            self._follow_first_fill(ticket, role)
            if ticket.refused:
                return 0.0
        # A hair above the target so Freqtrade's truncation to precision lands on it.
        return ticket.amount(role) * current_rate / leverage * (1 + 1e-9)

    def _follow_first_fill(self, ticket: CoupleTicket, role: str) -> None:
        """Live: size the second leg to what the first leg really filled.

        From half the target the partner is resized (hedge ratio kept); below, the couple
        is abandoned and the partly filled first leg closed on the next loop.
        """
        first_role = ticket.partner_role(role)
        first = next(iter(Trade.get_trades_proxy(pair=ticket.pair(first_role), is_open=True)),
                     None)
        target = ticket.amount(first_role)
        if first is None or first.amount >= target * (1 - 1e-9):
            return
        market = self.dp.market(ticket.pair(role)) or {}
        step = float((market.get("precision") or {}).get("amount") or 0.0) or 1e-12
        plan = partial_entry(target, float(first.amount), ticket.amount(role), step)
        fill = f"{plan.fill_ratio:.0%}"
        if plan.action == "resize_partner":
            if first_role == "y":
                ticket.amount_y, ticket.amount_x = float(first.amount), plan.partner_amount
            else:
                ticket.amount_x, ticket.amount_y = float(first.amount), plan.partner_amount
            if self._live is not None:
                self._live.resized(ticket)  # the ledger first, then the second order
            self._notify(messages.leg_incident(
                ticket.couple_id, first.pair, f"filled {fill} of its target",
                f"sizing {ticket.pair(role)} to {plan.partner_amount:g} (hedge ratio kept)",
            ))
        else:
            ticket.refused = f"first leg filled only {fill}"
            # The supervisor closes the lone part next loop (its partner has no position).
            self._notify(messages.leg_incident(
                ticket.couple_id, first.pair, f"filled only {fill} of its target",
                f"not opening {ticket.pair(role)}; closing the filled part",
            ))

    def confirm_trade_entry(self, pair: str, order_type: str, amount: float, rate: float,
                            time_in_force: str, current_time: datetime, entry_tag: str | None,
                            side: str, **kwargs) -> bool:
        parsed = parse_leg_tag(entry_tag)
        if parsed is None:
            return True  # not a couple leg (a manual force entry): Freqtrade's business
        # The bot loop and a REST/Telegram force entry may confirm legs at the same time:
        # one decision at a time, so a leg is never accepted twice.
        with self._live.state.entry_lock if self._live else contextlib.nullcontext():
            return self._confirm_leg(pair, amount, rate, current_time, *parsed)

    def _confirm_leg(self, pair: str, amount: float, rate: float, current_time: datetime,
                     couple: str, role: str) -> bool:
        ticket = self._tickets.get(self._ticket_key(couple, current_time))
        if ticket is None:
            logger.info("statarb: refuse %s leg of %s: no ticket", role, couple)
            return False
        partner_role = ticket.partner_role(role)
        partner = ticket.pair(partner_role)
        step = self.dp.market(pair)["precision"]["amount"] if self.dp.market(pair) else 0.0
        if self.mode.solo_legs:  # each leg follows the plan alone (Freqtrade's bias checks)
            reason = ticket.refused or amount_mismatch(ticket, role, amount, step or 0.0)
        elif ticket.accepted:  # second leg
            reason = second_leg_refusal(ticket, role, amount, step or 0.0)
            if reason is None and not Trade.get_trades_proxy(pair=partner, is_open=True):
                # The first leg failed or was closed since (its partner_exit): a second leg
                # now would be a new lone leg.
                reason = "the first leg is no longer open"
                ticket.refused = reason
        else:
            reason = ticket.refused or amount_mismatch(ticket, role, amount, step or 0.0)
            if reason is None:
                lev = self.settings.leverage
                needed = (amount * rate + ticket.amount(partner_role) * ticket.price(partner_role)
                          ) / lev
                partner_side = "long" if ticket.is_long(partner_role) else "short"
                untracked, halted = (self._live.entry_refusal({pair, partner})
                                     if self._live else ((), None))
                reason = first_leg_refusal(
                    untracked=untracked,
                    halted=halted,
                    free_slots=int(self.config["max_open_trades"]) - Trade.get_open_trade_count(),
                    partner_open=bool(Trade.get_trades_proxy(pair=partner, is_open=True)),
                    partner_locked=self.is_pair_locked(
                        partner, candle_date=ticket.signal_time, side=partner_side
                    ),
                    partner_signal=self._has_signal(partner, ticket, partner_role),
                    stake_available=self.wallets.get_available_stake_amount()
                    if self.wallets else math.inf,
                    stake_needed=needed,
                )
        if reason:
            if not ticket.accepted:
                ticket.refused = reason
            logger.info("statarb: refuse %s leg of %s at %s: %s", role, couple,
                        current_time, reason)
            return False
        ticket.accepted.append(role)
        if len(ticket.accepted) == 1 and self._live is not None:
            # Both legs' targets are in the trade database before the first order is sent.
            self._live.entering(ticket)
        return True

    def _has_signal(self, pair: str, ticket: CoupleTicket, role: str) -> bool:
        """The partner is being traded up to now and carries this couple's signal.

        Live, the partner's last analyzed candle is the signal candle: its signal and tag
        are checked. In backtesting, Freqtrade advances each pair's analyzed data when it
        reaches that pair within the candle, so a partner not reached yet shows the candle
        before; its signal comes from the same planned trip, and a pair Freqtrade does not
        trade at this time (no data yet) shows nothing and is refused.
        """
        frame, _ = self.dp.get_analyzed_dataframe(pair, self.timeframe)
        if frame is None or frame.empty:
            return False
        last = frame.iloc[-1]
        signal_time = pd.Timestamp(ticket.signal_time)
        last_time = pd.Timestamp(last["date"])
        if self.mode.simulated and last_time == signal_time - pd.Timedelta(self.timeframe):
            return True
        column = "enter_long" if ticket.is_long(role) else "enter_short"
        return (
            last_time == signal_time
            and last.get(column) == 1
            and last.get("enter_tag") == leg_tag(ticket.couple, role)
        )

    def order_filled(self, pair: str, trade: Trade, order: Order, current_time: datetime,
                     **kwargs) -> None:
        if order.ft_order_side == trade.exit_side:
            self._leg_closed(trade, order)
            return
        if trade.get_custom_data("couple_id"):
            return
        parsed = parse_leg_tag(trade.enter_tag)
        if parsed is None:
            return
        couple, role = parsed
        ticket = self._tickets.get(self._ticket_key(couple, trade.open_date_utc))
        if ticket is None:
            logger.warning("statarb: filled %s leg of %s without a ticket", role, couple)
            return
        self._record_leg(trade, ticket, role)

    def _record_leg(self, trade: Trade, ticket: CoupleTicket, role: str) -> None:
        """A leg's entry filled: store the couple on its trade; both legs in: report it."""
        for key, value in ticket.custom_data(role).items():
            trade.set_custom_data(key, value)
        roles = self._entered.setdefault(ticket.couple_id, set())
        roles.add(role)
        if roles == {"y", "x"}:
            del self._entered[ticket.couple_id]
            if self._live is not None:
                self._live.stage(ticket.couple_id, "open")
            self._notify(messages.couple_opened(
                ticket.couple_id, ticket.y, ticket.x, ticket.is_long("y"), ticket.is_long("x"),
                ticket.beta, ticket.z_entry, ticket.amount_y, ticket.amount_x,
            ))

    def _leg_closed(self, trade: Trade, order: Order) -> None:
        """When both legs of a couple are closed, report the couple's combined P&L."""
        couple_id = trade.get_custom_data("couple_id")
        if couple_id is None or trade.is_open:
            return
        legs = self._closed.setdefault(couple_id, [])
        legs.append((trade.pair, str(trade.exit_reason), float(trade.close_profit_abs or 0.0)))
        if len(legs) == 2:
            del self._closed[couple_id]
            reasons = {r for _, r, _ in legs}
            reason = reasons.pop() if len(reasons) == 1 else ", ".join(
                f"{p.split('/')[0]} {r}" for p, r, _ in legs
            )
            self._notify(messages.couple_closed(
                couple_id, reason, sum(v for _, _, v in legs), self.config["stake_currency"]
            ))

    def _notify(self, text: str) -> None:
        logger.info(text)
        if self.dp is not None:
            self.dp.send_msg(text, always_send=True)

    def bot_start(self, **kwargs) -> None:
        """Dry-run and live: the leg supervisor reconciles what a restart found."""
        if self._live is not None:
            self._live.start()

    def bot_loop_start(self, current_time: datetime, **kwargs) -> None:
        """Dry-run and live: reconcile every couple, then report a regime change."""
        if self._live is None:
            return
        self._live.check()
        if self._regime is None or not len(self._regime):
            return
        code = self._regime[-1]
        name = Regime(int(code)).name if np.isfinite(code) else "UNKNOWN"
        if self._last_regime is not None and name != self._last_regime:
            mult = self.regime_multiplier(Regime(int(code))) if np.isfinite(code) else 0.0
            blocked = bool(self._blocked[-1]) if self._blocked is not None else False
            self._notify(messages.regime_changed(self._last_regime, name, mult, blocked))
        self._last_regime = name

    def adjust_trade_position(self, trade: Trade, current_time: datetime,
                              current_rate: float, current_profit: float,
                              min_stake: float | None, max_stake: float,
                              current_entry_rate: float, current_exit_rate: float,
                              current_entry_profit: float, current_exit_profit: float,
                              **kwargs) -> tuple[float, str] | None:
        """Only the leg supervisor resizes a leg (a top-up to its target, a trim to the
        hedge ratio); a couple is never scaled in or out by signal."""
        if self._live is None:
            return None
        return self._live.adjustment(trade, current_entry_rate)

    # ------------------------------------------------------------------ exits
    def custom_exit(self, pair: str, trade: Trade, current_time: datetime, current_rate: float,
                    current_profit: float, **kwargs) -> str | None:
        if self._live is not None and (forced := self._live.forced_exit(trade)):
            return forced
        couple_id = trade.get_custom_data("couple_id")
        if couple_id is None:
            return None  # not a couple leg
        if self.mode.solo_legs:
            return self._planned_exit(trade, current_time)
        decided = self._exits.pop(couple_id, None)
        if decided is not None:
            return decided  # the partner decided the couple's exit: leave with it
        partner_pair = trade.get_custom_data("partner")
        partner = next(
            (t for t in Trade.get_trades_proxy(pair=partner_pair, is_open=True)
             if t.get_custom_data("couple_id") == couple_id),
            None,
        )
        if partner is None and self._live is not None:
            return None  # live, a leg without its partner is the supervisor's repair
        candle = pd.Timestamp(current_time).floor(pd.Timedelta(self.timeframe))
        # Backtesting handles pairs one after the other within a candle, so a leg entered
        # on this candle may not see its partner yet.
        grace = pd.Timestamp(trade.open_date_utc) >= candle
        if lone_leg(partner_open=partner is not None, opened_this_candle=grace):
            return "partner_exit"
        if partner is None:
            return None
        universe = self._universe or self._ensure_universe()
        row = self._signal_row(current_time)
        role = trade.get_custom_data("role")
        y, x = (trade, partner) if role == "y" else (partner, trade)
        iy = universe.col(y.pair.split("/")[0])
        ix = universe.col(x.pair.split("/")[0])
        beta = float(trade.get_custom_data("beta"))
        window = universe.params.z_window
        if row - window + 1 < 0:
            return None
        seg = (np.log(universe.closes[row - window + 1:row + 1, iy])
               - beta * np.log(universe.closes[row - window + 1:row + 1, ix]))
        std = float(np.std(seg, ddof=1))
        z = (seg[-1] - float(np.mean(seg))) / std if std > 0 else math.nan
        side = int(trade.get_custom_data("side"))
        signal_row = int(universe.index.searchsorted(
            pd.Timestamp(trade.get_custom_data("signal_time")), side="left"))
        pnl = couple_pnl(side, beta, y.open_rate, x.open_rate,
                         universe.closes[row, iy], universe.closes[row, ix])
        reason = exit_reason(
            z, side, row - signal_row, float(trade.get_custom_data("half_life")), pnl,
            self.signal_params(),
        )
        if reason:
            self._exits[couple_id] = reason
            if self._live is not None:
                self._live.stage(couple_id, "exiting")
        return reason

    def _planned_exit(self, trade: Trade, current_time: datetime) -> str | None:
        """The exit of the leg's planned couple trade, once its decision candle has closed.

        Only for Freqtrade's bias checks, which back-test one pair at a time: the partner
        is not traded there, so the leg leaves when the plan says the couple leaves. The
        backtest makes the plan's trades (a test compares them), so this checks the very
        decisions a backtest takes.
        """
        plan = self._ensure_plan()
        assert self._universe is not None
        entry_row = int(self._universe.index.searchsorted(
            pd.Timestamp(trade.get_custom_data("signal_time")), side="left"))
        trip = plan.by_entry.get((str(trade.get_custom_data("couple")), entry_row))
        if trip is None or trip.exit_row < 0 or self._signal_row(current_time) < trip.exit_row:
            return None
        return trip.reason


__all__ = ["CointPairsStrategy"]

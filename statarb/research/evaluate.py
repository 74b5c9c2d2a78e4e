"""One variant of the whole strategy on the shared data: selection, plan, execution, figures.

Why: the research command compares variants of the strategy as a user would run it in
Freqtrade. Everything the strategy decides comes from the same core functions the
strategy calls (:func:`statarb.core.walkforward.walk_forward`,
:func:`statarb.core.regime.regime_on_candles`, :func:`statarb.core.signals.build_plan`);
execution and costs are :func:`statarb.research.engine.simulate`; figures are
:mod:`statarb.core.performance`'s. Data and
exchange limits are read once per sweep (:class:`Workbench`) and formations once per
selection setting (:mod:`statarb.research.cache`).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from statarb.core.performance import daily_return_series, portfolio_metrics
from statarb.core.policy import (
    DEFAULT_PARAMS,
    regime_multipliers,
    signal_params,
    trading_fee,
)
from statarb.core.regime import regime_on_candles
from statarb.core.settings import StrategySettings
from statarb.core.signals import Trip, plan_trips
from statarb.core.sizing import LegLimits
from statarb.core.walkforward import Universe, align_closes, price_matrix, walk_forward
from statarb.ft.startup import startup_candles
from statarb.research.engine import Account, FundingBook, simulate
from statarb.research.fills import FillModel
from statarb.research.variants import deep_merge

__all__ = ["DEFAULT_PARAMS", "Outcome", "Workbench", "capital_in_use"]




def capital_in_use(legs: pd.DataFrame, index: pd.DatetimeIndex, starting_balance: float,
                   start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Mean over the candles of [start, end) of the margin in open legs over the realised
    equity (starting balance plus the profit of the legs closed so far)."""
    window = index[(index >= start) & (index < end)]
    if len(window) == 0:
        return math.nan
    tied = np.zeros(len(window))
    realised = np.zeros(len(window))
    for leg in legs.itertuples(index=False):
        lo = window.searchsorted(leg.open_date, "left")
        hi = window.searchsorted(leg.close_date, "left")
        tied[lo:hi] += leg.stake_amount
        realised[hi:] += leg.profit_abs
    return float(np.mean(tied / (starting_balance + realised)))


@dataclass
class Outcome:
    """A variant's legs and figures: whole period, in-sample and out-of-sample."""

    legs: pd.DataFrame
    trips: list[Trip]
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    returns: dict[str, pd.Series] = field(default_factory=dict)  # daily, per part


class Workbench:
    """The shared data, limits and costs of one sweep, and its formations."""

    def __init__(self, config: Mapping[str, Any], frames: Mapping[str, pd.DataFrame],
                 markets: Mapping[str, Any], funding: Mapping[str, pd.DataFrame], *,
                 fee: float | None = None, cache: Any = None, fills: str = "taker") -> None:
        from statarb.ft.markets import leg_limits  # Freqtrade's reserve rules

        self.config = dict(config)
        # Freqtrade's timeframe of the run; the candles are of this width.
        self.timeframe = str(config.get("timeframe", "1h"))
        self.candle = pd.Timedelta(self.timeframe)
        self.pair_order = [p for p in config["exchange"]["pair_whitelist"] if p in frames]
        self.frames = {p.split("/")[0]: frames[p] for p in self.pair_order}
        self.ref_frames = frames
        self.limits: dict[str, LegLimits] = {
            p.split("/")[0]: leg_limits(markets[p], self.config) for p in self.pair_order
        }
        first = markets[self.pair_order[0]]
        self.fee = float(fee) if fee is not None else trading_fee(self.config, first)
        self.funding = FundingBook({p.split("/")[0]: f for p, f in funding.items()})
        # How leg orders fill (statarb.research.fills); the maker model reads the
        # candles' ranges, kept here because a worker's copy has no candles.
        self.fills = FillModel(fills, taker_fee=self.fee,
                               maker_fee=float(first.get("maker") or 0.0))
        self.ranges: tuple[np.ndarray, np.ndarray] | None = None
        if fills != "taker":
            index = align_closes(self.frames, self.candle)
            self.ranges = (price_matrix(self.frames, index, "high"),
                           price_matrix(self.frames, index, "low"))
        self.cache = cache
        self.universes: dict[str, Universe] = {}

    @classmethod
    def from_files(cls, config: Mapping[str, Any], datadir: Path, markets_file: Path,
                   **kwargs: Any) -> Workbench:
        from statarb.ft.data import load_frames, load_funding

        timeframe = str(config.get("timeframe", "1h"))
        settings = StrategySettings.from_config(config, pd.Timedelta(timeframe))
        pairs = list(config["exchange"]["pair_whitelist"])
        frames = load_frames(datadir, [*pairs, settings.regime_pair], timeframe)
        funding = load_funding(datadir, [p for p in pairs if p in frames])
        markets = json.loads(Path(markets_file).read_text())
        return cls(config, frames, markets, funding, **kwargs)

    # ------------------------------------------------------------------ formations
    def settings_for(self, statarb: Mapping[str, Any]) -> tuple[StrategySettings, dict]:
        """The strategy's settings for a variant's section merged over the base config's
        (key by key, as Freqtrade merges a ``--config`` overlay), and that config."""
        config = {**self.config,
                  "statarb": deep_merge(self.config.get("statarb") or {}, statarb)}
        return StrategySettings.from_config(config, self.candle), config

    def settings_of(self, variant: Any) -> StrategySettings:
        return self.settings_for(variant.statarb)[0]

    def runs_in_freqtrade(self, variant: Any) -> bool:
        """False for research-only settings the strategy refuses (a shared reference)."""
        return not self.settings_of(variant).selection.share_reference

    @staticmethod
    def selection_key(settings: StrategySettings) -> str:
        """What the formations depend on besides the data; equal keys share them."""
        return json.dumps([settings.selection.formation_dict(), asdict(settings.walk_forward)],
                          sort_keys=True, default=str)

    def universe(self, settings: StrategySettings) -> Universe:
        key = self.selection_key(settings)
        if key not in self.universes:
            def build() -> Universe:
                return walk_forward(self.frames, settings.selection, settings.walk_forward,
                                    freq=self.candle)
            self.universes[key] = (
                self.cache.get_or_build(self.frames, settings, build) if self.cache
                else build())
        return self.universes[key]

    def with_only(self, key: str) -> Workbench:
        """A light copy for a worker: one universe, the closes of the reference pairs,
        no candles for building formations (it must not need them)."""
        lite = copy.copy(self)
        lite.frames = {}
        lite.cache = None
        lite.universes = {key: self.universes[key]}
        lite.ref_frames = {p: f[["date", "close"]] for p, f in self.ref_frames.items()}
        return lite

    # ------------------------------------------------------------------ one variant
    def run(self, statarb: Mapping[str, Any], params: Mapping[str, float],
            split: pd.Timestamp | None = None, parts: tuple[str, ...] = ("all", "is", "oos"),
            ) -> Outcome:
        """The variant over the whole data; figures for ``parts``: all, before (``is``)
        and after (``oos``) ``split`` (see :meth:`settings_for` for how ``statarb`` is
        read)."""
        settings, config = self.settings_for(statarb)
        values = {**DEFAULT_PARAMS, **params}
        universe = self.universe(settings)
        ref = self.ref_frames.get(settings.regime_pair)
        if ref is None:
            raise ValueError(f"no candles for the regime pair {settings.regime_pair}")
        ref_close = ref.set_index("date")["close"]
        regime, blocked = regime_on_candles(ref_close, universe.index, settings.regime)
        account = Account.from_config(config, settings.leverage)
        sp = signal_params(settings, values, max_open_couples=account.max_open_trades // 2,
                           fee=self.fee)
        startup = startup_candles(settings.walk_forward, config, self.timeframe)
        # The plan's trips only (build_plan would also paint every coin's chart columns).
        sel = settings.selection
        trips = plan_trips(universe, sp, blocked=blocked.to_numpy(),
                           tradable_from=universe.tradable_from(startup),
                           shared=frozenset({sel.reference} if sel.share_reference else ()))
        legs = simulate(universe, trips, regime=regime.to_numpy(),
                        multipliers=regime_multipliers(values), limits=self.limits,
                        pair_order=self.pair_order, account=account, fee=self.fee,
                        funding=self.funding, capital=settings.capital, fills=self.fills,
                        highs=self.ranges[0] if self.ranges else None,
                        lows=self.ranges[1] if self.ranges else None,
                        half_spread=settings.half_spread)
        outcome = Outcome(legs, trips)
        btc = ref_close
        first = universe.index[min(universe.tradable_from(startup).values())]
        end = universe.index[-1] + self.candle
        periods = {"all": (first, end)}
        if split is not None:
            periods.update({"is": (first, split), "oos": (split, end)})
        for name, (lo, hi) in periods.items():
            if name not in parts:
                continue
            figures, returns = self.figures(legs, universe.index, account, lo, hi, btc,
                                            settings.half_spread)
            outcome.figures[name], outcome.returns[name] = figures, returns
        return outcome

    def figures(self, legs: pd.DataFrame, index: pd.DatetimeIndex, account: Account,
                start: pd.Timestamp, end: pd.Timestamp, btc: pd.Series,
                half_spread: Mapping[str, float] | None = None,
                ) -> tuple[dict[str, Any], pd.Series]:
        """Figures of the trips opened and closed inside [start, end): a trip across the
        boundary belongs to neither part (counted in ``straddling``), so the in-sample part
        never sees a price after ``start``'s counterpart. Daily returns (Sharpe, DSR,
        drawdown, BTC correlation) cover every day of the part, idle days included."""
        inside = legs[(legs["open_date"] >= start) & (legs["close_date"] < end)]
        before = legs[legs["close_date"] < start]
        balance = account.starting_balance + float(before["profit_abs"].sum())
        period_btc = btc[(btc.index >= start) & (btc.index < end)]
        metrics = portfolio_metrics(inside, balance, period_btc, period=(start, end))
        metrics["straddling"] = int(
            ((legs["open_date"] < end) & (legs["close_date"] >= end)).sum() // 2
            + ((legs["open_date"] < start) & (legs["close_date"] >= start)).sum() // 2)
        metrics["capital_in_use"] = capital_in_use(legs, index, account.starting_balance,
                                                   start, end)
        # What the costs took: the spread part of the fees, and the profit before fees
        # and spread (funding stays in it: it is paid on the position, not on a fill).
        coin_cost = inside["pair"].str.split("/").str[0].map(dict(half_spread or {})).fillna(0)
        metrics["spread_paid"] = float(
            (inside["amount"] * (inside["open_rate"] + inside["close_rate"]) * coin_cost).sum())
        metrics["gross_profit"] = float(metrics["profit_abs"]) + float(metrics["fees_paid"])
        metrics["period"] = [str(start), str(end)]
        return metrics, daily_return_series(inside, balance, period=(start, end))

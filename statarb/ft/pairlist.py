"""CointegrationFilter: keep only the coins of cointegrated couples.

A Freqtrade pairlist filter (place it after a generator such as StaticPairList or
VolumePairList) over the package's one selection function,
:func:`statarb.core.selection.choose_couples`: on each refresh it fetches ``lookback_days`` of
candles for the incoming pairs, runs the Engle-Granger selection and keeps the coins of the
chosen couples, best couple first. Coins with open trades stay whitelisted until they are
closed. The selection is published in process for the strategy and as
``user_data/statarb_selection.json``.

Loaded by the plain ``freqtrade`` command through :mod:`statarb.ft.plugins`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from freqtrade.exceptions import OperationalException
from freqtrade.exchange import timeframe_to_seconds
from freqtrade.exchange.exchange_types import Tickers
from freqtrade.persistence import Trade
from freqtrade.plugins.pairlist.IPairList import IPairList, PairlistParameter, SupportsBacktesting

from statarb.core.hedge import HEDGES
from statarb.core.panel import build_log_panel
from statarb.core.published import Selection, publish, read, selection_path
from statarb.core.selection import SelectionParams, choose_couples, history_length
from statarb.ft.runmode import run_mode

logger = logging.getLogger(__name__)

SELECTION_KEYS = (
    "max_pvalue", "correction", "min_half_life_hours", "max_half_life_hours", "min_ret_corr",
    "min_crossings", "max_couples", "both_orientations", "hedge", "kalman_delta", "stable_in",
    "stable_of", "reference",
)


class CointegrationFilter(IPairList):
    # Backtests choose couples walk-forward inside the strategy; this filter would see
    # the data at the end of the backtest (look-ahead), so it passes pairs through there.
    supports_backtesting = SupportsBacktesting.NO_ACTION

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = dict(self._pairlistconfig)
        cfg.pop("method", None)
        allowed = {"timeframe", "lookback_days", "refresh_period", *SELECTION_KEYS}
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise OperationalException(
                f"{self.name}: unknown parameter(s) {unknown}; allowed: {sorted(allowed)}"
            )
        self._timeframe = str(cfg.get("timeframe", self._config.get("timeframe", "1h")))
        try:
            self._candle_seconds = timeframe_to_seconds(self._timeframe)
        except Exception as exc:
            raise OperationalException(
                f"{self.name}: timeframe={self._timeframe!r} is not a timeframe ({exc})"
            ) from exc
        self._lookback_days = float(cfg.get("lookback_days", 60))
        self._lookback = int(self._lookback_days * 86400 // self._candle_seconds)
        if self._lookback < 100:
            raise OperationalException(
                f"{self.name}: lookback_days={self._lookback_days} gives {self._lookback} "
                f"{self._timeframe} candles; the ADF lag search needs at least 100"
            )
        self._refresh_period = int(cfg.get("refresh_period", 86400))
        if self._refresh_period < 0:
            raise OperationalException(
                f"{self.name}: refresh_period={self._refresh_period} must be >= 0 seconds"
            )
        try:
            self._params = SelectionParams.from_dict(self._selection_config(cfg))
        except (ValueError, TypeError) as exc:
            raise OperationalException(f"{self.name}: {exc}") from exc
        # Selection stability looks back stable_of - 1 refreshes before the formation.
        self._step = self._refresh_period // self._candle_seconds
        if self._params.stable_of > 1 and self._step < 1:
            raise OperationalException(
                f"{self.name}: stable_of={self._params.stable_of} compares the last "
                f"formations one refresh_period apart; refresh_period={self._refresh_period} "
                f"s must be at least one {self._timeframe} candle"
            )
        self._history = history_length(self._lookback, self._params, max(self._step, 1))
        self._candle_type = self._config.get("candle_type_def")
        self._path = selection_path(self._config.get("user_data_dir"))
        self._selection: Selection | None = None
        self._refreshed_at = 0.0
        self._incoming: tuple[str, ...] = ()
        self._settings = json.dumps(
            {"timeframe": self._timeframe, "lookback": self._lookback,
             "params": asdict(self._params)}, sort_keys=True, default=str,
        )
        self._resume()

    def _selection_config(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """The selection settings: the config's ``statarb.selection``, the one place the
        strategy's walk-forward reads too. A selection key written in this pairlist's
        entry as well is accepted only with the same value, so the pairlist and the
        strategy can never choose couples differently."""
        section = dict(((self._config.get("statarb") or {}).get("selection")) or {})
        given = {k: cfg[k] for k in SELECTION_KEYS if k in cfg}
        clash = {k: (v, section[k]) for k, v in given.items() if k in section
                 and section[k] != v}
        if clash:
            named = ", ".join(f"{k}={a!r} here but statarb.selection.{k}={b!r}"
                              for k, (a, b) in sorted(clash.items()))
            raise OperationalException(
                f"{self.name}: {named}; set the selection once, in statarb.selection"
            )
        return {**section, **given}

    def _resume(self) -> None:
        """After a restart, continue with the selection this filter published before, when
        it is its own (same settings) and not due for a refresh yet.

        Why: a restart is often a recovery (a crash with a couple half placed); fetching
        the whole lookback for every pair first would delay the strategy's reconciliation
        by the length of that download. The selection is exactly what the bot would have
        kept in memory had it not stopped.
        """
        if not run_mode(self._config).trading:
            return  # a bot restarting; test-pairlist and backtests always select afresh
        if self._path is None or not self._path.exists():
            return
        try:
            selection = read(self._path)
        except ValueError as exc:
            logger.warning("%s: %s; selecting afresh", self.name, exc)
            return
        created = selection.created.timestamp()
        age = datetime.now(UTC).timestamp() - created
        if selection.settings != self._settings or not 0 <= age < self._refresh_period:
            return
        self._selection, self._refreshed_at = selection, created
        self._incoming = selection.inputs
        logger.info("%s: resuming the selection of %s (%s); next refresh in %.0f s",
                    self.name, selection.created,
                    ", ".join(c.name for c in selection.couples) or "no couple",
                    self._refresh_period - age)

    @property
    def needstickers(self) -> bool:
        return False

    def short_desc(self) -> str:
        p = self._params
        return (
            f"{self.name} - Coins of up to {p.max_couples} cointegrated couples over the last "
            f"{self._lookback_days:g} days of {self._timeframe} candles (p <= {p.max_pvalue} "
            f"{p.correction}, half-life {p.min_half_life_hours:g}-{p.max_half_life_hours:g} h), "
            f"refreshed every {self._refresh_period} s."
        )

    @staticmethod
    def description() -> str:
        return "Keep the coins of cointegrated couples (Engle-Granger)."

    @staticmethod
    def available_parameters() -> dict[str, PairlistParameter]:
        d = SelectionParams()
        return {
            "timeframe": {"type": "string", "default": "1h", "description": "Timeframe",
                          "help": "Candles the couples are tested on."},
            "lookback_days": {"type": "number", "default": 60, "description": "Lookback days",
                              "help": "Formation window: days of candles before now."},
            "refresh_period": {"type": "number", "default": 86400,
                               "description": "Refresh period",
                               "help": "Seconds between re-formations (cached in between)."},
            "max_pvalue": {"type": "number", "default": d.max_pvalue,
                           "description": "Max p-value",
                           "help": "Engle-Granger p-value level (after the correction)."},
            "correction": {"type": "option", "default": d.correction, "options": ["bh", "none"],
                           "description": "Correction",
                           "help": "bh: Benjamini-Hochberg over all couples tested."},
            "min_half_life_hours": {"type": "number", "default": d.min_half_life_hours,
                                    "description": "Min half-life (h)",
                                    "help": "Fastest mean reversion accepted."},
            "max_half_life_hours": {"type": "number", "default": d.max_half_life_hours,
                                    "description": "Max half-life (h)",
                                    "help": "Slowest mean reversion accepted."},
            "min_ret_corr": {"type": "number", "default": d.min_ret_corr,
                             "description": "Min return correlation",
                             "help": "Correlation of one-candle returns."},
            "min_crossings": {"type": "number", "default": d.min_crossings,
                              "description": "Min mean crossings",
                              "help": "Times the spread crossed its mean in the window."},
            "max_couples": {"type": "number", "default": d.max_couples,
                            "description": "Max couples", "help": "Couples kept, best first."},
            "both_orientations": {"type": "boolean", "default": d.both_orientations,
                                  "description": "Both orientations",
                                  "help": "Require rejection with y~x and x~y."},
            "stable_in": {"type": "number", "default": d.stable_in,
                          "description": "Stable in",
                          "help": "Keep a couple eligible in this many of the last stable_of "
                                  "formations (one refresh_period apart)."},
            "stable_of": {"type": "number", "default": d.stable_of,
                          "description": "Stable of",
                          "help": "Formations looked at (1: this one only)."},
            "hedge": {"type": "option", "default": d.hedge, "options": list(HEDGES),
                      "description": "Hedge ratio",
                      "help": "ols: the Engle-Granger fit; tls: total least squares "
                              "(symmetric in the two coins); kalman: a ratio updated "
                              "every candle."},
            "reference": {"type": "string", "default": d.reference,
                          "description": "Reference coin",
                          "help": "A coin (e.g. BTC) every couple is formed with; empty: "
                                  "couples among the coins."},
            "kalman_delta": {"type": "number", "default": d.kalman_delta,
                             "description": "Kalman state noise",
                             "help": "hedge kalman: the ratio weighs about "
                                     "1/sqrt(kalman_delta) recent candles (0: all)."},
        }

    @property
    def selection(self) -> Selection | None:
        return self._selection

    def filter_pairlist(self, pairlist: list[str], tickers: Tickers) -> list[str]:
        mode = run_mode(self._config)
        if mode.simulated:  # backtest, hyperopt, bias checks: the strategy walks forward
            return pairlist
        now = datetime.now(UTC).timestamp()
        stale = now - self._refreshed_at >= self._refresh_period
        if stale or self._selection is None or tuple(pairlist) != self._incoming:
            self._refresh(pairlist, now)
        chosen = [p for p in (self._selection.pairs if self._selection else []) if p in pairlist]
        open_pairs = [t.pair for t in Trade.get_open_trades()] if mode.trading else []
        return chosen + [p for p in open_pairs if p in pairlist and p not in chosen]

    def _refresh(self, pairlist: list[str], now: float) -> None:
        try:
            candles = self._exchange.refresh_ohlcv_with_cache(
                [(p, self._timeframe, self._candle_type) for p in pairlist],
                lookback_period=self._history,
            )
        except Exception as exc:  # keep trading the last good selection
            logger.warning("%s: fetching candles failed (%s); keeping the last selection",
                           self.name, exc)
            return
        closes: dict[str, pd.Series] = {}
        pair_of: dict[str, str] = {}
        for pair in pairlist:
            frame = candles.get((pair, self._timeframe, self._candle_type))
            coin = pair.split("/")[0]
            pair_of[coin] = pair
            closes[coin] = (
                frame.set_index("date")["close"].astype(float)
                if frame is not None and not frame.empty else pd.Series(dtype=float)
            )
        lasts = [s.index[-1] for s in closes.values() if len(s)]
        if not lasts:
            logger.warning("%s: no candles for any pair; keeping the last selection", self.name)
            return
        freq = pd.Timedelta(seconds=self._candle_seconds)
        # A fetch that straddles a candle close gives the pairs fetched after it one more
        # closed candle: the window ends at the last candle every current pair has, so none
        # is skipped for it (pairs further behind are stale and are skipped).
        end = min(t for t in lasts if t >= max(lasts) - freq) + freq
        panel = build_log_panel(closes, end - self._history * freq, end, freq)
        start = end - self._lookback * freq  # the formation window itself
        skipped = {pair_of[c]: r for c, r in {**panel.not_covered, **panel.bad}.items()}
        reference = self._params.reference
        if reference and reference not in panel.log_prices.columns:
            self.log_once(f"{self.name}: the reference coin {reference} is not among the "
                          "pairs with a full formation window; no couples", logger.warning)
        for pair, reason in skipped.items():
            self.log_once(f"{self.name}: skipped {pair}: {reason}", logger.info)
        try:
            chosen = (
                choose_couples(panel.log_prices, self._params,
                               candle_hours=self._candle_seconds / 3600,
                               step=max(self._step, 1))
                if panel.log_prices.shape[1] >= 2 else pd.DataFrame()
            )
            selection = Selection.from_frame(
                chosen, pair_of, formation_start=start.to_pydatetime(),
                formation_end=end.to_pydatetime(), created=datetime.now(UTC),
                timeframe=self._timeframe, skipped=skipped, inputs=tuple(pairlist),
                settings=self._settings,
            ) if not chosen.empty else Selection(
                (), start.to_pydatetime(), end.to_pydatetime(), datetime.now(UTC),
                self._timeframe, skipped, tuple(pairlist), self._settings,
            )
        except ValueError as exc:
            logger.warning("%s: selection failed (%s); keeping the last selection",
                           self.name, exc)
            return
        self._selection, self._refreshed_at, self._incoming = selection, now, tuple(pairlist)
        if self._path is not None:
            publish(selection, self._path)
        if selection.couples:
            logger.info("%s: selected %s (formation %s .. %s)", self.name,
                        ", ".join(f"{c.name} beta={c.beta:.3f} hl={c.half_life_hours:.1f}h"
                                  for c in selection.couples),
                        start, end)
        else:
            logger.warning("%s: no couple passes the filters on %s .. %s; the bot keeps "
                           "running with no entries", self.name, start, end)

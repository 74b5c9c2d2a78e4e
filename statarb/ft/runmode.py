"""Which Freqtrade command the strategy is running in, decided in one place.

Why: the strategy behaves differently per command, and guessing from scattered checks
broke twice (a live-only lock made hyperopt unpicklable; ``plot-dataframe`` was treated
as live and queried a trade database that does not exist there). Every other part of the
package asks :func:`run_mode` and the properties of :class:`Mode`:

=============  ======================================  =========  ========  =========
mode           Freqtrade commands                      history    trading   solo legs
=============  ======================================  =========  ========  =========
backtest       ``backtesting``, FreqUI backtests        yes        no        no
hyperopt       ``hyperopt``                            yes        no        no
analysis       ``lookahead-analysis``,                 yes        no        yes
               ``recursive-analysis``
plot           ``plot-dataframe``                      yes        no        no
dry_run, live  ``trade``                               no         yes       no
other          anything else                           no         no        no
=============  ======================================  =========  ========  =========

*history*: couples come from the walk-forward over the candles Freqtrade loaded;
*trading*: couples come from the pairlist's published selection, the trade database and
the exchange exist, and the live leg supervision runs (its state is only created then);
*solo legs*: Freqtrade's bias checks back-test one pair at a time, so each leg follows
the planned couple trade on its own (see the README's section on the bias checks).

The couple universe is a mode decision too (:func:`universe_pairs`): the bias checks and
``plot-dataframe`` narrow Freqtrade's whitelist to the pair under study, but a couple
needs its partner's candles, so there the universe is the configured pair list.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from freqtrade.enums import RunMode

from statarb.ft import FREQTRADE_VERSION

__all__ = ["FREQTRADE_VERSION", "Mode", "run_mode", "universe_pairs"]


class Mode(StrEnum):
    BACKTEST = "backtest"
    HYPEROPT = "hyperopt"
    ANALYSIS = "analysis"
    PLOT = "plot"
    DRY_RUN = "dry_run"
    LIVE = "live"
    OTHER = "other"

    @property
    def history(self) -> bool:
        """Couples from the walk-forward over loaded history (no trade database)."""
        return self in (Mode.BACKTEST, Mode.HYPEROPT, Mode.ANALYSIS, Mode.PLOT)

    @property
    def trading(self) -> bool:
        """A running bot: trade database, exchange, live leg supervision."""
        return self in (Mode.DRY_RUN, Mode.LIVE)

    @property
    def simulated(self) -> bool:
        """Freqtrade's backtesting engine places the orders (backtest, hyperopt, the bias
        checks): legs are handled candle by candle, as a backtest does."""
        return self in (Mode.BACKTEST, Mode.HYPEROPT, Mode.ANALYSIS)

    @property
    def solo_legs(self) -> bool:
        """Each leg follows its planned couple trade alone (Freqtrade's bias checks)."""
        return self is Mode.ANALYSIS


_FROM_FREQTRADE = {
    RunMode.BACKTEST: Mode.BACKTEST,
    RunMode.WEBSERVER: Mode.BACKTEST,  # FreqUI's backtesting tab runs Backtesting
    RunMode.HYPEROPT: Mode.HYPEROPT,
    # A strategy instance under util_no_exchange is one of Freqtrade's bias checks:
    # lookahead-analysis and recursive-analysis build Backtesting with that run mode.
    RunMode.UTIL_NO_EXCHANGE: Mode.ANALYSIS,
    RunMode.PLOT: Mode.PLOT,
    RunMode.DRY_RUN: Mode.DRY_RUN,
    RunMode.LIVE: Mode.LIVE,
}


def run_mode(config: dict[str, Any]) -> Mode:
    """The strategy's mode from Freqtrade's ``config["runmode"]`` (which Freqtrade sets
    for every command before the strategy is built)."""
    raw = config.get("runmode")
    try:
        freqtrade_mode = RunMode(raw) if raw is not None else None
    except ValueError:
        return Mode.OTHER
    return _FROM_FREQTRADE.get(freqtrade_mode, Mode.OTHER)  # type: ignore[arg-type]


def universe_pairs(mode: Mode, config: dict[str, Any], dp: Any) -> list[str]:
    """The pairs couples are formed from.

    Backtest, hyperopt and a running bot: Freqtrade's current whitelist (the pairlist).
    The bias checks and plot: the configured ``pair_whitelist`` as the config files have
    it, before ``--pairs`` narrowed it, plus the pairs under study. (The bias checks also
    replace the whitelist of each partial run with the one pair they study.)
    """
    if mode in (Mode.ANALYSIS, Mode.PLOT):
        original = (config.get("original_config") or {}).get("exchange", {})
        configured = original.get("pair_whitelist") or config["exchange"]["pair_whitelist"]
        return list(dict.fromkeys([*configured, *(config.get("pairs") or [])]))
    return list(dp.current_whitelist())

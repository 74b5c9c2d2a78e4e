"""The strategy's run mode, decided in one place (statarb.ft.runmode), and what it gates:
no live state outside a running bot, a picklable strategy for hyperopt's workers, and the
couple universe of the commands that narrow Freqtrade's whitelist."""

from __future__ import annotations

import importlib.util
from typing import Any

import cloudpickle
import pytest
from freqtrade.enums import RunMode

from statarb.ft.runmode import Mode, run_mode, universe_pairs
from tests.offline import REPO

WHITELIST = ["WLD/USDT:USDT", "ARB/USDT:USDT", "AAVE/USDT:USDT", "LINK/USDT:USDT"]


def _strategy(runmode: RunMode, **extra: Any) -> Any:
    spec = importlib.util.spec_from_file_location(
        "CointPairsStrategy", REPO / "strategies" / "CointPairsStrategy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = {"max_open_trades": 10, "stake_currency": "USDT", "timeframe": "1h",
              "dry_run": True, "runmode": runmode,
              "exchange": {"pair_whitelist": list(WHITELIST)}, **extra}
    return module.CointPairsStrategy(config)


@pytest.mark.parametrize(
    ("freqtrade_mode", "mode"),
    [
        (RunMode.BACKTEST, Mode.BACKTEST),
        (RunMode.WEBSERVER, Mode.BACKTEST),
        (RunMode.HYPEROPT, Mode.HYPEROPT),
        (RunMode.UTIL_NO_EXCHANGE, Mode.ANALYSIS),
        (RunMode.PLOT, Mode.PLOT),
        (RunMode.DRY_RUN, Mode.DRY_RUN),
        (RunMode.LIVE, Mode.LIVE),
        (RunMode.UTIL_EXCHANGE, Mode.OTHER),
        (RunMode.OTHER, Mode.OTHER),
    ],
)
def test_every_freqtrade_run_mode_maps_to_one_mode(freqtrade_mode, mode) -> None:
    assert run_mode({"runmode": freqtrade_mode}) is mode
    assert run_mode({"runmode": freqtrade_mode.value}) is mode


def test_mode_properties() -> None:
    assert {m for m in Mode if m.trading} == {Mode.DRY_RUN, Mode.LIVE}
    assert {m for m in Mode if m.history} == {
        Mode.BACKTEST, Mode.HYPEROPT, Mode.ANALYSIS, Mode.PLOT}
    assert {m for m in Mode if m.solo_legs} == {Mode.ANALYSIS}
    assert run_mode({}) is Mode.OTHER and run_mode({"runmode": "nonsense"}) is Mode.OTHER


@pytest.mark.parametrize("freqtrade_mode", [RunMode.HYPEROPT, RunMode.BACKTEST, RunMode.PLOT,
                                            RunMode.UTIL_NO_EXCHANGE])
def test_outside_a_running_bot_there_is_no_live_state_and_the_strategy_pickles(
    freqtrade_mode,
) -> None:
    strategy = _strategy(freqtrade_mode)
    assert strategy.supervisor is None
    clone = cloudpickle.loads(cloudpickle.dumps(strategy))  # what hyperopt's -j does
    assert clone.mode is strategy.mode and clone.max_couples == strategy.max_couples


@pytest.mark.parametrize("freqtrade_mode", [RunMode.DRY_RUN, RunMode.LIVE])
def test_a_running_bot_has_live_state(freqtrade_mode) -> None:
    strategy = _strategy(freqtrade_mode)
    assert strategy.supervisor is not None and strategy.supervisor.s is strategy
    assert strategy.supervisor.state.entry_lock.acquire(blocking=False)


def test_lookahead_analysis_unlimited_slots_are_accepted_only_there() -> None:
    assert _strategy(RunMode.UTIL_NO_EXCHANGE, max_open_trades=-1).max_couples >= 10**6
    with pytest.raises(ValueError, match="max_open_trades=-1"):
        _strategy(RunMode.BACKTEST, max_open_trades=-1)


class _Dp:
    def current_whitelist(self) -> list[str]:
        return ["WLD/USDT:USDT"]


def test_universe_is_the_configured_list_where_freqtrade_narrows_the_whitelist() -> None:
    narrowed = {"exchange": {"pair_whitelist": ["WLD/USDT:USDT"]},
                "pairs": ["WLD/USDT:USDT", "DOGE/USDT:USDT"],
                "original_config": {"exchange": {"pair_whitelist": list(WHITELIST)}}}
    for mode in (Mode.PLOT, Mode.ANALYSIS):
        assert universe_pairs(mode, narrowed, _Dp()) == [*WHITELIST, "DOGE/USDT:USDT"]
    for mode in (Mode.BACKTEST, Mode.HYPEROPT, Mode.DRY_RUN, Mode.LIVE):
        assert universe_pairs(mode, narrowed, _Dp()) == ["WLD/USDT:USDT"]


def test_plot_mode_loads_the_partners_with_the_strategys_startup() -> None:
    strategy = _strategy(RunMode.PLOT)
    assert strategy.config["startup_candle_count"] == strategy.startup_candle_count
    assert "startup_candle_count" not in _strategy(RunMode.BACKTEST).config

"""CointPairsStrategy in a real `freqtrade backtesting` run on all the shared data.

Checks the paired-leg invariants on Freqtrade's own exported trades (every couple's two
legs share the entry candle, exit at most one candle apart, no leg without its partner,
amounts in the hedge ratio), and that Freqtrade executed exactly the couple trades the
core planned: entries one candle after the planned signal and exits one candle after the
planned exit decision, with the planned reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from statarb.core.legs import parse_leg_tag
from statarb.core.regime import regime_on_candles
from statarb.core.settings import StrategySettings
from statarb.core.signals import SignalParams, build_plan
from statarb.ft.data import load_frames
from statarb.ft.startup import startup_candles
from statarb.research.evaluate import Workbench
from statarb.sim import MarketData
from statarb.tools.report import couple_trips
from tests.offline import FREQTRADE, REPO, offline_env
from tests.shared_data import CCXT_MARKETS, DATADIR, MARKETS, require_shared

pytestmark = pytest.mark.slow
HOUR = pd.Timedelta(hours=1)


# Settings other than the default in one run: every rule of statarb.core.capital (the free
# stake shared among the couples entering, the per-couple cap, the volatility target),
# z-score windows tied to each couple's half-life and the Kalman hedge (a ratio that
# moves every candle: entries at their candle's ratio, couples held and judged at it).
TARGET_VOL = {"sizing": "target_vol", "target_daily_vol": 0.02, "max_couple_fraction": 0.6}
VARIANT = {"capital": TARGET_VOL, "walk_forward": {"z_half_lives": 4.0},
           "selection": {"hedge": "kalman", "kalman_delta": 1e-4}}


def run_backtest(tmp, overlay_section: dict | None = None, *, datadir: Path = DATADIR,
                 timeframe: str = "1h", pairs: list[str] | None = None,
                 ) -> tuple[pd.DataFrame, str]:
    """A real `freqtrade backtesting` of the shared data (or ``datadir`` at ``timeframe``,
    on ``pairs``), its exported trades and log."""
    require_shared()
    strategies = tmp / "strategies"
    strategies.mkdir()
    # A copy without any hyperopt parameter file: the run uses the strategy's defaults.
    shutil.copy(REPO / "strategies" / "CointPairsStrategy.py", strategies)
    results = tmp / "backtest_results"
    results.mkdir()
    overlay: list[str] = []
    if overlay_section is not None:  # a --config overlay, merged key by key
        (tmp / "overlay.json").write_text(json.dumps({"statarb": overlay_section}))
        overlay = ["--config", str(tmp / "overlay.json")]
    cmd = [
        sys.executable, "-m", "statarb.sim.run", "--datadir", str(DATADIR),
        "--markets", str(MARKETS), "--",
        FREQTRADE, "backtesting", "--config", "config.json", "--config", "config.offline.json",
        *overlay, "--timeframe", timeframe, *(["--pairs", *pairs] if pairs else []),
        "--datadir", str(datadir), "--strategy", "CointPairsStrategy",
        "--strategy-path", str(strategies), "--timerange", "20240101-20260101",
        "--export", "trades", "--backtest-directory", str(results), "--cache", "none",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=offline_env(),
                          capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert " - ERROR - " not in output, output[-4000:]
    (zip_path,) = sorted(results.glob("backtest-result-*.zip"))
    with zipfile.ZipFile(zip_path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".json") and "_config" not in n)
        doc = json.loads(archive.read(name))
    trades = pd.DataFrame(doc["strategy"]["CointPairsStrategy"]["trades"])
    for col in ("open_date", "close_date"):
        trades[col] = pd.to_datetime(trades[col], utc=True)
    parsed = pd.Series([parse_leg_tag(t, p) for t, p in zip(trades["enter_tag"], trades["pair"],
                                                           strict=True)], index=trades.index)
    assert parsed.notna().all(), trades.loc[parsed.isna(), ["pair", "enter_tag"]]
    trades["couple"] = parsed.str[0]
    trades["role"] = parsed.str[1]
    return trades, output


@pytest.fixture(scope="module")
def backtest(tmp_path_factory) -> tuple[pd.DataFrame, str]:
    return run_backtest(tmp_path_factory.mktemp("bt"))


def test_backtest_trades_couples(backtest) -> None:
    trades, _ = backtest
    assert trades["couple"].nunique() >= 10
    assert len(trades) >= 100


def test_legs_enter_together_and_exit_within_one_candle(backtest) -> None:
    trades, _ = backtest
    for (couple, opened), legs in trades.groupby(["couple", "open_date"]):
        y, x = couple.split("~")
        assert sorted(legs["role"]) == ["x", "y"], (couple, opened, legs)
        pairs = dict(zip(legs["role"], legs["pair"], strict=True))
        assert pairs == {"y": f"{y}/USDT:USDT", "x": f"{x}/USDT:USDT"}
        spread = legs["close_date"].max() - legs["close_date"].min()
        assert spread <= HOUR, (couple, opened, legs[["pair", "close_date", "exit_reason"]])
    # No lone legs, and no exit because a partner went missing.
    assert (trades.groupby(["couple", "open_date"]).size() == 2).all()
    assert "partner_exit" not in set(trades["exit_reason"])


@pytest.fixture(scope="module")
def workbench() -> Workbench:
    """The research evaluation over the same data (formations computed once)."""
    config = json.loads((REPO / "config.json").read_text())
    return Workbench.from_files(config, DATADIR, CCXT_MARKETS)


def test_trades_follow_the_core_plan(backtest, workbench) -> None:
    trades, output = backtest
    config = json.loads((REPO / "config.json").read_text())
    settings = StrategySettings.from_config(config, HOUR)
    frames = load_frames(DATADIR, [settings.regime_pair])
    ref = frames[settings.regime_pair]
    universe = workbench.universe(settings)
    _, blocked = regime_on_candles(ref.set_index("date")["close"], universe.index,
                                   settings.regime)
    params = SignalParams(pair_stop=settings.pair_stop, min_edge_ratio=settings.min_edge_ratio,
                          max_open_couples=config["max_open_trades"] // 2,
                          round_trip_cost=0.001)
    startup = startup_candles(settings.walk_forward, config, config["timeframe"])
    plan = build_plan(universe, params, blocked=blocked.to_numpy(),
                      tradable_from=universe.tradable_from(startup))
    idx = universe.index
    planned = {
        (t.couple, idx[t.entry_row + 1]): t for t in plan.trips if t.entry_row + 1 < len(idx)
    }
    done = trades.groupby(["couple", "open_date"]).agg(
        close=("close_date", "min"), reason=("exit_reason", "first")
    )
    executed = set(done.index)
    assert executed <= set(planned), sorted(executed - set(planned))[:5]
    # Planned trips Freqtrade did not take are explained in the log (a refused first leg).
    skipped = len(planned) - len(executed)
    assert skipped <= output.count("statarb: refuse") + output.count("statarb: skip")
    assert len(executed) >= 0.8 * len(planned), (len(executed), len(planned))
    for key, row in done.iterrows():
        trip = planned[key]
        if trip.exit_row >= 0 and trip.exit_row + 1 < len(idx):
            assert (row["close"], row["reason"]) == (idx[trip.exit_row + 1], trip.reason), key
        else:
            assert row["reason"] == "force_exit", key
    # Directions and the hedge ratio after rounding.
    for (couple, opened), legs in trades.groupby(["couple", "open_date"]):
        trip = planned[(couple, opened)]
        y = legs[legs["role"] == "y"].iloc[0]
        x = legs[legs["role"] == "x"].iloc[0]
        assert bool(y["is_short"]) == (trip.side == -1)
        # A positive hedge ratio hedges with the opposite direction.
        assert bool(x["is_short"]) == ((not y["is_short"]) == (trip.beta > 0))
        ratio = (x["amount"] * x["open_rate"]) / (y["amount"] * y["open_rate"])
        assert ratio / abs(trip.beta) - 1 == pytest.approx(0, abs=0.05), (couple, opened)


def assert_same_trades(ours: pd.DataFrame, trades: pd.DataFrame, least: int = 100) -> None:
    """The same legs (pair, side, candles, amounts, prices, reason) and each couple
    trip's P&L, fees and funding within 0.01% of its notional."""
    key = ["pair", "open_date"]
    theirs = trades.assign(open_date=pd.to_datetime(trades["open_date"], utc=True))
    merged = ours.merge(theirs, on=key, how="outer", suffixes=("", "_ft"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged.loc[merged["_merge"] != "both", key]
    assert len(ours) == len(trades) >= least
    for col in ("close_date", "exit_reason", "is_short", "enter_tag"):
        left, right = merged[col], merged[f"{col}_ft"]
        if col == "close_date":
            right = pd.to_datetime(right, utc=True)
        bad = merged.loc[left != right, [*key, col, f"{col}_ft"]]
        assert bad.empty, bad.head()
    for col in ("amount", "open_rate", "close_rate"):
        np.testing.assert_allclose(merged[col], merged[f"{col}_ft"], rtol=1e-9, err_msg=col)
    a, b = couple_trips(ours), couple_trips(theirs)
    both = a.merge(b, on=["couple", "open_date"], suffixes=("", "_ft"))
    assert len(both) == len(a) == len(b)
    notional = both["notional_y_ft"] + both["notional_x_ft"]
    for col in ("profit_abs", "fees", "funding"):
        error = ((both[col] - both[f"{col}_ft"]).abs() / notional).max()
        assert error < 1e-4, (col, error)
    # Funding is really charged (a zero on both sides would hide a broken funding book).
    assert (both["funding_ft"] != 0).mean() > 0.5


def test_research_engine_reproduces_the_backtest(backtest, workbench) -> None:
    """The research evaluation makes Freqtrade's trades (:func:`assert_same_trades`)."""
    trades, _ = backtest
    config = json.loads((REPO / "config.json").read_text())
    outcome = workbench.run(config["statarb"], {})
    assert workbench.fee == pytest.approx(float(trades["fee_open"].iloc[0]))
    assert_same_trades(outcome.legs, trades)
    assert outcome.figures["all"]["profit_abs"] == pytest.approx(trades["profit_abs"].sum(),
                                                                 abs=1e-6 * len(trades))


def test_a_variant_is_the_same_in_freqtrade_and_research(
        backtest, workbench, tmp_path_factory) -> None:
    """A variant with a non-default ``statarb.core.capital`` rule, half-life z windows and
    the Kalman hedge trades the same way in a real Freqtrade backtest (as a --config
    overlay) as in the research engine, and its sizing really differs: more margin per
    couple than two of Freqtrade's slots, never more than the cap."""
    trades, _ = run_backtest(tmp_path_factory.mktemp("bt_variant"), VARIANT)
    config = json.loads((REPO / "config.json").read_text())
    section = {**config["statarb"], "capital": TARGET_VOL,
               "walk_forward": {**config["statarb"]["walk_forward"], **VARIANT["walk_forward"]},
               "selection": {**config["statarb"]["selection"], **VARIANT["selection"]}}
    outcome = workbench.run(section, {})
    # Larger couples entering on one candle never starve a first leg's partner.
    assert (trades.groupby(["couple", "open_date"]).size() == 2).all()
    assert "partner_exit" not in set(trades["exit_reason"])
    assert_same_trades(outcome.legs, trades)
    default, _ = backtest
    margin = trades.groupby(["couple", "open_date"])["stake_amount"].sum()
    slots = default.groupby(["couple", "open_date"])["stake_amount"].sum()
    assert margin.median() > 1.5 * slots.median(), (margin.median(), slots.median())
    wallet = config["dry_run_wallet"] * config["tradable_balance_ratio"]
    growth = 1 + max(trades["profit_abs"].cumsum().max(), 0.0) / wallet
    assert margin.max() <= TARGET_VOL["max_couple_fraction"] * wallet * growth * (1 + 1e-6)


@pytest.fixture(scope="module")
def data15m(tmp_path_factory) -> tuple[Path, list[str], dict[str, float]]:
    """The 5m data at 15m (downloaded through the simulator, as a user makes it), the
    whitelist's pairs that have it, and the per-coin spread costs of the 5m bars."""
    from statarb.tools.spread import estimates
    from statarb.tools.timeframe_data import datadir_for, pairs_with_data
    from tests.shared_data import DATADIR_5M

    datadir = datadir_for(DATADIR_5M, "15m", tmp_path_factory.mktemp("data15m"), MARKETS)
    whitelist = json.loads((REPO / "config.json").read_text())["exchange"]["pair_whitelist"]
    pairs = pairs_with_data(MarketData(DATADIR_5M, MARKETS), whitelist)
    costs = {coin: row["half_spread"] for coin, row in estimates(DATADIR_5M, "5m").items()}
    return datadir, pairs, costs


@pytest.mark.parametrize("spread", [False, True], ids=["fees", "fees+spread"])
def test_the_research_engine_reproduces_a_15m_backtest_of_the_5m_data(
        tmp_path_factory, data15m, spread: bool) -> None:
    """At 15m, Freqtrade's trades and the research engine's are the same legs, each trip's
    P&L, fees and funding within 0.01% of its notional, as at 1h; with the spread costs
    (``statarb.costs.half_spread``) too, each fill's fee rate then being the fee plus its
    coin's half-spread in both."""
    datadir, pairs, costs = data15m
    section = {"costs": {"half_spread": costs}} if spread else None
    trades, _ = run_backtest(tmp_path_factory.mktemp("bt15m"), section, datadir=datadir,
                             timeframe="15m", pairs=pairs)
    assert (trades.groupby(["couple", "open_date"]).size() == 2).all()
    assert (trades["open_date"].dt.minute % 15 == 0).all()
    config = json.loads((REPO / "config.json").read_text())
    config = {**config, "timeframe": "15m",
              "exchange": {**config["exchange"], "pair_whitelist": pairs}}
    bench = Workbench.from_files(config, datadir, CCXT_MARKETS)
    want = trades["pair"].map(
        lambda p: bench.fee + (costs[p.split("/")[0]] if spread else 0.0))
    np.testing.assert_allclose(trades["fee_open"], want, rtol=1e-12)
    np.testing.assert_allclose(trades["fee_close"], want, rtol=1e-12)
    outcome = bench.run({**config["statarb"], **(section or {})}, {})
    assert_same_trades(outcome.legs, trades, least=10)

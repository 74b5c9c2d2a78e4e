"""CointegrationFilter: the selection function on fetched candles, publishing, bad input,
and registration with the plain `freqtrade` command."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from freqtrade.enums import RunMode
from freqtrade.exceptions import OperationalException
from freqtrade.persistence import init_db

from statarb.core import published
from statarb.core.selection import SelectionParams, choose_couples
from statarb.core.walkforward import WalkForwardParams, from_couples, walk_forward
from tests.offline import REPO
from tests.shared_data import FUTURES, coins

END = pd.Timestamp("2026-01-01", tz="UTC")  # formation window ends here
NAMES = ["ADA", "ALGO", "AVAX", "BTC", "DOGE", "ETH", "LINK", "LTC", "NEAR", "SOL", "VET", "XRP"]


def _load_class() -> type:
    spec = importlib.util.spec_from_file_location(
        "CointegrationFilter", REPO / "pairlists" / "CointegrationFilter.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CointegrationFilter


class FakeExchange:
    """What the filter asks of Freqtrade's exchange: candles for the lookback."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = frames
        self.calls: list[tuple[list, int]] = []
        self.fail = False

    def refresh_ohlcv_with_cache(self, pairs: list, *, lookback_period: int) -> dict:
        self.calls.append((pairs, lookback_period))
        if self.fail:
            raise TimeoutError("exchange timed out")
        return {p: self.frames[p[0]].iloc[-(lookback_period + 1):] for p in pairs
                if p[0] in self.frames}


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    out = {}
    for c in NAMES:
        f = pd.read_feather(FUTURES / f"{c}_USDT_USDT-1h-futures.feather")
        out[f"{c}/USDT:USDT"] = f[f["date"] < END].reset_index(drop=True)
    return out


@pytest.fixture
def make_filter(tmp_path: Path):
    init_db("sqlite://")
    cls = _load_class()

    def make(exchange: Any, statarb: dict | None = None, **params: Any) -> Any:
        config = {"timeframe": "1h", "candle_type_def": "futures", "user_data_dir": tmp_path,
                  "runmode": RunMode.DRY_RUN, "statarb": statarb or {}}
        pl_config = {"method": "CointegrationFilter", "correction": "none", **params}
        return cls(exchange, None, config, pl_config, 1)

    return make


def test_selection_equals_the_selection_function_and_is_published(make_filter, frames,
                                                                  tmp_path: Path) -> None:
    exchange = FakeExchange(frames)
    pl = make_filter(exchange, lookback_days=60, max_couples=3)
    pairs = list(frames)
    whitelist = pl.filter_pairlist(pairs, {})
    # The same function on the same window, computed here independently of the filter.
    window = pd.DataFrame({
        p.split("/")[0]: np.log(f.set_index("date")["close"].iloc[-1440:])
        for p, f in frames.items()
    })
    expected = choose_couples(window, SelectionParams(correction="none", max_couples=3))
    assert len(expected) >= 1
    assert whitelist == [f"{c}/USDT:USDT" for r in expected.itertuples() for c in (r.y, r.x)]
    # One fetch for all pairs, 60 days of 1h candles (more than one exchange page).
    assert exchange.calls == [([(p, "1h", "futures") for p in pairs], 1440)]
    doc = json.loads((tmp_path / published.FILE_NAME).read_text())
    assert [c["name"] for c in doc["couples"]] == [f"{r.y}~{r.x}" for r in expected.itertuples()]
    assert doc["couples"][0]["beta"] == pytest.approx(expected["beta"].iloc[0])
    assert pd.Timestamp(doc["formation_end"]) == END
    assert pd.Timestamp(doc["formation_start"]) == END - pd.Timedelta(hours=1440)
    assert published.SelectionFile(tmp_path / published.FILE_NAME).latest() == pl.selection
    # Between refreshes it is cached: no new fetch.
    assert pl.filter_pairlist(pairs, {}) == whitelist
    assert len(exchange.calls) == 1


def test_stable_selection_fetches_the_earlier_formations_too(make_filter, frames,
                                                             tmp_path: Path) -> None:
    """stable_in of stable_of: the filter fetches stable_of - 1 refreshes more candles and
    selects exactly what the selection function selects on that longer panel."""
    exchange = FakeExchange(frames)
    pl = make_filter(exchange, lookback_days=30, max_couples=3, stable_in=2, stable_of=3,
                     refresh_period=86400, hedge="tls")
    whitelist = pl.filter_pairlist(list(frames), {})
    history = 720 + 2 * 24
    assert exchange.calls[0][1] == history
    panel = pd.DataFrame({
        p.split("/")[0]: np.log(f.set_index("date")["close"].iloc[-history:])
        for p, f in frames.items()
    })
    expected = choose_couples(panel, SelectionParams(
        correction="none", max_couples=3, stable_in=2, stable_of=3, hedge="tls"), step=24)
    assert whitelist == [f"{c}/USDT:USDT" for r in expected.itertuples() for c in (r.y, r.x)]
    doc = json.loads((tmp_path / published.FILE_NAME).read_text())
    assert pd.Timestamp(doc["formation_start"]) == END - pd.Timedelta(hours=720)
    with pytest.raises(OperationalException, match="refresh_period=0 s must be at least"):
        make_filter(exchange, stable_of=2, refresh_period=0)


def test_a_kalman_selection_is_filtered_on_in_the_bot_as_in_the_backtest(
        make_filter, frames, tmp_path: Path) -> None:
    """hedge kalman: the filter's state at the formation end is published with each
    couple, and the bot's universe built from it a few days later (the strategy's
    dry-run path) has the ratios and z-scores of the walk-forward formation that starts
    at the same time."""
    end = pd.Timestamp("2025-12-09", tz="UTC")  # three couples; the data ends at END
    exchange = FakeExchange({p: f[f["date"] < end] for p, f in frames.items()})
    settings = {"max_couples": 3, "hedge": "kalman", "kalman_delta": 1e-4}
    make_filter(exchange, lookback_days=60, **settings).filter_pairlist(list(frames), {})
    selection = published.read(tmp_path / published.FILE_NAME)
    assert selection.couples and all(c.kalman for c in selection.couples)
    later = {}
    for c in NAMES:
        f = pd.read_feather(FUTURES / f"{c}_USDT_USDT-1h-futures.feather")
        keep = (f["date"] >= end - pd.Timedelta(hours=1440)) & (
            f["date"] < end + pd.Timedelta(hours=72))
        later[c] = f.loc[keep, ["date", "open", "close"]].reset_index(drop=True)
    wf = WalkForwardParams()
    backtest = walk_forward(later, SelectionParams(correction="none", **settings), wf)
    formation = backtest.formations[0]
    assert formation.time == end and formation.beta is not None
    couples = selection.couples_frame(later, 1.0)
    row = selection.filter_row(backtest.index)
    assert row == formation.start
    bot = from_couples(later, couples, wf, row, filter_from=row).formations[0]
    assert couples[["y", "x"]].values.tolist() == formation.couples[["y", "x"]].values.tolist()
    assert bot.beta is not None
    np.testing.assert_allclose(bot.beta[:, :72], formation.beta[:, :72], rtol=1e-9)
    np.testing.assert_allclose(bot.z[:, :72], formation.z[:, :72], rtol=1e-7, atol=1e-9)
    assert np.abs(np.diff(bot.beta[:, :72], axis=1)).max() > 0  # it did move


def test_a_reference_coin_is_offered_once_for_all_its_couples(make_filter, frames) -> None:
    end = pd.Timestamp("2025-12-09", tz="UTC")
    cut = {p: f[f["date"] < end] for p, f in frames.items()}
    whitelist = make_filter(FakeExchange(cut), reference="ETH").filter_pairlist(list(cut), {})
    window = pd.DataFrame({p.split("/")[0]: np.log(f.set_index("date")["close"].iloc[-1440:])
                           for p, f in cut.items()})
    expected = choose_couples(window, SelectionParams(correction="none", reference="ETH"))
    assert len(expected) >= 1 and all("ETH" in (r.y, r.x) for r in expected.itertuples())
    assert whitelist == list(dict.fromkeys(
        f"{c}/USDT:USDT" for r in expected.itertuples() for c in (r.y, r.x)))
    couple = published.Couple("LINK/USDT:USDT", "ETH/USDT:USDT", 0.1, 1.1, 5.0, 0.01, 0.02, -4.0)
    two = published.Selection(
        (couple, published.Couple("SOL/USDT:USDT", "ETH/USDT:USDT", 0.2, 0.9, 6.0, 0.01,
                                  0.02, -4.1)), end, end, end, "1h")
    assert two.pairs == ["LINK/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]


def test_bad_coins_are_skipped_and_failures_keep_the_last_selection(
    make_filter, frames, caplog
) -> None:
    broken = dict(frames)
    broken["ETH/USDT:USDT"] = frames["ETH/USDT:USDT"].drop(index=[len(frames["ETH/USDT:USDT"]) - 5])
    broken["SOL/USDT:USDT"] = frames["SOL/USDT:USDT"].iloc[-200:]
    exchange = FakeExchange(broken)
    pl = make_filter(exchange, refresh_period=0)
    with caplog.at_level(logging.INFO):
        first = pl.filter_pairlist(list(broken), {})
    assert "ETH/USDT:USDT" not in first and "SOL/USDT:USDT" not in first
    assert set(pl.selection.skipped) == {"ETH/USDT:USDT", "SOL/USDT:USDT"}
    assert "skipped ETH/USDT:USDT" in caplog.text and "skipped SOL/USDT:USDT" in caplog.text
    exchange.fail = True
    with caplog.at_level(logging.WARNING):
        assert pl.filter_pairlist(list(broken), {}) == first
    assert "keeping the last selection" in caplog.text


def test_a_restarted_bot_resumes_its_own_fresh_selection_without_fetching(
    make_filter, frames, tmp_path: Path
) -> None:
    pairs = list(frames)
    first = make_filter(FakeExchange(frames), max_couples=3)
    whitelist = first.filter_pairlist(pairs, {})
    # The bot restarts: a new filter with the same settings resumes without a download.
    again = FakeExchange(frames)
    resumed = make_filter(again, max_couples=3)
    assert resumed.selection == first.selection
    assert published.read(tmp_path / published.FILE_NAME) == first.selection
    assert resumed.filter_pairlist(pairs, {}) == whitelist
    assert again.calls == []
    # Other settings, other pairs offered, or a selection due for a refresh: select afresh.
    other = FakeExchange(frames)
    assert make_filter(other, max_couples=2).selection is None
    make_filter(other, max_couples=2).filter_pairlist(pairs, {})
    assert len(other.calls) == 1
    offered = FakeExchange(frames)
    make_filter(offered, max_couples=2).filter_pairlist(pairs[:-1], {})
    assert len(offered.calls) == 1
    stale = FakeExchange(frames)
    assert make_filter(stale, max_couples=2, refresh_period=0).selection is None
    # A corrupt file is reported and ignored.
    (tmp_path / published.FILE_NAME).write_text("{not json")
    assert make_filter(FakeExchange(frames), max_couples=2).selection is None


def test_a_fetch_straddling_a_candle_close_keeps_every_pair(make_filter, frames) -> None:
    # Half the pairs were fetched after the hour: they have one more closed candle.
    later = {p: pd.concat([f, f.iloc[[-1]].assign(date=f["date"].iloc[-1] + pd.Timedelta(
        hours=1))], ignore_index=True) if i % 2 else f for i, (p, f) in enumerate(frames.items())}
    straddled = make_filter(FakeExchange(later), max_couples=3)
    straddled.filter_pairlist(list(frames), {})
    assert straddled.selection.skipped == {}
    assert pd.Timestamp(straddled.selection.formation_end) == END  # the common last candle
    aligned = make_filter(FakeExchange(frames), max_couples=3, refresh_period=0)
    aligned.filter_pairlist(list(frames), {})
    assert straddled.selection.couples == aligned.selection.couples


def test_empty_selection_is_logged_and_leaves_no_pairs(make_filter, frames, caplog) -> None:
    pl = make_filter(FakeExchange(frames), max_pvalue=1e-12)
    with caplog.at_level(logging.WARNING):
        assert pl.filter_pairlist(list(frames), {}) == []
    assert "no couple passes the filters" in caplog.text


def test_backtesting_passes_pairs_through(make_filter, frames) -> None:
    pl = make_filter(FakeExchange(frames))
    pl._config["runmode"] = RunMode.BACKTEST
    assert pl.filter_pairlist(["BTC/USDT:USDT", "ETH/USDT:USDT"], {}) == [
        "BTC/USDT:USDT", "ETH/USDT:USDT"
    ]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"lookbak_days": 3}, r"unknown parameter\(s\) \['lookbak_days'\]"),
        ({"lookback_days": 2}, "lookback_days=2"),
        ({"max_pvalue": 1.5}, "max_pvalue=1.5"),
        ({"timeframe": "7x"}, "timeframe='7x'"),
        ({"refresh_period": -1}, "refresh_period=-1"),
    ],
)
def test_parameters_are_validated_with_clear_messages(make_filter, params, match) -> None:
    with pytest.raises(OperationalException, match=match):
        make_filter(FakeExchange({}), **params)


def test_the_selection_is_read_from_the_statarb_section_and_a_clash_is_refused(
        make_filter) -> None:
    """One place for the selection: the pairlist reads statarb.selection (what the
    strategy's walk-forward reads), and the same key set differently in its own entry is
    refused by name, never silently preferred."""
    pl = make_filter(FakeExchange({}), statarb={"selection": {"max_couples": 3,
                                                               "min_crossings": 20}})
    assert (pl._params.max_couples, pl._params.min_crossings) == (3, 20)
    same = make_filter(FakeExchange({}), statarb={"selection": {"max_couples": 3}},
                       max_couples=3)
    assert same._params.max_couples == 3
    with pytest.raises(OperationalException,
                       match=r"max_couples=4 here but statarb\.selection\.max_couples=3"):
        make_filter(FakeExchange({}), statarb={"selection": {"max_couples": 3}},
                    max_couples=4)


def test_describes_itself_like_freqtrade_filters(make_filter) -> None:
    cls = _load_class()
    params = cls.available_parameters()
    assert {"lookback_days", "refresh_period", "max_pvalue", "max_couples"} <= set(params)
    assert all({"type", "default", "description", "help"} <= set(v) for v in params.values())
    assert "cointegrated couples" in make_filter(FakeExchange({})).short_desc()


@pytest.mark.slow
def test_plain_freqtrade_python_accepts_the_pairlist_name() -> None:
    """The .pth hook `make install` writes registers the name in a fresh interpreter."""
    code = (
        "import freqtrade.constants as c, freqtrade.resolvers.pairlist_resolver as r;"
        "print('CointegrationFilter' in c.AVAILABLE_PAIRLISTS);"
        "print(any(p.name == 'pairlists' for p in r.PairListResolver.build_search_paths({})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True"], out
    names = sorted(p.name for p in (REPO / "pairlists").glob("*.py"))
    assert "CointegrationFilter.py" in names and coins()


def test_the_strategy_reads_what_the_pairlist_publishes_from_its_file(
        make_filter, frames, tmp_path: Path, caplog) -> None:
    """The one channel between the two plugins is the published file: a new selection is
    seen once the file is replaced, and a damaged file keeps the last good one."""
    board = published.SelectionFile(tmp_path / published.FILE_NAME)
    assert board.latest() is None
    first = make_filter(FakeExchange(frames), max_couples=3)
    first.filter_pairlist(list(frames), {})
    assert board.latest() == first.selection
    other = published.Selection((), first.selection.formation_start,
                                first.selection.formation_end, first.selection.created,
                                "1h")
    published.publish(other, tmp_path / published.FILE_NAME)
    assert board.latest() == other
    (tmp_path / published.FILE_NAME).write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert board.latest() == other
    assert "keeping the last selection" in caplog.text

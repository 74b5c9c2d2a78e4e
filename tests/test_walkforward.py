"""Walk-forward selection on the real shared data: no look-ahead, one selection function."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from statarb.core.cointegration import RESULT_COLUMNS
from statarb.core.selection import SelectionParams, choose_couples
from statarb.core.signals import SignalParams, build_plan, couple_pnl, exit_reason, latest_zscore
from statarb.core.walkforward import WalkForwardParams, from_couples, walk_forward
from tests.shared_data import FUTURES, coins

WF = WalkForwardParams()  # 60-day formation, daily re-formation, z over 100 candles
SEL = SelectionParams(correction="none")  # more couples: a stronger test


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    out = {}
    for c in coins():
        f = pd.read_feather(FUTURES / f"{c}_USDT_USDT-1h-futures.feather")
        f = f[(f["date"] >= "2025-03-01") & (f["date"] < "2025-10-01")]
        out[c] = f[["date", "open", "close"]].reset_index(drop=True)
    return out


def _cut(frames: dict[str, pd.DataFrame], end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    return {c: f[f["date"] < end].reset_index(drop=True) for c, f in frames.items()}


@pytest.mark.parametrize(("wf", "sel"), [
    (WF, SEL),
    (WalkForwardParams(z_half_lives=4.0), SelectionParams(correction="none", hedge="tls")),
    (WF, SelectionParams(correction="none", stable_in=2, stable_of=3)),
    (WF, SelectionParams(correction="none", hedge="kalman", kalman_delta=1e-4)),
], ids=["OLS, fixed z window", "TLS, z window of 4 half-lives", "stable in 2 of 3",
        "Kalman ratio"])
def test_truncating_the_data_changes_nothing_before_the_cut(frames, wf, sel) -> None:
    full = walk_forward(frames, sel, wf, min_history=wf.formation + wf.z_window)
    cut_at = pd.Timestamp("2025-08-11 13:00", tz="UTC")
    part = walk_forward(_cut(frames, cut_at), sel, wf, min_history=wf.formation + wf.z_window)
    n = int(part.index.searchsorted(cut_at))
    assert n == len(part.index) and full.index[:n].equals(part.index)

    before = [f for f in full.formations if f.start < n]
    assert len(before) == len(part.formations) >= 60
    assert sum(len(f.couples) for f in before) >= 30  # the test compares real selections
    for a, b in zip(before, part.formations, strict=True):
        pd.testing.assert_frame_equal(a.couples, b.couples)
        m = n - a.start  # values of candles before the cut
        np.testing.assert_array_equal(a.z[:, :m], b.z[:, :m])
        np.testing.assert_array_equal(a.spread_std[:, :m], b.spread_std[:, :m])
        assert (a.beta is None) == (b.beta is None)
        assert (a.beta is not None) == (sel.hedge == "kalman" and len(a.couples) > 0)
        if a.beta is not None:
            np.testing.assert_array_equal(a.beta[:, :m], b.beta[:, :m])

    params = SignalParams()
    plan_full, plan_part = build_plan(full, params), build_plan(part, params)
    trips_full = [t for t in plan_full.trips if t.entry_row < n]
    assert len(trips_full) >= 20
    assert [(t.couple, t.entry_row, t.side, t.beta) for t in trips_full] == [
        (t.couple, t.entry_row, t.side, t.beta) for t in plan_part.trips
    ]
    # Exits decided before the cut are the same; trips still open at the cut stay open.
    for a, b in zip(trips_full, plan_part.trips, strict=True):
        if 0 <= a.exit_row < n:
            assert (a.exit_row, a.reason) == (b.exit_row, b.reason)
        else:
            assert b.exit_row == -1
    for coin in full.coins:
        assert plan_full.signals[coin][: len(plan_part.signals[coin])] == plan_part.signals[coin]
        np.testing.assert_array_equal(plan_full.views[coin].z[:n], plan_part.views[coin].z)


def test_where_the_data_starts_changes_no_formation_after(frames) -> None:
    """The sliding engine's sums carry rounding from the windows before; the couples' hedge
    ratios and z-scores must not (Freqtrade's recursive-analysis compares them exactly)."""
    begin = pd.Timestamp("2025-03-12 07:00", tz="UTC")  # not on a re-formation's cadence
    late = {c: f[f["date"] >= begin].reset_index(drop=True) for c, f in frames.items()}
    full, part = walk_forward(frames, SEL, WF), walk_forward(late, SEL, WF)
    common = {f.time: f for f in part.formations}
    pairs = [(f, common[f.time]) for f in full.formations if f.time in common]
    assert len(pairs) >= 60 and sum(len(a.couples) for a, _ in pairs) >= 30
    stats = list(RESULT_COLUMNS)
    for a, b in pairs:
        # The statistics and the series are exact; the screening verdicts' p-values
        # (pvalue_other, pvalue_couple, pvalue_adj) are the scan's, equal to rounding.
        pd.testing.assert_frame_equal(a.couples[stats], b.couples[stats], check_exact=True)
        pd.testing.assert_frame_equal(a.couples, b.couples, check_exact=False, rtol=1e-9)
        np.testing.assert_array_equal(a.z, b.z)
        np.testing.assert_array_equal(a.spread_std, b.spread_std)


def test_each_formation_is_the_selection_function_on_the_window_before_it(frames) -> None:
    u = walk_forward(frames, SEL, WF)
    f = next(f for f in u.formations if len(f.couples) >= 2)
    assert f.time.hour == 0  # re-formations are anchored at 00:00 UTC
    window = pd.DataFrame(
        np.log(u.closes[f.start - WF.formation:f.start, [u.col(c) for c in f.universe]]),
        columns=f.universe,
    )
    assert window.notna().all().all()
    pd.testing.assert_frame_equal(choose_couples(window, SEL), f.couples)
    # Cadence: one re-formation every 24 candles.
    starts = [g.start for g in u.formations]
    assert set(np.diff(starts)) == {24}


def test_a_coin_needs_min_history_and_data_through_the_span(frames) -> None:
    late = dict(frames)
    # A coin whose data stops early (a delisting) is not chosen within a span of its end.
    late["ETH"] = frames["ETH"][frames["ETH"]["date"] < "2025-08-01"].reset_index(drop=True)
    u = walk_forward(late, SEL, WF, min_history=WF.formation + WF.z_window)
    end = u.index.searchsorted(pd.Timestamp("2025-08-01", tz="UTC"))
    for f in u.formations:
        if "ETH" in f.universe:
            assert f.start + WF.span <= end
        first = {c: int(np.argmax(np.isfinite(u.closes[:, u.col(c)]))) for c in f.universe}
        assert all(f.start - row >= WF.formation + WF.z_window for row in first.values())
    assert any("ETH" in f.universe for f in u.formations)


def test_walk_forward_params_validation() -> None:
    with pytest.raises(ValueError, match="z_window=5"):
        WalkForwardParams(z_window=5)
    with pytest.raises(ValueError, match="formation=50"):
        WalkForwardParams(formation=50)
    with pytest.raises(ValueError, match="min_history=10"):
        walk_forward({"A": pd.DataFrame({"date": [], "open": [], "close": []})}, SEL, WF,
                     min_history=10)


@pytest.mark.parametrize("engine", ["sliding", "batch"])
def test_a_panel_shorter_than_a_formation_window_has_no_formation(frames, engine) -> None:
    # What Freqtrade's recursive-analysis and a fresh dry-run hand the strategy.
    end = min(f["date"].min() for f in frames.values()) + pd.Timedelta(hours=WF.formation // 2)
    u = walk_forward(_cut(frames, end), SEL, WF, engine=engine)
    assert u.formations == []
    assert len(u.index) == WF.formation // 2


def test_no_couple_enters_before_freqtrade_trades_both_coins(frames) -> None:
    """Selection uses every coin whose candles fill the window; entries wait until
    Freqtrade's backtesting trades both legs (first candle + startup_candle_count)."""
    u = walk_forward(frames, SEL, WF)
    startup = WF.formation + WF.z_window
    tradable = u.tradable_from(startup)
    for c in u.coins:
        assert tradable[c] == int(np.argmax(np.isfinite(u.closes[:, u.col(c)]))) + startup
    assert len(set(tradable.values())) >= 2  # some coins start later than others
    free = build_plan(u, SignalParams())
    gated = build_plan(u, SignalParams(), tradable_from=tradable)
    early = [t for t in free.trips if t.entry_row < max(tradable[t.y], tradable[t.x])]
    assert early, "the data must hold entries the rule removes"
    assert gated.trips and all(
        t.entry_row >= max(tradable[t.y], tradable[t.x]) for t in gated.trips)


def test_z_window_tied_to_the_half_life() -> None:
    wf = WalkForwardParams(z_window=100, z_half_lives=4.0)
    assert [wf.window_for(h) for h in (1.0, 7.3, 24.0, 80.0)] == [10, 30, 96, 100]
    assert WalkForwardParams().window_for(7.3) == 100  # 0: the fixed window
    for bad in (-1.0, 51.0, "4"):
        with pytest.raises(ValueError, match="z_half_lives="):
            WalkForwardParams(z_half_lives=bad)


def test_a_kalman_couple_enters_at_its_candles_ratio_and_is_held_at_it(frames) -> None:
    """With the Kalman hedge an entry takes the filter's ratio of its candle, and the
    couple is then judged on the spread it holds (that ratio, fixed): a naive replay of
    the exit rules with latest_zscore (what a running bot computes) finds the plan's
    exits. The live universe built from a formation's couples filters the same way."""
    sel = SelectionParams(correction="none", hedge="kalman", kalman_delta=1e-4)
    u = walk_forward(frames, sel, WF)
    params = SignalParams()
    plan = build_plan(u, params)
    assert len(plan.trips) >= 15
    moved = 0
    for trip in plan.trips:
        f = u.formations[trip.formation]
        j = trip.entry_row - f.start
        assert f.beta is not None and f.alpha is not None
        assert trip.beta == f.beta[trip.slot, j] and trip.alpha == f.alpha[trip.slot, j]
        moved += trip.beta != float(f.couples["beta"].iloc[trip.slot])
        iy, ix = u.col(trip.y), u.col(trip.x)
        w = u.params.window_for(trip.half_life)

        def z_at(t: int, beta: float, w: int = w, iy: int = iy, ix: int = ix) -> float:
            return latest_zscore(np.log(u.closes[t - w + 1:t + 1, iy]),
                                 np.log(u.closes[t - w + 1:t + 1, ix]), beta)

        assert z_at(trip.entry_row, trip.beta) == pytest.approx(trip.z_entry, rel=1e-9)
        if trip.exit_row < 0 or trip.reason == "horizon":
            continue
        found = None
        for t in range(trip.entry_row + 1, trip.exit_row + 1):
            pnl = couple_pnl(trip.side, trip.beta, u.opens[trip.entry_row + 1, iy],
                             u.opens[trip.entry_row + 1, ix], u.closes[t, iy], u.closes[t, ix])
            found = exit_reason(z_at(t, trip.beta), trip.side, t - trip.entry_row,
                                trip.half_life, pnl, params)
            if found:
                assert (t, found) == (trip.exit_row, trip.reason), trip
                break
        assert found == trip.reason, trip
    assert moved == len(plan.trips)  # the ratio moved on from the formation's

    f = next(f for f in u.formations if len(f.couples) >= 2)
    live = from_couples(frames, f.couples, WF, f.start, filter_from=f.start)
    g = live.formations[0]
    assert g.beta is not None and f.beta is not None
    np.testing.assert_allclose(g.beta[:, :WF.span], f.beta, rtol=1e-12)
    np.testing.assert_allclose(g.z[:, :WF.span], f.z, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="filter_from"):
        from_couples(frames, f.couples, WF, f.start)

"""The sliding (incremental) Engle-Granger engine against the batch engine and statsmodels.

The walk-forward slides its coin-level sums from one formation window to the next
(statarb.core.sliding.SlidingScan). These tests hold it to the batch engine, window by window
over hundreds of slides on the real shared data (coins listed part-way through included),
to statsmodels' coint on sampled couples, and the walk-forward it drives to the batch
walk-forward: the same couples, hedge ratios, t-statistics and p-values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.stattools import coint

from statarb.core.cointegration import engle_granger
from statarb.core.selection import SelectionParams, screen_couples, select_couples
from statarb.core.sliding import SlidingScan
from statarb.core.walkforward import WalkForwardParams, align_closes, price_matrix, walk_forward
from tests.shared_data import FUTURES, coins

WINDOW = 1440


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    out = {}
    for c in coins():
        f = pd.read_feather(FUTURES / f"{c}_USDT_USDT-1h-futures.feather")
        out[c] = f[["date", "open", "close"]].reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def panel(frames: dict[str, pd.DataFrame]) -> tuple[np.ndarray, list[str]]:
    index = align_closes(frames, pd.Timedelta(hours=1))
    return np.log(price_matrix(frames, index, "close")), list(frames)


def _batch(log_closes: np.ndarray, names: list[str], all_coins: list[str], end: int):  # type: ignore[no-untyped-def]
    cols = [all_coins.index(c) for c in names]
    window = pd.DataFrame(log_closes[end - WINDOW:end, cols], columns=names)
    return engle_granger(window, crossings=False), window


def _assert_tables_agree(slid: pd.DataFrame, batch: pd.DataFrame) -> tuple[float, float]:
    """Same couples and lags; returns the largest |p diff| and relative t-stat diff."""
    assert list(slid["y"]) == list(batch["y"]) and list(slid["x"]) == list(batch["x"])
    assert (slid["lag"].to_numpy() == batch["lag"].to_numpy()).all()
    np.testing.assert_allclose(slid["beta"], batch["beta"], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(slid["alpha"], batch["alpha"], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(slid["ret_corr"], batch["ret_corr"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(slid["half_life"], batch["half_life"], rtol=1e-8)
    t_s, t_b = slid["tstat"].to_numpy(), batch["tstat"].to_numpy()
    dp = float(np.max(np.abs(slid["pvalue"].to_numpy() - batch["pvalue"].to_numpy())))
    rel = float(np.max(np.abs(t_s - t_b) / np.maximum(np.abs(t_b), 1e-3)))
    return dp, rel


@pytest.mark.parametrize("rebuild_every", [30, 10**9])
def test_sliding_tables_equal_the_batch_engine_over_hundreds_of_slides(
    panel: tuple[np.ndarray, list[str]], rebuild_every: int
) -> None:
    """Every daily window of the shared data, slid (never rebuilt, or rebuilt every 30
    slides), checked against a fresh batch scan every 25th slide and at the last: p-values
    within 1e-9, and the drift stays far below that."""
    log_closes, names = panel
    scan = SlidingScan(log_closes, names, WINDOW, rebuild_every=rebuild_every)
    ends = list(range(WINDOW + 7, len(log_closes) + 1, 24))
    assert len(ends) > 600
    worst_p, worst_t, checked, grew = 0.0, 0.0, 0, False
    seen: set[str] = set()
    for i, end in enumerate(ends):
        table = scan.results(end)
        members = scan.complete(end)
        grew |= bool(seen) and not set(members) <= seen
        seen |= set(members)
        if i % 25 and i != len(ends) - 1:
            continue
        batch, _ = _batch(log_closes, members, names, end)
        dp, rel = _assert_tables_agree(table, batch)
        worst_p, worst_t, checked = max(worst_p, dp), max(worst_t, rel), checked + 1
    assert worst_p <= 1e-9 and worst_t <= 1e-8, (worst_p, worst_t)
    assert checked >= 25
    assert grew, "coins listed part-way through must enter the sliding sums"
    slides = scan.stats["slides"]
    assert slides >= len(ends) - 1 - (len(ends) // rebuild_every + 1)
    if rebuild_every > len(ends):
        assert scan.stats["rebuilds"] == 1  # one build, then only slides


def test_sliding_table_matches_statsmodels_on_sampled_couples(
    panel: tuple[np.ndarray, list[str]],
) -> None:
    log_closes, names = panel
    scan = SlidingScan(log_closes, names, WINDOW, rebuild_every=10**9)
    end = 0
    for end in range(WINDOW + 3, len(log_closes) - 2000, 24):
        scan.results(end)  # slide through a year and more
    table = scan.results(end)
    members = scan.complete(end)
    cols = {c: names.index(c) for c in members}
    rng = np.random.default_rng(1)
    worst = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in rng.choice(len(table), size=25, replace=False):
            y, x = table["y"].iloc[i], table["x"].iloc[i]
            ly = log_closes[end - WINDOW:end, cols[y]]
            lx = log_closes[end - WINDOW:end, cols[x]]
            t_ref, p_ref, _ = coint(ly, lx, trend="c", autolag="aic")
            assert table["tstat"].iloc[i] == pytest.approx(t_ref, rel=1e-8)
            worst = max(worst, abs(table["pvalue"].iloc[i] - p_ref))
    assert worst <= 1e-9


def test_a_pruning_scan_tests_the_second_orientation_only_where_the_first_passes(
    panel: tuple[np.ndarray, list[str]],
) -> None:
    log_closes, names = panel
    full = SlidingScan(log_closes, names, WINDOW)
    pruned = SlidingScan(log_closes, names, WINDOW, prune=0.05)
    for end in (len(log_closes) - 700, len(log_closes) - 700 + 24 * 5):
        a, b = full.results(end), pruned.results(end)
        order = {c: i for i, c in enumerate(full.complete(end))}
        first = np.array([order[y] < order[x] for y, x in zip(a["y"], a["x"], strict=True)])
        p_first = a.set_index(["y", "x"])["pvalue"]
        p_of_first = p_first.loc[[(y, x) if f else (x, y) for y, x, f in zip(
            a["y"], a["x"], first, strict=True)]].to_numpy()
        tested = first | (p_of_first <= 0.05)
        assert (b["lag"].to_numpy() >= 0).tolist() == tested.tolist()
        assert 0.2 < tested.mean() < 0.9  # both kinds of rows are there
        _assert_tables_agree(b[tested], a[tested])
        untested = b[~tested]
        assert untested[["tstat", "pvalue", "half_life", "spread_std"]].isna().all().all()
        np.testing.assert_array_equal(untested["beta"], a["beta"][~tested])
    with pytest.raises(ValueError, match="prune=0"):
        SlidingScan(log_closes, names, WINDOW, prune=0.0)


def test_members_and_windows_are_checked(panel: tuple[np.ndarray, list[str]]) -> None:
    log_closes, names = panel
    scan = SlidingScan(log_closes, names, WINDOW)
    end = WINDOW + 100
    absent = sorted(set(names) - set(scan.complete(end)))
    assert absent, "the early shared data lacks coins listed later"
    with pytest.raises(ValueError, match=absent[0]):
        scan.results(end, [scan.complete(end)[0], absent[0]])
    window = pd.DataFrame(log_closes[end - WINDOW:end, :2], columns=names[:2],
                          index=pd.date_range("2025-01-01", periods=WINDOW, freq="1h"))
    with pytest.raises(ValueError, match="indexed by row number"):
        scan(window)
    with pytest.raises(ValueError, match="rebuild_every"):
        SlidingScan(log_closes, names, WINDOW, rebuild_every=0)
    with pytest.raises(ValueError, match="window=10"):
        SlidingScan(log_closes, names, 10)
    # A subset of the members is a row filter of the same table.
    members = scan.complete(end)[:5]
    part = scan.results(end, members)
    batch, _ = _batch(log_closes, members, names, end)
    _assert_tables_agree(part, batch)


def test_uncounted_crossings_give_the_same_screen(panel: tuple[np.ndarray, list[str]]) -> None:
    """Counting crossings only for the couples that pass the other filters changes no
    verdict, reason or choice, and the counts it makes are the engine's."""
    log_closes, names = panel
    end = len(log_closes) - 500
    members = SlidingScan(log_closes, names, WINDOW).complete(end)
    lazy, window = _batch(log_closes, members, names, end)
    full = engle_granger(window)
    for params in (SelectionParams(), SelectionParams(correction="none", min_crossings=30)):
        a = screen_couples(full, params)
        b = screen_couples(lazy, params, window=window)
        for col in ("y", "x", "ok_pvalue", "ok_half_life", "ok_corr", "eligible", "selected",
                    "reason"):
            assert (a[col].to_numpy() == b[col].to_numpy()).all(), col
        counted = b["crossings"].to_numpy() >= 0
        assert counted.any() and not counted.all()
        assert (a["crossings"].to_numpy()[counted] == b["crossings"].to_numpy()[counted]).all()
        with pytest.raises(ValueError, match="uncounted"):
            screen_couples(lazy, params)
    lazy_chosen = select_couples(lazy, SelectionParams(correction="none"), window=window)
    full_chosen = select_couples(full, SelectionParams(correction="none"))
    assert len(lazy_chosen) >= 2
    # The spread's mean is 0 to rounding (summed over every point, or from the coins' sums
    # when crossings are not counted): the only column that is not identical.
    pd.testing.assert_frame_equal(lazy_chosen.drop(columns="spread_mean"),
                                  full_chosen.drop(columns="spread_mean"), check_exact=True)
    assert (np.abs(lazy_chosen["spread_mean"]) < 1e-12 * lazy_chosen["spread_std"]).all()


@pytest.mark.parametrize("selection", [SelectionParams(),
                                       SelectionParams(correction="none", stable_in=2,
                                                       stable_of=3)])
def test_walk_forward_sliding_equals_batch(
    frames: dict[str, pd.DataFrame], selection: SelectionParams
) -> None:
    """The strategy's walk-forward with the sliding engine (default) and the batch engine:
    the same couples at every re-formation, with their statistics to rounding."""
    part = {c: f[(f["date"] >= "2025-06-01") & (f["date"] < "2026-03-01")]
            .reset_index(drop=True) for c, f in frames.items()}
    part = {c: f for c, f in part.items() if len(f)}
    wf = WalkForwardParams()
    slid = walk_forward(part, selection, wf)
    batch = walk_forward(part, selection, wf, engine="batch")
    assert len(slid.formations) == len(batch.formations) > 150
    chosen = 0
    for a, b in zip(slid.formations, batch.formations, strict=True):
        assert a.start == b.start and a.universe == b.universe
        assert list(zip(a.couples["y"], a.couples["x"], strict=True)) == list(
            zip(b.couples["y"], b.couples["x"], strict=True))
        chosen += len(a.couples)
        for col, tol in (("beta", 1e-10), ("tstat", 1e-9), ("pvalue", 1e-9)):
            np.testing.assert_allclose(a.couples[col].to_numpy(float),
                                       b.couples[col].to_numpy(float), rtol=tol, atol=1e-12)
        np.testing.assert_allclose(a.z, b.z, rtol=1e-6, atol=1e-8)
    assert chosen > 50
    with pytest.raises(ValueError, match="engine='fast'"):
        walk_forward(part, selection, wf, engine="fast")

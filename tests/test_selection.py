"""Couple selection: recovery of planted couples, false positives, filters and greediness.

Synthetic panels have a known truth (hedge ratio, half-life, independence), so each test
checks the selection against that truth or against an independent re-implementation of
the documented rule, never against numbers copied from a previous run.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter
from statsmodels.stats.multitest import multipletests

from statarb.core.cointegration import RESULT_COLUMNS, engle_granger
from statarb.core.selection import SelectionParams, choose_couples, screen_couples, select_couples


def random_walk(n: int, rng: np.random.Generator, sd: float = 0.01, start: float = 0.0):
    return start + np.cumsum(rng.normal(0.0, sd, n))


def ar1(n: int, half_life: float, rng: np.random.Generator, sd: float = 0.01) -> np.ndarray:
    """Stationary AR(1) with the given half-life in candles and stationary sd ``sd``."""
    phi = 2.0 ** (-1.0 / half_life)
    eps = rng.normal(0.0, sd * math.sqrt(1.0 - phi**2), n)
    e0 = rng.normal(0.0, sd)
    return lfilter([1.0], [1.0, -phi], eps, zi=[phi * e0])[0]


def row(results: pd.DataFrame, y: str, x: str) -> pd.Series:
    hit = results[(results["y"] == y) & (results["x"] == x)]
    assert len(hit) == 1, (y, x, len(hit))
    return hit.iloc[0]


def couple_key(y: str, x: str) -> frozenset[str]:
    return frozenset((y, x))


# --------------------------------------------------------------------------------------
# 1. Recovery of planted couples
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("beta", "half_life", "seed"),
    [(0.5, 6, 1), (1.3, 6, 2), (2.0, 6, 3), (0.5, 12, 4), (1.3, 12, 5), (2.0, 12, 6)],
)
def test_engle_granger_recovers_planted_hedge_ratio_and_half_life(
    beta: float, half_life: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n = 8760
    alpha = 0.7
    x = random_walk(n, rng, start=3.0)
    e = ar1(n, half_life, rng)
    y = alpha + beta * x + e
    res = engle_granger(pd.DataFrame({"y": y, "x": x}))
    r = row(res, "y", "x")
    assert r["beta"] == pytest.approx(beta, rel=0.02)
    assert r["half_life"] == pytest.approx(half_life, rel=0.15)
    assert r["pvalue"] < 0.01
    assert r["nobs"] == n
    # The spread the engine reports is the planted one: same scale, mean zero by OLS.
    assert r["spread_std"] == pytest.approx(e.std(ddof=1), rel=0.1)
    assert abs(r["spread_mean"]) < 1e-9
    # And the default selection keeps it (half-life 6-12 h, strongly correlated returns).
    chosen = choose_couples(pd.DataFrame({"y": y, "x": x}), SelectionParams())
    assert len(chosen) == 1
    assert couple_key(chosen.iloc[0]["y"], chosen.iloc[0]["x"]) == couple_key("y", "x")


# --------------------------------------------------------------------------------------
# 2. False positives on independent random walks
# --------------------------------------------------------------------------------------


def test_false_positive_rate_on_independent_random_walks() -> None:
    rng = np.random.default_rng(20240501)
    n_couples, n = 500, 1440
    walks = np.cumsum(rng.normal(0.0, 0.01, (n_couples, 2, n)), axis=2)
    tables = []
    raw_rejections = 0
    for i in range(n_couples):
        panel = pd.DataFrame({f"y{i}": walks[i, 0], f"x{i}": walks[i, 1]})
        res = engle_granger(panel)
        raw_rejections += int(row(res, f"y{i}", f"x{i}")["pvalue"] <= 0.05)
        tables.append(res)
    raw_rate = raw_rejections / n_couples
    assert 0.02 <= raw_rate <= 0.08, raw_rate

    # Default rule: both orientations must reject. Judged per couple (no correction), it
    # can never reject more often than one fixed orientation does.
    all_results = pd.concat(tables, ignore_index=True)
    screened = screen_couples(all_results, SelectionParams(correction="none"))
    assert len(screened) == n_couples
    both = int(screened["ok_pvalue"].sum())
    assert both <= raw_rejections
    # ... while "the better of the two orientations" rejects at least as often.
    better = screen_couples(
        all_results, SelectionParams(correction="none", both_orientations=False)
    )
    assert int(better["ok_pvalue"].sum()) >= raw_rejections >= both


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_bh_correction_keeps_noise_out_of_a_random_walk_universe(seed: int) -> None:
    rng = np.random.default_rng(seed)
    panel = pd.DataFrame(
        np.cumsum(rng.normal(0.0, 0.01, (1440, 30)), axis=0),
        columns=[f"C{i:02d}" for i in range(30)],
    )
    res = engle_granger(panel)
    bh = screen_couples(res, SelectionParams())
    raw = screen_couples(res, SelectionParams(correction="none"))
    assert len(bh) == len(raw) == 30 * 29 // 2
    n_bh, n_raw = int(bh["ok_pvalue"].sum()), int(raw["ok_pvalue"].sum())
    assert n_raw > 0, "a 435-couple noise family should give some raw 5% rejections"
    assert n_bh <= 2
    assert n_bh < n_raw


# --------------------------------------------------------------------------------------
# 3. Non-overlapping greedy selection
# --------------------------------------------------------------------------------------


def planted_panel(seed: int, n: int = 2000, extras: int = 5) -> pd.DataFrame:
    """A cointegrated with both B and C (so B~C too), D~E, and independent extras."""
    rng = np.random.default_rng(seed)
    a = random_walk(n, rng, start=2.0)
    d = random_walk(n, rng, start=1.0)
    cols = {
        "A": a,
        "B": 0.3 + 1.1 * a + ar1(n, 5, rng),
        "C": -0.2 + 0.8 * a + ar1(n, 8, rng),
        "D": d,
        "E": 0.5 + 1.2 * d + ar1(n, 6, rng),
    }
    for i in range(extras):
        cols[f"R{i}"] = random_walk(n, rng, start=1.0)
    return pd.DataFrame(cols)


def assert_disjoint_and_capped(selected: pd.DataFrame, max_couples: int) -> None:
    coins = [*selected["y"], *selected["x"]]
    assert len(coins) == len(set(coins)), coins
    assert len(selected) <= max_couples


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_selection_never_reuses_a_coin_and_keeps_the_disjoint_couple(seed: int) -> None:
    panel = planted_panel(seed)
    res = engle_granger(panel)
    params = SelectionParams()
    screened = screen_couples(res, params)
    selected = select_couples(res, params)
    assert_disjoint_and_capped(selected, params.max_couples)
    keys = [couple_key(y, x) for y, x in zip(selected["y"], selected["x"], strict=True)]
    assert couple_key("D", "E") in keys
    group = {couple_key("A", "B"), couple_key("A", "C"), couple_key("B", "C")}
    # The three overlapping couples are all genuine, but only one of them can be traded.
    eligible = [
        couple_key(y, x) for y, x in screened.loc[screened["eligible"], ["y", "x"]].to_numpy()
    ]
    assert group <= set(eligible)
    assert len(group & set(keys)) == 1
    losers = screened[
        [couple_key(y, x) in group - set(keys) for y, x in screened[["y", "x"]].values]
    ]
    assert (losers["reason"] == "coin already used").all()
    # select_couples is the selected rows of screen_couples, in the same (quality) order.
    pd.testing.assert_frame_equal(selected, screened[screened["selected"]].reset_index(drop=True))
    assert selected["tstat"].is_monotonic_increasing


def test_max_couples_caps_the_selection_to_the_best_ones() -> None:
    panel = planted_panel(4)
    res = engle_granger(panel)
    full = select_couples(res, SelectionParams())
    assert len(full) == 2  # one of the A/B/C group and D~E
    capped_params = SelectionParams(max_couples=1)
    capped = select_couples(res, capped_params)
    assert len(capped) == 1
    assert capped.iloc[0][["y", "x"]].tolist() == full.iloc[0][["y", "x"]].tolist()
    screened = screen_couples(res, capped_params)
    second = screened[
        (screened["y"] == full.iloc[1]["y"]) & (screened["x"] == full.iloc[1]["x"])
    ].iloc[0]
    assert bool(second["eligible"]) and not bool(second["selected"])
    assert second["reason"] == "over max_couples"


def random_results(rng: np.random.Generator, n_coins: int) -> pd.DataFrame:
    """An engle_granger-shaped table with random statistics for every ordered couple."""
    names = [f"K{i}" for i in range(n_coins)]
    pairs = list(itertools.permutations(names, 2))
    m = len(pairs)
    half_life = rng.uniform(0.2, 40.0, m)
    odd = rng.uniform(size=m)
    half_life[odd < 0.05] = np.inf
    half_life[(odd >= 0.05) & (odd < 0.08)] = np.nan
    frame = pd.DataFrame(
        {
            "y": [p[0] for p in pairs],
            "x": [p[1] for p in pairs],
            "alpha": rng.normal(size=m),
            "beta": rng.uniform(0.1, 3.0, m),
            "tstat": rng.uniform(-8.0, 0.0, m),
            "pvalue": rng.uniform(size=m) ** 4,
            "lag": rng.integers(0, 10, m),
            "nobs": np.full(m, 1440),
            "half_life": half_life,
            "ar_lambda": rng.uniform(-0.5, 0.0, m),
            "corr": rng.uniform(-1.0, 1.0, m),
            "ret_corr": rng.uniform(-0.3, 1.0, m),
            "r2": rng.uniform(size=m),
            "spread_mean": rng.normal(0.0, 1e-3, m),
            "spread_std": rng.uniform(0.001, 0.1, m),
            "crossings": rng.integers(0, 60, m),
        }
    )
    assert list(frame.columns) == list(RESULT_COLUMNS)
    return frame.sample(frac=1.0, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values, written out from the definition."""
    m = len(p)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adj_sorted = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    adj = np.empty(m)
    adj[order] = adj_sorted
    return adj


def reference_selection(
    results: pd.DataFrame, params: SelectionParams, candle_hours: float
) -> tuple[dict[frozenset[str], bool], list[tuple[str, str]]]:
    """Eligibility per couple and the greedy choice, from the documented rule."""
    by = {(r.y, r.x): r for r in results.itertuples(index=False)}
    couples = sorted({couple_key(y, x) for y, x in by}, key=sorted)
    traded, pvals = [], []
    for key in couples:
        a, b = sorted(key)
        r1, r2 = by[(a, b)], by[(b, a)]
        t = r1 if r1.tstat < r2.tstat else r2
        traded.append(t)
        pvals.append(max(r1.pvalue, r2.pvalue) if params.both_orientations else t.pvalue)
    p = np.array(pvals)
    adj = bh_adjust(p) if params.correction == "bh" else p
    eligible: dict[frozenset[str], bool] = {}
    for key, t, pa in zip(couples, traded, adj, strict=True):
        hl = t.half_life * candle_hours
        eligible[key] = bool(
            pa <= params.max_pvalue
            and params.min_half_life_hours <= hl <= params.max_half_life_hours
            and t.ret_corr >= params.min_ret_corr
            and t.crossings >= params.min_crossings
        )
    chosen: list[tuple[str, str]] = []
    used: set[str] = set()
    for t in sorted(traded, key=lambda r: r.tstat):
        if not eligible[couple_key(t.y, t.x)] or len(chosen) >= params.max_couples:
            continue
        if t.y in used or t.x in used:
            continue
        chosen.append((t.y, t.x))
        used.update((t.y, t.x))
    return eligible, chosen


def pruned_results(results: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """``results`` as a pruning scan returns it: the orientation y > x left untested
    (NaN statistics, lag -1) where the orientation y < x has a p-value above
    ``threshold``."""
    first = results.set_index(["y", "x"])["pvalue"]
    reverse = results["y"] > results["x"]
    p_first = first.loc[list(zip(results["x"], results["y"], strict=True))].to_numpy()
    untested = reverse.to_numpy() & (p_first > threshold)
    out = results.copy()
    cols = ["tstat", "pvalue", "half_life", "ar_lambda", "spread_mean", "spread_std"]
    out.loc[untested, cols] = np.nan
    out.loc[untested, "lag"] = -1
    return out


def test_selection_is_the_greedy_choice_on_random_tables() -> None:
    rng = np.random.default_rng(7)
    nontrivial = untested = 0
    for _ in range(300):
        results = random_results(rng, int(rng.integers(2, 10)))
        lo = float(rng.choice([0.0, 1.0, 2.0]))
        params = SelectionParams(
            max_pvalue=float(rng.choice([0.01, 0.05, 0.2])),
            correction=str(rng.choice(["bh", "none"])),
            min_half_life_hours=lo,
            max_half_life_hours=lo + float(rng.uniform(5.0, 60.0)),
            min_ret_corr=float(rng.uniform(-0.2, 0.8)),
            min_crossings=int(rng.integers(0, 30)),
            max_couples=int(rng.integers(1, 6)),
            both_orientations=bool(rng.integers(2)),
        )
        candle_hours = float(rng.choice([0.25, 1.0, 4.0]))
        screened = screen_couples(results, params, candle_hours=candle_hours)
        selected = select_couples(results, params, candle_hours=candle_hours)
        eligible, expected = reference_selection(results, params, candle_hours)

        assert_disjoint_and_capped(selected, params.max_couples)
        got_eligible = {
            couple_key(y, x): bool(ok)
            for y, x, ok in zip(screened["y"], screened["x"], screened["eligible"], strict=True)
        }
        assert got_eligible == eligible
        assert list(zip(selected["y"], selected["x"], strict=True)) == expected
        assert (selected["reason"] == "selected").all()
        pd.testing.assert_frame_equal(
            selected, screened[screened["selected"]].reset_index(drop=True))
        if params.both_orientations:
            # A scan that leaves the second orientation untested where the first is above
            # the threshold (SlidingScan's prune) changes no choice and no chosen value.
            pruned = pruned_results(results, params.max_pvalue)
            untested += int((pruned["lag"] < 0).sum())
            pd.testing.assert_frame_equal(
                select_couples(pruned, params, candle_hours=candle_hours), selected)
            again = screen_couples(pruned, params, candle_hours=candle_hours)
            assert {couple_key(y, x): bool(ok) for y, x, ok in zip(
                again["y"], again["x"], again["eligible"], strict=True)} == eligible
        nontrivial += len(expected) >= 2
    assert nontrivial >= 30  # the loop exercised real choices, not just empty selections
    assert untested >= 1000  # and pruned tables with many rows left untested


# --------------------------------------------------------------------------------------
# 4. Orientation, 5. BH
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_results() -> pd.DataFrame:
    """Planted couples plus 25 independent random walks: many true and false nulls."""
    return engle_granger(planted_panel(9, n=1500, extras=25))


def test_each_couple_appears_once_in_its_more_negative_orientation(
    mixed_results: pd.DataFrame,
) -> None:
    res = mixed_results
    n = 30
    assert len(res) == n * (n - 1)
    stats = {(r.y, r.x): r for r in res.itertuples(index=False)}
    for both in (True, False):
        screened = screen_couples(res, SelectionParams(both_orientations=both))
        keys = [couple_key(y, x) for y, x in zip(screened["y"], screened["x"], strict=True)]
        assert len(keys) == len(set(keys)) == n * (n - 1) // 2
        for r in screened.itertuples(index=False):
            mine, other = stats[(r.y, r.x)], stats[(r.x, r.y)]
            assert mine.tstat <= other.tstat
            assert r.tstat == mine.tstat and r.beta == mine.beta and r.alpha == mine.alpha
            assert r.pvalue_other == other.pvalue
            if both:
                assert r.pvalue_couple == max(mine.pvalue, other.pvalue)
            else:
                assert r.pvalue_couple == mine.pvalue
    # The orientations do disagree on this panel, so the checks above had teeth.
    screened = screen_couples(res, SelectionParams())
    assert (screened["pvalue_couple"] > screened["pvalue"]).sum() > 100


def test_one_orientation_rejection_is_not_enough_by_default() -> None:
    base = {
        "alpha": 0.0,
        "beta": 1.0,
        "lag": 0,
        "nobs": 1440,
        "half_life": 5.0,
        "ar_lambda": -0.13,
        "corr": 0.9,
        "ret_corr": 0.8,
        "r2": 0.81,
        "spread_mean": 0.0,
        "spread_std": 0.01,
        "crossings": 50,
    }
    res = pd.DataFrame(
        [
            {"y": "P", "x": "Q", "tstat": -4.0, "pvalue": 0.01, **base},
            {"y": "Q", "x": "P", "tstat": -2.5, "pvalue": 0.3, **base},
        ]
    )[list(RESULT_COLUMNS)]
    both = screen_couples(res, SelectionParams())
    one = screen_couples(res, SelectionParams(both_orientations=False))
    assert both.iloc[0][["y", "x"]].tolist() == one.iloc[0][["y", "x"]].tolist() == ["P", "Q"]
    assert both.iloc[0]["pvalue_couple"] == 0.3 and not both.iloc[0]["selected"]
    assert one.iloc[0]["pvalue_couple"] == 0.01 and one.iloc[0]["selected"]


def test_bh_adjusted_pvalues_are_statsmodels_fdr_bh(mixed_results: pd.DataFrame) -> None:
    for both in (True, False):
        bh = screen_couples(mixed_results, SelectionParams(both_orientations=both))
        expected = multipletests(bh["pvalue_couple"].to_numpy(), method="fdr_bh")[1]
        np.testing.assert_array_equal(bh["pvalue_adj"].to_numpy(), expected)
        np.testing.assert_allclose(
            bh["pvalue_adj"], bh_adjust(bh["pvalue_couple"].to_numpy()), rtol=1e-12
        )
        assert (bh["ok_pvalue"] == (bh["pvalue_adj"] <= 0.05)).all()
        none = screen_couples(
            mixed_results, SelectionParams(correction="none", both_orientations=both)
        )
        np.testing.assert_array_equal(none["pvalue_adj"], none["pvalue_couple"])
    # The correction actually bites on this family.
    assert (bh["pvalue_adj"] > bh["pvalue_couple"]).sum() > 100
    assert none["ok_pvalue"].sum() > bh["ok_pvalue"].sum()


# --------------------------------------------------------------------------------------
# 6. Filters
# --------------------------------------------------------------------------------------


def one_couple(**overrides: float) -> pd.DataFrame:
    """Both orientations of a couple P~Q that passes every default filter."""
    stats = {
        "alpha": 0.1,
        "beta": 1.2,
        "lag": 1,
        "nobs": 1440,
        "half_life": 10.0,
        "ar_lambda": -0.067,
        "corr": 0.95,
        "ret_corr": 0.8,
        "r2": 0.9,
        "spread_mean": 0.0,
        "spread_std": 0.02,
        "crossings": 60,
        "pvalue": 1e-4,
    }
    stats.update(overrides)
    rows = [
        {"y": "P", "x": "Q", "tstat": -5.0, **stats},
        {"y": "Q", "x": "P", "tstat": -4.8, **stats},
    ]
    return pd.DataFrame(rows)[list(RESULT_COLUMNS)]


def verdict(results: pd.DataFrame, params: SelectionParams, candle_hours: float = 1.0):
    screened = screen_couples(results, params, candle_hours=candle_hours)
    assert len(screened) == 1
    return screened.iloc[0]


def test_half_life_bounds_are_in_hours() -> None:
    res = one_couple(half_life=10.0)
    params = SelectionParams(max_half_life_hours=24.0)
    hourly = verdict(res, params, candle_hours=1.0)
    assert hourly["half_life_hours"] == 10.0
    assert hourly["ok_half_life"] and hourly["selected"]
    assert hourly["reason"] == "selected"
    four_hourly = verdict(res, params, candle_hours=4.0)
    assert four_hourly["half_life_hours"] == 40.0
    assert not four_hourly["ok_half_life"] and not four_hourly["selected"]
    assert "half-life" in four_hourly["reason"]
    # Lower bound: 0.5 candle is 30 minutes on 1h candles (too fast) but 2 h on 4h candles.
    fast = one_couple(half_life=0.5)
    assert "half-life" in verdict(fast, SelectionParams(), candle_hours=1.0)["reason"]
    assert verdict(fast, SelectionParams(), candle_hours=4.0)["selected"]
    assert verdict(fast, SelectionParams(min_half_life_hours=0.25), candle_hours=1.0)["selected"]
    for hl in (np.inf, np.nan):
        v = verdict(one_couple(half_life=hl), SelectionParams(max_half_life_hours=1e9))
        assert not v["ok_half_life"] and "half-life" in v["reason"]


def test_return_correlation_and_crossings_filters() -> None:
    low_corr = one_couple(ret_corr=0.4)
    v = verdict(low_corr, SelectionParams())
    assert not v["ok_corr"] and not v["eligible"] and not v["selected"]
    assert "return correlation" in v["reason"]
    assert verdict(low_corr, SelectionParams(min_ret_corr=0.3))["selected"]

    few = one_couple(crossings=5)
    v = verdict(few, SelectionParams())
    assert not v["ok_crossings"] and not v["selected"]
    assert "crossings" in v["reason"]
    assert verdict(few, SelectionParams(min_crossings=5))["selected"]

    high_p = one_couple(pvalue=0.2)
    v = verdict(high_p, SelectionParams())
    assert not v["ok_pvalue"] and not v["selected"]
    assert "p-value" in v["reason"]
    assert verdict(high_p, SelectionParams(max_pvalue=0.25))["selected"]


def test_reason_names_the_first_failing_filter() -> None:
    params = SelectionParams()
    everything = one_couple(pvalue=0.5, half_life=100.0, ret_corr=0.0, crossings=0)
    v = verdict(everything, params)
    assert [v["ok_pvalue"], v["ok_half_life"], v["ok_corr"], v["ok_crossings"]] == [False] * 4
    assert "p-value" in v["reason"]
    v = verdict(one_couple(half_life=100.0, ret_corr=0.0, crossings=0), params)
    assert "half-life" in v["reason"]
    v = verdict(one_couple(ret_corr=0.0, crossings=0), params)
    assert "return correlation" in v["reason"]
    # Every reason is one of the documented ones.
    mixed = screen_couples(engle_granger(planted_panel(5, n=1500)), params)
    allowed = (
        "p-value",
        "half-life",
        "correlation",
        "crossings",
        "selected",
        "coin",
        "max_couples",
    )
    assert all(any(a in r for a in allowed) for r in mixed["reason"])
    assert ((mixed["reason"] == "selected") == mixed["selected"]).all()


def test_candle_hours_must_be_positive() -> None:
    with pytest.raises(ValueError, match="candle_hours=0"):
        screen_couples(one_couple(), SelectionParams(), candle_hours=0)


# --------------------------------------------------------------------------------------
# 7. Parameter validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"max_pvalue": 0.0}, r"max_pvalue=0\.0"),
        ({"max_pvalue": 1.5}, r"max_pvalue=1\.5"),
        ({"correction": "bonferroni"}, "correction='bonferroni'"),
        ({"min_half_life_hours": 10.0, "max_half_life_hours": 5.0}, r"max_half_life_hours=5\.0"),
        ({"max_half_life_hours": 1.0}, r"max_half_life_hours=1\.0"),
        ({"min_half_life_hours": -1.0}, r"min_half_life_hours=-1\.0"),
        ({"max_couples": 0}, "max_couples=0"),
        ({"min_ret_corr": 2}, "min_ret_corr=2"),
        ({"min_crossings": -1}, "min_crossings=-1"),
    ],
)
def test_bad_selection_params_are_rejected_by_name(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SelectionParams(**kw)
    with pytest.raises(ValueError, match=message):
        SelectionParams.from_dict(kw)


def test_from_dict_round_trips_and_rejects_unknown_keys() -> None:
    params = SelectionParams(max_pvalue=0.01, correction="none", max_couples=3)
    assert SelectionParams.from_dict(params.to_dict()) == params
    with pytest.raises(ValueError, match=r"max_pval\b.*max_pvalue"):
        SelectionParams.from_dict({"max_pval": 0.01})
    with pytest.raises(ValueError, match=r"\['bogus', 'zzz'\]"):
        SelectionParams.from_dict({"zzz": 1, "bogus": 2, "max_couples": 2})


def test_a_nan_pvalue_does_not_block_the_bh_correction() -> None:
    rng = np.random.default_rng(11)
    x = np.cumsum(rng.normal(0, 0.01, 2000))
    e = np.zeros(2000)
    for t in range(1, 2000):
        e[t] = 0.8 * e[t - 1] + rng.normal(0, 0.005)
    panel = pd.DataFrame(
        {"X": x, "Y": 0.5 + 1.2 * x + e, "Z": np.cumsum(rng.normal(0, 0.01, 2000))}
    )
    results = engle_granger(panel)
    broken = results.copy()
    mask = (broken["y"] == "Z") & (broken["x"] == "X")
    broken.loc[mask, ["pvalue", "tstat"]] = np.nan
    screened = screen_couples(broken, SelectionParams())
    nan_rows = screened["pvalue_couple"].isna()
    assert nan_rows.sum() == 1
    assert screened.loc[nan_rows, "pvalue_adj"].isna().all()
    assert not screened.loc[nan_rows, "selected"].any()
    chosen = screened[screened["selected"]]
    assert {frozenset((r.y, r.x)) for r in chosen.itertuples()} == {frozenset(("X", "Y"))}


def test_stability_keeps_couples_eligible_in_k_of_the_last_n_windows() -> None:
    """choose_couples with stable_in of stable_of, against a loop over the windows."""
    from tests.shared_data import coins, log_window

    step, window = 24, 24 * 30
    panel = log_window("2025-12-01", window + 4 * step, coins())
    base = SelectionParams(correction="none", max_couples=10)
    eligible = []
    for back in range(5):
        part = panel.iloc[len(panel) - back * step - window:len(panel) - back * step]
        screened = screen_couples(engle_granger(part), base)
        eligible.append({tuple(sorted(k)) for k in screened.loc[
            screened["eligible"], ["y", "x"]].itertuples(index=False)})
    latest = panel.iloc[-window:]
    plain = choose_couples(latest, base)
    # 1 of n: the latest window alone decides, as without stability.
    one = choose_couples(panel, SelectionParams(**{**base.to_dict(), "stable_of": 5}),
                         step=step)
    assert one["ok_stable"].all()
    pd.testing.assert_frame_equal(one.drop(columns="ok_stable"), plain)
    for k in (2, 3, 5):
        params = SelectionParams(**{**base.to_dict(), "stable_in": k, "stable_of": 5})
        chosen = choose_couples(panel, params, step=step)
        keys = {tuple(sorted(c)) for c in chosen[["y", "x"]].itertuples(index=False)}
        for key in keys:
            assert key in eligible[0] and sum(key in e for e in eligible) >= k, key
        # Nothing stable enough is dropped except for a coin already used or the cap.
        screened = screen_couples(engle_granger(latest), params, stable={
            key for key in set().union(*eligible) if sum(key in e for e in eligible) >= k})
        assert keys == {tuple(sorted(c)) for c in screened.loc[
            screened["selected"], ["y", "x"]].itertuples(index=False)}
    strict = choose_couples(panel, SelectionParams(**{**base.to_dict(), "stable_in": 5,
                                                      "stable_of": 5}), step=step)
    assert len(strict) < len(plain)
    with pytest.raises(ValueError, match="needs the re-formation step"):
        choose_couples(panel, SelectionParams(stable_in=2, stable_of=3))
    with pytest.raises(ValueError, match="stable_in=4 must be at most stable_of=3"):
        SelectionParams(stable_in=4, stable_of=3)


def test_a_reference_coin_is_tested_against_every_coin_and_shared_by_the_couples() -> None:
    """selection.reference: only the couples of each coin with the reference are tested
    (the BH correction counts those), and the reference may be in every chosen couple
    while the other coins are still in one each."""
    rng = np.random.default_rng(11)
    n = 1500
    ref = np.cumsum(rng.normal(0, 0.01, n)) + 10.0
    cols = {"REF": ref}
    for i, beta in enumerate((0.8, 1.3, 1.7)):  # three coins cointegrated with REF
        noise = np.zeros(n)
        for t in range(1, n):
            noise[t] = 0.85 * noise[t - 1] + rng.normal(0, 0.003)
        cols[f"C{i}"] = 0.2 + beta * ref + noise
    cols["W"] = np.cumsum(rng.normal(0, 0.01, n)) + 5.0  # a random walk
    panel = pd.DataFrame(cols)
    params = SelectionParams(reference="REF", max_couples=5)
    chosen = choose_couples(panel, params)
    assert len(chosen) == 3
    assert all("REF" in (y, x) for y, x in chosen[["y", "x"]].values)
    others = [c for y, x in chosen[["y", "x"]].values for c in (y, x) if c != "REF"]
    assert sorted(others) == ["C0", "C1", "C2"]
    # Among the coins alone, C0..C2 are cointegrated with each other too: one couple only
    # (every coin at most once), and the correction is over all couples.
    among = choose_couples(panel, SelectionParams(max_couples=5))
    assert len(among) < 3
    results = engle_granger(panel)
    tested = results[(results["y"] == "REF") | (results["x"] == "REF")]
    screened = screen_couples(tested, params)
    assert len(screened) == 4  # REF with C0, C1, C2 and W
    raw = screened["pvalue_couple"].to_numpy()
    np.testing.assert_allclose(screened["pvalue_adj"],
                               multipletests(raw, method="fdr_bh")[1], rtol=1e-12)
    for bad, message in (({"reference": "BTC/USDT"}, "reference="),
                         ({"share_reference": True}, "share_reference=")):
        with pytest.raises(ValueError, match=message):
            SelectionParams(**bad)

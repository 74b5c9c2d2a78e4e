"""The batched Engle-Granger engine against statsmodels, the reference."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.tsa.adfvalues import mackinnonp
from statsmodels.tsa.stattools import adfuller, coint

from statarb.core import cointegration
from statarb.core.adf_kernel import LANES, _factor_lanes
from statarb.core.cointegration import (
    RESULT_COLUMNS,
    default_maxlag,
    engle_granger,
    mackinnon_pvalue,
)
from tests.shared_data import log_window


def _reference(y: np.ndarray, x: np.ndarray, check_coint: bool = True,
               **kw: object) -> tuple[float, float, int]:
    """statsmodels' Engle-Granger statistic and p-value, and the ADF lag it used.

    ``coint`` regresses y on x with a constant, runs ``adfuller`` on the residuals without
    a constant and looks the statistic up with ``mackinnonp(N=2)``; doing those steps once
    gives the lag too. With ``check_coint`` the result is also checked against ``coint``
    itself, so the composition cannot drift from the reference."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resid = sm.OLS(y, sm.add_constant(x)).fit().resid
        adf = adfuller(
            resid,
            maxlag=kw.get("maxlag"),
            autolag=kw.get("autolag", "aic"),
            regression="n",
            result_object=True,
        )
        tstat = float(adf.statistic)
        pvalue = float(mackinnonp(tstat, regression="c", N=2))
        if check_coint:
            res = coint(y, x, trend="c", **kw)
            # coint fits its OLS another way: equal to rounding.
            assert (float(res[0]), float(res[1])) == pytest.approx((tstat, pvalue), rel=1e-9)
    return tstat, pvalue, int(adf.lags)


def _assert_parity(panel: pd.DataFrame, **kw: object) -> int:
    ours = engle_granger(panel, **kw)
    n = panel.shape[1]
    assert len(ours) == n * (n - 1)
    for i, row in enumerate(ours.itertuples(index=False)):
        # coint itself on every 5th couple: the composition is checked, the time halved.
        t, p, lag = _reference(panel[row.y].to_numpy(), panel[row.x].to_numpy(),
                               check_coint=i % 5 == 0, **kw)
        assert row.lag == lag, (row.y, row.x, row.lag, lag)
        assert abs(row.pvalue - p) <= 1e-6, (row.y, row.x, row.pvalue, p)
        assert row.tstat == pytest.approx(t, rel=1e-7, abs=1e-9), (row.y, row.x)
    return len(ours)


@pytest.mark.slow
# About a thousand statsmodels regressions per case: generous on a busy 2-core machine.
@pytest.mark.timeout(2400)
@pytest.mark.parametrize(
    ("end", "candles", "names"),
    [
        ("2026-01-01", 1440, None),  # last 60 days of the data: every coin that spans them
        ("2024-05-01", 1440, None),  # early 2024: the 14 coins with long history
        ("2025-07-15", 720, None),  # 30 days in mid 2025: all 35 coins
    ],
)
def test_parity_with_statsmodels_on_shared_data(end: str, candles: int, names: None) -> None:
    panel = log_window(end, candles, names)
    assert panel.shape[1] >= 14
    assert _assert_parity(panel) == panel.shape[1] * (panel.shape[1] - 1)


@pytest.mark.parametrize(
    "kw", [{"maxlag": 5, "autolag": None}, {"maxlag": 12, "autolag": "bic"}, {"maxlag": 0}]
)
def test_parity_with_fixed_lags_and_bic(kw: dict) -> None:
    panel = log_window("2025-03-01", 500, ["BTC", "ETH", "SOL", "LTC", "XRP"])
    _assert_parity(panel, **kw)


def test_hedge_ratio_and_statistics_match_ols() -> None:
    panel = log_window("2025-09-01", 1000, ["BTC", "ETH", "LINK"])
    res = engle_granger(panel).set_index(["y", "x"])
    for (y, x), row in res.iterrows():
        ols = sm.OLS(panel[y], sm.add_constant(panel[x])).fit()
        assert row.alpha == pytest.approx(ols.params.iloc[0], rel=1e-9)
        assert row.beta == pytest.approx(ols.params.iloc[1], rel=1e-9)
        assert row.r2 == pytest.approx(ols.rsquared, rel=1e-9)
        spread = ols.resid.to_numpy()
        assert row.spread_std == pytest.approx(spread.std(ddof=1), rel=1e-9)
        assert abs(row.spread_mean) < 1e-9
        ar = sm.OLS(np.diff(spread), sm.add_constant(spread[:-1])).fit()
        lam = ar.params[1]
        assert row.ar_lambda == pytest.approx(lam, rel=1e-8)
        assert row.half_life == pytest.approx(-np.log(2) / np.log(1 + lam), rel=1e-8)
        centred = spread - spread.mean()
        crossings = sum(1 for a, b in itertools.pairwise(centred) if (a > 0) != (b > 0))
        assert row.crossings == crossings
        rets = np.diff(panel[[y, x]].to_numpy(), axis=0)
        assert row.ret_corr == pytest.approx(np.corrcoef(rets.T)[0, 1], rel=1e-9)
        assert row["corr"] == pytest.approx(np.corrcoef(panel[y], panel[x])[0, 1], rel=1e-9)
    assert set(RESULT_COLUMNS) == set(res.reset_index().columns)


def test_vectorised_mackinnon_matches_statsmodels() -> None:
    stats = np.r_[np.linspace(-25, 5, 601), -np.inf, np.inf]
    ours = mackinnon_pvalue(stats)
    ref = np.array([mackinnonp(t, regression="c", N=2) for t in stats])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_maxlag_rule_matches_statsmodels() -> None:
    for nobs in (40, 100, 500, 1440, 5000):
        e = np.random.default_rng(nobs).normal(size=nobs).cumsum()
        assert adfuller(e, regression="n", autolag="aic", store=True)[-1].maxlag == default_maxlag(
            nobs
        )


def test_collinear_couple_is_reported_like_statsmodels() -> None:
    x = np.log(np.linspace(10, 20, 300))
    panel = pd.DataFrame({"a": x, "b": 2 * x + 1})
    res = engle_granger(panel)
    assert (res["tstat"] == -np.inf).all()
    assert (res["pvalue"] == 0.0).all()


def test_chunking_does_not_change_results() -> None:
    panel = log_window("2025-10-01", 600)
    a = engle_granger(panel, chunk_size=7)
    b = engle_granger(panel, chunk_size=4096)
    pd.testing.assert_frame_equal(a, b)


def _ic_by_lag(y: np.ndarray, x: np.ndarray, **kw: object) -> dict[int, float]:
    """statsmodels' information criterion of every lag of the ADF lag search."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resid = sm.OLS(y, sm.add_constant(x)).fit().resid
        store = adfuller(resid, maxlag=kw.get("maxlag"), autolag=kw.get("autolag", "aic"),
                         regression="n", regresults=True)[-1]
    crit = str(kw.get("autolag", "aic"))
    return {lag - 1: float(getattr(res, crit)) for lag, res in store.autolag_results.items()}


def _assert_engines_agree(panel: pd.DataFrame, **kw: object) -> dict[str, float]:
    """The batch engine against the per-couple reference path; returns the largest
    differences seen (what the README and the benchmark report).

    Lags must be identical, except where the information criterion of the two lags ties
    to rounding (statsmodels' own values within 1e-9 relative): either choice is then
    right, and the t-statistics, of different regressions, are not compared."""
    new = engle_granger(panel, **kw)
    ref = cointegration._engle_granger_reference(panel, **kw)
    same_code = ["y", "x", "alpha", "beta", "nobs", "corr", "ret_corr", "r2"]
    pd.testing.assert_frame_equal(new[same_code], ref[same_code], check_exact=True)
    assert (new.crossings == ref.crossings).all()
    tie = (new.lag != ref.lag).to_numpy()
    for i in np.flatnonzero(tie):
        y, x = ref.y.iloc[i], ref.x.iloc[i]
        ic = _ic_by_lag(panel[y].to_numpy(), panel[x].to_numpy(), **kw)
        a, b = ic[int(new.lag.iloc[i])], ic[int(ref.lag.iloc[i])]
        assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), (y, x, new.lag.iloc[i], ref.lag.iloc[i])
    worst = {"ties": float(tie.sum())}
    for col, kind in [("tstat", "rel"), ("pvalue", "abs"), ("ar_lambda", "rel"),
                      ("half_life", "rel"), ("spread_std", "rel"), ("spread_mean", "std")]:
        a, b = new[col].to_numpy()[~tie], ref[col].to_numpy()[~tie]
        finite = np.isfinite(b)
        # -inf (collinear), inf (no mean reversion) and NaN agree exactly.
        np.testing.assert_array_equal(a[~finite], b[~finite], err_msg=col)
        diff = np.abs(a[finite] - b[finite])
        if kind == "rel":
            diff = diff / np.maximum(np.abs(b[finite]), 1e-300)
        elif kind == "std":  # the spread's mean is 0 to rounding: judged against its std
            diff = diff / ref["spread_std"].to_numpy()[~tie][finite]
        limit = 1e-9
        worst[col] = float(diff.max(initial=0.0))
        assert worst[col] <= limit, (col, worst[col])
    return worst


def _near_collinear_panel(candles: int, seed: int = 3) -> pd.DataFrame:
    """Random walks plus coins that are (almost) a linear function of the first one: iid
    and random-walk noise from 1e-2 down to 1e-7 of the walk's step, a cointegrated AR(1)
    spread and a drift. Their couples cancel most in the coin-level combination, up to
    and past the collinearity guard."""
    rng = np.random.default_rng(seed)
    walks = np.cumsum(rng.normal(0, 0.01, (candles, 4)), axis=0) + rng.uniform(0, 5, 4)
    cols = {f"RW{i}": walks[:, i] for i in range(4)}
    x = walks[:, 0]
    for s in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-9):
        cols[f"IID{s:g}"] = 0.3 + 1.7 * x + rng.normal(0, s, candles)
    for s in (1e-4, 1e-5, 1e-6):
        cols[f"WALK{s:g}"] = -1 + 0.8 * x + np.cumsum(rng.normal(0, s, candles))
    ar = np.zeros(candles)
    for t in range(1, candles):
        ar[t] = 0.95 * ar[t - 1] + rng.normal(0, 1e-3)
    cols["AR"] = 2 + x + ar
    cols["DRIFT"] = x + np.linspace(0, 1e-3, candles) + rng.normal(0, 1e-5, candles)
    return pd.DataFrame(cols)


@pytest.mark.parametrize(
    ("end", "candles", "kw"),
    [
        ("2026-01-01", 1440, {}),
        ("2024-05-01", 1440, {}),
        ("2025-07-15", 720, {}),
        ("2025-07-15", 720, {"maxlag": 5, "autolag": None}),
        ("2025-07-15", 720, {"maxlag": 12, "autolag": "bic"}),
        ("2025-07-15", 720, {"maxlag": 0}),
    ],
)
def test_batch_engine_matches_per_couple_reference_on_shared_data(
    end: str, candles: int, kw: dict
) -> None:
    panel = log_window(end, candles)
    worst = _assert_engines_agree(panel, **kw)
    assert worst["ties"] == 0


@pytest.mark.parametrize("kw", [{}, {"autolag": "bic"}, {"maxlag": 5, "autolag": None}])
@pytest.mark.parametrize("candles", [1440, 300])
def test_batch_engine_matches_reference_on_near_collinear_couples(
    candles: int, kw: dict
) -> None:
    _assert_engines_agree(_near_collinear_panel(candles), **kw)


def test_cancelling_couples_fall_back_to_their_own_residual(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the fallback the combination's cancellation is visible on near-collinear
    couples (why the fallback exists); with every couple recomputed (limit 0) the fallback
    path alone still agrees with the reference."""
    panel = _near_collinear_panel(1440)
    ref = cointegration._engle_granger_reference(panel)
    monkeypatch.setattr(cointegration, "_CANCELLATION_LIMIT", np.inf)
    raw = engle_granger(panel)
    assert np.max(np.abs(raw.spread_std / ref.spread_std - 1)) > 1e-9
    monkeypatch.setattr(cointegration, "_CANCELLATION_LIMIT", 0.0)
    _assert_engines_agree(panel)


def test_lane_cholesky_handles_degenerate_matrices() -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(size=(50, 3))
    good = z.T @ z
    singular = good.copy()
    singular[:2, :2] = [[1.0, 1.0], [1.0, 1.0]]  # G singular: NaN row
    singular[2, :2] = singular[:2, 2] = 0.0
    # y = 2 x1 - x2 exactly, y'y a hair below: G is fine, the bordered matrix is not
    perfect = np.zeros((3, 3))
    perfect[:2, :2] = good[:2, :2]
    perfect[:2, 2] = perfect[2, :2] = good[:2, :2] @ [2.0, -1.0]
    perfect[2, 2] = (1 - 1e-9) * (np.array([2.0, -1.0]) @ good[:2, :2] @ [2.0, -1.0])
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(perfect)
    lanes = np.zeros((3, 3, LANES))
    lanes[:, :, :] = np.eye(3)[:, :, None]
    for i, m in enumerate((good, singular, perfect)):
        lanes[:, :, i] = np.tril(m)
    ok = np.ones(LANES, dtype=bool)
    _factor_lanes(lanes, 3, ok, np.empty((3, LANES)))
    w = lanes[2, :2, :3].T
    low = np.linalg.cholesky(good[:2, :2])
    assert ok[0] and not ok[1] and ok[2]
    np.testing.assert_allclose(w[0], np.linalg.solve(low, good[:2, 2]), rtol=1e-12)
    np.testing.assert_allclose(w[2], np.linalg.solve(low, perfect[:2, 2]), rtol=1e-9)
    assert lanes[2, 2, 2] == perfect[2, 2]  # the border's diagonal stays y'y


@pytest.mark.parametrize(
    ("frame", "kw", "message"),
    [
        (pd.DataFrame({"a": np.arange(100.0)}), {}, "at least two coins"),
        (
            pd.DataFrame({"a": np.r_[np.nan, np.arange(99.0)], "b": np.arange(100.0) ** 0.5}),
            {},
            r"NaN or infinite values in \['a'\]",
        ),
        (pd.DataFrame({"a": np.ones(100), "b": np.arange(100.0)}), {}, "constant price"),
        (pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) ** 2}), {}, "too short"),
        (
            pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) ** 2}),
            {"maxlag": 60},
            r"maxlag=60 is not allowed .* between 0 and nobs // 2 - 1 = 49",
        ),
        (
            pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) ** 2}),
            {"autolag": "t-stat"},
            "autolag='t-stat' is not supported",
        ),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(
    frame: pd.DataFrame, kw: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        engle_granger(frame, **kw)

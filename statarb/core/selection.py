"""Choosing couples: filters on the Engle-Granger table and non-overlapping selection.

This is the one selection function of the package: the scanner, the strategy's
walk-forward re-formation and the pairlist all call :func:`select_couples` (or
:func:`choose_couples` on raw prices), so backtest and live pick the same couples from the
same data.

Orientation. Engle-Granger is not symmetric: regressing y on x and x on y give different
residuals and p-values. Taking the better of the two orientations would test twice and
report the smaller p-value, inflating false positives. By default a couple must reject in
*both* orientations (its p-value is the larger of the two), and it is traded in the
orientation with the more negative ADF statistic.

Multiple comparisons. A universe of n coins gives n (n - 1) / 2 couples; at a 5% level,
hundreds of tests produce dozens of couples from noise alone. ``correction="bh"`` applies
the Benjamini-Hochberg false-discovery-rate procedure (statsmodels' implementation) to the
couple p-values over the whole family tested; ``"none"`` keeps raw p-values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from statarb.core.cointegration import RESULT_COLUMNS, count_crossings, engle_granger
from statarb.core.hedge import HEDGES, with_hedge
from statarb.core.params import reject_unknown

__all__ = ["Scan", "SelectionParams", "choose_couples", "screen_couples", "select_couples"]

#: How a formation window is tested: a log-price window (one column per coin) to the
#: :func:`statarb.core.cointegration.engle_granger` table of its couples, crossings uncounted
#: or counted. The walk-forward passes one that slides its sums from the previous window
#: (:class:`statarb.core.sliding.SlidingScan`).
Scan = Callable[[pd.DataFrame], pd.DataFrame]

CORRECTIONS = ("bh", "none")


@dataclass(frozen=True)
class SelectionParams:
    """Parameters of couple selection. Validated on construction.

    Times are in hours so the same config reads the same on any timeframe; they are
    converted to candles with ``candle_hours`` when filtering.
    """

    max_pvalue: float = 0.05
    correction: str = "bh"
    min_half_life_hours: float = 1.0
    max_half_life_hours: float = 24.0
    min_ret_corr: float = 0.5
    min_crossings: int = 12
    max_couples: int = 5
    both_orientations: bool = True
    hedge: str = "ols"
    kalman_delta: float = 1e-4
    stable_in: int = 1
    stable_of: int = 1
    reference: str = ""
    share_reference: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.max_pvalue < 1.0:
            raise ValueError(f"max_pvalue={self.max_pvalue} must be in (0, 1)")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction={self.correction!r} must be one of {CORRECTIONS}")
        if self.min_half_life_hours < 0:
            raise ValueError(f"min_half_life_hours={self.min_half_life_hours} must be >= 0")
        if not self.max_half_life_hours > self.min_half_life_hours:
            raise ValueError(
                f"max_half_life_hours={self.max_half_life_hours} must be greater than "
                f"min_half_life_hours={self.min_half_life_hours}"
            )
        if not -1.0 <= self.min_ret_corr <= 1.0:
            raise ValueError(f"min_ret_corr={self.min_ret_corr} must be in [-1, 1]")
        if self.min_crossings < 0:
            raise ValueError(f"min_crossings={self.min_crossings} must be >= 0")
        if self.max_couples < 1:
            raise ValueError(f"max_couples={self.max_couples} must be >= 1")
        for name in ("stable_in", "stable_of"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
                raise ValueError(f"{name}={value!r} must be a whole number from 1 to 10")
        if self.stable_in > self.stable_of:
            raise ValueError(
                f"stable_in={self.stable_in} must be at most stable_of={self.stable_of}: a "
                f"couple is kept when it passes every filter in {self.stable_in} of the last "
                f"{self.stable_of} formations"
            )
        if self.hedge not in HEDGES:
            raise ValueError(
                f"hedge={self.hedge!r} must be one of {HEDGES} (ols: the Engle-Granger fit; "
                "tls: total least squares, symmetric in the two coins; kalman: a ratio "
                "updated every candle)"
            )
        if (isinstance(self.kalman_delta, bool) or not isinstance(self.kalman_delta, int | float)
                or not 0.0 <= self.kalman_delta <= 0.01):
            raise ValueError(
                f"kalman_delta={self.kalman_delta!r} must be a number in [0, 0.01]: the "
                "Kalman state noise (0: recursive least squares; the ratio weighs about "
                "1/sqrt(kalman_delta) recent candles)"
            )
        if not isinstance(self.reference, str) or not (
                self.reference == "" or self.reference.isalnum()):
            raise ValueError(
                f"reference={self.reference!r} must be a coin name such as 'BTC' or 'ETH' (the "
                "base of its pair), or '' for couples among the coins"
            )
        if not isinstance(self.share_reference, bool) or (
                self.share_reference and not self.reference):
            raise ValueError(
                f"share_reference={self.share_reference!r} must be true or false, and true "
                "only with a reference coin"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SelectionParams:
        """Build from a config mapping, rejecting unknown keys by name."""
        reject_unknown("selection parameter", values, (f.name for f in fields(cls)))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def formation_dict(self) -> dict[str, Any]:
        """What the chosen couples depend on: every setting but ``share_reference`` (how
        the plan may hold them), so a formation is built once for both."""
        values = asdict(self)
        values.pop("share_reference")
        return values


def screen_couples(
    results: pd.DataFrame, params: SelectionParams, *, candle_hours: float = 1.0,
    stable: set[tuple[str, str]] | None = None, window: pd.DataFrame | None = None,
    selected_only: bool = False,
) -> pd.DataFrame:
    """One row per unordered couple, in its traded orientation, with every filter's verdict.

    ``results`` is the output of :func:`statarb.core.cointegration.engle_granger`. Added columns:
    ``pvalue_other`` (the reverse orientation's p-value), ``pvalue_couple`` (the p-value
    the couple is judged on), ``pvalue_adj`` (after the correction), ``half_life_hours``,
    the boolean filters ``ok_pvalue``, ``ok_half_life``, ``ok_corr``, ``ok_crossings``,
    ``eligible`` (all of them) and ``selected`` (chosen by :func:`select_couples`), and
    ``reason`` (the first filter that failed, or ``"selected"``/``"coin already used"``
    /``"over max_couples"``). ``stable``: when given, the couples (sorted coin names)
    eligible in enough recent formations (:func:`choose_couples`); the others fail
    ``ok_stable``.

    Crossings left uncounted (-1, ``engle_granger(crossings=False)``) are counted here
    from ``window`` (the log prices the results were computed on), only for the couples
    that pass the p-value, half-life and correlation filters: the others fail one of those
    first, so their count could change neither a verdict nor a reason, and counting is
    the one step that reads every candle of every spread.

    ``selected_only``: only the selected rows (what :func:`select_couples` returns, the
    same frame as filtering the full one), for callers that screen thousands of couples to
    keep five.
    """
    if candle_hours <= 0:
        raise ValueError(f"candle_hours={candle_hours} must be positive")
    if results.empty:
        return results.assign(selected=pd.Series(dtype=bool), reason=pd.Series(dtype=str))
    # Array work throughout (a walk-forward screens ~20,000 couples at each of hundreds of
    # re-formations): coins as integer codes, a couple as one integer key.
    codes, names = pd.factorize(pd.concat([results["y"], results["x"]], ignore_index=True))
    size = len(names)
    cy, cx = codes[: len(results)], codes[len(results):]
    key = np.minimum(cy, cx) * size + np.maximum(cy, cx)
    # Traded orientation: the more negative ADF statistic (ties: first in panel order).
    # In that order, a couple's first row is its traded orientation, its last the other
    # (the same row with a single orientation in the input).
    order = np.argsort(results["tstat"].to_numpy(dtype=np.float64), kind="stable")
    ranked = key[order]
    position = np.arange(len(ranked))
    first = np.full(size * size, len(ranked))
    last = np.full(size * size, -1)
    np.minimum.at(first, ranked, position)
    np.maximum.at(last, ranked, position)
    leading = np.flatnonzero(first[ranked] == position)  # in tstat order, as ranked
    best_rows = order[leading]
    other_rows = order[last[ranked[leading]]]
    pvalue = results["pvalue"].to_numpy(dtype=np.float64)
    p_other = pvalue[other_rows]
    p_best = pvalue[best_rows]
    p_couple = np.maximum(p_best, p_other) if params.both_orientations else p_best
    if params.correction == "bh":
        # A NaN p-value (degenerate couple) would turn every adjusted p-value into NaN:
        # adjust it as 1 (it can never be selected) and keep it NaN in the output.
        adjusted = multipletests(np.nan_to_num(p_couple, nan=1.0), method="fdr_bh")[1]
        p_adj = np.where(np.isnan(p_couple), np.nan, adjusted)
    else:
        p_adj = p_couple
    # Quality order: strongest rejection first, then the faster mean reversion.
    tstat = results["tstat"].to_numpy(dtype=np.float64)[best_rows]
    half_life = results["half_life"].to_numpy(dtype=np.float64)[best_rows]
    quality = np.lexsort((half_life, tstat))
    rows = best_rows[quality]
    p_other, p_couple, p_adj = p_other[quality], p_couple[quality], p_adj[quality]
    hl = half_life[quality] * candle_hours
    verdicts = {
        "ok_pvalue": p_adj <= params.max_pvalue,
        "ok_half_life": (hl >= params.min_half_life_hours) & (hl <= params.max_half_life_hours),
        "ok_corr": results["ret_corr"].to_numpy(dtype=np.float64)[rows] >= params.min_ret_corr,
    }
    crossings = results["crossings"].to_numpy()[rows].copy()
    need = (crossings < 0) & verdicts["ok_pvalue"] & verdicts["ok_half_life"] & verdicts["ok_corr"]
    if need.any():
        if window is None:
            raise ValueError("the results leave crossings uncounted (-1); pass the window "
                             "they were computed on to count them")
        crossings[need] = count_crossings(window, results.iloc[rows[need]][["y", "x", "beta"]])
    verdicts["ok_crossings"] = crossings >= params.min_crossings
    if stable is not None:
        index = {c: i for i, c in enumerate(names.tolist())}
        stable_keys = [min(index[a], index[b]) * size + max(index[a], index[b])
                       for a, b in stable if a in index and b in index]
        verdicts["ok_stable"] = np.isin(key[rows], stable_keys)
    eligible = np.logical_and.reduce(list(verdicts.values()))
    labels = {
        "ok_pvalue": f"p-value above {params.max_pvalue} ({params.correction})",
        "ok_half_life": (
            f"half-life outside [{params.min_half_life_hours}, {params.max_half_life_hours}] h"
        ),
        "ok_corr": f"return correlation below {params.min_ret_corr}",
        "ok_crossings": f"fewer than {params.min_crossings} mean crossings",
        "ok_stable": (f"eligible in fewer than {params.stable_in} of the last "
                      f"{params.stable_of} formations"),
    }
    reasons = np.full(len(rows), "", dtype=object)
    for col in reversed(list(verdicts)):  # the first failing filter wins
        reasons[~verdicts[col]] = labels[col]
    used: set[str] = set()
    selected = np.zeros(len(rows), dtype=bool)
    picks = np.flatnonzero(eligible)
    ys = results["y"].iloc[rows[picks]].to_numpy()
    xs = results["x"].iloc[rows[picks]].to_numpy()
    for i, y, x in zip(picks.tolist(), ys.tolist(), xs.tolist(), strict=True):
        if y in used or x in used:
            reasons[i] = "coin already used"
        elif int(selected.sum()) >= params.max_couples:
            reasons[i] = "over max_couples"
        else:
            selected[i] = True
            used.update(c for c in (y, x) if c != params.reference)  # the reference is shared
            reasons[i] = "selected"
    added = {
        "pvalue_other": p_other, "pvalue_couple": p_couple, "pvalue_adj": p_adj,
        "half_life_hours": hl, **verdicts, "eligible": eligible, "selected": selected,
        "reason": reasons,
    }
    if selected_only:  # the rows select_couples returns, without building the others
        rows, crossings = rows[selected], crossings[selected]
        added = {k: v[selected] for k, v in added.items()}
    added["reason"] = pd.array(added["reason"], dtype="str")  # also when no row is left
    out = results.iloc[rows].reset_index(drop=True)
    out = pd.concat([out.drop(columns=[c for c in added if c in out]),
                     pd.DataFrame(added, index=out.index)], axis=1)
    out["crossings"] = crossings
    return out


def select_couples(
    results: pd.DataFrame, params: SelectionParams, *, candle_hours: float = 1.0,
    stable: set[tuple[str, str]] | None = None, window: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The chosen couples, best first: no coin appears twice, at most ``max_couples``."""
    return screen_couples(results, params, candle_hours=candle_hours, stable=stable,
                          window=window, selected_only=True)


def choose_couples(
    log_prices: pd.DataFrame,
    params: SelectionParams,
    *,
    candle_hours: float = 1.0,
    maxlag: int | None = None,
    step: int | None = None,
    scan: Scan | None = None,
) -> pd.DataFrame:
    """Test every couple of a log-price formation window and return the chosen couples.

    The single entry point shared by the scanner, the strategy and the pairlist.

    Selection stability (``stable_in`` of ``stable_of`` > 1): ``log_prices`` then holds
    ``stable_of - 1`` re-formations of ``step`` candles more than the formation window,
    oldest first. The formation window is its last :func:`formation_length` candles; the
    earlier formations end ``step``, ``2 step`` ... candles before it, and a couple is
    kept only when it passes every filter in at least ``stable_in`` of these windows,
    the latest included. A couple that was found once by chance rarely passes again; one
    that is really cointegrated does.

    ``scan`` tests each window (default: :func:`statarb.core.cointegration.engle_granger`
    with this ``maxlag``); it is given the window's rows of ``log_prices``, index
    included, and must return the same table. With a scan of its own, the chosen
    couples' statistics (:data:`statarb.core.cointegration.RESULT_COLUMNS`) are then
    recomputed by ``engle_granger`` from the window alone: a scan that slides its sums
    from earlier windows agrees with it to rounding, and the couples' hedge ratios, and so
    their spreads and z-scores, must not depend on where the data started (Freqtrade's
    recursive-analysis compares them exactly; the live pairlist tests the window alone).
    The screening columns (``pvalue_couple``, ``pvalue_adj`` ...) stay the scan's: they
    are the verdicts the selection was made on.
    """
    own_scan = scan is not None
    if scan is None:
        def scan(window: pd.DataFrame) -> pd.DataFrame:
            return engle_granger(window, maxlag=maxlag, autolag="aic", crossings=False)

    def finish(chosen: pd.DataFrame, window: pd.DataFrame) -> pd.DataFrame:
        if own_scan:
            chosen = _retested(chosen, window, maxlag, candle_hours)
        return with_hedge(chosen, window, params.hedge, kalman_delta=params.kalman_delta)

    if params.stable_of == 1:
        results = _tested(scan(log_prices), params)
        chosen = select_couples(results, params, candle_hours=candle_hours, window=log_prices)
        return finish(chosen, log_prices)
    if step is None or step < 1:
        raise ValueError(f"stable_of={params.stable_of} needs the re-formation step in "
                         f"candles (step={step})")
    window = formation_length(len(log_prices), params, step)
    if window < 100:
        raise ValueError(
            f"{len(log_prices)} candles leave a formation window of {window} after "
            f"{params.stable_of - 1} earlier formations of {step} candles; at least 100 needed"
        )
    counts: dict[tuple[str, str], int] = {}
    current = pd.DataFrame()
    for back in range(params.stable_of):
        end = len(log_prices) - back * step
        frame = log_prices.iloc[end - window:end]
        past = _tested(scan(frame), params)
        screened = screen_couples(past, params, candle_hours=candle_hours, window=frame)
        for y, x in screened.loc[screened["eligible"], ["y", "x"]].itertuples(index=False):
            key = (min(y, x), max(y, x))
            counts[key] = counts.get(key, 0) + 1
        if back == 0:
            current = past
    stable = {k for k, n in counts.items() if n >= params.stable_in}
    latest = log_prices.iloc[len(log_prices) - window:]
    chosen = select_couples(current, params, candle_hours=candle_hours, stable=stable,
                            window=latest)
    return finish(chosen, latest)


def _retested(
    chosen: pd.DataFrame, window: pd.DataFrame, maxlag: int | None, candle_hours: float
) -> pd.DataFrame:
    """``chosen`` with its Engle-Granger statistics recomputed on ``window`` alone, by one
    :func:`statarb.core.cointegration.engle_granger` call on the chosen couples' coins."""
    if chosen.empty:
        return chosen
    coins = list(dict.fromkeys([*chosen["y"], *chosen["x"]]))
    exact = engle_granger(window[coins], maxlag=maxlag, autolag="aic")
    # Its rows are every ordered couple of ``coins``, y-major: (i, j) is row i (n-1) + j - (j > i).
    code = {c: i for i, c in enumerate(coins)}
    yi = np.array([code[c] for c in chosen["y"]])
    xi = np.array([code[c] for c in chosen["x"]])
    at = yi * (len(coins) - 1) + xi - (xi > yi)
    columns = {c: chosen[c].to_numpy() for c in chosen.columns}
    for col in RESULT_COLUMNS:
        if col not in ("y", "x"):
            columns[col] = exact[col].to_numpy()[at]
    if "half_life_hours" in columns:
        columns["half_life_hours"] = columns["half_life"] * candle_hours
    return pd.DataFrame(columns, index=chosen.index).astype(chosen.dtypes.to_dict())


def _tested(results: pd.DataFrame, params: SelectionParams) -> pd.DataFrame:
    """The couples a formation tests: all of them, or with a reference coin only the
    couples of each coin with it (so the multiple-testing correction counts those)."""
    if not params.reference:
        return results
    return results[(results["y"] == params.reference) | (results["x"] == params.reference)]


def history_length(formation: int, params: SelectionParams, step: int) -> int:
    """Candles :func:`choose_couples` needs for a formation window of ``formation``."""
    return formation + (params.stable_of - 1) * step


def formation_length(candles: int, params: SelectionParams, step: int) -> int:
    """The formation window inside a panel of ``candles`` (see :func:`history_length`)."""
    return candles - (params.stable_of - 1) * step

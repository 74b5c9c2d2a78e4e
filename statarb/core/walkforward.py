"""Walk-forward couple selection: formation window, trading window, re-formation.

Why: a couple chosen with data from the period it is traded in is chosen with hindsight.
Here every re-formation time ``T`` (every ``reform_hours``) calls the one selection
function (:func:`statarb.core.selection.choose_couples`) on the ``formation_hours`` candles
*before* ``T``, and the chosen couples are traded from the candle dated ``T`` until the
next re-formation. A couple still open at the next re-formation keeps its hedge ratio
until it exits, so each formation also carries the couple's z-score for a ``horizon``
beyond its trading window.

Everything is computed once for the whole universe (one Engle-Granger batch per
re-formation) and indexed by candle position, so a strategy can look values up per
candle without rescanning history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from statarb.core.hedge import KalmanStart, has_kalman_state, kalman_filter
from statarb.core.selection import SelectionParams, choose_couples, history_length
from statarb.core.sliding import SlidingScan

__all__ = [
    "Formation", "Universe", "WalkForwardParams", "align_closes", "from_couples", "full_window",
    "held_series", "price_matrix", "walk_forward",
]


#: How :func:`walk_forward` tests each formation window.
ENGINES = ("sliding", "batch")


@dataclass(frozen=True)
class WalkForwardParams:
    """Schedule of the walk-forward, in candles of the panel's timeframe.

    ``z_window``: candles of the rolling z-score (mean and standard deviation of the spread
    computed with the formation's fixed hedge ratio). ``horizon``: candles after the
    trading window for which an open couple is still managed with its formation's values;
    it must cover the longest time stop. ``z_half_lives``: when positive, each couple's
    z-score window is that many of its own half-lives (at least 10 candles, at most
    ``z_window``), so a fast-reverting couple is judged on its recent spread and a slow
    one on a longer stretch; 0 (default) keeps the fixed ``z_window`` for every couple.
    """

    formation: int = 60 * 24
    reform_every: int = 24
    z_window: int = 100
    horizon: int = 7 * 24
    z_half_lives: float = 0.0

    def window_for(self, half_life: float) -> int:
        """Candles of a couple's z-score window, given its half-life in candles."""
        if self.z_half_lives == 0 or not np.isfinite(half_life):
            return self.z_window
        return int(min(max(np.ceil(self.z_half_lives * half_life), 10), self.z_window))

    def __post_init__(self) -> None:
        if self.reform_every < 1:
            raise ValueError(f"reform_every={self.reform_every} must be at least 1 candle")
        if self.z_window < 10:
            raise ValueError(f"z_window={self.z_window} must be at least 10 candles")
        if self.formation < max(100, self.z_window):
            raise ValueError(
                f"formation={self.formation} candles must be at least max(100, z_window="
                f"{self.z_window}) for the ADF lag search and the z-score"
            )
        if self.horizon < 0:
            raise ValueError(f"horizon={self.horizon} must be >= 0 candles")
        if not (isinstance(self.z_half_lives, int | float) and 0 <= self.z_half_lives <= 50):
            raise ValueError(
                f"z_half_lives={self.z_half_lives!r} must be a number of half-lives in "
                "[0, 50] (0: the fixed z_window for every couple)"
            )

    @property
    def span(self) -> int:
        """Candles a formation's values are valid for: trading window plus horizon."""
        return self.reform_every + self.horizon


@dataclass
class Formation:
    """One re-formation: the couples chosen at ``start`` and their causal series.

    ``couples`` has the selection columns (``y``, ``x``, ``alpha``, ``beta``,
    ``half_life`` ...) in quality order. ``z``, ``spread`` and ``spread_std`` have one row
    per couple and ``span`` columns: position ``j`` is the candle ``start + j``; NaN past
    the data.

    With the Kalman hedge (``selection.hedge: kalman``) the ratio moves: ``alpha`` and
    ``beta`` (same shape) are the filter's values after each candle, ``z`` and
    ``spread_std`` are the spread's over the couple's window *with that candle's ratio*
    (what an entry at that candle would hold), ``spread`` is ``log y - alpha_t - beta_t
    log x``. A couple entered keeps the ratio of its entry candle
    (:func:`held_series`). Without it both are None and the couple's ratio is the
    formation's.
    """

    start: int
    time: pd.Timestamp
    couples: pd.DataFrame
    z: np.ndarray
    spread: np.ndarray
    spread_std: np.ndarray
    universe: list[str] = field(default_factory=list)
    alpha: np.ndarray | None = None
    beta: np.ndarray | None = None


@dataclass
class Universe:
    """Aligned close panel and the walk-forward formations over it."""

    index: pd.DatetimeIndex
    coins: list[str]
    closes: np.ndarray  # (candles, coins), NaN where a coin has no candle
    opens: np.ndarray
    params: WalkForwardParams
    formations: list[Formation]

    def formation_at(self, row: int) -> int:
        """Index of the formation trading at candle ``row`` (-1 before the first)."""
        starts = np.fromiter((f.start for f in self.formations), dtype=np.int64)
        return int(np.searchsorted(starts, row, side="right")) - 1

    def col(self, coin: str) -> int:
        return self.coins.index(coin)

    def couple_rows(self) -> list[list[tuple[str, str, str, float, float, float]]]:
        """Per formation, its couples as plain tuples ``(name, y, x, alpha, beta,
        half_life)``: the plan's loop runs per candle and reads them there. Built once per
        universe (a sweep plans many variants on one)."""
        rows = self.__dict__.get("_couple_rows")
        if rows is None:
            rows = [
                [(f"{y}~{x}", y, x, float(a), float(b), float(h)) for y, x, a, b, h in zip(
                    f.couples["y"].tolist(), f.couples["x"].tolist(),
                    f.couples["alpha"].tolist(), f.couples["beta"].tolist(),
                    f.couples["half_life"].tolist(), strict=True)]
                if not f.couples.empty else []
                for f in self.formations
            ]
            self.__dict__["_couple_rows"] = rows
        return rows

    def tradable_from(self, startup: int) -> dict[str, int]:
        """Per coin, the first candle row Freqtrade's backtesting trades it: its first
        candle plus ``startup`` (Freqtrade drops each pair's first ``startup_candle_count``
        candles). Selection does not depend on it; the plan enters no couple before it.
        """
        finite = np.isfinite(self.closes)
        first = np.where(finite.any(axis=0), np.argmax(finite, axis=0), len(self.index))
        return {c: int(r) + startup for c, r in zip(self.coins, first, strict=True)}


def align_closes(frames: dict[str, pd.DataFrame], freq: pd.Timedelta) -> pd.DatetimeIndex:
    """The regular candle index spanning every frame's ``date`` column."""
    if not frames:
        raise ValueError("no candles: the universe is empty")
    starts = [f["date"].iloc[0] for f in frames.values() if len(f)]
    ends = [f["date"].iloc[-1] for f in frames.values() if len(f)]
    if not starts:
        raise ValueError("no candles: every frame is empty")
    return pd.date_range(min(starts), max(ends), freq=freq)


def price_matrix(
    frames: dict[str, pd.DataFrame], index: pd.DatetimeIndex, column: str
) -> np.ndarray:
    """One price column of every frame on ``index`` (candles, coins), NaN where a coin has
    no candle or a non-positive price; the layout of :attr:`Universe.closes`."""
    out = np.full((len(index), len(frames)), np.nan)
    for j, frame in enumerate(frames.values()):
        pos = index.get_indexer(pd.DatetimeIndex(frame["date"]))
        ok = pos >= 0
        values = frame[column].to_numpy(dtype=np.float64)
        out[pos[ok], j] = values[ok]
    out[~(out > 0)] = np.nan  # non-positive prices are not prices
    return out


def _window_z(
    log_y: np.ndarray, log_x: np.ndarray, beta: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """z-score and std (ddof 1) of the last value of ``log y - beta_t log x`` over each
    window of ``window`` candles ending at t, the ratio of t applied to the whole window
    (:func:`statarb.core.signals.latest_zscore` at every t). ``log_y``/``log_x`` hold
    ``window - 1`` candles before the first t; ``beta`` has one value per t."""
    wy = sliding_window_view(log_y, window)
    wx = sliding_window_view(log_x, window)
    seg = wy - beta[:, None] * wx
    std = seg.std(axis=1, ddof=1)
    std = np.where(std > 0, std, np.nan)
    return (seg[:, -1] - seg.mean(axis=1)) / std, std


def held_series(
    universe: Universe, formation: int, slot: int, row: int, *, alpha: float, beta: float,
    half_life: float,
) -> tuple[np.ndarray, np.ndarray]:
    """z-score and spread of a couple held at the fixed line ``alpha + beta log x`` from
    candle ``row`` to the end of its formation's span: how an open couple is judged (the live
    :meth:`statarb.ft.couples.CouplePlan.couple_exit` computes the same per candle).
    Without a moving ratio these are the formation's own arrays."""
    f = universe.formations[formation]
    span = universe.params.span
    j0 = row - f.start
    if f.beta is None:
        return f.z[slot, j0:], f.spread[slot, j0:]
    hi = min(f.start + span, len(universe.index))
    window = universe.params.window_for(half_life)
    lo = row - window + 1
    n = span - j0
    z, spread = np.full(n, np.nan), np.full(n, np.nan)
    if hi <= row or lo < 0:
        return z, spread
    ly = np.log(universe.closes[lo:hi, universe.col(str(f.couples["y"].iloc[slot]))])
    lx = np.log(universe.closes[lo:hi, universe.col(str(f.couples["x"].iloc[slot]))])
    zs, _ = _window_z(ly, lx, np.full(hi - row, beta), window)
    z[:hi - row] = zs
    spread[:hi - row] = ly[window - 1:] - beta * lx[window - 1:] - alpha
    return z, spread


def _kalman_series(
    log_closes: np.ndarray, start: int, span: int, window: int, iy: int, ix: int,
    kf: KalmanStart, filter_from: int,
) -> tuple[np.ndarray, ...]:
    """Spread, z, std, alpha and beta of a Kalman-hedged couple for candles
    ``start .. start + span``; the filter runs from ``filter_from`` (the candle after the
    formation window; before it the values are the formation's)."""
    hi = min(start + span, len(log_closes))
    out = [np.full(span, np.nan) for _ in range(5)]
    if hi <= start:
        return tuple(out)
    lo_f = min(filter_from, start)
    a, b = np.full(hi - lo_f, kf.alpha), np.full(hi - lo_f, kf.beta)
    if hi > filter_from:
        af, bf = kalman_filter(log_closes[filter_from:hi, iy], log_closes[filter_from:hi, ix], kf)
        a[filter_from - lo_f:], b[filter_from - lo_f:] = af, bf
    a, b = a[start - lo_f:], b[start - lo_f:]
    lo = start - window + 1
    ly, lx = log_closes[lo:hi, iy], log_closes[lo:hi, ix]
    # A candle the filter skipped (a missing price) has no ratio: nothing is decided there.
    z, std = _window_z(ly, lx, np.nan_to_num(b, nan=0.0), window)
    z[~np.isfinite(b)], std[~np.isfinite(b)] = np.nan, np.nan
    n = hi - start
    out[0][:n] = ly[window - 1:] - b * lx[window - 1:] - a
    out[1][:n], out[2][:n], out[3][:n], out[4][:n] = z, std, a, b
    return tuple(out)


def _kalman_arrays(n: int, span: int, kalman: bool) -> tuple[np.ndarray | None, ...]:
    if not kalman:
        return None, None
    return np.full((n, span), np.nan), np.full((n, span), np.nan)


def _formation_series(
    log_closes: np.ndarray, start: int, wf: WalkForwardParams, iy: int, ix: int, beta: float,
    alpha: float, half_life: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spread, rolling z and rolling std for candles ``start .. start + span`` (causal),
    over the couple's window (:meth:`WalkForwardParams.window_for`)."""
    window = wf.window_for(half_life)
    lo = start - window + 1
    hi = min(start + wf.span, len(log_closes))
    seg = log_closes[lo:hi, iy] - beta * log_closes[lo:hi, ix] - alpha
    s = pd.Series(seg)
    roll = s.rolling(window, min_periods=window)
    std = roll.std(ddof=1).to_numpy()
    std = np.where(std > 0, std, np.nan)
    z = (seg - roll.mean().to_numpy()) / std
    cut = window - 1
    out = [np.full(wf.span, np.nan) for _ in range(3)]
    n = hi - start
    out[0][:n], out[1][:n], out[2][:n] = seg[cut:], z[cut:], std[cut:]
    return out[0], out[1], out[2]


def walk_forward(
    frames: dict[str, pd.DataFrame],
    selection: SelectionParams,
    wf: WalkForwardParams,
    *,
    freq: pd.Timedelta | None = None,
    first: pd.Timestamp | None = None,
    anchor_hour: int = 0,
    min_history: int | None = None,
    engine: str = "sliding",
) -> Universe:
    """Run every re-formation over candles ``frames`` (coin -> OHLCV with ``date``).

    Re-formation times are the candles at ``anchor_hour`` (UTC) every ``reform_every``
    candles, from the first time a full formation window exists (or ``first``). A coin
    takes part in a formation when it has a candle for every row of the window *and*
    candles through the formation's span, unless its data runs to the end of the panel: a
    coin whose data stops before the others (a delisting, which Binance announces days
    ahead) is not chosen for a period it cannot be traded in. That is the listing
    calendar, not prices: only prices before the re-formation time enter the selection.

    ``min_history`` (default: the formation window) is how many candles a coin must have
    before a re-formation to take part. The strategy keeps the default, so a formation
    depends only on the candles of its window (what the live pairlist sees, and what
    Freqtrade's recursive-analysis checks); when Freqtrade starts trading a coin is the
    plan's business (:meth:`Universe.tradable_from`).

    ``engine``: ``"sliding"`` (default) slides the Engle-Granger sums from one formation
    window to the next (:class:`statarb.core.sliding.SlidingScan`); ``"batch"`` tests every
    window from scratch (:func:`statarb.core.cointegration.engle_granger`). Same couples, same
    statistics to rounding; the batch engine is there to check and time the other.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r} must be one of {ENGINES}")
    min_history = wf.formation if min_history is None else min_history
    if min_history < wf.formation:
        raise ValueError(
            f"min_history={min_history} must be at least the formation window ({wf.formation})"
        )
    freq = pd.Timedelta(hours=1) if freq is None else freq
    index = align_closes(frames, freq)
    coins = list(frames)
    closes = price_matrix(frames, index, "close")
    opens = price_matrix(frames, index, "open")
    log_closes = np.log(closes)
    finite = np.isfinite(log_closes)
    # Last row of each coin's data (availability, not price).
    first_row = np.where(finite.any(axis=0), np.argmax(finite, axis=0), len(index))
    last_row = np.where(finite.any(axis=0), len(index) - 1 - np.argmax(finite[::-1], axis=0), -1)
    # Complete-window test in O(1) per coin: cumulative count of valid candles.
    valid_cum = np.vstack([np.zeros((1, len(coins)), dtype=np.int64), np.cumsum(finite, axis=0)])
    candle_hours = freq / pd.Timedelta(hours=1)

    # With selection stability, each formation also looks at the windows of the
    # stable_of - 1 re-formations before it.
    history = history_length(wf.formation, selection, wf.reform_every)
    earliest = history
    if first is not None:
        earliest = max(earliest, int(index.searchsorted(pd.Timestamp(first))))
    starts = [
        r for r in range(earliest, len(index))
        if index[r].hour == anchor_hour and (r - earliest) >= 0
    ]
    # Keep the cadence exact when reform_every is not a day.
    if starts:
        starts = list(range(starts[0], len(index), wf.reform_every))

    # A panel shorter than a formation window has no formation to slide between (Freqtrade's
    # recursive-analysis and a fresh dry-run start from such panels).
    # A selection that judges a couple on both orientations needs the second only where
    # the first passes its threshold (SlidingScan's prune).
    prune = selection.max_pvalue if selection.both_orientations else None
    scan = (SlidingScan(log_closes, coins, wf.formation, prune=prune)
            if engine == "sliding" and starts else None)
    formations: list[Formation] = []
    for start in starts:
        lo = start - history
        complete = (valid_cum[start] - valid_cum[lo]) == history
        usable = (
            complete
            & (first_row + min_history <= start)
            & ((last_row == len(index) - 1) | (last_row >= start + wf.span - 1))
        )
        members = [c for c, ok in zip(coins, usable, strict=True) if ok]
        if len(members) < 2:
            chosen = pd.DataFrame(columns=["y", "x", "alpha", "beta", "half_life"])
        else:
            cols = [coins.index(c) for c in members]
            window = pd.DataFrame(log_closes[lo:start, cols], columns=members,
                                  index=pd.RangeIndex(lo, start))
            chosen = choose_couples(window, selection, candle_hours=candle_hours,
                                    step=wf.reform_every, scan=scan)
        chosen = chosen.reset_index(drop=True)
        formations.append(_series(log_closes, coins, chosen, wf, start, start, index, members))
    return Universe(index, coins, closes, opens, wf, formations)


def _series(
    log_closes: np.ndarray, coins: list[str], chosen: pd.DataFrame, wf: WalkForwardParams,
    start: int, filter_from: int, index: pd.DatetimeIndex, members: list[str],
) -> Formation:
    """The formation of ``chosen`` valued from candle row ``start`` over ``wf.span``."""
    n = len(chosen)
    z, sp, sd = (np.full((n, wf.span), np.nan) for _ in range(3))
    kalman = has_kalman_state(chosen)
    al, be = _kalman_arrays(n, wf.span, kalman)
    for i, row in enumerate(chosen.itertuples(index=False)):
        iy, ix = coins.index(row.y), coins.index(row.x)
        if kalman:
            assert al is not None and be is not None
            sp[i], z[i], sd[i], al[i], be[i] = _kalman_series(
                log_closes, start, wf.span, wf.window_for(float(row.half_life)), iy, ix,
                KalmanStart.from_row(row), filter_from,
            )
        else:
            sp[i], z[i], sd[i] = _formation_series(
                log_closes, start, wf, iy, ix, float(row.beta), float(row.alpha),
                float(row.half_life),
            )
    return Formation(start, index[start], chosen, z, sp, sd, members, al, be)


def full_window(
    frames: dict[str, pd.DataFrame],
    selection: SelectionParams,
    z_window: int,
    start: pd.Timestamp,
    *,
    freq: pd.Timedelta | None = None,
) -> Universe:
    """One formation on every candle from ``start`` to the end, traded over that same span.

    This is the naive baseline's hindsight: the hedge ratio is fitted on the very period it
    trades. It exists to measure what walk-forward selection costs or earns against it,
    never to trade.
    """
    freq = pd.Timedelta(hours=1) if freq is None else freq
    index = align_closes(frames, freq)
    closes = price_matrix(frames, index, "close")
    opens = price_matrix(frames, index, "open")
    first = int(index.searchsorted(pd.Timestamp(start)))
    span = len(index) - first
    wf = WalkForwardParams(
        formation=max(100, z_window), reform_every=max(span, 1), z_window=z_window, horizon=0
    )
    if first < z_window or span < wf.formation:
        raise ValueError(
            f"start={start} leaves {first} candles before it (z_window={z_window} needed) "
            f"and {span} after it (at least {wf.formation} needed)"
        )
    log_closes = np.log(closes)
    complete = np.isfinite(log_closes[first - z_window + 1:]).all(axis=0)
    members = [c for c, ok in zip(frames, complete, strict=True) if ok]
    cols = [list(frames).index(c) for c in members]
    window = pd.DataFrame(log_closes[first:, cols], columns=members)
    chosen = choose_couples(window, selection, candle_hours=freq / pd.Timedelta(hours=1))
    form = _series(log_closes, list(frames), chosen.reset_index(drop=True), wf, first, first,
                   index, members)
    return Universe(index, list(frames), closes, opens, wf, [form])


def from_couples(
    frames: dict[str, pd.DataFrame],
    couples: pd.DataFrame,
    wf: WalkForwardParams,
    start: int,
    *,
    freq: pd.Timedelta | None = None,
    filter_from: int | None = None,
) -> Universe:
    """A universe with one formation of given ``couples`` (``y``, ``x``, ``alpha``,
    ``beta``, ``half_life`` in candles, coin names), valued from candle row ``start``.

    Live, the couples come from the pairlist's published selection rather than from a
    walk-forward over history; this gives them the same causal spread and z-score.
    Kalman-hedged couples (:func:`statarb.core.hedge.has_kalman_state`) need
    ``filter_from``, the row of the first candle after their formation window: their
    filter runs from there, as the walk-forward's does.
    """
    freq = pd.Timedelta(hours=1) if freq is None else freq
    index = align_closes(frames, freq)
    coins = list(frames)
    closes = price_matrix(frames, index, "close")
    opens = price_matrix(frames, index, "open")
    if not wf.z_window - 1 <= start < len(index):
        raise ValueError(
            f"start={start} must leave z_window-1={wf.z_window - 1} candles before it, "
            f"within {len(index)} candles"
        )
    missing = sorted({*couples.get("y", []), *couples.get("x", [])} - set(coins))
    if missing:
        raise ValueError(f"couples name coins without candles: {missing}")
    span = max(len(index) - start, 1)
    params = WalkForwardParams(
        formation=max(100, wf.z_window), reform_every=span, z_window=wf.z_window, horizon=0,
        z_half_lives=wf.z_half_lives,
    )
    if has_kalman_state(couples) and filter_from is None:
        raise ValueError("Kalman-hedged couples need filter_from, the row after their "
                         "formation window")
    form = _series(np.log(closes), coins, couples.reset_index(drop=True), params, start,
                   start if filter_from is None else filter_from, index, coins)
    return Universe(index, coins, closes, opens, params, [form])

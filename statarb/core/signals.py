"""Z-score trading rules of a couple and the walk-forward plan of couple trades.

The rules are pure functions of one candle's values (``entry_side``, ``exit_reason``,
``edge_ok``, ``couple_pnl``) so the backtest plan and a live bot decide the same way.

:func:`plan_trips` runs the rules candle by candle over a :class:`~statarb.core.walkforward.
Universe`: which couples open and close, respecting "a coin is in at most one open couple"
and the open-couple limit. A decision at candle row ``t`` uses values up to and including
``t`` (the candle has closed); the orders fill at the open of ``t + 1``, which is how
Freqtrade acts on a signal. The plan is causal: cutting the data at any candle leaves every
decision before it unchanged (tested).

Sides: ``+1`` is *long the spread* (long y, short x; entered when z is low), ``-1`` is
*short the spread* (short y, long x; entered when z is high).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from statarb.core.params import reject_unknown
from statarb.core.walkforward import Universe, held_series

__all__ = [
    "EXIT_REASONS",
    "CoinView",
    "Plan",
    "SignalParams",
    "Trip",
    "build_plan",
    "coin_views",
    "couple_name",
    "couple_pnl",
    "edge_ok",
    "entry_side",
    "exit_reason",
    "latest_zscore",
    "plan_trips",
    "trips_frame",
]

EXIT_REASONS = {
    "z_exit": "the z-score came back to exit_z",
    "z_stop": "the z-score reached stop_z (the relationship may have broken)",
    "time_stop": "held longer than time_stop_half_lives half-lives",
    "pair_stop": "the couple's combined P&L fell below -pair_stop",
    "horizon": "past the formation's horizon (no more values for its hedge ratio)",
}


STOPS = frozenset({"z_stop", "time_stop", "pair_stop"})


@dataclass(frozen=True)
class SignalParams:
    """Thresholds of the z-score rules. Validated on construction.

    ``pair_stop`` is a loss as a fraction of the couple's notional (0.05 = 5%).
    ``min_edge_ratio``: enter only when the expected reversion profit, ``(|z| - exit_z) *
    spread std`` per unit of y notional, spread over both legs' notional, is at least this
    many times ``round_trip_cost`` (fees of four fills as a fraction of notional); 0 turns
    the filter off.
    """

    entry_z: float = 2.0
    exit_z: float = 0.0
    stop_z: float = 4.0
    time_stop_half_lives: float = 3.0
    pair_stop: float = 0.05
    max_open_couples: int = 5
    round_trip_cost: float = 0.002
    min_edge_ratio: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.entry_z < self.stop_z:
            raise ValueError(
                f"entry_z={self.entry_z} and stop_z={self.stop_z} must satisfy "
                "0 < entry_z < stop_z"
            )
        if not -self.entry_z < self.exit_z < self.entry_z:
            raise ValueError(
                f"exit_z={self.exit_z} must be strictly between -entry_z and entry_z="
                f"{self.entry_z} (an exit level beyond the entry level would exit at once)"
            )
        if not self.time_stop_half_lives > 0:
            raise ValueError(
                f"time_stop_half_lives={self.time_stop_half_lives} must be positive"
            )
        if not 0 < self.pair_stop <= 1:
            raise ValueError(f"pair_stop={self.pair_stop} must be in (0, 1]")
        if self.max_open_couples < 1:
            raise ValueError(f"max_open_couples={self.max_open_couples} must be >= 1")
        if self.round_trip_cost < 0 or self.min_edge_ratio < 0:
            raise ValueError("round_trip_cost and min_edge_ratio must be >= 0")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SignalParams:
        reject_unknown("signal parameter", values, (f.name for f in fields(cls)))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def couple_name(y: str, x: str) -> str:
    return f"{y}~{x}"


def entry_side(z: float, p: SignalParams) -> int:
    """+1 (long spread) when z <= -entry_z, -1 (short spread) when z >= entry_z, else 0.

    Never beyond the stop: a z-score already at stop_z is a broken couple, not a bargain.
    """
    if not math.isfinite(z) or abs(z) >= p.stop_z:
        return 0
    if z >= p.entry_z:
        return -1
    if z <= -p.entry_z:
        return 1
    return 0


def exit_reason(
    z: float, side: int, held: int, half_life: float, pnl: float, p: SignalParams
) -> str | None:
    """Why an open couple exits at this candle, or None to hold.

    ``held``: candles since the entry signal; ``half_life`` in candles; ``pnl`` combined
    P&L as a fraction of notional. Order: z stop, z exit, pair stop, time stop.
    """
    if side not in (1, -1):
        raise ValueError(f"side={side} must be +1 (long spread) or -1 (short spread)")
    if math.isfinite(z):
        away = -side * z  # how far z is on the side it was entered, in sigmas
        if away >= p.stop_z:
            return "z_stop"
        # Short spread exits when z <= exit_z; long spread when z >= -exit_z.
        if (side == -1 and z <= p.exit_z) or (side == 1 and z >= -p.exit_z):
            return "z_exit"
    if math.isfinite(pnl) and pnl <= -p.pair_stop:
        return "pair_stop"
    if math.isfinite(half_life) and held >= p.time_stop_half_lives * half_life:
        return "time_stop"
    return None


def latest_zscore(log_y: np.ndarray, log_x: np.ndarray, beta: float) -> float:
    """z-score of the last value of the spread ``log y - beta log x`` within the window
    given (mean and standard deviation of the window, ddof 1; NaN for a flat window).

    How an open couple is judged at a candle: its own hedge ratio over the last
    ``z_window`` candles up to that candle, the same value the walk-forward plan computes
    (the intercept does not change a z-score).
    """
    if len(log_y) != len(log_x) or len(log_y) < 2:
        raise ValueError(f"need two equal windows of at least 2 candles, got {len(log_y)} "
                         f"and {len(log_x)}")
    seg = np.asarray(log_y, dtype=float) - beta * np.asarray(log_x, dtype=float)
    std = float(np.std(seg, ddof=1))
    return (float(seg[-1]) - float(np.mean(seg))) / std if std > 0 else math.nan


def edge_ok(z: float, spread_std: float, beta: float, p: SignalParams) -> bool:
    """Expected reversion profit per unit of total notional clears the costs."""
    if p.min_edge_ratio == 0:
        return True
    if not (math.isfinite(z) and math.isfinite(spread_std)):
        return False
    expected = (abs(z) - abs(p.exit_z)) * spread_std / (1 + abs(beta))
    return expected >= p.min_edge_ratio * p.round_trip_cost


def couple_pnl(
    side: int, beta: float, py0: float, px0: float, py: float, px: float
) -> float:
    """Combined P&L of both legs as a fraction of the couple's notional (before costs).

    Notionals are split 1 : |beta| (y : x); y is long when ``side`` is +1.
    """
    w = abs(beta)
    ry, rx = py / py0 - 1.0, px / px0 - 1.0
    sx = -side if beta > 0 else side  # a negative beta hedges with the same direction
    return (side * ry + sx * w * rx) / (1.0 + w)


@dataclass(frozen=True)
class Trip:
    """One planned couple trade: entry decided at ``entry_row``, exit at ``exit_row``.

    Rows are candle positions of the universe index; the orders fill at the open of the
    next candle. ``exit_row`` is -1 while the trip is still open at the end of the data.
    """

    couple: str
    y: str
    x: str
    formation: int
    slot: int
    side: int
    alpha: float
    beta: float
    half_life: float
    entry_row: int
    z_entry: float
    exit_row: int = -1
    reason: str = ""

    @property
    def y_long(self) -> bool:
        return self.side == 1

    @property
    def x_long(self) -> bool:
        return (self.side == 1) == (self.beta < 0)


def plan_trips(
    universe: Universe,
    p: SignalParams,
    *,
    blocked: np.ndarray | None = None,
    start_row: int | None = None,
    busy: set[str] | None = None,
    open_couples: int = 0,
    tradable_from: dict[str, int] | None = None,
    shared: frozenset[str] = frozenset(),
) -> list[Trip]:
    """Simulate the rules over every candle and return the couple trades, in entry order.

    ``blocked[t]`` True stops new entries at ``t`` (shock cooldown, unknown regime).
    Live, only the last candle is decided: ``start_row`` is that candle, ``busy`` the
    coins already in open trades and ``open_couples`` the couples already open.
    ``tradable_from[coin]``: no couple with that coin is entered at an earlier row (in
    backtesting, the candles before Freqtrade trades the pair). ``shared``: coins that may
    be in several open couples at once (research only: a reference coin's legs netted;
    Freqtrade holds one trade per pair, so the strategy never passes any).
    """
    n = len(universe.index)
    if blocked is not None and len(blocked) != n:
        raise ValueError(f"blocked has {len(blocked)} values for {n} candles")
    forms = universe.formations
    if not forms:
        return []
    closes, opens = universe.closes, universe.opens
    col = {c: i for i, c in enumerate(universe.coins)}
    span = universe.params.span
    table = universe.couple_rows()
    no_block = blocked is None
    tradable = tradable_from or {}
    trips: list[Trip] = []
    open_: list[int] = []  # indexes into trips
    held_z: dict[int, np.ndarray] = {}  # trips whose ratio is their entry candle's
    busy = set(busy or ())
    # Couples stopped out (z, time or pair stop) re-arm only once z is back inside entry_z:
    # re-entering the same divergence at once would pay fees on a relationship that failed.
    disarmed: set[str] = set()
    k = -1
    next_start = forms[0].start
    first = forms[0].start if start_row is None else max(forms[0].start, start_row)
    for t in range(first, n):
        while t >= next_start:
            k += 1
            next_start = forms[k + 1].start if k + 1 < len(forms) else n + 1
        # 1. Exits of open trips, on their own formation's values.
        freed: set[str] = set()
        for idx in list(open_):
            trip = trips[idx]
            f = forms[trip.formation]
            j = t - f.start
            if j >= span:
                reason: str | None = "horizon"
            else:
                iy, ix = col[trip.y], col[trip.x]
                pnl = couple_pnl(
                    trip.side, trip.beta, opens[trip.entry_row + 1, iy],
                    opens[trip.entry_row + 1, ix], closes[t, iy], closes[t, ix],
                )
                held = held_z.get(idx)
                z_now = f.z[trip.slot, j] if held is None else held[t - trip.entry_row]
                reason = exit_reason(
                    float(z_now), trip.side, t - trip.entry_row, trip.half_life, pnl, p,
                )
            if reason:
                trips[idx] = _close(trip, t, reason)
                open_.remove(idx)
                freed.update(c for c in (trip.y, trip.x) if c not in shared)
                if reason in STOPS:
                    disarmed.add(trip.couple)
        # 2. Entries from the current formation (coins freed now re-enter from t + 1).
        rows = table[k]
        f = forms[k]
        j = t - f.start
        if not rows or j >= span:  # no couples, or a stale formation (no newer one yet)
            busy -= freed
            continue
        # The last row may signal too: live, the next candle is when the orders fill.
        can_enter = no_block or not blocked[t]
        zs = f.z[:, j].tolist()
        # A moving (Kalman) ratio: an entry holds the ratio of its candle.
        moving = None if f.beta is None or f.alpha is None else (
            f.alpha[:, j].tolist(), f.beta[:, j].tolist())
        for slot, (name, y, x, alpha, beta, half_life) in enumerate(rows):
            z = zs[slot]
            if name in disarmed:
                if math.isfinite(z) and abs(z) < p.entry_z:
                    disarmed.discard(name)
                continue
            if not can_enter or len(open_) + open_couples >= p.max_open_couples:
                continue
            if y in busy or x in busy or y in freed or x in freed:
                continue
            if t < tradable.get(y, 0) or t < tradable.get(x, 0):
                continue
            side = entry_side(z, p)
            if side == 0:
                continue
            if moving is not None:
                alpha, beta = moving[0][slot], moving[1][slot]
            if not edge_ok(z, float(f.spread_std[slot, j]), beta, p):
                continue
            trips.append(Trip(name, y, x, k, slot, side, alpha, beta, half_life, t, z))
            if moving is not None:
                held_z[len(trips) - 1] = held_series(
                    universe, k, slot, t, alpha=alpha, beta=beta, half_life=half_life)[0]
            open_.append(len(trips) - 1)
            busy.update(c for c in (y, x) if c not in shared)
        busy -= freed
    return trips


def _close(trip: Trip, row: int, reason: str) -> Trip:
    values = asdict(trip)
    values.update(exit_row=row, reason=reason)
    return Trip(**values)


@dataclass
class CoinView:
    """What the strategy shows for one coin per candle: the couple it belongs to.

    The open trip's values when the coin is in an open couple, else the current
    formation's couple containing the coin, else NaN / empty.
    """

    couple: np.ndarray  # object: couple name or ""
    role: np.ndarray  # object: "y", "x" or ""
    z: np.ndarray
    spread: np.ndarray
    beta: np.ndarray
    half_life: np.ndarray


def coin_views(universe: Universe, trips: list[Trip]) -> dict[str, CoinView]:
    n = len(universe.index)
    views = {
        c: CoinView(
            np.full(n, "", dtype=object), np.full(n, "", dtype=object),
            np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan),
        )
        for c in universe.coins
    }
    forms = universe.formations

    def paint(coin: str, role: str, f_idx: int, slot: int, lo: int, hi: int, name: str,
              held: tuple[np.ndarray, np.ndarray, float] | None = None) -> None:
        f = forms[f_idx]
        hi = min(hi, f.start + universe.params.span, n)
        if hi <= lo:
            return
        v = views[coin]
        j0, j1 = lo - f.start, hi - f.start
        v.couple[lo:hi], v.role[lo:hi] = name, role
        v.half_life[lo:hi] = float(f.couples["half_life"].iloc[slot])
        if held is not None:  # held at its entry candle's ratio
            z, spread, beta = held
            v.z[lo:hi], v.spread[lo:hi], v.beta[lo:hi] = z[:hi - lo], spread[:hi - lo], beta
            return
        v.z[lo:hi] = f.z[slot, j0:j1]
        v.spread[lo:hi] = f.spread[slot, j0:j1]
        v.beta[lo:hi] = (float(f.couples["beta"].iloc[slot]) if f.beta is None
                         else f.beta[slot, j0:j1])

    for k, f in enumerate(forms):
        end = forms[k + 1].start if k + 1 < len(forms) else n
        for slot, row in enumerate(f.couples.itertuples(index=False)):
            name = couple_name(row.y, row.x)
            paint(row.y, "y", k, slot, f.start, end, name)
            paint(row.x, "x", k, slot, f.start, end, name)
    for trip in trips:  # open trips take priority
        end = trip.exit_row + 1 if trip.exit_row >= 0 else n
        held = None
        if forms[trip.formation].beta is not None:  # one series for both legs
            held = (*held_series(universe, trip.formation, trip.slot, trip.entry_row,
                                 alpha=trip.alpha, beta=trip.beta, half_life=trip.half_life),
                    trip.beta)
        for coin, role in ((trip.y, "y"), (trip.x, "x")):
            paint(coin, role, trip.formation, trip.slot, trip.entry_row, end, trip.couple, held)
    return views


def trips_frame(universe: Universe, trips: list[Trip]) -> pd.DataFrame:
    """The trips as a table with candle times (for reports and tests)."""
    rows = []
    for t in trips:
        d = asdict(t)
        d["entry_time"] = universe.index[t.entry_row]
        d["exit_time"] = universe.index[t.exit_row] if t.exit_row >= 0 else pd.NaT
        rows.append(d)
    return pd.DataFrame(rows)


@dataclass
class Plan:
    """Couple trades planned for one set of parameters, indexed the way a strategy reads
    them: the trip behind each entry signal, what each coin shows, and each coin's entry
    signals as ``(row, long, enter_tag)``."""

    key: tuple
    trips: list[Trip]
    by_entry: dict[tuple[str, int], Trip]
    views: dict[str, CoinView]
    signals: dict[str, list[tuple[int, bool, str]]]


def build_plan(
    universe: Universe,
    p: SignalParams,
    *,
    blocked: np.ndarray | None = None,
    key: tuple = (),
    start_row: int | None = None,
    busy: set[str] | None = None,
    open_couples: int = 0,
    tradable_from: dict[str, int] | None = None,
) -> Plan:
    from statarb.core.legs import leg_tag, x_is_long  # legs imports nothing from here

    trips = plan_trips(universe, p, blocked=blocked, start_row=start_row, busy=busy,
                       open_couples=open_couples, tradable_from=tradable_from)
    signals: dict[str, list[tuple[int, bool, str]]] = {c: [] for c in universe.coins}
    for trip in trips:
        signals[trip.y].append((trip.entry_row, trip.side == 1, leg_tag(trip.couple, "y")))
        signals[trip.x].append(
            (trip.entry_row, x_is_long(trip.side, trip.beta), leg_tag(trip.couple, "x"))
        )
    return Plan(
        key, trips, {(t.couple, t.entry_row): t for t in trips},
        coin_views(universe, trips), signals,
    )

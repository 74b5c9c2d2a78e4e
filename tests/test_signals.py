"""Z-score rules and the couple-trade plan on crafted series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from statarb.core.signals import (
    SignalParams,
    build_plan,
    couple_pnl,
    edge_ok,
    entry_side,
    exit_reason,
    plan_trips,
)
from statarb.core.walkforward import Formation, Universe, WalkForwardParams

P = SignalParams()


def test_entry_side_thresholds() -> None:
    assert entry_side(2.0, P) == -1  # z high: short the spread
    assert entry_side(-2.0, P) == 1  # z low: long the spread
    assert entry_side(1.99, P) == 0
    assert entry_side(-1.99, P) == 0
    assert entry_side(4.0, P) == 0  # at the stop: a broken couple, no entry
    assert entry_side(-4.5, P) == 0
    assert entry_side(math.nan, P) == 0


@pytest.mark.parametrize(
    ("z", "side", "held", "pnl", "expected"),
    [
        (1.0, -1, 1, 0.0, None),
        (0.0, -1, 1, 0.0, "z_exit"),  # crossed back to exit_z
        (-0.3, -1, 1, 0.0, "z_exit"),
        (0.1, 1, 1, 0.0, "z_exit"),  # long spread exits when z >= -exit_z
        (-1.0, 1, 1, 0.0, None),
        (4.0, -1, 1, 0.0, "z_stop"),
        (-4.2, 1, 1, 0.0, "z_stop"),
        (3.9, -1, 1, -0.06, "pair_stop"),
        (3.9, -1, 30, 0.0, "time_stop"),  # 3 half-lives of 10 candles
        (3.9, -1, 29, 0.0, None),
        (math.nan, -1, 1, 0.0, None),  # no z: hold (other stops still apply)
        (math.nan, -1, 31, 0.0, "time_stop"),
    ],
)
def test_exit_reason(z: float, side: int, held: int, pnl: float, expected: str | None) -> None:
    assert exit_reason(z, side, held, 10.0, pnl, P) == expected


def test_exit_z_above_zero_exits_earlier() -> None:
    p = SignalParams(exit_z=0.5)
    assert exit_reason(0.5, -1, 1, 10, 0, p) == "z_exit"
    assert exit_reason(-0.5, 1, 1, 10, 0, p) == "z_exit"
    assert exit_reason(-0.6, 1, 1, 10, 0, p) is None


def test_exit_reason_rejects_bad_side() -> None:
    with pytest.raises(ValueError, match="side=0"):
        exit_reason(1.0, 0, 1, 10, 0, P)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"entry_z": 2.0, "exit_z": 2.5}, "exit_z=2.5"),
        ({"entry_z": 4.0, "stop_z": 3.0}, "0 < entry_z < stop_z"),
        ({"time_stop_half_lives": 0}, "time_stop_half_lives=0"),
        ({"pair_stop": 0}, "pair_stop=0"),
        ({"max_open_couples": 0}, "max_open_couples=0"),
    ],
)
def test_signal_params_validation(values: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SignalParams(**values)


def test_signal_params_from_dict_names_unknown_keys() -> None:
    with pytest.raises(ValueError, match=r"\['entry'\].*allowed"):
        SignalParams.from_dict({"entry": 2})


def test_couple_pnl_matches_leg_returns() -> None:
    # Long the spread with beta 0.5: long 1/1.5 of notional in y, short 0.5/1.5 in x.
    pnl = couple_pnl(1, 0.5, 100.0, 10.0, 110.0, 10.0)
    assert pnl == pytest.approx((0.10 * 1 + 0.0) / 1.5)
    pnl = couple_pnl(1, 0.5, 100.0, 10.0, 100.0, 12.0)  # x up 20% hurts the short x leg
    assert pnl == pytest.approx(-0.5 * 0.20 / 1.5)
    # A negative beta hedges with the same direction: both legs long.
    assert couple_pnl(1, -0.5, 100.0, 10.0, 100.0, 12.0) == pytest.approx(0.5 * 0.20 / 1.5)


def test_edge_filter() -> None:
    p = SignalParams(min_edge_ratio=2.0, round_trip_cost=0.001)
    # (|z| - exit) * std / (1 + beta) = 2 * 0.002 / 2 = 0.002 >= 2 * 0.001
    assert edge_ok(2.0, 0.002, 1.0, p)
    assert not edge_ok(2.0, 0.0019, 1.0, p)
    assert edge_ok(2.0, 0.0, 1.0, SignalParams())  # filter off


# ---------------------------------------------------------------- the plan, crafted
WF = WalkForwardParams(formation=100, reform_every=50, z_window=10, horizon=100)
N = 400


def _universe(z_paths: dict[str, np.ndarray], half_life: float = 10.0,
              closes: dict[str, np.ndarray] | None = None) -> Universe:
    """One formation at row 100 whose couples' z-scores are the given paths."""
    coins = ["A", "B", "C", "D"]
    index = pd.date_range("2025-01-01", periods=N, freq="1h", tz="UTC")
    px = np.ones((N, len(coins)))
    for c, path in (closes or {}).items():
        px[:, coins.index(c)] = path
    names = list(z_paths)
    couples = pd.DataFrame({
        "y": [n.split("~")[0] for n in names],
        "x": [n.split("~")[1] for n in names],
        "alpha": 0.0, "beta": 1.0, "half_life": half_life,
    })
    z = np.vstack([np.asarray(z_paths[n], dtype=float) for n in names])
    nan = np.full_like(z, np.nan)
    form = Formation(100, index[100], couples, z, nan, np.full_like(z, 0.01), coins)
    return Universe(index, coins, px, px.copy(), WF, [form])


def _path(points: dict[int, float], fill: float = 0.0) -> np.ndarray:
    """z path over the formation's span: ``points`` are {offset: z}, held until the next."""
    out = np.full(WF.span, fill)
    keys = sorted(points)
    for a, b in zip(keys, [*keys[1:], WF.span], strict=True):
        out[a:b] = points[a]
    return out


def test_plan_enter_and_exit_on_crossing() -> None:
    u = _universe({"A~B": _path({0: 0.5, 5: 2.1, 8: 1.0, 12: -0.1})})
    (trip,) = plan_trips(u, P)
    assert (trip.entry_row, trip.exit_row, trip.reason) == (105, 112, "z_exit")
    assert trip.side == -1 and not trip.y_long and trip.x_long
    assert trip.z_entry == pytest.approx(2.1)


def test_plan_stop_disarms_until_z_returns_inside_entry() -> None:
    path = _path({0: 0.0, 5: 2.5, 7: 4.2, 9: 3.0, 20: 1.5, 22: 2.2, 30: 0.0})
    trips = plan_trips(_universe({"A~B": path}, half_life=100), P)
    assert [(t.entry_row, t.exit_row, t.reason) for t in trips] == [
        (105, 107, "z_stop"),
        (122, 130, "z_exit"),  # not at 109 (z 3.0 still beyond entry): re-armed at 120
    ]


def test_plan_time_stop_after_half_lives_then_rearm() -> None:
    path = _path({0: 0.0, 5: -2.5, 30: -1.0, 32: -2.2, 60: 0.0})
    trips = plan_trips(_universe({"A~B": path}, half_life=4.0), P)
    assert [(t.entry_row, t.exit_row, t.reason) for t in trips] == [
        (105, 117, "time_stop"),  # 3 half-lives of 4 candles
        (132, 144, "time_stop"),  # not re-entered at 118 while z stayed at -2.5
    ]


def test_plan_pair_stop_on_combined_pnl() -> None:
    y = np.ones(N)
    y[120:] = 0.85  # long the spread (long y), y falls 15%: -7.5% of the couple notional
    trips = plan_trips(
        _universe({"A~B": _path({0: 0.0, 5: -2.5})}, half_life=100, closes={"A": y}), P
    )
    assert (trips[0].exit_row, trips[0].reason) == (120, "pair_stop")


def test_plan_a_coin_is_in_one_open_couple() -> None:
    both = _path({0: 0.0, 5: 2.5, 20: 0.0})
    trips = plan_trips(_universe({"A~B": both, "A~C": both, "C~D": both}), P)
    entered = {(t.couple, t.entry_row) for t in trips}
    # A~C shares A with the better couple A~B; C~D is free.
    assert entered == {("A~B", 105), ("C~D", 105)}


def test_plan_a_shared_reference_is_in_several_open_couples() -> None:
    """Research only: a reference coin (here A) may hold legs of several open couples;
    the other coins still take part in one open couple at a time."""
    both = _path({0: 0.0, 5: 2.5, 20: 0.0})
    couples = {"B~A": both, "C~A": both, "D~A": both, "C~D": both}
    shared = plan_trips(_universe(couples), P, shared=frozenset({"A"}))
    assert {(t.couple, t.entry_row) for t in shared} == {
        ("B~A", 105), ("C~A", 105), ("D~A", 105)}  # C~D: C and D are taken
    alone = plan_trips(_universe(couples), P)
    assert {(t.couple, t.entry_row) for t in alone} == {("B~A", 105), ("C~D", 105)}
    # A freed shared coin does not hold anyone back: the later couples enter at once.
    later = _path({0: 0.0, 20: 2.5, 40: 0.0})
    trips = plan_trips(_universe({"B~A": both, "C~A": later}), P, shared=frozenset({"A"}))
    assert [(t.couple, t.entry_row) for t in trips] == [("B~A", 105), ("C~A", 120)]


def test_plan_freed_coin_reenters_from_the_next_candle() -> None:
    first = _path({0: 0.0, 5: 2.5, 20: 0.0})
    second = _path({0: 0.0, 20: 2.5, 40: 0.0})
    trips = plan_trips(_universe({"A~B": first, "A~C": second}), P)
    assert [(t.couple, t.entry_row, t.exit_row) for t in trips] == [
        ("A~B", 105, 120),
        ("A~C", 121, 140),  # z of A~C was already 2.5 at 120, when A was leaving A~B
    ]


def test_plan_respects_max_open_couples_and_blocked_candles() -> None:
    both = _path({0: 0.0, 5: 2.5, 20: 0.0})
    trips = plan_trips(_universe({"A~B": both, "C~D": both}), SignalParams(max_open_couples=1))
    assert [t.couple for t in trips] == ["A~B"]
    blocked = np.zeros(N, dtype=bool)
    blocked[100:110] = True
    trips = plan_trips(_universe({"A~B": both}), P, blocked=blocked)
    assert [t.entry_row for t in trips] == [110]  # first unblocked candle with |z| >= 2


def test_build_plan_signals_both_legs_on_the_entry_row() -> None:
    plan = build_plan(_universe({"A~B": _path({0: 0.0, 5: -2.5, 20: 0.0})}), P)
    assert plan.signals["A"] == [(105, True, "A~B")]  # long the spread: long y
    assert plan.signals["B"] == [(105, False, "A~B")]  # positive beta: short x
    assert plan.signals["C"] == []
    view = plan.views["A"]
    assert view.couple[104] == "A~B" and view.z[105] == pytest.approx(-2.5)
    assert view.couple[99] == ""  # before the first formation

"""The couple reconciler (statarb.core.legs.reconcile_couple) and the couple ledger.

Every rule on its own, then a property: whatever the legs hold, applying the repairs
leaves the couple flat, or both legs at one common fraction of their targets, on the
exchange's amount grid, within the ratio tolerance of the (new) targets.
"""

from __future__ import annotations

import math
import random

import pytest

from statarb.core.ledger import CoupleLedger, LegTarget
from statarb.core.legs import RATIO_TOLERANCE, LegView, reconcile_couple

WLD, ARB = "WLD/USDT:USDT", "ARB/USDT:USDT"
LEDGER = CoupleLedger("WLD~ARB@2025-11-07T01:00", LegTarget(WLD, 1200.0, 1.0),
                      LegTarget(ARB, -3100.0, 0.1), stage="open", since=1.0)


LEAVING = LEDGER.with_stage("exiting")


def view(position: float, trade: bool = True, filled: float | None = None,
         trade_amount: float | None = None, order_open: bool = False,
         stuck: bool = False) -> LegView:
    return LegView(position=position, trade_id=1 if trade else None,
                   trade_amount=position if trade_amount is None else trade_amount,
                   entry_filled=abs(position) if filled is None else filled,
                   order_open=order_open or stuck, order_stuck=stuck)


def actions(repairs) -> list[tuple[str, str]]:
    return [(r.action, r.role) for r in repairs]


def test_a_couple_in_ratio_is_kept() -> None:
    repairs = reconcile_couple(LEDGER, {"y": view(1200.0), "x": view(-3050.0)})
    assert actions(repairs) == [("keep", "")]


def test_an_open_order_is_waited_for_never_doubled() -> None:
    repairs = reconcile_couple(LEDGER, {"y": view(1200.0), "x": view(0.0, order_open=True)})
    assert actions(repairs) == [("wait", "x")]


def test_flat_couple_records_stale_trades_then_forgets_the_entry() -> None:
    """A trade still open on a flat position (its exit filled while the bot was down) is
    brought down to the exchange's record; the entry goes once no trade is open."""
    repairs = reconcile_couple(LEDGER, {"y": view(0.0, trade_amount=1200.0),
                                        "x": view(0.0, trade=False)})
    assert [(r.action, r.role, r.amount) for r in repairs] == [("record", "y", 1200.0)]
    repairs = reconcile_couple(LEDGER, {"y": view(0.0, trade=False),
                                        "x": view(0.0, trade=False)})
    assert actions(repairs) == [("forget", "")]


def test_a_leg_without_partner_is_closed() -> None:
    assert actions(reconcile_couple(LEDGER, {"y": view(1200.0), "x": view(0.0)})) == [
        ("close", "y")]
    # No trade owns it (a crash after the first fill): reduce-only close of the position.
    (repair,) = reconcile_couple(LEDGER, {"y": view(0.0, trade=False),
                                          "x": view(-3100.0, trade=False)})
    assert (repair.action, repair.role, repair.amount) == ("close_position", "x", 3100.0)


def test_a_leg_the_exchange_holds_and_no_trade_records_is_adopted() -> None:
    # Killed after the second fill reached the exchange, before the bot processed it.
    repairs = reconcile_couple(LEDGER, {"y": view(1200.0), "x": view(-3100.0, trade=False)})
    assert actions(repairs) == [("adopt", "x")]
    assert repairs[0].amount == 3100.0


def test_a_second_leg_partly_filled_is_topped_up_by_the_difference() -> None:
    (repair,) = reconcile_couple(LEDGER, {"y": view(1200.0), "x": view(-1860.0)})
    assert (repair.action, repair.role) == ("top_up", "x")
    assert repair.amount == pytest.approx(1240.0)


def test_top_up_is_rounded_up_to_the_step() -> None:
    (repair,) = reconcile_couple(LEDGER, {"y": view(700.0), "x": view(-3100.0)})
    assert (repair.action, repair.amount) == ("top_up", 500.0)
    ledger = CoupleLedger("c", LegTarget(WLD, 10.05, 0.1), LegTarget(ARB, -20.0, 0.1))
    (repair,) = reconcile_couple(ledger, {"y": view(5.0), "x": view(-20.0)})
    assert repair.amount == pytest.approx(5.1)


def test_when_top_ups_keep_failing_the_other_leg_is_trimmed_to_the_ratio() -> None:
    (repair,) = reconcile_couple(LEDGER, {"y": view(1200.0), "x": view(-1860.0)},
                                 top_up_failures=2)
    assert (repair.action, repair.role) == ("trim", "y")
    assert repair.amount == pytest.approx(480.0)  # 1200 -> 720 = 60%
    assert repair.targets == (720.0, -1860.0)


def test_a_leg_reduced_after_its_fill_is_not_topped_up_the_partner_is_trimmed() -> None:
    # A partial liquidation of ARB: its entry filled in full, the exchange took 30%.
    (repair,) = reconcile_couple(LEDGER, {"y": view(1200.0),
                                          "x": view(-2170.0, filled=3100.0)})
    assert (repair.action, repair.role) == ("trim", "y")
    assert repair.targets == (840.0, -2170.0)  # 70% of 1200
    # Freqtrade has not seen the reduction yet (its trade still says 3100): the same
    # trim, and the trade's record is brought down to what the exchange holds.
    record, repair = reconcile_couple(LEDGER, {"y": view(1200.0),
                                               "x": view(-2170.0, trade_amount=-3100.0)})
    assert (record.action, record.role, record.amount) == ("record", "x", 930.0)
    assert repair.action == "trim" and repair.targets == (840.0, -2170.0)
    # The y leg trimmed by hand on the exchange's website: ARB follows.
    (repair,) = reconcile_couple(LEDGER, {"y": view(900.0, filled=1200.0),
                                          "x": view(-3100.0)})
    assert (repair.action, repair.role) == ("trim", "x")
    assert repair.targets == (900.0, -2325.0)


def test_below_half_its_size_the_couple_is_closed() -> None:
    repairs = reconcile_couple(LEDGER, {"y": view(1200.0), "x": view(-900.0, filled=3100.0)})
    assert actions(repairs) == [("close", "y"), ("close", "x")]


def test_a_leg_above_its_target_is_trimmed_back() -> None:
    (repair,) = reconcile_couple(LEDGER, {"y": view(1500.0), "x": view(-3100.0)})
    assert (repair.action, repair.role, repair.amount) == ("trim", "y", 300.0)
    assert repair.targets == (1200.0, -3100.0)


def test_a_leg_on_the_wrong_side_is_closed() -> None:
    repairs = reconcile_couple(LEDGER, {"y": view(-1200.0), "x": view(-3100.0)})
    assert actions(repairs) == [("close", "y"), ("close", "x")]


# ---------------------------------------------------------------------- leaving
def test_a_leaving_couple_closes_what_a_partial_exit_left_and_its_partner() -> None:
    """Its exit began (a force exit of WLD filled 40 %, the rest cancelled): targets are
    zero, so both legs close; the open stage would have trimmed ARB to 60 % instead."""
    legs = {"y": view(726.0, filled=1200.0), "x": view(-3100.0)}
    assert actions(reconcile_couple(LEAVING, legs)) == [("close", "y"), ("close", "x")]
    assert actions(reconcile_couple(LEDGER, legs)) == [("trim", "x")]
    # Freqtrade's trade still says 1200: its record comes down too, in the same pass.
    legs["y"] = view(726.0, filled=1200.0, trade_amount=1200.0)
    repairs = reconcile_couple(LEAVING, legs)
    assert [(r.action, r.role, r.amount) for r in repairs] == [
        ("record", "y", 474.0), ("close", "y", 0.0), ("close", "x", 0.0)]


def test_a_leaving_couple_waits_only_for_the_leg_whose_order_is_open() -> None:
    repairs = reconcile_couple(LEAVING, {"y": view(726.0, order_open=True),
                                         "x": view(-3100.0)})
    assert actions(repairs) == [("wait", "y"), ("close", "x")]
    # An exit at market the exchange left resting is stuck: closed, not waited for.
    repairs = reconcile_couple(LEAVING, {"y": view(726.0, stuck=True), "x": view(0.0)})
    assert actions(repairs) == [("close", "y")]
    # Open stage: an open order still holds the whole couple.
    assert actions(reconcile_couple(LEDGER, {"y": view(726.0, order_open=True),
                                             "x": view(-3100.0)})) == [("wait", "y")]


def test_a_leaving_couple_closes_positions_no_trade_owns_and_then_forgets() -> None:
    (repair,) = reconcile_couple(LEAVING, {"y": view(0.0, trade=False),
                                           "x": view(-1500.0, trade=False)})
    assert (repair.action, repair.role, repair.amount) == ("close_position", "x", 1500.0)
    # Both legs whole and in ratio (the exit order never landed): still closed.
    assert actions(reconcile_couple(LEAVING, {"y": view(1200.0), "x": view(-3100.0)})) == [
        ("close", "y"), ("close", "x")]
    assert actions(reconcile_couple(LEAVING, {"y": view(0.0, order_open=True),
                                              "x": view(0.0)})) == [("wait", "y")]
    assert actions(reconcile_couple(LEAVING, {"y": view(0.0, trade=False),
                                              "x": view(0.0, trade=False)})) == [
        ("forget", "")]


def test_repairs_always_end_in_ratio_or_flat() -> None:
    """Random legs (fills, reductions, top-ups refused): apply the repairs as the exchange
    would (top-ups fill, trims and closes fill, adoptions record) until nothing is left to
    do; the couple is then flat or both legs hold one fraction of the original targets."""
    rng = random.Random(7)
    for trial in range(3000):
        leaving = trial % 3 == 0  # the couple's exit has begun: targets of zero
        steps = {"y": rng.choice([1.0, 0.1, 0.001]), "x": rng.choice([1.0, 0.1, 0.01])}
        ledger = CoupleLedger("c", LegTarget(WLD, rng.uniform(50, 5000) // steps["y"]
                                             * steps["y"] or steps["y"], steps["y"]),
                              LegTarget(ARB, -(rng.uniform(50, 5000) // steps["x"]
                                               * steps["x"] or steps["x"]), steps["x"]),
                              stage="exiting" if leaving else "open")
        state = {}
        for role in ("y", "x"):
            target = ledger.leg(role).amount
            fill = rng.choice([1.0, 1.0, rng.uniform(0.1, 1.0), 0.0])
            reduced = rng.choice([1.0, 1.0, rng.uniform(0.2, 1.0)])
            held = round(target * fill * reduced / steps[role]) * steps[role]
            # A reduction the trade has not seen: it still records the entry's fill.
            entry = round(target * fill / steps[role]) * steps[role]
            lagging = rng.random() < 0.2 and abs(entry) > abs(held)
            state[role] = view(held, trade=rng.random() > 0.1,
                               filled=abs(target * fill),
                               trade_amount=entry if lagging else None,
                               stuck=leaving and rng.random() < 0.2)
        refuse_top_ups = rng.random() < 0.3
        failures = 0
        for _ in range(10):
            repairs = reconcile_couple(ledger, state, top_up_failures=failures)
            kinds = {r.action for r in repairs}
            if kinds <= {"keep", "forget"}:
                break
            for r in repairs:
                v = state[r.role] if r.role else None
                sign = math.copysign(1, ledger.leg(r.role).amount) if r.role else 0
                if r.action == "adopt":
                    state[r.role] = view(v.position, filled=abs(v.position))
                elif r.action == "record":
                    state[r.role] = view(v.position, filled=v.entry_filled,
                                         stuck=v.order_stuck)
                elif r.action == "top_up":
                    if refuse_top_ups:
                        failures += 1
                    else:
                        state[r.role] = view(v.position + sign * r.amount,
                                             filled=v.entry_filled + r.amount)
                elif r.action == "trim":
                    state[r.role] = view(v.position - sign * r.amount, filled=v.entry_filled)
                    ledger = ledger.with_targets(*r.targets)
                elif r.action in ("close", "close_position"):
                    state[r.role] = view(0.0, trade=False)
        else:
            pytest.fail(f"no settled state: {ledger} {state} {repairs}")
        # Freqtrade's records match the exchange: no trade holds more than the position.
        for v in state.values():
            assert v.trade_id is None or abs(v.trade_amount - v.position) < 1e-9, (ledger, state)
        y, x = state["y"].position, state["x"].position
        if leaving:
            assert y == 0 and x == 0, (ledger, state)
            continue
        if y == 0 or x == 0:
            assert y == 0 and x == 0, (ledger, state)
            continue
        for role in ("y", "x"):
            leg = ledger.leg(role)
            assert abs(abs(state[role].position) / abs(leg.amount) - 1) <= RATIO_TOLERANCE
            on_grid = state[role].position / leg.step
            assert abs(on_grid - round(on_grid)) < 1e-6, (role, state, leg)


def test_the_ledger_round_trips_through_its_compact_json() -> None:
    text = LEDGER.to_json()
    assert len(text) < 255  # one value of Freqtrade's key-value store
    assert CoupleLedger.from_json(text) == LEDGER
    longest = CoupleLedger("1000PEPE~1000SHIB@2025-11-07T01:00",
                           LegTarget("1000PEPE/USDT:USDT", 123456789.0, 1.0),
                           LegTarget("1000SHIB/USDT:USDT", -987654321.0, 1.0))
    assert len(longest.to_json()) < 255
    with pytest.raises(ValueError, match="not a couple ledger entry"):
        CoupleLedger.from_json('{"c": "x"}')
    with pytest.raises(ValueError, match="stage='done'"):
        CoupleLedger("c", LEDGER.y, LEDGER.x, stage="done")
    with pytest.raises(ValueError, match="non-zero finite amount"):
        LegTarget(WLD, 0.0)

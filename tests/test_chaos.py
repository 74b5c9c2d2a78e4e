"""Chaos scenarios in LIVE mode against the private simulator (see :mod:`statarb.chaos`).

Each test runs one scenario and asserts it passes: every couple flat or hedged in its ratio,
naked exposure under three bot loops plus one order, no duplicate order. Scenarios the
strategy does not survive yet are strict xfails carrying the measured numbers, so the
suite stays green and the day the strategy handles one, its test fails until the mark goes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from statarb import chaos
from tests.shared_data import require_shared

pytestmark = pytest.mark.slow

KNOWN_FAILURES: dict[str, str] = {
    "ghost_order_second_leg": (
        "the ARB order behind the timeout exists but is never looked up: WLD closed as "
        "partner_exit, ARB re-sent alone and closed, the ghost ARB short stays naked "
        "(71 s measured, to the end of the run)"
    ),
    "drop_mid_entry": (
        "fetch_order fails during the drop and Freqtrade's worker sleeps 30 s: WLD naked "
        "33 s before partner_exit"
    ),
    "kill9_between_legs": (
        "restart reconciliation only reports the untracked WLD position (manual "
        "intervention) and the couple is re-entered on top of it: WLD doubled, hedge ratio "
        "-52% off beta, naked 19.7 s"
    ),
}
"""Scenario -> what the last measured run showed (the strategy's open work)."""


def _param(name: str) -> object:
    reason = KNOWN_FAILURES.get(name)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in chaos.SCENARIOS])
def test_scenario(name: str, tmp_path: Path) -> None:
    require_shared()
    scenario: Callable[..., chaos.ScenarioResult] = chaos.SCENARIOS[name]
    result = scenario(tmp_path)
    print(f"\n{name}: {result.outcome} naked {result.naked_s} s, {result.orders_sent} orders, "
          f"{result.duplicates} duplicates, {result.final_state}")
    assert result.passed, result.reason


def test_duplicate_orders_counts_repeats_within_one_second() -> None:
    def order(symbol: str, side: str, qty: str, wall_ms: int) -> dict:
        return {"symbol": symbol, "side": side, "qty": qty, "wall_ms": wall_ms}

    orders = [
        order("WLDUSDT", "BUY", "10", 0),
        order("ARBUSDT", "SELL", "20", 200),
        order("WLDUSDT", "BUY", "10", 900),  # repeat within a second
        order("ARBUSDT", "SELL", "20", 1300),  # 1.1 s later: a new decision
        order("WLDUSDT", "SELL", "10", 950),  # other side: an exit
    ]
    assert chaos.duplicate_orders(orders) == 1

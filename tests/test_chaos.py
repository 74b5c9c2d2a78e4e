"""Chaos scenarios in LIVE mode against the private simulator (see :mod:`statarb.harness.chaos`).

Each test runs one scenario and asserts it passes: every couple flat or hedged in its ratio,
naked exposure under three bot loops plus one order while the bot can act (the connection
drop and a crash until the restarted bot's supervision starts are not counted), no
duplicate order, no order left open.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from statarb.harness import chaos
from tests.shared_data import require_shared

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", list(chaos.SCENARIOS))
def test_scenario(name: str, tmp_path: Path) -> None:
    require_shared()
    scenario: Callable[..., chaos.ScenarioResult] = chaos.SCENARIOS[name]
    result = scenario(tmp_path)
    print(f"\n{name}: {result.outcome} naked {result.naked_s} s (bound {result.bound_s} s), "
          f"restart {result.restart_s} s, outage {result.outage_s} s, "
          f"{result.orders_sent} orders, {result.duplicates} duplicates, {result.final_state}")
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


def test_naked_time_is_counted_only_while_the_bot_can_act() -> None:
    naked = [(1000, 9000), (20000, 21000)]
    assert chaos.counted_ms(naked, []) == 9000
    # A crash from 2 s to a supervised restart at 8 s: only 1-2 s and 8-9 s count.
    assert chaos.counted_ms(naked, [(2000, 8000)]) == 2000 + 1000
    # Overlapping and out-of-range windows are counted once / ignored.
    assert chaos.counted_ms(naked, [(0, 3000), (2500, 5000), (30000, 40000)]) == 4000 + 1000
    assert chaos.counted_ms(naked, [(0, 50000)]) == 0


def test_a_later_scenario_starts_with_the_selection_the_first_formed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pairlist's formation is the same for every scenario on one replay offset: the
    first run's published file is handed to the next runs at that offset (their pairlist
    resumes it), and only at that offset."""
    require_shared()
    monkeypatch.setattr(chaos, "_FORMED", {})
    first = chaos.LiveRun(tmp_path / "first")
    assert not first.selection_path.exists()
    first.selection_path.write_text('{"couples": []}')
    first.close()
    assert {first.offset_ms: b'{"couples": []}'} == chaos._FORMED
    later = chaos.LiveRun(tmp_path / "later")
    try:
        assert later.offset_ms == first.offset_ms  # the same wall-clock hour
        assert later.selection_path.read_bytes() == b'{"couples": []}'
    finally:
        later.close()
    chaos._FORMED.clear()
    chaos._FORMED[first.offset_ms + 3_600_000] = b"{}"
    other = chaos.LiveRun(tmp_path / "other")
    try:
        assert not other.selection_path.exists()
    finally:
        other.close()

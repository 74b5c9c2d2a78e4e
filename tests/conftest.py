"""Shared test set-up: the tiers.

``make test-fast`` runs ``pytest -m "not slow"``: the unit tier for the inner loop, which
must start no subprocess (no Freqtrade, no browser, no simulator process). Here that is
enforced rather than hoped for: in that tier a test that starts a process fails and says
to mark it ``slow``. ``make test`` (what CI runs) runs every tier.

The shared helpers are plain modules beside this file (``offline``, ``shared_data``,
``sim_helpers``, ``bots``, ``research_data``, ``telegram_fake``); no test module imports
another test module.

``make test`` runs on pytest-xdist workers (``--dist loadgroup``). A test module runs whole
on one worker, so its module fixtures (a full-data backtest, a bot) are made once; only the
chaos scenarios, each with its own simulator and bot, are spread one by one. Tests that
share something of the checkout (port 8765, its ``user_data``) name the group
``checkout`` themselves.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

SPREAD_ONE_BY_ONE = {"tests/test_chaos.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if module not in SPREAD_ONE_BY_ONE and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(module))


def _fast_tier(config: pytest.Config) -> bool:
    return "not slow" in (config.getoption("markexpr") or "")


@pytest.fixture(autouse=True)
def _no_subprocess_in_the_fast_tier(request: pytest.FixtureRequest,
                                    monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if _fast_tier(request.config) and request.node.get_closest_marker("slow") is None:
        def refuse(self: Any, args: Any, *_: Any, **__: Any) -> None:
            pytest.fail(f"{request.node.nodeid} starts a process ({args!r}) in the fast "
                        "tier: mark it @pytest.mark.slow", pytrace=False)

        monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    yield

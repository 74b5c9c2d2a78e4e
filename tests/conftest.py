"""Shared test set-up: the tiers.

``make test-fast`` runs ``pytest -m "not slow"``: the unit tier for the inner loop, which
must start no subprocess (no Freqtrade, no browser, no simulator process). Here that is
enforced rather than hoped for: in that tier a test that starts a process fails and says
to mark it ``slow``. ``make test`` (what CI runs) runs every tier.

The shared helpers are plain modules beside this file (``offline``, ``shared_data``,
``sim_helpers``, ``bots``, ``research_data``, ``telegram_fake``); no test module imports
another test module.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest


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

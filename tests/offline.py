"""Helpers for tests that run real freqtrade subprocesses with no network."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FREQTRADE = str(Path(sys.executable).parent / "freqtrade")


# Throwaway REST API credentials for runs of the project's config.json, which ships none.
# Only for configs that have an api_server section: Freqtrade turns these variables into
# that section, and a partial one fails validation.
API_CREDENTIALS = {
    "FREQTRADE__API_SERVER__USERNAME": "test",
    "FREQTRADE__API_SERVER__PASSWORD": "pw-test-only",
    "FREQTRADE__API_SERVER__JWT_SECRET_KEY": "jwt-" + "0" * 40,
    "FREQTRADE__API_SERVER__WS_TOKEN": "ws-test-only",
}


def offline_env(**extra: str) -> dict[str, str]:
    """Child environment in which only loopback is reachable through HTTP clients.

    Proxies point at a closed loopback port, so any request to a real host fails loudly.
    """
    closed = "http://127.0.0.1:9"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        {
            "HTTP_PROXY": closed,
            "HTTPS_PROXY": closed,
            "ALL_PROXY": closed,
            "http_proxy": closed,
            "https_proxy": closed,
            "all_proxy": closed,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(extra)
    return env


# ---------------------------------------------------------------- running bots in tests
# The Makefile's dry-run replay instant: there the strategy opens WLD~ARB on its first loop.
REPLAY_START = re.search(
    r"^REPLAY_START \?= (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE
).group(1)


def free_port() -> int:
    """A free TCP port on loopback (for a bot's REST API)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen,
             log: Path) -> Any:
    """Poll ``check`` (usually a REST call) until it returns something truthy; fail with
    the tail of Freqtrade's log when the process exits or the time runs out."""
    import pytest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"freqtrade exited ({proc.returncode}) while waiting for {what}:\n"
                        + log.read_text()[-4000:])
        try:
            value = check()
        except Exception:  # the API is not up yet
            value = None
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}:\n" + log.read_text()[-4000:])

"""Helpers for tests that run real freqtrade subprocesses with no network."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from statarb.harness.offline import free_port, offline_env, replay_start, stop_process

__all__ = [
    "API_CONFIG", "API_CREDENTIALS", "FREQTRADE", "REPLAY_START", "REPO", "free_port",
    "offline_env", "run_freqtrade", "stop_process", "wait_for",
]

REPO = Path(__file__).resolve().parents[1]
FREQTRADE = str(Path(sys.executable).parent / "freqtrade")


# The REST API overlay (config.json has no api_server: plain commands need no credentials).
API_CONFIG = "config.api.json"
# Throwaway REST API credentials for runs with API_CONFIG, which ships none. Only with that
# overlay: Freqtrade turns these variables into an api_server section, and a partial one
# fails validation.
API_CREDENTIALS = {
    "FREQTRADE__API_SERVER__USERNAME": "test",
    "FREQTRADE__API_SERVER__PASSWORD": "pw-test-only",
    "FREQTRADE__API_SERVER__JWT_SECRET_KEY": "jwt-" + "0" * 40,
    "FREQTRADE__API_SERVER__WS_TOKEN": "ws-test-only",
}


def run_freqtrade(*args: str, sim_args: tuple[str, ...] = (), timeout: float = 900,
                  **env: str) -> str:
    """``freqtrade <args>`` with the project config and the offline overlay, through a
    private simulator (``python -m statarb.sim.run``), as the Makefile runs it.

    Returns stdout + stderr. Fails on a non-zero exit *and* on any ERROR line, because
    Freqtrade exits 0 after some errors (a rejected configuration, for one).
    """
    import pytest

    from tests.shared_data import DATADIR, MARKETS, require_shared

    require_shared()
    command, *rest = args
    cmd = [
        sys.executable, "-m", "statarb.sim.run", "--datadir", str(DATADIR),
        "--markets", str(MARKETS), *sim_args, "--",
        FREQTRADE, command, "--config", "config.json", "--config", "config.offline.json",
        *rest,
    ]  # fmt: skip
    # A wide terminal: Freqtrade's result tables are cut to the terminal width.
    proc = subprocess.run(cmd, cwd=REPO, env=offline_env(COLUMNS="250", **env),
                          capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 or " - ERROR - " in output:
        pytest.fail(f"freqtrade {command} failed (exit {proc.returncode}):\n"
                    + output[-6000:])
    return output


# ---------------------------------------------------------------- running bots in tests
# The Makefile's dry-run replay instant: there the strategy opens WLD~ARB on its first loop.
REPLAY_START = replay_start()


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

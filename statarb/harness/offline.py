"""Running Freqtrade subprocesses offline: environment, ports and shutdown.

Why one module: the tests, the chaos harness and the benchmarks all start real
``freqtrade`` processes against the local simulator. They must agree on what "offline"
means (every proxy points at a closed loopback port, so a request to a real host fails
loudly instead of reaching it) and on how a bot is stopped without leaving it running.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from statarb.sim.clock import ReplayClock
from statarb.sim.market_data import REPO_ROOT

__all__ = [
    "CLOSED_PROXY", "REPO_ROOT", "free_port", "offline_env", "replay_start", "shifted_clock",
    "stop_process",
]

CLOSED_PROXY = "http://127.0.0.1:9"


def offline_env(**extra: str) -> dict[str, str]:
    """The current environment with every proxy at a closed loopback port, loopback
    exempted, and the project on ``PYTHONPATH``; ``extra`` is added last.

    ``COLUMNS`` and ``LINES`` are not inherited (only set through ``extra``): a pytest-xdist
    worker sets them to 80x24, and Freqtrade's log would then wrap its lines at 80, which
    splits the timestamped lines the harness reads (the supervision start, the orders).
    """
    env = {k: v for k, v in os.environ.items()
           if "proxy" not in k.lower() and k not in ("COLUMNS", "LINES")}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[key] = env[key.lower()] = CLOSED_PROXY
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def free_port() -> int:
    """A free TCP port on loopback (for a bot's REST API)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ignores_sigint(pid: int) -> bool:
    """Whether the process ignores SIGINT (Linux: the SigIgn mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def _own_group(proc: subprocess.Popen) -> bool:
    """Whether ``proc`` leads a process group of its own (``start_new_session=True``), so
    that the whole group can be signalled without touching the caller's group."""
    try:
        return os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    except ProcessLookupError:
        return False


def stop_process(proc: subprocess.Popen | None, grace_s: float = 30.0) -> None:
    """Stop a bot the way Ctrl-C does (SIGINT: Freqtrade shuts down cleanly), and kill it
    if it has not exited after ``grace_s`` seconds. Nothing is left running.

    A process started with ``start_new_session=True`` is stopped as a terminal stops a
    foreground job: the signal goes to its whole process group, and whatever of the group
    is still alive once the leader exited is killed. Why: ``make sim`` is make with the
    simulator as its child; SIGINT to make alone leaves the simulator holding its port
    for every later test.

    A process started from a background job of a non-interactive shell inherits SIGINT as
    ignored (POSIX) and would only be killed after the grace; such a process is sent
    SIGTERM instead, which ``freqtrade trade`` handles exactly as Ctrl-C.
    """
    if proc is None:
        return
    group = _own_group(proc)
    if proc.poll() is None:
        sig = signal.SIGTERM if _ignores_sigint(proc.pid) else signal.SIGINT
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.kill()
            proc.wait(timeout=10)
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # what outlived the leader


def replay_start() -> str:
    """The Makefile's ``REPLAY_START``: the dry-run replay instant, where the reference
    couple (WLD~ARB) opens on the bot's first loop."""
    text = (REPO_ROOT / "Makefile").read_text()
    match = re.search(r"^REPLAY_START \?= (\S+)$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError("REPLAY_START not found in the Makefile")
    return match.group(1)


CANDLE_S = 3600
"""The strategy's candle (1h): a shifted replay closes one when the wall clock does."""


def shifted_clock(start: str, run_s: float) -> ReplayClock:
    """A replay of ``start`` served as now (:meth:`ReplayClock.shifted_to_now`), begun at
    least ``run_s`` seconds before the next wall-clock candle close.

    Why: a bot run that expects the signal of ``start``'s candle (a couple opening on the
    first loop) must not cross a candle close, where the replay moves to the next candle
    and the signal may be gone. Closer than ``run_s`` to the close, this waits for it
    (printing why), so such runs never flake on the hour.
    """
    remaining = CANDLE_S - time.time() % CANDLE_S
    if remaining < run_s:
        print(f"waiting {remaining + 2:.0f} s for the candle close before a {run_s:.0f} s "
              "run on a shifted replay", file=sys.stderr, flush=True)
        time.sleep(remaining + 2)
    return ReplayClock.shifted_to_now(start)

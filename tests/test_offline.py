"""Stopping a process the tests started: cleanly, also when it inherited SIGINT ignored."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from statarb.harness.offline import stop_process

CHILD = ("import signal, sys, time\n"
         "signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))\n"
         "try:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    sys.exit(2)\n")


@pytest.mark.slow
@pytest.mark.parametrize("ignored", [False, True])
def test_stop_process_stops_cleanly_even_when_sigint_is_ignored(ignored: bool) -> None:
    """A background job of a non-interactive shell starts its children with SIGINT
    ignored: they get SIGTERM (Freqtrade's trade command handles it as Ctrl-C) at once,
    not a kill after the grace period."""
    # Whatever this run inherited: ignored, or a handler (reset to default in the child).
    previous = signal.signal(signal.SIGINT,
                             signal.SIG_IGN if ignored else signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-c", CHILD])
    finally:
        signal.signal(signal.SIGINT, previous)
    time.sleep(0.5)  # the child's handlers are set
    started = time.monotonic()
    stop_process(proc, grace_s=20)
    assert time.monotonic() - started < 5
    assert proc.returncode == (3 if ignored else 2)  # its own handler ran: a clean exit


@pytest.mark.slow
def test_stop_process_stops_the_whole_group_of_a_new_session(tmp_path) -> None:
    """``make sim`` is make with the simulator as its child: stopping make alone left the
    simulator holding port 8765 for every later test. Started in a session of its own, the
    whole group is stopped, as Ctrl-C in a terminal does."""
    pid_file = tmp_path / "child.pid"
    # A parent that, like make, waits for a child that never exits on its own.
    script = (f"{sys.executable} -c 'import os, time; open(\"{pid_file}\", \"w\")"
              f".write(str(os.getpid())); time.sleep(120)' & wait")
    proc = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    stop_process(proc, grace_s=5)
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "zombie" in Path(
        f"/proc/{child}/status").read_text(), "the child outlived its parent"

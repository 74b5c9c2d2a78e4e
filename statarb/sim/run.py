"""Run one command against a private simulator: ``python -m statarb.sim.run -- freqtrade ...``.

Starts the simulator on a free port, writes a temporary copy of ``config.offline.json``
pointing at that port (and at the simulator's datadir, as an absolute path so the command
can run from any cwd), puts it in the command in place of ``config.offline.json`` (or
appends ``--config <copy>``), runs the command and exits with its exit code. A free port
per run means two runs (or a run and a test session) never talk to each other's server.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from statarb.sim.cli import add_data_arguments, check_data_arguments, clock_from_arguments
from statarb.sim.market_data import MarketData
from statarb.sim.server import SimServer

DEFAULT_OVERLAY = Path(__file__).resolve().parent / "config.offline.json"
LOOPBACK = ("127.0.0.1", "localhost")


def retarget(value: Any, port: int) -> Any:
    """Copy of a config (sub)tree with every loopback URL moved to ``port``."""
    if isinstance(value, dict):
        return {k: retarget(v, port) for k, v in value.items()}
    if isinstance(value, list):
        return [retarget(v, port) for v in value]
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.hostname in LOOPBACK:
            return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))
    return value


def write_overlay(source: Path, port: int, datadir: Path, target_dir: Path) -> Path:
    """Write the port- and datadir-substituted overlay into ``target_dir``; return its path."""
    config = retarget(json.loads(source.read_text()), port)
    config["datadir"] = str(datadir.resolve())
    target = target_dir / source.name
    target.write_text(json.dumps(config, indent=4) + "\n")
    return target


def substitute_config(command: Sequence[str], overlay: Path, replacement: Path) -> list[str]:
    """Replace the overlay argument in ``command``, or append ``--config replacement``.

    Matches by file name (``config.offline.json``), alone or in ``--config=...`` form, so
    ``-c config.offline.json``, ``./config.offline.json`` and absolute paths all work.
    """

    def is_overlay(arg: str) -> bool:
        return bool(arg) and Path(arg).name == overlay.name

    out: list[str] = []
    replaced = False
    for arg in command:
        key, sep, value = arg.partition("=")
        if sep and key.startswith("-") and is_overlay(value):
            out.append(f"{key}={replacement}")
            replaced = True
        elif not arg.startswith("-") and is_overlay(arg):
            out.append(str(replacement))
            replaced = True
        else:
            out.append(arg)
    if not replaced:
        out += ["--config", str(replacement)]
    return out


def run_command(command: list[str]) -> int:
    """Run ``command``; Ctrl-C reaches it through the terminal, SIGTERM is forwarded.

    The simulator must outlive the command, so we wait for it to exit after an interrupt
    instead of tearing the server down underneath a freqtrade that is still shutting down.
    """
    try:
        child = subprocess.Popen(command)
    except FileNotFoundError:
        print(f"statarb.sim.run: command not found: {command[0]}", file=sys.stderr)
        return 127
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: child.terminate())
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # the child got the same SIGINT; let it finish cleanly
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m statarb.sim.run",
        description="Run a command (usually freqtrade) against a private offline simulator.",
        epilog="example: python -m statarb.sim.run -- freqtrade backtesting "
        "--config config.json --config config.offline.json",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--overlay",
        type=Path,
        default=DEFAULT_OVERLAY,
        help="overlay config to copy with the port filled in (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    check_data_arguments(parser, args)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    if not args.overlay.is_file():
        parser.error(f"--overlay {args.overlay}: no such file")
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )

    market_data = MarketData(args.datadir, args.markets)
    clock = clock_from_arguments(args, market_data)
    with (
        SimServer(market_data=market_data, clock=clock) as sim,
        tempfile.TemporaryDirectory(prefix="statarb-sim-") as tmp,
    ):
        overlay = write_overlay(args.overlay, sim.port, args.datadir, Path(tmp))
        final = substitute_config(command, args.overlay, overlay)
        print(
            f"statarb.sim.run: simulator on {sim.url} (clock {clock.describe()}); "
            f"running: {' '.join(final)}",
            file=sys.stderr,
            flush=True,
        )
        code = run_command(final)
        print(
            f"statarb.sim.run: {sim.stats.total} requests served, exit code {code}",
            file=sys.stderr,
            flush=True,
        )
    return code


if __name__ == "__main__":
    sys.exit(main())

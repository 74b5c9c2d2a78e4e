"""Command line of the simulator: ``python -m statarb.sim --port 8765``.

Argument handling is shared with :mod:`statarb.sim.run`, so the wrapper and the
standalone server accept the same data and clock options.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from statarb.sim.clock import ReplayClock, parse_instant
from statarb.sim.market_data import DEFAULT_DATADIR, DEFAULT_MARKETS, MarketData
from statarb.sim.server import SimServer

DEFAULT_PORT = 8765


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--datadir, --markets and the clock options (used by both entry points)."""
    parser.add_argument(
        "--datadir",
        type=Path,
        default=DEFAULT_DATADIR,
        help="freqtrade datadir with futures/*.feather (default: %(default)s)",
    )
    parser.add_argument(
        "--markets",
        type=Path,
        default=DEFAULT_MARKETS,
        help="recorded /fapi/v1/exchangeInfo JSON (default: %(default)s)",
    )
    clock = parser.add_mutually_exclusive_group()
    clock.add_argument(
        "--clock",
        metavar="INSTANT",
        help="freeze the replay clock, e.g. 2025-06-01T00:00:00Z (default: end of the data)",
    )
    clock.add_argument(
        "--start", metavar="INSTANT", help="run the replay clock from this instant in real time"
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="data seconds per wall second with --start (default 1.0)",
    )
    parser.add_argument(
        "--shift-to-now",
        action="store_true",
        help="with --start: serve every time shifted by whole hours so the replay looks like "
        "it happens now (Freqtrade's candle freshness checks pass); the replay runs at speed "
        "1 from --start's hour plus the wall clock's minutes",
    )


def check_data_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fail with exit code 2 and a plain message on unusable paths or clock options."""
    if not args.datadir.is_dir():
        parser.error(f"--datadir {args.datadir}: no such directory")
    if not args.markets.is_file():
        parser.error(f"--markets {args.markets}: no such file")
    if args.speed is not None and args.start is None:
        parser.error("--speed needs --start")
    if args.speed is not None and args.speed <= 0:
        parser.error("--speed must be > 0")
    if args.shift_to_now and args.start is None:
        parser.error("--shift-to-now needs --start")
    if args.shift_to_now and args.speed not in (None, 1.0):
        parser.error("--shift-to-now runs the replay at speed 1; drop --speed")
    for name in ("clock", "start"):
        value = getattr(args, name)
        if value is not None:
            try:
                parse_instant(value)
            except ValueError as exc:
                parser.error(f"--{name}: {exc}")


def clock_from_arguments(args: argparse.Namespace, market_data: MarketData) -> ReplayClock:
    """The replay clock the options ask for; default frozen at the end of the data."""
    if args.clock is not None:
        return ReplayClock.fixed(args.clock)
    if args.start is not None and args.shift_to_now:
        return ReplayClock.shifted_to_now(args.start)
    if args.start is not None:
        return ReplayClock.running(args.start, args.speed if args.speed is not None else 1.0)
    return ReplayClock.fixed(market_data.data_end_ms())


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m statarb.sim",
        description="Local Binance USDT-M REST simulator (public data and a simulated account).",
    )
    add_data_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port, 0 for any free port (default: %(default)s)",
    )
    parser.add_argument(
        "--wallet",
        type=float,
        default=10_000,
        help="USDT in the simulated futures account (default: %(default)s)",
    )
    parser.add_argument(
        "--slippage-bps",
        type=float,
        default=0.0,
        help="MARKET fills move this many bps against the taker (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="DEBUG logs one line per request (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    check_data_arguments(parser, args)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )

    market_data = MarketData(args.datadir, args.markets)
    try:
        server = SimServer(
            host=args.host,
            port=args.port,
            market_data=market_data,
            clock=clock_from_arguments(args, market_data),
            wallet=args.wallet,
            slippage_bps=args.slippage_bps,
        )
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _raise_interrupt)
    print(
        f"statarb.sim: Binance USDT-M simulator on {server.url} "
        f"(clock {server.clock.describe()}, {len(market_data.symbols_with_data)} symbols "
        "with data); Ctrl-C to stop",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("statarb.sim: stopped", flush=True)
    finally:
        server.stop()
    return 0

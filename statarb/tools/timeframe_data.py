"""A Freqtrade datadir at the timeframe a command asks for, made as a user makes one.

Usage::

    python -m statarb.tools.timeframe_data --datadir ../shared/data/binance_5m \\
        --timeframe 15m [--out user_data/data] [--pairs]

Freqtrade backtests read candle files of the configured timeframe only. When the datadir
holds that width the tool prints the datadir itself. Otherwise it runs
``freqtrade download-data --timeframes <tf>`` through the simulator serving the recorded
candles (which resamples them as Binance builds its intervals), into
``<out>/<datadir name>-<tf>``, and prints that folder. The download is made once: a stamp
in the folder names its source, and a second call with the same source only prints it.
With ``--pairs`` it prints instead the pairs of the config's whitelist (``--config``, in its
order) that have candles in the datadir, for a backtest's ``--pairs``: each whitelist coin
without candles would only add a warning. Of the 5m data's 11 coins that leaves 9: INJ is
not in the whitelist (nor in ``../shared/markets/binance_usdm_markets.json``, which research
reads the market limits from) and ORCA is in neither markets file.
Bad input exits with code 2 and a message that names it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from statarb.sim.klines import INTERVAL_MS
from statarb.sim.market_data import DEFAULT_MARKETS, MarketData
from statarb.sim.run import DEFAULT_OVERLAY, write_overlay
from statarb.sim.server import SimServer

EXIT_BAD_INPUT = 2
STAMP = ".statarb_source.json"


class TimeframeDataError(Exception):
    """Bad input; the message is shown to the user as is."""


def pairs_with_data(market: MarketData, whitelist: list[str] | None = None) -> list[str]:
    """Freqtrade names (``BTC/USDT:USDT``) of the symbols with candle files, only those of
    ``whitelist`` and in its order when one is given."""
    out = []
    for symbol in market.symbols_with_data:
        stem = market.symbols[symbol].stem
        assert stem is not None
        base, quote, settle = stem.split("_")
        out.append(f"{base}/{quote}:{settle}")
    if whitelist is None:
        return out
    have = set(out)
    chosen = [p for p in whitelist if p in have]
    if not chosen:
        raise TimeframeDataError(f"no pair of the whitelist has candles in {market.datadir}; "
                                 f"it has {out}")
    return chosen


def _loopback_direct() -> dict[str, str]:
    """The environment with loopback exempt from any proxy: the simulator is local."""
    env = dict(os.environ)
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = ",".join(filter(None, ["127.0.0.1,localhost", env.get(key)]))
    return env


def datadir_for(datadir: Path, timeframe: str, out: Path,
                markets: Path = DEFAULT_MARKETS) -> Path:
    """The datadir holding ``timeframe`` candles of ``datadir``'s coins (downloaded through
    the simulator when it has to be)."""
    market = MarketData(datadir, markets)
    if timeframe not in INTERVAL_MS:
        raise TimeframeDataError(f"timeframe={timeframe!r} is not a Binance interval; "
                                 f"allowed: {list(INTERVAL_MS)}")
    if timeframe == market.base_timeframe:
        return datadir
    if INTERVAL_MS[timeframe] % market.base_ms:
        raise TimeframeDataError(
            f"timeframe={timeframe} cannot be built from the {market.base_timeframe} candles "
            f"of {datadir}: it must be a whole multiple of {market.base_timeframe}")
    pairs = pairs_with_data(market)
    target = out / f"{datadir.resolve().name}-{timeframe}"
    source = {"datadir": str(datadir.resolve()), "timeframe": timeframe, "pairs": pairs}
    stamp = target / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == source:
        return target
    first = pd.Timestamp(market.first_ms(), unit="ms", tz="UTC")
    end = pd.Timestamp(market.data_end_ms(), unit="ms", tz="UTC").ceil("D")
    target.mkdir(parents=True, exist_ok=True)
    with SimServer(market_data=market) as sim, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        overlay = write_overlay(DEFAULT_OVERLAY, sim.port, datadir, folder)
        config = folder / "config.json"
        config.write_text(json.dumps({
            # The simulator is on loopback and answers in milliseconds: ccxt's pacing
            # for the real exchange would make the download a minute and a half longer.
            "exchange": {"name": "binance", "pair_whitelist": pairs,
                         "ccxt_config": {"enableRateLimit": False},
                         "ccxt_async_config": {"enableRateLimit": False}},
            "trading_mode": "futures", "margin_mode": "isolated",
            "stake_currency": "USDT", "dry_run": True,
        }))
        (folder / "user_data").mkdir()
        done = subprocess.run(
            [str(Path(sys.executable).parent / "freqtrade"), "download-data",
             "--config", str(config), "--config", str(overlay),
             "--userdir", str(folder / "user_data"), "--datadir", str(target.resolve()),
             "--trading-mode", "futures", "--timeframes", timeframe,
             "--timerange", f"{first:%Y%m%d}-{end:%Y%m%d}"],
            cwd=folder, env=_loopback_direct(), capture_output=True, text=True, check=False,
        )
    if done.returncode != 0:
        raise TimeframeDataError(
            f"freqtrade download-data at {timeframe} through the simulator failed "
            f"(exit {done.returncode}):\n{done.stderr[-3000:]}")
    stamp.write_text(json.dumps(source, indent=2) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m statarb.tools.timeframe_data",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--datadir", type=Path, required=True, help="Freqtrade datadir (futures/)")
    p.add_argument("--timeframe", required=True, help="Freqtrade timeframe (5m, 15m, 30m, 1h)")
    p.add_argument("--markets", type=Path, default=DEFAULT_MARKETS,
                   help="Binance exchangeInfo JSON (default: ../shared/markets)")
    p.add_argument("--out", type=Path, default=Path("user_data/data"),
                   help="where a download goes (default user_data/data)")
    p.add_argument("--config", type=Path, help="Freqtrade config whose whitelist --pairs reads")
    p.add_argument("--pairs", action="store_true",
                   help="print the whitelist's pairs with candles (space-separated) instead")
    args = p.parse_args(argv)
    try:
        if args.pairs:
            whitelist = None
            if args.config is not None:
                config = json.loads(args.config.read_text())
                whitelist = list((config.get("exchange") or {}).get("pair_whitelist") or [])
            market = MarketData(args.datadir, args.markets)
            print(" ".join(pairs_with_data(market, whitelist)))
        else:
            print(datadir_for(args.datadir, args.timeframe, args.out, args.markets))
    except (TimeframeDataError, FileNotFoundError, ValueError) as exc:
        print(f"timeframe_data: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Per-coin spread cost from a datadir's candles, printed and written as a config overlay.

Usage::

    python -m statarb.tools.spread --datadir ../shared/data/binance_5m \\
        [--timeframe 5m] [--out user_data/statarb_spread.json]

Prints, per coin, the Abdi-Ranaldo and Corwin-Schultz spread estimates in basis points
(:mod:`statarb.core.spread`) and the cost charged per fill (half the Abdi-Ranaldo spread),
and writes ``{"statarb": {"costs": {"half_spread": {...}}}}``: merged after config.json
(``--config``), it adds that cost to every fill of a backtest, a hyperopt and research.
The estimate is made once on the finest bars (5m) and used at every timeframe: coarser
bars mostly measure volatility, not the spread. Bad input exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from statarb.core.spread import spread_estimate
from statarb.ft.data import available_pairs, load_frames

EXIT_BAD_INPUT = 2
ESTIMATOR = "abdi_ranaldo"


def estimates(datadir: Path, timeframe: str) -> dict[str, dict[str, float]]:
    """Per coin: both estimators' spreads and the half-spread cost (fractions)."""
    pairs = sorted(available_pairs(datadir, timeframe))
    if not pairs:
        raise ValueError(f"no {timeframe} futures candles in {datadir}")
    frames = load_frames(datadir, pairs, timeframe)
    out = {}
    for pair, frame in frames.items():
        ar = spread_estimate(frame, "abdi_ranaldo")
        out[pair.split("/")[0]] = {
            "abdi_ranaldo": ar, "corwin_schultz": spread_estimate(frame, "corwin_schultz"),
            "bars": float(len(frame)), "half_spread": ar / 2.0,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m statarb.tools.spread",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--datadir", type=Path, required=True, help="Freqtrade datadir (futures/)")
    p.add_argument("--timeframe", default="5m", help="bars to estimate on (default 5m)")
    p.add_argument("--out", type=Path, default=Path("user_data/statarb_spread.json"),
                   help="config overlay to write (default user_data/statarb_spread.json)")
    args = p.parse_args(argv)
    try:
        found = estimates(args.datadir, args.timeframe)
    except (ValueError, FileNotFoundError) as exc:
        print(f"spread: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    table = Table(title=f"Spread per coin, {args.timeframe} bars of {args.datadir}")
    for column in ("coin", "bars", "Abdi-Ranaldo bps", "Corwin-Schultz bps",
                   "cost per fill bps"):
        table.add_column(column, justify="left" if column == "coin" else "right")
    for coin, row in sorted(found.items()):
        table.add_row(coin, f"{row['bars']:,.0f}", f"{row['abdi_ranaldo'] * 1e4:.2f}",
                      f"{row['corwin_schultz'] * 1e4:.2f}", f"{row['half_spread'] * 1e4:.2f}")
    Console(width=100).print(table)
    overlay = {
        "_statarb_spread": f"half the {ESTIMATOR} spread of each coin, per UTC day of "
                           f"{args.timeframe} bars of {args.datadir}, averaged "
                           "(python -m statarb.tools.spread)",
        "statarb": {"costs": {"half_spread": {
            coin: round(row["half_spread"], 8) for coin, row in sorted(found.items())}}},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(overlay, indent=4) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

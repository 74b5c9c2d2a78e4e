"""Command-line cointegration scanner over a Freqtrade datadir.

Usage::

    python -m statarb.tools.scan --datadir ../shared/data/binance --out user_data/scan \\
        [--days 60 | --timerange 20250601-20250801] [--coins BTC,ETH,...]

It runs the same selection as the strategy and the pairlist on one formation window and
writes ``pairs_config.json`` (the chosen couples), ``cointegration_results.csv`` (every
couple tested) and ``plots/`` (one interactive chart per chosen couple and an index).
Bad input exits with code 2 and a message that names the problem.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from statarb.core.cointegration import RESULT_COLUMNS, engle_granger
from statarb.core.panel import PanelError, WindowPanel, build_log_panel
from statarb.core.selection import SelectionParams, screen_couples

EXIT_BAD_INPUT = 2
QUOTE = "/USDT:USDT"


class ScanError(Exception):
    """Bad input for the scanner; the message is shown to the user as is."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = SelectionParams()
    p = argparse.ArgumentParser(
        prog="python -m statarb.tools.scan",
        description="Engle-Granger scan of every couple in a Freqtrade datadir (futures).",
    )
    p.add_argument("--datadir", type=Path, required=True, help="Freqtrade datadir (has futures/)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    window = p.add_mutually_exclusive_group()
    window.add_argument("--days", type=int, default=None, help="last N days of data (default 60)")
    window.add_argument("--timerange", default=None, help="YYYYMMDD-YYYYMMDD formation window")
    p.add_argument(
        "--coins", default=None, help="comma list (BTC,ETH or BTC/USDT:USDT); default all"
    )
    p.add_argument("--timeframe", default="1h", help="candle timeframe of the data (default 1h)")
    p.add_argument("--data-format", default="feather", help="Freqtrade data format")
    p.add_argument("--max-pvalue", type=float, default=defaults.max_pvalue)
    p.add_argument("--correction", choices=["bh", "none"], default=defaults.correction)
    p.add_argument("--min-half-life-hours", type=float, default=defaults.min_half_life_hours)
    p.add_argument("--max-half-life-hours", type=float, default=defaults.max_half_life_hours)
    p.add_argument("--min-ret-corr", type=float, default=defaults.min_ret_corr)
    p.add_argument("--min-crossings", type=int, default=defaults.min_crossings)
    p.add_argument("--max-couples", type=int, default=defaults.max_couples)
    p.add_argument(
        "--one-orientation",
        action="store_true",
        help="judge a couple on its better orientation only (default: both must reject)",
    )
    p.add_argument("--entry-z", type=float, default=2.0, help="entry band drawn on the charts")
    p.add_argument("--stop-z", type=float, default=4.0, help="stop band drawn on the charts")
    p.add_argument("--no-plots", action="store_true", help="skip the HTML charts")
    return p.parse_args(argv)


def _pairs_from_coins(text: str) -> list[str]:
    items = [c.strip() for c in text.split(",") if c.strip()]
    if not items:
        raise ScanError(f"--coins {text!r} names no coin; give a comma list such as BTC,ETH")
    # dict.fromkeys: a coin named twice is one coin (order kept), not two columns.
    return list(dict.fromkeys(c.upper() if "/" in c else f"{c.upper()}{QUOTE}" for c in items))


def _window(
    args: argparse.Namespace, closes: dict[str, pd.Series], freq: pd.Timedelta
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Formation window [start, end) from --timerange or the last --days of data."""
    non_empty = [s for s in closes.values() if not s.empty]
    if not non_empty:
        raise ScanError("none of the coins has any candle in the datadir")
    data_end = max(s.index.max() for s in non_empty) + freq
    if args.timerange:
        from statarb.ft.data import timerange_from_string

        try:
            tr = timerange_from_string(args.timerange)
        except Exception as exc:  # Freqtrade raises a bare exception type for bad syntax
            raise ScanError(
                f"--timerange {args.timerange!r} is not valid: use YYYYMMDD-YYYYMMDD"
            ) from exc
        assert tr is not None
        start = pd.Timestamp(tr.startts, unit="s", tz="UTC") if tr.starttype else None
        end = pd.Timestamp(tr.stopts, unit="s", tz="UTC") if tr.stoptype else data_end
        if start is None:
            raise ScanError(f"--timerange {args.timerange!r} needs a start date (YYYYMMDD-...)")
        return start, end
    days = 60 if args.days is None else args.days
    if days <= 0:
        raise ScanError(f"--days {days} must be a positive number of days")
    return data_end - pd.Timedelta(days=days), data_end


def _load(args: argparse.Namespace) -> WindowPanel:
    from statarb.ft.data import available_pairs, load_closes

    if not args.datadir.is_dir():
        raise ScanError(f"--datadir {args.datadir} is not a directory")
    present = available_pairs(args.datadir, args.timeframe, args.data_format)
    explicit = args.coins is not None
    if explicit:
        pairs = _pairs_from_coins(args.coins)
        missing = [p for p in pairs if p not in present]
        if missing:
            raise ScanError(
                f"no {args.timeframe} futures candles in {args.datadir} for {missing}; "
                f"present: {', '.join(p.removesuffix(QUOTE) for p in present) or 'none'}"
            )
    else:
        pairs = present
    if len(pairs) < 2:
        raise ScanError(
            f"need at least two coins to form a couple, found {len(pairs)} "
            f"({args.timeframe} futures candles under {args.datadir / 'futures'})"
        )
    freq = pd.Timedelta(args.timeframe)
    with _progress() as progress:
        task = progress.add_task("loading candles", total=len(pairs))
        closes: dict[str, pd.Series] = {}
        for pair in pairs:
            closes.update(load_closes(args.datadir, [pair], args.timeframe, None, args.data_format))
            progress.advance(task)
    start, end = _window(args, closes, freq)
    try:
        panel = build_log_panel(closes, start, end, freq)
    except PanelError as exc:
        raise ScanError(str(exc)) from exc
    if panel.bad:
        details = "; ".join(f"{k}: {v}" for k, v in panel.bad.items())
        raise ScanError(
            f"bad candles in the window {start} .. {end}: {details}. "
            "Repair the data or leave those coins out with --coins."
        )
    if explicit and panel.not_covered:
        details = "; ".join(f"{k}: {v}" for k, v in panel.not_covered.items())
        raise ScanError(f"coins do not span the window: {details}")
    if panel.log_prices.shape[1] < 2:
        longest = max(s.index.max() - s.index.min() for s in closes.values() if not s.empty)
        raise ScanError(
            f"the window {start} .. {end} ({(end - start).days} days) is longer than the data: "
            f"{panel.log_prices.shape[1]} coin(s) span it (longest history {longest})"
        )
    return panel


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def _couple_record(row: Any, candle_hours: float) -> dict[str, Any]:
    return {
        "id": f"{row.y.removesuffix(QUOTE)}-{row.x.removesuffix(QUOTE)}",
        "y": row.y,
        "x": row.x,
        "alpha": float(row.alpha),
        "beta": float(row.beta),
        "half_life_hours": float(row.half_life * candle_hours),
        "half_life_candles": float(row.half_life),
        "tstat": float(row.tstat),
        "pvalue": float(row.pvalue),
        "pvalue_couple": float(row.pvalue_couple),
        "pvalue_adj": float(row.pvalue_adj),
        "adf_lag": int(row.lag),
        "spread_mean": float(row.spread_mean),
        "spread_std": float(row.spread_std),
        "ret_corr": float(row.ret_corr),
        "crossings": int(row.crossings),
    }


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Run the scan and write the outputs; returns the pairs_config document."""
    params = SelectionParams(
        max_pvalue=args.max_pvalue,
        correction=args.correction,
        min_half_life_hours=args.min_half_life_hours,
        max_half_life_hours=args.max_half_life_hours,
        min_ret_corr=args.min_ret_corr,
        min_crossings=args.min_crossings,
        max_couples=args.max_couples,
        both_orientations=not args.one_orientation,
    )
    panel = _load(args)
    candle_hours = pd.Timedelta(args.timeframe) / pd.Timedelta(hours=1)
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("testing couples", total=3)
        results = engle_granger(panel.log_prices)
        progress.advance(task)
        screened = screen_couples(results, params, candle_hours=candle_hours)
        progress.advance(task)
        other = "none" if params.correction == "bh" else "bh"
        alt = screen_couples(
            results,
            SelectionParams(**{**params.to_dict(), "correction": other}),
            candle_hours=candle_hours,
        )
        progress.advance(task)
    elapsed = time.perf_counter() - started
    chosen = screened[screened["selected"]].reset_index(drop=True)

    args.out.mkdir(parents=True, exist_ok=True)
    table = results.merge(
        screened[
            [
                "y",
                "x",
                "pvalue_other",
                "pvalue_couple",
                "pvalue_adj",
                "half_life_hours",
                "eligible",
                "selected",
                "reason",
            ]
        ],
        on=["y", "x"],
        how="left",
    )
    table["traded_orientation"] = table["reason"].notna()
    # Columns documented in statarb.core.cointegration.RESULT_COLUMNS come first.
    table = table[[*RESULT_COLUMNS, *[c for c in table.columns if c not in RESULT_COLUMNS]]]
    table.sort_values(["tstat"], kind="stable").to_csv(
        args.out / "cointegration_results.csv", index=False
    )
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    doc: dict[str, Any] = {
        "generated_at": generated,
        "generator": "statarb.tools.scan",
        "timeframe": args.timeframe,
        "formation": {
            "start": panel.start.isoformat(),
            "end": panel.end.isoformat(),
            "candles": len(panel.log_prices),
        },
        "universe": list(panel.log_prices.columns),
        "skipped": {**panel.not_covered},
        "selection": params.to_dict(),
        "counts": {
            "coins": int(panel.log_prices.shape[1]),
            "ordered_couples_tested": len(results),
            "couples_tested": len(screened),
            "pvalue_pass": int(screened["ok_pvalue"].sum()),
            "eligible": int(screened["eligible"].sum()),
            "selected": len(chosen),
            f"selected_with_correction_{other}": int(alt["selected"].sum()),
            f"eligible_with_correction_{other}": int(alt["eligible"].sum()),
        },
        "couples": [_couple_record(r, candle_hours) for r in chosen.itertuples(index=False)],
    }
    (args.out / "pairs_config.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if not args.no_plots:
        from statarb.tools.plots import write_couple_charts

        write_couple_charts(
            panel.log_prices, chosen, args.out / "plots", entry_z=args.entry_z, stop_z=args.stop_z
        )
    _summary(console, doc, elapsed, args.out, other)
    return doc


def _summary(console: Console, doc: dict[str, Any], elapsed: float, out: Path, other: str) -> None:
    c = doc["counts"]
    f = doc["formation"]
    console.print(
        f"Formation window {f['start']} .. {f['end']} ({f['candles']} candles), "
        f"{c['coins']} coins, {c['couples_tested']} couples "
        f"({c['ordered_couples_tested']} ordered) tested in {elapsed:.2f} s"
    )
    if doc["skipped"]:
        console.print(f"Left out (not spanning the window): {', '.join(doc['skipped'])}")
    sel = doc["selection"]
    console.print(
        f"p-value pass ({sel['correction']}): {c['pvalue_pass']}, eligible: {c['eligible']}, "
        f"selected: {c['selected']}  |  with correction {other}: "
        f"eligible {c[f'eligible_with_correction_{other}']}, "
        f"selected {c[f'selected_with_correction_{other}']}"
    )
    table = Table(title="Selected couples")
    for col in ("couple", "beta", "p-value", "p adj", "half-life h", "crossings", "ret corr"):
        table.add_column(col, justify="right" if col != "couple" else "left")
    for r in doc["couples"]:
        table.add_row(
            r["id"].replace("-", " ~ "),
            f"{r['beta']:.4f}",
            f"{r['pvalue_couple']:.2e}",
            f"{r['pvalue_adj']:.2e}",
            f"{r['half_life_hours']:.1f}",
            str(r["crossings"]),
            f"{r['ret_corr']:.2f}",
        )
    console.print(table)
    console.print(
        f"Wrote {out / 'pairs_config.json'}, {out / 'cointegration_results.csv'}"
        + ("" if not (out / "plots").exists() else f", {out / 'plots' / 'index.html'}")
    )


def main(argv: list[str] | None = None) -> int:
    console = Console()
    try:
        args = _parse_args(argv)
        run(args, console)
    except (ScanError, ValueError) as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)))
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())

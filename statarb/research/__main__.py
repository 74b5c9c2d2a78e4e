"""``python -m statarb.research``: a walk-forward sweep of strategy variants, chosen honestly.

Reads a sweep file (:mod:`statarb.research.variants`), evaluates every variant of the
whole strategy on the shared data (:mod:`statarb.research.evaluate`, the trips Freqtrade's
backtest makes), chooses on the first part of the data only with the Deflated Sharpe
Ratio (:mod:`statarb.research.sweep`), and prints and writes every variant's in-sample
and out-of-sample figures: ``sweep.csv``, ``summary.json``, ``sharpe_is_oos.html`` (Plotly)
and, per chosen variant, the Freqtrade files to run it (``config.<name>.json`` and
``CointPairsStrategy.json``). Exit codes: 0 done, 2 bad arguments or sweep file.

    python -m statarb.research [--variants research/sweep.yml] [--config config.json]
        [--datadir ../shared/data/binance] [--markets FILE] [--split 2025-03-14]
        [--is-share 0.6] [--jobs 2] [--dask tcp://127.0.0.1:8786] [--out user_data/research]
        [--fills taker|maker]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from statarb.core.walkforward import align_closes
from statarb.ft.startup import startup_candles
from statarb.research.cache import FormationCache
from statarb.research.evaluate import Workbench
from statarb.research.fills import FILL_MODELS
from statarb.research.sweep import choose, run_sweep
from statarb.research.variants import VariantError, load_variants, write_variant

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VARIANTS = ROOT / "research" / "sweep.yml"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m statarb.research", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", type=Path, default=DEFAULT_VARIANTS)
    ap.add_argument("--config", type=Path, default=ROOT / "config.json")
    ap.add_argument("--datadir", type=Path, default=ROOT.parent / "shared" / "data" / "binance")
    ap.add_argument("--markets", type=Path,
                    default=ROOT.parent / "shared" / "markets" / "binance_usdm_markets.json")
    ap.add_argument("--split", help="first out-of-sample day (YYYY-MM-DD); default: "
                    "--is-share of the data")
    ap.add_argument("--is-share", type=float, default=0.6)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dask", metavar="ADDRESS",
                    help="run on an existing dask.distributed scheduler instead of locally")
    ap.add_argument("--default", default="default",
                    help="name of the variant that is today's default (default: 'default')")
    ap.add_argument("--min-dsr", type=float, default=0.95)
    ap.add_argument("--out", type=Path, default=ROOT / "user_data" / "research")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "user_data" / "statarb_cache")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--show", type=int, default=20, help="rows of the printed table")
    ap.add_argument("--fills", choices=FILL_MODELS, default="taker",
                    help="taker: market legs at the next open, as Freqtrade's backtest fills "
                    "them (default); maker: limit legs at the decision close, filled only "
                    "when the next candle trades through, else at market at its close "
                    "(a research estimate, see statarb.research.fills)")
    args = ap.parse_args(argv)
    if not 0.1 <= args.is_share <= 0.9:
        ap.error(f"--is-share={args.is_share} must be between 0.1 and 0.9")
    if args.jobs < 1:
        ap.error(f"--jobs={args.jobs} must be at least 1")
    if not 0 < args.min_dsr < 1:
        ap.error(f"--min-dsr={args.min_dsr} must be in (0, 1)")
    for name in ("config", "markets"):
        if not getattr(args, name).is_file():
            ap.error(f"--{name} {getattr(args, name)} is not a file")
    if not args.datadir.is_dir():
        ap.error(f"--datadir {args.datadir} is not a directory")
    return args


def split_date(index: pd.DatetimeIndex, share: float) -> pd.Timestamp:
    """The day ``share`` of the way through the data (its first formation window
    included: the in-sample part is all the data the choice may read)."""
    return (index[0] + (index[-1] - index[0]) * share).floor("1D")


def _fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if kind == "pct":
        return f"{value:+.2%}"
    if kind == "int":
        return f"{int(value)}"
    return f"{value:.2f}"


def _table(rows: pd.DataFrame, title: str) -> Table:
    table = Table(title=title, header_style="bold")
    cols = [("variant", "variant", "str"), ("IS DSR", "is_dsr", "num"),
            ("IS Sharpe", "is_sharpe", "num"), ("IS ret", "is_total_return", "pct"),
            ("IS DD", "is_max_drawdown", "pct"), ("IS trips", "is_couple_trips", "int"),
            ("OOS Sharpe", "oos_sharpe", "num"), ("OOS ret", "oos_total_return", "pct"),
            ("OOS DD", "oos_max_drawdown", "pct"), ("OOS trips", "oos_couple_trips", "int"),
            ("OOS fees", "oos_fees_paid", "num"), ("OOS funding", "oos_funding_paid", "num"),
            ("OOS capital", "oos_capital_in_use", "pct"),
            ("OOS BTC corr", "oos_btc_correlation", "num")]
    for head, _, kind in cols:
        table.add_column(head, justify="left" if kind == "str" else "right")
    for row in rows.itertuples(index=False):
        table.add_row(*[str(getattr(row, c)) if k == "str" else _fmt(getattr(row, c), k)
                        for _, c, k in cols])
    return table


def distribution(table: pd.DataFrame) -> dict[str, Any]:
    """Quantiles of every variant's Sharpe, in and out of sample (not only the best)."""
    out: dict[str, Any] = {}
    for part in ("is", "oos"):
        values = table[f"{part}_sharpe"].astype("float64")
        finite = values[np.isfinite(values)]
        out[part] = {
            "variants": len(values),
            "with_sharpe": len(finite),
            **{f"q{int(q * 100):02d}": float(finite.quantile(q)) if len(finite) else math.nan
               for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)},
            "share_positive": float((finite > 0).mean()) if len(finite) else math.nan,
        }
    both = table[["is_sharpe", "oos_sharpe"]].astype("float64").dropna()
    out["is_oos_rank_correlation"] = (
        float(both.corr(method="spearman").iloc[0, 1]) if len(both) > 2 else math.nan)
    return out


def sharpe_figure(table: pd.DataFrame, chosen: str, default: str | None) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=table["is_sharpe"], y=table["oos_sharpe"], mode="markers", name="variants",
        text=table["variant"], marker={"size": 7, "color": table["is_dsr"],
                                       "colorscale": "Viridis", "showscale": True,
                                       "colorbar": {"title": "IS DSR"}},
        hovertemplate="%{text}<br>IS Sharpe %{x:.2f}<br>OOS Sharpe %{y:.2f}<extra></extra>"))
    for name, symbol in ((default, "diamond"), (chosen, "star")):
        row = table[table["variant"] == name]
        if name and not row.empty:
            fig.add_trace(go.Scatter(
                x=row["is_sharpe"], y=row["oos_sharpe"], mode="markers+text", name=name,
                text=[name], textposition="top center",
                marker={"size": 14, "symbol": symbol, "line": {"width": 1}}))
    fig.update_layout(title="In-sample against out-of-sample Sharpe, every variant",
                      xaxis_title="in-sample Sharpe (chooses)",
                      yaxis_title="out-of-sample Sharpe (reported only)")
    return fig


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    started = time.perf_counter()
    variants = load_variants(args.variants)
    config = json.loads(args.config.read_text())
    cache = None if args.no_cache else FormationCache(args.cache_dir)
    console.print(f"[bold]{len(variants)} variants[/] from {args.variants}; loading data")
    bench = Workbench.from_files(config, args.datadir, args.markets, cache=cache,
                                 fills=args.fills)
    loaded = time.perf_counter()
    # The split depends on the data only, never on a variant's results.
    settings, _ = bench.settings_for({})
    startup = startup_candles(settings.walk_forward, config, str(config.get("timeframe", "1h")))
    index = align_closes(bench.frames, pd.Timedelta(config.get("timeframe", "1h")))
    first_trading = index[min(startup, len(index) - 1)]
    split = (pd.Timestamp(args.split, tz="UTC") if args.split
             else split_date(index, args.is_share))
    console.print(f"in-sample: {first_trading:%Y-%m-%d} .. {split:%Y-%m-%d}, "
                  f"out-of-sample: {split:%Y-%m-%d} .. {index[-1]:%Y-%m-%d}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        table = run_sweep(bench, variants, split, n_jobs=args.jobs, dask_address=args.dask,
                          progress=report)
    swept = time.perf_counter()
    default = args.default if args.default in {v.name for v in variants} else None
    table, choice = choose(table, default, args.min_dsr)
    args.out.mkdir(parents=True, exist_ok=True)
    flat = table.drop(columns=["is_returns", "oos_returns"])
    flat.to_csv(args.out / "sweep.csv", index=False)
    sharpe_figure(table, choice.chosen, default).write_html(
        args.out / "sharpe_is_oos.html", include_plotlyjs="cdn")
    chosen = next(v for v in variants if v.name == choice.chosen)
    files = [str(p) for p in write_variant(chosen, args.out / "chosen")]
    summary = {
        "variants": len(variants), "split": str(split), "first_trading": str(first_trading),
        "end": str(index[-1]), "choice": vars(choice), "chosen_files": files,
        "distribution": distribution(table),
        "rows": {name: flat[flat["variant"] == name].iloc[0].to_dict()
                 for name in {choice.chosen, default} if name},
        "seconds": {"load": loaded - started, "sweep": swept - loaded,
                    "total": time.perf_counter() - started},
        "cache": None if cache is None else {
            "hits": cache.hits, "misses": cache.misses,
            "build_seconds": cache.build_seconds, "load_seconds": cache.load_seconds},
        "where": args.dask or f"{args.jobs} local process(es)",
        "fills": {"model": bench.fills.model, "taker_fee": bench.fills.taker_fee,
                  "maker_fee": bench.fills.maker_fee},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    shown = table.sort_values("is_dsr", ascending=False, na_position="last").head(args.show)
    if default and default not in set(shown["variant"]):
        shown = pd.concat([shown, table[table["variant"] == default]])
    console.print(_table(shown, f"Top {len(shown)} of {len(table)} by in-sample DSR "
                                "(out-of-sample columns are reported, never used to choose)"))
    dist = summary["distribution"]
    for part, label in (("is", "in-sample"), ("oos", "out-of-sample")):
        d = dist[part]
        console.print(f"{label} Sharpe over all variants: min {_fmt(d['q00'], 'num')}, "
                      f"q25 {_fmt(d['q25'], 'num')}, median {_fmt(d['q50'], 'num')}, "
                      f"q75 {_fmt(d['q75'], 'num')}, max {_fmt(d['q100'], 'num')}; "
                      f"positive {_fmt(d['share_positive'], 'pct')}")
    console.print(f"rank correlation of IS and OOS Sharpe: "
                  f"{_fmt(dist['is_oos_rank_correlation'], 'num')}")
    console.print(f"[bold]choice[/]: {choice.chosen} - {choice.reason}")
    console.print(f"fills: {bench.fills.model} (taker fee {bench.fills.taker_fee:.4%}, "
                  f"maker fee {bench.fills.maker_fee:.4%})")
    console.print(f"sweep {swept - loaded:.1f} s on {summary['where']}, "
                  f"data {loaded - started:.1f} s; written to {args.out}")
    return summary


def main(argv: list[str] | None = None) -> int:
    console = Console(width=int(os.environ.get("COLUMNS", "200")))
    args = _parse_args(argv)
    try:
        run(args, console)
    except VariantError as exc:
        console.print(f"[red]bad sweep file[/]: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

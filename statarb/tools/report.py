"""Per-couple and portfolio report of a CointPairsStrategy backtest result.

Usage::

    python -m statarb.tools.report [--results user_data/backtest_results | --file RESULT.zip] \\
        [--datadir DIR] [--out user_data/report] [--strategy NAME]

Freqtrade reports legs: every couple trade is two Freqtrade trades (one per coin), so its
per-pair and per-tag tables split each couple trade in two and hide whether the hedge
held. This report puts the legs back together. Legs are grouped into couple trips by
couple name (the ``enter_tag``, the same for both legs) and open date; each trip gets its
combined P&L, holding time, funding, fees and the hedge-ratio error of its rounded
amounts against the couple's beta at the signal candle (from the exported signal
candles, ``--export signals``).

It prints a table per couple and the portfolio metrics, and writes into ``--out``:
``couples.csv`` (the table, with a TOTAL row), ``trips.csv`` (one row per couple trip),
``metrics.json`` and ``equity.html`` (equity curve and per-couple cumulative P&L, offline).

Sign conventions: ``funding`` on a trip is Freqtrade's ``funding_fees`` (negative = paid);
``funding_paid`` and ``fees_paid`` in the table and metrics are costs (positive = paid).

Everything but :func:`main` is pure pandas, so it is tested on crafted trades; the
result files are read by :mod:`statarb.ft.results`. Bad input exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from statarb.core.performance import (  # noqa: F401  (the report's public names)
    COUPLE_COLUMNS,
    DAYS_PER_YEAR,
    HOUR,
    TOTAL,
    TRIP_COLUMNS,
    ReportError,
    couple_table,
    couple_trips,
    daily_return_series,
    daily_returns,
    equity_curve,
    leg_frame,
    portfolio_metrics,
    signal_betas,
)

__all__ = [
    "COUPLE_COLUMNS",
    "TRIP_COLUMNS",
    "couple_table",
    "couple_trips",
    "daily_return_series",
    "daily_returns",
    "equity_curve",
    "equity_figure",
    "leg_frame",
    "main",
    "portfolio_metrics",
    "signal_betas",
    "write_equity_html",
]

EXIT_BAD_INPUT = 2
FALLBACK_DATADIR = Path("../shared/data/binance")

# ---------------------------------------------------------------------- chart
def equity_figure(
    equity: pd.Series, trips: pd.DataFrame, *, title: str = "Backtest equity"
) -> go.Figure:
    """Portfolio equity (top) and one cumulative-P&L line per couple (bottom).

    A couple's line steps at each of its trips' close dates; couples are listed best
    P&L first so the legend reads like the table.
    """
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=[0.45, 0.55],
        subplot_titles=("Portfolio equity", "Cumulative P&L per couple"),
    )
    fig.add_trace(go.Scatter(x=equity.index, y=equity.to_numpy(), name="equity"), 1, 1)
    if not trips.empty:
        order = trips.groupby("couple")["profit_abs"].sum().sort_values(ascending=False)
        for couple in order.index:
            rows = trips[trips["couple"] == couple].sort_values("close_date")
            cumulative = rows["profit_abs"].cumsum()
            x = [rows["open_date"].iloc[0], *rows["close_date"]]
            y = [0.0, *cumulative]
            fig.add_trace(
                go.Scatter(x=x, y=y, name=str(couple), mode="lines", line_shape="hv"), 2, 1
            )
    fig.update_layout(title=title, height=950, hovermode="x unified", template="plotly_white")
    return fig


def write_equity_html(fig: go.Figure, folder: Path) -> Path:
    """``folder/equity.html``, with plotly.js written once beside it so it works offline
    (the approach of :mod:`statarb.tools.plots`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "equity.html"
    fig.write_html(path, include_plotlyjs="directory", full_html=True)
    return path


# ---------------------------------------------------------------------- CLI
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m statarb.tools.report",
        description="Per-couple and portfolio report of a CointPairsStrategy backtest result.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--results",
        type=Path,
        default=Path("user_data/backtest_results"),
        help="backtest results folder; its latest result is read (default %(default)s)",
    )
    source.add_argument("--file", type=Path, default=None, help="a backtest-result-*.zip")
    p.add_argument(
        "--datadir",
        type=Path,
        default=None,
        help="Freqtrade datadir with BTC futures candles (default: the one the backtest "
        f"recorded in its result, else {FALLBACK_DATADIR})",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("user_data/report"),
        help="output folder (default %(default)s)",
    )
    p.add_argument("--strategy", default=None, help="strategy of a multi-strategy result")
    p.add_argument("--no-btc", action="store_true", help="skip the BTC correlation")
    return p.parse_args(argv)


def _btc_datadir(given: Path | None, recorded: Path | None) -> tuple[Path, str]:
    """Where BTC's candles are read: ``--datadir`` when given, else the datadir the backtest
    recorded in its result (the candles it really ran on), else the shared data."""
    if given is not None:
        return given, "--datadir"
    if recorded is not None:
        return recorded, "the backtest's datadir"
    return FALLBACK_DATADIR, "the default (the result records no datadir)"


def _check_covers(btc: pd.Series, datadir: Path, start: Any, end: Any) -> None:
    """BTC's candles must span the backtest; otherwise the correlation would be empty."""
    if start is None or end is None or btc.empty:
        return
    start, end = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    first, last = btc.index.min(), btc.index.max()
    if first > start + pd.Timedelta(days=1) or last < end - pd.Timedelta(days=1):
        raise ReportError(
            f"BTC's candles in {datadir} cover {first:%Y-%m-%d}..{last:%Y-%m-%d}, not the "
            f"backtest's {start:%Y-%m-%d}..{end:%Y-%m-%d}: pass the backtest's --datadir "
            "or --no-btc"
        )


def _btc_close(datadir: Path, timeframe: str, stake: str) -> pd.Series:
    from statarb.ft.data import available_pairs, load_closes

    pair = f"BTC/{stake}:{stake}"
    if not datadir.is_dir():
        raise ReportError(
            f"--datadir {datadir} is not a directory (needed for BTC's candles; "
            "pass --datadir or --no-btc)"
        )
    if pair not in available_pairs(datadir, timeframe):
        raise ReportError(
            f"no {timeframe} futures candles of {pair} in {datadir}; pass another "
            "--datadir or --no-btc"
        )
    return load_closes(datadir, [pair], timeframe)[pair]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Load the result, print the report and write the outputs; returns metrics.json."""
    from statarb.ft.results import load_result

    result = load_result(args.file, directory=args.results, strategy=args.strategy)
    stake = str(result.stats.get("stake_currency") or "USDT")
    btc = None
    if not args.no_btc:
        datadir, why = _btc_datadir(args.datadir, result.datadir)
        btc = _btc_close(datadir, result.timeframe, stake)
        _check_covers(btc, datadir, result.stats.get("backtest_start"),
                      result.stats.get("backtest_end"))
        result.notes.append(f"BTC candles from {datadir} ({why})")
    betas = signal_betas(result.signals or {}, result.trades, result.timeframe)
    trips = couple_trips(result.trades, betas)
    table = couple_table(trips)
    metrics = portfolio_metrics(result.trades, result.starting_balance, btc, result.wallet)
    curve, _ = equity_curve(result.trades, result.starting_balance, result.wallet)

    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "couples.csv", index=False)
    trips.to_csv(args.out / "trips.csv", index=False)
    doc = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "generator": "statarb.tools.report",
        "result": str(result.path),
        "strategy": result.strategy,
        "timeframe": result.timeframe,
        "timerange": result.stats.get("timerange"),
        "backtest_start": result.stats.get("backtest_start"),
        "backtest_end": result.stats.get("backtest_end"),
        **{k: _jsonable(v) for k, v in metrics.items()},
        "trips_without_beta": int(trips["beta"].isna().sum()) if len(trips) else 0,
        "notes": result.notes,
    }
    (args.out / "metrics.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    title = f"{result.strategy} - {result.path.name}"
    write_equity_html(equity_figure(curve, trips, title=title), args.out)
    _print(console, result.path, result.strategy, table, doc, args.out)
    return doc


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def _print(
    console: Console,
    path: Path,
    strategy: str,
    table: pd.DataFrame,
    doc: dict[str, Any],
    out: Path,
) -> None:
    console.print(f"{strategy} backtest {path}", soft_wrap=True)
    console.print(
        f"{doc['timeframe']} candles, {doc['backtest_start'] or '?'} .. "
        f"{doc['backtest_end'] or '?'}, daily equity from the {doc['equity_source']}",
        soft_wrap=True,
    )
    for note in doc["notes"]:
        console.print(Text.assemble(("note: ", "yellow"), note), soft_wrap=True)
    # Simple box, two-line headers and columns as wide as their content: the table fits
    # an 80-column terminal or log without cutting numbers.
    heads = ("couple", "trips", "win", "P&L", "hold\nh avg", "hedge\nerr avg",
             "funding\npaid", "fees\npaid", "incompl.\ntrips")  # fmt: skip
    cells = [
        (
            str(row.couple),
            str(row.trades),
            _fmt(row.win_rate, ".0%"),
            _fmt(row.pnl, ",.2f"),
            _fmt(row.avg_holding_hours, ".1f"),
            _fmt(row.avg_hedge_error, ".3%"),
            _fmt(row.funding_paid, ",.2f"),
            _fmt(row.fees_paid, ",.2f"),
            str(row.incomplete),
        )
        for row in table.itertuples(index=False)
    ]
    view = Table(
        title="Couples (a trip is one couple trade, both legs together)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
    )
    for i, head in enumerate(heads):
        width = max([len(line) for line in head.split("\n")] + [len(c[i]) for c in cells])
        view.add_column(head, justify="left" if i == 0 else "right", no_wrap=True, width=width)
    for n, line in enumerate(cells):
        total = n == len(cells) - 1
        view.add_row(*line, style="bold" if total else None, end_section=n == len(cells) - 2)
    console.print(view)
    figures = Table(title="Portfolio", show_header=False)
    figures.add_column("metric")
    figures.add_column("value", justify="right")
    lines = [
        ("total return", _fmt(doc["total_return"], ".2%")),
        ("profit (final balance)",
         f"{_fmt(doc['profit_abs'], ',.2f')} ({_fmt(doc['final_balance'], ',.2f')})"),
        ("Sharpe (daily, sqrt 365)", _fmt(doc["sharpe"], ".2f")),
        ("Sortino (daily, sqrt 365)", _fmt(doc["sortino"], ".2f")),
        ("max drawdown (daily equity)",
         f"{_fmt(doc['max_drawdown'], '.2%')} ({_fmt(doc['max_drawdown_abs'], ',.2f')})"),
        ("couple trips / legs", f"{doc['couple_trips']} / {doc['legs']}"),
        ("incomplete trips", str(doc["incomplete_trips"])),
        ("fees paid", _fmt(doc["fees_paid"], ",.2f")),
        ("funding paid", _fmt(doc["funding_paid"], ",.2f")),
        ("correlation with BTC (daily)", _fmt(doc["btc_correlation"], ".3f")),
    ]  # fmt: skip
    for name, value in lines:
        figures.add_row(name, value)
    console.print(figures)
    console.print(
        f"Wrote {out / 'couples.csv'}, {out / 'trips.csv'}, {out / 'metrics.json'}, "
        f"{out / 'equity.html'}",
        soft_wrap=True,
    )


def main(argv: list[str] | None = None) -> int:
    console = Console()
    try:
        args = _parse_args(argv)
        run(args, console)
    except (ReportError, ValueError, OSError) as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())

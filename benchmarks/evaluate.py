"""Evaluation: CointPairsStrategy against two baselines, in-sample and out-of-sample.

A backtest figure means little alone: a positive return in a rising market, or a Sharpe
that only holds on the data the parameters were chosen on, says nothing about the method.
This runs, on the in-sample part of the shared data (where parameters are chosen) and on
the out-of-sample rest, three contenders and prints one comparison table:

* ``CointPairsStrategy``: the strategy, with its default parameters or with a Freqtrade
  parameter file (``--params``, as ``freqtrade hyperopt`` writes it);
* ``NaiveCouplesStrategy``: the textbook pairs trade (couples fitted once on the whole
  window, fixed thresholds, no regime); what the strategy's additions have to beat;
* BTC buy and hold over the same trading period as the strategy's backtest (its
  ``backtest_start`` .. ``backtest_end``, after Freqtrade's start-up candles): what a
  market-neutral strategy is an alternative to.

Each Freqtrade run is one ``freqtrade backtesting`` subprocess (``--export trades``),
started by ``bench_backtest.backtest`` against one in-process simulator, with a temporary
user data directory, result directory and strategy directory. The strategy directory
holds copies of ``strategies/*.py`` only, so a ``strategies/*.json`` parameter file left
by an earlier hyperopt never changes a result unnoticed; the ``--params`` file is copied
in as ``CointPairsStrategy.json``. Freqtrade reads parameters from the JSON named after
the file the strategy class was found in, so ``NaiveCouplesStrategy`` (found in
``NaiveCouplesStrategy.py``) never sees it. Freqtrade stores the parameter file it used in
the result zip; this is checked after each run, so a leak would fail the evaluation.

Every figure comes from the report's functions (:func:`statarb.tools.report.portfolio_metrics`),
so the table agrees with ``make report``, except that BTC's closes for the correlation end
with the period's last traded candle (see :func:`btc_until`). Buy and hold is priced from
the closes of ``BTC_USDT_USDT-1h-futures.feather``: 10000 USDT (entry fee included) bought
at the close before the first candle (its open), marked to market at every close and sold
at the last candle's close, with a 0.05% taker fee at entry and at exit and no funding (a
spot holding). Its daily marks are the ones the BTC correlation uses, so that correlation
is 1 up to the two fees. The Freqtrade runs' equity is realised equity (Freqtrade's wallet does
not mark open futures positions), so their drawdowns are not strictly comparable with buy
and hold's: a loss inside an open couple trade only shows when the trade closes.

Prints the table and writes ``evaluation.json`` and ``evaluation.md`` into ``--out``, and
the result zips under ``--out/results`` (for ``python -m statarb.tools.report --file``). Exits 1
when a backtest fails (non-zero exit, a logged ERROR, no summary or no result), 2 on bad
arguments.

    python benchmarks/evaluate.py [--is-timerange 20240101-20250314]
        [--oos-timerange 20250314-20260101] [--params FILE] [--datadir DIR]
        [--markets FILE] [--out user_data/evaluation]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))  # benchmarks is no package: import its backtest runner

import bench_backtest as bench  # noqa: E402
from rich import box  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from statarb.ft.data import load_closes, timerange_from_string  # noqa: E402
from statarb.ft.results import BacktestResult, load_result  # noqa: E402
from statarb.sim.market_data import DEFAULT_DATADIR, DEFAULT_MARKETS, MarketData  # noqa: E402
from statarb.sim.run import write_overlay  # noqa: E402
from statarb.sim.server import SimServer  # noqa: E402
from statarb.tools.report import _fmt, _jsonable, portfolio_metrics  # noqa: E402

STRATEGY = "CointPairsStrategy"
NAIVE = "NaiveCouplesStrategy"
BUY_HOLD = "BTC buy & hold"
STRATEGIES = (STRATEGY, NAIVE)
STRATEGY_SOURCES = ROOT / "strategies"
PERIODS = ("IS", "OOS")
# Only the trades are needed; signal candles would make every run slower and bigger.
EXPORT = "trades"
TIMEFRAME = "1h"  # the strategies' candle size
BTC_PAIR = "BTC/USDT:USDT"
BUY_HOLD_BALANCE = 10_000.0
TAKER_FEE = 0.0005  # Binance USDT-M taker fee, the fee of the strategies' market orders
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class EvaluationError(Exception):
    """Bad input; the message is shown to the user as is."""


@dataclass(frozen=True)
class Row:
    """One (period, contender) line of the comparison."""

    period: str
    name: str
    timerange: str
    metrics: dict[str, Any]
    couples: bool  # couple trips and legs mean something (the Freqtrade runs)
    seconds: float | None = None
    result: str | None = None
    params_file: bool | None = None


# ---------------------------------------------------------------------- inputs
def read_params(path: Path) -> dict[str, Any]:
    """The ``--params`` file, checked before any backtest starts.

    Freqtrade raises "Invalid parameter file provided." when ``strategy_name`` is not the
    class it loads, and only after minutes of data loading; failing here is quicker.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"--params {path}: not a readable JSON file ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("params"), dict):
        raise EvaluationError(
            f"--params {path}: not a Freqtrade parameter file (no 'params' object)"
        )
    if doc.get("strategy_name") != STRATEGY:
        raise EvaluationError(
            f"--params {path}: strategy_name is {doc.get('strategy_name')!r}, "
            f"Freqtrade only accepts it for {STRATEGY!r}"
        )
    return doc


def strategy_dir(target: Path, params: Path | None) -> Path:
    """A strategy directory with the repository's strategies and no parameter file but
    ``params`` (as ``CointPairsStrategy.json``); see the module docstring for why."""
    target.mkdir(parents=True)
    for source in sorted(STRATEGY_SOURCES.glob("*.py")):
        shutil.copy2(source, target / source.name)
    if params is not None:
        shutil.copy2(params, target / f"{STRATEGY}.json")
    return target


def btc_closes(datadir: Path) -> pd.Series:
    """BTC's closes by candle date, loaded as Freqtrade loads them (no gap filling)."""
    closes = load_closes(datadir, [BTC_PAIR], TIMEFRAME)[BTC_PAIR]
    if closes.empty:
        raise EvaluationError(f"no {TIMEFRAME} futures candles of {BTC_PAIR} in {datadir}")
    closes.index = pd.to_datetime(closes.index, utc=True)
    return closes.sort_index()


def btc_until(closes: pd.Series, end: pd.Timestamp) -> pd.Series:
    """BTC's closes up to the last traded candle ``end``.

    The correlation compares each day's last equity with BTC's last close of that day.
    A period ending at midnight trades one candle of its last day; with the whole day of
    BTC that day's two returns cover different hours, which alone takes buy and hold's
    correlation from 1 to 0.99 on a volatile month.
    """
    return closes[closes.index <= end]


# ---------------------------------------------------------------------- Freqtrade runs
def used_params_file(result: BacktestResult) -> bool:
    """Whether Freqtrade ran the strategy with a parameter file (it stores the one it
    read in the result zip, named after the strategy)."""
    member = f"{result.path.stem}_{result.strategy}.json"
    with zipfile.ZipFile(result.path) as archive:
        return member in archive.namelist()


def run_strategy(
    period: str,
    strategy: str,
    timerange: str,
    *,
    overlay: Path,
    datadir: Path,
    strategies: Path,
    workdir: Path,
    out: Path,
    btc: pd.Series,
    expect_params: bool,
) -> tuple[Row, BacktestResult]:
    """Backtest ``strategy`` on ``timerange``, keep its result zip, return its figures.

    Raises ``bench.RunFailed`` when the run or its result is not usable.
    """
    run = bench.backtest(
        strategy,
        overlay=overlay,
        datadir=datadir,
        timerange=timerange,
        workdir=workdir,
        env=bench.child_env(),
        strategy_path=strategies,
    )
    try:
        result = load_result(directory=workdir / "backtest_results", strategy=strategy)
    except ValueError as exc:
        raise bench.RunFailed(f"{strategy}: {exc}") from exc
    with_params = used_params_file(result)
    if with_params != expect_params:
        state = "with" if with_params else "without"
        raise bench.RunFailed(f"{strategy} ran {state} a parameter file, against the setup")
    kept = out / "results" / f"{period}-{strategy}"
    shutil.rmtree(kept, ignore_errors=True)  # only this evaluation's own folder
    kept.mkdir(parents=True)
    for produced in result.path.parent.glob(f"{result.path.stem}*"):
        shutil.copy2(produced, kept / produced.name)
    btc_seen = btc_until(btc, trading_period(result)[1])
    metrics = portfolio_metrics(result.trades, result.starting_balance, btc_seen, result.wallet)
    row = Row(
        period=period,
        name=strategy,
        timerange=timerange,
        metrics={
            "backtest_start": result.stats.get("backtest_start"),
            "backtest_end": result.stats.get("backtest_end"),
            **metrics,
        },
        couples=True,
        seconds=run.seconds,
        result=str(kept / result.path.name),
        params_file=with_params,
    )
    return row, result


def trading_period(result: BacktestResult) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last candle the backtest traded on (after the start-up candles)."""
    stats = result.stats
    if "backtest_start_ts" in stats and "backtest_end_ts" in stats:
        return (
            pd.Timestamp(int(stats["backtest_start_ts"]), unit="ms", tz="UTC"),
            pd.Timestamp(int(stats["backtest_end_ts"]), unit="ms", tz="UTC"),
        )
    return (
        pd.Timestamp(stats["backtest_start"], tz="UTC"),
        pd.Timestamp(stats["backtest_end"], tz="UTC"),
    )


# ---------------------------------------------------------------------- buy and hold
def buy_and_hold(
    closes: pd.Series,
    start: pd.Timestamp,
    end: pd.Timestamp,
    balance: float = BUY_HOLD_BALANCE,
    fee: float = TAKER_FEE,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Buy and hold as one Freqtrade-like trade and a wallet, for ``portfolio_metrics``.

    Written in Freqtrade's own shapes so the report computes its figures exactly as for
    the strategies: the trade carries the fees (``leg_frame`` prices them as
    ``amount * rate * fee``) and the profit; the wallet is the equity at each candle
    close from ``start`` to ``end`` (the exit fee taken at the last one). Entry is at the
    close before ``start`` (the first candle's open, where a backtest's first order fills),
    so the daily marks are the BTC closes the correlation uses.
    """
    before = closes[closes.index < start]
    held = closes[(closes.index >= start) & (closes.index <= end)]
    if before.empty or held.empty:
        raise EvaluationError(
            f"no {BTC_PAIR} closes around {start} .. {end} for buy and hold; check --datadir"
        )
    entry, exit_rate = float(before.iloc[-1]), float(held.iloc[-1])
    amount = balance / (entry * (1.0 + fee))  # the whole balance, entry fee included
    equity = amount * held.astype("float64")
    equity.iloc[-1] *= 1.0 - fee
    trade = pd.DataFrame(
        {
            "pair": [BTC_PAIR],
            "open_date": [start],
            "close_date": [end],
            "amount": [amount],
            "open_rate": [entry],
            "close_rate": [exit_rate],
            "fee_open": [fee],
            "fee_close": [fee],
            "profit_abs": [float(equity.iloc[-1]) - balance],
            "funding_fees": [0.0],
            "is_open": [False],
            "is_short": [False],
            "enter_tag": [None],
        }
    )
    wallet = pd.DataFrame({"date": equity.index, "total_quote": equity.to_numpy()})
    return trade, wallet


def buy_and_hold_row(period: str, timerange: str, result: BacktestResult, btc: pd.Series) -> Row:
    """Buy and hold over the trading period of ``result``'s backtest."""
    start, end = trading_period(result)
    trade, wallet = buy_and_hold(btc, start, end)
    metrics = portfolio_metrics(trade, BUY_HOLD_BALANCE, btc_until(btc, end), wallet)
    return Row(
        period=period,
        name=BUY_HOLD,
        timerange=timerange,
        metrics={
            "backtest_start": result.stats.get("backtest_start"),
            "backtest_end": result.stats.get("backtest_end"),
            **metrics,
            # One BTC position, not a couple: trips and legs do not apply.
            "couple_trips": None,
            "incomplete_trips": None,
            "legs": None,
        },
        couples=False,
    )


# ---------------------------------------------------------------------- output
HEADS = ("period", "strategy", "return", "Sharpe", "Sortino", "max DD",
         "trips", "legs", "fees\npaid", "funding\npaid", "corr\nBTC")  # fmt: skip


def cells(row: Row) -> list[str]:
    """The table cells of one row, formatted as the report formats them."""
    m = row.metrics
    return [
        row.period,
        row.name,
        _fmt(m["total_return"], ".2%"),
        _fmt(m["sharpe"], ".2f"),
        _fmt(m["sortino"], ".2f"),
        _fmt(m["max_drawdown"], ".2%"),
        str(m["couple_trips"]) if row.couples else "-",
        str(m["legs"]) if row.couples else "-",
        _fmt(m["fees_paid"], ",.2f"),
        _fmt(m["funding_paid"] + 0.0, ",.2f"),  # + 0.0: no "-0.00" for nothing paid
        _fmt(m["btc_correlation"], ".3f"),
    ]


def windows(rows: list[Row]) -> list[str]:
    """One line per period: requested timerange and the days actually traded."""
    lines = []
    for period in PERIODS:
        found = [r for r in rows if r.period == period]
        if found:
            m = found[0].metrics
            lines.append(
                f"{period}: timerange {found[0].timerange}, traded {m['backtest_start']} .. "
                f"{m['backtest_end']} ({m['days']} days)"
            )
    return lines


def rich_table(rows: list[Row]) -> Table:
    """The comparison as a rich table, one section per period."""
    table = Table(
        title="Strategy against baselines (daily equity, Sharpe/Sortino with sqrt 365)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
    )
    body = [cells(r) for r in rows]
    for i, head in enumerate(HEADS):
        width = max([len(part) for part in head.split("\n")] + [len(c[i]) for c in body])
        table.add_column(head, justify="left" if i < 2 else "right", no_wrap=True, width=width)
    for n, (row, line) in enumerate(zip(rows, body, strict=True)):
        last_of_period = n + 1 < len(rows) and rows[n + 1].period != row.period
        table.add_row(*line, end_section=last_of_period)
    return table


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    """``evaluation.md``: the settings, the table and how to read it."""
    heads = [h.replace("\n", " ") for h in HEADS]
    lines = [
        "# Evaluation: CointPairsStrategy against baselines",
        "",
        f"- generated {meta['generated_at']} with freqtrade {meta['freqtrade']}",
        f"- CointPairsStrategy parameters: {meta['params'] or 'defaults (no parameter file)'}",
        *[f"- {w}" for w in windows(rows)],
        "",
        "| " + " | ".join(heads) + " |",
        "|" + "|".join(":---" if i < 2 else "---:" for i in range(len(heads))) + "|",
        *["| " + " | ".join(cells(r)) + " |" for r in rows],
        "",
        "Return, fees and funding (USDT, positive = paid) over the traded days; Sharpe and",
        "Sortino of daily returns (sqrt 365, no risk-free rate); max DD of the end-of-day",
        "equity. Freqtrade runs: realised equity (open trades are not marked to market);",
        "buy and hold: marked at every close, 0.05% taker fee at entry and exit, no funding.",
    ]
    if meta["failures"]:
        lines += ["", "**Incomplete: failed runs**", "", *[f"- {f}" for f in meta["failures"]]]
    return "\n".join(lines) + "\n"


def row_doc(row: Row) -> dict[str, Any]:
    """A row for ``evaluation.json``: ratios as ratios, undefined figures as null."""
    return {
        "period": row.period,
        "strategy": row.name,
        "timerange": row.timerange,
        **{k: _jsonable(v) for k, v in row.metrics.items()},
        "seconds": None if row.seconds is None else round(row.seconds, 1),
        "result": row.result,
        "params_file": row.params_file,
    }


# ---------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/evaluate.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--is-timerange", default="20240101-20250314", help="in-sample part")
    ap.add_argument("--oos-timerange", default="20250314-20260101", help="out-of-sample part")
    ap.add_argument(
        "--params",
        type=Path,
        default=None,
        help="Freqtrade parameter JSON for CointPairsStrategy (default: its defaults)",
    )
    ap.add_argument("--datadir", type=Path, default=DEFAULT_DATADIR)
    ap.add_argument("--markets", type=Path, default=DEFAULT_MARKETS)
    ap.add_argument("--out", type=Path, default=Path("user_data/evaluation"))
    args = ap.parse_args(argv)
    for option in ("is_timerange", "oos_timerange"):
        try:
            timerange_from_string(getattr(args, option))
        except Exception:  # Freqtrade raises its own exception type on a bad timerange
            ap.error(f"--{option.replace('_', '-')} {getattr(args, option)}: not a timerange")
    if not args.datadir.is_dir():
        ap.error(f"--datadir {args.datadir}: no such directory")
    if not args.markets.is_file():
        ap.error(f"--markets {args.markets}: no such file")
    return args


def evaluate(args: argparse.Namespace, console: Console) -> int:
    """Run everything, print and write the comparison; return the exit code."""
    from freqtrade import __version__ as ft_version

    params = args.params.resolve() if args.params else None
    if params is not None:
        read_params(params)
    datadir = args.datadir.resolve()
    out = args.out.resolve()
    btc = btc_closes(datadir)
    # bench_backtest times `make backtest`, which exports signals; here trades suffice.
    bench.EXPORT = EXPORT
    timeranges = {"IS": args.is_timerange, "OOS": args.oos_timerange}
    console.print(
        f"freqtrade {ft_version} backtesting, --export {EXPORT}; datadir {datadir}; "
        f"{STRATEGY} parameters: {params or 'defaults'}",
        soft_wrap=True,
    )
    rows: list[Row] = []
    failures: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="statarb-eval-") as tmp_name,
        SimServer(market_data=MarketData(datadir, args.markets)) as sim,
    ):
        tmp = Path(tmp_name)
        overlay = write_overlay(bench.OVERLAY, sim.port, datadir, tmp)
        strategies = strategy_dir(tmp / "strategies", params)
        for period in PERIODS:
            timerange = timeranges[period]
            results: dict[str, BacktestResult] = {}
            for strategy in STRATEGIES:
                started = time.perf_counter()
                try:
                    row, results[strategy] = run_strategy(
                        period,
                        strategy,
                        timerange,
                        overlay=overlay,
                        datadir=datadir,
                        strategies=strategies,
                        workdir=tmp / f"{period}-{strategy}",
                        out=out,
                        btc=btc,
                        expect_params=params is not None and strategy == STRATEGY,
                    )
                except bench.RunFailed as exc:
                    failures.append(f"{period} {exc}".splitlines()[0])
                    console.print(f"[red]FAILED[/] {period} {exc}", soft_wrap=True)
                    continue
                finally:
                    shutil.rmtree(tmp / f"{period}-{strategy}", ignore_errors=True)
                rows.append(row)
                console.print(
                    f"  {period} {strategy}: {time.perf_counter() - started:.0f} s, "
                    f"{row.metrics['legs']} legs"
                )
            # The strategy's trading period; the baseline's if the strategy failed.
            reference = results.get(STRATEGY) or results.get(NAIVE)
            if reference is not None:
                rows.append(buy_and_hold_row(period, timerange, reference, btc))

    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "generator": "benchmarks/evaluate.py",
        "freqtrade": ft_version,
        "datadir": str(datadir),
        "params": str(params) if params else None,
        "timeranges": timeranges,
        "export": EXPORT,
        "buy_and_hold": {"balance": BUY_HOLD_BALANCE, "taker_fee": TAKER_FEE, "funding": 0.0},
        "failures": failures,
    }
    doc = {**meta, "complete": not failures, "rows": [row_doc(r) for r in rows]}
    text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
    (out / "evaluation.json").write_text(text, encoding="utf-8")
    (out / "evaluation.md").write_text(markdown(rows, meta), encoding="utf-8")

    console.print()
    console.print(rich_table(rows))
    for line in windows(rows):
        console.print(line, soft_wrap=True)
    console.print(f"Wrote {out / 'evaluation.json'}, {out / 'evaluation.md'}", soft_wrap=True)
    if failures:
        console.print(f"[red]{len(failures)} backtest(s) failed[/]: " + "; ".join(failures))
        return EXIT_FAILED
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=max(Console().width, 100))
    try:
        return evaluate(args, console)
    except (EvaluationError, OSError) as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())

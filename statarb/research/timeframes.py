"""``python -m statarb.research.timeframes``: does a shorter bar pay? One honest sweep.

Every variant of a sweep file is run at each timeframe (default 5m, 15m, 30m, 1h) on the
same coins and the same days: the 5m candles, resampled as Binance builds its intervals
(what ``freqtrade download-data`` through the simulator stores). Windows are wall time, so
a variant means the same spans at each. All of them are trials of one choice: it is made
on the first ``--is-share`` of the days only, by the Deflated Sharpe Ratio over every
trial (:func:`statarb.research.sweep.choose`), against the default at 1h. The spread cost
of each coin (``--costs``, written by ``python -m statarb.tools.spread``) is charged on
every fill; the sweep is repeated without it, and both are reported.

Then the **bar-coarsening check**: the intraday variant with the best in-sample DSR is run
again on bars four times coarser (5m -> 20m, 15m -> 1h, 30m -> 2h) with the same
wall-time windows. An edge that comes from prices bouncing between bid and ask at one bar
(or from stale prices) does not survive a coarser bar; one that does is a slower property
of the spread. The report names which it is.

    python -m statarb.research.timeframes [--variants research/timeframes.yml]
        [--datadir ../shared/data/binance_5m] [--costs user_data/statarb_spread.json]
        [--timeframes 5m,15m,30m,1h] [--jobs 2] [--out user_data/research_timeframes]

Writes ``timeframes.csv`` (every trial), ``summary.json`` (per timeframe: the in- and
out-of-sample Sharpe distribution, fee and spread shares of gross profit, capital in use,
trips; the choice; the coarsening check) and prints the same. Exit code 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from statarb.core.settings import timeframe_name
from statarb.core.walkforward import align_closes
from statarb.research.cache import FormationCache
from statarb.research.deflated import deflated_sharpe
from statarb.research.evaluate import Workbench
from statarb.research.sweep import MIN_TRIPS, choose, run_sweep, trial_sharpes
from statarb.research.variants import Variant, VariantError, load_variants

ROOT = Path(__file__).resolve().parents[2]
TIMEFRAMES = ("5m", "15m", "30m", "1h")
COARSER = 4
OHLCV = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def resample_frames(frames: Mapping[str, pd.DataFrame], timeframe: str
                    ) -> dict[str, pd.DataFrame]:
    """Candles of ``timeframe`` from finer ones, as Binance builds them: buckets from the
    UTC epoch stamped with their open, first open, highest high, lowest low, last close,
    volumes summed; an incomplete last bucket is dropped."""
    width = pd.Timedelta(timeframe)
    out = {}
    for pair, frame in frames.items():
        if len(frame) > 1 and frame["date"].iloc[1] - frame["date"].iloc[0] == width:
            out[pair] = frame
            continue
        source = frame.set_index("date")
        step = source.index[1] - source.index[0]
        agg = source[list(OHLCV)].resample(width, origin="epoch").agg(OHLCV)
        count = source["close"].resample(width, origin="epoch").count()
        agg = agg[count.to_numpy() == width // step]
        out[pair] = agg.reset_index()
    return out


class Market:
    """The 5m candles, funding and markets of the sweep, loaded once."""

    def __init__(self, config: Mapping[str, Any], datadir: Path, markets_file: Path,
                 base: str = "5m") -> None:
        from statarb.ft.data import available_pairs, load_frames, load_funding

        have = available_pairs(datadir, base)
        self.markets = json.loads(Path(markets_file).read_text())
        # The whitelist's coins with candles, in its order (the backtest's --pairs:
        # statarb.tools.timeframe_data.pairs_with_data).
        pairs = [p for p in config["exchange"]["pair_whitelist"] if p in have]
        if len(pairs) < 2:
            raise ValueError(f"fewer than two whitelist pairs have {base} candles in {datadir}")
        regime = (config.get("statarb") or {}).get("regime", {}).get("pair", "BTC/USDT:USDT")
        self.config = {**config, "exchange": {**config["exchange"], "pair_whitelist": pairs}}
        self.frames = load_frames(datadir, sorted({*pairs, regime}), base)
        self.funding = load_funding(datadir, pairs)
        self.base = base

    def bench(self, timeframe: str, cache: Any = None) -> Workbench:
        config = {**self.config, "timeframe": timeframe}
        return Workbench(config, resample_frames(self.frames, timeframe), self.markets,
                         self.funding, cache=cache)


def with_costs(variants: Sequence[Variant], costs: Mapping[str, float] | None
               ) -> list[Variant]:
    """The variants with ``statarb.costs.half_spread`` set to ``costs`` (None: none)."""
    section = {"half_spread": dict(costs or {})}
    return [replace(v, statarb={**v.statarb, "costs": section}) for v in variants]


def gross_shares(rows: pd.DataFrame, part: str) -> dict[str, float]:
    """Gross profit (before fees and spread), fees and spread summed over ``rows``, and
    the costs as shares of the gross profit (NaN when there is no gross profit to share:
    the trades lost before any cost)."""
    gross = float(rows[f"{part}_gross_profit"].sum())
    spread = float(rows[f"{part}_spread_paid"].sum())
    fees = float(rows[f"{part}_fees_paid"].sum()) - spread
    return {"gross_profit": gross, "fees": fees, "spread": spread,
            "fee_share": fees / gross if gross > 0 else math.nan,
            "spread_share": spread / gross if gross > 0 else math.nan}


def per_timeframe(table: pd.DataFrame) -> dict[str, Any]:
    """Per timeframe: Sharpe quantiles in and out of sample over every variant, the share
    of positive ones, costs against gross profit, capital in use and trips (medians)."""
    out: dict[str, Any] = {}
    for tf, rows in table.groupby("timeframe", sort=False):
        entry: dict[str, Any] = {"variants": len(rows)}
        for part in ("is", "oos"):
            values = rows[f"{part}_sharpe"].astype("float64")
            finite = values[np.isfinite(values)]
            entry[part] = {
                "with_trades": len(finite),
                **{f"q{int(q * 100):02d}": float(finite.quantile(q)) if len(finite) else math.nan
                   for q in (0.0, 0.25, 0.5, 0.75, 1.0)},
                "share_positive": float((finite > 0).mean()) if len(finite) else math.nan,
                "median_trips": float(rows[f"{part}_couple_trips"].median()),
                "median_capital_in_use": float(rows[f"{part}_capital_in_use"].median()),
                **gross_shares(rows, part),
            }
        entry["best_is_dsr"] = float(rows["is_dsr"].max())
        eligible = rows[rows["is_couple_trips"] >= MIN_TRIPS]
        entry["best_is_dsr_choosable"] = float(eligible["is_dsr"].max()) \
            if len(eligible) else math.nan
        out[str(tf)] = entry
    return out


def coarsening(market: Market, table: pd.DataFrame, variants: Mapping[str, Variant],
               split: pd.Timestamp, trials: np.ndarray, cache: Any) -> dict[str, Any] | None:
    """The best intraday variant by in-sample DSR, again on bars ``COARSER`` times wider."""
    intraday = table[table["timeframe"].map(pd.Timedelta) < pd.Timedelta(hours=1)]
    intraday = intraday[np.isfinite(intraday["is_dsr"].astype("float64"))]
    if intraday.empty:
        return None
    row = intraday.loc[intraday["is_dsr"].astype("float64").idxmax()]
    fine = str(row["timeframe"])
    coarse = timeframe_name(pd.Timedelta(fine) * COARSER)
    variant = variants[str(row["variant"])]
    bench = market.bench(coarse, cache)
    outcome = bench.run(variant.statarb, variant.params, split=split, parts=("is", "oos"))
    returns = outcome.returns["is"].to_numpy(dtype="float64")
    result = deflated_sharpe(returns, trials)
    fine_is, coarse_is = float(row["is_sharpe"]), float(outcome.figures["is"]["sharpe"])
    survives = bool(math.isfinite(coarse_is) and fine_is > 0 and coarse_is >= 0.5 * fine_is)
    if not fine_is > 0:
        verdict = (f"no intraday edge to check: the best intraday variant's in-sample Sharpe "
                   f"is {fine_is:.2f}")
    elif survives:
        verdict = (f"the edge survives {COARSER}x coarser bars ({fine} -> {coarse}: in-sample "
                   f"Sharpe {fine_is:.2f} -> {coarse_is:.2f}): not bid-ask bounce")
    else:
        verdict = (f"bounce: the edge disappears on {COARSER}x coarser bars ({fine} -> "
                   f"{coarse}: in-sample Sharpe {fine_is:.2f} -> {coarse_is:.2f})")
    return {"variant": str(row["variant"]), "fine": fine, "coarse": coarse,
            "fine_is_sharpe": fine_is, "fine_oos_sharpe": float(row["oos_sharpe"]),
            "fine_is_dsr": float(row["is_dsr"]),
            "coarse_is_sharpe": coarse_is,
            "coarse_oos_sharpe": float(outcome.figures["oos"]["sharpe"]),
            "coarse_is_dsr": float(result.dsr), "survives": survives, "verdict": verdict}


def sweep(market: Market, variants: Sequence[Variant], timeframes: Sequence[str],
          split: pd.Timestamp, *, jobs: int, cache: Any) -> pd.DataFrame:
    """Every variant at every timeframe: one table, variants named ``<tf> <name>``."""
    tables = []
    for tf in timeframes:
        table = run_sweep(market.bench(tf, cache), variants, split, n_jobs=jobs)
        table.insert(0, "timeframe", tf)
        table["variant"] = f"{tf} " + table["variant"]
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def _share(value: float) -> str:
    return f"{value:.0%}" if math.isfinite(value) else "gross<0"


def _table(summary: Mapping[str, Any], title: str) -> Table:
    table = Table(title=title, header_style="bold")
    for head in ("timeframe", "variants", "IS Sharpe q25/med/q75 (trading)",
                 "OOS Sharpe q25/med/q75 (trading)", "OOS positive",
                 f"best IS DSR, {MIN_TRIPS}+ trips (any)",
                 "IS gross / fees / spread USDT", "fees, spread / gross", "trips IS/OOS (med)",
                 "OOS capital (med)"):
        table.add_column(head, justify="left" if head == "timeframe" else "right")
    for tf, e in summary.items():
        def q(part: str, e: Mapping[str, Any] = e) -> str:
            d = e[part]
            return (f"{d['q25']:+.2f} / {d['q50']:+.2f} / {d['q75']:+.2f} "
                    f"({d['with_trades']})")
        i = e["is"]
        table.add_row(tf, str(e["variants"]), q("is"), q("oos"),
                      f"{e['oos']['share_positive']:.0%}",
                      f"{e['best_is_dsr_choosable']:.3f} ({e['best_is_dsr']:.3f})",
                      f"{i['gross_profit']:+,.0f} / {i['fees']:,.0f} / {i['spread']:,.0f}",
                      f"{_share(i['fee_share'])}, {_share(i['spread_share'])}",
                      f"{i['median_trips']:.0f} / {e['oos']['median_trips']:.0f}",
                      f"{e['oos']['median_capital_in_use']:.2%}")
    return table


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    started = time.perf_counter()
    variants = load_variants(args.variants)
    config = json.loads(args.config.read_text())
    costs = None
    if args.costs is not None:
        overlay = json.loads(args.costs.read_text())
        costs = overlay["statarb"]["costs"]["half_spread"]
    cache = None if args.no_cache else FormationCache(args.cache_dir)
    market = Market(config, args.datadir, args.markets)
    index = align_closes({p.split("/")[0]: f for p, f in market.frames.items()},
                         pd.Timedelta(market.base))
    split = (index[0] + (index[-1] - index[0]) * args.is_share).floor("1D")
    console.print(f"{len(variants)} variants x {len(args.timeframes)} timeframes on "
                  f"{len(market.config['exchange']['pair_whitelist'])} coins; in-sample "
                  f"{index[0]:%Y-%m-%d} .. {split:%Y-%m-%d}, out-of-sample .. "
                  f"{index[-1]:%Y-%m-%d}")
    # The variants of the run the check reads: with the spread when there is one.
    by_name = {f"{tf} {v.name}": v for tf in args.timeframes for v in with_costs(variants, costs)}
    results: dict[str, Any] = {}
    tables: dict[str, pd.DataFrame] = {}
    for label, spread in (("with spread", costs), ("fees only", None)):
        if label == "with spread" and costs is None:
            continue
        raw = sweep(market, with_costs(variants, spread), args.timeframes, split,
                    jobs=args.jobs, cache=cache)
        default = f"1h {args.default}" if f"1h {args.default}" in set(raw["variant"]) else None
        table, choice = choose(raw, default, args.min_dsr)
        tables[label] = table
        results[label] = {"choice": vars(choice), "per_timeframe": per_timeframe(table)}
        console.print(_table(results[label]["per_timeframe"],
                             f"{label}: every variant at every timeframe ({len(table)} trials)"))
        console.print(f"[bold]choice ({label})[/]: {choice.chosen} - {choice.reason}")
    honest = "with spread" if "with spread" in tables else "fees only"
    table = tables[honest]
    trials = trial_sharpes(table)
    check = coarsening(market, table, by_name, split, trials, cache)
    if check is not None:
        console.print(f"[bold]bar-coarsening check[/] ({check['variant']}): {check['verdict']}")
    args.out.mkdir(parents=True, exist_ok=True)
    for label, t in tables.items():
        t.drop(columns=["is_returns", "oos_returns"]).to_csv(
            args.out / f"timeframes_{label.replace(' ', '_')}.csv", index=False)
    summary = {"variants": len(variants), "timeframes": list(args.timeframes),
               "coins": market.config["exchange"]["pair_whitelist"], "split": str(split),
               "end": str(index[-1]), "costs": costs, "results": results,
               "coarsening": check, "seconds": time.perf_counter() - started}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    console.print(f"written to {args.out} in {summary['seconds']:.0f} s")
    return summary


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m statarb.research.timeframes",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", type=Path, default=ROOT / "research" / "timeframes.yml")
    ap.add_argument("--config", type=Path, default=ROOT / "config.json")
    ap.add_argument("--datadir", type=Path,
                    default=ROOT.parent / "shared" / "data" / "binance_5m")
    ap.add_argument("--markets", type=Path,
                    default=ROOT.parent / "shared" / "markets" / "binance_usdm_markets.json")
    ap.add_argument("--costs", type=Path, help="spread overlay (python -m statarb.tools.spread)")
    ap.add_argument("--timeframes", type=lambda s: tuple(s.split(",")), default=TIMEFRAMES)
    ap.add_argument("--is-share", type=float, default=0.6)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--default", default="default")
    ap.add_argument("--min-dsr", type=float, default=0.95)
    ap.add_argument("--out", type=Path, default=ROOT / "user_data" / "research_timeframes")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "user_data" / "statarb_cache")
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args(argv)
    bad = [tf for tf in args.timeframes if tf not in TIMEFRAMES]
    if bad:
        ap.error(f"--timeframes {bad} are not allowed; allowed: {list(TIMEFRAMES)}")
    if not 0.1 <= args.is_share <= 0.9:
        ap.error(f"--is-share={args.is_share} must be between 0.1 and 0.9")
    for name in ("config", "markets", "costs", "variants"):
        path = getattr(args, name)
        if path is not None and not path.is_file():
            ap.error(f"--{name} {path} is not a file")
    return args


def main(argv: list[str] | None = None) -> int:
    console = Console(width=int(os.environ.get("COLUMNS", "200")))
    args = _parse_args(argv)
    try:
        run(args, console)
    except (VariantError, ValueError, KeyError) as exc:
        console.print(f"[red]bad input[/]: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

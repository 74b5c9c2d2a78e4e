"""Per-couple and portfolio report of a CointPairsStrategy backtest result.

Usage::

    python -m statarb.report [--results user_data/backtest_results | --file RESULT.zip] \\
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
from collections.abc import Mapping
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

from statarb.legs import parse_leg_tag

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
TOTAL = "TOTAL"
DAYS_PER_YEAR = 365  # crypto trades every day: daily returns annualise with sqrt(365)
HOUR = pd.Timedelta(hours=1)
_KEY = ("couple", "open_date")  # a couple trip: its legs share both
_STAMP = "datetime64[ns, UTC]"

TRIP_COLUMNS = [
    "couple",
    "open_date",
    "close_date",
    "legs",
    "side",
    "profit_abs",
    "holding_hours",
    "beta",
    "notional_y",
    "notional_x",
    "hedge_error",
    "funding",
    "fees",
    "incomplete",
    "is_open",
]
COUPLE_COLUMNS = [
    "couple",
    "trades",
    "win_rate",
    "pnl",
    "avg_holding_hours",
    "avg_hedge_error",
    "funding_paid",
    "fees_paid",
    "incomplete",
]


class ReportError(Exception):
    """Bad input for the report; the message is shown to the user as is."""


# ---------------------------------------------------------------------- legs and trips
def leg_frame(trades: pd.DataFrame) -> pd.DataFrame:
    """The trades with their couple, role, entry notional and trading fees.

    A trade whose tag is not a couple leg (a manual force entry, another strategy) keeps
    its own pair as "couple" and an empty role, so it still counts in the totals and
    shows up as an incomplete trip instead of vanishing.
    """
    legs = trades.copy()
    legs["open_date"] = pd.to_datetime(legs["open_date"], utc=True)
    legs["close_date"] = pd.to_datetime(legs["close_date"], utc=True)
    tags = legs["enter_tag"] if "enter_tag" in legs else pd.Series(None, index=legs.index)
    parsed = [parse_leg_tag(t if isinstance(t, str) else None, pair)
              for t, pair in zip(tags, legs["pair"], strict=True)]
    legs["couple"] = [
        p[0] if p else f"{pair} (no couple tag)"
        for p, pair in zip(parsed, legs["pair"], strict=True)
    ]
    legs["role"] = [p[1] if p else "" for p in parsed]
    legs["notional"] = legs["amount"] * legs["open_rate"]
    # A leg still open at the end has paid no exit fee yet.
    exit_fee = (legs["amount"] * legs["close_rate"] * legs["fee_close"]).fillna(0.0)
    legs["fees"] = legs["notional"] * legs["fee_open"] + exit_fee
    legs["funding_fees"] = legs["funding_fees"].fillna(0.0) if "funding_fees" in legs else 0.0
    legs["is_open"] = legs["is_open"].fillna(False) if "is_open" in legs else False
    return legs


def signal_betas(
    signals: Mapping[str, pd.DataFrame], trades: pd.DataFrame, timeframe: str = "1h"
) -> pd.Series:
    """Hedge ratio of each couple trip at its signal candle, indexed by (couple, open_date).

    The signal candle is the one closing when the legs open (``open_date - timeframe``);
    its ``couple_beta`` column is the beta of the couple the coin belongs to there. Both
    legs' candles normally agree. A coin listed in two couples of one formation shows
    only one of them, so when the legs disagree the trip's beta is unknown (NaN) rather
    than guessed; a leg without a candle defers to its partner.
    """
    index = pd.MultiIndex.from_arrays([[], pd.DatetimeIndex([], tz="UTC")], names=_KEY)
    empty = pd.Series([], index=index, dtype="float64", name="beta")
    frames = [
        frame[["date", "couple_beta"]].assign(pair=pair)
        for pair, frame in signals.items()
        if frame is not None and not frame.empty and {"date", "couple_beta"} <= set(frame)
    ]
    if trades.empty or not frames:
        return empty
    candles = pd.concat(frames, ignore_index=True)
    # One time unit on both sides: pickled candles and JSON trades may differ (us / ns).
    candles["date"] = pd.to_datetime(candles["date"], utc=True).astype(_STAMP)
    candles = candles.drop_duplicates(["pair", "date"], keep="last")
    legs = leg_frame(trades)
    legs["date"] = (legs["open_date"] - pd.Timedelta(timeframe)).astype(_STAMP)
    legs = legs.merge(candles, on=["pair", "date"], how="left")
    betas: dict[tuple[str, pd.Timestamp], float] = {}
    for key, group in legs.groupby(list(_KEY), sort=True):
        seen = group["couple_beta"].astype("float64").dropna().to_numpy()
        agree = seen.size > 0 and np.allclose(seen, seen[0], rtol=1e-9, atol=0.0)
        betas[(str(key[0]), pd.Timestamp(key[1]))] = float(seen[0]) if agree else math.nan
    if not betas:
        return empty
    out = pd.Series(betas, dtype="float64", name="beta")
    out.index.names = list(_KEY)
    return out


def _beta_lookup(
    betas: pd.Series | Mapping[tuple[str, pd.Timestamp], float] | None, keys: pd.DataFrame
) -> np.ndarray:
    """Betas for the trip keys (NaN where unknown), whatever the timestamps' time zone."""
    if betas is None or len(betas) == 0:
        return np.full(len(keys), np.nan)
    series = betas if isinstance(betas, pd.Series) else pd.Series(dict(betas), dtype="float64")
    couples = [str(k[0]) for k in series.index]
    dates = pd.to_datetime([k[1] for k in series.index], utc=True).astype(_STAMP)
    lookup = pd.Series(
        series.to_numpy(dtype="float64"),
        index=pd.MultiIndex.from_arrays([couples, dates], names=_KEY),
    )
    lookup = lookup[~lookup.index.duplicated(keep="last")]
    wanted = pd.MultiIndex.from_arrays(
        [keys["couple"], pd.DatetimeIndex(keys["open_date"]).astype(_STAMP)], names=_KEY
    )
    return lookup.reindex(wanted).to_numpy(dtype="float64")


def couple_trips(
    trades: pd.DataFrame,
    betas: pd.Series | Mapping[tuple[str, pd.Timestamp], float] | None = None,
) -> pd.DataFrame:
    """One row per couple trip (the legs sharing a couple name and an open date).

    - ``close_date``: the latest leg's exit (legs may leave one candle apart);
    - ``profit_abs``: both legs' net profit (Freqtrade's, fees and funding included);
    - ``hedge_error``: ``|notional_x / notional_y / |beta| - 1|`` at the rounded entry
      amounts (notional = amount * open_rate), NaN without a beta or a complete couple;
    - ``funding``: sum of the legs' ``funding_fees`` (Freqtrade's sign: negative = paid);
    - ``fees``: trading fees paid, ``amount * rate * fee`` at entry and exit of each leg;
    - ``incomplete``: the trip does not have exactly one y and one x leg;
    - ``side``: ``long`` when the y leg is long (long the spread), else ``short``.

    ``betas`` maps (couple, open_date) to the hedge ratio (see :func:`signal_betas`).
    """
    if trades.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in TRIP_COLUMNS})
    legs = leg_frame(trades)
    is_y, is_x = legs["role"] == "y", legs["role"] == "x"
    legs["is_y"], legs["is_x"] = is_y.astype(int), is_x.astype(int)
    legs["notional_y"] = legs["notional"].where(is_y, 0.0)
    legs["notional_x"] = legs["notional"].where(is_x, 0.0)
    short = legs["is_short"].astype(bool) if "is_short" in legs else pd.Series(False, legs.index)
    legs["y_long"] = (is_y & ~short).astype(int)
    trips = (
        legs.groupby(list(_KEY), sort=True)
        .agg(
            close_date=("close_date", "max"),
            legs=("pair", "size"),
            n_y=("is_y", "sum"),
            n_x=("is_x", "sum"),
            y_long=("y_long", "sum"),
            profit_abs=("profit_abs", "sum"),
            notional_y=("notional_y", "sum"),
            notional_x=("notional_x", "sum"),
            funding=("funding_fees", "sum"),
            fees=("fees", "sum"),
            is_open=("is_open", "any"),
        )
        .reset_index()
    )
    trips["incomplete"] = ~((trips["n_y"] == 1) & (trips["n_x"] == 1))
    trips["side"] = np.where(trips["n_y"] == 0, "", np.where(trips["y_long"] > 0, "long", "short"))
    trips["holding_hours"] = (trips["close_date"] - trips["open_date"]) / HOUR
    trips["beta"] = _beta_lookup(betas, trips)
    ratio = trips["notional_x"] / trips["notional_y"].where(trips["notional_y"] > 0)
    error = (ratio / trips["beta"].abs().where(trips["beta"] != 0) - 1).abs()
    trips["hedge_error"] = error.where(~trips["incomplete"])
    trips = trips.sort_values(["open_date", "couple"], kind="stable").reset_index(drop=True)
    return trips[TRIP_COLUMNS]


def couple_table(trips: pd.DataFrame) -> pd.DataFrame:
    """Per couple: trips, win rate, P&L, holding, hedge error, funding and fees paid.

    Sorted by P&L (best first) with a TOTAL row at the end whose averages are over all
    trips (not an average of the couples' averages). ``win_rate`` is the share of trips
    with a positive combined ``profit_abs``; ``funding_paid`` is ``-funding`` (positive =
    paid); ``avg_hedge_error`` skips trips without a beta.
    """

    def summary(group: pd.DataFrame) -> dict[str, Any]:
        errors = pd.to_numeric(group["hedge_error"], errors="coerce")
        return {
            "trades": len(group),
            "win_rate": float((group["profit_abs"] > 0).mean()) if len(group) else math.nan,
            "pnl": float(group["profit_abs"].sum()),
            "avg_holding_hours": float(group["holding_hours"].mean()) if len(group) else math.nan,
            "avg_hedge_error": float(errors.mean()) if errors.notna().any() else math.nan,
            "funding_paid": float(-group["funding"].sum()),
            "fees_paid": float(group["fees"].sum()),
            "incomplete": int(group["incomplete"].astype(bool).sum()),
        }

    rows = [{"couple": name, **summary(group)} for name, group in trips.groupby("couple")]
    table = pd.DataFrame(rows, columns=COUPLE_COLUMNS)
    if not table.empty:
        table = table.sort_values(["pnl", "couple"], ascending=[False, True], kind="stable")
    total = pd.DataFrame([{"couple": TOTAL, **summary(trips)}], columns=COUPLE_COLUMNS)
    out = pd.concat([table, total], ignore_index=True) if not table.empty else total
    return out.astype({"trades": "int64", "incomplete": "int64"})


# ---------------------------------------------------------------------- portfolio
def _wallet_balance(wallet: pd.DataFrame | None) -> pd.Series | None:
    """Stake-currency value of the wallet at each captured candle, or None if unusable.

    Freqtrade captures one row per currency and candle; ``total_quote`` (balance * rate)
    is summed over currencies.
    """
    if wallet is None or wallet.empty or "date" not in wallet:
        return None
    if "total_quote" in wallet:
        value = wallet["total_quote"]
    elif {"balance", "rate"} <= set(wallet):
        value = wallet["balance"] * wallet["rate"]
    elif "balance" in wallet:
        value = wallet["balance"]
    else:
        return None
    frame = pd.DataFrame({"date": pd.to_datetime(wallet["date"], utc=True), "value": value})
    series = frame.groupby("date")["value"].sum().sort_index().astype("float64")
    return series if len(series) >= 2 else None


def equity_curve(
    trades: pd.DataFrame, starting_balance: float, wallet: pd.DataFrame | None = None
) -> tuple[pd.Series, str]:
    """Portfolio equity over time and where it comes from (``"wallet"`` or ``"trades"``).

    Preferred: Freqtrade's wallet capture (one balance per candle). Otherwise: starting
    balance plus the cumulative realised profit at each close date, starting flat at the
    first entry. In futures backtests Freqtrade's wallet also counts closed trades only
    (open positions are not marked to market), so both curves are realised equity and
    a drawdown inside an open couple trade does not show.
    """
    balance = _wallet_balance(wallet)
    if balance is not None:
        return balance, "wallet"
    if trades.empty:
        return pd.Series([float(starting_balance)], dtype="float64"), "trades"
    closes = pd.to_datetime(trades["close_date"], utc=True)
    opens = pd.to_datetime(trades["open_date"], utc=True)
    realised = trades.groupby(closes)["profit_abs"].sum().sort_index().cumsum()
    curve = float(starting_balance) + realised
    start = pd.Series([float(starting_balance)], index=pd.DatetimeIndex([opens.min()]))
    curve = pd.concat([start, curve[curve.index > opens.min()]])
    curve.index.name = "date"
    return curve.astype("float64"), "trades"


def _daily(curve: pd.Series) -> pd.Series:
    """Equity at the end of each UTC day (the last value of the day, carried forward)."""
    if not isinstance(curve.index, pd.DatetimeIndex) or curve.empty:
        return curve.iloc[0:0]
    return curve.resample("1D").last().ffill()


def daily_returns(daily_equity: pd.Series, starting_balance: float) -> pd.Series:
    """Day-over-day returns of the end-of-day equity; the first day against the start."""
    previous = daily_equity.shift(1)
    if len(previous):
        previous.iloc[0] = float(starting_balance)
    return (daily_equity / previous - 1.0).astype("float64")


def daily_return_series(
    trades: pd.DataFrame, starting_balance: float,
    period: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> pd.Series:
    """The daily returns behind :func:`portfolio_metrics`' Sharpe (realised equity)."""
    curve, _ = equity_curve(trades, starting_balance)
    return daily_returns(_over(_daily(curve), period, starting_balance), starting_balance)


def _over(
    daily: pd.Series, period: tuple[pd.Timestamp, pd.Timestamp] | None, starting_balance: float
) -> pd.Series:
    """End-of-day equity on every day of ``period`` ``[start, end)``: the starting balance
    before the first trade, the last value carried after the last one. Why: a Sharpe over
    the days between a variant's first entry and last exit rates two lucky trips in a
    week like a year of steady profit; over the whole period the idle days count."""
    if period is None:
        return daily
    start, end = (pd.Timestamp(t) for t in period)
    days = pd.date_range(start.floor("1D"), (end - pd.Timedelta(1)).floor("1D"), freq="1D")
    if not isinstance(daily.index, pd.DatetimeIndex):  # no trades: flat all along
        daily = pd.Series(dtype="float64", index=pd.DatetimeIndex([], tz=days.tz))
    inside = daily[(daily.index >= days[0]) & (daily.index <= days[-1])] if len(days) else daily
    return inside.reindex(days.union(inside.index)).ffill().fillna(float(starting_balance))


def _sharpe(returns: np.ndarray) -> float:
    """Mean over sample standard deviation, annualised with sqrt(365), no risk-free rate."""
    if returns.size < 2:
        return math.nan
    std = float(np.std(returns, ddof=1))
    return float(np.mean(returns) / std * math.sqrt(DAYS_PER_YEAR)) if std > 0 else math.nan


def _sortino(returns: np.ndarray) -> float:
    """Mean over downside deviation ``sqrt(mean(min(r, 0)^2))``, annualised with sqrt(365)."""
    if returns.size < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside <= 0:
        return math.nan
    return float(np.mean(returns) / downside * math.sqrt(DAYS_PER_YEAR))


def _drawdown(daily_equity: np.ndarray, starting_balance: float) -> tuple[float, float]:
    """Largest fall from a running peak (the start counts as a peak): ratio and amount."""
    if daily_equity.size == 0:
        return 0.0, 0.0
    peaks = np.maximum.accumulate(np.concatenate([[float(starting_balance)], daily_equity]))[1:]
    falls = peaks - daily_equity
    return float(np.max(falls / peaks)), float(np.max(falls))


def _btc_correlation(returns: pd.Series, btc_close: pd.Series | None) -> float:
    """Correlation of the daily returns with BTC's end-of-day to end-of-day returns."""
    if btc_close is None or btc_close.empty or returns.empty:
        return math.nan
    btc = btc_close.astype("float64").copy()
    btc.index = pd.to_datetime(btc.index, utc=True)
    btc_daily = btc.sort_index().resample("1D").last()
    btc_returns = (btc_daily / btc_daily.shift(1) - 1.0).reindex(returns.index)
    both = pd.concat([returns, btc_returns], axis=1).dropna().to_numpy()
    if len(both) < 2 or np.std(both[:, 0]) == 0 or np.std(both[:, 1]) == 0:
        return math.nan
    return float(np.corrcoef(both[:, 0], both[:, 1])[0, 1])


def portfolio_metrics(
    trades: pd.DataFrame,
    starting_balance: float,
    btc_close: pd.Series | None = None,
    wallet: pd.DataFrame | None = None,
    period: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> dict[str, Any]:
    """Portfolio figures of the backtest (``period``: ``[start, end)`` whose every day
    counts, flat days included; default: from the first entry to the last exit).

    - ``total_return``: realised profit of all legs over the starting balance;
    - ``sharpe`` / ``sortino``: of the daily returns of the end-of-day equity
      (:func:`equity_curve`: the wallet when given, else realised trades; the source is
      in ``equity_source``), annualised with sqrt(365), no risk-free rate;
    - ``max_drawdown``: largest fall of the end-of-day equity from its running peak, as
      a ratio of that peak (``max_drawdown_abs`` in stake currency);
    - ``couple_trips`` / ``legs``: trips (see :func:`couple_trips`) and Freqtrade trades;
    - ``fees_paid``, ``funding_paid``: costs, positive = paid;
    - ``btc_correlation``: of the daily returns with BTC's daily returns (``btc_close``,
      any candle size; NaN without it).

    Undefined figures (a flat equity, fewer than two days) are NaN.
    """
    legs = leg_frame(trades) if not trades.empty else None
    trips = couple_trips(trades)
    curve, source = equity_curve(trades, starting_balance, wallet)
    daily = _over(_daily(curve), period, starting_balance)
    returns = daily_returns(daily, starting_balance)
    ratio, amount = _drawdown(daily.to_numpy(dtype="float64"), starting_balance)
    profit = float(trades["profit_abs"].sum()) if not trades.empty else 0.0
    return {
        "equity_source": source,
        "start": daily.index[0].isoformat() if len(daily) else None,
        "end": daily.index[-1].isoformat() if len(daily) else None,
        "days": len(daily),
        "starting_balance": float(starting_balance),
        "final_balance": float(starting_balance) + profit,
        "profit_abs": profit,
        "total_return": profit / float(starting_balance),
        "sharpe": _sharpe(returns.to_numpy(dtype="float64")),
        "sortino": _sortino(returns.to_numpy(dtype="float64")),
        "max_drawdown": ratio,
        "max_drawdown_abs": amount,
        "couple_trips": len(trips),
        "incomplete_trips": int(trips["incomplete"].astype(bool).sum()) if len(trips) else 0,
        "legs": len(trades),
        "fees_paid": float(legs["fees"].sum()) if legs is not None else 0.0,
        "funding_paid": float(-legs["funding_fees"].sum()) if legs is not None else 0.0,
        "btc_correlation": _btc_correlation(returns, btc_close),
    }


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
    (the approach of :mod:`statarb.plots`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "equity.html"
    fig.write_html(path, include_plotlyjs="directory", full_html=True)
    return path


# ---------------------------------------------------------------------- CLI
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m statarb.report",
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
        "generator": "statarb.report",
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

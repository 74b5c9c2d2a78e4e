"""Couple trips and portfolio figures of a set of legs: the pure part of the report.

Why in the core: the backtest report (:mod:`statarb.tools.report`) and research
(:mod:`statarb.research.evaluate`) rate trades the same way, so both read these functions;
they are pandas on a table of Freqtrade-shaped legs and never touch Freqtrade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from statarb.core.legs import parse_leg_tag

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

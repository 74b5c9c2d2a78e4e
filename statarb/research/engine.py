"""The strategy's couple trips as Freqtrade's backtest executes them, without Freqtrade.

Why: a sweep of hundreds of variants cannot start a ``freqtrade backtesting`` process per
variant, and a fast evaluation is worth nothing unless it executes what Freqtrade would.
This replays the core's plan (:func:`statarb.core.signals.build_plan`) with Freqtrade's
backtest accounting, rule by rule:

- **Order of a candle.** Freqtrade handles the pairs with open trades first (their exits)
  and then the whitelist in order (entries), so every exit of a candle is booked before
  its entries, and a couple's first leg is the one earlier in the whitelist.
- **Stake.** ``stake_amount: "unlimited"``: Freqtrade proposes
  ``min((available + tied) / max_open_trades, available)`` with ``available =
  (start + closed profit) * tradable_balance_ratio - tied``; a numeric stake proposes
  ``min(stake, available)``. The strategy's ticket is sized by
  :func:`statarb.core.capital.couple_notional` (by default two slots' worth) times the regime
  multiplier times leverage, split by :func:`statarb.core.sizing.size_legs` on the exchange
  grid at the next candle's open; a ticket that rounds badly is skipped, a first leg is
  refused without two free slots or when both legs' margin exceeds what is available.
- **Fills** at the open of the candle after the decision; still open at the end of the
  data: a ``force_exit`` at the last candle's open.
- **Costs.** Fee ``amount * price * fee`` on every fill (Freqtrade charges one fee, the
  worst of maker and taker); funding ``amount * mark * rate`` at every funding time from
  the entry to the exit candle inclusive, paid by longs on a positive rate, as
  Freqtrade's ``calculate_funding_fees`` sums it.

The result is a table of legs in the layout of Freqtrade's exported trades, so every
figure comes from :mod:`statarb.tools.report` exactly as for a Freqtrade backtest; a test
compares the trips and their P&L with a real ``freqtrade backtesting`` run.
Not modelled: protections (the default ones never lock a leg the plan trades; the
parity test would show it) and liquidation (the default leverage is 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from statarb.core.capital import CapitalParams, couple_notional, entry_vol
from statarb.core.legs import leg_tag
from statarb.core.regime import Regime
from statarb.core.signals import Trip
from statarb.core.sizing import LegLimits, size_legs
from statarb.core.walkforward import Universe
from statarb.research.fills import Fill, FillModel

__all__ = ["LEG_COLUMNS", "Account", "FundingBook", "simulate"]

LEG_COLUMNS = [
    "pair", "enter_tag", "is_short", "open_date", "close_date", "open_rate", "close_rate",
    "amount", "stake_amount", "leverage", "fee_open", "fee_close", "funding_fees",
    "profit_abs", "exit_reason", "is_open", "couple", "role",
]


@dataclass(frozen=True)
class Account:
    """The Freqtrade settings that decide a leg's stake."""

    starting_balance: float = 10_000.0
    stake_amount: float | str = "unlimited"
    tradable_balance_ratio: float = 0.99
    max_open_trades: int = 10
    leverage: float = 1.0

    def __post_init__(self) -> None:
        if not self.starting_balance > 0:
            raise ValueError(f"starting_balance={self.starting_balance} must be positive")
        if self.stake_amount != "unlimited" and not (
                isinstance(self.stake_amount, int | float) and self.stake_amount > 0):
            raise ValueError(
                f"stake_amount={self.stake_amount!r} must be 'unlimited' or a positive number"
            )
        if not 0 < self.tradable_balance_ratio <= 1:
            raise ValueError(
                f"tradable_balance_ratio={self.tradable_balance_ratio} must be in (0, 1]"
            )
        if self.max_open_trades < 2:
            raise ValueError(
                f"max_open_trades={self.max_open_trades} must be at least 2 (one couple)"
            )
        if not self.leverage >= 1:
            raise ValueError(f"leverage={self.leverage} must be >= 1")

    @classmethod
    def from_config(cls, config: Mapping, leverage: float = 1.0) -> Account:
        """From a Freqtrade config (``dry_run_wallet``, ``stake_amount`` ...)."""
        wallet = config.get("dry_run_wallet", 1000)
        if isinstance(wallet, Mapping):
            wallet = wallet.get(config.get("stake_currency", "USDT"), 0.0)
        return cls(
            starting_balance=float(wallet),
            stake_amount=config.get("stake_amount", "unlimited"),
            tradable_balance_ratio=float(config.get("tradable_balance_ratio", 0.99)),
            max_open_trades=int(config.get("max_open_trades", 10)),
            leverage=float(leverage),
        )

    def proposed_stake(self, closed_profit: float, tied: float) -> float:
        """Freqtrade's proposed stake for one trade (margin, stake currency)."""
        available = self.available(closed_profit, tied)
        if self.stake_amount == "unlimited":
            return min((available + tied) / self.max_open_trades, available)
        return min(float(self.stake_amount), available)

    def available(self, closed_profit: float, tied: float) -> float:
        """Stake Freqtrade still allows: (start + closed profit) * ratio - tied."""
        return max(
            (self.starting_balance + closed_profit) * self.tradable_balance_ratio - tied, 0.0
        )


class FundingBook:
    """Funding per unit of position at each funding time, per coin.

    Built from the frames of :func:`statarb.ft.data.load_funding` (Freqtrade's own
    combination of funding rates and mark prices): ``date`` and ``fee_per_unit``
    (``rate * mark open``).
    """

    def __init__(self, frames: Mapping[str, pd.DataFrame]) -> None:
        self._dates: dict[str, np.ndarray] = {}
        self._fees: dict[str, np.ndarray] = {}
        for coin, frame in frames.items():
            dates = pd.DatetimeIndex(pd.to_datetime(frame["date"], utc=True))
            self._dates[coin] = dates.as_unit("ns").asi8
            self._fees[coin] = frame["fee_per_unit"].to_numpy(dtype="float64")

    def __contains__(self, coin: str) -> bool:
        return coin in self._dates

    def funding(self, coin: str, amount: float, is_short: bool, opened: pd.Timestamp,
                closed: pd.Timestamp) -> float:
        """Funding received (negative: paid) between two fills, both ends included."""
        dates = self._dates.get(coin)
        if dates is None:
            return 0.0
        lo = int(dates.searchsorted(pd.Timestamp(opened).value, "left"))
        hi = int(dates.searchsorted(pd.Timestamp(closed).value, "right"))
        total = sum((self._fees[coin][lo:hi] * amount).tolist())
        if math.isnan(total):
            total = 0.0
        return total if is_short else -total


@dataclass
class _Leg:
    pair: str
    coin: str
    role: str
    couple: str
    is_short: bool
    amount: float
    open_rate: float
    opened: pd.Timestamp
    stake: float
    fee_open: float


def simulate(
    universe: Universe,
    trips: Sequence[Trip],
    *,
    regime: np.ndarray,
    multipliers: Mapping[Regime, float],
    limits: Mapping[str, LegLimits],
    pair_order: Sequence[str],
    account: Account,
    fee: float,
    funding: FundingBook | None = None,
    max_ratio_error: float = 0.05,
    capital: CapitalParams | None = None,
    fills: FillModel | None = None,
    highs: np.ndarray | None = None,
    lows: np.ndarray | None = None,
    half_spread: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Legs of the planned ``trips`` as Freqtrade's backtest executes them (see module).

    ``pair_order``: the whitelist as Freqtrade iterates it (``COIN/USDT:USDT``);
    ``limits``: per coin; ``regime``: per candle (NaN: unknown, sized as NORMAL).
    ``capital``: the couple sizing rule (:func:`statarb.core.capital.couple_notional`).
    ``fills``: how leg orders fill (:mod:`statarb.research.fills`; default: Freqtrade's
    market fills at the next open with ``fee``); the maker model needs ``highs`` and
    ``lows`` in the layout of ``universe.opens``. ``half_spread``: per coin, the spread
    cost of a fill (a fraction of the notional) added to its fee rate, as the strategy adds
    it to a backtest trade's fees (:mod:`statarb.core.spread`).
    Returns one row per leg in the columns :data:`LEG_COLUMNS`.
    """
    if not 0 <= fee < 0.1:
        raise ValueError(f"fee={fee} must be a fraction of the notional in [0, 0.1)")
    capital = capital or CapitalParams()
    fills = fills or FillModel("taker", taker_fee=fee, maker_fee=fee)
    if fills.model != "taker" and (highs is None or lows is None):
        raise ValueError(f"fills={fills.model!r} needs the candles' highs and lows")
    n = len(universe.index)
    index = universe.index
    opens = universe.opens
    closes = universe.closes

    extra = [float((half_spread or {}).get(coin, 0.0)) for coin in universe.coins]

    def fill(row: int, col: int, buy: bool) -> Fill:
        """The fill at candle ``row`` of an order decided on the candle before."""
        done = fills.fill(
            buy=buy, open_=float(opens[row, col]), decision_close=float(closes[row - 1, col]),
            high=float(highs[row, col]) if highs is not None else math.nan,
            low=float(lows[row, col]) if lows is not None else math.nan,
            close=float(closes[row, col]),
        )
        return Fill(done.price, done.fee + extra[col], done.maker)
    candle = index[1] - index[0] if n > 1 else pd.Timedelta(hours=1)
    pairs = {p.split("/")[0]: p for p in pair_order}
    rank = {p: i for i, p in enumerate(pair_order)}
    entries: dict[int, list[Trip]] = {}
    for trip in trips:
        if trip.entry_row + 1 < n:
            entries.setdefault(trip.entry_row + 1, []).append(trip)
    exits: dict[int, list[int]] = {}  # fill row -> ids of open couples
    open_legs: dict[int, list[_Leg]] = {}
    reasons: dict[int, str] = {}
    rows_out: list[dict] = []
    closed_profit = 0.0
    tied = 0.0
    last = n - 1
    next_id = 0

    def close(legs: list[_Leg], row: int, reason: str) -> None:
        nonlocal closed_profit, tied
        when = index[row]
        for leg in legs:
            col = universe.col(leg.coin)
            if reason == "force_exit":  # the end of the data: at market, as Freqtrade
                done = Fill(float(opens[row, col]), fills.taker_fee + extra[col], False)
            else:
                done = fill(row, col, buy=leg.is_short)
            rate, fee_close = done.price, done.fee
            sign = -1.0 if leg.is_short else 1.0
            funded = funding.funding(leg.coin, leg.amount, leg.is_short, leg.opened, when) \
                if funding is not None else 0.0
            profit = (sign * leg.amount * (rate - leg.open_rate)
                      - leg.amount * leg.open_rate * leg.fee_open
                      - leg.amount * rate * fee_close + funded)
            closed_profit += profit
            tied -= leg.stake
            rows_out.append({
                "pair": leg.pair, "enter_tag": leg_tag(leg.couple, leg.role),
                "is_short": leg.is_short, "open_date": leg.opened, "close_date": when,
                "open_rate": leg.open_rate, "close_rate": rate, "amount": leg.amount,
                "stake_amount": leg.stake, "leverage": account.leverage,
                "fee_open": leg.fee_open, "fee_close": fee_close, "funding_fees": funded,
                "profit_abs": profit,
                "exit_reason": reason, "is_open": False, "couple": leg.couple,
                "role": leg.role,
            })

    event_rows = sorted(set(entries) | {t.exit_row + 1 for t in trips if t.exit_row >= 0})
    for row in event_rows:
        # 1. Exits: pairs with open trades come first in Freqtrade's candle.
        for cid in exits.pop(row, []):
            close(open_legs.pop(cid), row, reasons.pop(cid))
        # 2. Entries, in whitelist order of each couple's first leg.
        todo = [t for t in entries.get(row, []) if t.y in pairs and t.x in pairs]
        todo.sort(key=lambda t: min(rank[pairs[t.y]], rank[pairs[t.x]]))
        for position, trip in enumerate(todo):
            n_open = 2 * len(open_legs)
            if account.max_open_trades - n_open < 2:
                continue
            iy, ix = universe.col(trip.y), universe.col(trip.x)
            py = fills.order_price(float(opens[row, iy]), float(closes[row - 1, iy]))
            px = fills.order_price(float(opens[row, ix]), float(closes[row - 1, ix]))
            if not (math.isfinite(py) and math.isfinite(px) and py > 0 and px > 0):
                continue
            code = regime[trip.entry_row] if trip.entry_row < len(regime) else math.nan
            mult = multipliers[Regime(int(code)) if math.isfinite(code) else Regime.NORMAL]
            available = account.available(closed_profit, tied)
            vol = entry_vol(capital, universe.closes[:, iy], universe.closes[:, ix],
                            trip.beta, trip.entry_row, candle)
            notional = couple_notional(
                capital, multiplier=mult, leverage=account.leverage,
                proposed_stake=account.proposed_stake(closed_profit, tied),
                available=available, total=available + tied, entering=len(todo) - position,
                free_slots=(account.max_open_trades - n_open) // 2, beta=trip.beta,
                daily_vol=vol,
            )
            if not notional > 0:
                continue
            sizes = size_legs(notional, trip.beta, py, px, limits[trip.y], limits[trip.x],
                              max_ratio_error=max_ratio_error)
            if not sizes.ok:
                continue
            margin = (sizes.notional_y + sizes.notional_x) / account.leverage
            if margin > account.available(closed_profit, tied) * (1 + 1e-12):
                continue
            cid, next_id = next_id, next_id + 1
            opened = index[row]
            fy, fx = fill(row, iy, buy=trip.y_long), fill(row, ix, buy=trip.x_long)
            open_legs[cid] = [
                _Leg(pairs[trip.y], trip.y, "y", trip.couple, not trip.y_long, sizes.amount_y,
                     fy.price, opened, sizes.amount_y * fy.price / account.leverage, fy.fee),
                _Leg(pairs[trip.x], trip.x, "x", trip.couple, not trip.x_long, sizes.amount_x,
                     fx.price, opened, sizes.amount_x * fx.price / account.leverage, fx.fee),
            ]
            # (Market fills are at the sizing prices: the legs' margin is the ticket's.)
            tied += margin if fills.model == "taker" else sum(
                leg.stake for leg in open_legs[cid])
            if trip.exit_row >= 0 and trip.exit_row + 1 <= last:
                exits.setdefault(trip.exit_row + 1, []).append(cid)
                reasons[cid] = trip.reason
            else:
                reasons[cid] = "force_exit"
    # Left open at the end: Freqtrade exits at the last candle's open.
    for cid in list(open_legs):
        close(open_legs.pop(cid), last, "force_exit")
    frame = pd.DataFrame(rows_out, columns=LEG_COLUMNS)
    return frame.sort_values(["open_date", "couple", "role"], kind="stable").reset_index(
        drop=True)

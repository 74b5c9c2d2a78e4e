"""Binance USDT-M public REST endpoints, as pure functions of (data, clock, query).

Each handler takes the parsed query and the replay instant and returns a JSON-able value or
raises :class:`BinanceError`; the HTTP layer only routes and serialises. Error codes and
messages follow Binance's so ccxt maps them to the same exception classes it would raise
against the real exchange (``-1121`` -> ``BadSymbol``, ``-1102``/``-1100`` -> ``BadRequest``).
Only OHLCV, funding and exchangeInfo are recorded data; trade counts, taker volumes, the
order book and the index price are synthesised from them and say nothing more.

Handlers work in data time throughout. When the clock is shifted to now,
:mod:`statarb.sim.shift` moves the query's times back and the answer's times forward around
them; the shift reaches a handler only where data time alone cannot decide (where
multi-hour kline buckets start).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np

from statarb.sim.clock import HOUR_MS
from statarb.sim.klines import (
    INTERVAL_MS,
    fmt,
    price_now,
    resample,
    to_tick,
    visible,
    window,
)
from statarb.sim.market_data import CandleKind, Candles, MarketData, SymbolInfo

Query = dict[str, str]
DAY_MS = 24 * HOUR_MS
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
DEFAULT_FUNDING_INTERVAL_MS = 8 * HOUR_MS


class BinanceError(Exception):
    """An error Binance would answer with: HTTP status plus ``{"code", "msg"}`` body."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


def invalid_symbol() -> BinanceError:
    return BinanceError(400, -1121, "Invalid symbol.")


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


# --- query parsing ----------------------------------------------------------------------


def _opt_int(q: Query, name: str) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 20:
        raise BinanceError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(raw)


def _limit(q: Query, default: int, maximum: int) -> int:
    limit = _opt_int(q, "limit")
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.")
    return limit


def _time_range(q: Query) -> tuple[int | None, int | None]:
    start, end = _opt_int(q, "startTime"), _opt_int(q, "endTime")
    if start is not None and end is not None and start > end:
        raise BinanceError(400, -1023, "Start time is greater than end time.")
    return start, end


def _symbol(md: MarketData, q: Query, name: str = "symbol") -> SymbolInfo:
    raw = q.get(name, "")
    if not raw:
        raise mandatory(name)
    info = md.symbols.get(raw)
    if info is None:
        raise invalid_symbol()
    return info


def _opt_symbol(md: MarketData, q: Query) -> SymbolInfo | None:
    return _symbol(md, q) if q.get("symbol") else None


# --- candles ----------------------------------------------------------------------------


def _kline_rows(
    c: Candles | None, now: int, q: Query, interval_ms: int, mark_like: bool, shift_ms: int
) -> list[list[Any]]:
    limit = _limit(q, 500, 1500)
    start, end = _time_range(q)
    if c is None:
        return []
    if interval_ms % c.width_ms:
        # Finer than the recorded candles: there is nothing true to serve.
        raise BinanceError(400, -1120, "Invalid interval.")
    cut = resample(visible(c, now), interval_ms, shift_ms)
    rows = cut.take(window(cut.open_ms, start, end, limit))
    out: list[list[Any]] = []
    for t, o, h, lo, cl, v in zip(
        rows.open_ms.tolist(),
        rows.open.tolist(),
        rows.high.tolist(),
        rows.low.tolist(),
        rows.close.tolist(),
        rows.volume.tolist(),
        strict=True,
    ):
        row = [t, fmt(o), fmt(h), fmt(lo), fmt(cl), fmt(v), t + interval_ms - 1]
        if mark_like:
            # Mark/index klines carry no traded volume: quote volume, trades and taker
            # volumes are zero, as Binance sends them.
            row += ["0", 0, "0", "0", "0"]
        else:
            quote = v * (o + h + lo + cl) / 4.0
            row += [fmt(quote), 0, fmt(v / 2.0), fmt(quote / 2.0), "0"]
        out.append(row)
    return out


def _interval_ms(q: Query) -> int:
    interval = q.get("interval", "")
    if not interval:
        raise mandatory("interval")
    if interval not in INTERVAL_MS:
        raise BinanceError(400, -1120, "Invalid interval.")
    return INTERVAL_MS[interval]


def _klines_of(kind: CandleKind, mark_like: bool, symbol_param: str = "symbol") -> Handler:
    def handler(md: MarketData, now: int, q: Query, shift_ms: int) -> Any:
        info = _symbol(md, q, symbol_param)
        interval_ms = _interval_ms(q)
        candles = md.candles(info.symbol, kind)
        return _kline_rows(candles, now, q, interval_ms, mark_like, shift_ms)

    handler.__doc__ = f"/klines family served from the {kind} candle files."
    return handler


# --- funding ----------------------------------------------------------------------------


def _mark_open_at(md: MarketData, symbol: str, t: int) -> str:
    """Mark price at a funding instant: the mark candle opening then (what freqtrade uses)."""
    for kind in ("mark", "futures"):
        c = md.candles(symbol, kind)  # type: ignore[arg-type]
        if c is not None:
            i = int(np.searchsorted(c.open_ms, t, side="left"))
            if i < len(c) and int(c.open_ms[i]) == t:
                return fmt(float(c.open[i]))
    return ""


def funding_rate(md: MarketData, now: int, q: Query, shift_ms: int) -> Any:
    """GET /fapi/v1/fundingRate: recorded events, never after the clock."""
    info = _opt_symbol(md, q)
    limit = _limit(q, 100, 1000)
    start, end = _time_range(q)
    symbols = [info.symbol] if info else md.symbols_with_data
    events: list[tuple[int, str, float]] = []
    for sym in symbols:
        f = md.funding(sym)
        if f is None:
            continue
        cut = int(np.searchsorted(f.time_ms, now, side="right"))
        events.extend(
            zip(f.time_ms[:cut].tolist(), [sym] * cut, f.rate[:cut].tolist(), strict=True)
        )
    events.sort(key=lambda e: (e[0], e[1]))
    times = np.array([e[0] for e in events], dtype=np.int64)
    chosen = events[window(times, start, end, limit)]
    return [
        {"symbol": s, "fundingTime": t, "fundingRate": fmt(r), "markPrice": _mark_open_at(md, s, t)}
        for t, s, r in chosen
    ]


def _funding_state(md: MarketData, symbol: str, now: int) -> tuple[float, int]:
    """(last settled rate, next funding time) at ``now``.

    The next time extrapolates the last observed interval instead of looking up the next
    record, so a hole in the records (ENA, RENDER, TON) does not reveal anything.
    """
    f = md.funding(symbol)
    i = 0 if f is None else int(np.searchsorted(f.time_ms, now, side="right"))
    if f is None or i == 0:
        step = DEFAULT_FUNDING_INTERVAL_MS
        return 0.0, (now // step + 1) * step
    last = int(f.time_ms[i - 1])
    step = int(f.time_ms[i - 1] - f.time_ms[i - 2]) if i >= 2 else DEFAULT_FUNDING_INTERVAL_MS
    step = min(max(step, HOUR_MS), DEFAULT_FUNDING_INTERVAL_MS)
    return float(f.rate[i - 1]), last + ((now - last) // step + 1) * step


# --- prices at the clock ---------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Everything the ticker endpoints report for one symbol at the clock."""

    info: SymbolInfo
    last: float
    mark: float
    day: Candles


def _snapshot(md: MarketData, symbol: str, now: int) -> Snapshot | None:
    c = md.candles(symbol, "futures")
    last = price_now(c, now)
    if c is None or last is None:
        return None
    seen = visible(c, now)
    day = seen.take(slice(max(0, len(seen) - DAY_MS // c.width_ms), len(seen)))
    mark_c = md.candles(symbol, "mark")
    mark = last
    if mark_c is not None:
        j = int(np.searchsorted(mark_c.open_ms, now, side="right")) - 1
        # Only trust the mark file when it has a candle covering now (8h-spaced files
        # named 1h do not).
        if j >= 0 and now < int(mark_c.open_ms[j]) + mark_c.width_ms:
            mark = price_now(mark_c, now) or last
    return Snapshot(md.symbols[symbol], last, mark, day)


def _snapshots(md: MarketData, now: int, q: Query) -> tuple[list[Snapshot], bool]:
    """Snapshots for ``symbol`` (single=True) or for every symbol with data at the clock."""
    info = _opt_symbol(md, q)
    if info is not None:
        snap = _snapshot(md, info.symbol, now)
        if snap is None:  # listed on the exchange, but we hold no price for it then
            raise invalid_symbol()
        return [snap], True
    snaps = [s for sym in md.symbols_with_data if (s := _snapshot(md, sym, now)) is not None]
    return snaps, False


def _one_or_list(items: list[dict[str, Any]], single: bool) -> Any:
    return items[0] if single else items


def _qty(value: float, step: Decimal) -> Decimal:
    if step <= 0:
        return Decimal(repr(value))
    steps = (Decimal(repr(max(value, 0.0))) / step).to_integral_value(rounding=ROUND_DOWN)
    return max(steps, Decimal(1)) * step


def _level_qty(snap: Snapshot, level: int) -> Decimal:
    """Synthetic size at book level ``level``: a slice of the average hourly volume."""
    per_candle = float(snap.day.volume.mean()) if len(snap.day) else 0.0
    hourly = per_candle * HOUR_MS / snap.day.width_ms
    return _qty(hourly / 200.0 * (1.0 + level / 10.0), snap.info.step)


def _bid_ask(snap: Snapshot) -> tuple[Decimal, Decimal]:
    """One-tick book around the last price: bid on the grid at or below, ask one tick up."""
    tick = snap.info.tick
    bid = to_tick(snap.last, tick)
    if bid > Decimal(repr(snap.last)) and bid - tick > 0:
        bid -= tick
    return bid, bid + tick


def ticker_24hr(md: MarketData, now: int, q: Query, shift_ms: int) -> Any:
    """GET /fapi/v1/ticker/24hr over the day of candles up to the clock."""
    snaps, single = _snapshots(md, now, q)
    out = []
    for s in snaps:
        d = s.day
        open_ = float(d.open[0])
        vol = float(d.volume.sum())
        quote = float((d.volume * (d.open + d.high + d.low + d.close) / 4.0).sum())
        change = Decimal(fmt(s.last)) - Decimal(fmt(open_))
        out.append(
            {
                "symbol": s.info.symbol,
                "priceChange": str(change),
                "priceChangePercent": f"{(s.last / open_ - 1.0) * 100.0:.3f}" if open_ else "0.000",
                "weightedAvgPrice": fmt(quote / vol) if vol > 0 else fmt(s.last),
                "lastPrice": fmt(s.last),
                "lastQty": str(s.info.step),
                "openPrice": fmt(open_),
                "highPrice": fmt(max(float(d.high.max()), s.last)),
                "lowPrice": fmt(min(float(d.low.min()), s.last)),
                "volume": fmt(vol),
                "quoteVolume": fmt(quote),
                "openTime": now - DAY_MS,
                "closeTime": now,
                "firstId": 0,
                "lastId": 0,
                "count": 0,
            }
        )
    return _one_or_list(out, single)


def ticker_price(md: MarketData, now: int, q: Query, shift_ms: int) -> Any:
    """GET /fapi/v1/ticker/price and /fapi/v2/ticker/price."""
    snaps, single = _snapshots(md, now, q)
    out = [{"symbol": s.info.symbol, "price": fmt(s.last), "time": now} for s in snaps]
    return _one_or_list(out, single)


def book_ticker(md: MarketData, now: int, q: Query, shift_ms: int) -> Any:
    """GET /fapi/v1/ticker/bookTicker: best level of the synthetic book."""
    snaps, single = _snapshots(md, now, q)
    out = []
    for s in snaps:
        bid, ask = _bid_ask(s)
        qty = str(_level_qty(s, 0))
        out.append(
            {
                "symbol": s.info.symbol,
                "bidPrice": str(bid),
                "bidQty": qty,
                "askPrice": str(ask),
                "askQty": qty,
                "time": now,
                "lastUpdateId": now,
            }
        )
    return _one_or_list(out, single)


def depth(md: MarketData, now: int, q: Query, shift_ms: int) -> Any:
    """GET /fapi/v1/depth: a synthetic book, one tick wide, sizes growing with depth."""
    info = _symbol(md, q)
    limit = _opt_int(q, "limit") or 500
    if limit not in DEPTH_LIMITS:
        raise BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.")
    snap = _snapshot(md, info.symbol, now)
    if snap is None:
        raise invalid_symbol()
    bid, ask = _bid_ask(snap)
    tick = info.tick
    bids = []
    for i in range(limit):
        price = bid - tick * i
        if price <= 0:
            break
        bids.append([str(price), str(_level_qty(snap, i))])
    asks = [[str(ask + tick * i), str(_level_qty(snap, i))] for i in range(limit)]
    return {"lastUpdateId": now, "E": now, "T": now, "bids": bids, "asks": asks}


def premium_index(md: MarketData, now: int, q: Query, shift_ms: int) -> Any:
    """GET /fapi/v1/premiumIndex: mark price and funding state at the clock."""
    snaps, single = _snapshots(md, now, q)
    out = []
    for s in snaps:
        rate, nxt = _funding_state(md, s.info.symbol, now)
        mark = fmt(s.mark)
        out.append(
            {
                "symbol": s.info.symbol,
                "markPrice": mark,
                "indexPrice": mark,
                "estimatedSettlePrice": mark,
                "lastFundingRate": fmt(rate),
                "interestRate": "0.00010000",
                "nextFundingTime": nxt,
                "time": now,
            }
        )
    return _one_or_list(out, single)


# --- plumbing ---------------------------------------------------------------------------

Handler = Callable[[MarketData, int, Query, int], Any]
"""``(data, replay instant, query, shift_ms) -> JSON``; ``shift_ms`` is the clock's offset."""

EXCHANGE_INFO = "/fapi/v1/exchangeInfo"
"""Served as raw bytes by the HTTP layer, listed here so the route table is complete."""

ROUTES: dict[str, Handler] = {
    "/fapi/v1/ping": lambda md, now, q, shift_ms: {},
    "/fapi/v1/time": lambda md, now, q, shift_ms: {"serverTime": now},
    "/fapi/v1/klines": _klines_of("futures", mark_like=False),
    "/fapi/v1/continuousKlines": _klines_of("futures", mark_like=False, symbol_param="pair"),
    "/fapi/v1/markPriceKlines": _klines_of("mark", mark_like=True),
    "/fapi/v1/indexPriceKlines": _klines_of("mark", mark_like=True, symbol_param="pair"),
    "/fapi/v1/fundingRate": funding_rate,
    "/fapi/v1/premiumIndex": premium_index,
    "/fapi/v1/ticker/24hr": ticker_24hr,
    "/fapi/v1/ticker/price": ticker_price,
    "/fapi/v2/ticker/price": ticker_price,
    "/fapi/v1/ticker/bookTicker": book_ticker,
    "/fapi/v1/depth": depth,
}

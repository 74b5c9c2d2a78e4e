"""Candle arithmetic: cut at the replay clock, the forming candle, resampling, windows.

Kept free of HTTP so the rules that guard against look-ahead can be read (and tested) on
their own: nothing opening after the clock is ever returned, and the candle containing the
clock only shows the price reached so far.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from statarb.sim.clock import HOUR_MS
from statarb.sim.market_data import Candles

MINUTE_MS = 60_000
INTERVAL_MS: dict[str, int] = {
    "1m": MINUTE_MS, "3m": 3 * MINUTE_MS, "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS, "1h": HOUR_MS, "2h": 2 * HOUR_MS, "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS, "8h": 8 * HOUR_MS, "12h": 12 * HOUR_MS, "1d": 24 * HOUR_MS,
}
"""Binance's kline intervals up to a day. Binance aligns all of them to the UTC epoch; the
simulator serves those that are whole multiples of its data's candle width."""


def fmt(value: float) -> str:
    """Shortest decimal string that parses back to the same float64, without exponent.

    Same round-trip guarantee as ``repr``, but ``1.234e-05`` comes out as ``0.00001234``
    the way Binance writes numbers, so no client has to cope with scientific notation.
    """
    return np.format_float_positional(float(value), unique=True, trim="0")


def forming_fraction(open_ms: int, now_ms: int, width_ms: int = HOUR_MS) -> float | None:
    """Elapsed fraction of the ``width_ms`` candle opening at ``open_ms``, None if it is
    complete."""
    if open_ms <= now_ms < open_ms + width_ms:
        return (now_ms - open_ms) / width_ms
    return None


def interpolate(open_: float, close: float, frac: float) -> float:
    """Price at ``frac`` of the candle: a straight line from open to close.

    Exact at both ends (``frac == 0`` gives ``open`` bit for bit), so a candle served at
    its opening instant carries no information about where it will close.
    """
    if frac <= 0.0:
        return float(open_)
    return float(open_ + (close - open_) * frac)


def visible(c: Candles, now_ms: int) -> Candles:
    """Rows opening at or before ``now_ms``, the last one cut to the price reached so far."""
    end = int(np.searchsorted(c.open_ms, now_ms, side="right"))
    if end == 0:
        return c.take(slice(0, 0))
    frac = forming_fraction(int(c.open_ms[end - 1]), now_ms, c.width_ms)
    if frac is None:
        return c.take(slice(0, end))
    i = end - 1
    o = float(c.open[i])
    price = interpolate(o, float(c.close[i]), frac)
    cols = [np.array(col[:end], copy=True) for col in (c.open, c.high, c.low, c.close, c.volume)]
    cols[1][i] = max(o, price)
    cols[2][i] = min(o, price)
    cols[3][i] = price
    cols[4][i] = float(c.volume[i]) * frac
    return Candles(c.open_ms[:end], *cols, width_ms=c.width_ms)


def resample(c: Candles, width_ms: int, shift_ms: int = 0) -> Candles:
    """Aggregate rows into ``width_ms`` buckets aligned to the UTC epoch, as Binance builds
    its intervals: open of the first row, highest high, lowest low, close of the last row,
    volumes summed, stamped with the bucket's open time.

    ``width_ms`` must be a whole multiple of the rows' width (the caller checks). Works on
    whatever rows exist, so 8h-spaced mark files resample correctly too. With
    ``shift_ms`` (times served that much later than the data) the buckets are aligned in
    the shifted time the client sees, as Binance aligns them, while open times stay in data
    time; only the offset modulo the bucket width matters.
    """
    if width_ms == c.width_ms or len(c) == 0:
        return Candles(c.open_ms, c.open, c.high, c.low, c.close, c.volume, width_ms)
    buckets = ((c.open_ms + shift_ms) // width_ms) * width_ms - shift_ms
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(c)] - 1
    return Candles(
        buckets[starts],
        c.open[starts],
        np.maximum.reduceat(c.high, starts),
        np.minimum.reduceat(c.low, starts),
        c.close[ends],
        np.add.reduceat(c.volume, starts),
        width_ms,
    )


def window(open_ms: np.ndarray, start: int | None, end: int | None, limit: int) -> slice:
    """Binance's kline window over sorted open times (bounds inclusive).

    start and end: the first ``limit`` rows in [start, end]; only start: the first
    ``limit`` from start; only end or neither: the last ``limit`` up to end (the caller
    has already cut the rows at the clock, which is the implicit end).
    """
    lo = 0 if start is None else int(np.searchsorted(open_ms, start, side="left"))
    hi = len(open_ms) if end is None else int(np.searchsorted(open_ms, end, side="right"))
    if hi <= lo:
        return slice(0, 0)
    if start is not None:
        return slice(lo, min(hi, lo + limit))
    return slice(max(lo, hi - limit), hi)


def price_now(c: Candles | None, now_ms: int) -> float | None:
    """Last price at ``now_ms``: interpolated inside the forming candle, else last close."""
    if c is None:
        return None
    end = int(np.searchsorted(c.open_ms, now_ms, side="right"))
    if end == 0:
        return None
    i = end - 1
    frac = forming_fraction(int(c.open_ms[i]), now_ms, c.width_ms)
    if frac is None:
        return float(c.close[i])
    return interpolate(float(c.open[i]), float(c.close[i]), frac)


def to_tick(price: float, tick: Decimal) -> Decimal:
    """Round a price to the symbol's tick grid (at least one tick), as a Decimal."""
    if tick <= 0:
        return Decimal(repr(price))
    steps = (Decimal(repr(price)) / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return max(steps, Decimal(1)) * tick

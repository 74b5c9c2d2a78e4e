"""Wall-time shift: the replay presented as if it were happening now.

Freqtrade compares candle dates with the machine's wall clock and will not trade on a
candle from 2025, so a dry run against a replay needs the replay to look current. The
handlers in :mod:`statarb.sim.api` stay in data time; this layer sits around them: the
``startTime``/``endTime`` a client sends are moved back by the clock's offset before the
lookup, and every time in the answer is moved forward by it. The offset is a whole number
of hours, so candles still open on the hour, and shifting is a bijection on instants, so
"nothing after the clock" and the forming candle hold in shifted time exactly as in data
time. exchangeInfo is served as recorded (it is not routed through here).

Each route names the fields that carry times; ids (``lastUpdateId``) are not times and keep
their value. A route without an entry raises, so a new endpoint cannot leak data time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from statarb.sim.api import Query

Shifter = Callable[[Any, int], Any]
"""``(answer, offset_ms) -> answer`` with every time moved forward by ``offset_ms``."""

QUERY_TIMES = ("startTime", "endTime")
MAX_DIGITS = 20  # Binance's own bound for integer parameters, enforced by the handlers


def shift_query(q: Query, offset_ms: int) -> Query:
    """Copy of ``q`` with ``startTime``/``endTime`` moved from shown time to data time.

    Only well-formed values move; anything else is left for the handler to reject with
    Binance's error. Values clamp at 0 so a shown instant before the shifted epoch stays a
    valid parameter (clamping keeps the order, so ``start > end`` is still detected).
    """
    out = dict(q)
    for name in QUERY_TIMES:
        raw = q.get(name)
        if raw and raw.isdigit() and len(raw) <= MAX_DIGITS:
            out[name] = str(max(0, int(raw) - offset_ms))
    return out


def _fields(*names: str) -> Shifter:
    """Shifter for one object or a list of objects with time fields ``names``."""

    def shift_one(obj: dict[str, Any], offset_ms: int) -> dict[str, Any]:
        return {k: v + offset_ms if k in names else v for k, v in obj.items()}

    def shifter(answer: Any, offset_ms: int) -> Any:
        if isinstance(answer, list):
            return [shift_one(obj, offset_ms) for obj in answer]
        return shift_one(answer, offset_ms)

    return shifter


def _kline_rows(answer: Any, offset_ms: int) -> Any:
    """Kline rows: open time (index 0) and close time (index 6)."""
    return [[r[0] + offset_ms, *r[1:6], r[6] + offset_ms, *r[7:]] for r in answer]


def _unchanged(answer: Any, offset_ms: int) -> Any:
    return answer


SHIFTERS: dict[str, Shifter] = {
    "/fapi/v1/ping": _unchanged,
    "/fapi/v1/time": _fields("serverTime"),
    "/fapi/v1/klines": _kline_rows,
    "/fapi/v1/continuousKlines": _kline_rows,
    "/fapi/v1/markPriceKlines": _kline_rows,
    "/fapi/v1/indexPriceKlines": _kline_rows,
    "/fapi/v1/fundingRate": _fields("fundingTime"),
    "/fapi/v1/premiumIndex": _fields("time", "nextFundingTime"),
    "/fapi/v1/ticker/24hr": _fields("openTime", "closeTime"),
    "/fapi/v1/ticker/price": _fields("time"),
    "/fapi/v2/ticker/price": _fields("time"),
    "/fapi/v1/ticker/bookTicker": _fields("time"),
    "/fapi/v1/depth": _fields("E", "T"),
}
"""Every routed path and where its answer carries times (checked against ROUTES in tests)."""


def shift_answer(path: str, answer: Any, offset_ms: int) -> Any:
    """``answer`` of ``path`` with every time moved forward by ``offset_ms``.

    Raises KeyError for a path without a :data:`SHIFTERS` entry: serving data time to a
    client that expects shifted time would be a silent look-ahead or stale-data bug.
    """
    return SHIFTERS[path](answer, offset_ms)

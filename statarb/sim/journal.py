"""Journal of everything that happened to the simulated account, in order.

Each order event and position change is one entry stamped with the wall clock and the
replay clock, so a test can replay the account's history without trusting the client's
view of it: for instance how long one leg of a couple was held while its partner was flat
(:func:`naked_intervals`), which is the risk a pairs bot must keep short.

Entries are plain dicts (JSON as served by ``GET /_sim/journal``)::

    {"seq": 3, "wall_ms": ..., "replay_ms": ..., "shown_ms": ..., "event": "fill",
     "reason": "fill" | "partial" | "cancel" | "liquidation" | "fault" | ...,
     "symbol": "BTCUSDT", "order_id": 1000002, "client_order_id": "...", "side": "BUY",
     "qty": "0.010", "price": "104000.1", "status": "FILLED",
     "position_after": "0.010", "entry_price_after": "104000.1", "wallet_after": "9999.48",
     "detail": {...}}

Numbers are decimal strings, as Binance writes them, so nothing is lost to floats.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

Entry = dict[str, Any]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class Journal:
    """Thread-safe, append-only list of entries; :meth:`clear` on reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Entry] = []

    def record(
        self, event: str, reason: str, *, replay_ms: int, shown_ms: int, **fields: Any
    ) -> Entry:
        """Append one entry; ``fields`` are the event's symbol, order and position data."""
        with self._lock:
            entry: Entry = {
                "seq": len(self._entries) + 1,
                "wall_ms": int(time.time() * 1000),
                "replay_ms": replay_ms,
                "shown_ms": shown_ms,
                "event": event,
                "reason": reason,
            }
            entry.update({k: _plain(v) for k, v in fields.items()})
            self._entries.append(entry)
            return dict(entry)

    def entries(self, since: int = 0, symbol: str | None = None) -> list[Entry]:
        """Entries with ``seq > since`` (optionally of one symbol), oldest first."""
        with self._lock:
            return [
                dict(e)
                for e in self._entries[since:]
                if symbol is None or e.get("symbol") == symbol
            ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def naked_intervals(
    entries: Iterable[Entry],
    leg: str,
    partner: str,
    clock: str = "wall_ms",
    until: int | None = None,
) -> list[tuple[int, int]]:
    """Intervals (on ``clock``) during which ``leg`` held a position and ``partner`` none.

    Built from the ``position_after`` of entries that carry one. An interval still open at
    the last entry ends at ``until`` (default: that last entry's time).
    """
    amounts = {leg: Decimal(0), partner: Decimal(0)}
    out: list[tuple[int, int]] = []
    start: int | None = None
    last = 0
    for e in entries:
        sym = e.get("symbol")
        if sym not in amounts or e.get("position_after") is None:
            continue
        amounts[sym] = Decimal(str(e["position_after"]))
        t = int(e[clock])
        last = t
        naked = amounts[leg] != 0 and amounts[partner] == 0
        if naked and start is None:
            start = t
        elif not naked and start is not None:
            out.append((start, t))
            start = None
    if start is not None:
        out.append((start, last if until is None else until))
    return out

"""Scripted faults: what can go wrong between a trading bot and Binance, on demand.

A scenario arms faults before (or while) the bot runs, through ``server.faults.add(...)``
or ``POST /_sim/faults``; each one fires on the next ``count`` matching requests (an
optional ``symbol``, and for request faults the method and path, default new orders) and is
then used up. Kinds:

``partial``
    the order fills only ``ratio`` of its quantity; the rest stays open (``rest="open"``)
    or is cancelled (``rest="cancel"``).
``reject``
    the order is refused with a Binance error: ``code`` -2019 (margin, HTTP 400) by
    default; ``code=-1003`` answers HTTP 429 like Binance's rate limiter.
``timeout_before`` / ``timeout_after``
    the request hangs ``delay_s`` seconds and the connection is closed with no answer
    (``respond=504`` sends a 504 instead); *before*: no order is created, *after*: the
    order exists (a ghost the client does not know about).
``drop``
    for ``duration_s`` seconds every private request is cut at the socket, no answer.
``liquidate``
    the exchange closes ``ratio`` of the position of ``symbol`` at the replayed price, now.
``delist``
    ``symbol`` stops trading: exchangeInfo shows it ``SETTLING`` and new orders get -1121;
    ``settle=True`` also closes its position at the replayed price.

``liquidate`` and ``delist`` act at once (see :class:`statarb.sim.private.PrivateApi`);
the others wait here for the request they apply to.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from statarb.sim.matching import INSUFFICIENT_MARGIN

REQUEST_KINDS = ("partial", "reject", "timeout_before", "timeout_after")
IMMEDIATE_KINDS = ("drop", "liquidate", "delist")
KINDS = REQUEST_KINDS + IMMEDIATE_KINDS
NEW_ORDER = ("POST", "/fapi/v1/order")


@dataclass
class Fault:
    """One armed fault; fields that do not apply to its kind are ignored."""

    kind: str
    symbol: str | None = None
    count: int = 1
    method: str = NEW_ORDER[0]
    path: str = NEW_ORDER[1]
    ratio: float = 0.5
    rest: str = "open"  # partial: open | cancel
    code: int = -2019
    status: int | None = None  # HTTP status of a reject (default: 429 for -1003, else 400)
    msg: str | None = None
    delay_s: float = 2.0
    respond: int | None = None  # timeouts: None closes silently, e.g. 504 answers that
    duration_s: float = 5.0
    settle: bool = False
    fired: int = 0
    id: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.count < 1:
            raise ValueError("count must be >= 1")
        if self.kind == "partial" and not (0 <= self.ratio < 1 and self.rest in ("open", "cancel")):
            raise ValueError("partial needs 0 <= ratio < 1 and rest 'open' or 'cancel'")
        if self.kind == "liquidate" and not 0 < self.ratio <= 1:
            raise ValueError("liquidate needs 0 < ratio <= 1")
        if self.kind in ("liquidate", "delist") and not self.symbol:
            raise ValueError(f"{self.kind} needs a symbol")
        self.method = self.method.upper()

    @property
    def http_status(self) -> int:
        if self.status is not None:
            return self.status
        return 429 if self.code == -1003 else 400

    @property
    def message(self) -> str:
        if self.msg:
            return self.msg
        return {
            -1001: "Internal error; unable to process your request. Please try again.",
            -2019: INSUFFICIENT_MARGIN,
            -1003: "Too many requests; current limit is 2400 requests per minute.",
            -1121: "Invalid symbol.",
        }.get(self.code, "Simulated rejection.")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaultBook:
    """Armed request faults plus the state the immediate ones leave (drop window, delists)."""

    _faults: list[Fault] = field(default_factory=list)
    drop_until: float = 0.0  # time.monotonic() deadline
    delisted: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _next_id: int = 0
    on_immediate: Any = None
    """Set by the private API: called with liquidate/delist faults to act on the account."""

    def add(self, kind: str | Fault, **options: Any) -> Fault:
        """Arm a fault (``add("partial", symbol="BTCUSDT", ratio=0.3)``) and return it."""
        fault = kind if isinstance(kind, Fault) else Fault(kind=kind, **options)
        with self._lock:
            self._next_id += 1
            fault.id = self._next_id
            if fault.kind == "drop":
                self.drop_until = max(self.drop_until, time.monotonic() + fault.duration_s)
                return fault
            if fault.kind == "delist":
                assert fault.symbol is not None
                self.delisted.add(fault.symbol)
            if fault.kind in REQUEST_KINDS:
                self._faults.append(fault)
        if fault.kind in ("liquidate", "delist") and self.on_immediate is not None:
            self.on_immediate(fault)
        return fault

    def take(self, method: str, path: str, symbol: str | None) -> Fault | None:
        """The first armed fault matching this request, used up by one firing."""
        with self._lock:
            for fault in self._faults:
                if fault.method != method or fault.path != path:
                    continue
                if fault.symbol is not None and fault.symbol != symbol:
                    continue
                fault.fired += 1
                if fault.fired >= fault.count:
                    self._faults.remove(fault)
                return fault
        return None

    def dropping(self) -> bool:
        return time.monotonic() < self.drop_until

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.drop_until = 0.0
            self.delisted.clear()

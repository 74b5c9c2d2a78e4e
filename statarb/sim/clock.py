"""Replay clock: the simulator's notion of "now".

Everything the simulator serves is cut at this instant, so a client can never see a candle,
a funding event or a price from after it. The clock is either frozen at a fixed instant
(reproducible tests, backtest downloads) or runs from a start instant at a chosen speed
(dry runs that should feel live).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

HOUR_MS = 3_600_000


def parse_instant(text: str) -> int:
    """Parse an ISO-8601 instant (``2025-06-01T00:00:00Z``) or epoch milliseconds to ms.

    A naive timestamp is taken as UTC, because every time in the data is UTC and a local
    interpretation would silently shift the replay by the machine's offset.
    """
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 instant or epoch ms: {text!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def format_instant(ms: int) -> str:
    """Format epoch ms as ``YYYY-MM-DDTHH:MM:SSZ`` for logs and messages."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _wall_ms() -> float:
    return time.time() * 1000.0


@dataclass
class ReplayClock:
    """Maps wall time onto data time: ``now = start + (wall - wall_at_start) * speed``.

    ``speed == 0`` freezes the clock at ``start_ms``. Tests change it with :meth:`set` or
    :meth:`advance`; the server reads it once per request through :meth:`now_ms`.
    """

    start_ms: int
    speed: float = 0.0
    wall_at_start_ms: float = field(default_factory=_wall_ms)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def fixed(cls, instant: int | str) -> ReplayClock:
        """A clock frozen at ``instant`` (epoch ms or ISO-8601)."""
        ms = parse_instant(instant) if isinstance(instant, str) else int(instant)
        return cls(start_ms=ms, speed=0.0)

    @classmethod
    def running(cls, start: int | str, speed: float = 1.0) -> ReplayClock:
        """A clock that starts at ``start`` now and advances ``speed`` data-ms per wall-ms."""
        if speed <= 0:
            raise ValueError(f"speed must be > 0 for a running clock, got {speed}")
        ms = parse_instant(start) if isinstance(start, str) else int(start)
        return cls(start_ms=ms, speed=float(speed))

    def now_ms(self) -> int:
        """Current replay instant in epoch milliseconds."""
        with self._lock:
            if self.speed == 0:
                return self.start_ms
            return int(self.start_ms + (_wall_ms() - self.wall_at_start_ms) * self.speed)

    def set(self, instant: int | str) -> None:
        """Jump to ``instant``; a running clock keeps running from there at the same speed."""
        ms = parse_instant(instant) if isinstance(instant, str) else int(instant)
        with self._lock:
            self.start_ms = ms
            self.wall_at_start_ms = _wall_ms()

    def advance(self, ms: int) -> None:
        """Move the clock forward by ``ms`` data milliseconds (tests of the forming candle)."""
        self.set(self.now_ms() + int(ms))

    def describe(self) -> str:
        """One-line description for the startup banner."""
        now = format_instant(self.now_ms())
        if self.speed == 0:
            return f"fixed at {now}"
        return f"running from {format_instant(self.start_ms)} at x{self.speed:g} (now {now})"

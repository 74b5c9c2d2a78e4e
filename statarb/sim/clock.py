"""Replay clock: the simulator's notion of "now".

Everything the simulator serves is cut at this instant, so a client can never see a candle,
a funding event or a price from after it. The clock is either frozen at a fixed instant
(reproducible tests, backtest downloads) or runs from a start instant at a chosen speed
(dry runs that should feel live).

A running clock can also be *shifted to now* (:meth:`ReplayClock.shifted_to_now`): the
server then presents every time it serves ``offset_ms`` later than the data, so the replay
looks like it is happening on the machine's wall clock. Freqtrade judges candle freshness
against its own wall clock and refuses to trade on candles from 2025; shifted, the candle
forming in the replay is the candle forming now.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

HOUR_MS = 3_600_000

logger = logging.getLogger("statarb.sim")


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


def align_to_wall(start_ms: int, wall_ms: int) -> tuple[int, int]:
    """(replay instant, offset) that show a replay from ``start_ms`` as happening at ``wall_ms``.

    The offset is ``wall hour - start hour`` in whole hours, so shifted 1h candle boundaries
    fall on wall-clock hours; the replay instant is ``start``'s hour plus the wall clock's
    position in its hour, so that ``replay + offset == wall_ms`` exactly.
    """
    offset = (wall_ms // HOUR_MS - start_ms // HOUR_MS) * HOUR_MS
    return wall_ms - offset, offset


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
    offset_ms: int = 0
    """How much later than the data every served time is shown (0: times served as recorded)."""
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

    @classmethod
    def shifted_to_now(cls, start: int | str, wall_ms: float | None = None) -> ReplayClock:
        """A speed-1 clock from ``start``'s hour, shown as happening on the wall clock.

        The offset is a whole number of hours (wall-clock hour minus ``start``'s hour), so
        shifted candles still open on the hour and the candle forming in the replay is the
        one forming now. Hour alignment beats minute precision: the replay instant actually
        used is ``start``'s hour plus the wall clock's minutes and seconds, which makes the
        shifted replay instant equal to the wall clock from then on. A start
        at 10:40 with the wall clock at 03:12 therefore replays from 10:12.
        ``wall_ms`` pins the wall instant (tests); by default it is the current time.
        """
        requested = parse_instant(start) if isinstance(start, str) else int(start)
        wall = _wall_ms() if wall_ms is None else float(wall_ms)
        replay_ms, offset = align_to_wall(requested, int(wall))
        if replay_ms != requested:
            logger.info(
                "replay starts at %s (hour of %s + wall-clock minutes): candles stay on the hour",
                format_instant(replay_ms),
                format_instant(requested),
            )
        return cls(start_ms=replay_ms, speed=1.0, wall_at_start_ms=wall, offset_ms=offset)

    @property
    def shifted(self) -> bool:
        """True when served times differ from the data's (see :meth:`shifted_to_now`)."""
        return self.offset_ms != 0

    def shown(self, data_ms: int) -> int:
        """A data instant as the client sees it."""
        return data_ms + self.offset_ms

    def now_ms(self) -> int:
        """Current replay instant in epoch milliseconds."""
        with self._lock:
            if self.speed == 0:
                return self.start_ms
            return int(self.start_ms + (_wall_ms() - self.wall_at_start_ms) * self.speed)

    def set(self, instant: int | str) -> None:
        """Jump to ``instant``; a running clock keeps running from there at the same speed.

        The offset of a shifted clock stays, so after a jump the shown instant is no longer
        the wall clock: the shift is fixed once, when the clock is made.
        """
        ms = parse_instant(instant) if isinstance(instant, str) else int(instant)
        with self._lock:
            self.start_ms = ms
            self.wall_at_start_ms = _wall_ms()

    def advance(self, ms: int) -> None:
        """Move the clock forward by ``ms`` data milliseconds (tests of the forming candle)."""
        self.set(self.now_ms() + int(ms))

    def describe(self) -> str:
        """One-line description for the startup banner."""
        now = self.now_ms()
        if self.speed == 0:
            text = f"fixed at {format_instant(now)}"
        else:
            text = (
                f"running from {format_instant(self.start_ms)} at x{self.speed:g} "
                f"(now {format_instant(now)})"
            )
        if self.shifted:
            text += (
                f", shown {self.offset_ms // HOUR_MS:+d} h later: replay "
                f"{format_instant(now)} shown as {format_instant(self.shown(now))}"
            )
        return text

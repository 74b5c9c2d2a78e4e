"""State of the live leg supervision, which exists only in a running bot.

Why a separate object: backtesting, hyperopt, plotting and Freqtrade's bias checks never
place a real order, so none of this may exist there. Hyperopt in particular sends the
strategy to its worker processes by pickling it, and a lock cannot be pickled. The
strategy creates a :class:`LiveState` only in dry-run and live
(:attr:`statarb.ft.runmode.Mode.trading`) and keeps ``None`` otherwise.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from statarb.legs import CoupleTicket

__all__ = ["LiveState"]


@dataclass
class LiveState:
    """What the bot loop remembers between loops about legs gone astray."""

    # couple id -> (ticket, role): second legs sent whose trade has not appeared yet
    # (a failed order, or a ghost to look up on the exchange).
    pending: dict[str, tuple[CoupleTicket, str]] = field(default_factory=dict)
    # couple id -> loops waited on a second-leg order still open on the exchange
    ghost_waits: dict[str, int] = field(default_factory=dict)
    # pair -> untracked amount seen at the last check
    surplus_seen: dict[str, float] = field(default_factory=dict)
    # pairs with a position no trade owns
    untracked: set[str] = field(default_factory=set)
    # untracked positions outside this bot's pairs, reported once
    foreign: set[str] = field(default_factory=set)
    # "trade:<id>" / "pair:<pair>" -> (failed attempts, monotonic time of the last
    # attempt, time the next may go; 0: the last one is not judged yet)
    close_attempts: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    halted: str | None = None  # why new entries are stopped (manual intervention)
    halted_pair: str = ""  # the position behind it
    # The bot loop and a REST/Telegram force entry may confirm legs at the same time.
    entry_lock: Any = field(default_factory=threading.Lock)

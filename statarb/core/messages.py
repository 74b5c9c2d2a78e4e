"""Texts of the strategy's notifications (Telegram, webhook ``strategy_msg``).

Why one module: operators act on these messages, so their wording is part of the product
(the README's operator section explains each one) and is tested like code. Every message
starts with ``statarb`` and a kind so it can be filtered: ``couple opened``, ``couple
closed``, ``leg incident``, ``MANUAL INTERVENTION REQUIRED``, ``entries resumed``,
``regime``.
"""

from __future__ import annotations

__all__ = [
    "SUPERVISION_STARTED", "couple_closed", "couple_opened", "entries_resumed", "leg_incident",
    "manual_intervention", "regime_changed",
]


SUPERVISION_STARTED = "statarb: live leg supervision started"
"""Logged when a running bot's supervision starts (at start-up, before reconciling): from
here on the bot can act on a leg gone astray (the chaos harness measures from it)."""


def couple_opened(
    couple_id: str, y: str, x: str, y_long: bool, x_long: bool, beta: float, z: float,
    amount_y: float, amount_x: float,
) -> str:
    side = {True: "long", False: "short"}
    return (
        f"statarb couple opened {couple_id}: {side[y_long]} {amount_y:g} {y}, "
        f"{side[x_long]} {amount_x:g} {x}; beta {beta:.4f}, z {z:+.2f}"
    )


def couple_closed(couple_id: str, reason: str, pnl_abs: float, stake: str) -> str:
    return (
        f"statarb couple closed {couple_id}: {reason}; combined P&L of both legs "
        f"{pnl_abs:+.2f} {stake}"
    )


def leg_incident(couple_id: str, pair: str, what: str, action: str) -> str:
    return f"statarb leg incident {couple_id}: {pair} {what}; {action}"


def manual_intervention(pair: str, amount: float, attempts: int, error: str) -> str:
    """A position the bot cannot close: it keeps trying, opens nothing new, needs a person."""
    side = "long" if amount > 0 else "short"
    return (
        f"statarb MANUAL INTERVENTION REQUIRED: cannot close {side} {abs(amount):g} {pair} "
        f"after {attempts} attempts ({error}); new entries are stopped, closing retries go "
        "on; close it on the exchange if it persists"
    )


def entries_resumed(why: str) -> str:
    return f"statarb entries resumed: {why}"


def regime_changed(old: str, new: str, multiplier: float, blocked: bool) -> str:
    entries = "new entries blocked (shock cooldown)" if blocked else (
        f"new couples sized x{multiplier:g}"
    )
    return f"statarb regime {old} -> {new}: {entries}"

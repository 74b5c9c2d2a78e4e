"""The two legs of a couple as one trade: tags, the entry ticket and the leg decisions.

Freqtrade knows only single-pair trades. A couple is two of them that must enter on the
same candle and leave together. The decisions that keep them together are pure functions
here, so they are tested without Freqtrade and read the same in backtesting and live:

- :func:`first_leg_refusal` - may the first leg of a couple open? Only when the second
  one can open right after it (two free slots, partner free and not locked, money for
  both legs at their rounded amounts).
- :func:`second_leg_refusal` - the second leg opens only when the first leg of the same
  ticket has just been accepted.
- :func:`lone_leg` - a leg whose partner is not open (closed, liquidated, closed by hand)
  must be closed; not on its entry candle, where the partner may simply not have been
  processed yet (Freqtrade handles pairs one after the other within a candle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "ROLES",
    "CoupleTicket",
    "first_leg_refusal",
    "leg_tag",
    "lone_leg",
    "parse_leg_tag",
    "second_leg_refusal",
    "x_is_long",
]

ROLES = ("y", "x")
# Keys of the custom data stored on each leg's trade.
CUSTOM_KEYS = (
    "couple", "couple_id", "role", "partner", "side", "alpha", "beta", "half_life",
    "z_entry", "signal_time", "target_amount", "partner_amount", "ratio_error", "regime",
)


def leg_tag(couple: str, role: str) -> str:
    """``enter_tag`` of a leg: ``"ETH~BTC:y"``; backtesting-analysis groups by it."""
    if role not in ROLES:
        raise ValueError(f"role={role!r} must be one of {ROLES}")
    return f"{couple}:{role}"


def parse_leg_tag(tag: str | None) -> tuple[str, str] | None:
    """``(couple, role)`` of a leg tag, or None for a tag that is not a couple leg."""
    if not tag or ":" not in tag:
        return None
    couple, role = tag.rsplit(":", 1)
    if role not in ROLES or "~" not in couple:
        return None
    return couple, role


def x_is_long(side: int, beta: float) -> bool:
    """Direction of the x leg: opposite to y for a positive hedge ratio."""
    return (side == 1) == (beta < 0)


@dataclass
class CoupleTicket:
    """One couple entry being placed: both legs' target amounts, decided once.

    The first leg to reach the strategy (Freqtrade's order) sizes both legs at the current
    prices; the second leg reuses the ticket so both legs follow the same hedge ratio.
    """

    couple: str
    y: str  # pair names
    x: str
    side: int
    alpha: float
    beta: float
    half_life: float
    z_entry: float
    signal_time: datetime
    entry_time: datetime
    amount_y: float = 0.0
    amount_x: float = 0.0
    price_y: float = 0.0
    price_x: float = 0.0
    ratio_error: float = 0.0
    regime: str = ""
    refused: str | None = None
    accepted: list[str] = field(default_factory=list)  # roles accepted, in order

    @property
    def couple_id(self) -> str:
        return f"{self.couple}@{self.entry_time:%Y-%m-%dT%H:%M}"

    def pair(self, role: str) -> str:
        return self.y if role == "y" else self.x

    def partner_role(self, role: str) -> str:
        return "x" if role == "y" else "y"

    def amount(self, role: str) -> float:
        return self.amount_y if role == "y" else self.amount_x

    def price(self, role: str) -> float:
        return self.price_y if role == "y" else self.price_x

    def is_long(self, role: str) -> bool:
        return self.side == 1 if role == "y" else x_is_long(self.side, self.beta)

    def custom_data(self, role: str) -> dict[str, object]:
        partner = self.partner_role(role)
        return {
            "couple": self.couple,
            "couple_id": self.couple_id,
            "role": role,
            "partner": self.pair(partner),
            "side": self.side,
            "alpha": self.alpha,
            "beta": self.beta,
            "half_life": self.half_life,
            "z_entry": self.z_entry,
            "signal_time": self.signal_time.isoformat(),
            "target_amount": self.amount(role),
            "partner_amount": self.amount(partner),
            "ratio_error": self.ratio_error,
            "regime": self.regime,
        }


def first_leg_refusal(
    *,
    free_slots: int,
    partner_open: bool,
    partner_locked: bool,
    partner_signal: bool,
    stake_available: float,
    stake_needed: float,
) -> str | None:
    """Why the first leg may not open (None: it may). The second leg must be certain."""
    if free_slots < 2:
        return f"{free_slots} free trade slot(s); a couple needs 2"
    if partner_open:
        return "the partner coin already has an open trade"
    if partner_locked:
        return "the partner coin is locked by a protection"
    if not partner_signal:
        return "the partner has no entry signal on this candle"
    if stake_needed > stake_available:
        return (
            f"both legs need {stake_needed:.2f} of stake and {stake_available:.2f} is available"
        )
    return None


def second_leg_refusal(ticket: CoupleTicket, role: str, amount: float, step: float) -> str | None:
    """Why the second leg may not open: its first leg must have been accepted just now,
    and Freqtrade's amount must be the ticket's (or the hedge ratio is gone)."""
    if ticket.refused:
        return f"couple refused: {ticket.refused}"
    if ticket.partner_role(role) not in ticket.accepted:
        return "the first leg was not accepted"
    return amount_mismatch(ticket, role, amount, step)


def amount_mismatch(ticket: CoupleTicket, role: str, amount: float, step: float) -> str | None:
    target = ticket.amount(role)
    if abs(amount - target) > step / 2:
        return f"order amount {amount} differs from the hedged amount {target}"
    return None


def lone_leg(
    *, partner_open: bool, opened_this_candle: bool
) -> bool:
    """True when a leg is alone and must be closed."""
    return not partner_open and not opened_this_candle

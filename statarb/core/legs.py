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

Live, :func:`partial_entry` sizes the second leg to a partly filled first leg, and
:func:`reconcile_couple` is the one rule for every difference between what a couple must
hold (its ledger) and what the exchange holds: wait for an open order, adopt an
unrecorded fill, top up a short leg, trim the other leg to the ratio, close a lone leg,
close a position no trade owns. :func:`position_surplus` finds positions no trade owns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "PARTIAL_FILL_THRESHOLD",
    "RATIO_TOLERANCE",
    "ROLES",
    "CoupleRepair",
    "CoupleTicket",
    "LegRecord",
    "LegView",
    "PartialEntry",
    "backoff",
    "coin",
    "first_leg_refusal",
    "leg_tag",
    "lone_leg",
    "parse_leg_tag",
    "partial_entry",
    "position_surplus",
    "reconcile_couple",
    "round_down",
    "round_up",
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
    """``enter_tag`` of a leg: the couple's name, ``"ETH~BTC"``, the same for both legs.

    One tag per couple makes the couple one unit wherever Freqtrade groups by
    ``enter_tag``: the backtest report's enter-tag table, ``backtesting-analysis``,
    Telegram ``/entries`` and FreqUI's trade filter. The role is not in the tag: it follows
    from the pair (the couple's first coin is y), and it is kept in the trade's custom data.
    """
    if role not in ROLES:
        raise ValueError(f"role={role!r} must be one of {ROLES}")
    if "~" not in couple:
        raise ValueError(f"couple={couple!r} must name two coins as 'Y~X'")
    return couple


def coin(pair: str) -> str:
    """Base coin of a Freqtrade pair: ``"ETH/USDT:USDT"`` -> ``"ETH"``."""
    return pair.split("/")[0]


def parse_leg_tag(tag: str | None, pair: str) -> tuple[str, str] | None:
    """``(couple, role)`` of a leg of ``pair`` tagged ``tag``, or None for a tag that is not
    a couple leg of that pair (a manual force entry, another strategy's tag).

    Also reads the tags of earlier versions, ``"ETH~BTC:y"``, so trades opened by them are
    still recognised after an upgrade.
    """
    if not tag or "~" not in tag:
        return None
    couple, _, suffix = tag.partition(":")
    y, _, x = couple.partition("~")
    if not y or not x or "~" in x:
        return None
    role = "y" if coin(pair) == y else "x" if coin(pair) == x else None
    if role is None or suffix not in ("", role):
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
    untracked: tuple[str, ...] = (),
    halted: str | None = None,
) -> str | None:
    """Why the first leg may not open (None: it may). The second leg must be certain.

    ``untracked``: pairs of this couple where the exchange holds a position no trade owns
    (a leftover being closed): entering on top of it would double it. ``halted``: why new
    entries are stopped (a leg that cannot be closed is waiting for a person).
    """
    if halted:
        return f"new entries are stopped: {halted}"
    if untracked:
        return f"the exchange holds a position no trade owns on {', '.join(untracked)}"
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
    and Freqtrade's amount must be the ticket's (or the hedge ratio is gone).

    A leg is sent once per ticket: when its order failed (rejected, timed out), sending it
    again could duplicate an order the exchange did accept (a ghost); the failure is
    handled by :func:`second_leg_failure` instead.
    """
    if ticket.refused:
        return f"couple refused: {ticket.refused}"
    if role in ticket.accepted:
        return "this leg was sent already; a second order could duplicate a ghost"
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


# ---------------------------------------------------------------- live incidents
PARTIAL_FILL_THRESHOLD = 0.5


def round_down(amount: float, step: float) -> float:
    """``amount`` on the exchange's step grid, never above it."""
    if step <= 0:
        raise ValueError(f"step={step} must be positive")
    return round(int(amount / step + 1e-9) * step, 12)


@dataclass(frozen=True)
class PartialEntry:
    """What to do when the first leg's entry filled only partly."""

    action: str  # "resize_partner" or "abandon"
    fill_ratio: float
    partner_amount: float  # the partner's amount to keep the hedge ratio (0 when abandoning)


def partial_entry(
    target: float, filled: float, partner_target: float, partner_step: float,
    threshold: float = PARTIAL_FILL_THRESHOLD,
) -> PartialEntry:
    """A first leg filled at ``filled`` of ``target``.

    From ``threshold`` (50%) of the target: keep it and size the partner to the actual fill,
    so the couple stays in the hedge ratio. Below: cancel the rest, close what filled and do
    not open the partner (a small couple is mostly fees).
    """
    if target <= 0 or filled < 0 or partner_target <= 0:
        raise ValueError(
            f"target={target}, filled={filled} and partner_target={partner_target} must be "
            "positive (filled may be 0)"
        )
    ratio = min(filled / target, 1.0)
    if ratio >= threshold:
        return PartialEntry("resize_partner", ratio, round_down(partner_target * ratio,
                                                                partner_step))
    return PartialEntry("abandon", ratio, 0.0)


def backoff(attempt: int, base_s: float = 1.0, cap_s: float = 60.0) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): doubling, capped."""
    if attempt < 0:
        raise ValueError(f"attempt={attempt} must be >= 0")
    return min(cap_s, base_s * 2**attempt)


@dataclass(frozen=True)
class LegRecord:
    """An open leg as the trade database knows it."""

    trade_id: int
    pair: str
    couple_id: str | None
    amount: float  # signed: negative for a short


def position_surplus(
    positions: dict[str, float], legs: list[LegRecord], tolerance: float = 1e-9
) -> dict[str, float]:
    """Signed amount per pair the exchange holds beyond what the open trades own.

    A position with no trade (the leg of a crash, a ghost nobody adopted, a manual order)
    or larger than its trades in the same direction is a surplus: an exposure no couple
    hedges and no exit would ever close. A position smaller than its trades (a leg
    liquidated or reduced on the exchange) is not a surplus: the lone-leg rule handles it.
    """
    owned: dict[str, float] = {}
    for leg in legs:
        owned[leg.pair] = owned.get(leg.pair, 0.0) + leg.amount
    surplus: dict[str, float] = {}
    for pair, held in positions.items():
        extra = held - owned.get(pair, 0.0)
        if abs(held) > tolerance and abs(extra) > tolerance * max(1.0, abs(held)) \
                and (extra > 0) == (held > 0) and abs(held) > abs(owned.get(pair, 0.0)):
            surplus[pair] = extra if abs(extra) <= abs(held) else held  # never beyond it
    return surplus


# ---------------------------------------------------------------- the reconciler
RATIO_TOLERANCE = 0.05
"""A leg within 5% of its target amount is in ratio."""


@dataclass(frozen=True)
class LegView:
    """One leg of a couple as the exchange and the trade database see it now.

    ``position``: the exchange's signed position (dry-run: the trade's amount).
    ``trade_amount``: the signed amount of the open trade that owns the leg (0: none).
    ``entry_filled``: what the trade's entry orders filled in all (unsigned): a leg below
    target with its entry filled in full was *reduced* afterwards (a liquidation, a trim on
    the exchange's website), not short-filled. ``order_open``: an order of this leg is
    still open (on the exchange or in Freqtrade): its outcome is not known yet.
    ``order_stuck``: that open order is an exit at market which the exchange answered as
    open and still holds a second later (a partial fill whose rest rests): it will not
    fill by waiting, so a leaving couple cancels it and closes the rest.
    """

    position: float = 0.0
    trade_id: int | None = None
    trade_amount: float = 0.0
    entry_filled: float = 0.0
    order_open: bool = False
    order_stuck: bool = False


@dataclass(frozen=True)
class CoupleRepair:
    """One action of the reconciler on one leg (``role``) or on the couple (``role`` "").

    ``action``: ``keep`` (in ratio), ``wait`` (an order is open), ``adopt`` (a position
    the ledger expects and no trade records: make it the leg's trade), ``top_up`` (buy or
    sell ``amount`` more of a leg short of its target), ``trim`` (reduce a leg by
    ``amount``; ``targets`` are the couple's new signed targets), ``close`` (close the
    leg's trade), ``close_position`` (close ``amount`` of a position no trade owns,
    reduce-only), ``record`` (the trade records ``amount`` more than the exchange holds:
    a reduction the trade never saw, such as a liquidation, or an exit whose answer a
    crash lost; bring the trade's record down to the exchange), ``forget`` (the couple is
    flat and no trade of it is open: drop its ledger entry).
    """

    action: str
    role: str
    pair: str
    amount: float
    reason: str
    targets: tuple[float, float] | None = None


def _held(amount: float, step: float) -> bool:
    return abs(amount) > max(step / 2, 1e-12)


def _records(ledger: Any, views: dict[str, LegView]) -> list[CoupleRepair]:
    """A ``record`` for each leg whose open trade (no order open) holds more than the
    exchange: Freqtrade's record must match the exchange after every repair."""
    out = []
    for r in ("y", "x"):
        v, leg = views[r], ledger.leg(r)
        if v.trade_id is None or v.order_open:
            continue
        same_side = not _held(v.position, leg.step) or (v.position > 0) == (v.trade_amount > 0)
        extra = abs(v.trade_amount) - abs(v.position)
        if same_side and extra > max(leg.step / 2, 1e-12):
            out.append(CoupleRepair(
                "record", r, leg.pair, extra,
                f"its trade records {abs(v.trade_amount):g} and the exchange holds "
                f"{abs(v.position):g}"))
    return out


def _close(role: str, leg: Any, view: LegView, why: str) -> CoupleRepair:
    """Close what a leg holds: its trade's exit, or reduce-only when no trade owns the
    position or the trade is on the other side of it."""
    if view.trade_id is None or (view.position > 0) != (view.trade_amount > 0):
        owner = "no trade owns it" if view.trade_id is None else "its trade is on the other side"
        return CoupleRepair("close_position", role, leg.pair, abs(view.position),
                            f"{why} and {owner}")
    return CoupleRepair("close", role, leg.pair, 0.0, why)


def reconcile_couple(
    ledger: Any,
    views: dict[str, LegView],
    *,
    top_up_failures: int = 0,
    max_top_ups: int = 2,
    min_fraction: float = PARTIAL_FILL_THRESHOLD,
    tolerance: float = RATIO_TOLERANCE,
) -> list[CoupleRepair]:
    """What to do so that a couple holds both legs at their targets, or nothing.

    ``ledger`` is the couple's :class:`statarb.core.ledger.CoupleLedger` (targets), ``views``
    the legs as they are (``"y"``, ``"x"``). A couple whose exit has begun (stage
    ``exiting``, whatever started it) has targets of zero: every rule below then closes
    what is held, whatever a partial fill, a cancelled order or a restart left. The rules,
    in order:

    0. a leg's trade that records more than the exchange holds (no order open): record
       the difference on the trade (``record``), beside whatever else is decided;
    1. an order of either leg still open: wait for it (never a second order beside it);
       a leaving couple waits only for that leg, and not for a stuck exit order;
    2. neither leg held: the couple is flat; once no trade of it is open, drop the entry;
    3. targets of zero (leaving), or one leg held and the other not: close what is held
       (a trade's exit, or reduce-only when no trade owns the position);
    4. a held leg no trade records (a fill whose answer was lost, a crash between the
       order and its record): adopt it as the leg's trade;
    5. both legs within ``tolerance`` of their targets: keep;
    6. a leg short of its target whose entry never filled in full: top it up by the
       difference (at most ``max_top_ups`` failed attempts);
    7. otherwise (a leg reduced after its fill, a top-up that keeps failing, a leg above
       target): trim the other leg so both hold the same fraction of their targets, and
       make that the new target; below ``min_fraction`` of the original size the couple is
       mostly fees: close both legs.
    """
    roles = ("y", "x")
    legs = {r: ledger.leg(r) for r in roles}
    leaving = ledger.stage == "exiting"
    records = _records(ledger, views)
    waiting = [r for r in roles if views[r].order_open
               and not (leaving and views[r].order_stuck)]
    if waiting and not leaving:
        role = waiting[0]
        return [CoupleRepair("wait", role, legs[role].pair, 0.0, "an order is still open")]
    waits = [CoupleRepair("wait", r, legs[r].pair, 0.0, "an order is still open")
             for r in waiting]
    held = {r: _held(views[r].position, legs[r].step) and r not in waiting for r in roles}
    if not any(held.values()):
        if waits or records:
            return [*records, *waits]
        return [CoupleRepair("forget", "", ledger.couple_id, 0.0, "flat")]
    if leaving or held["y"] != held["x"]:
        closes = []
        for r in roles:
            if not held[r]:
                continue
            partner = "x" if r == "y" else "y"
            why = ("the couple is leaving" if _held(views[partner].position, legs[partner].step)
                   else f"its partner {legs[partner].pair} has no position")
            closes.append(_close(r, legs[r], views[r], why))
        return [*records, *waits, *closes]
    wrong_side = [r for r in roles if (views[r].position > 0) != (legs[r].amount > 0)]
    if wrong_side:
        return [*records, *(_close(r, legs[r], views[r], "the position is on the wrong side")
                            for r in roles)]
    unrecorded = [r for r in roles if views[r].trade_id is None]
    if unrecorded:
        return [CoupleRepair("adopt", r, legs[r].pair, abs(views[r].position),
                             "the exchange holds the leg and no trade records it")
                for r in unrecorded]
    return [*records, *_resize(ledger, views, top_up_failures=top_up_failures,
                               max_top_ups=max_top_ups, min_fraction=min_fraction,
                               tolerance=tolerance)]


def _resize(ledger: Any, views: dict[str, LegView], *, top_up_failures: int,
            max_top_ups: int, min_fraction: float, tolerance: float) -> list[CoupleRepair]:
    """Rules 5-7 of :func:`reconcile_couple`: both legs held, recorded, on their sides."""
    roles = ("y", "x")
    legs = {r: ledger.leg(r) for r in roles}
    fraction = {r: abs(views[r].position) / abs(legs[r].amount) for r in roles}
    if all(abs(f - 1) <= tolerance for f in fraction.values()):
        return [CoupleRepair("keep", "", ledger.couple_id, 0.0, "in ratio")]
    short = [r for r in roles if fraction[r] < 1 - tolerance]
    reduced = [r for r in short
               if views[r].entry_filled >= abs(legs[r].amount) * (1 - tolerance)
               or abs(views[r].position) < abs(views[r].trade_amount) - legs[r].step / 2]
    if short and not reduced and top_up_failures < max_top_ups:
        return [CoupleRepair(
            "top_up", r, legs[r].pair,
            round_up(abs(legs[r].amount) - abs(views[r].position), legs[r].step),
            f"filled {fraction[r]:.0%} of its target {abs(legs[r].amount):g}",
        ) for r in short]
    scale = min(1.0, *fraction.values())
    if scale < min_fraction:
        return [CoupleRepair("close", r, legs[r].pair, 0.0,
                             f"the couple holds {scale:.0%} of its size") for r in roles]
    smallest = min(roles, key=lambda r: fraction[r])
    new = {}
    for r in roles:
        size = (abs(views[r].position) if r == smallest
                else _round_down_or_same(abs(legs[r].amount) * scale, legs[r].step))
        new[r] = math.copysign(size, legs[r].amount)
    why = (f"{legs[smallest].pair} holds {fraction[smallest]:.0%} of its target"
           + (" after a reduction" if smallest in reduced else ""))
    targets = (new["y"], new["x"])
    trims = [CoupleRepair("trim", r, legs[r].pair, abs(views[r].position) - abs(new[r]), why,
                          targets)
             for r in roles if abs(views[r].position) - abs(new[r]) > max(legs[r].step / 2,
                                                                          1e-12)]
    return trims or [CoupleRepair("keep", "", ledger.couple_id, 0.0, why, targets)]


def round_up(amount: float, step: float) -> float:
    """``amount`` on the step grid, never below it (0 step: as is)."""
    if step <= 0:
        return amount
    return round(math.ceil(amount / step - 1e-9) * step, 12)


def _round_down_or_same(amount: float, step: float) -> float:
    return round_down(amount, step) if step > 0 else amount

"""Open couples and the pairlist's selection, as one status: Telegram ``/couples`` and REST.

Why a module of its own: Freqtrade shows trades one by one (``/status``), but a couple is
one position in two trades, and what an operator asks of it - both legs, the hedge ratio,
where the z-score was at entry and where it is now, and the P&L of the two legs together -
is spread over two trades and their custom data. Grouping the legs and wording the reply
are pure functions of plain data here (tested without Freqtrade, like
:mod:`statarb.core.messages`); :mod:`statarb.ft.couples_command` feeds them from a running bot.

Legs are grouped by the ``couple_id`` in each trade's custom data (keys in
:data:`statarb.core.legs.CUSTOM_KEYS`), never by ``enter_tag``: the tag is a label for
Freqtrade's reports and its format changes between versions. A trade without usable
custom data (a manual force entry, a leg whose partner is gone, a record from a crash) is
shown as an *unpaired leg* with the reason, never raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from statarb.core.legs import coin

__all__ = [
    "COUPLES_HELP",
    "MAX_MESSAGE",
    "CoupleRow",
    "CouplesReport",
    "LegInput",
    "SelectedCouple",
    "SelectionView",
    "UnpairedLeg",
    "as_float",
    "build_report",
    "format_couples",
    "format_held",
    "with_couples_help",
]

MAX_MESSAGE = 4000
"""Longest Telegram message sent (the Bot API's limit is 4096 characters)."""

COUPLES_HELP = (
    "*/couples:* `Open statarb couples (both legs, hedge ratio, entry and current z-score, "
    "time held, combined P&L) and the couples the pairlist selected`\n"
)
"""The ``/help`` line of the command (Freqtrade's Markdown layout)."""

_HELP_ANCHOR = "*/help:*"
"""Freqtrade's own ``/help`` line: ``/couples`` goes just before it (end of the
*Statistics* section, next to ``/status``'s relatives)."""

_ROLES = ("y", "x")


@dataclass(frozen=True)
class LegInput:
    """One open trade as the bot reports it, with its custom data.

    ``profit_abs`` is the trade's total P&L in stake currency (realised partial exits plus
    the open part at ``current_rate``, fees included; NaN when there is no price);
    ``stake_amount`` the margin it holds.
    """

    trade_id: int
    pair: str
    is_short: bool
    amount: float
    stake_amount: float
    profit_abs: float
    open_rate: float
    current_rate: float
    open_date: datetime
    custom: Mapping[str, Any] = field(default_factory=dict)

    @property
    def side(self) -> str:
        return "short" if self.is_short else "long"


@dataclass(frozen=True)
class CoupleRow:
    """One open couple: its two legs and what they make together."""

    couple_id: str
    couple: str
    y: LegInput
    x: LegInput
    beta: float
    z_entry: float
    z_now: float  # NaN when the bot has no candles for it yet
    opened: datetime
    held: timedelta
    profit_abs: float
    stake_amount: float

    @property
    def profit_pct(self) -> float:
        """Combined P&L in % of the couple's stake (both legs' margin)."""
        if not self.stake_amount > 0:
            return math.nan
        return 100.0 * self.profit_abs / self.stake_amount

    def to_dict(self) -> dict[str, Any]:
        return {
            "couple_id": self.couple_id,
            "couple": self.couple,
            "beta": _num(self.beta),
            "z_entry": _num(self.z_entry),
            "z_now": _num(self.z_now),
            "open_date": self.opened.isoformat(),
            "held_seconds": int(self.held.total_seconds()),
            "profit_abs": _num(self.profit_abs),
            "profit_pct": _num(self.profit_pct),
            "stake_amount": _num(self.stake_amount),
            "legs": [_leg_dict(leg, role) for role, leg in (("y", self.y), ("x", self.x))],
        }


@dataclass(frozen=True)
class UnpairedLeg:
    """An open trade that is not one leg of a complete couple, and why."""

    leg: LegInput
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**_leg_dict(self.leg, self.leg.custom.get("role")), "reason": self.reason}


@dataclass(frozen=True)
class SelectedCouple:
    name: str
    y: str
    x: str
    beta: float
    half_life_hours: float
    pvalue: float


@dataclass(frozen=True)
class SelectionView:
    """The pairlist's latest selection: its couples and when they were formed (formation
    window ``[formation_start, formation_end)``, chosen at ``created``)."""

    couples: tuple[SelectedCouple, ...]
    formation_start: datetime
    formation_end: datetime
    created: datetime
    timeframe: str

    @classmethod
    def from_selection(cls, selection: Any) -> SelectionView:
        """From a :class:`statarb.core.published.Selection` (duck-typed: no pandas import)."""
        return cls(
            couples=tuple(
                SelectedCouple(c.name, c.y, c.x, float(c.beta), float(c.half_life_hours),
                               float(c.pvalue))
                for c in selection.couples),
            formation_start=selection.formation_start,
            formation_end=selection.formation_end,
            created=selection.created,
            timeframe=selection.timeframe,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "formation_start": self.formation_start.isoformat(),
            "formation_end": self.formation_end.isoformat(),
            "created": self.created.isoformat(),
            "timeframe": self.timeframe,
            "couples": [
                {"couple": c.name, "y": c.y, "x": c.x, "beta": _num(c.beta),
                 "half_life_hours": _num(c.half_life_hours), "pvalue": _num(c.pvalue)}
                for c in self.couples
            ],
        }


@dataclass(frozen=True)
class CouplesReport:
    """What ``/couples`` and ``GET /api/v1/statarb/couples`` show."""

    couples: tuple[CoupleRow, ...]
    unpaired: tuple[UnpairedLeg, ...]
    selection: SelectionView | None
    stake_currency: str
    now: datetime
    notes: tuple[str, ...] = ()  # why something is missing (no candles yet, unreadable file)

    def to_dict(self) -> dict[str, Any]:
        """The REST answer: JSON types only, NaN as null."""
        return {
            "time": self.now.isoformat(),
            "stake_currency": self.stake_currency,
            "couples": [c.to_dict() for c in self.couples],
            "unpaired": [u.to_dict() for u in self.unpaired],
            "selection": self.selection.to_dict() if self.selection else None,
            "notes": list(self.notes),
        }


ZScore = Callable[[LegInput, LegInput, float, float], float]
"""Current z-score of a couple: ``(y leg, x leg, beta, half_life in candles) -> z``."""


def build_report(
    legs: Iterable[LegInput], z_now: ZScore, *, selection: SelectionView | None,
    stake_currency: str, now: datetime, notes: Sequence[str] = (),
) -> CouplesReport:
    """Group open trades into couples by their ``couple_id`` custom data.

    A couple needs exactly two open trades with the same ``couple_id``, one per role
    (``y``, ``x``), each with a finite hedge ratio and entry z. Anything else is an
    unpaired leg with the reason (the bot's supervisor repairs such legs; this only
    reports them). ``z_now`` is called once per couple and must not raise.
    """
    groups: dict[str, list[LegInput]] = {}
    unpaired: list[UnpairedLeg] = []
    for leg in legs:
        couple_id = leg.custom.get("couple_id")
        if not isinstance(couple_id, str) or not couple_id:
            unpaired.append(UnpairedLeg(leg, "no statarb couple data (not a couple leg)"))
            continue
        problem = _leg_problem(leg)
        if problem:
            unpaired.append(UnpairedLeg(leg, f"{couple_id}: {problem}"))
            continue
        groups.setdefault(couple_id, []).append(leg)

    couples: list[CoupleRow] = []
    for couple_id, members in groups.items():
        by_role = {leg.custom["role"]: leg for leg in members}
        if len(members) == 1:
            leg = members[0]
            partner = leg.custom.get("partner") or "its partner"
            unpaired.append(UnpairedLeg(leg, f"{couple_id}: {partner} is not open"))
            continue
        if len(members) > 2 or set(by_role) != set(_ROLES):
            roles = ", ".join(sorted(str(m.custom["role"]) for m in members))
            for leg in members:
                unpaired.append(UnpairedLeg(
                    leg, f"{couple_id}: {len(members)} open trades share the couple "
                    f"(roles {roles})"))
            continue
        y, x = by_role["y"], by_role["x"]
        beta = float(y.custom["beta"])
        half_life = as_float(y.custom.get("half_life"))
        opened = min(_utc(y.open_date), _utc(x.open_date))
        couples.append(CoupleRow(
            couple_id=couple_id,
            couple=str(y.custom.get("couple") or f"{coin(y.pair)}~{coin(x.pair)}"),
            y=y, x=x, beta=beta, z_entry=float(y.custom["z_entry"]),
            z_now=z_now(y, x, beta, half_life),
            opened=opened, held=max(_utc(now) - opened, timedelta(0)),
            profit_abs=y.profit_abs + x.profit_abs,
            stake_amount=y.stake_amount + x.stake_amount,
        ))
    couples.sort(key=lambda c: (c.opened, c.couple_id))
    unpaired.sort(key=lambda u: u.leg.trade_id)
    return CouplesReport(tuple(couples), tuple(unpaired), selection, stake_currency, now,
                         tuple(notes))


def format_couples(report: CouplesReport) -> list[str]:
    """The ``/couples`` reply, in Freqtrade's Telegram Markdown: one or more messages,
    each under :data:`MAX_MESSAGE` characters, a couple never split between two."""
    stake = report.stake_currency
    count = len(report.couples)
    head = f"*statarb couples:* `{count} open`" if count else "*statarb couples:* no open couples"
    blocks = [head]
    for c in report.couples:
        blocks.append("\n".join([
            f"*{_plain(c.couple)}* `{_code(c.couple_id)}`",
            *(f"  {leg.side} `{leg.amount:g}` {_plain(leg.pair)} (#{leg.trade_id}, {role})"
              for role, leg in (("y", c.y), ("x", c.x))),
            f"  hedge ratio `{c.beta:.4f}` · z entry `{_z(c.z_entry)}` · z now `{_z(c.z_now)}`",
            f"  held `{format_held(c.held)}` · P&L `{_money(c.profit_abs, stake)}` "
            f"(`{_pct(c.profit_pct)}` of `{c.stake_amount:.2f} {stake}`)",
        ]))
    if report.unpaired:
        lines = [f"*Unpaired legs:* `{len(report.unpaired)}`"]
        for u in report.unpaired:
            leg = u.leg
            lines.append(f"  unpaired leg #{leg.trade_id} {_plain(leg.pair)} {leg.side} "
                         f"`{leg.amount:g}` P&L `{_money(leg.profit_abs, stake)}`: "
                         f"`{_code(u.reason)}`")
        blocks.append("\n".join(lines))
    blocks.append(_selection_block(report.selection))
    if report.notes:
        blocks.append("\n".join(f"_note:_ `{_code(n)}`" for n in report.notes))
    return _pack(blocks)


def with_couples_help(help_text: str) -> str:
    """Freqtrade's ``/help`` text with the ``/couples`` line added (before ``/help``'s own
    line; at the end when Freqtrade's layout has no such line). Idempotent."""
    if "*/couples:*" in help_text:
        return help_text
    at = help_text.find(_HELP_ANCHOR)
    if at < 0:
        sep = "" if not help_text or help_text.endswith("\n") else "\n"
        return f"{help_text}{sep}{COUPLES_HELP}"
    return help_text[:at] + COUPLES_HELP + help_text[at:]


def format_held(held: timedelta) -> str:
    """``3d 4h``, ``2h 05m``, ``12m``, ``<1m``: an operator reads hours, not seconds."""
    minutes = int(held.total_seconds() // 60)
    if minutes < 1:
        return "<1m"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins:02d}m"
    return f"{mins}m"


# ------------------------------------------------------------------ helpers


def _selection_block(selection: SelectionView | None) -> str:
    if selection is None:
        return "*Selected by the pairlist:* none published yet"
    lines = [
        f"*Selected by the pairlist:* `{len(selection.couples)}` "
        f"(formed `{_time(selection.formation_end)}`, formation window "
        f"`{_time(selection.formation_start)}` → `{_time(selection.formation_end)}` UTC, "
        f"chosen `{_time(selection.created)}` UTC)"
    ]
    for c in selection.couples:
        lines.append(f"  `{_code(c.name)}` hedge ratio `{c.beta:.4f}` · half-life "
                     f"`{c.half_life_hours:.1f}h` · p `{c.pvalue:.4f}`")
    if not selection.couples:
        lines.append("  no couple passed the filters")
    return "\n".join(lines)


def _pack(blocks: list[str]) -> list[str]:
    messages: list[str] = []
    current = ""
    for block in blocks:
        block = block[:MAX_MESSAGE]
        if current and len(current) + 2 + len(block) > MAX_MESSAGE:
            messages.append(current)
            current = block
        else:
            current = f"{current}\n\n{block}" if current else block
    if current:
        messages.append(current)
    return messages


def _leg_problem(leg: LegInput) -> str | None:
    """Why a leg's custom data cannot make it part of a couple, or None."""
    role = leg.custom.get("role")
    if role not in _ROLES:
        return f"custom data role={role!r} is not 'y' or 'x'"
    for key in ("beta", "z_entry"):
        if not math.isfinite(as_float(leg.custom.get(key))):
            return f"custom data {key}={leg.custom.get(key)!r} is not a number"
    return None


def _leg_dict(leg: LegInput, role: Any) -> dict[str, Any]:
    return {
        "trade_id": leg.trade_id,
        "pair": leg.pair,
        "role": role if role in _ROLES else None,
        "side": leg.side,
        "amount": _num(leg.amount),
        "stake_amount": _num(leg.stake_amount),
        "open_rate": _num(leg.open_rate),
        "current_rate": _num(leg.current_rate),
        "profit_abs": _num(leg.profit_abs),
        "open_date": leg.open_date.isoformat(),
    }


def as_float(value: Any) -> float:
    """A number from custom data or a status dict; NaN for anything that is not one."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _code(text: Any) -> str:
    """Text safe inside a Markdown code span. Freqtrade sends Telegram's legacy Markdown,
    where an unbalanced entity makes Telegram reject the whole message; inside a code span
    only a backtick ends it."""
    return str(text).replace("`", "'")


def _plain(text: Any) -> str:
    """Text safe outside a code span: without legacy Markdown's ``*``, ``_``, ````` and
    ``[``."""
    return "".join(c for c in str(text) if c not in "`*_[")


def _time(moment: datetime) -> str:
    return _utc(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _z(z: float) -> str:
    return f"{z:+.2f}" if math.isfinite(z) else "n/a"


def _money(value: float, stake: str) -> str:
    return f"{value:+.2f} {stake}" if math.isfinite(value) else "n/a (no price)"


def _pct(value: float) -> str:
    return f"{value:+.2f}%" if math.isfinite(value) else "n/a"

"""The couple ledger: what each open couple must hold, per leg.

Why a ledger: Freqtrade knows trades, the exchange knows positions, and a crash, a lost
answer, a partial fill or a liquidation can make either differ from what the couple
needs. The ledger is the third, authoritative record: for each couple, each leg's pair,
side and target amount. It is written *before* an order is sent (so a position the
exchange holds after a crash is always one the ledger expects), updated when the bot
resizes the couple on purpose (a partial first fill, a trim) and removed when the couple
is flat. :func:`statarb.core.legs.reconcile_couple` compares it with exchange truth every loop.

The ledger is plain data with a compact JSON form; where it is stored (Freqtrade's trade
database) is :mod:`statarb.ft.ledger_store`'s business.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["STAGES", "CoupleLedger", "LegTarget"]

STAGES = ("entering", "open", "exiting")
"""``entering``: written before the first leg's order, until both legs are recorded;
``open``: both legs recorded; ``exiting``: the couple's exit was decided."""


@dataclass(frozen=True)
class LegTarget:
    """One leg's target: ``amount`` is signed (negative: short), in base currency."""

    pair: str
    amount: float
    step: float = 0.0  # the market's amount step (0: unknown)

    def __post_init__(self) -> None:
        if not self.pair or not math.isfinite(self.amount) or self.amount == 0:
            raise ValueError(
                f"leg target {self.pair!r} {self.amount!r}: a pair and a non-zero finite "
                "amount are required"
            )
        if not self.step >= 0:
            raise ValueError(f"step={self.step} of {self.pair} must be >= 0")


@dataclass(frozen=True)
class CoupleLedger:
    """Targets of one couple's two legs."""

    couple_id: str
    y: LegTarget
    x: LegTarget
    stage: str = "entering"
    since: float = 0.0  # epoch seconds the ledger entry was written

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage={self.stage!r} must be one of {STAGES}")
        if self.y.pair == self.x.pair:
            raise ValueError(f"couple {self.couple_id} has the same pair on both legs")

    def leg(self, role: str) -> LegTarget:
        if role not in ("y", "x"):
            raise ValueError(f"role={role!r} must be 'y' or 'x'")
        return self.y if role == "y" else self.x

    def role_of(self, pair: str) -> str | None:
        return "y" if pair == self.y.pair else "x" if pair == self.x.pair else None

    def with_stage(self, stage: str) -> CoupleLedger:
        return replace(self, stage=stage)

    def with_targets(self, y: float, x: float) -> CoupleLedger:
        """The same couple resized on purpose (a partial fill followed, a trim)."""
        return replace(self, y=replace(self.y, amount=y), x=replace(self.x, amount=x))

    def to_json(self) -> str:
        """Compact JSON (it fits one 255-character value of Freqtrade's key-value store)."""
        return json.dumps({
            "c": self.couple_id, "s": self.stage, "t": round(self.since, 3),
            "y": [self.y.pair, self.y.amount, self.y.step],
            "x": [self.x.pair, self.x.amount, self.x.step],
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CoupleLedger:
        try:
            doc: dict[str, Any] = json.loads(text)
            return cls(
                couple_id=str(doc["c"]), stage=str(doc["s"]), since=float(doc["t"]),
                y=LegTarget(str(doc["y"][0]), float(doc["y"][1]), float(doc["y"][2])),
                x=LegTarget(str(doc["x"][0]), float(doc["x"][1]), float(doc["x"][2])),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"not a couple ledger entry: {text!r} ({exc})") from exc

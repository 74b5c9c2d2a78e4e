"""Live leg supervision: every loop, exchange truth against the couple ledger.

Why one mechanism: faults come in many shapes (a refused or lost second order, a partial
fill, a liquidation, a trim on the exchange's website, a crash at any instant, a manual
exit from FreqUI or Telegram), but each leaves the same kind of difference between what a
couple must hold (its ledger, :mod:`statarb.core.ledger`) and what the exchange holds. Every
loop, and at start-up, :meth:`LegSupervisor.check` builds each couple's
:class:`~statarb.core.legs.LegView` from the exchange's positions and the open trades, asks
the pure :func:`statarb.core.legs.reconcile_couple` what to do, and does it through
Freqtrade's own paths: an exit (``custom_exit``), a top-up or a partial exit
(``adjust_trade_position``), an adoption of an unrecorded fill (:mod:`statarb.ft.adopt`),
or a reduce-only close of a position no trade owns. A position on one of the bot's pairs
that no trade and no ledger knows (a manual order) is closed too, after two sightings.

Every action is bounded: an action still needed a loop after it was taken has failed;
it is retried after a doubling backoff (1, 2, 4 ... 60 s), and after
``statarb.live.max_close_attempts`` failures new entries stop and one
``MANUAL INTERVENTION REQUIRED`` message is sent (the retries go on). An order that is
still open is waited for, never doubled; a ghost order (open on the exchange, unknown to
Freqtrade, which would never manage it) is cancelled at once and the couple repaired with
what it filled.

Freqtrade-internal (the exchange, the trade database): hence this package. Only a
running bot has a supervisor (:class:`statarb.ft.runmode.Mode` ``trading``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from freqtrade.persistence import Trade

from statarb.core import messages
from statarb.core.ledger import CoupleLedger, LegTarget
from statarb.core.legs import (
    CUSTOM_KEYS,
    CoupleRepair,
    CoupleTicket,
    LegRecord,
    LegView,
    backoff,
    leg_tag,
    parse_leg_tag,
    position_surplus,
    reconcile_couple,
)
from statarb.ft import FREQTRADE_VERSION, ledger_store
from statarb.ft.adopt import adopt_entry
from statarb.ft.exchange import cancel_order, close_position, entry_orders, open_positions
from statarb.ft.records import record_reduction

if TYPE_CHECKING:  # the strategy that owns this helper (no import cycle at run time)
    from statarb.ft.strategy import CointPairsStrategy

__all__ = ["FREQTRADE_VERSION", "LegSupervisor"]

logger = logging.getLogger(__name__)

TOP_UP_TAG = "statarb_top_up"
STUCK_AFTER_S = 1.0
"""An exit at market the exchange answered as open, unfilled, and still holds this long
after has stalled: a leaving couple cancels it (one that filled in part at once)."""
TRIM_TAG = "statarb_trim"


@dataclass
class _Attempt:
    failures: int = 0
    last: float = 0.0  # monotonic time of the last attempt
    next_at: float = 0.0  # when the next may go
    judged: bool = True  # the last attempt's outcome has been seen


@dataclass
class LiveLegState:
    """What the supervisor remembers between loops (lost in a crash by design: the ledger
    and the exchange are the truth, this only paces the repairs)."""

    attempts: dict[str, _Attempt] = field(default_factory=dict)
    to_close: dict[int, tuple[str, str]] = field(default_factory=dict)  # trade id -> tag, why
    adjust: dict[int, tuple[float, str]] = field(default_factory=dict)  # id -> amount, tag
    surplus_seen: dict[str, float] = field(default_factory=dict)
    # trade id -> (position, trade amount) of a record difference seen last loop: a record
    # is made on the second sighting, so an exit Freqtrade is committing right now (a REST
    # force exit in its own thread) is never booked twice.
    record_seen: dict[int, tuple[float, float]] = field(default_factory=dict)
    untracked: set[str] = field(default_factory=set)
    foreign: set[str] = field(default_factory=set)
    reported: set[str] = field(default_factory=set)  # repairs already notified
    halted: str | None = None
    halted_pair: str = ""
    # The bot loop and a REST/Telegram force entry may confirm legs at the same time.
    entry_lock: Any = field(default_factory=threading.Lock)


def _held(amount: float) -> bool:
    return abs(amount) > 1e-12


def _signed(trade: Any) -> float:
    return -float(trade.amount) if trade.is_short else float(trade.amount)


def _is_stuck(trade: Any, order: Any) -> bool:
    """An open exit order at market that filled in part (its rest rests: a market order
    fills at once or not at all), or that is older than :data:`STUCK_AFTER_S`."""
    if order.ft_order_side != trade.exit_side or (order.order_type or "").lower() != "market":
        return False
    if float(order.safe_filled or 0.0) > 0:
        return True
    opened = order.order_date_utc
    return opened is not None and datetime.now(UTC) - opened >= timedelta(seconds=STUCK_AFTER_S)


def _stuck_exit(trade: Any) -> bool:
    """The trade's open orders are all stuck exits (:func:`_is_stuck`)."""
    orders = list(trade.open_orders)
    return bool(orders) and all(_is_stuck(trade, o) for o in orders)


class LegSupervisor:
    """The live half of CointPairsStrategy (see the module docstring)."""

    def __init__(self, strategy: CointPairsStrategy) -> None:
        self.s = strategy
        self.state = LiveLegState()
        self._records_seen: dict[int, tuple[float, float]] = {}
        self.ledgers: dict[str, CoupleLedger] = {}
        self._starting = False

    # ------------------------------------------------------------------ the ledger
    def _step(self, pair: str) -> float:
        market = self.s.dp.market(pair) if self.s.dp else None
        return float(((market or {}).get("precision") or {}).get("amount") or 0.0)

    def entering(self, ticket: CoupleTicket) -> None:
        """The first leg is about to be sent: record both legs' targets first."""
        ledger = CoupleLedger(
            ticket.couple_id,
            LegTarget(ticket.y, ticket.amount_y if ticket.is_long("y") else -ticket.amount_y,
                      self._step(ticket.y)),
            LegTarget(ticket.x, ticket.amount_x if ticket.is_long("x") else -ticket.amount_x,
                      self._step(ticket.x)),
            stage="entering", since=time.time(),
        )
        self._save(ledger)

    def resized(self, ticket: CoupleTicket) -> None:
        """The couple was resized before its second leg (a partial first fill)."""
        ledger = self.ledgers.get(ticket.couple_id)
        if ledger is not None:
            self._save(ledger.with_targets(
                math.copysign(ticket.amount_y, ledger.y.amount),
                math.copysign(ticket.amount_x, ledger.x.amount)))

    def stage(self, couple_id: str, stage: str) -> None:
        ledger = self.ledgers.get(couple_id)
        if ledger is not None and ledger.stage != stage:
            self._save(ledger.with_stage(stage))

    def _save(self, ledger: CoupleLedger) -> None:
        ledger_store.save(ledger)
        self.ledgers[ledger.couple_id] = ledger

    def _ledgers_from_trades(self, trades: list[Any]) -> None:
        """Couples whose trades carry their targets but have no ledger entry (opened by
        an older version, or an entry removed by hand) get one from the trades."""
        by_couple: dict[str, list[Any]] = {}
        for t in trades:
            couple_id = t.get_custom_data("couple_id")
            if couple_id and couple_id not in self.ledgers:
                by_couple.setdefault(str(couple_id), []).append(t)
        for couple_id, legs in by_couple.items():
            targets: dict[str, LegTarget] = {}
            for t in legs:
                role = t.get_custom_data("role")
                amount = float(t.get_custom_data("target_amount") or t.amount)
                targets[role] = LegTarget(t.pair, -amount if t.is_short else amount,
                                          self._step(t.pair))
                partner = t.get_custom_data("partner")
                other = "x" if role == "y" else "y"
                if other not in targets and partner:
                    size = float(t.get_custom_data("partner_amount") or 0.0)
                    beta = float(t.get_custom_data("beta") or 1.0)
                    # The partner's side: opposite for a positive hedge ratio.
                    opposite = (beta > 0) != t.is_short
                    if size > 0:
                        targets[other] = LegTarget(str(partner), -size if opposite else size,
                                                   self._step(str(partner)))
            if set(targets) == {"y", "x"}:
                self._save(CoupleLedger(couple_id, targets["y"], targets["x"], stage="open",
                                        since=time.time()))

    # ------------------------------------------------------------------ each loop
    def start(self) -> None:
        """At start-up (``bot_start``): from here the bot can act. Reconcile at once."""
        logger.info(messages.SUPERVISION_STARTED)
        self._starting = True
        try:
            self.check(at_start=True)
        finally:
            self._starting = False

    def check(self, at_start: bool = False) -> None:
        """Reconcile every couple and the untracked positions. An exchange error leaves
        everything as it is until the next loop."""
        trades = list(Trade.get_open_trades())
        try:
            positions = self._positions(trades)
        except Exception as exc:
            logger.warning("statarb: cannot read the exchange's positions this loop (%s); "
                           "again next loop", exc)
            return
        self.ledgers = ledger_store.load_all()  # the database is the truth, not memory
        self._ledgers_from_trades(trades)
        self._records_seen, self.state.record_seen = self.state.record_seen, {}
        expected: set[str] = set()
        for ledger in list(self.ledgers.values()):
            expected |= {ledger.y.pair, ledger.x.pair}
            try:
                self._reconcile(ledger, positions, trades)
            except Exception as exc:  # one couple's trouble must not stop the others
                logger.warning("statarb: reconciling %s failed this loop (%s)",
                               ledger.couple_id, exc)
        self._untracked(positions, trades, expected, at_start)
        self._maybe_resume()

    def _positions(self, trades: list[Any]) -> dict[str, float]:
        if self.s.config.get("dry_run", True):
            # Dry-run has no exchange positions: the trades are the positions.
            out: dict[str, float] = {}
            for t in trades:
                out[t.pair] = out.get(t.pair, 0.0) + _signed(t)
            return out
        return open_positions(self.s.dp)

    def _leg_trade(self, ledger: CoupleLedger, role: str, trades: list[Any]) -> Any | None:
        pair = ledger.leg(role).pair
        couple = ledger.couple_id.split("@")[0]
        for t in trades:
            if t.pair != pair:
                continue
            owner = t.get_custom_data("couple_id")
            untracked = owner is None and parse_leg_tag(t.enter_tag, pair) == (couple, role)
            if owner == ledger.couple_id or untracked:
                return t
        return None

    def _ghosts(self, ledger: CoupleLedger, role: str) -> list[dict[str, Any]]:
        """Entry orders on the exchange for a leg no trade records (live only)."""
        if self.s.config.get("dry_run", True):
            return []
        leg = ledger.leg(role)
        since = datetime.fromtimestamp(max(0.0, ledger.since), UTC) - timedelta(minutes=1)
        orders = entry_orders(self.s.dp, leg.pair, "buy" if leg.amount > 0 else "sell", since)
        known = {o.order_id for t in Trade.get_trades_proxy(pair=leg.pair) for o in t.orders}
        return [o for o in orders if str(o["id"]) not in known]

    def _view(self, ledger: CoupleLedger, role: str, positions: dict[str, float],
              trades: list[Any]) -> tuple[LegView, Any | None, list[dict[str, Any]]]:
        leg = ledger.leg(role)
        trade = self._leg_trade(ledger, role, trades)
        ghosts: list[dict[str, Any]] = []
        if trade is None:
            ghosts = self._ghosts(ledger, role)
            open_order = any(o.get("status") == "open" for o in ghosts)
            return LegView(position=positions.get(leg.pair, 0.0),
                           order_open=open_order), None, ghosts
        filled = sum(float(o.safe_filled) for o in trade.orders
                     if o.ft_order_side == trade.entry_side and o.safe_filled)
        return LegView(
            position=positions.get(leg.pair, 0.0), trade_id=trade.id,
            trade_amount=_signed(trade), entry_filled=filled,
            order_open=bool(trade.has_open_orders), order_stuck=_stuck_exit(trade),
        ), trade, ghosts

    def _reconcile(self, ledger: CoupleLedger, positions: dict[str, float],
                   trades: list[Any]) -> None:
        for _ in range(2):  # again at once after a ghost order was cancelled
            if not self._reconcile_once(ledger, positions, trades):
                return
            ledger = self.ledgers.get(ledger.couple_id, ledger)
            positions = self._positions(list(Trade.get_open_trades()))

    def _reconcile_once(self, ledger: CoupleLedger, positions: dict[str, float],
                        trades: list[Any]) -> bool:
        seen = {r: self._view(ledger, r, positions, trades) for r in ("y", "x")}
        views = {r: v[0] for r, v in seen.items()}
        top_up_failures = max(self.state.attempts.get(self._key(ledger, r, "top_up"),
                                                      _Attempt()).failures for r in ("y", "x"))
        repairs = reconcile_couple(ledger, views, top_up_failures=top_up_failures)
        asked = {self._key(ledger, r.role, r.action) for r in repairs}
        # An action taken last loop and not asked again has worked: forget its attempts
        # (not while an order is open: its outcome is not known yet; top-up failures count
        # until the couple is in ratio, so a failing top-up turns into a trim).
        if not any(r.action == "wait" for r in repairs):
            for key in [k for k in self.state.attempts
                        if k.startswith(ledger.couple_id + ":")]:
                if key not in asked and not key.endswith(":top_up"):
                    del self.state.attempts[key]
        again = False
        for repair in repairs:
            again |= self._act(ledger, repair, seen[repair.role] if repair.role else None,
                               seen)
        return again

    @staticmethod
    def _key(ledger: CoupleLedger, role: str, action: str) -> str:
        return f"{ledger.couple_id}:{role}:{action}"

    # ------------------------------------------------------------------ actions
    def _act(self, ledger: CoupleLedger, repair: CoupleRepair,
             leg: tuple[LegView, Any | None, list[dict[str, Any]]] | None,
             seen: dict[str, Any]) -> bool:
        """Take one repair; True when the couple should be reconciled again at once."""
        action = repair.action
        if action == "keep":
            for key in [k for k in self.state.attempts if k.startswith(ledger.couple_id)]:
                del self.state.attempts[key]
            if repair.targets is not None:
                self._save(ledger.with_targets(*repair.targets))
            elif ledger.stage == "entering":
                self.stage(ledger.couple_id, "open")
            return False
        if action == "forget":
            ledger_store.delete(ledger.couple_id)
            self.ledgers.pop(ledger.couple_id, None)
            for key in [k for k in self.state.attempts if k.startswith(ledger.couple_id)]:
                del self.state.attempts[key]
            return False
        assert leg is not None
        view, trade, ghosts = leg
        if action == "wait":
            return self._wait(ledger, repair, trade, ghosts)
        if action == "record":
            self._record(ledger, repair, view, trade)
            return False
        if action in ("close", "close_position"):
            # The couple is leaving: from here its targets are zero, whatever happens to
            # this close (a partial fill, a cancel, a refusal, a crash and restart).
            self.stage(ledger.couple_id, "exiting")
        if action == "adopt":
            self._adopt(ledger, repair, ghosts, seen)
        elif action == "close_position":
            self._close_untracked(repair.pair, math.copysign(repair.amount, view.position),
                                  repair.reason)
        elif action in ("close", "top_up", "trim"):
            if trade.id in self.state.to_close or trade.id in self.state.adjust:
                return False  # decided, and Freqtrade has not reached the trade yet
            if (action == "close" and self._starting and _held(view.position)
                    and not self.s.config.get("dry_run", True)):
                # Just restarted: Freqtrade's first exit check comes after its first data
                # refresh and analysis (seconds). Close the position now, reduce-only;
                # Freqtrade then records the trade's exit from the exchange's order.
                self._close_untracked(repair.pair, view.position, repair.reason,
                                      label=ledger.couple_id)
                return False
            key = self._key(ledger, repair.role, action)
            if not self._due(key, repair.pair, view.position, repair.reason):
                return False
            self._report(ledger, repair)
            if action == "close":
                tag = "partner_exit" if "partner" in repair.reason else "reconcile_close"
                self.state.to_close[trade.id] = (tag, repair.reason)
            else:
                sign = 1.0 if action == "top_up" else -1.0
                self.state.adjust[trade.id] = (sign * repair.amount,
                                               TOP_UP_TAG if sign > 0 else TRIM_TAG)
                if action == "trim" and repair.targets is not None:
                    self._save(ledger.with_targets(*repair.targets))
        return False

    def _record(self, ledger: CoupleLedger, repair: CoupleRepair, view: LegView,
                trade: Any) -> None:
        """Bring the leg's trade down to the exchange's position, on the second sighting
        of the same difference (see :attr:`LiveLegState.record_seen`)."""
        seen = (view.position, view.trade_amount)
        self.state.record_seen[trade.id] = seen
        if self._records_seen.get(trade.id) != seen:
            return
        recorded = record_reduction(self.s.dp, trade, abs(view.position))
        self.state.record_seen.pop(trade.id, None)
        logger.warning("statarb: %s trade %s recorded %g on the exchange as %s (%s)",
                       ledger.couple_id, trade.id, repair.amount, ", ".join(recorded),
                       repair.reason)

    def _report(self, ledger: CoupleLedger, repair: CoupleRepair) -> None:
        """One message per incident (not per retry)."""
        key = self._key(ledger, repair.role, repair.action)
        if key in self.state.reported:
            return
        self.state.reported.add(key)
        what = {
            "close": ("closing it at market", repair.reason),
            "top_up": (f"topping it up by {repair.amount:g}", repair.reason),
            "trim": (f"trimming it by {repair.amount:g} to keep the hedge ratio",
                     f"must follow: {repair.reason}"),
        }[repair.action]
        self.s.notify(messages.leg_incident(ledger.couple_id, repair.pair, what[1], what[0]))

    def _due(self, key: str, pair: str, amount: float, why: str) -> bool:
        """Pace an action: may it be taken now? A previous attempt still asked for has
        failed; after ``max_close_attempts`` failures entries stop and a person is called."""
        now = time.monotonic()
        attempt = self.state.attempts.get(key)
        if attempt is None:
            self.state.attempts[key] = _Attempt(last=now, judged=False)
            return True
        if not attempt.judged:
            action = key.rsplit(":", 1)[-1]
            attempt.failures += 1
            attempt.judged = True
            attempt.next_at = attempt.last + backoff(attempt.failures - 1)
            logger.warning("statarb: %s of %s still needed after attempt %d (%s); next "
                           "attempt in %.0f s", action, pair, attempt.failures, why,
                           max(0.0, attempt.next_at - now))
            what = {"close": "exit", "top_up": "top-up", "trim": "trim"}.get(action, action)
            self._escalate(pair, amount, attempt.failures, f"its {what} did not fill")
        if now < attempt.next_at:
            return False
        attempt.last, attempt.judged = now, False
        return True

    def _escalate(self, pair: str, amount: float, failures: int, error: str) -> None:
        if failures >= self.s.settings.live.max_close_attempts and self.state.halted is None:
            self.state.halted = f"{pair} {amount:+g} cannot be repaired"
            self.state.halted_pair = pair
            self.s.notify(messages.manual_intervention(pair, amount, failures, error))

    def _wait(self, ledger: CoupleLedger, repair: CoupleRepair, trade: Any | None,
              ghosts: list[dict[str, Any]]) -> bool:
        """An order of the leg is still open. Freqtrade's own: wait (its unfilledtimeout
        rules it). A ghost (on the exchange, unknown to Freqtrade: its answer was lost, or
        the bot died after sending it): nobody would ever manage it and the couple is not
        hedged while it rests, so cancel it now. True when one was cancelled: the couple
        is reconciled again at once with what it filled."""
        if trade is not None:
            logger.info("statarb: %s order of %s is still open; waiting", repair.pair,
                        ledger.couple_id)
            return False
        cancelled = False
        for ghost in ghosts:
            if ghost.get("status") != "open":
                continue
            try:
                cancel_order(self.s.dp, repair.pair, str(ghost["id"]))
            except Exception as exc:
                logger.warning("statarb: cancelling %s order %s failed (%s); again next "
                               "loop", repair.pair, ghost["id"], exc)
                continue
            cancelled = True
            self.s.notify(messages.leg_incident(
                ledger.couple_id, repair.pair,
                f"its order {ghost['id']} is open on the exchange and no trade records it",
                "cancelled it; repairing the couple with what it filled",
            ))
        return cancelled

    def _adopt(self, ledger: CoupleLedger, repair: CoupleRepair,
               ghosts: list[dict[str, Any]], seen: dict[str, Any]) -> None:
        """Record an unrecorded fill as the leg's trade, with the couple's custom data."""
        filled = [o for o in ghosts if float(o.get("filled") or 0.0) > 0]
        other = "x" if repair.role == "y" else "y"
        partner = seen[other][1]
        ticket = self._ticket(ledger)
        if not filled or (partner is None and ticket is None):
            why = ("no order of it was found" if not filled
                   else "neither its partner's trade nor the couple's ticket is known")
            self._close_untracked(repair.pair, math.copysign(repair.amount,
                                                             ledger.leg(repair.role).amount),
                                  f"the exchange holds it and {why}")
            return
        tag = leg_tag(ledger.couple_id.split("@")[0], repair.role)
        trade = adopt_entry(self.s, repair.pair, filled[-1], tag, self.s.settings.leverage)
        if ticket is not None:
            data = ticket.custom_data(repair.role)
        else:  # after a restart: the partner's record, seen from this leg
            data = {k: partner.get_custom_data(k) for k in CUSTOM_KEYS}
            data.update(role=repair.role, partner=partner.pair,
                        target_amount=abs(ledger.leg(repair.role).amount),
                        partner_amount=abs(ledger.leg(other).amount))
        for key, value in data.items():
            trade.set_custom_data(key, value)
        self.s.notify(messages.leg_incident(
            ledger.couple_id, repair.pair,
            f"order {filled[-1]['id']} filled on the exchange but was never recorded",
            f"adopted as trade {trade.id}; the couple is hedged",
        ))
        if partner is not None:
            self.stage(ledger.couple_id, "open")
            self.s.notify(messages.couple_opened(
                ledger.couple_id, ledger.y.pair, ledger.x.pair, ledger.y.amount > 0,
                ledger.x.amount > 0, float(data.get("beta") or 0.0),
                float(data.get("z_entry") or 0.0), abs(ledger.y.amount), abs(ledger.x.amount),
            ))

    def _ticket(self, ledger: CoupleLedger) -> CoupleTicket | None:
        return next((t for t in self.s.entries.tickets.values() if t.couple_id == ledger.couple_id),
                    None)

    # ------------------------------------------------------------------ untracked positions
    def _untracked(self, positions: dict[str, float], trades: list[Any], expected: set[str],
                   at_start: bool) -> None:
        legs = [LegRecord(t.id, t.pair, t.get_custom_data("couple_id"), _signed(t))
                for t in trades]
        ours = set(self.s.dp.current_whitelist()) | set(self.s.couples.pairs.values())
        surplus = {p: a for p, a in position_surplus(positions, legs).items()
                   if p not in expected}
        for pair in sorted(set(surplus) - ours - self.state.foreign):
            self.state.foreign.add(pair)
            self.s.notify(messages.leg_incident(
                "untracked", pair, f"position {surplus[pair]:+g} is not a pair this bot "
                "trades", "left alone; keep other positions off this bot's account",
            ))
        surplus = {p: a for p, a in surplus.items() if p in ours}
        self.state.untracked = set(surplus)
        for pair, amount in surplus.items():
            # Seen twice, a loop apart (or at start-up, before anything trades): an order
            # Freqtrade is committing right now (a REST force entry) is never a leftover.
            seen = self.state.surplus_seen.get(pair, 0.0)
            if at_start or (seen and (seen > 0) == (amount > 0)):
                self._close_untracked(pair, amount, "no open trade owns it")
        self.state.surplus_seen = surplus
        for key in [k for k in self.state.attempts if k.startswith("pair:")]:
            if key[5:] not in surplus and key[5:] not in expected:
                del self.state.attempts[key]

    def _close_untracked(self, pair: str, amount: float, why: str,
                         label: str = "untracked") -> None:
        """Close a position at market, reduce-only (it can never open or flip one), paced
        like every repair: a position no trade owns, or a lone leg found at start-up."""
        key = f"pair:{pair}"
        attempt = self.state.attempts.get(key)
        now = time.monotonic()
        if attempt is not None and now < attempt.next_at:
            return
        try:
            order = close_position(self.s.dp, pair, amount, self.s.settings.leverage)
        except Exception as exc:
            attempt = attempt or _Attempt()
            attempt.failures += 1
            attempt.last = now
            attempt.next_at = now + backoff(attempt.failures - 1)
            self.state.attempts[key] = attempt
            logger.warning("statarb: closing %s %+g failed (attempt %d): %s; next attempt in "
                           "%.0f s", pair, amount, attempt.failures, exc,
                           attempt.next_at - now)
            self._escalate(pair, amount, attempt.failures, str(exc))
            return
        self.s.notify(messages.leg_incident(
            label, pair, f"position {amount:+g} {why}",
            f"closed at market (reduce-only order {order.get('id')})",
        ))
        self.state.surplus_seen.pop(pair, None)
        self.state.attempts[key] = _Attempt(last=now, next_at=now + 1.0)

    def _maybe_resume(self) -> None:
        if self.state.halted is not None and not any(
                a.failures for a in self.state.attempts.values()):
            self.state.halted = None
            self.s.notify(messages.entries_resumed(f"{self.state.halted_pair} is closed"))

    # ------------------------------------------------------------------ Freqtrade callbacks
    def forced_exit(self, trade: Any) -> str | None:
        """``custom_exit``: the exit tag of a leg the supervisor closes, or None."""
        decided = self.state.to_close.pop(trade.id, None)
        return decided[0] if decided else None

    def adjustment(self, trade: Any, current_rate: float) -> tuple[float, str] | None:
        """``adjust_trade_position``: the stake of a top-up (positive) or a partial exit
        (negative) the supervisor decided, sized so Freqtrade's own amount arithmetic
        lands on the amount wanted."""
        decided = self.state.adjust.pop(trade.id, None)
        if decided is None:
            return None
        amount, tag = decided
        if amount > 0:
            stake = amount * current_rate / float(trade.leverage or 1.0) * (1 + 1e-6)
        else:  # Freqtrade exits stake * amount / stake_amount of the trade
            stake = amount * float(trade.stake_amount) / float(trade.amount) * (1 + 1e-9)
        return stake, tag

    def exit_started(self, trade: Any) -> None:
        """``confirm_trade_exit`` (every full exit: a signal, a stop, a force exit from
        REST, Telegram or FreqUI): the couple is leaving, written before the order goes."""
        couple_id = trade.get_custom_data("couple_id")
        if couple_id:
            self.ledgers = ledger_store.load_all()
            self.stage(str(couple_id), "exiting")

    def cancel_exit(self, trade: Any, order: Any) -> bool:
        """``check_exit_timeout``: cancel a stuck exit at market of a leaving couple's leg
        (the reconciler then closes the rest in the same loop)."""
        couple_id = trade.get_custom_data("couple_id")
        ledger = self.ledgers.get(str(couple_id)) if couple_id else None
        return ledger is not None and ledger.stage == "exiting" and _is_stuck(trade, order)

    def entry_refusal(self, pairs: set[str]) -> tuple[tuple[str, ...], str | None]:
        """(untracked pairs among ``pairs``, why entries are halted) for a first leg."""
        return tuple(sorted(pairs & self.state.untracked)), self.state.halted

    def untracked_pairs(self) -> set[str]:
        return set(self.state.untracked)

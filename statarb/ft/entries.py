"""A couple's two legs entering as one trade through Freqtrade's single-pair callbacks.

Why here: Freqtrade asks about one leg at a time (``custom_stake_amount``,
``confirm_trade_entry``, ``order_filled``). The first leg it reaches sizes both legs once
(a :class:`~statarb.core.legs.CoupleTicket`, keyed by couple and signal candle) and may open
only if the second surely can (:func:`statarb.core.legs.first_leg_refusal`); the second opens
only after the first, at the ticket's amount, and at most once
(:func:`statarb.core.legs.second_leg_refusal`). Live, the second leg follows what the first
really filled, and the couple's ledger is written before the first order is sent. When
both legs have filled the couple's data goes on each trade; when both have closed, the
couple's combined P&L is reported. Freqtrade's trade database and wallets are read, hence
this package.
"""

from __future__ import annotations

import contextlib
import logging
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from freqtrade.persistence import Trade

from statarb.core import messages
from statarb.core.capital import couple_notional, entry_vol
from statarb.core.legs import (
    CoupleTicket,
    amount_mismatch,
    first_leg_refusal,
    leg_tag,
    parse_leg_tag,
    partial_entry,
    second_leg_refusal,
)
from statarb.core.regime import Regime
from statarb.core.sizing import size_legs
from statarb.ft import FREQTRADE_VERSION
from statarb.ft.markets import leg_limits

if TYPE_CHECKING:  # the strategy that owns this helper (no import cycle at run time)
    from statarb.ft.strategy import CointPairsStrategy

__all__ = ["FREQTRADE_VERSION", "CoupleEntries"]

logger = logging.getLogger(__name__)


class CoupleEntries:
    """Tickets, leg confirmations and fills of one strategy instance."""

    def __init__(self, strategy: CointPairsStrategy) -> None:
        self.s = strategy
        self.tickets: dict[tuple[str, pd.Timestamp], CoupleTicket] = {}
        self._entered: dict[str, set[str]] = {}  # couple id -> roles filled
        self._closed: dict[str, list[tuple[str, str, float]]] = {}  # couple id -> legs closed

    def ticket_key(self, couple: str, when: datetime) -> tuple[str, pd.Timestamp]:
        """Tickets are keyed by couple and signal candle, the same for both legs."""
        candle = pd.Timedelta(self.s.timeframe)
        return couple, pd.Timestamp(when).floor(candle) - candle

    # ------------------------------------------------------------------ sizing
    def ticket(self, pair: str, entry_tag: str | None, current_time: datetime,
               current_rate: float, proposed_stake: float) -> CoupleTicket | None:
        """The couple entry behind a leg's signal, sized once for both legs."""
        parsed = parse_leg_tag(entry_tag, pair)
        if parsed is None:
            return None
        couple, role = parsed
        s, couples = self.s, self.s.couples
        plan = couples.plan()
        row = couples.signal_row(current_time)
        key = self.ticket_key(couple, current_time)
        if key in self.tickets:
            return self.tickets[key]
        trip = plan.by_entry.get((couple, row))
        if trip is None:
            logger.warning("statarb: no planned entry for %s at %s", couple, current_time)
            return None
        index = couples.universe.index
        ticket = CoupleTicket(
            couple=couple, y=couples.pairs[trip.y], x=couples.pairs[trip.x], side=trip.side,
            alpha=trip.alpha, beta=trip.beta, half_life=trip.half_life, z_entry=trip.z_entry,
            signal_time=index[row].to_pydatetime(),
            entry_time=index[row + 1].to_pydatetime() if row + 1 < len(index)
            else pd.Timestamp(current_time).floor(pd.Timedelta(s.timeframe)).to_pydatetime(),
        )
        regime_code = couples.regime[row] if couples.regime is not None else math.nan
        regime = Regime(int(regime_code)) if math.isfinite(regime_code) else Regime.NORMAL
        ticket.regime = regime.name
        partner = ticket.pair(ticket.partner_role(role))
        prices = {pair: current_rate, partner: couples.price_now(partner, current_time)}
        ticket.price_y, ticket.price_x = prices[ticket.y], prices[ticket.x]
        notional = self._notional(trip, key, proposed_stake, s.regime_multiplier(regime))
        sizes = size_legs(
            notional, trip.beta, ticket.price_y, ticket.price_x,
            leg_limits(s.dp.market(ticket.y) or {}, s.config),
            leg_limits(s.dp.market(ticket.x) or {}, s.config),
        )
        ticket.amount_y, ticket.amount_x, ticket.ratio_error = (
            sizes.amount_y, sizes.amount_x, sizes.ratio_error,
        )
        if not sizes.ok:
            ticket.refused = sizes.skip_reason
            logger.info("statarb: skip %s at %s: %s", couple, current_time, sizes.skip_reason)
        # Tickets live a day: long enough for a slow live fill to find its ticket.
        oldest = key[1] - pd.Timedelta(days=1)
        self.tickets = {k: v for k, v in self.tickets.items() if k[1] >= oldest}
        self.tickets[key] = ticket
        return ticket

    def _notional(self, trip: Any, key: tuple[str, pd.Timestamp], proposed_stake: float,
                  multiplier: float) -> float:
        """Both legs' notional by the configured rule
        (:func:`statarb.core.capital.couple_notional`), from what Freqtrade's wallet and
        trade count say now."""
        s = self.s
        capital = s.settings.capital
        if capital.sizing == "slots":  # Freqtrade's proposal is all it needs
            return couple_notional(capital, multiplier=multiplier,
                                   leverage=s.settings.leverage, proposed_stake=proposed_stake,
                                   available=0.0, total=0.0, entering=1, free_slots=1)
        universe = s.couples.universe
        row = trip.entry_row
        entering = sum(1 for _, r in s.couples.plan().by_entry if r == row) - sum(
            1 for c, when in self.tickets if when == key[1] and c != key[0])
        pending_stake, pending_slots = self.pending(key)
        vol = entry_vol(capital, universe.closes[:, universe.col(trip.y)],
                        universe.closes[:, universe.col(trip.x)], trip.beta, row,
                        pd.Timedelta(s.timeframe))
        return couple_notional(
            capital, multiplier=multiplier, leverage=s.settings.leverage,
            proposed_stake=proposed_stake,
            available=float(s.wallets.get_available_stake_amount()) - pending_stake,
            total=float(s.wallets.get_total_stake_amount()), entering=entering,
            free_slots=(2 * s.max_couples - Trade.get_open_trade_count() - pending_slots) // 2,
            beta=trip.beta, daily_vol=vol,
        )

    def pending(self, key: tuple[str, pd.Timestamp]) -> tuple[float, int]:
        """Stake and trade slots promised to second legs not placed yet: other couples of
        this candle whose first leg is open.

        Freqtrade reaches the pairs of a candle in whitelist order, so another couple's
        first leg can come between a couple's two legs; sized on the wallet alone, it
        would take the stake or the slot the open first leg's partner needs, and leave
        that leg alone. Both are held back for it, as if each couple entered at once.
        """
        stake, slots = 0.0, 0
        for (couple, when), ticket in self.tickets.items():
            if when != key[1] or couple == key[0] or ticket.refused or \
                    len(ticket.accepted) != 1:
                continue
            role = ticket.partner_role(ticket.accepted[0])
            stake += ticket.amount(role) * ticket.price(role) / self.s.settings.leverage
            slots += 1
        return stake, slots

    def stake(self, pair: str, entry_tag: str | None, current_time: datetime,
              current_rate: float, proposed_stake: float, leverage: float) -> float:
        """``custom_stake_amount``: the leg's share of its ticket (0: do not open)."""
        ticket = self.ticket(pair, entry_tag, current_time, current_rate, proposed_stake)
        if ticket is None or ticket.refused:
            return 0.0
        role = "y" if pair == ticket.y else "x"
        if ticket.accepted and self.s.mode.trading:
            self._follow_first_fill(ticket, role)
            if ticket.refused:
                return 0.0
        # A hair above the target so Freqtrade's truncation to precision lands on it.
        return ticket.amount(role) * current_rate / leverage * (1 + 1e-9)

    def _follow_first_fill(self, ticket: CoupleTicket, role: str) -> None:
        """Live: size the second leg to what the first leg really filled.

        From half the target the partner is resized (hedge ratio kept, the ledger first);
        below, the couple is abandoned and the supervisor closes the lone part next loop.
        """
        s = self.s
        first_role = ticket.partner_role(role)
        first = next(iter(Trade.get_trades_proxy(pair=ticket.pair(first_role), is_open=True)),
                     None)
        target = ticket.amount(first_role)
        if first is None or first.amount >= target * (1 - 1e-9):
            return
        market = s.dp.market(ticket.pair(role)) or {}
        step = float((market.get("precision") or {}).get("amount") or 0.0) or 1e-12
        plan = partial_entry(target, float(first.amount), ticket.amount(role), step)
        fill = f"{plan.fill_ratio:.0%}"
        if plan.action == "resize_partner":
            if first_role == "y":
                ticket.amount_y, ticket.amount_x = float(first.amount), plan.partner_amount
            else:
                ticket.amount_x, ticket.amount_y = float(first.amount), plan.partner_amount
            if s.supervisor is not None:
                s.supervisor.resized(ticket)
            s.notify(messages.leg_incident(
                ticket.couple_id, first.pair, f"filled {fill} of its target",
                f"sizing {ticket.pair(role)} to {plan.partner_amount:g} (hedge ratio kept)",
            ))
        else:
            ticket.refused = f"first leg filled only {fill}"
            s.notify(messages.leg_incident(
                ticket.couple_id, first.pair, f"filled only {fill} of its target",
                f"not opening {ticket.pair(role)}; closing the filled part",
            ))

    # ------------------------------------------------------------------ confirmation
    def confirm(self, pair: str, amount: float, rate: float, current_time: datetime,
                entry_tag: str | None) -> bool:
        """``confirm_trade_entry`` of a leg. The bot loop and a REST/Telegram force entry
        may confirm legs at the same time: one decision at a time, so a leg is never
        accepted twice."""
        parsed = parse_leg_tag(entry_tag, pair)
        if parsed is None:
            return True  # not a couple leg (a manual force entry): Freqtrade's business
        live = self.s.supervisor
        with live.state.entry_lock if live else contextlib.nullcontext():
            return self._confirm_leg(pair, amount, rate, current_time, *parsed)

    def _confirm_leg(self, pair: str, amount: float, rate: float, current_time: datetime,
                     couple: str, role: str) -> bool:
        s = self.s
        ticket = self.tickets.get(self.ticket_key(couple, current_time))
        if ticket is None:
            logger.info("statarb: refuse %s leg of %s: no ticket", role, couple)
            return False
        partner_role = ticket.partner_role(role)
        partner = ticket.pair(partner_role)
        step = (s.dp.market(pair) or {}).get("precision", {}).get("amount") or 0.0
        if s.mode.solo_legs:  # each leg follows the plan alone (Freqtrade's bias checks)
            reason = ticket.refused or amount_mismatch(ticket, role, amount, step)
        elif ticket.accepted:  # second leg
            reason = second_leg_refusal(ticket, role, amount, step)
            if reason is None and not Trade.get_trades_proxy(pair=partner, is_open=True):
                # The first leg failed or was closed since: a second leg now would be a
                # new lone leg.
                reason = ticket.refused = "the first leg is no longer open"
        else:
            reason = ticket.refused or amount_mismatch(ticket, role, amount, step)
            if reason is None:
                reason = self._first_leg_refusal(ticket, pair, partner, partner_role,
                                                 amount, rate)
        if reason:
            if not ticket.accepted:
                ticket.refused = reason
            logger.info("statarb: refuse %s leg of %s at %s: %s", role, couple,
                        current_time, reason)
            return False
        ticket.accepted.append(role)
        if len(ticket.accepted) == 1 and s.supervisor is not None:
            # Both legs' targets are in the trade database before the first order is sent.
            s.supervisor.entering(ticket)
        return True

    def _first_leg_refusal(self, ticket: CoupleTicket, pair: str, partner: str,
                           partner_role: str, amount: float, rate: float) -> str | None:
        s = self.s
        needed = (amount * rate + ticket.amount(partner_role) * ticket.price(partner_role)
                  ) / s.settings.leverage
        partner_side = "long" if ticket.is_long(partner_role) else "short"
        untracked, halted = (s.supervisor.entry_refusal({pair, partner}) if s.supervisor
                             else ((), None))
        pending_stake, pending_slots = self.pending(
            self.ticket_key(ticket.couple, ticket.entry_time))
        return first_leg_refusal(
            untracked=untracked,
            halted=halted,
            free_slots=int(s.config["max_open_trades"]) - Trade.get_open_trade_count()
            - pending_slots,
            partner_open=bool(Trade.get_trades_proxy(pair=partner, is_open=True)),
            partner_locked=s.is_pair_locked(partner, candle_date=ticket.signal_time,
                                            side=partner_side),
            partner_signal=self.has_signal(partner, ticket, partner_role),
            stake_available=s.wallets.get_available_stake_amount() - pending_stake
            if s.wallets else math.inf,
            stake_needed=needed,
        )

    def has_signal(self, pair: str, ticket: CoupleTicket, role: str) -> bool:
        """The partner is being traded up to now and carries this couple's signal.

        Live, the partner's last analyzed candle is the signal candle: its signal and tag
        are checked. In backtesting, Freqtrade advances each pair's analyzed data when it
        reaches that pair within the candle, so a partner not reached yet shows the candle
        before; its signal comes from the same planned trip, and a pair Freqtrade does not
        trade at this time (no data yet) shows nothing and is refused.
        """
        s = self.s
        frame, _ = s.dp.get_analyzed_dataframe(pair, s.timeframe)
        if frame is None or frame.empty:
            return False
        last = frame.iloc[-1]
        signal_time = pd.Timestamp(ticket.signal_time)
        last_time = pd.Timestamp(last["date"])
        if s.mode.simulated and last_time == signal_time - pd.Timedelta(s.timeframe):
            return True
        column = "enter_long" if ticket.is_long(role) else "enter_short"
        return (
            last_time == signal_time
            and last.get(column) == 1
            and last.get("enter_tag") == leg_tag(ticket.couple, role)
        )

    # ------------------------------------------------------------------ fills
    def filled(self, trade: Any, order: Any) -> None:
        """``order_filled``: an entry records the couple on its trade, an exit may close
        the couple."""
        if order.ft_order_side == trade.exit_side:
            self._leg_closed(trade)
            return
        if trade.get_custom_data("couple_id"):
            return
        parsed = parse_leg_tag(trade.enter_tag, trade.pair)
        if parsed is None:
            return
        couple, role = parsed
        ticket = self.tickets.get(self.ticket_key(couple, trade.open_date_utc))
        if ticket is None:
            logger.warning("statarb: filled %s leg of %s without a ticket", role, couple)
            return
        self.record(trade, ticket, role)

    def record(self, trade: Any, ticket: CoupleTicket, role: str) -> None:
        """A leg's entry filled: store the couple on its trade; both legs in: report it."""
        for key, value in ticket.custom_data(role).items():
            trade.set_custom_data(key, value)
        roles = self._entered.setdefault(ticket.couple_id, set())
        roles.add(role)
        if roles == {"y", "x"}:
            del self._entered[ticket.couple_id]
            if self.s.supervisor is not None:
                self.s.supervisor.stage(ticket.couple_id, "open")
            self.s.notify(messages.couple_opened(
                ticket.couple_id, ticket.y, ticket.x, ticket.is_long("y"), ticket.is_long("x"),
                ticket.beta, ticket.z_entry, ticket.amount_y, ticket.amount_x,
            ))

    def _leg_closed(self, trade: Any) -> None:
        """When both legs of a couple are closed, report the couple's combined P&L."""
        couple_id = trade.get_custom_data("couple_id")
        if couple_id is None or trade.is_open:
            return
        legs = self._closed.setdefault(couple_id, [])
        legs.append((trade.pair, str(trade.exit_reason), float(trade.close_profit_abs or 0.0)))
        if len(legs) == 2:
            del self._closed[couple_id]
            reasons = {r for _, r, _ in legs}
            reason = reasons.pop() if len(reasons) == 1 else ", ".join(
                f"{p.split('/')[0]} {r}" for p, r, _ in legs
            )
            self.s.notify(messages.couple_closed(
                couple_id, reason, sum(v for _, _, v in legs), self.s.config["stake_currency"]
            ))

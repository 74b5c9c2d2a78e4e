"""Leg decisions and strategy settings (pure, no Freqtrade)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from statarb.core.legs import (
    CoupleTicket,
    first_leg_refusal,
    leg_tag,
    lone_leg,
    parse_leg_tag,
    second_leg_refusal,
    x_is_long,
)
from statarb.core.settings import StrategySettings


def test_one_tag_per_couple_and_the_role_from_the_pair() -> None:
    eth, btc = "ETH/USDT:USDT", "BTC/USDT:USDT"
    assert leg_tag("ETH~BTC", "y") == leg_tag("ETH~BTC", "x") == "ETH~BTC"
    assert parse_leg_tag("ETH~BTC", eth) == ("ETH~BTC", "y")
    assert parse_leg_tag("ETH~BTC", btc) == ("ETH~BTC", "x")
    # 1000PEPE-style bases are whole coins, not prefixes
    assert parse_leg_tag("1000PEPE~DOGE", "1000PEPE/USDT:USDT") == ("1000PEPE~DOGE", "y")
    # tags of earlier versions still identify their leg, and only the right one
    assert parse_leg_tag("ETH~BTC:x", btc) == ("ETH~BTC", "x")
    assert parse_leg_tag("ETH~BTC:y", btc) is None
    for tag in (None, "", "force_entry", "ETH~BTC:z", "ETHBTC:y", "ETH~", "~BTC", "A~B~C"):
        assert parse_leg_tag(tag, eth) is None, tag
    assert parse_leg_tag("ETH~BTC", "SOL/USDT:USDT") is None  # not a leg of that couple
    with pytest.raises(ValueError, match="role='z'"):
        leg_tag("ETH~BTC", "z")
    with pytest.raises(ValueError, match="couple='ETHBTC'"):
        leg_tag("ETHBTC", "y")


def test_leg_directions() -> None:
    assert x_is_long(-1, 0.8) and not x_is_long(1, 0.8)  # positive beta: opposite legs
    assert x_is_long(1, -0.8) and not x_is_long(-1, -0.8)  # negative beta: same direction


def _ticket(**kw) -> CoupleTicket:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    values = dict(couple="ETH~BTC", y="ETH/USDT:USDT", x="BTC/USDT:USDT", side=1, alpha=0.1,
                  beta=0.9, half_life=10.0, z_entry=-2.3, signal_time=t, entry_time=t,
                  amount_y=1.0, amount_x=0.01)
    values.update(kw)
    return CoupleTicket(**values)


def test_first_leg_needs_everything_for_the_second() -> None:
    ok = dict(free_slots=2, partner_open=False, partner_locked=False, partner_signal=True,
              stake_available=100.0, stake_needed=100.0)
    assert first_leg_refusal(**ok) is None
    for change, words in [
        ({"free_slots": 1}, "needs 2"),
        ({"partner_open": True}, "already has an open trade"),
        ({"partner_locked": True}, "locked"),
        ({"partner_signal": False}, "no entry signal"),
        ({"stake_needed": 100.01}, "100.01"),
    ]:
        assert words in first_leg_refusal(**{**ok, **change})


def test_second_leg_only_after_the_first_and_at_the_hedged_amount() -> None:
    t = _ticket()
    assert "not accepted" in second_leg_refusal(t, "x", 0.01, 0.001)
    t.accepted.append("y")
    assert second_leg_refusal(t, "x", 0.01, 0.001) is None
    assert "differs from the hedged amount" in second_leg_refusal(t, "x", 0.012, 0.001)
    t.refused = "rounding"
    assert "couple refused" in second_leg_refusal(t, "x", 0.01, 0.001)


def test_ticket_custom_data_names_couple_role_and_partner() -> None:
    t = _ticket()
    data = t.custom_data("x")
    assert data["couple_id"] == "ETH~BTC@2025-01-01T00:00"
    assert (data["role"], data["partner"]) == ("x", "ETH/USDT:USDT")
    assert (data["target_amount"], data["partner_amount"]) == (0.01, 1.0)
    assert t.is_long("y") and not t.is_long("x")


def test_lone_leg_waits_for_the_partner_on_the_entry_candle() -> None:
    assert not lone_leg(partner_open=False, opened_this_candle=True)
    assert lone_leg(partner_open=False, opened_this_candle=False)
    assert not lone_leg(partner_open=True, opened_this_candle=False)


# ---------------------------------------------------------------- settings
H = pd.Timedelta(hours=1)


def test_settings_defaults_and_units() -> None:
    s = StrategySettings.from_config({}, H)
    assert (s.walk_forward.formation, s.walk_forward.reform_every) == (1440, 24)
    assert s.leverage == 1.0 and s.regime_pair == "BTC/USDT:USDT"
    s = StrategySettings.from_config({"statarb": {"walk_forward": {"formation_days": 30}}},
                                     pd.Timedelta(minutes=30))
    assert s.walk_forward.formation == 30 * 48


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"selektion": {}}, r"unknown key\(s\) \['selektion'\]"),
        ({"walk_forward": {"days": 3}}, r"unknown walk_forward key\(s\) \['days'\]"),
        ({"signals": {"entry_z": 2}}, "strategy parameters"),
        ({"selection": {"max_pvalue": 2}}, "max_pvalue=2"),
        ({"leverage": 10}, "leverage=10.0"),
        ({"regime": {"multipliers": {}}}, "regime_high_mult"),
        ({"regime": {"bounds": [0.5, 0.2, 0.9]}}, "bounds"),
    ],
)
def test_settings_reject_bad_values_by_name(section: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StrategySettings.from_config({"statarb": section}, H)


def test_notification_texts_name_the_couple_and_what_happened() -> None:
    from statarb.core import messages

    opened = messages.couple_opened("ETH~BTC@2025-01-01T00:00", "ETH/USDT:USDT",
                                    "BTC/USDT:USDT", True, False, 0.9, -2.31, 1.0, 0.01)
    assert opened == ("statarb couple opened ETH~BTC@2025-01-01T00:00: long 1 ETH/USDT:USDT, "
                      "short 0.01 BTC/USDT:USDT; beta 0.9000, z -2.31")
    closed = messages.couple_closed("ETH~BTC@x", "z_exit", -1.234, "USDT")
    assert closed == "statarb couple closed ETH~BTC@x: z_exit; combined P&L of both legs -1.23 USDT"
    assert messages.leg_incident("C@t", "ETH/USDT:USDT", "is alone", "closing it").startswith(
        "statarb leg incident C@t: ETH/USDT:USDT is alone")
    assert "x0.25" in messages.regime_changed("HIGH", "EXTREME", 0.25, False)
    assert "blocked" in messages.regime_changed("HIGH", "EXTREME", 0.25, True)


# ---------------------------------------------------------------- live incidents
def test_partial_entry_keeps_the_hedge_ratio_or_abandons() -> None:
    from statarb.core.legs import partial_entry

    kept = partial_entry(target=10.0, filled=6.0, partner_target=3.0, partner_step=0.01)
    assert (kept.action, kept.fill_ratio, kept.partner_amount) == ("resize_partner", 0.6, 1.8)
    at = partial_entry(target=10.0, filled=5.0, partner_target=3.0, partner_step=0.1)
    assert (at.action, at.partner_amount) == ("resize_partner", 1.5)
    gone = partial_entry(target=10.0, filled=1.0, partner_target=3.0, partner_step=0.01)
    assert (gone.action, gone.partner_amount) == ("abandon", 0.0)
    # Rounded down to the step: never more hedge than the filled leg supports.
    assert partial_entry(10.0, 7.77, 3.0, 0.1).partner_amount == 2.3
    with pytest.raises(ValueError, match="target=0"):
        partial_entry(0.0, 1.0, 3.0, 0.1)


def test_backoff_doubles_and_is_capped() -> None:
    from statarb.core.legs import backoff

    assert [backoff(i) for i in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(0, base_s=0.5) == 0.5
    with pytest.raises(ValueError, match="attempt=-1"):
        backoff(-1)


def test_position_surplus_is_what_no_trade_owns() -> None:
    from statarb.core.legs import LegRecord, position_surplus

    legs = [
        LegRecord(1, "WLD/USDT:USDT", "WLD~ARB@t", 1210.0),
        LegRecord(2, "ARB/USDT:USDT", "WLD~ARB@t", -3842.7),
        LegRecord(3, "LTC/USDT:USDT", "LTC~XRP@t", 2.0),
    ]
    positions = {
        "WLD/USDT:USDT": 2420.0,  # re-entered on top of a crash leftover: half is surplus
        "ARB/USDT:USDT": -3842.7,  # owned exactly
        "LTC/USDT:USDT": 1.0,  # reduced on the exchange: not a surplus (lone-leg rule)
        "ADA/USDT:USDT": -30.0,  # a ghost or a crash leg: all of it
        "DOT/USDT:USDT": 0.0,
    }
    assert position_surplus(positions, legs) == {"WLD/USDT:USDT": 1210.0,
                                                "ADA/USDT:USDT": -30.0}
    # A position on the other side of its trade is never "closed" beyond what it holds.
    flipped = position_surplus({"LTC/USDT:USDT": -1.0}, [LegRecord(3, "LTC/USDT:USDT", None,
                                                                   0.5)])
    assert flipped == {"LTC/USDT:USDT": -1.0}
    assert position_surplus({}, legs) == {}


def test_a_leg_is_sent_once_per_ticket() -> None:
    t = _ticket()
    t.accepted.extend(["y", "x"])  # the x order failed after being sent
    assert "sent already" in second_leg_refusal(t, "x", 0.01, 0.001)


def test_first_leg_refused_on_untracked_positions_and_when_halted() -> None:
    ok = dict(free_slots=2, partner_open=False, partner_locked=False, partner_signal=True,
              stake_available=100.0, stake_needed=100.0)
    assert "no trade owns on WLD/USDT:USDT" in first_leg_refusal(
        **ok, untracked=("WLD/USDT:USDT",))
    assert "new entries are stopped: WLD +1210 cannot be closed" in first_leg_refusal(
        **ok, halted="WLD +1210 cannot be closed")


def test_live_settings_defaults_and_bad_values() -> None:
    live = StrategySettings.from_config({}, H).live
    assert (live.error_retry_secs, live.max_close_attempts) == (None, 5)
    live = StrategySettings.from_config(
        {"statarb": {"live": {"error_retry_secs": 3, "max_close_attempts": 2}}}, H).live
    assert (live.error_retry_secs, live.max_close_attempts) == (3, 2)
    for section, match in [
        ({"retry": 1}, r"unknown live key\(s\) \['retry'\]"),
        ({"error_retry_secs": 0.5}, "error_retry_secs=0.5 must be between 1 and 30"),
        ({"max_close_attempts": 0}, "max_close_attempts=0 must be a whole number"),
        ({"max_close_attempts": 2.5}, "max_close_attempts=2.5"),
    ]:
        with pytest.raises(ValueError, match=match):
            StrategySettings.from_config({"statarb": {"live": section}}, H)


def test_manual_intervention_message_names_coin_amount_and_what_goes_on() -> None:
    from statarb.core import messages

    text = messages.manual_intervention("WLD/USDT:USDT", -1210.0, 5, "Internal error")
    assert text.startswith("statarb MANUAL INTERVENTION REQUIRED: cannot close short 1210 "
                           "WLD/USDT:USDT after 5 attempts (Internal error)")
    assert "new entries are stopped" in text and "retries go on" in text
    assert messages.entries_resumed("WLD/USDT:USDT is closed") == (
        "statarb entries resumed: WLD/USDT:USDT is closed")

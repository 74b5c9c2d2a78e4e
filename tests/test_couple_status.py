"""The /couples status as plain data: grouping legs into couples and the reply's text.

No Freqtrade here (statarb.core.couple_status is pure); tests/test_telegram.py sends /couples
through Freqtrade's real Telegram bot and REST API.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from statarb.core.couple_status import (
    COUPLES_HELP,
    MAX_MESSAGE,
    CouplesReport,
    LegInput,
    SelectedCouple,
    SelectionView,
    build_report,
    format_couples,
    format_held,
    with_couples_help,
)

NOW = datetime(2025, 11, 7, 5, 30, tzinfo=UTC)
OPENED = datetime(2025, 11, 7, 1, 0, 12, tzinfo=UTC)


def _leg(trade_id: int, pair: str, *, short: bool, amount: float, stake: float,
         profit: float, custom: dict[str, Any] | None, opened: datetime = OPENED) -> LegInput:
    return LegInput(trade_id=trade_id, pair=pair, is_short=short, amount=amount,
                    stake_amount=stake, profit_abs=profit, open_rate=1.0, current_rate=1.1,
                    open_date=opened, custom=custom or {})


def _custom(couple_id: str, role: str, partner: str, **extra: Any) -> dict[str, Any]:
    couple = couple_id.split("@")[0]
    return {"couple": couple, "couple_id": couple_id, "role": role, "partner": partner,
            "side": -1, "alpha": 0.1, "beta": 1.2345, "half_life": 6.0, "z_entry": 2.31,
            "signal_time": "2025-11-07T00:00:00+00:00", **extra}


def _couple_legs() -> list[LegInput]:
    cid = "WLD~ARB@2025-11-07T01:00"
    # Enter tags are not an input at all: grouping is by the custom data's couple_id.
    return [
        _leg(7, "ARB/USDT:USDT", short=False, amount=812.0, stake=101.5, profit=-0.75,
             custom=_custom(cid, "x", "WLD/USDT:USDT"), opened=OPENED + timedelta(seconds=3)),
        _leg(6, "WLD/USDT:USDT", short=True, amount=160.0, stake=98.25, profit=2.5,
             custom=_custom(cid, "y", "ARB/USDT:USDT")),
    ]


def _selection() -> SelectionView:
    return SelectionView(
        couples=(SelectedCouple("WLD~ARB", "WLD/USDT:USDT", "ARB/USDT:USDT", 1.2345, 6.0,
                                0.0012),
                 SelectedCouple("SOL~ETH", "SOL/USDT:USDT", "ETH/USDT:USDT", 0.91, 11.5,
                                0.03)),
        formation_start=datetime(2025, 9, 8, 1, tzinfo=UTC),
        formation_end=datetime(2025, 11, 7, 1, tzinfo=UTC),
        created=datetime(2025, 11, 7, 1, 2, tzinfo=UTC),
        timeframe="1h",
    )


def _report(legs: list[LegInput], z: float = -1.05, **kw: Any) -> CouplesReport:
    calls: list[tuple[str, str, float, float]] = []

    def z_now(y: LegInput, x: LegInput, beta: float, half_life: float) -> float:
        calls.append((y.pair, x.pair, beta, half_life))
        return z

    report = build_report(legs, z_now, selection=kw.pop("selection", _selection()),
                          stake_currency="USDT", now=NOW, **kw)
    report.__dict__.setdefault("_calls", calls)  # frozen dataclass: for the test only
    return report


def _markdown_ok(text: str) -> bool:
    """Telegram legacy Markdown: code spans balanced, and outside them balanced * and _."""
    if text.count("`") % 2:
        return False
    outside = re.sub(r"`[^`]*`", "", text)
    return outside.count("*") % 2 == 0 and outside.count("_") % 2 == 0 and "[" not in outside


# -- grouping --------------------------------------------------------------------------------


def test_legs_pair_by_couple_id_with_combined_pnl_of_both_legs() -> None:
    legs = _couple_legs()
    report = _report(legs)
    (couple,) = report.couples
    assert report.unpaired == ()
    assert couple.couple == "WLD~ARB" and couple.couple_id == "WLD~ARB@2025-11-07T01:00"
    assert (couple.y.pair, couple.y.side, couple.y.amount) == ("WLD/USDT:USDT", "short", 160.0)
    assert (couple.x.pair, couple.x.side, couple.x.amount) == ("ARB/USDT:USDT", "long", 812.0)
    assert couple.beta == 1.2345 and couple.z_entry == 2.31 and couple.z_now == -1.05
    assert report._calls == [("WLD/USDT:USDT", "ARB/USDT:USDT", 1.2345, 6.0)]
    assert couple.profit_abs == pytest.approx(2.5 - 0.75)
    assert couple.stake_amount == pytest.approx(98.25 + 101.5)
    assert couple.profit_pct == pytest.approx(100 * 1.75 / 199.75)
    assert couple.opened == OPENED and couple.held == NOW - OPENED


def test_every_trade_that_is_not_half_of_a_couple_is_an_unpaired_leg() -> None:
    y, x = _couple_legs()[1], _couple_legs()[0]
    lone = _leg(9, "SOL/USDT:USDT", short=False, amount=3.0, stake=50.0, profit=1.0,
                custom=_custom("SOL~ETH@2025-11-06T10:00", "y", "ETH/USDT:USDT"))
    manual = _leg(10, "BTC/USDT:USDT", short=False, amount=0.01, stake=60.0, profit=0.0,
                  custom=None)
    broken = _leg(11, "DOGE/USDT:USDT", short=True, amount=100.0, stake=20.0, profit=0.0,
                  custom=_custom("DOGE~XRP@2025-11-06T10:00", "y", "XRP/USDT:USDT",
                                 beta="oops"))
    no_role = _leg(12, "XRP/USDT:USDT", short=False, amount=10.0, stake=20.0, profit=0.0,
                   custom=_custom("DOGE~XRP@2025-11-06T10:00", "z", "DOGE/USDT:USDT"))
    report = _report([y, x, lone, manual, broken, no_role])
    assert [c.couple_id for c in report.couples] == ["WLD~ARB@2025-11-07T01:00"]
    reasons = {u.leg.trade_id: u.reason for u in report.unpaired}
    assert reasons == {
        9: "SOL~ETH@2025-11-06T10:00: ETH/USDT:USDT is not open",
        10: "no statarb couple data (not a couple leg)",
        11: "DOGE~XRP@2025-11-06T10:00: custom data beta='oops' is not a number",
        12: "DOGE~XRP@2025-11-06T10:00: custom data role='z' is not 'y' or 'x'",
    }
    text = "\n\n".join(format_couples(report))
    assert "*Unpaired legs:* `4`" in text
    assert "unpaired leg #10 BTC/USDT:USDT long `0.01`" in text


def test_three_trades_or_two_of_one_role_in_a_couple_are_not_a_couple() -> None:
    y, x = _couple_legs()[1], _couple_legs()[0]
    other_y = _leg(8, "WLD/USDT:USDT", short=True, amount=1.0, stake=1.0, profit=0.0,
                   custom=dict(y.custom))
    report = _report([y, other_y])
    assert report.couples == () and len(report.unpaired) == 2
    assert all("2 open trades share the couple (roles y, y)" in u.reason
               for u in report.unpaired)
    assert _report([y, x, other_y]).couples == ()


def test_a_couple_without_a_price_shows_no_pnl_rather_than_zero() -> None:
    y, x = _couple_legs()[1], _couple_legs()[0]
    no_price = LegInput(**{**x.__dict__, "profit_abs": math.nan})
    report = _report([y, no_price], z=math.nan)
    (couple,) = report.couples
    assert math.isnan(couple.profit_abs) and math.isnan(couple.profit_pct)
    text = format_couples(report)[0]
    assert "P&L `n/a (no price)`" in text and "z now `n/a`" in text
    doc = report.to_dict()
    assert doc["couples"][0]["profit_abs"] is None and doc["couples"][0]["z_now"] is None
    json.dumps(doc, allow_nan=False)


# -- the reply -------------------------------------------------------------------------------


def test_reply_shows_both_legs_ratio_z_held_and_pnl_then_the_selection() -> None:
    report = _report(_couple_legs())
    (text,) = format_couples(report)
    assert _markdown_ok(text), text
    lines = text.splitlines()
    assert lines[0] == "*statarb couples:* `1 open`"
    assert "*WLD~ARB* `WLD~ARB@2025-11-07T01:00`" in lines
    assert "  short `160` WLD/USDT:USDT (#6, y)" in lines
    assert "  long `812` ARB/USDT:USDT (#7, x)" in lines
    assert "  hedge ratio `1.2345` · z entry `+2.31` · z now `-1.05`" in lines
    assert "  held `4h 29m` · P&L `+1.75 USDT` (`+0.88%` of `199.75 USDT`)" in lines
    assert ("*Selected by the pairlist:* `2` (formed `2025-11-07 01:00`, formation window "
            "`2025-09-08 01:00` → `2025-11-07 01:00` UTC, chosen `2025-11-07 01:02` UTC)"
            ) in lines
    assert "  `SOL~ETH` hedge ratio `0.9100` · half-life `11.5h` · p `0.0300`" in lines


def test_no_open_couples_and_no_selection_yet() -> None:
    (text,) = format_couples(_report([], selection=None))
    assert text == ("*statarb couples:* no open couples\n\n"
                    "*Selected by the pairlist:* none published yet")
    empty = SelectionView((), NOW, NOW, NOW, "1h")
    assert "no couple passed the filters" in format_couples(_report([], selection=empty))[0]


def test_markdown_in_data_cannot_break_the_message() -> None:
    legs = _couple_legs()
    odd = LegInput(**{**legs[0].__dict__, "custom": _custom("A_B*`~C[@x", "x", "P_Q")})
    odd_y = LegInput(**{**legs[1].__dict__, "custom": _custom("A_B*`~C[@x", "y", "P_Q")})
    report = _report([odd, odd_y], notes=["user_data_dir/statarb_selection.json: `bad`"])
    for text in format_couples(report):
        assert _markdown_ok(text), text


def test_long_replies_are_split_between_couples() -> None:
    legs = []
    for i in range(60):
        cid = f"C{i}~D{i}@2025-11-07T01:00"
        legs += [_leg(2 * i, f"C{i}/USDT:USDT", short=False, amount=1.0, stake=1.0, profit=0.1,
                      custom=_custom(cid, "y", f"D{i}/USDT:USDT")),
                 _leg(2 * i + 1, f"D{i}/USDT:USDT", short=True, amount=1.0, stake=1.0,
                      profit=0.1, custom=_custom(cid, "x", f"C{i}/USDT:USDT"))]
    messages = format_couples(_report(legs))
    assert len(messages) > 1 and all(len(m) <= MAX_MESSAGE for m in messages)
    joined = "\n\n".join(messages)
    assert all(f"`C{i}~D{i}@2025-11-07T01:00`" in joined for i in range(60))
    for m in messages:  # each couple's four lines stay together
        assert m.count("· z entry") == m.count("  held `") == m.count(", y)")


def test_rest_document_is_plain_json() -> None:
    doc = _report(_couple_legs()).to_dict()
    json.dumps(doc, allow_nan=False)
    (couple,) = doc["couples"]
    assert [(leg["role"], leg["pair"], leg["side"], leg["amount"]) for leg in couple["legs"]] == [
        ("y", "WLD/USDT:USDT", "short", 160.0), ("x", "ARB/USDT:USDT", "long", 812.0)]
    assert couple["held_seconds"] == int((NOW - OPENED).total_seconds())
    assert doc["selection"]["formation_end"] == "2025-11-07T01:00:00+00:00"
    assert [c["couple"] for c in doc["selection"]["couples"]] == ["WLD~ARB", "SOL~ETH"]


# -- /help -----------------------------------------------------------------------------------


def test_help_gets_the_couples_line_before_its_own_line_once() -> None:
    freqtrade_help = "_Statistics_\n*/status:* `x`\n*/help:* `This help message`\n*/version:* `v`"
    text = with_couples_help(freqtrade_help)
    assert text == ("_Statistics_\n*/status:* `x`\n" + COUPLES_HELP
                    + "*/help:* `This help message`\n*/version:* `v`")
    assert with_couples_help(text) == text
    assert with_couples_help("other layout") == "other layout\n" + COUPLES_HELP
    assert _markdown_ok(COUPLES_HELP)


@pytest.mark.parametrize(("held", "text"), [
    (timedelta(seconds=30), "<1m"), (timedelta(minutes=12), "12m"),
    (timedelta(hours=2, minutes=5), "2h 05m"), (timedelta(days=3, hours=4, minutes=59), "3d 4h"),
])
def test_time_held_reads_in_hours(held: timedelta, text: str) -> None:
    assert format_held(held) == text

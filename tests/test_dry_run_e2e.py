"""End to end, offline: the simulator (replay shown as now) and `freqtrade trade --dry-run`
with the project config, driven through the REST API with Freqtrade's own client.

The replay instant is the Makefile's REPLAY_START: the pairlist selects WLD~ARB and
AAVE~LINK there and WLD~ARB's z-score on the last closed candle is beyond -2, so the
strategy opens the couple on its first loop.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from statarb.harness.offline import shifted_clock
from statarb.sim import SimServer
from tests.bots import PARTNER_CLOSED, THROTTLE_S, Bot, running_bot
from tests.offline import (
    REPLAY_START,
    wait_for,
)
from tests.shared_data import DATADIR, MARKETS, require_shared

pytestmark = pytest.mark.slow

@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    require_shared()
    clock = shifted_clock(REPLAY_START, run_s=150)
    with SimServer(datadir=DATADIR, markets=MARKETS, port=0, clock=clock) as sim, \
            running_bot(tmp_path, sim) as runner:
        yield runner


def test_dry_run_trades_the_published_couples_and_keeps_legs_together(bot: Bot) -> None:
    client, proc, log = bot.client, bot.proc, bot.log
    selection_file = bot.user_data / "statarb_selection.json"
    wait_for("the pairlist's selection", selection_file.exists, 120, proc, log)
    selection = json.loads(selection_file.read_text())
    assert selection["couples"], selection
    pairs = [p for c in selection["couples"] for p in (c["y"], c["x"])]

    # /whitelist is exactly the published selection.
    assert client.whitelist()["whitelist"] == pairs

    # What FreqUI draws: the strategy's plot_config and the columns behind it.
    plot = client.plot_config()
    assert set(plot["subplots"]) == {"z-score", "regime"}  # two panels: readable in FreqUI
    assert "couple_z" in plot["subplots"]["z-score"]
    first = selection["couples"][0]

    def candles() -> dict | None:
        doc = client.pair_candles(first["y"], "1h", limit=300)
        return doc if doc and doc.get("columns") and doc.get("data") else None

    doc = wait_for("analyzed candles", candles, 60, proc, log)
    cols = doc["columns"]
    assert {"couple_z", "couple_beta", "couple_spread", "regime", "regime_level"} <= set(cols)
    last = doc["data"][-1]
    assert last[cols.index("couple_beta")] == pytest.approx(first["beta"])
    assert abs(last[cols.index("couple_z")]) >= 2.0  # the replay instant's signal
    assert last[cols.index("regime")] in (0, 1, 2, 3)
    assert last[cols.index("regime_level")] == last[cols.index("regime")] + 1

    # Both legs of the couple open in the same bot loop, in the hedge ratio.
    trades = wait_for("both legs of a couple", lambda: (
        s if len(s := client.status()) == 2 else None), 90, proc, log)
    by_pair = {t["pair"]: t for t in trades}
    assert set(by_pair) == {first["y"], first["x"]}
    y, x = by_pair[first["y"]], by_pair[first["x"]]
    # One tag for the couple; each leg's role is in its custom data.
    assert y["enter_tag"] == x["enter_tag"] == first["name"]
    roles = [{d["key"]: d["value"] for d in data["custom_data"]}.get("role")
             for t in (y, x) for data in bot.client.list_custom_data(t["trade_id"], "role")]
    assert roles == ["y", "x"], roles
    assert y["is_short"] != x["is_short"]  # positive hedge ratio: opposite legs
    ratio = (x["amount"] * x["open_rate"]) / (y["amount"] * y["open_rate"])
    assert ratio / abs(first["beta"]) - 1 == pytest.approx(0, abs=0.05)
    stamps = [t["orders"][0]["order_timestamp"] for t in (y, x)]
    delay_ms = abs(stamps[1] - stamps[0])
    print(f"\nleg order submissions {delay_ms} ms apart; hedge ratio error "
          f"{ratio / abs(first['beta']) - 1:+.3%}; selection "
          + ", ".join(f"{c['name']} beta={c['beta']:.3f}" for c in selection["couples"]))
    assert delay_ms < THROTTLE_S * 1000  # same bot loop
    custom = {d["key"]: d["value"] for t in client.list_open_trades_custom_data()
              if t["trade_id"] == y["trade_id"] for d in t["custom_data"]}
    assert custom["couple_id"].startswith(first["name"] + "@")
    assert custom["beta"] == pytest.approx(first["beta"])

    # A manual exit of one leg through the API: the strategy closes the partner next loop.
    client.forceexit(x["trade_id"])
    forced_at = time.monotonic()
    wait_for("the partner to close", lambda: client.status() == [], 30, proc, log)
    elapsed = time.monotonic() - forced_at
    closed = {t["pair"]: t for t in client.trades()["trades"]}
    assert closed[first["y"]]["exit_reason"] in PARTNER_CLOSED
    assert closed[first["x"]]["exit_reason"] == "force_exit"
    print(f"partner closed {elapsed:.1f} s after the forced exit (loop {THROTTLE_S} s)")
    assert elapsed <= 2 * THROTTLE_S + 3
    # The strategy's notifications went through Freqtrade's RPC (Telegram, webhook); the
    # queue is sent at the start of the next bot loop.
    for kind in (f"couple opened {first['name']}@", f"leg incident {first['name']}@",
                 f"couple closed {first['name']}@"):
        line = f"Sending rpc strategy_msg: statarb {kind}"
        wait_for(line, lambda line=line: line in log.read_text(), 15, proc, log)
    text = log.read_text()
    assert " - ERROR - " not in text
    assert "force_exit" in text.split("statarb couple closed")[-1].splitlines()[0]
    assert not bot.sim.stats.unhandled, bot.sim.stats.unhandled


def test_kill9_then_restart_closes_a_leg_left_alone(bot: Bot) -> None:
    """A crash between the two legs: kill -9 once both legs are in the database, drop the
    second leg's row (the order that never got recorded), restart on the same database.
    The database must still open, and the restart must close the lone leg."""
    client = bot.client
    trades = wait_for("both legs", lambda: s if len(s := client.status()) == 2 else None, 120,
                   bot.proc, bot.log)
    bot.kill9()
    lone, gone = sorted(trades, key=lambda t: t["trade_id"])
    with sqlite3.connect(bot.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        for table in ("orders", "trade_custom_data", "trades"):
            column = "ft_trade_id" if table != "trades" else "id"
            db.execute(f"DELETE FROM {table} WHERE {column} = ?", (gone["trade_id"],))
    bot.start()
    wait_for("the lone leg to close", lambda: bot.client.status() == [], 60, bot.proc, bot.log)
    closed = {t["trade_id"]: t for t in bot.client.trades()["trades"]}
    assert closed[lone["trade_id"]]["exit_reason"] == "partner_exit"
    line = "Sending rpc strategy_msg: statarb leg incident"
    wait_for(line, lambda: line in bot.log.read_text(), 15, bot.proc, bot.log)
    text = bot.log.read_text()
    assert f"{lone['pair']} its partner {gone['pair']} has no position; closing it" in text
    assert " - ERROR - " not in text

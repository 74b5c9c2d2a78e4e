"""`make dry-run` at 15m: the simulator serving the 5m data (replay shown as now) and
`freqtrade trade --dry-run` with the project config at ``timeframe: 15m``.

At 2025-06-11 01:00 the pairlist's 60 days of 15m candles select BCH~BTC, and its z-score
on every 15m candle closed between 00:45 and 01:45 is above +2.5, so whatever the wall
clock's minute (the replay is shifted by whole hours), the strategy opens the couple on
its first loop. The regime is read from hourly candles of BTC: 30 days of 15m candles are
more than Freqtrade loads for a running bot, and without it every entry would be blocked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from statarb.sim import MarketData, ReplayClock, SimServer
from statarb.tools.timeframe_data import pairs_with_data
from tests.bots import THROTTLE_S, Bot, running_bot
from tests.offline import REPO, wait_for
from tests.shared_data import DATADIR_5M, MARKETS, require_shared

pytestmark = pytest.mark.slow

REPLAY_15M = "2025-06-11T01:00:00Z"


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    require_shared()
    market = MarketData(DATADIR_5M, MARKETS)
    whitelist = json.loads((REPO / "config.json").read_text())["exchange"]["pair_whitelist"]
    config = {"timeframe": "15m",
              "exchange": {"pair_whitelist": pairs_with_data(market, whitelist)}}
    with SimServer(market_data=market, port=0,
                   clock=ReplayClock.shifted_to_now(REPLAY_15M)) as sim, \
            running_bot(tmp_path, sim, datadir=DATADIR_5M, config=config) as runner:
        yield runner


def test_dry_run_at_15m_selects_analyses_and_opens_a_couple(bot: Bot) -> None:
    client, proc, log = bot.client, bot.proc, bot.log
    selection_file = bot.user_data / "statarb_selection.json"
    wait_for("the pairlist's selection", selection_file.exists, 120, proc, log)
    selection = json.loads(selection_file.read_text())
    assert selection["timeframe"] == "15m"
    span = pd.Timestamp(selection["formation_end"]) - pd.Timestamp(selection["formation_start"])
    assert span == pd.Timedelta(days=60)
    first = selection["couples"][0]
    assert first["name"] == "BCH~BTC", selection["couples"]

    def candles() -> dict | None:
        doc = client.pair_candles(first["y"], "15m", limit=200)
        return doc if doc and doc.get("columns") and doc.get("data") else None

    doc = wait_for("analyzed 15m candles", candles, 60, proc, log)
    cols = doc["columns"]
    dates = pd.to_datetime([row[cols.index("date")] for row in doc["data"]], utc=True)
    assert (dates[1:] - dates[:-1] == pd.Timedelta(minutes=15)).all()
    last = doc["data"][-1]
    assert last[cols.index("couple_beta")] == pytest.approx(first["beta"])
    assert last[cols.index("couple_z")] >= 2.0
    assert last[cols.index("regime")] in (0, 1, 2, 3)  # known: read from hourly candles

    trades = wait_for("both legs of the couple", lambda: (
        s if len(s := client.status()) == 2 else None), 90, proc, log)
    by_pair = {t["pair"]: t for t in trades}
    assert set(by_pair) == {first["y"], first["x"]}
    y, x = by_pair[first["y"]], by_pair[first["x"]]
    assert y["enter_tag"] == x["enter_tag"] == first["name"]
    assert y["is_short"] and not x["is_short"]  # z above +2: short BCH, long BTC
    ratio = (x["amount"] * x["open_rate"]) / (y["amount"] * y["open_rate"])
    assert ratio / abs(first["beta"]) - 1 == pytest.approx(0, abs=0.05)
    stamps = [t["orders"][0]["order_timestamp"] for t in (y, x)]
    assert abs(stamps[1] - stamps[0]) < THROTTLE_S * 1000  # same bot loop
    assert " - ERROR - " not in log.read_text()
    assert not bot.sim.stats.unhandled, bot.sim.stats.unhandled

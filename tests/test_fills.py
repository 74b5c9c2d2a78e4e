"""The maker fill model of the research engine: the limit rule, and what it does to trips
on real candles (checked against the raw candles, not the engine's own arrays)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from statarb.research.evaluate import Workbench
from statarb.research.fills import FillModel
from tests.research_data import PAIRS, small_config
from tests.shared_data import CCXT_MARKETS, DATADIR, require_shared

MAKER = FillModel("maker", taker_fee=0.0005, maker_fee=0.0002)
CANDLE = {"open_": 100.5, "high": 101.0, "low": 99.0, "close": 100.8}


def test_a_limit_fills_only_when_the_next_candle_trades_through() -> None:
    buy = MAKER.fill(buy=True, decision_close=99.5, **CANDLE)
    assert (buy.price, buy.fee, buy.maker) == (99.5, 0.0002, True)
    sell = MAKER.fill(buy=False, decision_close=100.9, **CANDLE)
    assert (sell.price, sell.fee, sell.maker) == (100.9, 0.0002, True)
    # Touching the limit is not a fill: the leg is taken at market at the candle's close.
    for buy_, limit in ((True, 99.0), (False, 101.0), (True, 98.0), (False, 102.0)):
        missed = MAKER.fill(buy=buy_, decision_close=limit, **CANDLE)
        assert (missed.price, missed.fee, missed.maker) == (100.8, 0.0005, False)
    # Market fills: the next open at the taker fee, whatever the range.
    taker = FillModel("taker", taker_fee=0.0005).fill(buy=True, decision_close=50.0, **CANDLE)
    assert (taker.price, taker.fee) == (100.5, 0.0005)
    with pytest.raises(ValueError, match="fills='post_only' must be one of"):
        FillModel("post_only")


@pytest.fixture(scope="module")
def benches() -> tuple[Workbench, Workbench]:
    require_shared()
    from statarb.ft.data import load_frames, load_funding, timerange_from_string

    timerange = timerange_from_string("20250601-20260101")
    frames = load_frames(DATADIR, PAIRS, timerange=timerange)
    funding = load_funding(DATADIR, PAIRS, timerange=timerange)
    markets = json.loads(CCXT_MARKETS.read_text())
    return (Workbench(small_config(), frames, markets, funding),
            Workbench(small_config(), frames, markets, funding, fills="maker"))


def test_maker_fills_on_real_candles(benches) -> None:
    taker_bench, maker_bench = benches
    statarb = json.loads(json.dumps(small_config()["statarb"]))
    taker = taker_bench.run(statarb, {}).legs
    maker = maker_bench.run(statarb, {}).legs
    assert len(taker) >= 20
    # The same plan: the same couples enter and leave on the same candles.
    key = ["pair", "open_date", "close_date", "exit_reason"]
    pd.testing.assert_frame_equal(maker[key], taker[key])
    assert set(taker["fee_open"]) | set(taker["fee_close"]) == {maker_bench.fee}
    # Every maker leg against the raw candles: a maker fill is at the previous close and
    # the candle traded through it; a missed one is at the candle's close at the taker fee.
    candles = {p.split("/")[0]: f.set_index("date") for p, f in maker_bench.frames.items()}
    hour = pd.Timedelta(hours=1)
    checked = {"maker": 0, "taker": 0}
    for leg in maker.itertuples(index=False):
        frame = candles[leg.pair.split("/")[0]]
        for when, rate, fee, buy in ((leg.open_date, leg.open_rate, leg.fee_open,
                                      not leg.is_short),
                                     (leg.close_date, leg.close_rate, leg.fee_close,
                                      bool(leg.is_short))):
            if leg.exit_reason == "force_exit" and when == leg.close_date:
                continue
            bar, limit = frame.loc[when], frame.loc[when - hour, "close"]
            through = bar["low"] < limit if buy else bar["high"] > limit
            if through:
                assert (rate, fee) == (limit, 0.0002), (leg.pair, when)
                checked["maker"] += 1
            else:
                assert (rate, fee) == (bar["close"], 0.0005), (leg.pair, when)
                checked["taker"] += 1
    assert checked["maker"] > checked["taker"] > 0, checked
    # Profit is what the fills say (fees per fill, funding as in the taker run's book).
    sign = np.where(maker["is_short"], -1.0, 1.0)
    expected = (sign * maker["amount"] * (maker["close_rate"] - maker["open_rate"])
                - maker["amount"] * maker["open_rate"] * maker["fee_open"]
                - maker["amount"] * maker["close_rate"] * maker["fee_close"]
                + maker["funding_fees"])
    np.testing.assert_allclose(maker["profit_abs"], expected, rtol=1e-12, atol=1e-9)

"""Causal spread z-score and beta-weighted leg sizing."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from statarb.sizing import LegLimits, size_legs
from statarb.spread import rolling_zscore, spread
from tests.shared_data import SHARED, log_window

MARKETS = SHARED / "markets" / "binance_usdm_markets.json"


def _limits(pair: str) -> LegLimits:
    market = json.loads(MARKETS.read_text())[pair]
    return LegLimits(
        amount_step=float(market["precision"]["amount"]),
        min_amount=float(market["limits"]["amount"]["min"] or 0),
        min_notional=float(market["limits"]["cost"]["min"] or 0),
    )


def test_zscore_matches_a_naive_window_loop() -> None:
    panel = log_window("2025-06-01", 400, ["BTC", "ETH"])
    s = spread(panel["ETH"], panel["BTC"], 0.1, 1.2)
    z = rolling_zscore(s, 50)
    values = s.to_numpy()
    for t in range(len(values)):
        if t < 49:
            assert math.isnan(z.iloc[t])
            continue
        win = values[t - 49 : t + 1]
        assert z.iloc[t] == pytest.approx((values[t] - win.mean()) / win.std(ddof=1), rel=1e-9)


def test_zscore_has_no_look_ahead() -> None:
    panel = log_window("2025-06-01", 600, ["SOL", "AVAX"])
    s = spread(panel["SOL"], panel["AVAX"], 0.0, 0.9)
    full = rolling_zscore(s, 120, min_periods=60)
    for cut in (60, 200, 417, 599):
        part = rolling_zscore(s.iloc[:cut], 120, min_periods=60)
        pd.testing.assert_series_equal(part, full.iloc[:cut])


def test_flat_spread_gives_no_signal() -> None:
    s = pd.Series(np.r_[np.ones(30), np.linspace(1, 2, 10)])
    z = rolling_zscore(s, 10)
    assert z.iloc[9:30].isna().all()
    assert z.iloc[-1] > 0


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"window": 1}, "window=1"), ({"window": 10, "min_periods": 11}, "min_periods=11")],
)
def test_zscore_rejects_bad_windows(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rolling_zscore(pd.Series(np.arange(20.0)), **kw)


@pytest.mark.parametrize("beta", [0.5, 1.0, 1.7, -0.8])
def test_legs_follow_the_hedge_ratio_at_exchange_precision(beta: float) -> None:
    lim_y, lim_x = _limits("ETH/USDT:USDT"), _limits("SOL/USDT:USDT")
    sizes = size_legs(2000.0, beta, 2500.0, 150.0, lim_y, lim_x)
    assert sizes.ok, sizes.skip_reason
    for amount, step in ((sizes.amount_y, lim_y.amount_step), (sizes.amount_x, lim_x.amount_step)):
        assert amount / step == pytest.approx(round(amount / step), abs=1e-9)
    assert sizes.notional_y + sizes.notional_x <= 2000.0 + 1e-9
    assert abs(sizes.notional_x / sizes.notional_y / abs(beta) - 1) <= 0.05
    assert sizes.ratio_error == pytest.approx(sizes.notional_x / sizes.notional_y / abs(beta) - 1)


def test_the_finer_leg_absorbs_the_coarser_legs_rounding() -> None:
    # SOL trades in whole coins (150 USDT a step); ETH in 0.001 (2.5 USDT a step).
    sizes = size_legs(400.0, 1.0, 2500.0, 150.0, _limits("ETH/USDT:USDT"), _limits("SOL/USDT:USDT"))
    assert sizes.ok, sizes.skip_reason
    assert (sizes.amount_y, sizes.amount_x) == (0.06, 1.0)
    assert abs(sizes.ratio_error) < 1e-9


def test_two_coarse_legs_that_break_the_ratio_skip_the_couple() -> None:
    # BTC steps are 60 USDT at this price and SOL steps 150 USDT: no grid point of 400 USDT
    # holds a 1:1 ratio within 5%.
    sizes = size_legs(
        400.0, 1.0, 60000.0, 150.0, _limits("BTC/USDT:USDT"), _limits("SOL/USDT:USDT")
    )
    assert not sizes.ok
    assert "hedge ratio" in sizes.skip_reason
    assert abs(sizes.ratio_error) > 0.05


def test_legs_under_the_exchange_minimum_skip_the_couple() -> None:
    sizes = size_legs(
        30.0, 1.0, 60000.0, 2500.0, _limits("BTC/USDT:USDT"), _limits("ETH/USDT:USDT")
    )
    assert not sizes.ok
    assert "leg y" in sizes.skip_reason and "minimum" in sizes.skip_reason


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.0, 1.0, 1.0, 1.0), "stake=0.0"),
        ((100.0, 0.0, 1.0, 1.0), "beta=0.0"),
        ((100.0, 1.0, -1.0, 1.0), "price_y=-1.0"),
        ((100.0, float("nan"), 1.0, 1.0), "beta=nan"),
    ],
)
def test_sizing_rejects_bad_input(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        size_legs(*args, LegLimits(0.001), LegLimits(0.001))

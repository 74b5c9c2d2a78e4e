"""The z-score of an open couple and beta-weighted leg sizing."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from statarb.core.selection import SelectionParams
from statarb.core.signals import latest_zscore
from statarb.core.sizing import LegLimits, size_legs
from statarb.core.walkforward import WalkForwardParams, from_couples, walk_forward
from tests.shared_data import SHARED, coins, log_window

MARKETS = SHARED / "markets" / "binance_usdm_markets.json"


def _limits(pair: str) -> LegLimits:
    market = json.loads(MARKETS.read_text())[pair]
    return LegLimits(
        amount_step=float(market["precision"]["amount"]),
        min_amount=float(market["limits"]["amount"]["min"] or 0),
        min_notional=float(market["limits"]["cost"]["min"] or 0),
    )


def test_latest_zscore_matches_a_naive_window_loop() -> None:
    panel = log_window("2025-06-01", 400, ["BTC", "ETH"])
    y, x = panel["ETH"].to_numpy(), panel["BTC"].to_numpy()
    for t in (49, 120, 399):
        win = y[t - 49:t + 1] - 1.2 * x[t - 49:t + 1]
        naive = (win[-1] - sum(win) / len(win)) / float(np.std(win, ddof=1))
        got = latest_zscore(y[t - 49:t + 1], x[t - 49:t + 1], 1.2)
        assert got == pytest.approx(naive, rel=1e-9)


@pytest.mark.parametrize("z_half_lives", [0.0, 3.0])
def test_an_open_couples_zscore_is_the_plans(z_half_lives: float) -> None:
    """custom_exit judges an open couple with latest_zscore over the couple's window; the
    plan (and so the backtest parity test) and the live universe built from the pairlist's
    couples use the walk-forward's rolling z: they must be the same number."""
    frames = {c: pd.DataFrame({"date": panel.index, "open": np.exp(panel[c]),
                               "close": np.exp(panel[c])})
              for panel in [log_window("2025-05-01", 24 * 75, coins())] for c in panel}
    wf = WalkForwardParams(z_half_lives=z_half_lives)
    u = walk_forward(frames, SelectionParams(correction="none"), wf)
    f = next(f for f in u.formations if len(f.couples))
    row = f.couples.iloc[0]
    w = u.params.window_for(float(row.half_life))
    assert (w < wf.z_window) == (z_half_lives > 0), (w, row.half_life)
    live = from_couples(frames, f.couples, wf, f.start)
    iy, ix = u.col(row.y), u.col(row.x)
    np.testing.assert_allclose(live.formations[0].z[0, :24], f.z[0, :24], rtol=1e-9)
    for j in (0, 5, 23):
        t = f.start + j
        z = latest_zscore(np.log(u.closes[t - w + 1:t + 1, iy]),
                          np.log(u.closes[t - w + 1:t + 1, ix]), float(row.beta))
        assert z == pytest.approx(float(f.z[0, j]), rel=1e-9, abs=1e-12)


def test_flat_spread_gives_no_signal() -> None:
    flat = np.ones(30)
    assert math.isnan(latest_zscore(flat, flat * 0.5, 2.0))
    with pytest.raises(ValueError, match="two equal windows"):
        latest_zscore(flat, flat[:10], 1.0)


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

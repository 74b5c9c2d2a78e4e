"""The spread estimators against bars with a known bid-ask bounce.

Each bar is made of trades at a random-walk mid price, each at the ask or the bid (half
the spread away, side at random): the market the estimators assume. The spread is known,
so the estimate can be checked against it (not against a number the code produced).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from statarb.core.spread import (
    abdi_ranaldo,
    corwin_schultz,
    half_spread_costs,
    spread_estimate,
)


def bounce_bars(seed: int, *, spread: float, vol: float, bars: int = 20_000,
                ticks: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mid = np.cumsum(rng.normal(0.0, vol / np.sqrt(ticks), bars * ticks))
    side = rng.choice([-1.0, 1.0], bars * ticks)
    trades = np.exp(mid + side * np.log1p(spread / 2.0)).reshape(bars, ticks)
    dates = pd.date_range("2025-01-01", periods=bars, freq="5min", tz="UTC")
    return pd.DataFrame({"date": dates, "high": trades.max(1), "low": trades.min(1),
                         "close": trades[:, -1]})


@pytest.mark.parametrize(("spread", "vol"), [(0.001, 0.002), (0.002, 0.003), (0.0005, 0.001)])
def test_abdi_ranaldo_recovers_a_known_spread(spread: float, vol: float) -> None:
    bars = bounce_bars(1, spread=spread, vol=vol)
    whole = abdi_ranaldo(bars["high"], bars["low"], bars["close"])
    assert whole == pytest.approx(spread, rel=0.15)
    # Per day, negative days as zero (the paper's monthly practice) leans up, not down.
    daily = spread_estimate(bars, "abdi_ranaldo")
    assert spread * 0.85 <= daily <= spread * 1.6


def test_corwin_schultz_recovers_a_spread_wide_against_the_bar_range() -> None:
    bars = bounce_bars(2, spread=0.002, vol=0.003)
    assert corwin_schultz(bars["high"], bars["low"]) == pytest.approx(0.002, rel=0.15)


def test_corwin_schultz_overstates_a_narrow_spread_and_abdi_ranaldo_does_not() -> None:
    """Why the cost uses Abdi-Ranaldo: with the spread small against a bar's volatility
    (a liquid perpetual at 5m), the zero floor of the two-bar estimates inflates CS."""
    bars = bounce_bars(3, spread=0.0005, vol=0.004)
    cs = corwin_schultz(bars["high"], bars["low"])
    ar = abdi_ranaldo(bars["high"], bars["low"], bars["close"])
    assert cs > 2 * 0.0005 and ar == pytest.approx(0.0005, rel=0.4)


def test_no_bounce_gives_no_spread_and_costs_are_half_spreads() -> None:
    bars = bounce_bars(4, spread=0.0, vol=0.002)
    assert abdi_ranaldo(bars["high"], bars["low"], bars["close"]) < 1e-4
    wide = bounce_bars(5, spread=0.002, vol=0.002)
    costs = half_spread_costs({"A": wide, "B": bars}, "abdi_ranaldo")
    assert costs["A"] == pytest.approx(spread_estimate(wide, "abdi_ranaldo") / 2)
    assert costs["B"] < costs["A"] / 4
    assert half_spread_costs({"A": wide}, "none") == {"A": 0.0}
    with pytest.raises(ValueError, match=r"'roll'.*corwin_schultz"):
        spread_estimate(wide, "roll")


@pytest.mark.parametrize(("costs", "match"), [
    ({"half_spread": {"BTC": 0.02}}, r"half_spread.BTC=0.02 must be a fraction .*\[0, 0.01\)"),
    ({"half_spread": {"BTC/USDT:USDT": 0.0001}}, r"'BTC/USDT:USDT' must be a coin \(BTC\)"),
    ({"half_spread": {"BTC": "1bp"}}, r"half_spread.BTC='1bp'"),
    ({"spread": {}}, r"unknown costs key\(s\) \['spread'\]"),
])
def test_bad_spread_costs_are_refused_by_name(costs: dict, match: str) -> None:
    from statarb.core.settings import StrategySettings

    with pytest.raises(ValueError, match=match):
        StrategySettings.from_config({"statarb": {"costs": costs}}, pd.Timedelta(hours=1))
    ok = StrategySettings.from_config(
        {"statarb": {"costs": {"half_spread": {"BTC": 0.0001}}}}, pd.Timedelta(hours=1))
    assert ok.half_spread == {"BTC": 0.0001}

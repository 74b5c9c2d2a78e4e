"""Volatility regime classification, multipliers and the shock cooldown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from statarb.core.regime import Regime, RegimeParams, classify, realised_vol, shock_block
from tests.shared_data import close_panel


def _btc() -> pd.Series:
    return np.log(close_panel(["BTC"])["BTC"].iloc[:4000])


def test_classification_matches_a_naive_percentile_and_is_causal() -> None:
    params = RegimeParams(vol_window=24, lookback=200)
    log_close = _btc()
    vol = realised_vol(log_close, params.vol_window)
    regime = classify(vol, params)
    values = vol.to_numpy()
    for t in range(250, 4000, 97):
        window = values[t - 199 : t + 1]
        pct = ((window < values[t]).sum() + ((window == values[t]).sum() + 1) / 2) / len(window)
        expected = int(np.searchsorted(params.bounds, pct, side="left"))
        assert regime.iloc[t] == expected
    for cut in (300, 1234, 3999):
        part = classify(realised_vol(log_close.iloc[:cut], 24), params)
        pd.testing.assert_series_equal(part, regime.iloc[:cut])


def test_every_regime_occurs_on_real_data_in_plausible_shares() -> None:
    params = RegimeParams()
    regime = classify(realised_vol(_btc(), params.vol_window), params).dropna()
    shares = regime.value_counts(normalize=True)
    assert set(shares.index) == {0, 1, 2, 3}
    assert shares[Regime.EXTREME] < shares[Regime.NORMAL]


def test_extreme_cuts_size_by_three_quarters() -> None:
    params = RegimeParams()
    assert params.multiplier(Regime.EXTREME) == 0.25
    assert params.multiplier(Regime.NORMAL) == 1.0


def test_shock_blocks_entries_for_the_cooldown() -> None:
    rng = np.random.default_rng(3)
    rets = rng.normal(0, 0.01, 300)
    rets[150] = 0.2  # a 20-sigma candle
    log_close = pd.Series(np.cumsum(rets))
    params = RegimeParams(vol_window=24, lookback=48, shock_sigma=5, cooldown=10)
    block = shock_block(log_close, realised_vol(log_close, 24), params)
    assert block.iloc[150:161].all()
    assert not block.iloc[161:].any()
    assert not block.iloc[:150].any()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"bounds": (0.5, 0.4, 0.9)}, "bounds"),
        ({"multipliers": {"LOW": 1.0}}, "multipliers must name"),
        ({"multipliers": {"LOW": 1, "NORMAL": 1, "HIGH": 1, "EXTREME": 2}}, "EXTREME"),
        ({"vol_window": 1}, "vol_window=1"),
        ({"lookback": 5}, "lookback=5"),
        ({"cooldown": -1}, "cooldown=-1"),
    ],
)
def test_bad_parameters_are_rejected(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RegimeParams(**kw)

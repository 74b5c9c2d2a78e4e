"""statarb.core.capital: the couple sizing rules, their validation and their causality."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from statarb.core.capital import CapitalParams, couple_margin, couple_notional, entry_vol
from statarb.core.settings import StrategySettings

HOUR = pd.Timedelta(hours=1)
WALLET = {"proposed_stake": 950.0, "available": 6000.0, "total": 9500.0}


def test_slots_is_two_of_freqtrades_stakes() -> None:
    params = CapitalParams()
    assert couple_margin(params, entering=3, free_slots=5, **WALLET) == 1900.0
    assert couple_notional(params, multiplier=0.5, leverage=2.0, entering=1, free_slots=1,
                           **WALLET) == pytest.approx(1900.0)


def test_free_share_splits_the_free_stake_among_the_couples_entering() -> None:
    params = CapitalParams(sizing="free_share", max_couple_fraction=0.5)
    # One couple: all of the free stake, up to the cap (half the total).
    assert couple_margin(params, entering=1, free_slots=5, **WALLET) == 4750.0
    # Three couples on the same candle: a third each.
    assert couple_margin(params, entering=3, free_slots=5, **WALLET) == 2000.0
    # More couples than free slots: the slots bound the split.
    assert couple_margin(params, entering=4, free_slots=2, **WALLET) == 3000.0
    # Nothing free: nothing to enter with.
    assert couple_margin(params, entering=1, free_slots=5, proposed_stake=0.0,
                         available=0.0, total=9500.0) == 0.0


def test_target_vol_scales_by_the_spread_volatility_under_the_caps() -> None:
    params = CapitalParams(sizing="target_vol", target_daily_vol=0.01, max_couple_fraction=1.0)
    # 1% of 9500 a day with a 4% daily spread: 2375 of y notional, beta 0.6 -> 3800 in all.
    wallet = {**WALLET, "available": 9500.0}
    assert couple_margin(params, entering=1, free_slots=5, beta=-0.6, daily_vol=0.04,
                         **wallet) == pytest.approx(3800.0)
    # With leverage 2 the same notional needs half the margin.
    assert couple_notional(params, multiplier=1.0, leverage=2.0, entering=1, free_slots=5,
                           beta=-0.6, daily_vol=0.04, **wallet) == pytest.approx(3800.0)
    # A quiet spread would want more than is free: the free stake caps it.
    assert couple_margin(params, entering=1, free_slots=5, beta=1.0, daily_vol=0.001,
                         **wallet) == 9500.0
    # Unknown volatility: no entry rather than a guess.
    assert couple_margin(params, entering=1, free_slots=5, daily_vol=math.nan, **wallet) == 0.0


def test_entry_vol_matches_pandas_and_ignores_the_future() -> None:
    rng = np.random.default_rng(7)
    n = 600
    x = np.exp(np.cumsum(rng.normal(0, 0.01, n)) + 3)
    y = np.exp(0.8 * np.log(x) + rng.normal(0, 0.02, n))
    params = CapitalParams(sizing="target_vol", vol_hours=168)
    row = 400
    got = entry_vol(params, y, x, 0.8, row, HOUR)
    spread = pd.Series(np.log(y) - 0.8 * np.log(x))
    expected = spread.diff().iloc[row - 167:row + 1].std() * math.sqrt(24)
    assert got == pytest.approx(expected, rel=1e-12)
    # Candles after the signal candle change nothing (no look-ahead).
    later = y.copy()
    later[row + 1:] *= 3.0
    assert entry_vol(params, later, x, 0.8, row, HOUR) == got
    assert entry_vol(params, y[:row + 1], x[:row + 1], 0.8, row, HOUR) == got
    # Too little history: unknown.
    assert math.isnan(entry_vol(params, y, x, 0.8, 50, HOUR))
    # Other modes do not need it.
    assert math.isnan(entry_vol(CapitalParams(), y, x, 0.8, row, HOUR))


@pytest.mark.parametrize(("section", "message"), [
    ({"sizing": "all_in"}, "capital.sizing='all_in' is not a sizing mode"),
    ({"max_couple_fraction": 1.5}, "capital.max_couple_fraction=1.5 must be"),
    ({"max_couple_fraction": "half"}, "capital.max_couple_fraction='half' must be"),
    ({"target_daily_vol": 0}, "capital.target_daily_vol=0 must be"),
    ({"vol_hours": 12}, "capital.vol_hours=12 must be"),
    ({"vol_hours": 48.5}, "capital.vol_hours=48.5 must be"),
    ({"cap": 0.5}, "unknown capital key(s) ['cap']"),
])
def test_bad_capital_settings_are_named(section: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        StrategySettings.from_config({"statarb": {"capital": section}}, HOUR)
    assert message in str(err.value)


def test_capital_defaults_to_freqtrades_slots() -> None:
    settings = StrategySettings.from_config({"statarb": {}}, HOUR)
    assert settings.capital == CapitalParams(sizing="slots")

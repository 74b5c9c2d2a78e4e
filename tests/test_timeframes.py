"""The timeframe is a setting: windows are wall time, so a config means the same span at
5m, 15m, 30m and 1h, and a span too short (or not whole) at a timeframe is refused by name.
"""

from __future__ import annotations

import pandas as pd
import pytest

from statarb.core.settings import StrategySettings

TIMEFRAMES = {"5m": 5, "15m": 15, "30m": 30, "1h": 60}


@pytest.mark.parametrize("tf", sorted(TIMEFRAMES))
def test_every_window_is_the_same_wall_time_at_every_timeframe(tf: str) -> None:
    candle = pd.Timedelta(minutes=TIMEFRAMES[tf])
    s = StrategySettings.from_config({"statarb": {"walk_forward": {"z_window_hours": 50}}},
                                     candle)
    per_hour = pd.Timedelta(hours=1) / candle
    wf, reg = s.walk_forward, s.regime
    assert wf.formation * candle == pd.Timedelta(days=60)
    assert wf.reform_every * candle == pd.Timedelta(hours=24)
    assert wf.z_window == 50 * per_hour
    assert wf.horizon * candle == pd.Timedelta(hours=168)
    assert (reg.vol_window, reg.lookback, reg.cooldown) == (
        24 * per_hour, 720 * per_hour, 12 * per_hour)


@pytest.mark.parametrize(
    ("tf", "section", "match"),
    [
        # A formation of 3 days is 72 hourly candles: too few for the ADF lag search.
        ("1h", {"walk_forward": {"formation_days": 3}},
         r"formation_days=3 is 72 1h candles; the ADF lag search .* at least 100"),
        ("5m", {"walk_forward": {"z_window_hours": 0.5}},
         r"z_window_hours=0.5 is 6 5m candles; the rolling z-score needs at least 10"),
        ("1h", {"walk_forward": {"reform_hours": 0.25}},
         r"reform_hours=0.25 is not a whole number of 1h candles"),
        ("15m", {"regime": {"vol_window_hours": 0.1}}, r"vol_window_hours=0.1 is not a whole"),
        ("1h", {"walk_forward": {"z_window_hours": "100"}},
         r"z_window_hours='100' must be a positive number of hours"),
        # The old candle-counted keys name their wall-time replacement.
        ("1h", {"walk_forward": {"z_window": 100}}, r"z_window=100 counts candles.*z_window_hours"),
        ("1h", {"regime": {"lookback": 720}},
         r"regime.lookback=720 counts candles.*lookback_hours"),
    ],
)
def test_a_window_that_does_not_fit_the_timeframe_is_refused_by_name(
        tf: str, section: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StrategySettings.from_config({"statarb": section}, pd.Timedelta(minutes=TIMEFRAMES[tf]))

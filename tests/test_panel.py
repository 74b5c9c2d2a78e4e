"""The formation-window panel: complete coins in, every defect out with its reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from statarb.core.panel import PanelError, build_log_panel

HOUR = pd.Timedelta(hours=1)
INDEX = pd.date_range("2025-03-01", periods=72, freq="1h", tz="UTC")
START, END = INDEX[24], INDEX[48]  # 24 hourly candles: INDEX[24] .. INDEX[47]


def prices(seed: int, index: pd.DatetimeIndex = INDEX) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, len(index)))), index=index)


def build(closes: dict[str, pd.Series]):
    return build_log_panel(closes, START, END, HOUR)


def test_complete_coins_give_exact_log_prices_on_the_window() -> None:
    closes = {"BTC": prices(1), "ETH": prices(2)}
    panel = build(closes)
    expected_index = pd.date_range(START, periods=24, freq="1h")
    pd.testing.assert_index_equal(panel.log_prices.index, expected_index, check_names=False)
    assert list(panel.log_prices.columns) == ["BTC", "ETH"]
    for name, series in closes.items():
        np.testing.assert_array_equal(
            panel.log_prices[name].to_numpy(), np.log(series.iloc[24:48].to_numpy())
        )
    assert panel.not_covered == {} and panel.bad == {}
    assert panel.start == START and panel.end == END


def test_window_edges_are_start_inclusive_end_exclusive() -> None:
    exact = prices(3)[START : END - HOUR]  # exactly the window's candles
    panel = build({"EXACT": exact, "FULL": prices(4)})
    assert list(panel.log_prices.columns) == ["EXACT", "FULL"]
    np.testing.assert_array_equal(panel.log_prices["EXACT"].to_numpy(), np.log(exact.to_numpy()))
    # Unsorted input and defects outside the window do not matter.
    outside = prices(5)
    outside.iloc[3] = np.nan
    outside = outside.drop(INDEX[60])
    # Duplicated candles just outside the window, on both edges.
    outside = pd.concat([outside, outside[[START - HOUR, END]] * 1.5]).iloc[::-1]
    panel = build({"OUT": outside})
    assert "OUT" in panel.log_prices and panel.bad == {}
    np.testing.assert_array_equal(
        panel.log_prices["OUT"].to_numpy(),
        np.log(outside.sort_index()[START : INDEX[47]].to_numpy()),
    )


def test_coins_not_spanning_the_window_are_left_out_with_a_message() -> None:
    closes = {
        "OK": prices(1),
        "LATE": prices(2)[INDEX[25] :],  # listed one candle after the window start
        "EARLY": prices(3)[: INDEX[46]],  # delisted before the last window candle
        "EMPTY": pd.Series(dtype="float64", index=pd.DatetimeIndex([], tz="UTC")),
    }
    panel = build(closes)
    assert list(panel.log_prices.columns) == ["OK"]
    assert set(panel.not_covered) == {"LATE", "EARLY", "EMPTY"}
    assert panel.bad == {}
    assert str(INDEX[25]) in panel.not_covered["LATE"]
    assert str(START) in panel.not_covered["LATE"]
    assert str(INDEX[46]) in panel.not_covered["EARLY"]
    assert panel.not_covered["EMPTY"]


def test_gap_is_bad_and_names_the_first_missing_candle() -> None:
    gappy = prices(2).drop([INDEX[30], INDEX[31], INDEX[40]])
    panel = build({"OK": prices(1), "GAP": gappy})
    assert list(panel.log_prices.columns) == ["OK"]
    assert set(panel.bad) == {"GAP"}
    assert "GAP" not in panel.not_covered
    msg = panel.bad["GAP"]
    assert "3 missing" in msg
    assert str(INDEX[30]) in msg


@pytest.mark.parametrize(
    ("value", "words"),
    [(np.nan, "NaN"), (np.inf, "infinite"), (0.0, "non-positive"), (-5.0, "non-positive")],
)
def test_bad_values_inside_the_window_are_reported_with_their_time(
    value: float, words: str
) -> None:
    broken = prices(2)
    broken.iloc[37] = value
    broken.iloc[41] = value  # only the first one is named
    panel = build({"OK": prices(1), "BROKEN": broken})
    assert list(panel.log_prices.columns) == ["OK"]
    assert set(panel.bad) == {"BROKEN"}
    assert words in panel.bad["BROKEN"]
    assert str(INDEX[37]) in panel.bad["BROKEN"]
    assert str(INDEX[41]) not in panel.bad["BROKEN"]


def test_duplicate_candles_are_bad() -> None:
    base = prices(2)
    dup = pd.concat([base, base.iloc[[33]] * 1.01])
    panel = build({"OK": prices(1), "DUP": dup})
    assert list(panel.log_prices.columns) == ["OK"]
    assert "duplicate" in panel.bad["DUP"]
    assert str(INDEX[33]) in panel.bad["DUP"]


def test_every_coin_bad_gives_an_empty_panel_not_an_error() -> None:
    broken = prices(2)
    broken.iloc[30] = np.nan
    panel = build({"BROKEN": broken, "LATE": prices(1)[INDEX[30] :]})
    assert panel.log_prices.shape == (24, 0)
    assert set(panel.bad) == {"BROKEN"} and set(panel.not_covered) == {"LATE"}


@pytest.mark.parametrize(
    ("start", "end", "freq", "message"),
    [
        (END, START, HOUR, "not after its start"),
        (START, START, HOUR, "not after its start"),
        (START, END, pd.Timedelta(0), "must be positive"),
        (START, END, -HOUR, "must be positive"),
    ],
)
def test_bad_window_raises_panel_error(
    start: pd.Timestamp, end: pd.Timestamp, freq: pd.Timedelta, message: str
) -> None:
    with pytest.raises(PanelError, match=message):
        build_log_panel({"OK": prices(1)}, start, end, freq)
    assert issubclass(PanelError, ValueError)

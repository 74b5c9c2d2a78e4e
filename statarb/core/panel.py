"""Building the log-price panel a formation window is tested on.

Why a module of its own: the scanner, the strategy and the pairlist all cut a window out
of per-coin candle series, and they must agree on what makes a coin unusable (it does not
span the window, it has a gap, a NaN or a non-positive price). Nothing is ever filled in
silently: a coin is either complete over the window or it is left out with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["PanelError", "WindowPanel", "build_log_panel"]


class PanelError(ValueError):
    """The window cannot be built from the given data; the message says why."""


@dataclass
class WindowPanel:
    """Log prices over a window plus the coins left out and why.

    ``not_covered`` coins do not span the window (listed later or delisted earlier);
    ``bad`` coins span it but have gaps, NaN or non-positive prices inside it.
    """

    log_prices: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    not_covered: dict[str, str] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)


def build_log_panel(
    closes: dict[str, pd.Series],
    start: pd.Timestamp,
    end: pd.Timestamp,
    freq: pd.Timedelta,
) -> WindowPanel:
    """Log closes of every coin with a complete candle series on ``[start, end)``.

    ``closes`` maps a coin or pair name to its close series indexed by candle open time.
    The window holds the candles ``start, start + freq, ..., end - freq``.
    """
    if freq <= pd.Timedelta(0):
        raise PanelError(f"candle length must be positive, got {freq}")
    if end <= start:
        raise PanelError(f"window end {end} is not after its start {start}")
    expected = pd.date_range(start, end, freq=freq, inclusive="left")
    if len(expected) == 0:
        raise PanelError(f"window {start} .. {end} holds no {freq} candle")
    columns: dict[str, np.ndarray] = {}
    not_covered: dict[str, str] = {}
    bad: dict[str, str] = {}
    for name, series in closes.items():
        if series.empty:
            not_covered[name] = "no candles"
            continue
        first, last = series.index.min(), series.index.max()
        if first > expected[0] or last < expected[-1]:
            not_covered[name] = f"data covers {first} .. {last}, window needs {start} .. {end}"
            continue
        window = series[(series.index >= start) & (series.index < end)]
        if window.index.has_duplicates:
            bad[name] = f"duplicate candle at {window.index[window.index.duplicated()][0]}"
            continue
        missing = expected.difference(window.index)
        if len(missing):
            bad[name] = f"{len(missing)} missing candle(s) in the window, first at {missing[0]}"
            continue
        values = window.reindex(expected).to_numpy(dtype=np.float64)
        nonfinite = ~np.isfinite(values)
        if nonfinite.any():
            bad[name] = f"NaN or infinite close at {expected[np.argmax(nonfinite)]}"
            continue
        if (values <= 0).any():
            bad[name] = f"non-positive close at {expected[np.argmax(values <= 0)]}"
            continue
        columns[name] = np.log(values)
    panel = pd.DataFrame(columns, index=expected)
    return WindowPanel(panel, pd.Timestamp(start), pd.Timestamp(end), not_covered, bad)

"""Reading a Freqtrade datadir with Freqtrade's own data handlers.

Why through Freqtrade: the datadir layout, file naming and formats (feather, parquet,
json) are Freqtrade's; its loader is the reference for what a backtest will see.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from freqtrade.configuration import TimeRange
from freqtrade.data.history import get_datahandler, load_pair_history
from freqtrade.enums import CandleType, TradingMode

from statarb.ft import FREQTRADE_VERSION

__all__ = [
    "FREQTRADE_VERSION", "available_pairs", "load_closes", "load_frames", "load_funding",
    "timerange_from_string",
]


def available_pairs(
    datadir: Path, timeframe: str = "1h", data_format: str = "feather"
) -> list[str]:
    """Futures pairs (``BTC/USDT:USDT``) with trade candles of ``timeframe`` in ``datadir``."""
    handler = get_datahandler(datadir, data_format)
    found = handler.ohlcv_get_available_data(datadir, TradingMode.FUTURES)
    return sorted(
        {pair for pair, tf, ctype in found if tf == timeframe and ctype == CandleType.FUTURES}
    )


def timerange_from_string(text: str | None) -> TimeRange | None:
    """Parse Freqtrade's ``YYYYMMDD-YYYYMMDD`` timerange syntax (None passes through)."""
    return TimeRange.parse_timerange(text) if text else None


def load_closes(
    datadir: Path,
    pairs: list[str],
    timeframe: str = "1h",
    timerange: TimeRange | None = None,
    data_format: str = "feather",
) -> dict[str, pd.Series]:
    """Close prices per pair as loaded by Freqtrade, without filling gaps.

    Gaps are left as they are (``fill_up_missing=False``) so the caller can detect and
    report them instead of trading on forward-filled prices. Pairs with no data in the
    range map to an empty series.
    """
    handler = get_datahandler(datadir, data_format)
    out: dict[str, pd.Series] = {}
    for pair in pairs:
        frame = load_pair_history(
            pair,
            timeframe,
            datadir,
            timerange=timerange,
            fill_up_missing=False,
            data_handler=handler,
            candle_type=CandleType.FUTURES,
        )
        out[pair] = (
            frame.set_index("date")["close"].astype("float64")
            if not frame.empty
            else pd.Series(dtype="float64")
        )
    return out


def load_frames(
    datadir: Path,
    pairs: list[str],
    timeframe: str = "1h",
    timerange: TimeRange | None = None,
    data_format: str = "feather",
) -> dict[str, pd.DataFrame]:
    """OHLCV frames per pair exactly as a Freqtrade backtest sees them (gaps filled the
    way Freqtrade fills them), for comparing the core's plan with a backtest's trades."""
    handler = get_datahandler(datadir, data_format)
    out: dict[str, pd.DataFrame] = {}
    for pair in pairs:
        frame = load_pair_history(
            pair, timeframe, datadir, timerange=timerange, fill_up_missing=True,
            data_handler=handler, candle_type=CandleType.FUTURES,
        )
        if not frame.empty:
            out[pair] = frame
    return out


def load_funding(
    datadir: Path,
    pairs: list[str],
    timerange: TimeRange | None = None,
    data_format: str = "feather",
) -> dict[str, pd.DataFrame]:
    """Funding per unit of position at each funding time, per pair, as Freqtrade's
    backtest charges it: its own loader and its own combination of the funding-rate and
    mark-price candles (``rate * mark open``). Columns ``date``, ``fee_per_unit``; pairs
    without both files are left out."""
    from freqtrade.exchange import Exchange

    handler = get_datahandler(datadir, data_format)
    out: dict[str, pd.DataFrame] = {}
    for pair in pairs:
        rates, marks = (
            load_pair_history(
                pair, "1h", datadir, timerange=timerange, fill_up_missing=fill,
                data_handler=handler, candle_type=ctype,
            )
            for ctype, fill in ((CandleType.FUNDING_RATE, False), (CandleType.MARK, True))
        )
        if rates.empty or marks.empty:
            continue
        combined = Exchange.combine_funding_and_mark(rates, marks)
        out[pair] = pd.DataFrame({
            "date": combined["date"].to_numpy(),
            "fee_per_unit": combined["_ff_fee_per_unit"].to_numpy(dtype="float64"),
        }) if "_ff_fee_per_unit" in combined else pd.DataFrame(
            {"date": combined["date"], "fee_per_unit": combined["open_fund"]
             * combined["open_mark"]})
    return out

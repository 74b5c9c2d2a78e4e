"""Recorded market data behind the simulator: exchangeInfo plus per-symbol feather files.

Files are read lazily, on the first request that needs a symbol, and cached for the life of
the server: a download touches three or four coins, so loading all 105 files up front would
only slow down every test. Values are kept as the exact float64 on disk, because the
simulator promises that data downloaded through it equals the source bit for bit.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from statarb.sim.clock import HOUR_MS

REPO_ROOT = Path(__file__).resolve().parents[2]
"""Repository root (parent of the ``statarb`` package), so defaults work from any cwd."""

DEFAULT_DATADIR = (REPO_ROOT / ".." / "shared" / "data" / "binance").resolve()
DEFAULT_MARKETS = (
    REPO_ROOT / ".." / "shared" / "markets" / "binance_usdm_exchangeInfo.json"
).resolve()

CandleKind = Literal["futures", "mark"]


#: Candle widths a datadir's trade-candle files may have, finest first, by Freqtrade's name.
FILE_TIMEFRAMES: dict[str, int] = {"1m": 60_000, "5m": 300_000, "15m": 900_000,
                                   "30m": 1_800_000, "1h": HOUR_MS}


@dataclass(frozen=True)
class Candles:
    """Column arrays of candles sorted by open time (epoch ms, int64), each ``width_ms``
    wide: 5m files serve 5m rows, and everything coarser is resampled from them."""

    open_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    width_ms: int = HOUR_MS

    def __len__(self) -> int:
        return len(self.open_ms)

    def take(self, sl: slice) -> Candles:
        """Rows in ``sl`` (a view, no copy)."""
        return Candles(
            self.open_ms[sl],
            self.open[sl],
            self.high[sl],
            self.low[sl],
            self.close[sl],
            self.volume[sl],
            self.width_ms,
        )


@dataclass(frozen=True)
class Funding:
    """Funding events: settlement time (epoch ms) and rate, sorted by time."""

    time_ms: np.ndarray
    rate: np.ndarray

    def __len__(self) -> int:
        return len(self.time_ms)


@dataclass(frozen=True)
class SymbolInfo:
    """What the simulator needs from one exchangeInfo entry."""

    symbol: str
    stem: str | None
    """Freqtrade file stem (``BTC_USDT_USDT``) when data files exist, else None."""
    tick: Decimal
    step: Decimal


def _dates_ms(series: pd.Series) -> np.ndarray:
    """Datetime column -> int64 epoch ms, independent of the stored unit (ns, us, ms)."""
    return series.dt.as_unit("ms").astype("int64").to_numpy()


def _filter(entry: dict, kind: str, key: str, default: str) -> Decimal:
    for flt in entry.get("filters", []):
        if flt.get("filterType") == kind and key in flt:
            return Decimal(str(flt[key]))
    return Decimal(default)


def _base_timeframe(futures_dir: Path) -> str:
    """The finest timeframe of the ``*-<tf>-futures.feather`` files in ``futures_dir``.

    Raises :class:`ValueError` when the folder holds candle files of two widths: which one
    the simulator serves must not depend on which coin a client asks for first.
    """
    found = {path.name.rsplit("-", 2)[-2] for path in futures_dir.glob("*-futures.feather")}
    known = [tf for tf in FILE_TIMEFRAMES if tf in found]
    if len(known) > 1:
        raise ValueError(f"{futures_dir} holds futures candles of several timeframes "
                         f"{known}; give the simulator a datadir with one")
    return known[0] if known else "1h"


class MarketData:
    """exchangeInfo and the feather files of one freqtrade datadir, loaded on demand."""

    def __init__(self, datadir: Path | str, markets_file: Path | str) -> None:
        self.datadir = Path(datadir)
        self.markets_file = Path(markets_file)
        if not self.datadir.is_dir():
            raise FileNotFoundError(f"datadir not found: {self.datadir}")
        if not self.markets_file.is_file():
            raise FileNotFoundError(f"markets file not found: {self.markets_file}")
        self.futures_dir = self.datadir / "futures"
        self.base_timeframe = _base_timeframe(self.futures_dir)
        """The finest trade-candle timeframe in the datadir: served as is, the rest resampled."""
        self.base_ms = FILE_TIMEFRAMES[self.base_timeframe]
        # Served byte for byte: ccxt must parse exactly what Binance sent.
        self.exchange_info_bytes = self.markets_file.read_bytes()
        info = json.loads(self.exchange_info_bytes)
        self.symbols: dict[str, SymbolInfo] = {}
        for entry in info.get("symbols", []):
            stem = None
            if entry.get("contractType") == "PERPETUAL":
                candidate = f"{entry['baseAsset']}_{entry['quoteAsset']}_{entry['marginAsset']}"
                if self._path(candidate, "futures").is_file():
                    stem = candidate
            self.symbols[entry["symbol"]] = SymbolInfo(
                symbol=entry["symbol"],
                stem=stem,
                tick=_filter(entry, "PRICE_FILTER", "tickSize", "0.00000001"),
                step=_filter(entry, "LOT_SIZE", "stepSize", "0.001"),
            )
        self._cache: dict[tuple[str, str], Candles | Funding | None] = {}
        self._lock = threading.Lock()

    def _path(self, stem: str, suffix: str) -> Path:
        # Marks and funding come hourly beside any candle width (Freqtrade downloads them
        # at 1h: its mark_ohlcv_timeframe and funding_fee_timeframe on Binance).
        timeframe = self.base_timeframe if suffix == "futures" else "1h"
        return self.futures_dir / f"{stem}-{timeframe}-{suffix}.feather"

    @property
    def symbols_with_data(self) -> list[str]:
        """Exchange symbols (``BTCUSDT``) that have a candle file, in exchangeInfo order."""
        return [s for s, i in self.symbols.items() if i.stem is not None]

    def candles(self, symbol: str, kind: CandleKind = "futures") -> Candles | None:
        """Trade-price (``futures``) or ``mark`` candles of ``symbol``, None without a file."""
        loaded = self._load(symbol, kind)
        assert loaded is None or isinstance(loaded, Candles)
        return loaded

    def funding(self, symbol: str) -> Funding | None:
        """Funding events of ``symbol``, None without a file."""
        loaded = self._load(symbol, "funding_rate")
        assert loaded is None or isinstance(loaded, Funding)
        return loaded

    def _load(self, symbol: str, suffix: str) -> Candles | Funding | None:
        key = (symbol, suffix)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        info = self.symbols.get(symbol)
        result: Candles | Funding | None = None
        if info is not None and info.stem is not None:
            path = self._path(info.stem, suffix)
            if path.is_file():
                df = pd.read_feather(path).sort_values("date", kind="stable")
                if suffix == "funding_rate":
                    result = Funding(_dates_ms(df["date"]), df["funding_rate"].to_numpy("float64"))
                else:
                    result = Candles(
                        _dates_ms(df["date"]),
                        *(
                            df[c].to_numpy("float64")
                            for c in ("open", "high", "low", "close", "volume")
                        ),
                        width_ms=self.base_ms if suffix == "futures" else HOUR_MS,
                    )
        with self._lock:
            self._cache[key] = result
        return result

    def first_ms(self) -> int:
        """Earliest trade-candle open over all symbols (reads only the date columns)."""
        starts = [
            int(_dates_ms(pd.read_feather(self._path(self.symbols[s].stem or "", "futures"),
                                          columns=["date"])["date"]).min())
            for s in self.symbols_with_data
        ]
        if not starts:
            raise ValueError(f"no candle files for any exchangeInfo symbol in {self.futures_dir}")
        return min(starts)

    def data_end_ms(self) -> int:
        """Last trade-candle close over all symbols: the default replay instant.

        Reads only the date column of each candle file, so it stays cheap and does not
        fill the cache with data nobody asked for.
        """
        end = 0
        for symbol in self.symbols_with_data:
            stem = self.symbols[symbol].stem
            assert stem is not None
            dates = pd.read_feather(self._path(stem, "futures"), columns=["date"])["date"]
            if len(dates):
                end = max(end, int(_dates_ms(dates).max()) + self.base_ms)
        if end == 0:
            raise ValueError(f"no candle files for any exchangeInfo symbol in {self.futures_dir}")
        return end

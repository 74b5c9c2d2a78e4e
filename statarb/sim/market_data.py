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


@dataclass(frozen=True)
class Candles:
    """Column arrays of 1h candles sorted by open time (epoch ms, int64)."""

    open_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

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
        return self.futures_dir / f"{stem}-1h-{suffix}.feather"

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
                    )
        with self._lock:
            self._cache[key] = result
        return result

    def data_end_ms(self) -> int:
        """Last trade-candle open + 1h over all symbols: the default replay instant.

        Reads only the date column of each candle file, so it stays cheap and does not
        fill the cache with data nobody asked for.
        """
        end = 0
        for symbol in self.symbols_with_data:
            stem = self.symbols[symbol].stem
            assert stem is not None
            dates = pd.read_feather(self._path(stem, "futures"), columns=["date"])["date"]
            if len(dates):
                end = max(end, int(_dates_ms(dates).max()) + HOUR_MS)
        if end == 0:
            raise ValueError(f"no candle files for any exchangeInfo symbol in {self.futures_dir}")
        return end

"""Access to the real shared data beside the project root, for tests.

The data lives in ../shared (never copied into the project); tests fail loudly, with
the path they looked at, when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATADIR = SHARED / "data" / "binance"
FUTURES = DATADIR / "futures"
DATADIR_5M = SHARED / "data" / "binance_5m"
"""Eleven liquid coins' 5-minute candles (with 1h marks and funding), for intraday runs."""
FUTURES_5M = DATADIR_5M / "futures"
MARKETS = SHARED / "markets" / "binance_usdm_exchangeInfo.json"
CCXT_MARKETS = SHARED / "markets" / "binance_usdm_markets.json"


def require_shared() -> None:
    if not FUTURES.is_dir():
        raise FileNotFoundError(
            f"shared data not found at {FUTURES}: the tests need ../shared beside the project"
        )


def coins() -> list[str]:
    require_shared()
    return sorted(p.name.split("_")[0] for p in FUTURES.glob("*_USDT_USDT-1h-futures.feather"))


def close_panel(names: list[str] | None = None) -> pd.DataFrame:
    """Close prices of the shared coins, one column per coin, indexed by candle time."""
    names = names or coins()
    series = {
        c: pd.read_feather(FUTURES / f"{c}_USDT_USDT-1h-futures.feather").set_index("date")["close"]
        for c in names
    }
    return pd.DataFrame(series)


def log_window(end: str, candles: int, names: list[str] | None = None) -> pd.DataFrame:
    """Log closes of the coins that span the ``candles`` candles ending before ``end``."""
    panel = close_panel(names)
    window = panel[panel.index < pd.Timestamp(end, tz="UTC")].iloc[-candles:]
    return np.log(window.dropna(axis=1))

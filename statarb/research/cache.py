"""Formations on disk, keyed by what they depend on.

Why: the walk-forward selection (an Engle-Granger batch per re-formation) is the
expensive part of a backtest; every variant that changes only thresholds, sizing or costs
shares it. A formation depends on the candles, the selection and walk-forward settings,
and the code that computes it, so the key is a fingerprint of exactly those: the
coins, each coin's dates and opens and closes (hashed), the settings, and the source of
the modules that select (a code change never reuses a stale file).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from statarb.walkforward import Universe

__all__ = ["FormationCache", "data_fingerprint"]

logger = logging.getLogger(__name__)

_CODE = ("walkforward.py", "selection.py", "cointegration.py", "hedge.py")


def _code_fingerprint() -> str:
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in _CODE:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def data_fingerprint(frames: Mapping[str, pd.DataFrame]) -> str:
    """Hash of every coin's dates, opens and closes (what a formation reads)."""
    digest = hashlib.sha256()
    for coin in sorted(frames):
        frame = frames[coin]
        digest.update(coin.encode())
        dates = pd.DatetimeIndex(pd.to_datetime(frame["date"], utc=True)).as_unit("ns")
        digest.update(dates.asi8.tobytes())
        for col in ("open", "close"):
            digest.update(frame[col].to_numpy(dtype="float64").tobytes())
    return digest.hexdigest()


class FormationCache:
    """A folder of pickled :class:`Universe` objects; hits and build seconds counted."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0
        self.build_seconds = 0.0
        self.load_seconds = 0.0

    def key(self, frames: Mapping[str, pd.DataFrame], settings: Any) -> str:
        payload = json.dumps({
            "coins": list(frames),
            "data": data_fingerprint(frames),
            "selection": settings.selection.formation_dict(),
            "walk_forward": asdict(settings.walk_forward),
            "code": _code_fingerprint(),
        }, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def get_or_build(self, frames: Mapping[str, pd.DataFrame], settings: Any,
                     build: Callable[[], Universe]) -> Universe:
        path = self.folder / f"formations-{self.key(frames, settings)}.pkl"
        if path.exists():
            started = time.perf_counter()
            try:
                with path.open("rb") as fh:
                    universe = pickle.load(fh)
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
                logger.warning("statarb: unreadable formation cache %s (%s); rebuilding",
                               path, exc)
            else:
                self.hits += 1
                self.load_seconds += time.perf_counter() - started
                return universe
        started = time.perf_counter()
        universe = build()
        self.build_seconds += time.perf_counter() - started
        self.misses += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader (another process of the sweep) never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(universe, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        return universe

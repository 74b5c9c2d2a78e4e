"""The pairlist's published selection: couples the bot trades in dry-run and live.

Why a published record: the pairlist chooses couples, the strategy trades them, and
``make report`` and operators want to see them. In one bot process the strategy reads the
latest selection in memory (:func:`latest`); everyone else reads the JSON file the
pairlist writes next to the trade database (``user_data/statarb_selection.json``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from statarb.core.hedge import KALMAN_COLUMNS, has_kalman_state

__all__ = ["Couple", "Selection", "SelectionFile", "publish", "read", "selection_path"]

logger = logging.getLogger(__name__)

FILE_NAME = "statarb_selection.json"


@dataclass(frozen=True)
class Couple:
    """One chosen couple, in its traded orientation (``y`` on ``x``), pair names."""

    y: str
    x: str
    alpha: float
    beta: float
    half_life_hours: float
    pvalue: float
    pvalue_adj: float
    tstat: float
    # The Kalman hedge's filter state at the formation's end (statarb.core.hedge.KALMAN_COLUMNS),
    # None for a fixed ratio: a running bot filters on from there, as the backtest does.
    kalman: dict[str, float] | None = None

    @property
    def name(self) -> str:
        return f"{self.y.split('/')[0]}~{self.x.split('/')[0]}"


@dataclass(frozen=True)
class Selection:
    """A selection and where it came from: formation window [start, end) and when."""

    couples: tuple[Couple, ...]
    formation_start: datetime
    formation_end: datetime
    created: datetime
    timeframe: str
    skipped: dict[str, str] = field(default_factory=dict)  # pair -> reason
    # What produced it: the pairs offered and a fingerprint of the filter's settings, so
    # a restarted bot can tell whether this selection is still its own (see the filter).
    inputs: tuple[str, ...] = ()
    settings: str = ""

    @property
    def pairs(self) -> list[str]:
        """Coins of the selected couples, best couple first, y before x; a reference coin
        shared by several couples once."""
        return list(dict.fromkeys(p for c in self.couples for p in (c.y, c.x)))

    def couples_frame(self, coins: Collection[str], candle_hours: float) -> pd.DataFrame:
        """The couples whose coins are both in ``coins``, as the core's couple table
        (:func:`statarb.core.walkforward.from_couples`): coin names, half-life in candles, and
        the Kalman state columns when the couples were chosen with the Kalman hedge."""
        chosen = [c for c in self.couples
                  if c.y.split("/")[0] in coins and c.x.split("/")[0] in coins]
        kalman = bool(chosen) and all(c.kalman for c in chosen)
        return pd.DataFrame(
            [{"y": c.y.split("/")[0], "x": c.x.split("/")[0], "alpha": c.alpha, "beta": c.beta,
              "half_life": c.half_life_hours / candle_hours,
              **(c.kalman if kalman and c.kalman else {})} for c in chosen],
            columns=["y", "x", "alpha", "beta", "half_life",
                     *(KALMAN_COLUMNS if kalman else ())],
        )

    def filter_row(self, index: pd.DatetimeIndex) -> int:
        """Row of ``index`` where the formation window ended (the first candle after it):
        a Kalman ratio is filtered on from there. Candles before the bot's first one
        cannot be replayed; then its first row."""
        return int(index.searchsorted(pd.Timestamp(self.formation_end)))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["couples"] = [{**asdict(c), "name": c.name} for c in self.couples]
        for key in ("formation_start", "formation_end", "created"):
            out[key] = pd.Timestamp(out[key]).isoformat()
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Selection:
        couples = tuple(
            Couple(**{k: v for k, v in c.items() if k != "name"}) for c in doc["couples"]
        )
        return cls(
            couples=couples,
            formation_start=pd.Timestamp(doc["formation_start"]).to_pydatetime(),
            formation_end=pd.Timestamp(doc["formation_end"]).to_pydatetime(),
            created=pd.Timestamp(doc["created"]).to_pydatetime(),
            timeframe=doc["timeframe"],
            skipped=dict(doc.get("skipped", {})),
            inputs=tuple(doc.get("inputs", ())),
            settings=str(doc.get("settings", "")),
        )

    @classmethod
    def from_frame(
        cls, chosen: pd.DataFrame, pair_of: dict[str, str], *, formation_start: datetime,
        formation_end: datetime, created: datetime, timeframe: str,
        skipped: dict[str, str] | None = None, inputs: tuple[str, ...] = (),
        settings: str = "",
    ) -> Selection:
        """From :func:`statarb.core.selection.select_couples` output (coin names -> pairs)."""
        kalman = has_kalman_state(chosen)
        couples = tuple(
            Couple(
                y=pair_of[r.y], x=pair_of[r.x], alpha=float(r.alpha), beta=float(r.beta),
                half_life_hours=float(r.half_life_hours), pvalue=float(r.pvalue_couple),
                pvalue_adj=float(r.pvalue_adj), tstat=float(r.tstat),
                kalman={c: float(getattr(r, c)) for c in KALMAN_COLUMNS} if kalman else None,
            )
            for r in chosen.itertuples(index=False)
        )
        for c in couples:
            values = (c.alpha, c.beta, c.half_life_hours, *(c.kalman or {}).values())
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"couple {c.name} has non-finite values: {c}")
        return cls(couples, formation_start, formation_end, created, timeframe,
                   dict(skipped or {}), tuple(inputs), settings)


def selection_path(user_data_dir: str | Path | None) -> Path | None:
    """Where the pairlist publishes and the strategy and ``/couples`` read: the file in
    Freqtrade's ``user_data_dir`` (None without one)."""
    return Path(user_data_dir) / FILE_NAME if user_data_dir else None


def publish(selection: Selection, path: Path) -> None:
    """Write ``selection`` atomically to ``path`` (a new file replaces the old one, so a
    reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".statarb_selection", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(selection.to_dict(), handle, indent=2)
    os.replace(tmp, path)


class SelectionFile:
    """The selection the pairlist last published, read from its file when it changes.

    Why a file and not a value in memory: the pairlist and the strategy are separate
    Freqtrade plugins; the file is the one channel between them (and what ``/couples``
    and a restarted bot read), so what the strategy trades is what anyone can inspect.
    The file is read again only when it was replaced (inode, size or time changed).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._selection: Selection | None = None

    def latest(self) -> Selection | None:
        """The published selection; None before the first. A damaged file keeps the
        last good selection and is logged once per change."""
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return self._selection
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen != self._seen:
            self._seen = seen
            try:
                self._selection = read(self.path)
            except ValueError as exc:
                logger.warning("statarb: %s; keeping the last selection", exc)
        return self._selection


def read(path: Path) -> Selection:
    """The selection a pairlist wrote to ``path``."""
    try:
        return Selection.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read a statarb selection from {path}: {exc}") from exc

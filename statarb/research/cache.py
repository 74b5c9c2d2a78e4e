"""Formations on disk, keyed by what they depend on.

Why: the walk-forward selection (an Engle-Granger batch per re-formation) is the
expensive part of a backtest; every variant that changes only thresholds, sizing or costs
shares it. A formation depends on the candles, the selection and walk-forward settings,
and the code that computes it, so the key is a fingerprint of exactly those:

- the coins, each coin's dates and opens and closes (hashed), and the settings;
- the source of every project module that computing a formation executes, found from
  the imports themselves (:func:`module_closure`, from :data:`CODE_ROOTS`), so a module
  added later is covered without anyone listing it; and the versions of the libraries
  those modules import (a statsmodels upgrade can move a p-value).

The file is named after the data and settings only; the code fingerprint is stored inside
it. A file written by other code is therefore found, refused, rebuilt and overwritten, and
the log names the modules that changed (one line), instead of stale files piling up.

The format holds only arrays and plain data: one ``.npz`` read with
``allow_pickle=False`` plus a JSON header. A cache folder may be shared (a sweep's
workers, a copied ``user_data``), and unpickling a file from it would run whatever code
the file names; here loading can only ever produce numbers, strings and the project's own
:class:`~statarb.core.walkforward.Universe` built from them.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from statarb.core.walkforward import Formation, Universe, WalkForwardParams

__all__ = ["CODE_ROOTS", "FormationCache", "code_fingerprint", "data_fingerprint",
           "module_closure"]

logger = logging.getLogger(__name__)

#: Modules a cached formation depends on by their code: the walk-forward (which computes
#: it; everything it imports follows) and this module (which writes and reads it).
CODE_ROOTS = ("statarb.core.walkforward", __name__)
#: Bumped when the file layout changes in a way the source digest would not show.
FORMAT = 1
PACKAGE_DIR = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- code fingerprint
def _module_file(package_dir: Path, module: str) -> Path | None:
    """The source file of a project module (``statarb.x.y``), or None if it is not one."""
    parts = module.split(".")
    if parts[0] != package_dir.name:
        return None
    base = package_dir.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Every module an ``import`` anywhere in the file names (lazy ones inside functions
    included), with relative imports resolved and ``from a import b`` read as both ``a``
    and ``a.b`` (``b`` may be a submodule)."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def module_closure(package_dir: Path = PACKAGE_DIR,
                   roots: Iterable[str] = CODE_ROOTS) -> dict[str, Path]:
    """The project modules that importing ``roots`` executes: the roots, every project
    module they import (transitively) and the packages (``__init__.py``) on the way.

    Returns module name -> source file, sorted by name. Third-party imports are left out
    here (their versions enter the fingerprint instead: :func:`code_fingerprint`).
    """
    found: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in found:
            continue
        path = _module_file(package_dir, module)
        if path is None:
            continue
        found[module] = path
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        todo.extend(_imports(path, module))
    missing = [r for r in roots if r not in found]
    if missing:
        raise ValueError(f"code roots {missing} are not modules under {package_dir}")
    return dict(sorted(found.items()))


def _libraries(closure: Mapping[str, Path], package: str) -> dict[str, str]:
    """Installed versions of the third-party distributions the closure imports."""
    names: set[str] = set()
    for module, path in closure.items():
        for imported in _imports(path, module):
            top = imported.split(".")[0]
            if top and top != package and top not in sys.stdlib_module_names:
                names.add(top)
    dists = importlib.metadata.packages_distributions()
    versions: dict[str, str] = {}
    for top in sorted(names):
        for dist in dists.get(top, []):
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def code_fingerprint(package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """``{module: sha256 of its source}`` over :func:`module_closure`, plus
    ``{"lib:<distribution>": version}`` for the libraries it imports."""
    closure = module_closure(package_dir)
    digests = {m: hashlib.sha256(p.read_bytes()).hexdigest() for m, p in closure.items()}
    libraries = _libraries(closure, package_dir.name)
    return {**digests, **{f"lib:{name}": v for name, v in libraries.items()}}


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


def _digest(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# ---------------------------------------------------------------------- file format
class _Unstorable(TypeError):
    """A universe holds a value the plain-data format cannot represent."""


def _column(series: pd.Series) -> tuple[str, np.ndarray]:
    """A couple-table column as ``(dtype name, plain array)``: numbers and booleans as
    they are, text as a fixed-width unicode array (never an object array)."""
    dtype = series.dtype
    if dtype.kind in "biuf":
        return str(dtype), series.to_numpy()
    values = series.tolist()
    if all(isinstance(v, str) for v in values):
        return str(dtype), np.array(values, dtype=str) if values else np.array([], "U1")
    raise _Unstorable(f"column {series.name!r} of dtype {dtype} holds non-text objects")


def _restore_column(dtype: str, values: np.ndarray) -> Any:
    if values.dtype.kind == "U":
        return pd.array(values.tolist(), dtype=dtype) if dtype != "object" else \
            np.array(values.tolist(), dtype=object)
    return values.astype(dtype, copy=False)


def _encode(universe: Universe, code: Mapping[str, str], key: str) -> dict[str, np.ndarray]:
    index = universe.index
    arrays: dict[str, np.ndarray] = {
        "index": index.as_unit("ns").asi8,
        "closes": universe.closes,
        "opens": universe.opens,
    }
    series: dict[str, list[np.ndarray]] = {"z": [], "spread": [], "spread_std": [],
                                           "alpha": [], "beta": []}
    columns: dict[str, list[np.ndarray]] = {}
    formations = []
    for f in universe.formations:
        couples = f.couples
        if not isinstance(couples.index, pd.RangeIndex) or couples.index.start != 0 \
                or couples.index.step != 1:
            raise _Unstorable("a formation's couple table has an index other than 0..n-1")
        cols = []
        for name in couples.columns:
            dtype, values = _column(couples[name])
            tag = f"{name}|{values.dtype.kind}"
            columns.setdefault(tag, []).append(values)
            cols.append([str(name), dtype, tag])
        kalman = f.alpha is not None
        if kalman != (f.beta is not None):
            raise _Unstorable("a formation has a Kalman alpha without beta or the reverse")
        for name in ("z", "spread", "spread_std") + (("alpha", "beta") if kalman else ()):
            series[name].append(np.asarray(getattr(f, name), dtype=np.float64))
        formations.append({
            "start": int(f.start), "time": pd.Timestamp(f.time).as_unit("ns").value,
            "rows": len(couples), "span": int(f.z.shape[1]) if f.z.ndim == 2 else 0,
            "columns": cols, "universe": list(f.universe), "kalman": kalman,
        })
    span = universe.params.span
    for name, parts in series.items():
        arrays[f"series:{name}"] = (np.concatenate(parts) if parts
                                    else np.empty((0, span), dtype=np.float64))
    for tag, parts in columns.items():
        arrays[f"column:{tag}"] = np.concatenate(parts)
    meta = {
        "format": FORMAT, "key": key, "code": dict(code),
        "index": {"tz": str(index.tz) if index.tz else None,
                  "unit": index.unit, "freq": index.freqstr},
        "coins": list(universe.coins), "params": asdict(universe.params),
        "formations": formations,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return arrays


def _read_meta(npz: Any) -> dict[str, Any]:
    return json.loads(npz["meta"].tobytes().decode())


def _decode(npz: Any, meta: Mapping[str, Any]) -> Universe:
    info = meta["index"]
    index = pd.DatetimeIndex(npz["index"].astype("datetime64[ns]"), freq=info["freq"])
    if info["tz"]:
        index = index.tz_localize("UTC").tz_convert(info["tz"])
    index = index.as_unit(info["unit"])
    offsets = dict.fromkeys(["z", "spread", "spread_std", "alpha", "beta"], 0)
    column_offsets: dict[str, int] = {}
    series = {name: npz[f"series:{name}"] for name in offsets}
    columns = {k.removeprefix("column:"): npz[k] for k in npz.files if k.startswith("column:")}
    formations = []
    for fm in meta["formations"]:
        rows = fm["rows"]
        data = {}
        for name, dtype, tag in fm["columns"]:
            lo = column_offsets.get(tag, 0)
            data[name] = _restore_column(dtype, columns[tag][lo:lo + rows])
            column_offsets[tag] = lo + rows
        couples = pd.DataFrame(data, columns=[c[0] for c in fm["columns"]],
                               index=pd.RangeIndex(rows))
        values: dict[str, np.ndarray | None] = {}
        for name in ("z", "spread", "spread_std", "alpha", "beta"):
            if name in ("alpha", "beta") and not fm["kalman"]:
                values[name] = None
                continue
            lo = offsets[name]
            values[name] = series[name][lo:lo + rows]
            offsets[name] = lo + rows
        formations.append(Formation(
            start=fm["start"], time=pd.Timestamp(fm["time"], tz="UTC").as_unit(info["unit"]),
            couples=couples, universe=list(fm["universe"]), **values))
    return Universe(index=index, coins=list(meta["coins"]), closes=npz["closes"],
                    opens=npz["opens"], params=WalkForwardParams(**meta["params"]),
                    formations=formations)


def _changed(stored: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    return sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))


# ---------------------------------------------------------------------- the cache
class FormationCache:
    """A folder of formation files (``formations-<data and settings>.npz``); hits,
    misses and build seconds counted. ``package_dir``: the source tree whose code the
    key fingerprints (the installed package; a test points it at an edited copy)."""

    def __init__(self, folder: Path, package_dir: Path = PACKAGE_DIR) -> None:
        self.folder = Path(folder)
        self.package_dir = Path(package_dir)
        self.hits = 0
        self.misses = 0
        self.build_seconds = 0.0
        self.load_seconds = 0.0
        self._code: dict[str, str] | None = None

    @property
    def code(self) -> dict[str, str]:
        """The code fingerprint, computed once per cache object (a sweep asks often)."""
        if self._code is None:
            self._code = code_fingerprint(self.package_dir)
        return self._code

    def _inputs(self, frames: Mapping[str, pd.DataFrame], settings: Any) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "coins": list(frames),
            "data": data_fingerprint(frames),
            "selection": settings.selection.formation_dict(),
            "walk_forward": asdict(settings.walk_forward),
        }

    def key(self, frames: Mapping[str, pd.DataFrame], settings: Any) -> str:
        """The whole key: data, settings and code."""
        return _digest({**self._inputs(frames, settings), "code": self.code})

    def path(self, frames: Mapping[str, pd.DataFrame], settings: Any) -> Path:
        """The file for this data and these settings (whatever code wrote it)."""
        return self.folder / f"formations-{_digest(self._inputs(frames, settings))}.npz"

    def _load(self, path: Path, key: str) -> Universe | None:
        """The universe in ``path`` if it was written for ``key``; else None, logged."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                meta = _read_meta(npz)
                if meta.get("key") != key:
                    changed = _changed(meta.get("code", {}), self.code)
                    logger.warning(
                        "statarb: formation cache %s was written by other code (changed: %s);"
                        " rebuilding", path.name, ", ".join(changed) or "format")
                    return None
                return _decode(npz, meta)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            logger.warning("statarb: unreadable formation cache %s (%s: %s); rebuilding",
                           path.name, type(exc).__name__, exc)
            return None

    def get_or_build(self, frames: Mapping[str, pd.DataFrame], settings: Any,
                     build: Callable[[], Universe]) -> Universe:
        key = self.key(frames, settings)
        path = self.path(frames, settings)
        if path.exists():
            started = time.perf_counter()
            universe = self._load(path, key)
            if universe is not None:
                self.hits += 1
                self.load_seconds += time.perf_counter() - started
                return universe
        started = time.perf_counter()
        universe = build()
        self.build_seconds += time.perf_counter() - started
        self.misses += 1
        try:
            arrays = _encode(universe, self.code, key)
        except _Unstorable as exc:
            logger.warning("statarb: formations not cached (%s)", exc)
            return universe
        self.folder.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader (another process of the sweep) never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        return universe

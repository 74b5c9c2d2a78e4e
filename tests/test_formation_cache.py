"""The formation cache: its code key is derived from the imports, a file from other code is
rebuilt with one log line, and loading a file can never run code."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from statarb.core.settings import StrategySettings
from statarb.core.walkforward import Universe, walk_forward
from statarb.research.cache import (
    PACKAGE_DIR,
    FormationCache,
    code_fingerprint,
    data_fingerprint,
    module_closure,
)
from tests.shared_data import FUTURES, require_shared

HOUR = pd.Timedelta(hours=1)
COINS = ["BTC", "ETH", "SOL", "AVAX", "LINK", "DOT"]
SMALL = {"formation_days": 20, "reform_hours": 24, "z_window_hours": 60, "horizon_hours": 168}


def settings(**selection) -> StrategySettings:
    return StrategySettings.from_config(
        {"statarb": {"walk_forward": SMALL, "selection": selection}}, HOUR)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    """Six real coins over the last 1,500 hours of 2025 (enough for a few formations)."""
    require_shared()
    out = {}
    for coin in COINS:
        frame = pd.read_feather(FUTURES / f"{coin}_USDT_USDT-1h-futures.feather")
        frame = frame[frame["date"] < pd.Timestamp("2026-01-01", tz="UTC")]
        out[f"{coin}/USDT:USDT"] = frame.iloc[-1500:].reset_index(drop=True)
    return out


@pytest.fixture()
def package_copy(tmp_path: Path) -> Path:
    """A copy of the package's source tree, to edit."""
    copy = tmp_path / "src" / PACKAGE_DIR.name
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def assert_same(a: Universe, b: Universe) -> None:
    assert b.index.equals(a.index) and b.index.dtype == a.index.dtype
    assert b.index.freq == a.index.freq and b.coins == a.coins and b.params == a.params
    np.testing.assert_array_equal(b.closes, a.closes)
    np.testing.assert_array_equal(b.opens, a.opens)
    assert len(b.formations) == len(a.formations)
    for fa, fb in zip(a.formations, b.formations, strict=True):
        assert (fb.start, fb.time, fb.universe) == (fa.start, fa.time, fa.universe)
        pd.testing.assert_frame_equal(fb.couples, fa.couples, check_exact=True)
        for name in ("z", "spread", "spread_std", "alpha", "beta"):
            va, vb = getattr(fa, name), getattr(fb, name)
            assert (va is None) == (vb is None), name
            if va is not None:
                np.testing.assert_array_equal(vb, va)


# ---------------------------------------------------------------------- the closure
def test_closure_follows_imports_lazy_relative_and_parent_packages(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "root.py").write_text(
        "import numpy\nfrom . import near\nfrom .sub.deep import thing\n"
        "def later():\n    import pkg.lazy\n")
    (pkg / "near.py").write_text("from pkg.sub import other\n")
    (pkg / "sub" / "deep.py").write_text("from ..far import x\n")
    (pkg / "sub" / "other.py").write_text("")
    (pkg / "far.py").write_text("")
    (pkg / "lazy.py").write_text("")
    (pkg / "unused.py").write_text("import pkg.root\n")
    closure = module_closure(pkg, ["pkg.root"])
    assert list(closure) == ["pkg", "pkg.far", "pkg.lazy", "pkg.near", "pkg.root", "pkg.sub",
                             "pkg.sub.deep", "pkg.sub.other"]
    with pytest.raises(ValueError, match=r"\['pkg.nothing'\] are not modules"):
        module_closure(pkg, ["pkg.nothing"])


def test_code_key_changes_with_each_module_a_formation_imports_and_no_other(
        tmp_path: Path, package_copy: Path, frames) -> None:
    closure = module_closure(package_copy)
    # What the walk-forward really runs is in it: the engines, the kernel, the selection.
    for module in ("statarb.core.walkforward", "statarb.core.sliding", "statarb.core.adf_kernel",
                   "statarb.core.cointegration", "statarb.core.selection", "statarb.core.hedge",
                   "statarb.research.cache"):
        assert module in closure
    s = settings()
    base = FormationCache(tmp_path, package_copy).key(frames, s)
    for module, path in closure.items():
        original = path.read_text()
        path.write_text(original + "\n# an edit\n")
        try:
            assert FormationCache(tmp_path, package_copy).key(frames, s) != base, module
        finally:
            path.write_text(original)
    assert FormationCache(tmp_path, package_copy).key(frames, s) == base
    outside = [p for p in package_copy.rglob("*.py")
               if p not in set(closure.values())]
    assert any(p.name == "report.py" for p in outside)
    for path in outside:
        path.write_text(path.read_text() + "\n# an edit\n")
    assert FormationCache(tmp_path, package_copy).key(frames, s) == base
    # The libraries those modules import are in it too, by version.
    code = code_fingerprint(package_copy)
    assert {"lib:numpy", "lib:pandas", "lib:statsmodels", "lib:numba"} <= set(code)


# ---------------------------------------------------------------------- the files
def test_a_file_roundtrips_exactly_and_is_reused(tmp_path: Path, frames) -> None:
    s = settings()
    calls = []

    def build() -> Universe:
        calls.append(1)
        return walk_forward(frames, s.selection, s.walk_forward)

    first = FormationCache(tmp_path).get_or_build(frames, s, build)
    assert any(not f.couples.empty for f in first.formations)
    second = FormationCache(tmp_path).get_or_build(frames, s, build)
    assert len(calls) == 1
    assert_same(first, second)
    # Other settings, other data: another key and another file.
    cache = FormationCache(tmp_path)
    assert cache.key(frames, settings(max_pvalue=0.01)) != cache.key(frames, s)
    coin = COINS[0] + "/USDT:USDT"
    changed = {**frames, coin: frames[coin].assign(close=frames[coin]["close"] * 1.001)}
    assert data_fingerprint(changed) != data_fingerprint(frames)
    assert cache.key(changed, s) != cache.key(frames, s)
    assert cache.path(changed, s) != cache.path(frames, s)


def test_kalman_formations_roundtrip(tmp_path: Path, frames) -> None:
    s = settings(hedge="kalman")
    built = walk_forward(frames, s.selection, s.walk_forward)
    assert any(f.alpha is not None for f in built.formations)
    FormationCache(tmp_path).get_or_build(frames, s, lambda: built)
    loaded = FormationCache(tmp_path).get_or_build(frames, s, lambda: pytest.fail("rebuilt"))
    assert_same(built, loaded)


def test_a_file_from_other_code_is_rebuilt_and_the_log_says_why(
        tmp_path: Path, package_copy: Path, frames, caplog) -> None:
    s = settings()
    built = walk_forward(frames, s.selection, s.walk_forward)
    calls = []

    def build() -> Universe:
        calls.append(1)
        return built

    folder = tmp_path / "cache"
    FormationCache(folder, package_copy).get_or_build(frames, s, build)
    (path,) = folder.glob("formations-*.npz")
    sliding = package_copy / "core" / "sliding.py"
    sliding.write_text(sliding.read_text() + "\nSTEP = 2\n")
    with caplog.at_level(logging.WARNING, logger="statarb.research.cache"):
        FormationCache(folder, package_copy).get_or_build(frames, s, build)
    assert len(calls) == 2
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "written by other code (changed: statarb.core.sliding)" in lines[0]
    # Rebuilt in place: one file, and the edited code now loads it.
    assert list(folder.glob("formations-*.npz")) == [path]
    caplog.clear()
    FormationCache(folder, package_copy).get_or_build(frames, s, build)
    assert len(calls) == 2 and not caplog.records


class _Payload:
    """Unpickling this creates a file: what a hostile cache file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("kind", ["pickle", "object-array", "damaged"])
def test_loading_a_cache_file_never_runs_what_it_holds(
        tmp_path: Path, frames, caplog, kind: str) -> None:
    s = settings()
    cache = FormationCache(tmp_path / "cache")
    built = walk_forward(frames, s.selection, s.walk_forward)
    cache.get_or_build(frames, s, lambda: built)
    path = cache.path(frames, s)
    marker = tmp_path / "ran"
    if kind == "pickle":
        path.write_bytes(pickle.dumps(_Payload(marker)))
    elif kind == "object-array":
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["closes"] = np.array([_Payload(marker)], dtype=object)
        with path.open("wb") as fh:
            np.savez(fh, **arrays)
    else:
        path.write_bytes(path.read_bytes()[:1000])
    calls = []
    with caplog.at_level(logging.WARNING, logger="statarb.research.cache"):
        again = FormationCache(tmp_path / "cache").get_or_build(
            frames, s, lambda: calls.append(1) or built)
    assert calls == [1] and again is built
    assert not marker.exists()
    assert any("unreadable formation cache" in r.getMessage() for r in caplog.records)


def test_the_header_holds_only_plain_data(tmp_path: Path, frames) -> None:
    s = settings()
    cache = FormationCache(tmp_path)
    cache.get_or_build(frames, s, lambda: walk_forward(frames, s.selection, s.walk_forward))
    with np.load(cache.path(frames, s), allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
        meta = json.loads(npz["meta"].tobytes().decode())
    assert meta["key"] == cache.key(frames, s)
    assert set(meta["code"]) == set(code_fingerprint())

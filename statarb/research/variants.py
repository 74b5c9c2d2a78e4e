"""Strategy variants for research: a sweep file read into validated, runnable points.

Why: a variant that looks good in research is only worth something if Freqtrade runs
exactly that variant. So a variant is nothing but what Freqtrade reads: a ``statarb``
config section (checked by the same :class:`~statarb.core.settings.StrategySettings` the
strategy builds) and the strategy's hyperoptable parameters (checked by the same
:class:`~statarb.core.signals.SignalParams`), written out as a ``--config`` overlay and the
strategy's parameter file. Nothing is silently dropped or changed on the way: unknown keys,
values Freqtrade would round, settings the strategy would refuse at start-up and repeated
points are errors, and every error names the variant and the bad key or value. A repeated
point matters beyond waste: it would count twice in the multiple-testing penalty.

A sweep file (YAML, or JSON by the ``.json`` extension) has ``base`` (applied to every
variant), ``grid`` (a cartesian product over dotted keys, ``statarb.<...>`` or
``params.<name>``; or a list of such grids, for dimensions that only make sense together)
and ``variants`` (explicit points, each with an optional ``name``);
grid points come first, then the explicit variants, each deep-merged over ``base``.

Freqtrade merges ``--config`` files key by key, so the overlay only replaces what the
variant sets: keys it leaves out keep the base config's values, not the defaults
:meth:`Variant.settings` uses. Put the base config's ``statarb`` section in the sweep's
``base`` (or run with a base config without one) to research what Freqtrade will run.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import numbers
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from statarb.core.params import reject_unknown
from statarb.core.policy import STRATEGY_PARAMS
from statarb.core.settings import StrategySettings
from statarb.core.signals import SignalParams

__all__ = [
    "Variant",
    "VariantError",
    "deep_merge",
    "load_variants",
    "parse_variants",
    "write_variant",
]

HOUR = pd.Timedelta(hours=1)
TOP_KEYS = ("base", "grid", "variants")
POINT_KEYS = ("statarb", "params")
VARIANT_KEYS = ("name", *POINT_KEYS)
PARAMS_FILE = "CointPairsStrategy.json"
# A number written as text, e.g. YAML 1.1 reads ``1e-3`` (no dot) as a string.
_NUMERIC_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class VariantError(ValueError):
    """A sweep file or variant that cannot be run as written; the message names the cause."""


_PARAMS = {p.name: p for p in STRATEGY_PARAMS}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class Variant:
    """One validated point: a ``statarb`` section and complete strategy parameters.

    Construction validates (raising :class:`VariantError`) and fills the parameters the
    variant leaves out with the strategy's defaults.
    """

    name: str
    statarb: dict[str, Any]
    params: dict[str, float]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _slug(self.name):
            raise VariantError(
                f"variant name {self.name!r} must be a string with a letter or a digit"
            )
        for part in POINT_KEYS:
            if not isinstance(getattr(self, part), Mapping):
                raise VariantError(
                    f"variant {self.name!r}: {part} must be a mapping, got "
                    f"{getattr(self, part)!r}"
                )
        statarb = copy.deepcopy(dict(self.statarb))
        try:
            _canonical(statarb)
        except (TypeError, ValueError) as exc:
            raise VariantError(
                f"variant {self.name!r}: the statarb section must be plain JSON data ({exc})"
            ) from exc
        for key, text in _numeric_texts(statarb, "statarb"):
            raise VariantError(
                f"variant {self.name!r}: {key}={text!r} is text, not a number (YAML reads "
                "1e-3 as text: write 1.0e-3)"
            )
        object.__setattr__(self, "statarb", statarb)
        settings = self.settings()
        object.__setattr__(self, "params", _check_params(self.name, self.params))
        _check_horizon(self.name, settings, self.params)

    @property
    def slug(self) -> str:
        """The name as a file-name part (``config.<slug>.json``)."""
        return _slug(self.name)

    def settings(self, candle: pd.Timedelta = HOUR) -> StrategySettings:
        """The ``statarb`` section as the strategy reads it (on a ``candle`` timeframe)."""
        try:
            return StrategySettings.from_config({"statarb": self.statarb}, candle)
        except ValueError as exc:
            raise VariantError(f"variant {self.name!r}: {exc}") from exc
        except TypeError as exc:  # a value of the wrong type: show the section
            raise VariantError(
                f"variant {self.name!r}: {exc} in statarb {_canonical(self.statarb)}"
            ) from exc

    def selection_key(self, candle: pd.Timedelta = HOUR) -> str:
        """What decides the formations (selection and walk-forward), as stable JSON.

        Variants with the same key share every formation (on the same data).
        """
        settings = self.settings(candle)
        return _canonical({
            "selection": asdict(settings.selection),
            "walk_forward": asdict(settings.walk_forward),
        })

    def fingerprint(self) -> str:
        """sha256 of the variant's content (``statarb`` and ``params``, not the name)."""
        content = _canonical({"statarb": self.statarb, "params": self.params})
        return hashlib.sha256(content.encode()).hexdigest()

    def config_overlay(self) -> dict[str, Any]:
        """A Freqtrade config to pass after the base config (``--config``)."""
        return {"statarb": copy.deepcopy(self.statarb)}

    def params_file(self, strategy: str = "CointPairsStrategy") -> dict[str, Any]:
        """The strategy's parameter file, as ``freqtrade hyperopt`` exports it.

        Freqtrade checks ``strategy_name`` and reads ``params``; ``export_time`` (the
        export's wall-clock time) is left out so the file depends on the variant only.
        """
        spaces: dict[str, dict[str, float]] = {"buy": {}, "sell": {}}
        for p in STRATEGY_PARAMS:
            spaces[p.space][p.name] = self.params[p.name]
        return {"strategy_name": strategy, "params": spaces, "ft_stratparam_v": 1}

    def _content(self) -> str:
        """Settings as the strategy sees them plus parameters: equal means the same run."""
        return _canonical({"settings": asdict(self.settings()), "params": self.params})


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", name).strip("-.")


def _numeric_texts(tree: Any, prefix: str) -> list[tuple[str, str]]:
    """(dotted key, text) for every string leaf that reads as a number."""
    if isinstance(tree, Mapping):
        return [hit for k, v in tree.items() for hit in _numeric_texts(v, f"{prefix}.{k}")]
    if isinstance(tree, list):
        return [hit for i, v in enumerate(tree) for hit in _numeric_texts(v, f"{prefix}[{i}]")]
    if isinstance(tree, str) and _NUMERIC_TEXT.fullmatch(tree.strip()):
        return [(prefix, tree)]
    return []


def _check_params(name: str, params: Mapping[str, Any]) -> dict[str, float]:
    try:
        reject_unknown("strategy parameter", params, _PARAMS)
    except ValueError as exc:
        raise VariantError(f"variant {name!r}: {exc} (in params)") from exc
    values = {p.name: p.default for p in STRATEGY_PARAMS}
    for key, value in params.items():
        p = _PARAMS[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value):
            raise VariantError(f"variant {name!r}: params.{key}={value!r} must be a number")
        value = float(value)
        if round(value, p.decimals) != value:
            raise VariantError(
                f"variant {name!r}: params.{key}={value} has more than {p.decimals} "
                f"decimal(s): Freqtrade's DecimalParameter would run it as "
                f"{round(value, p.decimals)}"
            )
        values[key] = value
    for key in ("regime_high_mult", "regime_extreme_mult"):
        if not 0.0 < values[key] <= 1.0:
            raise VariantError(f"variant {name!r}: params.{key}={values[key]} must be in (0, 1]")
    try:
        SignalParams(
            entry_z=values["entry_z"], exit_z=values["exit_z"], stop_z=values["stop_z"],
            time_stop_half_lives=values["time_stop_half_lives"],
        )
    except ValueError as exc:
        raise VariantError(f"variant {name!r}: {exc}") from exc
    return values


def _check_horizon(name: str, settings: StrategySettings, params: Mapping[str, float]) -> None:
    """The strategy's start-up check: the horizon covers the longest time stop (1h candles).

    The strategy checks the parameter's hyperopt ``high``; a value above it must be covered
    too, or its trades would outlive their formation's values.
    """
    half_lives = max(params["time_stop_half_lives"], _PARAMS["time_stop_half_lives"].high)
    longest = half_lives * settings.selection.max_half_life_hours
    if longest > settings.walk_forward.horizon:
        raise VariantError(
            f"variant {name!r}: statarb.walk_forward.horizon_hours="
            f"{settings.walk_forward.horizon} must cover the longest time stop: "
            f"time_stop_half_lives {half_lives} (at least its hyperopt high) x "
            f"selection.max_half_life_hours={settings.selection.max_half_life_hours} = "
            f"{longest} h (CointPairsStrategy refuses to start otherwise)"
        )


# ---------------------------------------------------------------------- sweep files
def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _point(raw: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A ``base`` or ``variants`` entry: a mapping with known keys; empty parts are {}."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise VariantError(f"{where} must be a mapping, got {raw!r}")
    reject = sorted(str(k) for k in set(raw) - set(allowed))
    if reject:
        raise VariantError(f"{where}: unknown key(s) {reject}; allowed: {sorted(allowed)}")
    out = dict(raw)
    for part in POINT_KEYS:
        if part in out:
            if out[part] is None:
                out[part] = {}
            elif not isinstance(out[part], Mapping):
                raise VariantError(f"{where}: {part} must be a mapping, got {out[part]!r}")
    return out


def _labels(keys: list[str]) -> dict[str, str]:
    """Name parts: the last dotted part, or the full key where two keys share it."""
    counts = Counter(k.rsplit(".", 1)[-1] for k in keys)
    return {k: k if counts[k.rsplit(".", 1)[-1]] > 1 else k.rsplit(".", 1)[-1] for k in keys}


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _auto_name(assignments: list[tuple[str, Any]]) -> str:
    labels = _labels([k for k, _ in assignments])
    return ",".join(f"{labels[k]}={_show(v)}" for k, v in assignments) or "base"


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = copy.deepcopy(value)


def _grid(raw: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(raw, Mapping) or not raw:
        raise VariantError(f"{where} must be a non-empty mapping of dotted keys to lists")
    for key, values in raw.items():
        parts = key.split(".") if isinstance(key, str) else []
        if len(parts) < 2 or parts[0] not in POINT_KEYS or not all(parts):
            raise VariantError(
                f"{where}: key {key!r} must be a dotted key starting with 'statarb.' or "
                "'params.' (e.g. statarb.walk_forward.formation_days, params.entry_z)"
            )
        if parts[0] == "params" and len(parts) != 2:
            raise VariantError(f"{where}: key {key!r} must be params.<parameter name>")
        if not isinstance(values, list) or not values:
            raise VariantError(f"{where}: {key} must be a non-empty list, got {values!r}")
    keys = list(raw)
    for key, other in itertools.permutations(keys, 2):
        if other.startswith(f"{key}."):
            raise VariantError(f"{where}: grid key {other!r} overlaps grid key {key!r}")
    points = []
    for combo in itertools.product(*(raw[k] for k in keys)):
        point: dict[str, Any] = {}
        for key, value in zip(keys, combo, strict=True):
            _set_dotted(point, key, value)
        points.append((_auto_name(list(zip(keys, combo, strict=True))), point))
    return points


def _leaves(tree: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out += _leaves(value, dotted)
        else:
            out.append((dotted, value))
    return out


def _explicit(raw: Any, source: str) -> list[tuple[Any, dict[str, Any]]]:
    if not isinstance(raw, list) or not raw:
        raise VariantError(f"{source}: variants must be a non-empty list of mappings")
    points = []
    for i, entry in enumerate(raw):
        entry = _point(entry, f"{source}: variants[{i}]", VARIANT_KEYS)
        point = {k: entry[k] for k in POINT_KEYS if k in entry}
        name = entry["name"] if "name" in entry else _auto_name(_leaves(point, ""))
        points.append((name, point))
    return points


def _check_unique(variants: list[Variant], source: str) -> None:
    names = Counter(v.name for v in variants)
    repeated = sorted(n for n, count in names.items() if count > 1)
    if repeated:
        raise VariantError(f"{source}: duplicate variant name(s) {repeated}")
    by_slug: dict[str, list[str]] = defaultdict(list)
    by_content: dict[str, list[str]] = defaultdict(list)
    for v in variants:
        by_slug[v.slug].append(v.name)
        by_content[v._content()].append(v.name)
    clash = [group for group in by_slug.values() if len(group) > 1]
    if clash:
        raise VariantError(f"{source}: variant names {clash[0]} give the same file name")
    same = [group for group in by_content.values() if len(group) > 1]
    if same:
        raise VariantError(
            f"{source}: variants {', '.join(map(repr, same[0]))} are identical (same settings "
            "and parameters): a repeated variant would count twice in the multiple-testing "
            "penalty"
        )


def parse_variants(data: Any, source: str) -> list[Variant]:
    """The variants of a sweep read from ``source`` (named in errors): grid, then list."""
    if not isinstance(data, Mapping):
        raise VariantError(
            f"{source}: a sweep must be a mapping with keys {list(TOP_KEYS)}, got {data!r}"
        )
    unknown = sorted(str(k) for k in set(data) - set(TOP_KEYS))
    if unknown:
        raise VariantError(
            f"{source}: unknown top-level key(s) {unknown}; allowed: {list(TOP_KEYS)}"
        )
    if "grid" not in data and "variants" not in data:
        raise VariantError(f"{source}: nothing to run: give a grid, variants, or both")
    base = _point(data.get("base"), f"{source}: base", POINT_KEYS)
    points = []
    if "grid" in data:
        grids = data["grid"]
        if isinstance(grids, list):  # several grids: their points one after another
            if not grids:
                raise VariantError(f"{source}: grid must be a mapping or a non-empty list of "
                                   "mappings")
            for i, grid in enumerate(grids):
                points += _grid(grid, f"{source}: grid[{i}]")
        else:
            points += _grid(grids, f"{source}: grid")
    if "variants" in data:
        points += _explicit(data["variants"], source)
    variants = []
    for name, point in points:
        merged = deep_merge(base, point)
        variants.append(
            Variant(name=name, statarb=merged.get("statarb", {}), params=merged.get("params", {}))
        )
    _check_unique(variants, source)
    return variants


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that rejects a key given twice (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader reports unhashable keys itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = Counter(k for k, _ in pairs)
    repeated = sorted(k for k, count in keys.items() if count > 1)
    if repeated:
        raise ValueError(f"duplicate key(s) {repeated}")
    return dict(pairs)


def load_variants(path: str | Path) -> list[Variant]:
    """Read a sweep file: ``.json`` as JSON, ``.yml``/``.yaml`` as YAML."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yml", ".yaml"):
        raise VariantError(
            f"variant file {path}: unsupported extension {suffix!r}; use .yml, .yaml or .json"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise VariantError(f"variant file {path} not found") from exc
    except OSError as exc:
        raise VariantError(f"variant file {path} cannot be read: {exc}") from exc
    try:
        if suffix == ".json":
            data = json.loads(text, object_pairs_hook=_unique_pairs)
        else:
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if suffix == ".json" else "YAML"
        raise VariantError(f"variant file {path}: invalid {kind}: {exc}") from exc
    return parse_variants(data, str(path))


def write_variant(variant: Variant, folder: str | Path) -> tuple[Path, Path]:
    """Write ``config.<slug>.json`` (the overlay) and ``CointPairsStrategy.json`` to folder.

    Freqtrade reads a strategy's parameter file next to the strategy's ``.py`` file, so
    ``folder`` is the ``--strategy-path`` holding the strategy (or the file is copied
    there); one folder per variant.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"config.{variant.slug}.json"
    params = folder / PARAMS_FILE
    config.write_text(json.dumps(variant.config_overlay(), indent=2) + "\n", encoding="utf-8")
    params.write_text(json.dumps(variant.params_file(), indent=2) + "\n", encoding="utf-8")
    return config, params

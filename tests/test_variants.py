"""Sweep files and variants: grid and list, merging, every error naming its cause, and the
files Freqtrade reads (parameter file through Freqtrade's own loader)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from statarb.core.policy import STRATEGY_PARAMS
from statarb.core.settings import StrategySettings
from statarb.research.variants import (
    Variant,
    VariantError,
    load_variants,
    parse_variants,
    write_variant,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = {p.name: p.default for p in STRATEGY_PARAMS}

SWEEP = """
base:
  statarb: {walk_forward: {formation_days: 60}, selection: {min_crossings: 10}}
  params: {entry_z: 2.1}
grid:
  statarb.walk_forward.formation_days: [30, 90]
  params.entry_z: [1.8, 2.0, 2.2]
variants:
  - name: default
  - name: tight
    statarb: {selection: {max_pvalue: 0.01}}
    params: {stop_z: 3.5}
"""


def parse(data: dict[str, Any]) -> list[Variant]:
    return parse_variants(data, "sweep.yml")


def error(data: dict[str, Any]) -> str:
    with pytest.raises(VariantError) as info:
        parse(data)
    return str(info.value)


def test_the_strategy_hyperopts_exactly_the_declared_space() -> None:
    """The strategy's parameters come from statarb.core.policy, the one declaration:
    Freqtrade sees those and no others, with their ranges, defaults and spaces."""
    from freqtrade.strategy.parameters import BaseParameter, DecimalParameter

    from statarb.ft.strategy import CointPairsStrategy

    found = {n: getattr(CointPairsStrategy, n) for n in dir(CointPairsStrategy)
             if isinstance(getattr(CointPairsStrategy, n), BaseParameter)}
    assert sorted(found) == sorted(p.name for p in STRATEGY_PARAMS)
    for p in STRATEGY_PARAMS:
        param = found[p.name]
        assert isinstance(param, DecimalParameter)
        assert (param.space, param.value, param.low, param.high, param.decimals) == (
            p.space, p.default, p.low, p.high, p.decimals)


def test_grid_product_names_and_base_merge() -> None:
    import yaml

    variants = parse(yaml.safe_load(SWEEP))
    names = [v.name for v in variants]
    assert names == [
        "formation_days=30,entry_z=1.8", "formation_days=30,entry_z=2.0",
        "formation_days=30,entry_z=2.2", "formation_days=90,entry_z=1.8",
        "formation_days=90,entry_z=2.0", "formation_days=90,entry_z=2.2",
        "default", "tight",
    ]
    first = variants[0]
    # The grid value replaces base's, base's sibling keys stay; params are complete.
    assert first.statarb == {"walk_forward": {"formation_days": 30},
                             "selection": {"min_crossings": 10}}
    assert first.params == {**DEFAULTS, "entry_z": 1.8}
    assert first.settings().walk_forward.formation == 30 * 24
    default, tight = variants[-2:]
    assert default.statarb == {"walk_forward": {"formation_days": 60},
                               "selection": {"min_crossings": 10}}
    assert default.params == {**DEFAULTS, "entry_z": 2.1}
    assert tight.statarb["selection"] == {"min_crossings": 10, "max_pvalue": 0.01}
    assert tight.params == {**DEFAULTS, "entry_z": 2.1, "stop_z": 3.5}
    assert tight.settings().selection.max_pvalue == 0.01


def test_explicit_list_only_and_generated_names() -> None:
    variants = parse({"variants": [
        {},
        {"statarb": {"selection": {"max_pvalue": 0.01}}, "params": {"stop_z": 3.5}},
        {"name": "wide", "params": {"entry_z": 2.5}},
    ]})
    assert [v.name for v in variants] == ["base", "max_pvalue=0.01,stop_z=3.5", "wide"]
    assert variants[0].params == DEFAULTS and variants[0].statarb == {}


def test_a_list_of_grids_gives_each_grids_points_and_names_the_bad_one() -> None:
    variants = parse({"grid": [
        {"params.entry_z": [1.5, 2.0]},
        {"statarb.selection.reference": ["BTC", "ETH"], "params.exit_z": [0.5]},
    ]})
    assert [v.name for v in variants] == [
        "entry_z=1.5", "entry_z=2.0", "reference=BTC,exit_z=0.5", "reference=ETH,exit_z=0.5"]
    assert variants[2].statarb == {"selection": {"reference": "BTC"}}
    message = error({"grid": [{"params.entry_z": [2.0]}, {"entry_z": [1.0]}]})
    assert "grid[1]: key 'entry_z' must be a dotted key" in message
    assert "duplicate" in error({"grid": [{"params.entry_z": [2.0]}, {"params.entry_z": [2.0]}]})
    assert "non-empty list of mappings" in error({"grid": []})


def test_grid_only_names_use_full_key_when_last_parts_clash() -> None:
    # Two keys ending in "entry_z" (one is not a selection key): full keys in the name.
    message = error({"grid": {"statarb.selection.entry_z": [1], "params.entry_z": [2.0]}})
    assert "variant 'statarb.selection.entry_z=1,params.entry_z=2.0'" in message
    assert "'entry_z'" in message  # the unknown selection parameter is named
    variants = parse({"grid": {"params.exit_z": [0.0, 0.5]}})
    assert [v.name for v in variants] == ["exit_z=0.0", "exit_z=0.5"]


@pytest.mark.parametrize(("data", "expected"), [
    ({"grid": {"params.entry_z": [2.0]}, "varaints": []}, ["'varaints'", "allowed", "grid"]),
    ({"base": {"params": {}}}, ["grid", "variants"]),
    ({"grid": {}}, ["grid", "non-empty"]),
    ({"variants": []}, ["variants", "non-empty"]),
    ({"grid": {"entry_z": [2.0]}}, ["'entry_z'", "statarb.", "params."]),
    ({"grid": {"params.entry_z": 2.0}}, ["params.entry_z", "non-empty list"]),
    ({"grid": {"params.entry_z": []}}, ["params.entry_z", "non-empty list"]),
    ({"grid": {"statarb.walk_forward": [{}], "statarb.walk_forward.z_window_hours": [50]}},
     ["'statarb.walk_forward.z_window_hours'", "overlaps", "'statarb.walk_forward'"]),
    ({"base": {"statarb": {}, "sizing": {}}, "variants": [{}]}, ["base", "'sizing'"]),
    ({"variants": [{"name": "a", "param": {}}]}, ["variants[0]", "'param'", "allowed"]),
    ({"variants": [{"name": "a", "statarb": {"selection": {"max_pvalu": 0.01}}}]},
     ["variant 'a'", "'max_pvalu'", "allowed", "max_pvalue"]),
    ({"variants": [{"name": "a", "statarb": {"walk_forwrd": {}}}]},
     ["variant 'a'", "'walk_forwrd'", "allowed"]),
    ({"variants": [{"name": "a", "statarb": {"selection": {"max_pvalue": 2}}}]},
     ["variant 'a'", "max_pvalue=2"]),
    ({"variants": [{"name": "a", "statarb": {"selection": {"max_pvalue": "1e-3"}}}]},
     ["variant 'a'", "statarb.selection.max_pvalue='1e-3'", "1.0e-3"]),
    ({"variants": [{"name": "a", "statarb": {"walk_forward": {"formation_days": "x"}}}]},
     ["variant 'a'", "statarb.walk_forward.formation_days='x'", "positive number of days"]),
    ({"variants": [{"name": "a", "statarb": {"selection": {"max_half_life_hours": 48}}}]},
     ["variant 'a'", "horizon_hours=168", "max_half_life_hours=48"]),
    ({"variants": [{"name": "a", "params": {"entry_zz": 2.0}}]},
     ["variant 'a'", "'entry_zz'", "allowed", "entry_z"]),
    ({"variants": [{"name": "a", "params": {"entry_z": "2"}}]},
     ["variant 'a'", "params.entry_z='2'", "number"]),
    ({"variants": [{"name": "a", "params": {"entry_z": True}}]},
     ["variant 'a'", "params.entry_z=True"]),
    ({"variants": [{"name": "a", "params": {"entry_z": 1.85}}]},
     ["variant 'a'", "params.entry_z=1.85", "decimal"]),
    ({"variants": [{"name": "a", "params": {"entry_z": 4.0}}]},
     ["variant 'a'", "entry_z=4.0", "stop_z=4.0"]),
    ({"variants": [{"name": "a", "params": {"exit_z": 2.0}}]}, ["variant 'a'", "exit_z=2.0"]),
    ({"variants": [{"name": "a", "params": {"regime_high_mult": 1.5}}]},
     ["variant 'a'", "params.regime_high_mult=1.5", "(0, 1]"]),
    ({"variants": [{"name": "a", "params": {"regime_extreme_mult": 0.0}}]},
     ["variant 'a'", "params.regime_extreme_mult=0.0"]),
    ({"variants": [{"name": "x"}, {"name": "x", "params": {"entry_z": 2.2}}]},
     ["duplicate", "'x'"]),
    ({"variants": [{"name": "a b"}, {"name": "a-b", "params": {"entry_z": 2.2}}]},
     ["'a b'", "'a-b'", "file name"]),
    ({"variants": [{"name": "x", "params": {"entry_z": 2.2}}, {"name": "y"},
                   {"name": "z", "params": {"entry_z": 2.2}}]},
     ["'x'", "'z'", "identical"]),
    # Identical as run: an explicit default is the same variant as an empty one.
    ({"variants": [{"name": "plain"},
                   {"name": "explicit", "statarb": {"walk_forward": {"formation_days": 60}},
                    "params": {"stop_z": 4}}]},
     ["'plain'", "'explicit'", "identical"]),
    ({"grid": {"params.entry_z": [2.0, 2.2]}, "variants": [{"name": "default"}]},
     ["'entry_z=2.0'", "'default'", "identical"]),
])
def test_errors_name_the_bad_key_or_value(data: dict[str, Any], expected: list[str]) -> None:
    message = error(data)
    for part in expected:
        assert part in message, (part, message)


def test_load_yaml_and_json(tmp_path: Path) -> None:
    yml = tmp_path / "sweep.yaml"
    yml.write_text(SWEEP)
    from_yaml = load_variants(yml)
    assert len(from_yaml) == 8
    import yaml

    js = tmp_path / "sweep.json"
    js.write_text(json.dumps(yaml.safe_load(SWEEP)))
    from_json = load_variants(str(js))
    assert [v.fingerprint() for v in from_json] == [v.fingerprint() for v in from_yaml]


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("sweep.txt", SWEEP, ["sweep.txt", "'.txt'", ".yml"]),
    ("sweep.yml", "grid: {params.entry_z: [2.0, 2.2]\nvariants: [", ["sweep.yml", "YAML"]),
    ("sweep.yml", "grid: {params.entry_z: [2.0]}\ngrid: {params.stop_z: [3.5]}\n",
     ["sweep.yml", "duplicate key 'grid'"]),
    ("sweep.json", '{"grid": {"params.entry_z": [2.0]', ["sweep.json", "JSON"]),
    ("sweep.json", '{"variants": [{}], "variants": [{}]}', ["sweep.json", "'variants'"]),
    ("sweep.yml", "", ["sweep.yml", "mapping"]),
])
def test_file_errors_name_the_file(
        tmp_path: Path, name: str, text: str, expected: list[str]) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(VariantError) as info:
        load_variants(path)
    for part in expected:
        assert part in str(info.value), (part, str(info.value))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VariantError, match=r"nope\.yml.*not found"):
        load_variants(tmp_path / "nope.yml")


def test_selection_key_fingerprint_and_direct_construction() -> None:
    a = Variant("a", {"walk_forward": {"formation_days": 30}}, {})
    b = Variant("b", {"walk_forward": {"formation_days": 30}, "leverage": 2},
                {"entry_z": 2.4, "stop_z": 4.5})
    c = Variant("c", {"walk_forward": {"formation_days": 45}}, {})
    assert a.selection_key() == b.selection_key() != c.selection_key()
    assert json.loads(a.selection_key())["walk_forward"]["formation"] == 30 * 24
    assert a.selection_key(pd.Timedelta("4h")) != a.selection_key()
    same = Variant("other name", {"walk_forward": {"formation_days": 30}}, {"entry_z": 2.0})
    assert same.fingerprint() == a.fingerprint() != b.fingerprint()
    assert len(a.fingerprint()) == 64
    assert a.params == DEFAULTS
    with pytest.raises(VariantError, match=r"variant 'bad'.*stop_z"):
        Variant("bad", {}, {"entry_z": 3.0, "stop_z": 3.0})


def test_written_files_run_in_freqtrade_as_researched(tmp_path: Path) -> None:
    from freqtrade.optimize.hyperopt_tools import HyperoptTools
    from freqtrade.strategy import DecimalParameter
    from freqtrade.strategy.hyper import HyperStrategyMixin

    variant = Variant(
        "tight", {"selection": {"max_pvalue": 0.01}, "walk_forward": {"formation_days": 30}},
        {"entry_z": 2.4, "regime_high_mult": 0.75, "exit_z": -0.5, "time_stop_half_lives": 2.5},
    )
    config_path, params_path = write_variant(variant, tmp_path / "run")
    assert config_path.name == "config.tight.json"
    assert params_path.name == "CointPairsStrategy.json"

    overlay = json.loads(config_path.read_text())
    assert overlay == variant.config_overlay() == {"statarb": variant.statarb}
    settings = StrategySettings.from_config(overlay, pd.Timedelta("1h"))
    assert settings == variant.settings()

    raw = HyperoptTools.load_params(params_path.read_text())
    assert raw == variant.params_file()
    assert raw["ft_stratparam_v"] == 1
    assert raw["params"]["buy"] == {"entry_z": 2.4, "regime_high_mult": 0.75,
                                    "regime_extreme_mult": 0.25}

    # Freqtrade's own path: the strategy mixin reads <strategy file>.json, checks the
    # strategy name and sets each DecimalParameter (which rounds to its decimals).
    def decimal(name: str) -> DecimalParameter:
        p = next(p for p in STRATEGY_PARAMS if p.name == name)
        return DecimalParameter(p.low, p.high, default=p.default, decimals=p.decimals,
                                space=p.space)

    class CointPairsStrategy(HyperStrategyMixin):
        __file__ = str(params_path.with_suffix(".py"))
        entry_z = decimal("entry_z")
        regime_high_mult = decimal("regime_high_mult")
        regime_extreme_mult = decimal("regime_extreme_mult")
        exit_z = decimal("exit_z")
        stop_z = decimal("stop_z")
        time_stop_half_lives = decimal("time_stop_half_lives")

    strategy = CointPairsStrategy({})
    strategy.ft_load_hyper_params()
    loaded = {name: p.value for name, p in strategy.enumerate_parameters()}
    assert loaded == variant.params
    spaces = {name: p.space for name, p in strategy.enumerate_parameters()}
    assert spaces == {p.name: p.space for p in STRATEGY_PARAMS}

"""The layers the folders show hold: the core never imports Freqtrade or the adapters.

Parses the source (``ast``), so an import inside a function counts as much as one at the
top: "the core never touches Freqtrade" must hold when the code runs, not only at import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "statarb"
# Layer -> the packages its modules may not import.
FORBIDDEN = {
    "core": ("freqtrade", "statarb.ft", "statarb.sim", "statarb.research", "statarb.tools",
             "statarb.harness"),
    "research": ("freqtrade", "statarb.tools", "statarb.harness"),
    "sim": ("freqtrade", "statarb.ft", "statarb.research", "statarb.tools", "statarb.harness"),
    "ft": ("statarb.tools", "statarb.harness"),
    # The wheel does not ship the harness: a tool that imported it would not run installed.
    "tools": ("statarb.harness",),
}


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, lazily or not, as absolute dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


def violations(layer: str) -> list[str]:
    found = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for line, name in imports(path):
            for banned in FORBIDDEN[layer]:
                if name == banned or name.startswith(banned + "."):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    return sorted(set(found))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_only_what_is_below_it(layer: str) -> None:
    assert violations(layer) == []


def test_the_check_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The parser is what the test rests on: a lazy import in a function and a relative
    import of the adapters are both found."""
    module = PACKAGE / "core" / "_probe_for_test.py"
    module.write_text("def f():\n    import freqtrade.persistence\n    from ..ft import data\n")
    try:
        found = violations("core")
    finally:
        module.unlink()
    assert any("imports freqtrade.persistence" in v for v in found)
    assert any("imports statarb.ft.data" in v for v in found)


def test_every_module_is_in_a_layer() -> None:
    """No flat module beside the layers: a new one must choose its folder."""
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"]

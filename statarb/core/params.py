"""Checking config mappings before they become parameter objects.

Why: a misspelt key would otherwise be ignored and its default used silently; every
parameter group rejects unknown keys the same way, naming them and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["reject_unknown"]


def reject_unknown(kind: str, values: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Raise ``ValueError("unknown <kind>(s) [...]; allowed: [...]")`` for unknown keys."""
    known = sorted(set(allowed))
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown {kind}(s) {unknown}; allowed: {known}")

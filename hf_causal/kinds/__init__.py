"""Variable kinds: everything that depends on a variable's ``type``, one module per kind.

Each module defines a :class:`~hf_causal.kinds.base.VariableKind` subclass and a module-level
``KIND`` instance; every module of this package is registered on import, so adding a kind means
adding one file here (and, if it needs spec fields that do not exist yet, declaring them on
:class:`~hf_causal.graph.Variable`).

Example:
    >>> from hf_causal.kinds import KINDS
    >>> sorted(KINDS)
    ['categorical', 'continuous', 'integer', 'sequence', 'text']
    >>> KINDS["categorical"].single_token, KINDS["text"].base_vocabulary
    (True, True)
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import VariableKind

__all__ = ["KINDS", "VariableKind", "kind_of", "register_kind"]

KINDS: dict[str, VariableKind] = {}
"""``{type name: kind}``, in a stable order."""


def register_kind(kind: VariableKind) -> VariableKind:
    """Add a kind (an instance) to the registry under ``kind.name``."""
    KINDS[kind.name] = kind
    return kind


def kind_of(type_name: str) -> VariableKind:
    return KINDS[type_name]


for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _m.name != "base":
        _kind = getattr(importlib.import_module(f"{__name__}.{_m.name}"), "KIND", None)
        if _kind is not None:
            register_kind(_kind)

"""The registry of worlds by name (``world:`` in a recipe); each world module registers its own."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from ..errors import RecipeError
from ..graph import CausalGraph

__all__ = ["World", "register_world", "get_world", "available_worlds"]

_BUILTIN_MODULES = ("demo", "recode", "interactions", "clinic", "maze", "chess", "papers", "bnlearn")
_REGISTRY: dict[str, Callable[..., Any]] = {}


@runtime_checkable
class World(Protocol):
    """What a recipe's ``world:`` needs: a name, a causal graph, and seeded rows."""

    name: str
    graph: CausalGraph

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame: ...


def register_world(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(**world_options)`` available as ``world: name``."""
    _REGISTRY[name] = factory


def _load_builtins() -> None:
    for m in _BUILTIN_MODULES:
        importlib.import_module(f"hf_causal.worlds.{m}")


def available_worlds() -> list[str]:
    _load_builtins()
    return list(_REGISTRY)


def get_world(name: str, **options: Any) -> World:
    """A world by name; ``options`` are its keyword arguments (``world_options`` in a recipe)."""
    if name not in _REGISTRY:
        _load_builtins()
    if name not in _REGISTRY:
        raise RecipeError(f"unknown world {name!r}; available: {', '.join(_REGISTRY)}")
    try:
        return _REGISTRY[name](**options)
    except TypeError as e:
        raise RecipeError(f"world {name!r}: bad world_options {options}: {e}") from e

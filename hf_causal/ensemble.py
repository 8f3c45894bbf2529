"""Ensembles: several models in one artefact, and which training rows each member saw.

``ensemble: {k: 5, method: bootstrap}`` in a recipe trains K members on bootstrap resamples of the
training rows (their spread estimates the estimation error of a fit); ``method: crossfit`` trains K
members, member k on every fold but fold k, and records each training row's fold, so that the doubly
robust estimators score a training row with the member that did not see it (cross-fitting). From
scratch the members are K small models; with ``base_model`` they are K LoRA adapters over one base.

Rows are recognised by a hash of their encoded values (:func:`row_hashes`): a data row passed to a
query is "training row i" when its hash matches, in order of occurrence; other rows may use every member.

Example:
    >>> plan = member_rows(6, k=3, method="crossfit", seed=0)
    >>> [m.tolist() for m in plan.members], plan.folds
    ([[0, 3, 4, 5], [0, 1, 2, 5], [1, 2, 3, 4]], [2, 0, 0, 1, 1, 2])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import RecipeError

__all__ = ["ENSEMBLE_METHODS", "EnsembleSpec", "MemberRows", "member_rows", "row_hashes", "FOLDS_NAME"]

ENSEMBLE_METHODS = ("bootstrap", "crossfit")
FOLDS_NAME = "ensemble_folds.json"


@dataclass
class EnsembleSpec:
    """``k`` members trained by ``method``."""

    k: int = 1
    method: str = "bootstrap"

    @classmethod
    def parse(cls, value: Any) -> EnsembleSpec:
        """From a recipe's ``ensemble``: a mapping ``{k, method}``, an int (bootstrap), or None (one model)."""
        if value is None:
            return cls()
        if isinstance(value, bool):
            raise RecipeError(f"ensemble must be a mapping like {{k: 5, method: bootstrap}}, got {value!r}")
        if isinstance(value, int):
            value = {"k": value}
        if not isinstance(value, dict):
            raise RecipeError(f"ensemble must be a mapping like {{k: 5, method: bootstrap}}, got {value!r}")
        unknown = set(value) - {"k", "method"}
        if unknown:
            raise RecipeError(f"ensemble: unknown key(s) {sorted(unknown)}; it takes k and method")
        k, method = value.get("k", 5), value.get("method", "bootstrap")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise RecipeError(f"ensemble k must be a positive integer, got {k!r}")
        if method not in ENSEMBLE_METHODS:
            raise RecipeError(f"ensemble method must be one of {ENSEMBLE_METHODS}, got {method!r}")
        if method == "crossfit" and k < 2:
            raise RecipeError("ensemble method crossfit needs k >= 2 folds")
        return cls(int(k), method)


@dataclass
class MemberRows:
    """For each member, the positions (among the training rows) it trains on; ``folds`` (crossfit) the fold
    of each training row, i.e. the one member that did not see it."""

    members: list[np.ndarray]
    folds: list[int] | None


def member_rows(n: int, k: int, method: str, seed: int = 0) -> MemberRows:
    """The training rows of each of ``k`` members (``n`` training rows; seeded)."""
    rng = np.random.default_rng([seed, 7919])
    if method == "crossfit":
        folds = np.empty(n, dtype=int)
        folds[rng.permutation(n)] = np.arange(n) % k
        return MemberRows([np.flatnonzero(folds != j) for j in range(k)], folds.tolist())
    if k == 1:
        return MemberRows([np.arange(n)], None)
    return MemberRows([np.sort(np.random.default_rng([seed, 104729, j]).integers(0, n, n)) for j in range(k)], None)


def row_hashes(rows, tokenizer, names: list[str]) -> list[str]:
    """A short hash of each row's values of ``names``, as their variables coerce them (so ``1`` and ``"1"``
    hash alike, and continuous values exactly, not by bin)."""
    graph = tokenizer.graph

    def key(v, x):
        try:
            c = graph[v].coerce(x)
        except Exception:  # noqa: BLE001 - a value that does not coerce matches no training row
            return ("?", repr(x))
        return tuple(c) if isinstance(c, list) else c

    cols = [[key(v, x) for x in rows[v].tolist()] for v in names]
    out = []
    for vals in zip(*cols):
        h = hashlib.blake2b(repr(vals).encode(), digest_size=8)
        out.append(h.hexdigest())
    return out

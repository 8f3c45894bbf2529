"""The interface every variable kind implements, and the helpers the kinds share.

A kind is one class (one instance in the registry) that says, for variables of that type, how a
spec is validated, how a user value is coerced to the declared value, which value tokens it adds
to the vocabulary and how values become tokens and back, whether its values are single tokens
(a distribution is then one softmax) or a variable-length segment, the numeric value of each
token (for expectations), the labels of a distribution's entries, how bins are fitted to data,
how its column is stored in Arrow, and the line the model card shows. Missing values
(``missing: as_value``) are handled by :class:`~hf_causal.graph.Variable` for every kind alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import DataError, GraphError

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Variable

__all__ = ["VariableKind", "FiniteKind", "value_key", "is_missing", "safe_token", "memo"]


def memo(var: Variable, key: str, make):
    """``make()`` computed once per variable object (lookup tables of its tokens); a variable's
    spec is not changed after construction, and fitting returns a new object."""
    store = var.__dict__.setdefault("_kind_memo", {})
    if key not in store:
        store[key] = make()
    return store[key]


def is_missing(value: Any) -> bool:
    """None or a float NaN (pandas' empty cell)."""
    if value is None:
        return True
    try:
        return isinstance(value, float) and math.isnan(value)
    except TypeError:
        return False


def value_key(v: Any) -> tuple[str, str]:
    """Hashable key that keeps True distinct from 1."""
    if isinstance(v, bool):
        return ("bool", str(v))
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
        if isinstance(v, bool):
            return ("bool", str(v))
    return (type(v).__name__ if isinstance(v, str) else "num", str(v))


def safe_token(s: str) -> str:
    """A value's text with whitespace replaced, for use inside a token."""
    return re.sub(r"\s+", "_", s)


class VariableKind:
    """Behaviour shared by all variables of one ``type``. Subclasses set ``name`` and override."""

    name: ClassVar[str]
    single_token: ClassVar[bool] = True
    """Every value is exactly one token, so the variable's distribution is one softmax."""
    variable_length: ClassVar[bool] = False
    """A value is a run of tokens whose end is a sampled event (the next start token or ``<eos>``)."""
    base_vocabulary: ClassVar[bool] = False
    """Values are written in the base tokenizer's subwords rather than in value tokens of their own."""
    read_as_text: ClassVar[bool] = False
    """CSV cells are kept as strings (an empty cell is the empty value, not a missing one)."""

    # --- the spec ---------------------------------------------------------------------------
    def validate(self, var: Variable) -> None:
        """Raise :class:`GraphError` naming the variable when its spec is invalid; may normalise fields."""

    def domain(self, var: Variable) -> list[Any] | None:
        """The finite list of values, or None when there is none."""
        return None

    def is_numeric(self, var: Variable) -> bool:
        return False

    def coerce(self, var: Variable, value: Any) -> Any:  # pragma: no cover - abstract
        """A user value (``"1"`` from a CLI, a numpy scalar) as the declared value; DataError if it does not fit."""
        raise NotImplementedError

    # --- tokens -----------------------------------------------------------------------------
    def value_tokens(self, var: Variable) -> list[str]:
        """The value tokens this variable adds to the vocabulary (missing token excluded)."""
        return []

    def encode(self, var: Variable, value: Any) -> list[str]:  # pragma: no cover - abstract
        """Token strings of a coerced, non-missing value."""
        raise NotImplementedError

    def decode(self, var: Variable, tokens: list[str], rng: np.random.Generator | None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def numbers(self, var: Variable) -> list[float] | None:
        """The numeric value of each value token (for expectations), or None if not numeric."""
        return None

    def value_keys(self, var: Variable) -> list[Any]:
        """The labels of the entries of this variable's distribution (single-token kinds)."""
        return list(self.domain(var) or [])

    # --- data -------------------------------------------------------------------------------
    def fit(self, var: Variable, values: Sequence[Any]) -> Variable:
        """The variable with whatever it learns from training values (bins); the input is not changed."""
        return var

    def to_arrow(self, var: Variable, values: list) -> list:
        """One Arrow type per column: strings (lists space-joined) or None; kinds parse them back."""
        out = []
        for v in values:
            if is_missing(v):
                out.append(None)
            elif isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim >= 1):
                out.append(" ".join(str(x) for x in list(v)))
            else:
                out.append(str(v.item() if hasattr(v, "item") else v))
        return out

    # --- documentation ----------------------------------------------------------------------
    def describe(self, var: Variable) -> str:  # pragma: no cover - abstract
        """How values become tokens, in a few words (the model card's table)."""
        raise NotImplementedError

    def unknown_token(self, var: Variable, tok: str) -> DataError:
        return DataError(f"variable {var.name!r}: token {tok!r} is not one of its value tokens")


class FiniteKind(VariableKind):
    """One token per value of a finite domain (categorical and integer variables)."""

    def token_for(self, var: Variable, v: Any) -> str:
        return f"<{var.name}={safe_token(str(v))}>"

    def value_tokens(self, var: Variable) -> list[str]:
        return list(memo(var, "tokens", lambda: self._tokens(var)))

    def _tokens(self, var: Variable) -> list[str]:
        toks = [self.token_for(var, v) for v in self.domain(var)]
        if len(set(toks)) != len(toks):
            raise GraphError(f"variable {var.name!r}: values collide after replacing whitespace: {self.domain(var)}")
        return toks

    def encode(self, var: Variable, value: Any) -> list[str]:
        by_key = memo(var, "by_key", lambda: {value_key(v): t for v, t in zip(self.domain(var), self._tokens(var))})
        return [by_key[value_key(value)]]

    def decode(self, var: Variable, tokens: list[str], rng) -> Any:
        by_tok = memo(var, "by_tok", lambda: dict(zip(self._tokens(var), self.domain(var))))
        if len(tokens) != 1 or tokens[0] not in by_tok:
            raise self.unknown_token(var, " ".join(tokens))
        return by_tok[tokens[0]]

    def numbers(self, var: Variable) -> list[float] | None:
        if not self.is_numeric(var):
            return None
        return [float(v) for v in self.domain(var)]

    def describe(self, var: Variable) -> str:
        vals = self.domain(var)
        shown = ", ".join(map(str, vals[:8])) + (", ..." if len(vals) > 8 else "")
        return f"one token per value ({shown})"

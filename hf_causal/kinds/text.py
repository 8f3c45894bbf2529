"""Free-text variables: written in the base tokenizer's subwords (or a closed word vocabulary).

Length limits are in tokens and are checked by the tokenizer (:meth:`CausalTokenizer.encode_value`).
"""

from __future__ import annotations

from typing import Any

from ..errors import DataError, GraphError
from .base import VariableKind


class Text(VariableKind):
    name = "text"
    single_token = False
    variable_length = True
    base_vocabulary = True
    read_as_text = True

    def validate(self, var) -> None:
        if var.max_length is None:
            raise GraphError(f"text variable {var.name!r} needs 'max_length' (in tokens)")

    def coerce(self, var, value: Any) -> str:
        if not isinstance(value, str):
            raise DataError(f"variable {var.name!r}: text value {value!r} is not a string")
        return value

    def encode(self, var, value: str) -> list[str]:
        return [value]

    def decode(self, var, tokens: list[str], rng) -> str:
        return " ".join(tokens)

    def describe(self, var) -> str:
        return f"base tokenizer subwords, up to {var.max_length} tokens"


KIND = Text()

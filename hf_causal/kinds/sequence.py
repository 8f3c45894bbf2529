"""Sequence variables: a variable-length list of symbols from a declared alphabet, one token each.

The segment ends where the next start token (or ``<eos>``) begins, so the length is part of the value
and its end is a sampled event. A value may be given as a list or as a space-separated string.
"""

from __future__ import annotations

from typing import Any

from ..errors import DataError, GraphError
from .base import VariableKind, memo, safe_token


class Sequence(VariableKind):
    name = "sequence"
    single_token = False
    variable_length = True
    read_as_text = True

    def validate(self, var) -> None:
        n = var.name
        if not var.alphabet:
            raise GraphError(f"sequence variable {n!r} needs a non-empty 'alphabet'")
        var.alphabet = [str(a) for a in var.alphabet]
        if any(not a or any(ch.isspace() for ch in a) for a in var.alphabet):
            raise GraphError(f"sequence variable {n!r}: symbols must be non-empty and without spaces")
        if len(set(var.alphabet)) != len(var.alphabet):
            raise GraphError(f"sequence variable {n!r}: duplicate symbols in alphabet")
        if var.max_length is None:
            raise GraphError(f"sequence variable {n!r} needs 'max_length'")

    def coerce(self, var, value: Any) -> list[str]:
        seq = value.split() if isinstance(value, str) else [str(s) for s in value]
        alphabet = memo(var, "alphabet", lambda: set(var.alphabet))
        bad = [s for s in seq if s not in alphabet]
        if bad:
            raise DataError(f"variable {var.name!r}: symbol {bad[0]!r} is not in the alphabet {var.alphabet}")
        return seq

    def value_tokens(self, var) -> list[str]:
        return [f"<{var.name}:{safe_token(a)}>" for a in var.alphabet]

    def encode(self, var, seq: list[str]) -> list[str]:
        if len(seq) > var.max_length:
            if var.overflow == "error":
                raise DataError(
                    f"variable {var.name!r}: sequence of length {len(seq)} exceeds max_length "
                    f"{var.max_length} (set `overflow: truncate` to cut it)"
                )
            seq = seq[: var.max_length]
        by_sym = memo(var, "by_sym", lambda: dict(zip(var.alphabet, self.value_tokens(var))))
        return [by_sym[s] for s in seq]

    def decode(self, var, tokens: list[str], rng) -> list[str]:
        by_tok = memo(var, "by_tok", lambda: dict(zip(self.value_tokens(var), var.alphabet)))
        out = []
        for t in tokens:
            if t not in by_tok:
                raise self.unknown_token(var, t)
            out.append(by_tok[t])
        return out

    def describe(self, var) -> str:
        return f"one token per symbol of {{{', '.join(var.alphabet)}}}, up to {var.max_length}"


KIND = Sequence()

"""Categorical variables: a declared list of values (strings, ints or bools), one token each."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..errors import DataError, GraphError
from .base import FiniteKind, value_key


class Categorical(FiniteKind):
    name = "categorical"

    def validate(self, var) -> None:
        n = var.name
        if not var.values:
            raise GraphError(f"categorical variable {n!r} needs a non-empty 'values' list")
        dup = {k for k, c in Counter(value_key(v) for v in var.values).items() if c > 1}
        if dup:
            raise GraphError(f"categorical variable {n!r}: duplicate values {sorted(dup)}")
        for v in var.values:
            if not isinstance(v, (str, int, bool)) or isinstance(v, float):
                raise GraphError(f"categorical variable {n!r}: value {v!r} must be a string, int or bool")

    def domain(self, var) -> list[Any]:
        return list(var.values)

    def is_numeric(self, var) -> bool:
        return all(isinstance(v, (int, bool)) for v in var.values or [])

    def coerce(self, var, value: Any) -> Any:
        key = value_key(value)
        for v in var.values:
            if value_key(v) == key:
                return v
        # numpy / pandas scalars, "1" for 1, and True for 1 when no value is a bool
        raw = value.item() if hasattr(value, "item") else value
        if isinstance(raw, bool) and not any(isinstance(v, bool) for v in var.values):
            raw = int(raw)
        if isinstance(raw, float) and raw.is_integer():  # 1.0 from an integer column that pandas read as floats
            raw = int(raw)
        s = str(raw)
        if isinstance(raw, str):
            try:
                f = float(raw)
            except ValueError:
                f = None
            if (
                f is not None
                and f.is_integer()
                and any(isinstance(v, int) and not isinstance(v, bool) for v in var.values)
            ):
                s = str(int(f))  # "1.0" from a CSV of an integer-coded category
        for v in var.values:
            if str(v) == s or (isinstance(v, bool) and s.lower() == str(v).lower()):
                return v
        raise DataError(f"variable {var.name!r}: value {value!r} is not one of {var.values}")


KIND = Categorical()

"""Integer variables: a declared inclusive range ``min..max`` (at most 4096 values), one token each."""

from __future__ import annotations

from typing import Any

from ..errors import DataError, GraphError
from .base import FiniteKind

MAX_VALUES = 4096


class Integer(FiniteKind):
    name = "integer"

    def validate(self, var) -> None:
        n = var.name
        if var.min is None or var.max is None or int(var.min) > int(var.max):
            raise GraphError(f"integer variable {n!r} needs 'min' <= 'max' (got {var.min}, {var.max})")
        var.min, var.max = int(var.min), int(var.max)
        if var.max - var.min + 1 > MAX_VALUES:
            raise GraphError(
                f"integer variable {n!r}: range {var.min}..{var.max} has more than {MAX_VALUES} values; "
                "declare it 'continuous' instead"
            )

    def domain(self, var) -> list[Any]:
        return list(range(var.min, var.max + 1))

    def is_numeric(self, var) -> bool:
        return True

    def coerce(self, var, value: Any) -> int:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise DataError(f"variable {var.name!r}: value {value!r} is not an integer") from None
        if not f.is_integer():
            raise DataError(f"variable {var.name!r}: value {value!r} is not an integer")
        i = int(f)
        if not var.min <= i <= var.max:
            raise DataError(f"variable {var.name!r}: value {i} is outside the declared range {var.min}..{var.max}")
        return i


KIND = Integer()

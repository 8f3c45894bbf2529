"""Partial interventions on sequence variables: force some steps, let the model play the rest.

A sequence variable (a move list, a trajectory) is a chain of steps ``A_1, A_2, ...``, each
caused by the context and the steps before it; the model's next-token conditional at each step
is that step's mechanism. ``do(game = PartialSequence({0: "Qe7+"}))`` clamps step 0 and samples
every other step from the model: "play this first move, then as usual" (method.md §9, chess).
With a list, ``None`` marks a sampled step and the length is fixed: in a maze trajectory
``[move, cell, move, cell, ...]`` the moves are forced and the cells they lead to are sampled,
which is a complete intervention on the moves with the states as mediators.

Example:
    >>> p = PartialSequence(["U", None, "R", None])
    >>> p.forced, p.length
    ({0: 'U', 2: 'R'}, 4)
    >>> PartialSequence({0: "e1e2"}).length is None
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import QueryError

__all__ = ["PartialSequence"]


@dataclass(frozen=True, init=False)
class PartialSequence:
    """Forced steps of a sequence variable; the model samples the others.

    Args:
        steps: a list with ``None`` at the sampled steps (the length is then fixed at
            ``len(steps)``), or a mapping ``{step index: symbol}`` (0-based).
        length: with a mapping, the fixed length of the sequence, or ``None`` (default) to let
            the model end it: the model may then end the sequence before a forced step, and a
            forced step the sequence never reaches does not happen ("if the game gets there").

    Attributes:
        forced: ``{step: symbol}``.
        length: fixed length or ``None``.
    """

    forced: dict[int, Any]
    length: int | None

    def __init__(self, steps: Sequence[Any] | Mapping[int, Any], length: int | None = None):
        if isinstance(steps, Mapping):
            forced = {}
            for k, v in steps.items():
                if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                    raise QueryError(f"PartialSequence step indices must be integers >= 0, got {k!r}")
                if v is None:
                    raise QueryError(f"PartialSequence step {k} is None; leave sampled steps out of the mapping")
                forced[int(k)] = v
        elif isinstance(steps, str):
            raise QueryError("PartialSequence needs a list or a {step: symbol} mapping, not a string")
        else:
            if length is not None:
                raise QueryError("PartialSequence: a list fixes the length; pass length= only with a mapping")
            forced = {i: v for i, v in enumerate(steps) if v is not None}
            length = len(steps)
        if length is not None:
            if length < 0:
                raise QueryError(f"PartialSequence length must be >= 0, got {length}")
            late = [k for k in forced if k >= length]
            if late:
                raise QueryError(f"PartialSequence forces step {late[0]} but its length is {length}")
        object.__setattr__(self, "forced", dict(sorted(forced.items())))
        object.__setattr__(self, "length", None if length is None else int(length))

    def __str__(self) -> str:
        if self.length is not None:
            return "[" + " ".join(str(self.forced.get(i, "*")) for i in range(self.length)) + "]"
        return "[" + " ".join(f"{k}:{v}" for k, v in self.forced.items()) + " ...]"

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"forced": {"0": "U"}, "length": 4}``."""
        return {"forced": {str(k): v for k, v in self.forced.items()}, "length": self.length}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PartialSequence:
        """Inverse of :meth:`to_dict` (step keys may be strings)."""
        if "forced" not in d:
            raise QueryError(f"a partial intervention needs a 'forced' mapping, got keys {sorted(d)}")
        try:
            forced = {int(k): v for k, v in dict(d["forced"]).items()}
        except (TypeError, ValueError):
            raise QueryError(f"partial intervention step indices must be integers, got {d['forced']!r}") from None
        return cls(forced, d.get("length"))

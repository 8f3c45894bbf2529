"""Rows -> token sequences in a topological order, and back.

:class:`Sequencifier` is a picklable, batched function for ``datasets.Dataset.map``.
A row becomes ``<start_V1> v1-tokens <start_V2> v2-tokens ... <eos>``; a segment ends
where the next start token (or ``<eos>``) begins. With ``order_policy="random"`` each
example gets its own topological order, drawn from ``(seed, row index)``, so the output
does not depend on ``num_proc``.

Example:
    >>> from hf_causal.graph import CausalGraph
    >>> from hf_causal.tokenization import CausalTokenizer
    >>> g = CausalGraph.from_dict({"variables": {"Z": {"type": "categorical", "values": [0, 1]},
    ...     "A": {"type": "categorical", "values": [0, 1]}}, "edges": [["Z", "A"]]})
    >>> s = Sequencifier(CausalTokenizer.build(g))
    >>> out = s({"Z": [1], "A": [0]}, [0])
    >>> s.decode(out["input_ids"][0])
    {'Z': 1, 'A': 0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import DataError, RecipeError
from .tokenization import CausalTokenizer

__all__ = ["Sequencifier", "ORDER_POLICIES"]

ORDER_POLICIES = ("canonical", "random")


def check_columns(names: Sequence[str], columns: Sequence[str]) -> None:
    """Raise if a variable has no column; the message lists what is there."""
    missing = [n for n in names if n not in columns]
    if missing:
        raise DataError(
            f"data has no column for variable(s) {', '.join(missing)}; columns are: {', '.join(map(str, columns))}"
        )


class Sequencifier:
    """Turn rows into ``input_ids``/``attention_mask`` (and ``segment_ids``, the variable index per token)."""

    def __init__(self, tokenizer: CausalTokenizer, order_policy: str = "canonical", seed: int = 0):
        if order_policy not in ORDER_POLICIES:
            raise RecipeError(f"order_policy must be one of {ORDER_POLICIES}, got {order_policy!r}")
        self.tokenizer = tokenizer
        self.graph = tokenizer.graph
        self.order_policy = order_policy
        self.seed = int(seed)
        self.names = list(self.graph.order)
        self._start_to_name = {i: n for n, i in tokenizer.start_ids.items()}

    def check_columns(self, columns: Sequence[str]) -> None:
        check_columns(self.names, columns)

    def order_for(self, index: int) -> list[str]:
        if self.order_policy == "canonical":
            return self.names
        return self.graph.random_topological_order(np.random.default_rng([self.seed, int(index)]))

    def encode_row(self, row: Mapping[str, Any], order: Sequence[str] | None = None) -> tuple[list[int], list[int]]:
        tok = self.tokenizer
        ids: list[int] = []
        seg: list[int] = []
        pos = {n: i for i, n in enumerate(self.names)}
        for name in order or self.names:
            vids = tok.encode_value(name, row[name])
            ids.append(tok.start_ids[name])
            ids.extend(vids)
            seg.extend([pos[name]] * (1 + len(vids)))
        ids.append(tok.eos_id)
        seg.append(-1)
        return ids, seg

    def __call__(self, batch: Mapping[str, list], indices: Sequence[int]) -> dict[str, list]:
        self.check_columns(list(batch.keys()))
        out: dict[str, list] = {"input_ids": [], "attention_mask": [], "segment_ids": []}
        for j, idx in enumerate(indices):
            row = {n: batch[n][j] for n in self.names}
            try:
                ids, seg = self.encode_row(row, self.order_for(idx))
            except DataError as e:
                raise DataError(f"row {idx}: {e}") from None
            out["input_ids"].append(ids)
            out["attention_mask"].append([1] * len(ids))
            out["segment_ids"].append(seg)
        return out

    def split_segments(self, ids: Sequence[int]) -> dict[str, list[int]]:
        """``{variable: value ids}`` of one sequence (stops at ``<eos>``, ignores padding)."""
        segs: dict[str, list[int]] = {}
        cur: str | None = None
        for i in ids:
            i = int(i)
            if i == self.tokenizer.eos_id:
                break
            if i == self.tokenizer.pad_id:
                continue
            if i in self._start_to_name:
                cur = self._start_to_name[i]
                if cur in segs:
                    raise DataError(f"variable {cur!r} appears twice in the sequence")
                segs[cur] = []
            elif cur is None:
                raise DataError(f"token id {i} comes before any start token")
            else:
                segs[cur].append(i)
        return segs

    def decode(self, ids: Sequence[int], rng: np.random.Generator | None = None) -> dict[str, Any]:
        """Typed values of one sequence, in the graph's canonical order of the variables present."""
        segs = self.split_segments(ids)
        return {n: self.tokenizer.decode_value(n, segs[n], rng) for n in self.names if n in segs}

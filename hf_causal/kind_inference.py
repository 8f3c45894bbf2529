"""Variable kinds inferred from a table's columns (``hf-causal graph infer``; training with edges only).

Rules, per column (missing cells aside):

* strings with spaces and on average more than 4 words: ``text`` (``max_length``: the longest, in words);
* at most ``max_categories`` distinct values: ``categorical``, values in order of first appearance
  (numbers sorted);
* integers (or integral floats) over a range of at most ``max_integer_range`` values: ``integer``;
* other numbers: ``continuous``; other strings: ``categorical`` if few, else ``text``;
* a column with gaps gets ``missing: as_value`` (the gap becomes its own token), and the note says so.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": ["x", "y", "x"], "n": [3, 7, 5], "v": [0.1, 2.5, 3.7]})
    >>> {k: v["type"] for k, v in infer_variables(df, max_categories=2).items()}
    {'a': 'categorical', 'n': 'integer', 'v': 'continuous'}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["infer_variable", "infer_variables"]


def _is_integral(values: pd.Series) -> bool:
    try:
        f = pd.to_numeric(values)
    except (TypeError, ValueError):
        return False
    return bool(np.all(np.isfinite(f)) and np.all(np.equal(np.mod(f, 1), 0)))


def infer_variable(col: pd.Series, max_categories: int = 12, max_integer_range: int = 64) -> dict[str, Any]:
    """The spec of one column (see the module docstring)."""
    present = col[~col.isna() & (col.astype(str).str.strip() != "")] if col.dtype == object else col.dropna()
    spec: dict[str, Any] = {}
    if len(present) < len(col):
        spec["missing"] = "as_value"
    if len(present) == 0:
        return {"type": "categorical", "values": ["(empty)"], **spec}
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if not numeric and present.map(lambda x: isinstance(x, str)).all():
        as_num = pd.to_numeric(present, errors="coerce")
        if as_num.notna().all():
            present, numeric = as_num, True
    if pd.api.types.is_bool_dtype(present):
        return {"type": "categorical", "values": [False, True], **spec}
    uniq = list(dict.fromkeys(present.tolist()))
    if not numeric:
        words = present.astype(str).str.split().map(len)
        if words.mean() > 4:
            return {"type": "text", "max_length": int(words.max()), **spec}
        if len(uniq) <= max(max_categories, 64):
            return {"type": "categorical", "values": [str(u) for u in uniq], **spec}
        return {"type": "text", "max_length": int(max(words.max(), 1)), **spec}
    if len(uniq) <= max_categories and len(uniq) < max(3, len(present) // 5):
        vals = sorted(uniq)
        if _is_integral(pd.Series(vals)):
            vals = [int(v) for v in vals]
        return {"type": "categorical", "values": vals, **spec}
    if _is_integral(present):
        lo, hi = int(present.min()), int(present.max())
        if hi - lo + 1 <= max_integer_range:
            return {"type": "integer", "min": lo, "max": hi, **spec}
    return {"type": "continuous", "bins": 32 if len(present) >= 3200 else max(4, len(present) // 100), **spec}


def infer_variables(
    df: pd.DataFrame, names: Sequence[str] | None = None, max_categories: int = 12, max_integer_range: int = 64
) -> dict[str, dict[str, Any]]:
    """``{column: spec}`` for ``names`` (default: every column)."""
    return {n: infer_variable(df[n], max_categories, max_integer_range) for n in (names or list(df.columns))}

"""Which parent configurations the training data showed: the support that a mechanism needs.

A model whose predictions read only the parents (``attention: local`` / ``two_stream``) answers an
intervention well wherever each affected variable's *parent configuration* was seen in training, as a
Bayesian network does: forcing ``X := x`` is harmless for a child ``C`` when ``(x, other parents of C)``
occurred in the data, however unlikely ``x`` was in its context. So training records, for every
variable whose parents are all single-token variables, the parent configurations it saw and how often
(:func:`fit_support`, stored in ``causal_config.json``), and each answer reports, per child of an
intervened variable, the share of its sampled contexts whose configuration the data never showed
(:func:`unseen_shares`).

An unseen configuration means "no support" only where the data cover the parents' configuration space:
with many or binned-continuous parents almost every row has a configuration of its own, and an unseen
one says nothing. So a record is checked whole only when its Good-Turing estimate of the unseen
probability mass (the share of rows whose configuration occurred once, :func:`unseen_mass`) is at most
:data:`MAX_UNSEEN_MASS`; a sparser one is checked on the intervened parents alone (were the forced values
ever seen, together?), and the answer says so (:func:`sparse_records`).

Example:
    >>> import pandas as pd
    >>> from hf_causal.graph import CausalGraph
    >>> from hf_causal.tokenization import CausalTokenizer
    >>> g = CausalGraph.from_dict({"variables": {"S": {"type": "categorical", "values": [0, 1]},
    ...     "Y": {"type": "categorical", "values": [0, 1]}}, "edges": [["S", "Y"]]})
    >>> sup = fit_support(g, CausalTokenizer.build(g), pd.DataFrame({"S": [0, 0, 1], "Y": [1, 0, 1]}))
    >>> sup["Y"]["parents"], len(sup["Y"]["configs"])
    (['S'], 2)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

__all__ = ["fit_support", "unseen_shares", "unseen_mass", "sparse_records", "MAX_CONFIGS", "MAX_UNSEEN_MASS"]

MAX_CONFIGS = 20000
"""Variables with more distinct parent configurations in the training rows are not recorded."""

MAX_UNSEEN_MASS = 0.05
"""Records whose Good-Turing unseen mass exceeds this are too sparse for an unseen configuration to mean
"no support"; they are not checked."""


_PARSED: dict[int, tuple[dict, float, dict]] = {}
"""Per record (by the identity of its ``configs`` dict): (that dict, its unseen mass, its codes by parents)."""


def _parsed(record: dict[str, Any]) -> tuple[float, dict]:
    configs = record["configs"]
    hit = _PARSED.get(id(configs))
    if hit is None or hit[0] is not configs:
        counts = configs.values()
        n = sum(counts)
        mass = sum(1 for c in counts if c == 1) / n if n else 1.0
        hit = _PARSED[id(configs)] = (configs, mass, {})
    return hit[1], hit[2]


def unseen_mass(record: dict[str, Any]) -> float:
    """Good-Turing estimate of the probability that a fresh row's parent configuration is one the training
    rows never showed: (configurations seen exactly once) / (rows). Computed once per record."""
    return _parsed(record)[0]


def _seen_codes(record: dict[str, Any], lookups: list[np.ndarray], radices: list[int]) -> np.ndarray:
    """The record's configurations as sorted mixed-radix codes over the parents' value indices (cached)."""
    _, cache = _parsed(record)
    key = tuple(radices)
    if key not in cache:
        parts = np.array([[int(x) for x in k.split(" ")] for k in record["configs"]], dtype=np.int64)
        parts = parts.reshape(len(record["configs"]), len(radices))
        cols = [lk[np.clip(parts[:, i], 0, len(lk) - 1)] for i, lk in enumerate(lookups)]
        cache[key] = np.unique(_mix(cols, radices))
    return cache[key]


def _missing(cols: list[np.ndarray], lookups: list[np.ndarray], radices: list[int], known: np.ndarray) -> np.ndarray:
    """Which rows' parent token ids (``-1``: no value) form a configuration outside ``known``."""
    idx = [lk[np.clip(c, 0, len(lk) - 1)] * (c >= 0) for c, lk in zip(cols, lookups)]
    return ~np.isin(_mix(idx, radices), known)


def _mix(cols: list[np.ndarray], radices: list[int]) -> np.ndarray:
    code = np.zeros(len(cols[0]), dtype=np.int64)
    for c, r in zip(cols, radices):
        code = code * r + c
    return code


def sparse_records(support: dict[str, Any] | None, plan) -> dict[str, float]:
    """``{child: unseen mass}`` for the children of intervened variables whose records are too sparse to
    check whole (see the module docstring)."""
    if not support or plan is None or not plan.do:
        return {}
    out = {}
    for child in plan.order:
        rec = support.get(child)
        if rec is not None and any(p in plan.do for p in rec["parents"]):
            m = unseen_mass(rec)
            if m > MAX_UNSEEN_MASS:
                out[child] = m
    return out


def _key(ids) -> str:
    return " ".join(str(int(i)) for i in ids)


def fit_support(graph, tokenizer, rows) -> dict[str, Any]:
    """``{variable: {"parents": [...], "configs": {"id id ...": count}}}`` from the training rows, for every
    variable with parents that are all single-token variables (value token ids joined by spaces)."""
    out: dict[str, Any] = {}
    enc = {}
    for v in graph.order:
        pa = graph.parents(v)
        if not pa or not all(graph[p].is_single_token for p in pa):
            continue
        for p in pa:
            if p not in enc:
                enc[p] = [tokenizer.encode_value(p, x)[0] for x in rows[p].tolist()]
        counts = Counter(_key(t) for t in zip(*(enc[p] for p in pa)))
        if len(counts) > MAX_CONFIGS:
            continue
        out[v] = {"parents": pa, "configs": dict(counts)}
    return out


def _project(record: dict[str, Any], keep: list[str]) -> dict[str, Any]:
    """The record restricted to the parents in ``keep`` (counts summed over the others; cached)."""
    _, cache = _parsed(record)
    if ("project", tuple(keep)) not in cache:
        cache[("project", tuple(keep))] = _projected(record, keep)
    return cache[("project", tuple(keep))]


def _projected(record: dict[str, Any], keep: list[str]) -> dict[str, Any]:
    idx = [record["parents"].index(p) for p in keep]
    counts: Counter = Counter()
    for key, c in record["configs"].items():
        parts = key.split(" ")
        counts[" ".join(parts[i] for i in idx)] += c
    return {"parents": keep, "configs": dict(counts)}


def unseen_shares(support: dict[str, Any], draws, tokenizer) -> dict[str, float]:
    """For each child of an intervened variable whose parents were all walked (forced, sampled, or summed
    out exactly), the share of the sampled contexts whose parent configuration the training rows never
    showed; a summed-out parent counts with its probability. A record too sparse to check whole is checked
    on the intervened parents alone: were the forced values seen together at all?"""
    out: dict[str, float] = {}
    plan, values, marginal = draws.plan, draws.values, draws.marginal
    if not support or plan is None or not plan.do:
        return out
    for child in plan.order:
        rec = support.get(child)
        if rec is None or not any(p in plan.do for p in rec["parents"]):
            continue
        if unseen_mass(rec) > MAX_UNSEEN_MASS:
            rec = _project(rec, [p for p in rec["parents"] if p in plan.do])
        parents = rec["parents"]
        summed = [p for p in parents if p in marginal]
        if len(summed) > 1 or any(
            p not in values or (p not in marginal and values[p] and not values[p][0]) for p in parents
        ):
            continue  # a parent not walked (or several summed out): no check for this child
        ids = {
            p: np.fromiter((x[0] if x else -1 for x in values[p]), dtype=np.int64) for p in parents if p not in marginal
        }
        n = len(next(iter(ids.values()))) if ids else len(marginal[summed[0]])
        # token ids -> 1 + index among the parent's values (0: anything else), mixed into one integer code
        lookups, radices = [], []
        for p in parents:
            vids = np.asarray(tokenizer.value_ids[p], dtype=np.int64)
            lk = np.zeros(int(vids.max()) + 2, dtype=np.int64)
            lk[vids] = np.arange(1, len(vids) + 1)
            lookups.append(lk)
            radices.append(len(vids) + 1)
        if float(np.prod(np.asarray(radices, dtype=float))) >= 2.0**62:
            continue  # too many configurations to code in 64 bits (not checked)
        known = _seen_codes(rec, lookups, radices)

        if summed:
            s = summed[0]
            weights = marginal[s]  # [n, k] over s's value tokens
            unseen = np.zeros(n)
            for j, vid in enumerate(tokenizer.value_ids[s][: weights.shape[1]]):
                cols = [ids[p] if p != s else np.full(n, vid, dtype=np.int64) for p in parents]
                unseen += weights[:, j] * _missing(cols, lookups, radices, known)
        else:
            unseen = _missing([ids[p] for p in parents], lookups, radices, known).astype(float)
        out[child] = float(unseen.mean()) if n else 0.0
    return out

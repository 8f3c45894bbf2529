"""The query schema: one JSON-able dict per question, and the one function that answers it.

The CLI, ``pipeline()`` and the benchmarks all go through :func:`run_query`, so a query means the
same thing everywhere.

========================================================  ===========================================
``{"target": Y, "do": {...}, "given": {...}}``            P(Y | do, given): a :class:`Distribution`
``{"effect": "expectation", "target": Y, ...}``           E[Y | do, given] (``event``: P(Y = event))
``{"effect": "ate", "outcome": Y, "treatment": A,``       ATE (``given``: CATE), treated minus control
``"treated": a1, "control": a0}``
``{"effect": "cate", ..., "given": {...}}``               CATE on the given covariates
``{"effect": "att", ...}``                                ATT (``data``: over the data's treated rows)
``{"effect": "counterfactual", "target": Y, "do": {...},`` per factual row of ``data`` (a file or a list
``"data": rows}``                                         of row dicts), Y's distribution had ``do`` held
========================================================  ===========================================

Optional keys: ``given``, ``event`` (an outcome value whose probability is the effect's outcome),
``data`` (a file or table whose rows give the pre-treatment contexts), and for effects ``estimator``
(``plugin``, the default, or ``aipw``: doubly robust on the rows of ``data``) with ``clip`` (its
propensity clip, default 0.01) and ``calibrate_propensity`` (true: Platt-scale a crossfit ensemble's
out-of-fold propensities). A partial intervention on a
sequence variable is written ``{"partial": {"forced": {"0": "U"}, "length": 4}}`` in ``do`` or as
``treated``/``control``.

Example:
    >>> parse_query({"target": "recovery", "do": {"treatment": 1}})["kind"]
    'distribution'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import QueryError
from ..interventions import PartialSequence

__all__ = ["EFFECTS", "parse_query", "run_query", "answer"]

EFFECTS = ("ate", "att", "cate", "expectation", "counterfactual")
_DR = ("estimator", "clip", "calibrate_propensity")  # the optional keys of the doubly robust estimator
_KEYS = {
    "distribution": ({"target"}, {"do", "given", "data"}),
    "expectation": ({"effect", "target"}, {"do", "given", "data", "event"}),
    "ate": ({"effect", "outcome", "treatment", "treated", "control"}, {"given", "data", "event", *_DR}),
    "cate": ({"effect", "outcome", "treatment", "treated", "control", "given"}, {"event", "data", *_DR}),
    "att": ({"effect", "outcome", "treatment", "treated", "control"}, {"data", "event", *_DR}),
    "counterfactual": ({"effect", "target", "do", "data"}, set()),
}


def intervention(v: Any) -> Any:
    """JSON ``{"partial": {...}}`` -> :class:`PartialSequence`; anything else unchanged."""
    if isinstance(v, Mapping) and set(v) == {"partial"}:
        if not isinstance(v["partial"], Mapping):
            raise QueryError(f"a partial intervention is {{'partial': {{'forced': {{...}}}}}}, got {v!r}")
        return PartialSequence.from_dict(v["partial"])
    return v


def parse_query(query: Any) -> dict[str, Any]:
    """A query dict checked against the schema, with ``kind`` set and partial interventions parsed."""
    if not isinstance(query, Mapping):
        raise QueryError(f"a causal query is a dict, got {type(query).__name__}: {query!r}")
    effect = query.get("effect")
    if effect is None:
        if "target" not in query:
            raise QueryError("a query needs 'target' (a distribution) or 'effect' (ate/att/cate/expectation)")
        kind = "distribution"
    elif effect not in EFFECTS:
        raise QueryError(f"effect must be one of {EFFECTS}, got {effect!r}")
    else:
        kind = effect
    required, optional = _KEYS[kind]
    missing = sorted(required - set(query))
    if missing:
        raise QueryError(f"a{'n' if kind[0] in 'aeiou' else ''} {kind} query needs {missing}; got {sorted(query)}")
    unknown = sorted(set(query) - required - optional - {"effect", "kind"})
    if unknown:
        raise QueryError(f"unknown key(s) {unknown} in a {kind} query; it takes {sorted(required | optional)}")
    for key in ("target", "outcome", "treatment"):
        if key == "target" and kind == "counterfactual" and _names(query[key]):
            continue
        if key in query and not isinstance(query[key], str):
            raise QueryError(f"{key!r} must be a variable name (a string), got {query[key]!r}")
    clip = query.get("clip", 0.01)
    if isinstance(clip, bool) or not isinstance(clip, (int, float)):
        raise QueryError(f"clip must be a number in [0, 0.5), got {clip!r}")
    if not isinstance(query.get("calibrate_propensity", False), bool):
        raise QueryError(f"calibrate_propensity must be true or false, got {query['calibrate_propensity']!r}")
    q = dict(query)
    q["kind"] = kind
    for key in ("do", "given"):
        if q.get(key) is not None and not isinstance(q[key], Mapping):
            raise QueryError(f"{key!r} must map variables to values, got {q[key]!r}")
    if q.get("do"):
        q["do"] = {k: intervention(v) for k, v in q["do"].items()}
    for k in ("treated", "control"):
        if k in q:
            q[k] = intervention(q[k])
    return q


def _names(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(v, str) for v in x)


def run_query(engine, query: Mapping[str, Any], num_samples: int = 2000, seed: int = 0, progress: bool = False):
    """Answer one query dict with ``engine``: a :class:`Distribution`, an :class:`Estimate` or a
    :class:`~hf_causal.inference.counterfactual.Counterfactual`."""
    q = parse_query(query)
    kw = {"num_samples": num_samples, "seed": seed}
    kind = q["kind"]
    if kind == "distribution":
        return engine.query(
            q["target"], do=q.get("do"), given=q.get("given"), data=q.get("data"), progress=progress, **kw
        )
    if kind == "counterfactual":
        return engine.counterfactual(q["data"], q["do"], q["target"], num_samples=num_samples, seed=seed)
    if kind == "expectation":
        return engine.expectation(
            q["target"], do=q.get("do"), given=q.get("given"), event=q.get("event"), data=q.get("data"), **kw
        )
    args = (q["outcome"], q["treatment"], q["treated"], q["control"])
    kw.update(
        estimator=q.get("estimator", "plugin"),
        clip=q.get("clip", 0.01),
        calibrate_propensity=q.get("calibrate_propensity", False),
        event=q.get("event"),
        data=q.get("data"),
    )
    if kind == "ate":
        return engine.ate(*args, given=q.get("given"), **kw)
    if kind == "cate":
        return engine.cate(*args, given=q.get("given") or {}, **kw)
    return engine.att(*args, **kw)


def answer(engine, query: Mapping[str, Any], num_samples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """:func:`run_query` as a JSON-serialisable dict (the ``--json`` and ``pipeline()`` output)."""
    return run_query(engine, query, num_samples, seed).to_dict()

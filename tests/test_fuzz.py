"""Property-based fuzzing (issue #14): every generated graph, data frame and query either gets an answer or
an error from the package's hierarchy (``HfCausalError``), never another exception.

CI runs a few hundred examples per target; ``pytest -m slow tests/test_fuzz.py`` runs thousands.
"""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_causal import CausalGraph, HfCausalError
from hf_causal.inference.schema import run_query

BUDGETS = [pytest.param(150, id="ci"), pytest.param(3000, id="thorough", marks=pytest.mark.slow)]
NAMES = st.sampled_from(["A", "B", "C", "D"]) | st.sampled_from(["x y", "", "1a", "Z.z"])
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _mostly(valid, junk=JUNK, weight=4):
    """``valid`` about ``weight`` times as often as ``junk`` (mapped, so that ``one_of`` does not flatten
    the alternatives of either into equal shares)."""
    return st.one_of(*([valid.map(lambda x: x)] * weight), junk.map(lambda x: x))


VALID_SPECS = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("categorical"),
            "values": st.lists(st.integers(0, 4) | st.sampled_from(["a", "b"]), min_size=1, max_size=4, unique_by=str),
        }
    ),
    st.fixed_dictionaries({"type": st.just("integer"), "min": st.integers(-3, 2), "max": st.integers(0, 6)}),
    st.fixed_dictionaries({"type": st.just("continuous")}, optional={"bins": st.integers(1, 8)}),
    st.fixed_dictionaries(
        {
            "type": st.just("sequence"),
            "alphabet": st.lists(st.sampled_from("UDLR"), min_size=1, unique=True),
            "max_length": st.integers(0, 5),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("text"), "max_length": st.integers(1, 8)},
        optional={"overflow": st.sampled_from(["error", "truncate", "cut"])},
    ),
)
OPTION = _mostly(
    VALID_SPECS.flatmap(
        lambda d: st.fixed_dictionaries(
            {k: st.just(v) for k, v in d.items()},
            optional={
                "missing": st.sampled_from(["error", "as_value", "drop"]),
                "parents": st.lists(NAMES, max_size=2),
                "colour": JUNK,
            },
        )
    ),
    st.dictionaries(
        st.sampled_from(["type", "values", "min", "max", "bins", "alphabet", "max_length", "edges", "bin_means"]),
        JUNK,
        max_size=4,
    ),
)
EDGE = _mostly(
    st.lists(NAMES, min_size=2, max_size=2), st.one_of(st.text(max_size=8), st.lists(NAMES, max_size=3), JUNK), 3
)
GRAPHS = _mostly(
    st.fixed_dictionaries(
        {"variables": _mostly(st.dictionaries(NAMES, OPTION, min_size=1, max_size=4), st.lists(OPTION, max_size=3))},
        optional={"edges": _mostly(st.lists(EDGE, max_size=5))},
    ),
    JUNK,
    6,
)


def _answer_or_package_error(fn, *args):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)
    except HfCausalError:
        return None


@pytest.mark.parametrize("budget", BUDGETS)
def test_graph_specs(budget):
    @settings(max_examples=budget, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(GRAPHS)
    def check(spec):
        g = _answer_or_package_error(CausalGraph.from_dict, spec)
        if g is not None:
            assert g.is_topological(g.order)
            CausalGraph.from_dict(g.to_dict())  # a valid graph round-trips

    check()


MIXED = {
    "variables": {
        "c": {"type": "categorical", "values": [0, 1, "two"]},
        "i": {"type": "integer", "min": 0, "max": 3, "missing": "as_value"},
        "y": {"type": "continuous", "bins": 4},
        "s": {"type": "sequence", "alphabet": ["U", "D"], "max_length": 3},
        "t": {"type": "text", "max_length": 4, "overflow": "truncate"},
    },
    "edges": [["c", "i"], ["i", "y"], ["c", "s"], ["s", "t"]],
}
VALID_CELLS = {
    "c": st.sampled_from([0, 1, "two", "1", 1.0]),
    "i": st.one_of(st.integers(0, 3), st.sampled_from(["2", 2.0, None, float("nan")])),
    "y": st.floats(-10, 10),
    "s": st.lists(st.sampled_from(["U", "D"]), max_size=3) | st.sampled_from(["U D", ""]),
    "t": st.text(alphabet="ab ", max_size=12),
}
BAD_CELLS = {
    "c": st.sampled_from(["three", -4, ""]) | JUNK,
    "i": st.sampled_from([-1, 4, 2.5, "x"]) | JUNK,
    "y": st.sampled_from(["abc", None, math.inf]) | JUNK,
    "s": st.sampled_from(["U X", "U U U U"]) | JUNK,
    "t": JUNK,
}


@st.composite
def frames(draw):
    """A table of valid rows; half of the time one cell is replaced by a bad value."""
    n = draw(st.integers(0, 6))
    cols = {k: draw(st.lists(v, min_size=n, max_size=n)) for k, v in VALID_CELLS.items()}
    if n and draw(st.booleans()):
        k = draw(st.sampled_from(list(cols)))
        cols[k][draw(st.integers(0, n - 1))] = draw(BAD_CELLS[k])
    return cols


FRAMES = frames()


def _tokenize_frame(columns):
    from hf_causal.arguments import DataArguments, ModelArguments
    from hf_causal.training import _tokenize

    df = pd.DataFrame(columns)
    if df.empty or len(df) == 0:
        from hf_causal.errors import DataError

        raise DataError("no rows")  # what prepare() says for an empty table
    graph = CausalGraph.from_dict(MIXED)
    return _tokenize(graph, df, DataArguments(eval_fraction=0.0), ModelArguments(), 0, None)


@pytest.mark.parametrize("budget", BUDGETS)
def test_data_frames(budget):
    @settings(max_examples=budget // 3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(FRAMES, st.sampled_from(list(MIXED["variables"])) | st.none())
    def check(columns, drop):
        if drop is not None:
            columns = {k: v for k, v in columns.items() if k != drop}
        out = _answer_or_package_error(_tokenize_frame, columns)
        if out is not None:
            graph, tok, seq, train_ds, _, df = out
            assert len(train_ds) == len(df)
            for ids in train_ds["input_ids"]:
                assert seq.split_segments(ids).keys() == set(graph.order)

    check()


VARS = ["age", "severity", "treatment", "biomarker", "recovery", "readmitted"]
DOMAIN = {
    "age": ["young", "middle", "old"],
    "severity": ["mild", "severe"],
    "treatment": [0, 1, "1"],
    "biomarker": ["low", "high"],
    "recovery": [0, 1, 2],
    "readmitted": [0, 1],
}
KEYS = {
    "distribution": ["target", "do", "given", "data"],
    "expectation": ["target", "do", "given", "event"],
    "ate": ["outcome", "treatment", "treated", "control", "given", "event"],
    "cate": ["outcome", "treatment", "treated", "control", "given", "event"],
    "att": ["outcome", "treatment", "treated", "control", "event"],
}


@st.composite
def queries(draw):
    """Well-formed queries of every kind over real variables (many unanswerable), or with one part broken."""
    kind = draw(st.sampled_from(list(KEYS)))
    var = st.sampled_from(VARS)

    def value(name):
        return st.sampled_from(DOMAIN[name])

    def mapping():
        names = draw(st.lists(var, max_size=2, unique=True))
        return {n: draw(value(n)) for n in names}

    q = {} if kind == "distribution" else {"effect": kind}
    for k in KEYS[kind]:
        if k in ("target", "outcome", "treatment"):
            q[k] = draw(var)
        elif k in ("treated", "control"):
            q[k] = draw(value(q["treatment"]))
        elif k in ("do", "given") and draw(st.booleans()):
            q[k] = mapping()
        elif k == "event" and draw(st.integers(0, 3)) == 0:
            q[k] = draw(value(q.get("outcome", q.get("target"))))
    if kind == "cate":
        q.setdefault("given", mapping())
    if draw(st.integers(0, 3)) == 0:  # break one part
        k = draw(st.sampled_from([*q, "extra"]))
        q[k] = draw(JUNK | st.text(max_size=4))
    return q


QUERIES = _mostly(queries(), JUNK, 8)


@pytest.mark.parametrize("budget", BUDGETS)
def test_query_dicts(tiny_engine, budget):
    @settings(max_examples=budget, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(QUERIES, st.integers(1, 6))
    def check(query, n):
        res = _answer_or_package_error(run_query, tiny_engine, query, n, 0)
        if res is not None:
            d = res.to_dict()
            import json

            json.dumps(d, allow_nan=False)  # strict JSON, always
            if "probabilities" in d:
                assert abs(sum(v["p"] for v in d["probabilities"].values()) - 1) < 1e-5
            else:
                assert d["estimate"] is None or np.isfinite(d["estimate"])

    check()

"""Several answers from one walk (issue #18): ``query_many`` against exact answers and against ``query``."""

import warnings

import pytest

from hf_causal import QueryError
from hf_causal.metrics import tv_distance


def test_query_many_shares_walks_and_matches_exact_answers(demo_engine, demo_world_):
    qs = [
        ("recovery", {"treatment": 1}),
        ("readmitted", {"treatment": 1}),
        ("biomarker", {"treatment": 1}),
        {"target": "recovery", "do": {"treatment": 0}},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = demo_engine.query_many(qs, num_samples=6000, seed=0)
        single = demo_engine.query("recovery", do={"treatment": 0}, num_samples=6000, seed=0)
    for q, d in zip(qs, out):
        t, do = (q["target"], q["do"]) if isinstance(q, dict) else q
        assert d.target == t
        assert tv_distance(d.probs, demo_world_.distribution(t, do=do)) < 0.03
    # the three treated targets came from one walk; a lone query is answered exactly as query() answers it
    assert out[0].diagnostics["shared_walk"]["targets"] == ["recovery", "readmitted", "biomarker"]
    assert out[3].probs == single.probs and out[3].se == single.se
    # the shared walk is not the observational answer: readmitted under do differs from P(readmitted | T=1)
    naive = demo_world_.distribution("readmitted", given={"treatment": 1})
    assert tv_distance(out[1].probs, naive) > tv_distance(
        out[1].probs, demo_world_.distribution("readmitted", do={"treatment": 1})
    )


def test_query_many_refuses_malformed_queries(tiny_engine):
    with pytest.raises(QueryError, match="query_many takes"):
        tiny_engine.query_many([{"target": "recovery", "doo": {}}])
    with pytest.raises(QueryError, match="target"):
        tiny_engine.query_many([("nope", {"treatment": 1})])

"""Golden answers: for fixed weights and seeds, every estimand gives the same numbers, and every draw the
same values. Floats are compared to a relative 1e-5 or an absolute 1e-6 (float32 rounding): the last
bits of a float32 forward pass differ between CPU types (the recorded answers read up to about 3e-7 apart
on an AMD EPYC), while a change to any draw moves a Monte Carlo answer by far more than that.

Written before the engine was split into ``hf_causal/inference/`` (issue #13) and kept: a refactor
must not change a single draw. The models are randomly initialised from a fixed seed (no training,
so nothing depends on the optimiser), with a large ``initializer_range`` so that their conditionals
are far from uniform and every sampling path matters. ``tests/golden/engine_answers.json`` holds the
answers; ``HF_CAUSAL_REGEN_GOLDEN=1 pytest tests/test_golden.py`` rewrites it (only do that when an
answer is *meant* to change, and say why in the commit).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_causal import CausalConfig, CausalEngine, CausalGraph, CausalTokenizer, PartialSequence
from hf_causal.worlds import demo_world
from hf_causal.worlds.maze import MazeWorld

GOLDEN = Path(__file__).parent / "golden" / "engine_answers.json"
REGEN = os.environ.get("HF_CAUSAL_REGEN_GOLDEN") == "1"

MIXED = {
    "variables": {
        "Z": {"type": "categorical", "values": ["no", "yes"]},
        "A": {"type": "categorical", "values": [0, 1]},
        "moves": {"type": "sequence", "alphabet": ["U", "D", "L", "R"], "max_length": 5},
        "note": {"type": "text", "max_length": 6},
        "Y": {
            "type": "continuous",
            "bins": 4,
            "edges": [-1.0, 0.5, 1.5, 3.0, 7.0],
            "bin_means": [0.1, 1.0, 2.2, 4.5],
        },
    },
    "edges": [["Z", "A"], ["A", "moves"], ["Z", "moves"], ["moves", "note"], ["moves", "Y"], ["Z", "Y"]],
}
WORDS = ["good", "bad", "so", "so-so", "fine"]


def _model(tok, architecture: str, seed: int = 0):
    from transformers import BertConfig, BertLMHeadModel, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    if architecture == "gpt2":
        cfg = GPT2Config(
            vocab_size=len(tok),
            n_positions=256,
            n_embd=32,
            n_layer=2,
            n_head=2,
            initializer_range=0.3,
            bos_token_id=tok.eos_id,
            eos_token_id=tok.eos_id,
            pad_token_id=tok.pad_id,
        )
        return GPT2LMHeadModel(cfg)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        is_decoder=True,
        initializer_range=0.3,
        pad_token_id=tok.pad_id,
        bos_token_id=tok.eos_id,
        eos_token_id=tok.eos_id,
    )
    return BertLMHeadModel(cfg)


def _engine(spec, architecture="gpt2", attention="full", order_policy="canonical", corpus=None, **kw):
    graph = CausalGraph.from_dict(spec)
    tok = CausalTokenizer.build(graph, text_corpus=corpus)
    model = _model(tok, architecture)
    config = CausalConfig(
        graph=graph.to_dict(),
        order_policy=order_policy,
        token_map=tok.token_map(),
        architecture=architecture,
        attention=attention,
    )
    return CausalEngine(model, tok, config, **kw)


def _dist(d) -> dict:
    return {
        "probs": {str(k): v for k, v in d.probs.items()},
        "se": {str(k): v for k, v in d.se.items()},
        "n": d.n_samples,
        "p_forced": _forced(d.diagnostics),
    }


def _est(e) -> dict:
    out = {"estimate": e.estimate, "se": e.se, "n": e.n_samples, "p_forced": _forced(e.details)}
    for k in ("mean_treated", "mean_control", "effective_sample_size"):
        if k in e.details:
            out[k] = e.details[k]
    return out


def _forced(diag: dict) -> dict:
    """The forced-value probabilities recorded before the split (later diagnostics add keys, not changes)."""
    keys = ("mean", "min", "least_likely_token_mean")
    return {
        k: {x: v[x] for x in keys} for k, v in sorted(diag.items()) if k.startswith("p_forced[") and isinstance(v, dict)
    }


def _frame(df) -> dict:
    return {c: [x if not isinstance(x, list) else list(x) for x in df[c].tolist()] for c in df.columns}


def _answers() -> dict:
    warnings.simplefilter("ignore")
    world = demo_world()
    rows = world.sample(40, seed=1)
    y, t = "recovery", "treatment"
    out: dict = {}

    e = _engine(world.graph.to_dict(), batch_size=128)
    out["demo/query"] = _dist(e.query(y, do={t: 1}, num_samples=300, seed=0))
    out["demo/query_given"] = _dist(e.query(y, do={t: 0}, given={"age": "old"}, num_samples=200, seed=1))
    out["demo/query_data"] = _dist(e.query(y, do={t: 1}, data=rows, seed=2))
    out["demo/query_observational"] = _dist(e.query("readmitted", num_samples=150, seed=3))
    out["demo/expectation_event"] = _est(e.expectation(y, do={t: 1}, event=2, num_samples=200, seed=4))
    out["demo/ate"] = _est(e.ate(y, t, 1, 0, num_samples=300, seed=5))
    out["demo/ate_data"] = _est(e.ate(y, t, 1, 0, data=rows, seed=5))
    out["demo/att"] = _est(e.att(y, t, 1, 0, num_samples=300, seed=6))
    out["demo/att_data"] = _est(e.att(y, t, 1, 0, data=rows, seed=6))
    out["demo/cate"] = _est(e.cate(y, t, 1, 0, given={"age": "old"}, num_samples=200, seed=7))
    out["demo/sample"] = _frame(e.sample(50, do={t: 0}, seed=8))
    out["demo/sample_free"] = _frame(e.sample(30, seed=9))
    out["demo/individual_effects"] = e.individual_effects(y, t, 1, 0, data=rows.head(10), draws_per_row=2).tolist()

    for label, kw in [("noshare", {"share_prefixes": False}), ("nomarg", {"marginalize_max": 0})]:
        e2 = _engine(world.graph.to_dict(), batch_size=64, **kw)
        out[f"demo/{label}/query"] = _dist(e2.query(y, do={t: 1}, num_samples=300, seed=0))
        out[f"demo/{label}/ate"] = _est(e2.ate(y, t, 1, 0, num_samples=100, seed=5))
    for label, kw in [
        ("parents", {"attention": "parents"}),
        ("random", {"order_policy": "random"}),
        ("local", {"attention": "local"}),
        ("two_stream", {"attention": "two_stream"}),
    ]:
        e3 = _engine(world.graph.to_dict(), batch_size=128, **kw)
        out[f"demo/{label}/query"] = _dist(e3.query(y, do={t: 1}, num_samples=200, seed=0))
        out[f"demo/{label}/query_given"] = _dist(e3.query(y, do={t: 0}, given={"age": "old"}, num_samples=80))
        out[f"demo/{label}/sample"] = _frame(e3.sample(20, do={t: 1}, seed=8))
    eb = _engine(world.graph.to_dict(), architecture="bert", batch_size=128)
    out["demo/bert/query"] = _dist(eb.query(y, do={t: 1}, num_samples=200, seed=0))
    out["demo/bert/ate"] = _est(eb.ate(y, t, 1, 0, num_samples=100, seed=1))

    em = _engine(MIXED, corpus={"note": WORDS}, batch_size=32)
    out["mixed/sample"] = _frame(em.sample(30, seed=1))
    eml = _engine(MIXED, corpus={"note": WORDS}, batch_size=32, attention="local")
    out["mixed/local/sample"] = _frame(eml.sample(30, seed=1))
    out["mixed/local/sample_do"] = _frame(eml.sample(20, do={"moves": ["U", "U", "R"], "A": 1}, seed=2))
    out["mixed/sample_do"] = _frame(em.sample(20, do={"moves": ["U", "U", "R"], "A": 1}, seed=2))
    out["mixed/sample_text"] = _frame(em.sample(10, do={"note": "good bad"}, seed=3))
    out["mixed/expectation"] = _est(em.expectation("Y", do={"A": 1}, num_samples=64, seed=4))
    out["mixed/query_given"] = _dist(em.query("A", given={"Z": "yes"}, num_samples=40, seed=5))
    out["mixed/partial_fixed"] = _frame(em.sample(16, do={"moves": PartialSequence(["U", None, None, "R"])}, seed=6))
    out["mixed/partial_free"] = _frame(em.sample(16, do={"moves": PartialSequence({1: "D"})}, seed=7))
    out["mixed/partial_expectation"] = _est(
        em.expectation("Y", do={"moves": PartialSequence(["L", None])}, num_samples=32, seed=8)
    )

    maze = MazeWorld(sizes=(5,), max_length=12, layout="trajectory")
    ez = _engine(maze.graph.to_dict(), batch_size=32)
    episode = maze.sample(1, seed=7).iloc[0].to_dict()
    ctx = {k: episode[k] for k in ("size", "start", "goal", "maze", "offset")}
    moves = ["R", "D", "D"]
    out["maze/query"] = _dist(ez.query("reached", do=maze.do(moves), given=ctx, num_samples=16, seed=0))
    out["maze/sample"] = _frame(ez.sample(8, do=maze.do(moves), given=ctx, seed=1))
    mazes = maze.sample(12, seed=2).drop(columns=["path", "reached", "distance"])
    out["maze/expectation_data"] = _est(ez.expectation("reached", do=maze.do(["R"]), data=mazes, seed=3))
    out["maze/partial_free"] = _frame(
        ez.sample(8, do={"path": PartialSequence({0: "U", 2: "L"})}, given=ctx, seed=4, variables=["path"])
    )
    return json.loads(json.dumps(out, default=float))


@pytest.fixture(scope="module")
def answers():
    return _answers()


def test_golden_answers_are_unchanged(answers):
    if REGEN:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"rewrote {GOLDEN}")
    ref = json.loads(GOLDEN.read_text())
    assert sorted(answers) == sorted(ref)
    bad = [k for k in ref if not _same(answers[k], ref[k])]
    assert not bad, f"answers changed for {bad}: first {bad[0]}: {answers[bad[0]]} != {ref[bad[0]]}"


def _same(a, b) -> bool:
    """Equality (floats to a relative 1e-5 or an absolute 1e-6, NaN equal to NaN; everything else exactly)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_golden_answers_are_not_degenerate(answers):
    """The fixed random models give non-trivial answers, so the golden comparison can fail."""
    p = list(answers["demo/query"]["probs"].values())
    assert max(p) - min(p) > 0.05 and all(0 < x < 1 for x in p)
    assert len({tuple(r) for r in zip(*answers["demo/sample"].values())}) > 5
    assert np.std(answers["demo/individual_effects"]) > 0
    assert answers["mixed/partial_free"]["moves"] != answers["mixed/partial_fixed"]["moves"]

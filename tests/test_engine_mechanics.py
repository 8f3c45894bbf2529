"""Forcing, leakage and refusal tests: cheap models, exact expectations about the mechanics."""

import numpy as np
import pandas as pd
import pytest
import torch

from hf_causal import CausalEngine, CausalWarning, QueryError, UnsupportedQueryError, train
from hf_causal.inference.cache import PrefixCache

MIXED = {
    "variables": {
        "Z": {"type": "categorical", "values": ["no", "yes"]},
        "A": {"type": "categorical", "values": [0, 1]},
        "moves": {"type": "sequence", "alphabet": ["U", "D", "L", "R"], "max_length": 5},
        "note": {"type": "text", "max_length": 6},
        "Y": {"type": "continuous", "bins": 8},
    },
    "edges": [["Z", "A"], ["A", "moves"], ["Z", "moves"], ["moves", "note"], ["moves", "Y"], ["Z", "Y"]],
}


def _mixed_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    a = (rng.random(n) < 0.3 + 0.4 * z).astype(int)
    moves = [list(rng.choice(list("UDLR"), size=rng.integers(0, 6))) for _ in range(n)]
    note = [" ".join(rng.choice(["good", "bad", "so", "so-so"], size=rng.integers(1, 5))) for _ in range(n)]
    y = np.array([len(m) for m in moves]) + z + rng.normal(0, 0.3, n)
    return pd.DataFrame({"Z": np.where(z, "yes", "no"), "A": a, "moves": moves, "note": note, "Y": y})


@pytest.fixture(scope="module", params=["gpt2", "bert"])
def mixed_engine(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"mixed_{request.param}")
    data = d / "rows.jsonl"
    _mixed_rows(600).to_json(data, orient="records", lines=True)
    out = train(
        {
            "graph": MIXED,
            "data": str(data),
            "architecture": request.param,
            "n_embd": 32,
            "num_train_epochs": 2,
            "output_dir": str(d / "model"),
            "logging_steps": 100000,
        }
    )
    return CausalEngine.from_pretrained(out)


def test_samples_are_valid_and_forced_values_exact(mixed_engine):
    df = mixed_engine.sample(64, do={"moves": ["U", "U", "R"], "A": 1}, seed=1)
    assert list(df.columns) == ["Z", "A", "moves", "note", "Y"]
    assert (df["A"] == 1).all()
    assert all(m == ["U", "U", "R"] for m in df["moves"])
    assert set(df["Z"]) <= {"no", "yes"}
    assert all(isinstance(t, str) and len(mixed_engine.tokenizer.encode_value("note", t)) <= 6 for t in df["note"])
    assert df["Y"].map(lambda v: isinstance(v, float)).all()
    free = mixed_engine.sample(64, seed=2)
    assert all(set(m) <= set("UDLR") and len(m) <= 5 for m in free["moves"])
    text = mixed_engine.sample(16, do={"note": "good bad"}, seed=3)
    assert (text["note"] == "good bad").all()
    assert list(mixed_engine.sample(4, do={"note": "good"}, variables=["Y"]).columns) == ["Y"]


def test_stops_after_last_needed_variable(mixed_engine):
    df = mixed_engine.sample(8, seed=0, variables=["A"])
    assert list(df.columns) == ["A"]
    plan = mixed_engine.planner.plan(["A"], None, None)
    assert plan.order == ["Z", "A"]


def test_same_seed_same_answer_different_seed_differs(mixed_engine):
    a = mixed_engine.sample(32, seed=5)
    b = mixed_engine.sample(32, seed=5)
    c = mixed_engine.sample(32, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    q1 = mixed_engine.query("A", given={"Z": "yes"}, num_samples=10, seed=0)
    q2 = mixed_engine.query("A", given={"Z": "yes"}, num_samples=10, seed=0)
    assert q1.probs == q2.probs


def _model_and_ids(engine, n=6, seed=0):
    torch.manual_seed(seed)
    ids = torch.randint(0, len(engine.tokenizer), (2, n))
    return engine.model, ids


def test_holes_and_positions_match_a_clean_pass(mixed_engine):
    """Masked-out tokens inside the cache (ragged rows) must not change any logit."""
    model, ids = _model_and_ids(mixed_engine)
    with torch.no_grad():
        clean = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[:, -1]
        st = PrefixCache(model, 2, torch.device("cpu"))
        pad = torch.full((2, 2), mixed_engine.tokenizer.pad_id)
        st.feed(torch.cat([ids[:, :3], pad], 1), torch.tensor([[1, 1, 1, 0, 0]] * 2))
        st.feed(pad[:, :1], torch.zeros(2, 1, dtype=torch.long))
        holey = st.feed(ids[:, 3:], torch.ones(2, 3, dtype=torch.long))[:, -1]
    torch.testing.assert_close(holey, clean, atol=1e-4, rtol=1e-4)


def test_later_tokens_never_change_earlier_logits(mixed_engine):
    model, ids = _model_and_ids(mixed_engine, n=8)
    other = ids.clone()
    other[:, 5:] = (other[:, 5:] + 3) % len(mixed_engine.tokenizer)
    with torch.no_grad():
        a = model(input_ids=ids).logits
        b = model(input_ids=other).logits
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_refusals(tiny_engine):
    e = tiny_engine
    with pytest.raises(UnsupportedQueryError, match=r"also in given"):
        e.query("recovery", do={"treatment": 1}, given={"recovery": 1})
    with pytest.raises(QueryError, match=r"do: variable 'treatment': value 7 is not one of \[0, 1\]"):
        e.query("recovery", do={"treatment": 7})
    with pytest.raises(QueryError, match=r"do: variable 'dose' is not in the graph"):
        e.query("recovery", do={"dose": 1})
    with pytest.raises(QueryError, match=r"variable 'outcome' is not in the graph"):
        e.query("outcome", do={"treatment": 1})
    with pytest.raises(UnsupportedQueryError, match=r"both intervened on and conditioned on"):
        e.query("recovery", do={"treatment": 1}, given={"treatment": 0})
    with pytest.raises(UnsupportedQueryError, match="also intervened"):
        e.query("treatment", do={"treatment": 1})
    with pytest.raises(UnsupportedQueryError, match="non-numeric values"):
        e.ate("age", "treatment", 1, 0)


def test_initial_segment_given_is_accepted(tiny_engine):
    d = tiny_engine.query("recovery", do={"treatment": 1}, given={"age": "old", "severity": "mild"}, num_samples=8)
    assert abs(sum(d.probs.values()) - 1) < 1e-6


def test_warns_when_target_cannot_be_affected(tiny_engine):
    with pytest.warns(CausalWarning, match=r"target 'severity' is not a descendant"):
        tiny_engine.query("severity", do={"treatment": 1}, num_samples=8)


def test_forced_probability_diagnostic(tiny_engine):
    d = tiny_engine.query("recovery", do={"treatment": 1}, num_samples=50)
    p = d.diagnostics["p_forced[treatment]"]
    assert 0 < p["min"] <= p["mean"] < 1


def test_text_target_is_refused_for_distributions(mixed_engine):
    with pytest.raises(UnsupportedQueryError, match="use sample"):
        mixed_engine.query("note", do={"A": 1})


def test_unique_rows_groups_exactly():
    from hf_causal.inference.cache import unique_rows

    g = torch.Generator().manual_seed(0)
    key = torch.randint(0, 4, (300, 5), generator=g)
    key[:, 2] = torch.randint(0, 50000, (300,), generator=g) % 3 * 20000  # large values do not overflow
    rep, grp = unique_rows(key)
    ref = torch.unique(key, dim=0)
    assert len(rep) == len(ref)
    torch.testing.assert_close(key[rep][grp], key)  # each row equals its group's representative


@pytest.mark.parametrize("share", [False, True])
def test_prefix_sharing_changes_nothing_but_speed(tiny_engine, mixed_engine, share):
    """Sharing caches between rows with identical histories is exact: same draws, same readouts."""
    ref_tiny = tiny_engine.query("recovery", do={"treatment": 1}, num_samples=300, seed=2)
    ref_mixed = mixed_engine.sample(40, do={"A": 1}, seed=2)
    for eng, ref, fn in [
        (tiny_engine, ref_tiny, lambda e: e.query("recovery", do={"treatment": 1}, num_samples=300, seed=2)),
        (mixed_engine, ref_mixed, lambda e: e.sample(40, do={"A": 1}, seed=2)),
    ]:
        other = CausalEngine(eng.model, eng.tokenizer, eng.config, share_prefixes=share)
        out = fn(other)
        if isinstance(out, pd.DataFrame):
            pd.testing.assert_frame_equal(out.drop(columns=["Y"]), ref.drop(columns=["Y"]))
            np.testing.assert_allclose(out["Y"], ref["Y"], atol=1e-6)
        else:
            np.testing.assert_allclose(list(out.probs.values()), list(ref.probs.values()), atol=1e-5)


def test_partial_sequence_forces_some_steps_and_samples_the_rest(mixed_engine):
    from hf_causal import PartialSequence

    fixed = mixed_engine.sample(64, do={"moves": PartialSequence(["U", None, None, "R"])}, seed=4)
    assert all(len(m) == 4 and m[0] == "U" and m[3] == "R" and set(m) <= set("UDLR") for m in fixed["moves"])
    # the free steps are sampled, not copied from anywhere: they vary across draws
    assert len({tuple(m[1:3]) for m in fixed["moves"]}) > 3
    free = mixed_engine.sample(128, do={"moves": PartialSequence({1: "D"})}, seed=4)
    lengths = free["moves"].map(len)
    assert lengths.nunique() > 2  # the model ends the sequence
    assert all(m[1] == "D" for m in free["moves"] if len(m) >= 2)
    # same seed, same draws; the forced-step log-probs are reported as diagnostics
    again = mixed_engine.sample(128, do={"moves": PartialSequence({1: "D"})}, seed=4)
    pd.testing.assert_frame_equal(free, again)
    est = mixed_engine.expectation("Y", do={"moves": PartialSequence(["L", None])}, num_samples=64)
    assert 0 < est.details["p_forced[moves]"]["mean"] <= 1
    assert "moves=[L *]" in est.estimand


def test_partial_sequence_bad_input_is_refused(mixed_engine):
    from hf_causal import PartialSequence

    with pytest.raises(QueryError, match=r"'moves' step 2.*'X'"):
        mixed_engine.sample(4, do={"moves": PartialSequence({2: "X"})})
    with pytest.raises(QueryError, match="max_length 5"):
        mixed_engine.sample(4, do={"moves": PartialSequence({7: "U"})})
    with pytest.raises(UnsupportedQueryError, match="sequence variable"):
        mixed_engine.sample(4, do={"A": PartialSequence({0: 1})})
    with pytest.raises(UnsupportedQueryError, match="is an intervention"):
        mixed_engine.query("Y", given={"moves": PartialSequence({0: "U"})})
    with pytest.raises(UnsupportedQueryError, match="partial intervention"):
        mixed_engine.att("Y", "moves", PartialSequence({0: "U"}), ["D"])
    with pytest.raises(QueryError, match="length is 2"):
        PartialSequence({3: "U"}, length=2)


def test_default_batch_is_bounded_by_the_cache_budget():
    """Long rows and wide models get smaller batches (the cache's worst case stays within its budget),
    short rows the cap, a large vocabulary a bounded logits buffer."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from hf_causal.inference.cache import CACHE_BUDGET_BYTES, MAX_BATCH, default_batch_size

    small = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=120))
    wide = GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=128, n_head=4, vocab_size=120))
    assert default_batch_size(small, 120, 12, 2) == MAX_BATCH
    sizes = [default_batch_size(small, 120, t, 2) for t in (74, 200, 800)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] < MAX_BATCH
    for t, b in zip((74, 200, 800), sizes):
        assert b * 2 * 2 * 2 * (t + 1) * 64 * 4 <= CACHE_BUDGET_BYTES
    assert default_batch_size(wide, 120, 74, 2) < sizes[0]
    assert default_batch_size(small, 120, 74, 1) > sizes[0]  # ordinary attention: one key column a token
    assert default_batch_size(small, 50257, 12, 1) * 50257 * 4 <= 2e8

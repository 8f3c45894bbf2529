"""Checkpoints + LoRA: resize, new token rows trainable, GPT-2 tying kept, small adapters, exact reload."""

import json

import pytest
import torch

from hf_causal import CausalEngine, train
from hf_causal.testing import tiny_bert_checkpoint, tiny_gpt2_checkpoint

GRAPH = {
    "variables": {
        "Z": {"type": "categorical", "values": ["no", "yes"]},
        "A": {"type": "categorical", "values": [0, 1]},
        "title": {"type": "text", "max_length": 16},
        "Y": {"type": "categorical", "values": [0, 1]},
    },
    "edges": [["Z", "A"], ["Z", "title"], ["A", "Y"], ["title", "Y"]],
}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 300
    z = rng.integers(0, 2, n)
    df = pd.DataFrame(
        {
            "Z": np.where(z, "yes", "no"),
            "A": (rng.random(n) < 0.3 + 0.4 * z).astype(int),
            "title": rng.choice([" lowest newer", " wider", " low"], n),
            "Y": rng.integers(0, 2, n),
        }
    )
    p = tmp_path_factory.mktemp("rows") / "rows.jsonl"
    df.to_json(p, orient="records", lines=True)
    return p


def _train(tmp_path, base, rows, **kw):
    return train(
        {
            "graph": GRAPH,
            "data": str(rows),
            "base_model": str(base),
            "output_dir": str(tmp_path / "out"),
            "num_train_epochs": 2,
            "learning_rate": 5e-3,
            "logging_steps": 100000,
            **kw,
        }
    )


def test_gpt2_checkpoint_with_lora(tmp_path, rows):
    base = tiny_gpt2_checkpoint(tmp_path / "gpt2")
    out = _train(tmp_path, base, rows)
    cfg = json.loads((out / "causal_config.json").read_text())
    assert cfg["adapter"] == "lora" and cfg["tokenizer_mode"] == "pretrained" and cfg["base_model"] == str(base)
    assert cfg["attention"] == "two_stream"  # the default (auto) for a graph where a text is a parent
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    assert (out / "adapter_model.safetensors").stat().st_size < 200_000  # no full embedding copies
    assert cfg["metrics"]["trainable_parameters"] < cfg["metrics"]["parameters"] / 4
    eng = CausalEngine.from_pretrained(out)
    base_model = eng.model.get_base_model()
    # the new rows were trained and GPT-2's tied wte / lm_head stayed tied
    ids = torch.tensor(list(eng.tokenizer.start_ids.values()) + eng.tokenizer.value_ids["A"])
    x = torch.tensor([[eng.tokenizer.start_ids["Z"], eng.tokenizer.value_ids["Z"][1], eng.tokenizer.start_ids["A"]]])
    with torch.no_grad():
        emb_in = eng.model.get_input_embeddings()(ids)
        logits = eng.model(input_ids=x).logits[0, -1]
        h = base_model.transformer(input_ids=x).last_hidden_state[0, -1]
    fresh = CausalEngine.from_pretrained(out)  # identical logits after another reload
    with torch.no_grad():
        torch.testing.assert_close(fresh.model(input_ids=x).logits[0, -1], logits)
    torch.testing.assert_close(
        logits, h @ eng.model.get_input_embeddings()(torch.arange(len(eng.tokenizer))).T, atol=1e-4, rtol=1e-4
    )
    assert emb_in.abs().sum() > 0
    s = eng.sample(20, do={"A": 1}, seed=0)
    assert (s["A"] == 1).all() and s["title"].map(lambda t: isinstance(t, str)).all()


def test_gpt2_checkpoint_full_finetune(tmp_path, rows):
    base = tiny_gpt2_checkpoint(tmp_path / "gpt2")
    out = _train(tmp_path, base, rows, adapter="none")
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    eng = CausalEngine.from_pretrained(out)
    assert eng.query("Y", do={"A": 1}, num_samples=10).n_samples == 10


def test_bert_checkpoint_as_decoder_with_lora(tmp_path, rows):
    base = tiny_bert_checkpoint(tmp_path / "bert")
    out = _train(tmp_path, base, rows.with_name("rows.jsonl"))
    cfg = json.loads((out / "causal_config.json").read_text())
    assert cfg["architecture"] == "bert" and cfg["adapter"] == "lora"
    eng = CausalEngine.from_pretrained(out)
    assert eng.model.get_base_model().config.is_decoder
    x = torch.tensor(
        [
            [
                eng.tokenizer.start_ids["Z"],
                eng.tokenizer.value_ids["Z"][0],
                eng.tokenizer.start_ids["A"],
                eng.tokenizer.value_ids["A"][1],
            ]
        ]
    )
    y = x.clone()
    y[0, 3] = eng.tokenizer.value_ids["A"][0]
    with torch.no_grad():  # causal: the last token cannot change earlier logits
        torch.testing.assert_close(eng.model(input_ids=x).logits[0, :3], eng.model(input_ids=y).logits[0, :3])
    fresh = CausalEngine.from_pretrained(out)
    with torch.no_grad():
        torch.testing.assert_close(fresh.model(input_ids=x).logits, eng.model(input_ids=x).logits)


def test_default_attention_reads_a_text_parent_through_its_own_encoder():
    """auto: two_stream where a variable reads a text (its words in context), local where no variable
    does; an explicit mode is kept; build_model resolves it as train() does."""
    from hf_causal import ArtefactError, CausalConfig, CausalGraph, CausalTokenizer, ModelArguments, build_model
    from hf_causal.attention import resolve_attention

    g = CausalGraph.from_dict(GRAPH)
    assert resolve_attention("auto", g) == "two_stream" and resolve_attention("full", g) == "full"
    leaf = CausalGraph.from_dict({**GRAPH, "edges": [["Z", "A"], ["Z", "title"], ["A", "Y"]]})  # nothing reads it
    assert resolve_attention("auto", leaf) == "local"
    tok = CausalTokenizer.build(g, text_corpus={"title": [" lowest newer", " wider"]})
    model = build_model(ModelArguments(n_embd=16, n_layer=1, n_head=2), tok)
    assert ModelArguments().attention == "auto" and model.mechanism.mode == "two_stream"
    with pytest.raises(ArtefactError, match="attention 'auto' is not one of"):
        CausalConfig(graph=GRAPH, attention="auto")  # a saved model must say which mode it ran


def test_lora_without_base_is_refused():
    from hf_causal import ModelArguments, RecipeError

    with pytest.raises(RecipeError, match="adapter='lora' needs base_model"):
        ModelArguments(adapter="lora")


def test_restoring_a_checkpoint_does_not_report_tied_weights_as_missing():
    """safetensors stores a tied weight once; restoring must not call it lost, and must still name a
    weight that really is missing."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from hf_causal.modeling import without_tied_keys

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=40))
    state = {k: v.clone() + 1 for k, v in model.state_dict().items() if k != "lm_head.weight"}
    result = without_tied_keys(model, model.load_state_dict(state, strict=False))
    assert result.missing_keys == []
    assert model.lm_head.weight is model.transformer.wte.weight
    assert torch.equal(model.lm_head.weight, state["transformer.wte.weight"])
    del state["transformer.ln_f.weight"]
    result = without_tied_keys(model, model.load_state_dict(state, strict=False))
    assert result.missing_keys == ["transformer.ln_f.weight"]

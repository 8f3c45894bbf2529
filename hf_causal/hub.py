"""Sharing on the Hub: model cards and pushing complete artefacts (loading is :func:`hf_causal.load`).

A complete artefact is one folder (= one Hub repo, :mod:`hf_causal.artefact`) plus a ``README.md``
model card rendered from the template shipped in the package (``hf_causal/templates/model_card.md``).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from .checkpoints import hub_id, portable_checkpoint
from .config import CONFIG_NAME, CausalConfig
from .errors import ArtefactError
from .fileio import atomic_write_text

__all__ = ["render_model_card", "save_model_card", "push_to_hub"]

TAGS = ["hf_causal", "causal-inference", "peft", "lora"]


def render_model_card(
    folder: str | Path,
    repo_id: str | None = None,
    evaluation: list[dict] | None = None,
    data_description: str = "",
    dag_image: str | None = "dag.png",
    usage: str | None = None,
    extra: str | None = None,
):
    """Render the model card of a saved folder (a ``huggingface_hub.ModelCard``).

    ``evaluation``: rows ``{"query", "exact", "engine", "naive"}``; ``usage``: Python code for
    "How to load and query" (default: a generic query); ``extra``: Markdown after the evaluation.
    """
    from importlib import resources

    import huggingface_hub
    import peft
    import torch
    import transformers
    from huggingface_hub import ModelCard, ModelCardData

    from . import __version__
    from .tokenization import start_token

    folder = Path(folder)
    cfg = CausalConfig.from_pretrained(folder)
    g = cfg.causal_graph
    base = hub_id(cfg.base_model)
    data = ModelCardData(
        license="apache-2.0",
        library_name="peft" if cfg.adapter == "lora" else "transformers",
        base_model=base,
        tags=TAGS if cfg.adapter == "lora" else [t for t in TAGS if t not in ("peft", "lora")],
    )
    domain_var = next((v for v in reversed(g.order) if g[v].is_single_token and g.parents(v)), g.order[-1])
    do_var = next((p for p in g.parents(domain_var) if g[p].type in ("categorical", "integer")), None)
    example_do = {do_var: g[do_var].domain()[-1]} if do_var else {}
    m = cfg.metrics
    text = resources.files("hf_causal").joinpath("templates/model_card.md").read_text()
    card = ModelCard.from_template(
        data,
        template_str=text,
        model_name=repo_id or folder.name,
        repo_id=repo_id or str(folder),
        architecture=cfg.architecture,
        order_policy=cfg.order_policy,
        order=g.order,
        edges=g.edges,
        dag_image=dag_image if dag_image and (folder / dag_image).exists() else None,
        variables=[
            {"name": n, "type": g[n].type, "encoding": g[n].kind.describe(g[n]), "start": start_token(n)}
            for n in g.order
        ],
        pad_id=cfg.token_map.get("pad"),
        eos_id=cfg.token_map.get("eos"),
        base_model=portable_checkpoint(cfg.base_model),
        adapter=cfg.adapter,
        attention=cfg.attention,
        ensemble=cfg.ensemble,
        parameters=m.get("parameters"),
        trainable_parameters=m.get("trainable_parameters"),
        train_rows=m.get("train_rows"),
        train_seconds=m.get("train_seconds"),
        nll=m.get("eval_nll_per_variable"),
        data_description=data_description or "see the recipe",
        evaluation=evaluation,
        usage=usage,
        extra=extra,
        example_target=domain_var,
        example_do=repr(example_do).replace("'", '"'),
        versions={
            "hf_causal": __version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "torch": torch.__version__,
            "huggingface_hub": huggingface_hub.__version__,
            "python": platform.python_version(),
        },
    )
    return card


def save_model_card(folder: str | Path, **kwargs) -> Path:
    """Write ``dag.png`` and ``README.md`` (the model card) into a saved folder, atomically."""
    from .plot import plot_dag

    folder = Path(folder)
    cfg = CausalConfig.from_pretrained(folder)
    plot_dag(cfg.causal_graph, folder / "dag.png", title="causal graph")
    card = render_model_card(folder, **kwargs)
    atomic_write_text(folder / "README.md", str(card))
    return folder / "README.md"


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload hf_causal engine",
    card_kwargs: dict[str, Any] | None = None,
    api=None,
) -> str:
    """Upload a complete saved folder (model, tokenizer, causal_config.json, card) in one commit.

    A single commit means the repo never shows a partial artefact. Returns the commit URL.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / CONFIG_NAME).exists():
        raise ArtefactError(f"{folder} has no {CONFIG_NAME}: it is not a complete hf_causal folder")
    save_model_card(folder, repo_id=repo_id, **(card_kwargs or {}))
    api = api or HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        commit_message=commit_message,
        ignore_patterns=["checkpoint-*", "checkpoint-*/**", ".*", "*.tmp"],
    )
    return str(getattr(info, "commit_url", info))

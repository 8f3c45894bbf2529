"""The saved engine folder (= one Hub repo): the only module that knows what it holds.

A folder holds the model (full safetensors weights, or a LoRA adapter over a base checkpoint),
the tokenizer and ``causal_config.json``, plus optionally the model card. It is written through a
temporary sibling and renamed into place, with ``causal_config.json`` last, so a crash never
leaves a folder that loads as complete. Loading checks the format version and that the tokenizer's
ids are the ones the config recorded.

Example:
    >>> model, tokenizer, config = load_parts("outputs/demo")      # doctest: +SKIP
    >>> save(model, tokenizer, config, "outputs/copy")            # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .config import CONFIG_NAME, CausalConfig
from .errors import ArtefactError
from .fileio import atomic_folder

__all__ = ["CONFIG_NAME", "resolve_folder", "save", "load_parts", "tokenizer_for", "check_token_map"]


_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def resolve_folder(repo_or_dir: str | Path, revision: str | None = None) -> Path:
    """A local folder as it is, or a Hub repo id downloaded (offline: from the local cache only).

    A path that does not exist and cannot be a repo id (absolute, ``./x``, ``a/b/c``) is "no such
    folder", never a Hub lookup."""
    p = Path(str(repo_or_dir)).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ArtefactError(f"{p} is a file, not a model folder")
        return p
    name = str(repo_or_dir)
    if isinstance(repo_or_dir, Path) or not _REPO_ID.match(name):
        raise ArtefactError(f"no such folder: {name}")
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    try:
        return Path(snapshot_download(name, revision=revision, local_files_only=offline))
    except Exception as e:  # noqa: BLE001 - any Hub failure: say what was tried
        where = "in the local Hub cache (HF_HUB_OFFLINE is set)" if offline else "on the Hub"
        raise ArtefactError(
            f"no such folder: {name}, and no Hub repo {name!r} {where} ({type(e).__name__}: {e})"
        ) from None


def save(model, tokenizer, config: CausalConfig, output_dir: str | Path) -> Path:
    """Write model + tokenizer + ``causal_config.json`` into ``output_dir`` atomically.

    Trainer checkpoints already in ``output_dir`` are kept.
    """
    from .modeling import save_weights

    with atomic_folder(output_dir, last=CONFIG_NAME) as tmp:
        save_weights(model, tmp)
        tokenizer.save_pretrained(tmp)
        config.save_pretrained(tmp)
    return Path(output_dir)


def check_token_map(tokenizer, config: CausalConfig, where: str | Path) -> None:
    """The tokenizer's start/value/pad/eos ids must be the ones ``causal_config.json`` recorded."""
    if json.loads(json.dumps(tokenizer.token_map())) != json.loads(json.dumps(config.token_map)):
        raise ArtefactError(
            f"{where}: tokenizer ids do not match causal_config.json's token_map; the folder is inconsistent "
            "(re-download it, or re-train)"
        )


def tokenizer_for(config: CausalConfig, hf_tokenizer, where: str | Path = "the model"):
    """The :class:`CausalTokenizer` of a loaded ``transformers`` tokenizer, checked against the config."""
    from .tokenization import CausalTokenizer

    tok = CausalTokenizer(config.causal_graph, hf_tokenizer, config.tokenizer_mode)
    check_token_map(tok, config, where)
    return tok


def load_parts(repo_or_dir: str | Path, revision: str | None = None):
    """``(model, tokenizer, config)`` of a saved folder or Hub repo; safetensors only."""
    from transformers import AutoTokenizer

    from .modeling import load_weights

    path = resolve_folder(repo_or_dir, revision)
    config = CausalConfig.from_pretrained(path)
    tok = tokenizer_for(config, AutoTokenizer.from_pretrained(str(path), local_files_only=True), path)
    model = load_weights(path, tok, base_model=config.base_model)
    return model, tok, config

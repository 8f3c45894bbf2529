"""The model objects: GPT-2 or BERT-as-decoder, built from a small config (from scratch) or from a
checkpoint with LoRA, and loaded back from a saved folder's weights.

Which files a saved folder holds, and the checks on them, belong to :mod:`hf_causal.artefact`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .checkpoints import is_local, portable_checkpoint, resolve_checkpoint
from .errors import ArtefactError, RecipeError

__all__ = ["ARCHITECTURES", "build_model", "load_base", "load_weights", "save_weights", "architecture_of"]

ARCHITECTURES = ("gpt2", "bert")


def load_base(base: str, mechanisms: bool = False):
    """A GPT-2 or BERT checkpoint (Hub id, folder or ``package:`` name) as a causal LM (BERT with
    ``is_decoder=True``), and its architecture. ``mechanisms``: as the model class whose forward takes
    ``segment_ids`` (:mod:`hf_causal.mechanisms`); the weights are the same."""
    from transformers import AutoConfig

    from .artefact import refuse_remote_code

    bert_class, gpt2_class = _model_classes(mechanisms)

    base = resolve_checkpoint(base)
    local = is_local(base)
    if local:
        refuse_remote_code(base)
    safe = {"local_files_only": local, "trust_remote_code": False, "use_safetensors": True}
    cfg = AutoConfig.from_pretrained(base, local_files_only=local, trust_remote_code=False)
    if cfg.model_type == "bert":
        cfg.is_decoder = True
        return bert_class.from_pretrained(base, config=cfg, **safe), "bert"
    if cfg.model_type != "gpt2":
        raise RecipeError(f"base model {base} has model_type {cfg.model_type!r}; hf_causal supports gpt2 and bert")
    return gpt2_class.from_pretrained(base, **safe), "gpt2"


def _model_classes(mechanisms: bool):
    """``(BERT class, GPT-2 class)`` to load weights into: the causal-LM classes, or with ``mechanisms`` the
    subclasses whose forward takes ``segment_ids`` (:mod:`hf_causal.mechanisms`); the weights are the same."""
    if mechanisms:
        from .mechanisms import BertWithMechanisms, GPT2WithMechanisms

        return BertWithMechanisms, GPT2WithMechanisms
    from transformers import BertLMHeadModel, GPT2LMHeadModel

    return BertLMHeadModel, GPT2LMHeadModel


def architecture_of(model) -> str:
    """``gpt2`` or ``bert``, read from a (peft-wrapped) model's config."""
    cfg = getattr(model, "config", None)
    return "bert" if getattr(cfg, "model_type", "gpt2") == "bert" else "gpt2"


def _scratch(args, tok, max_length: int, attention: str):
    from transformers import BertConfig, GPT2Config

    bert_class, gpt2_class = _model_classes(_uses_mechanisms(attention))
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
        return gpt2_class(cfg)
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
    return bert_class(cfg)


def _embedding_name(arch: str) -> str:
    return "wte" if arch == "gpt2" else "word_embeddings"


def _uses_mechanisms(attention: str) -> bool:
    from .mechanisms import MECHANISM_MODES

    return attention in MECHANISM_MODES


def attach_mechanism(model, attention: str, graph):
    if _uses_mechanisms(attention):
        from .attention import segment_attention_matrix
        from .mechanisms import Mechanism

        model.mechanism = Mechanism(attention, segment_attention_matrix(graph))
    return model


def build_model(args, tok, max_length: int = 256, seed: int = 0):
    """The model to train (``args``: :class:`~hf_causal.arguments.ModelArguments`, not modified);
    a ``peft`` model when ``args.adapter == "lora"``. :func:`architecture_of` tells what was built."""
    from .attention import resolve_attention

    torch.manual_seed(seed)
    attention = resolve_attention(args.attention, tok.graph)  # auto: by the parents' kinds
    if not args.base_model:
        return attach_mechanism(_scratch(args, tok, max_length, attention), attention, tok.graph)
    model, arch = load_base(args.base_model, mechanisms=_uses_mechanisms(attention))
    attach_mechanism(model, attention, tok.graph)
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


def save_weights(model, path: str | Path) -> None:
    """safetensors only; adapters without the full embedding matrices."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model.save_pretrained(str(path), save_embedding_layers=False)
    else:
        model.save_pretrained(str(path))


def load_weights(
    path: str | Path, tok, base_model: str | None = None, adapter_name: str = "default", attention: str = "full"
):
    """The model of a saved folder: full weights, or ``base_model`` + the LoRA adapter beside them.

    The base is rebuilt the way training built it (BERT with ``is_decoder=True``, embeddings
    resized to the saved tokenizer, and for ``local``/``two_stream`` attention the model class whose
    forward takes ``segment_ids``, with the graph's mechanism attached) before the adapter is applied;
    never unpickles.
    """
    path = Path(path)
    mechanisms = _uses_mechanisms(attention)
    adapter_cfg = path / "adapter_config.json"
    if adapter_cfg.exists():
        from peft import PeftModel

        base = portable_checkpoint(base_model or json.loads(adapter_cfg.read_text()).get("base_model_name_or_path"))
        if not base:
            raise ArtefactError(
                f"{adapter_cfg} names no base model (base_model_name_or_path): set it to the checkpoint the adapter "
                "was trained on"
            )
        if Path(base).is_absolute() and not Path(base).exists():
            raise ArtefactError(
                f"{adapter_cfg}: the base model {base} does not exist on this machine; set base_model_name_or_path "
                "to a Hub id or local folder of the checkpoint the adapter was trained on"
            )
        model, _ = load_base(base, mechanisms=mechanisms)
        attach_mechanism(model, attention, tok.graph)
        model.resize_token_embeddings(len(tok), mean_resizing=False)
        try:
            model = PeftModel.from_pretrained(model, str(path), adapter_name=adapter_name, is_trainable=False)
        except Exception as e:  # noqa: BLE001 - an adapter that does not fit its base is a broken artefact
            raise ArtefactError(f"{path}: the adapter does not load ({type(e).__name__}: {e})") from None
    else:
        from transformers import AutoConfig

        bert_class, gpt2_class = _model_classes(mechanisms)
        safe = {"local_files_only": True, "trust_remote_code": False, "use_safetensors": True}
        try:
            cfg = AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
            if cfg.model_type == "bert":
                cfg.is_decoder = True
                model = bert_class.from_pretrained(str(path), config=cfg, **safe)
            elif cfg.model_type == "gpt2":
                model = gpt2_class.from_pretrained(str(path), **safe)
            else:
                raise ArtefactError(
                    f"{path}/config.json has model_type {cfg.model_type!r}; hf_causal saves gpt2 or bert"
                )
        except ArtefactError:
            raise
        except Exception as e:  # noqa: BLE001 - weights that do not load are a broken artefact
            raise ArtefactError(
                f"{path}: the model does not load ({type(e).__name__}: {e}); re-download or re-train"
            ) from None
        attach_mechanism(model, attention, tok.graph)
    model.eval()
    return model


def model_summary(model) -> dict[str, Any]:
    n_total = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parameters": int(n_total), "trainable_parameters": int(n_train)}


def base_of(model):
    """The transformers model inside a peft wrapper (the model itself when it is not wrapped)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def without_tied_keys(model, load_result):
    """``load_result`` (a ``load_state_dict`` result) without the missing keys that are tied weights, which
    safetensors stores once: the Trainer restoring its best checkpoint read them as lost weights and warned
    ("missing keys: lm_head.weight"). The ties are re-made; any other missing key is kept (and warned)."""
    base = base_of(model)
    tied = set(getattr(base, "_tied_weights_keys", None) or ())
    missing = [k for k in load_result.missing_keys if not any(k == t or k.endswith("." + t) for t in tied)]
    if len(missing) < len(load_result.missing_keys):
        base.tie_weights()
    return load_result._replace(missing_keys=missing)

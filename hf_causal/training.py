"""Fine-tuning with the ``transformers`` Trainer, configured by dataclasses and YAML recipes.

A recipe is a flat YAML file (alignment-handbook style) whose keys are fields of
:class:`DataArguments`, :class:`~hf_causal.modeling.ModelArguments` and
:class:`CausalTrainingArguments` (a ``TrainingArguments`` subclass); ``graph`` is a path
or an inline mapping. CLI overrides ``--key value`` replace recipe values.

Run it with ``hf-causal train RECIPE.yaml`` or ``accelerate launch -m hf_causal.cli train RECIPE.yaml``.
The output folder holds the model (full weights or a LoRA adapter, safetensors), the
tokenizer and ``causal_config.json``, written atomically: a crash leaves no folder that
loads as complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainingArguments

from .config import CausalConfig
from .data import load_table
from .graph import CausalGraph, GraphError
from .modeling import ModelArguments, build_model, model_summary, resolve_checkpoint, save_model
from .sequencify import ORDER_POLICIES, Sequencifier, check_columns
from .tokenization import CausalTokenizer

__all__ = [
    "DataArguments",
    "CausalTrainingArguments",
    "train",
    "parse_recipe",
    "load_recipe",
    "evaluate_nll",
    "CausalDataCollator",
]


@dataclass
class DataArguments:
    """Where the rows come from and how they become sequences."""

    graph: Any = field(
        default=None, metadata={"help": "graph spec: YAML/JSON path or inline mapping (default: the world's)"}
    )
    data: str | None = field(default=None, metadata={"help": "CSV, Parquet, JSON Lines or datasets folder"})
    world: str | None = field(default=None, metadata={"help": "built-in world to simulate rows from (e.g. demo)"})
    loss_variables: list[str] | None = field(
        default=None,
        metadata={
            "help": "train only these variables' conditionals (default: all, the joint). With few rows and many "
            "covariates, e.g. [treatment, outcome] spends the model on the mechanisms; queries must then take the "
            "other variables from data (data=...), and the engine refuses to sample them"
        },
    )
    world_options: dict[str, Any] | None = field(
        default=None, metadata={"help": "keyword arguments of the world, e.g. {sizes: [5, 6], max_length: 32} for maze"}
    )
    world_rows: int = field(default=20000, metadata={"help": "rows to simulate from the world"})
    world_seed: int = field(default=0, metadata={"help": "seed of the simulated rows"})
    eval_fraction: float = field(default=0.05, metadata={"help": "held-out fraction for the per-variable NLL"})
    order_policy: str = field(
        default="canonical", metadata={"help": "canonical or random (one topological order per row)"}
    )
    max_text_vocab: int = field(
        default=8000, metadata={"help": "closed vocabulary: most frequent words of text variables"}
    )
    tokenizer: str | None = field(
        default=None, metadata={"help": "tokenizer to extend (default: base_model's, else closed vocabulary)"}
    )

    def __post_init__(self) -> None:
        if self.order_policy not in ORDER_POLICIES:
            raise GraphError(f"order_policy must be one of {ORDER_POLICIES}, got {self.order_policy!r}")
        if not 0 <= self.eval_fraction < 1:
            raise GraphError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")


@dataclass
class CausalTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with defaults for small causal models on CPU."""

    output_dir: str = field(default="outputs/model", metadata={"help": "where the trained model is written"})
    learning_rate: float = 2e-3
    num_train_epochs: float = 8.0
    per_device_train_batch_size: int = 128
    per_device_eval_batch_size: int = 256
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.02
    weight_decay: float = 0.0
    logging_steps: int = 50
    save_strategy: str = "no"
    report_to: Any = "none"
    use_cpu: bool = True
    seed: int = 0
    disable_tqdm: bool = True
    dataloader_num_workers: int = 0
    early_stopping_patience: int = field(
        default=0,
        metadata={
            "help": "0 = off; N > 0: evaluate the held-out rows (eval_fraction) every epoch, stop after N epochs "
            "without improvement and keep the best epoch's weights (num_train_epochs is then an upper bound)"
        },
    )

    def __post_init__(self) -> None:
        if self.early_stopping_patience > 0:
            self.eval_strategy = "epoch"
            self.save_strategy = "epoch"
            self.load_best_model_at_end = True
            self.metric_for_best_model = "eval_loss"
            self.greater_is_better = False
            self.save_total_limit = 1
            self.save_only_model = True
        super().__post_init__()


def _split_keys(cfg: dict[str, Any]) -> tuple[dict, dict, dict]:
    names = [{f.name for f in fields(c)} for c in (DataArguments, ModelArguments, CausalTrainingArguments)]
    parts: tuple[dict, dict, dict] = ({}, {}, {})
    for k, v in cfg.items():
        for i, n in enumerate(names):
            if k in n:
                parts[i][k] = v
                break
        else:
            raise GraphError(f"unknown recipe key {k!r}; see `hf-causal train --help` for the keys")
    return parts


def load_recipe(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.exists():
        raise GraphError(f"recipe {path} does not exist")
    cfg = yaml.safe_load(path.read_text()) or {}
    if not isinstance(cfg, dict):
        raise GraphError(f"recipe {path} must be a mapping of keys to values")
    for key in ("graph", "data"):  # paths are relative to the recipe file
        v = cfg.get(key)
        if isinstance(v, str) and not Path(v).is_absolute() and (path.parent / v).exists():
            cfg[key] = str(path.parent / v)
    return cfg


def parse_recipe(
    recipe: str | Path | dict[str, Any] | None, overrides: dict[str, Any] | None = None
) -> tuple[DataArguments, ModelArguments, CausalTrainingArguments]:
    """Recipe (path or dict) + overrides -> the three argument dataclasses."""
    cfg = dict(load_recipe(recipe) if isinstance(recipe, (str, Path)) else (recipe or {}))
    cfg.update(overrides or {})
    d, m, t = _split_keys(cfg)
    return DataArguments(**d), ModelArguments(**m), CausalTrainingArguments(**t)


class CausalDataCollator:
    """Right-pads ``input_ids`` with the pad id; labels are the inputs with padding at -100.

    With ``allowed`` (see :func:`~hf_causal.modeling.segment_attention_matrix`) the attention
    mask is 4-D: each variable's tokens attend only to their own and their parents' tokens.
    """

    def __init__(self, pad_id: int, allowed: torch.Tensor | None = None, loss_segments: list[int] | None = None):
        self.pad_id = pad_id
        self.allowed = allowed
        self.loss_segments = None if loss_segments is None else torch.as_tensor(sorted(loss_segments))

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        n = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), n), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(features), n), dtype=torch.long)
        seg = torch.full((len(features), n), -1, dtype=torch.long)
        for i, f in enumerate(features):
            x = torch.as_tensor(f["input_ids"], dtype=torch.long)
            ids[i, : len(x)] = x
            mask[i, : len(x)] = 1
            if self.allowed is not None or self.loss_segments is not None:
                seg[i, : len(x)] = torch.as_tensor(f["segment_ids"], dtype=torch.long)
        labels = ids.masked_fill(mask == 0, -100)
        if self.loss_segments is not None:  # only these variables' tokens are predicted
            labels = labels.masked_fill(~torch.isin(seg, self.loss_segments), -100)
        attn: torch.Tensor = mask
        if self.allowed is not None:
            from .engine import _segment_mask_4d

            seg = torch.where(seg < 0, self.allowed.shape[0] - 1, seg)
            attn = _segment_mask_4d(self.allowed, seg, seg, mask, 0)
        return {"input_ids": ids, "attention_mask": attn, "labels": labels}


@torch.no_grad()
def evaluate_nll(
    model, dataset, names: list[str], pad_id: int, batch_size: int = 256, allowed: torch.Tensor | None = None
) -> dict[str, float]:
    """Held-out negative log-likelihood per variable (nats per row; a variable's start token included)."""
    model.eval()
    tot = np.zeros(len(names) + 1)
    n_rows = 0
    collate = CausalDataCollator(pad_id, allowed)
    for s in range(0, len(dataset), batch_size):
        rows = dataset[s : s + batch_size]
        feats = [{"input_ids": x, "segment_ids": g} for x, g in zip(rows["input_ids"], rows["segment_ids"])]
        b = collate(feats)
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
        lp = torch.log_softmax(logits, -1).gather(-1, b["input_ids"][:, 1:, None])[..., 0]
        valid = b["labels"][:, 1:] != -100
        seg = torch.full_like(b["input_ids"], -1)
        for i, sg in enumerate(rows["segment_ids"]):
            seg[i, : len(sg)] = torch.as_tensor(sg)
        seg = seg[:, 1:]
        for j in range(len(names) + 1):
            sel = valid & (seg == (j if j < len(names) else -1))
            tot[j] += float(-(lp * sel).sum())
        n_rows += len(feats)
    out = {n: tot[j] / max(n_rows, 1) for j, n in enumerate(names)}
    out["<eos>"] = tot[-1] / max(n_rows, 1)
    out["total"] = float(tot.sum() / max(n_rows, 1))
    return out


def prepare(data_args: DataArguments, model_args: ModelArguments, seed: int = 0, main_process_first=None):
    """Graph, tokenizer, sequencifier and the tokenized train/eval datasets."""
    import datasets

    world = None
    if data_args.world:
        from .worlds import get_world

        world = get_world(data_args.world, **(data_args.world_options or {}))
    if data_args.graph is not None:
        graph = CausalGraph.coerce(data_args.graph)
    elif world is not None:
        graph = CausalGraph.from_dict(world.graph.to_dict())
    else:
        raise GraphError("recipe needs `graph` (a path or mapping) or a `world`")
    if data_args.data:
        df = load_table(data_args.data, graph)
    elif world is not None:
        df = world.sample(data_args.world_rows, seed=data_args.world_seed)
    else:
        raise GraphError("recipe needs `data` (a file) or a `world` to simulate rows from")
    check_columns(graph.order, list(df.columns))
    if data_args.loss_variables is not None:  # before any work on the rows
        unknown = [v for v in data_args.loss_variables if v not in graph.variables]
        if unknown or not data_args.loss_variables:
            raise GraphError(
                f"loss_variables: {unknown or 'empty list'} not variables of the graph ({', '.join(graph.order)})"
            )
    df = df[graph.order].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(df))
    n_eval = int(round(len(df) * data_args.eval_fraction))
    train_df = df.iloc[perm[n_eval:]]
    for n, v in graph.variables.items():
        if v.type == "continuous":
            from .codecs import ContinuousCodec

            ContinuousCodec(v).fit(train_df[n].tolist())
    texts = {n: train_df[n].tolist() for n, v in graph.variables.items() if v.type == "text"}
    base_tok = data_args.tokenizer or model_args.base_model
    base_tok = resolve_checkpoint(base_tok) if base_tok else None
    tok = CausalTokenizer.build(graph, base=base_tok, text_corpus=texts, max_text_vocab=data_args.max_text_vocab)
    seq = Sequencifier(tok, data_args.order_policy, seed=seed)

    def to_ds(frame):
        return datasets.Dataset.from_dict({c: _arrow_safe(graph[c], frame[c].tolist()) for c in frame.columns})

    ctx = main_process_first if main_process_first is not None else contextlib.nullcontext
    with ctx():
        # map in file order, so errors and per-row random orders refer to the data's own row numbers
        all_ds = to_ds(df).map(
            seq, batched=True, with_indices=True, remove_columns=list(graph.order), desc="sequencify"
        )
    train_ds = all_ds.select(sorted(perm[n_eval:].tolist()))
    eval_ds = all_ds.select(sorted(perm[:n_eval].tolist())) if n_eval else None
    return graph, tok, seq, train_ds, eval_ds, df


def _arrow_safe(var, values: list) -> list:
    """One Arrow type per column: numbers stay numbers (continuous), everything else becomes a
    string (sequences space-joined) or None; the codecs parse them back with named errors."""
    from .graph import _is_missing

    out = []
    for v in values:
        if _is_missing(v):
            out.append(None)
        elif var.type == "continuous":
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                return [None if _is_missing(x) else str(x) for x in values]
        elif isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim >= 1):
            out.append(" ".join(str(x) for x in list(v)))
        else:
            out.append(str(v.item() if hasattr(v, "item") else v))
    return out


def train(
    recipe: str | Path | dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    resume: bool = False,
) -> Path:
    """Train a causal engine from a recipe; returns the output folder.

    Example:
        >>> out = train({"world": "demo", "world_rows": 2000, "num_train_epochs": 1,
        ...              "output_dir": "/tmp/hf_causal_doc"})  # doctest: +SKIP
    """
    from transformers import Trainer, set_seed

    data_args, model_args, args = parse_recipe(recipe, overrides)
    set_seed(args.seed)
    t0 = time.time()
    graph, tok, seq, train_ds, eval_ds, _ = prepare(
        data_args, model_args, seed=args.seed, main_process_first=lambda: args.main_process_first(desc="sequencify")
    )
    max_len = max(len(x) for x in train_ds["input_ids"])
    model = build_model(model_args, tok, max_length=max(2 * max_len, 64), seed=args.seed)
    if args.world_size > 1:
        args.ddp_find_unused_parameters = False  # every parameter is used (peft#951)
    from .modeling import segment_attention_matrix

    allowed = segment_attention_matrix(graph) if model_args.attention == "parents" else None
    loss_segments = None
    if data_args.loss_variables is not None:  # names were checked in prepare()
        loss_segments = [graph.order.index(v) for v in data_args.loss_variables] + [-1]  # -1: <eos>
    args.remove_unused_columns = False  # the collator needs segment_ids for parent-restricted attention
    callbacks = []
    if args.early_stopping_patience > 0:
        if eval_ds is None or not len(eval_ds):
            raise GraphError("early_stopping_patience needs held-out rows: set eval_fraction > 0 (e.g. 0.05)")
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds if callbacks else None,
        data_collator=CausalDataCollator(tok.pad_id, allowed, loss_segments),
        processing_class=tok.hf,
        callbacks=callbacks or None,
    )
    ckpt = None
    if resume:
        from transformers.trainer_utils import get_last_checkpoint

        ckpt = get_last_checkpoint(args.output_dir) if os.path.isdir(args.output_dir) else None
    result = trainer.train(resume_from_checkpoint=ckpt)
    t_train = time.time() - t0
    metrics: dict[str, Any] = {
        "train_loss": float(result.training_loss),
        "train_rows": len(train_ds),
        "train_seconds": round(t_train, 2),
        "max_sequence_length": int(max_len),
        "world_size": int(args.world_size),
        **model_summary(model),
    }
    if callbacks:
        metrics["epochs_trained"] = float(trainer.state.epoch or 0)
        metrics["best_epoch_eval_loss"] = trainer.state.best_metric
        if args.process_index == 0:  # the best weights are loaded; the epoch checkpoints are not part of the engine
            for ck in Path(args.output_dir).glob("checkpoint-*"):
                shutil.rmtree(ck, ignore_errors=True)
    if eval_ds is not None and len(eval_ds):
        nll = evaluate_nll(trainer.model, eval_ds, list(graph.order), tok.pad_id, allowed=allowed)
        metrics["eval_rows"] = len(eval_ds)
        metrics["eval_nll_per_variable"] = {k: round(v, 5) for k, v in nll.items()}
    if args.process_index == 0:
        config = CausalConfig(
            graph=graph.to_dict(),
            order_policy=data_args.order_policy,
            tokenizer_mode=tok.mode,
            token_map=tok.token_map(),
            architecture=model_args.architecture,
            base_model=model_args.base_model,
            adapter=model_args.adapter,
            attention=model_args.attention,
            seed=args.seed,
            loss_variables=list(data_args.loss_variables) if data_args.loss_variables is not None else None,
            metrics=json.loads(json.dumps(metrics, default=float)),
        )
        save_engine_folder(trainer.model, tok, config, args.output_dir)
    accelerator = getattr(trainer, "accelerator", None)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return Path(args.output_dir)


def save_engine_folder(model, tok: CausalTokenizer, config: CausalConfig, output_dir: str | Path) -> Path:
    """Write model + tokenizer + causal_config.json into ``output_dir`` atomically.

    Everything is written to a temporary sibling folder, then moved into place; the config
    (which marks a folder as complete) is written last. Trainer checkpoints already in
    ``output_dir`` are kept.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        save_model(model, tmp)
        tok.save_pretrained(tmp)
        cfg = config
        cfg.save_pretrained(tmp)
        (out / "causal_config.json").unlink(missing_ok=True)  # folder is incomplete from here on
        for f in tmp.iterdir():
            if f.name == "causal_config.json":
                continue
            dest = out / f.name
            if dest.is_dir():
                shutil.rmtree(dest)
            os.replace(f, dest)
        os.replace(tmp / "causal_config.json", out / "causal_config.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out

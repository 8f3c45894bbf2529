"""Fine-tuning with the ``transformers`` Trainer: rows -> sequences -> a trained engine folder.

A recipe (:mod:`hf_causal.recipes`) gives the three argument groups of :mod:`hf_causal.arguments`.

Run it with ``hf-causal train RECIPE.yaml`` or ``accelerate launch -m hf_causal.cli train RECIPE.yaml``.
The output folder holds the model (full weights or a LoRA adapter, safetensors), the
tokenizer and ``causal_config.json``, written atomically: a crash leaves no folder that
loads as complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .artefact import save as save_artefact
from .attention import resolve_attention, segment_attention_matrix, segment_mask_4d
from .checkpoints import resolve_checkpoint
from .config import CausalConfig
from .data import load_table, source_name
from .ensemble import EnsembleSpec, member_rows, row_hashes
from .errors import DataError, RecipeError
from .fileio import atomic_folder, atomic_write_json
from .graph import CausalGraph
from .mechanisms import MECHANISM_MODES
from .modeling import architecture_of, build_model, model_summary, save_weights, without_tied_keys
from .recipes import given_keys, load_recipe, parse_recipe
from .sequencify import Sequencifier, check_columns
from .support import fit_support
from .tokenization import CausalTokenizer

__all__ = ["train", "prepare", "evaluate_nll", "CausalDataCollator", "last_complete_checkpoint"]

logger = logging.getLogger(__name__)
RUN_TOTALS = "hf_causal_run.json"
"""Written into every Trainer checkpoint: the loss sum, steps and seconds of the run up to it."""


def _checkpoint_problem(ckpt: Path, save_only_model: bool) -> str | None:
    """Why a Trainer checkpoint cannot be resumed from (None: it can)."""
    if not (ckpt / "trainer_state.json").exists():
        return "no trainer_state.json (the run was stopped while writing it)"
    weights = sorted(ckpt.glob("*.safetensors"))
    if not weights:
        return "no weights file"
    from safetensors import safe_open

    for w in weights:
        try:
            with safe_open(str(w), framework="pt") as f:
                f.keys()
        except Exception as e:  # noqa: BLE001
            return f"{w.name} does not load ({type(e).__name__})"
    needed = [RUN_TOTALS] + ([] if save_only_model else ["optimizer.pt", "scheduler.pt"])
    missing = [n for n in needed if not (ckpt / n).exists() or (ckpt / n).stat().st_size == 0]
    if missing:
        return f"no {', '.join(missing)}"
    return None


def last_complete_checkpoint(output_dir: str | Path, save_only_model: bool = False) -> Path | None:
    """The newest ``checkpoint-N`` in ``output_dir`` that a run can resume from. Newer, incomplete ones
    (a run killed while writing them) are removed, with a warning that says why."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    out = Path(output_dir)
    if not out.is_dir():
        return None
    found = []
    for d in out.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        tail = d.name.rsplit("-", 1)[-1]
        if d.is_dir() and tail.isdigit():
            found.append((int(tail), d))
    for _, d in sorted(found, reverse=True):
        problem = _checkpoint_problem(d, save_only_model)
        if problem is None:
            return d
        logger.warning("skipping incomplete checkpoint %s: %s; it is removed and an earlier one is used", d, problem)
        shutil.rmtree(d, ignore_errors=True)
    return None


def _read_totals(ckpt: Path | None) -> dict[str, float]:
    if ckpt is None:
        return {"loss_sum": 0.0, "steps": 0, "seconds": 0.0}
    return json.loads((ckpt / RUN_TOTALS).read_text())


def _causal_trainer_class():
    from transformers import Trainer
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    class CausalTrainer(Trainer):
        """The Trainer, recording the run's totals in each checkpoint so a resumed run reports the whole run."""

        def __init__(self, *args, prior: dict[str, float] | None = None, started: float | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.prior = prior or _read_totals(None)
            self.started = started or time.time()

        def run_totals(self, call_loss: float | None = None) -> dict[str, float]:
            """Loss sum, steps and seconds of the whole run so far. During training the loss of this call
            is read from the Trainer's accumulators; after it, pass ``call_loss`` (its mean training loss)."""
            steps = self.state.global_step - getattr(self, "_initial_global_step", 0)
            if call_loss is None:
                loss = float(getattr(self, "_total_loss_scalar", 0.0))
                pending = getattr(self, "_tr_loss", None)
                loss += float(pending.item()) if pending is not None else 0.0
            else:
                loss = call_loss * steps
            return {
                "loss_sum": self.prior["loss_sum"] + loss,
                "steps": self.prior["steps"] + steps,
                "seconds": self.prior["seconds"] + time.time() - self.started,
            }

        def _issue_warnings_after_load(self, load_result) -> None:
            super()._issue_warnings_after_load(without_tied_keys(self.model, load_result))

        def _save_checkpoint(self, model, trial) -> None:
            totals = self.run_totals()
            super()._save_checkpoint(model, trial)
            if self.args.should_save:
                folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
                atomic_write_json(folder / RUN_TOTALS, totals)

    return CausalTrainer


class CausalDataCollator:
    """Right-pads ``input_ids`` with the pad id; labels are the inputs with padding (and the first token, which
    nothing predicts) at -100.

    With ``allowed`` (see :func:`~hf_causal.attention.segment_attention_matrix`) the attention
    mask is 4-D: each variable's tokens attend only to their own and their parents' tokens. With
    ``with_segments`` the batch carries ``segment_ids`` for mechanism attention (:mod:`hf_causal.mechanisms`).
    With ``loss_segments`` only the predictions made at those variables' tokens are labelled: from the
    variable's start token (predicting its first value token) to its last token (predicting its end, the
    next start token or ``<eos>``), so a text's end event is trained with the text, not with the next variable.
    """

    def __init__(
        self,
        pad_id: int,
        allowed: torch.Tensor | None = None,
        loss_segments: list[int] | None = None,
        with_segments: bool = False,
    ):
        self.pad_id = pad_id
        self.allowed = allowed
        self.with_segments = with_segments
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
            if self.allowed is not None or self.loss_segments is not None or self.with_segments:
                seg[i, : len(x)] = torch.as_tensor(f["segment_ids"], dtype=torch.long)
        labels = ids.masked_fill(mask == 0, -100)
        # the first token is never predicted: unlabelled, the Trainer's label count (num_items_in_batch, which the
        # loss is summed over) is the number of predictions
        labels[:, 0] = -100
        if self.loss_segments is not None:  # only the predictions these variables' mechanisms make
            # label t is predicted at position t - 1: it belongs to the variable of token t - 1. A variable's
            # start token is the previous variable's end event (the end of a text); its last token predicts
            # its own end (the next start token or <eos>).
            made_by = torch.cat([torch.full_like(seg[:, :1], -2), seg[:, :-1]], 1)
            labels = labels.masked_fill(~torch.isin(made_by, self.loss_segments), -100)
        attn: torch.Tensor = mask
        if self.allowed is not None:
            seg = torch.where(seg < 0, self.allowed.shape[0] - 1, seg)
            attn = segment_mask_4d(self.allowed, seg, seg, mask, 0)
        batch = {"input_ids": ids, "attention_mask": attn, "labels": labels}
        if self.with_segments:
            batch["segment_ids"] = seg
        return batch


@torch.no_grad()
def evaluate_nll(
    model,
    dataset,
    names: list[str],
    pad_id: int,
    batch_size: int = 256,
    allowed: torch.Tensor | None = None,
    with_segments: bool = False,
) -> dict[str, float]:
    """Held-out negative log-likelihood per variable (nats per row): the predictions made at a variable's
    tokens, i.e. its value and its end (the next start token or ``<eos>``), as
    :class:`CausalDataCollator` attributes labels for ``loss_variables``; ``total`` is their sum."""
    model.eval()
    tot = np.zeros(len(names))
    n_rows = 0
    collate = CausalDataCollator(pad_id, allowed, with_segments=with_segments)
    for s in range(0, len(dataset), batch_size):
        rows = dataset[s : s + batch_size]
        feats = [{"input_ids": x, "segment_ids": g} for x, g in zip(rows["input_ids"], rows["segment_ids"])]
        b = collate(feats)
        extra = {"segment_ids": b["segment_ids"]} if with_segments else {}
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], **extra).logits[:, :-1].float()
        lp = torch.log_softmax(logits, -1).gather(-1, b["input_ids"][:, 1:, None])[..., 0]
        valid = b["labels"][:, 1:] != -100
        seg = torch.full_like(b["input_ids"], -1)
        for i, sg in enumerate(rows["segment_ids"]):
            seg[i, : len(sg)] = torch.as_tensor(sg)
        made_by = seg[:, :-1]  # label t is predicted at token t - 1: it belongs to that token's variable
        for j in range(len(names)):
            tot[j] += float(-(lp * (valid & (made_by == j))).sum())
        n_rows += len(feats)
    out = {n: tot[j] / max(n_rows, 1) for j, n in enumerate(names)}
    out["total"] = float(tot.sum() / max(n_rows, 1))
    return out


def prepare(data_args, model_args, seed: int = 0, main_process_first=None):
    """Graph (fitted to the training rows), tokenizer, sequencifier and the tokenized train/eval datasets."""

    world = None
    if data_args.world:
        from .worlds import get_world

        world = get_world(data_args.world, **(data_args.world_options or {}))
    if data_args.graph is not None:
        from .graph_formats import load_graph, parse_structure

        declared = isinstance(data_args.graph, CausalGraph) or parse_structure(data_args.graph).declares_kinds()
        graph = load_graph(data_args.graph, data=None if declared else data_args.data)
        if not declared:
            kinds = ", ".join(f"{n}: {graph[n].type}" for n in graph.order)
            print(
                f"hf_causal: variable kinds inferred from {source_name(data_args.data)} ({kinds}); recorded in "
                "causal_config.json (write an editable graph file with `hf-causal graph infer`)"
            )
    elif world is not None:
        graph = world.graph
    else:
        raise RecipeError("recipe needs `graph` (a path or mapping) or a `world`")
    if data_args.data:
        df = load_table(data_args.data, graph)
    elif world is not None:
        df = world.sample(data_args.world_rows, seed=data_args.world_seed)
    else:
        raise RecipeError("recipe needs `data` (a file) or a `world` to simulate rows from")
    if len(df) == 0:
        raise DataError(f"{source_name(data_args.data or 'the simulated rows')} has no rows: nothing to train on")
    if data_args.loss_variables is not None:  # before any work on the rows
        unknown = [v for v in data_args.loss_variables if v not in graph.variables]
        if unknown or not data_args.loss_variables:
            raise RecipeError(
                f"loss_variables: {unknown or 'empty list'} not variables of the graph ({', '.join(graph.order)})"
            )
    try:
        return _tokenize(graph, df, data_args, model_args, seed, main_process_first)
    except DataError as e:  # name the file: the message already names the row and the column
        where = source_name(data_args.data) if data_args.data else f"world {data_args.world!r}"
        raise DataError(f"{where}: {e}") from None


def _tokenize(graph, df, data_args, model_args, seed, main_process_first):
    import datasets

    check_columns(graph.order, list(df.columns))
    df = df[graph.order].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(df))
    n_eval = int(round(len(df) * data_args.eval_fraction))
    train_df = df.iloc[perm[n_eval:]]
    graph = graph.fit(train_df)  # bins from the training rows only, into a new graph
    texts = {n: train_df[n].tolist() for n, v in graph.variables.items() if v.kind.base_vocabulary}
    base_tok = data_args.tokenizer or model_args.base_model
    base_tok = resolve_checkpoint(base_tok) if base_tok else None
    tok = CausalTokenizer.build(graph, base=base_tok, text_corpus=texts, max_text_vocab=data_args.max_text_vocab)
    seq = Sequencifier(tok, data_args.order_policy, seed=seed)

    def to_ds(frame):
        return datasets.Dataset.from_dict(
            {c: graph[c].kind.to_arrow(graph[c], frame[c].tolist()) for c in frame.columns}
        )

    ctx = main_process_first if main_process_first is not None else contextlib.nullcontext
    with ctx():
        # map in file order, so errors and per-row random orders refer to the data's own row numbers
        all_ds = to_ds(df).map(
            seq, batched=True, with_indices=True, remove_columns=list(graph.order), desc="sequencify"
        )
        all_ds = all_ds.add_column("row_index", list(range(len(df))))  # which data row each example is
    train_ds = all_ds.select(sorted(perm[n_eval:].tolist()))
    eval_ds = all_ds.select(sorted(perm[:n_eval].tolist())) if n_eval else None
    return graph, tok, seq, train_ds, eval_ds, df


def train(
    recipe: str | Path | dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    resume: bool = False,
    argv: list[str] | tuple[str, ...] = (),
) -> Path:
    """Train a causal engine from a recipe (a path, a dict, or None), ``overrides`` and command-line
    ``--key value`` options ``argv``; returns the output folder. With ``ensemble: {k, method}`` the folder
    holds K members (:mod:`hf_causal.ensemble`).

    Example:
        >>> out = train({"world": "demo", "world_rows": 2000, "num_train_epochs": 1,
        ...              "output_dir": "/tmp/hf_causal_doc"})  # doctest: +SKIP
    """
    from transformers import set_seed

    from . import schedule as sch

    if isinstance(recipe, (str, Path)):
        recipe = load_recipe(recipe)  # read once: parse_recipe and given_keys both take the dict
    data_args, model_args, args = parse_recipe(recipe, overrides, argv)
    given = given_keys(recipe, overrides, argv)
    mode = args.schedule or ("auto" if recipe is None and data_args.world is None else "fixed")
    if mode == "auto" and "eval_fraction" not in given:
        data_args.eval_fraction = sch.SEARCH_EVAL_FRACTION
    set_seed(args.seed)
    t0 = time.time()
    graph, tok, seq, train_ds, eval_ds, rows = prepare(
        data_args, model_args, seed=args.seed, main_process_first=lambda: args.main_process_first(desc="sequencify")
    )
    model_args.attention = resolve_attention(model_args.attention, graph)  # auto: by the parents' kinds
    spec = EnsembleSpec.parse(data_args.ensemble)
    if args.world_size > 1:
        args.ddp_find_unused_parameters = False  # every parameter is used (peft#951)
    args.remove_unused_columns = False  # the collator needs segment_ids for parent-restricted attention
    if mode == "auto":
        size = sch.choose_model(model_args, graph, given)
        train_ds, eval_ds, args, schedule = sch.search(
            _Fit(graph, tok, data_args, model_args, train_ds, eval_ds), args, train_ds, eval_ds, given, resume
        )
        schedule = {**schedule, **({"model": size} if size else {})}
    else:
        schedule = {
            "mode": "fixed",
            "num_train_epochs": args.num_train_epochs,
            "per_device_train_batch_size": args.per_device_train_batch_size,
        }
    fit = _Fit(graph, tok, data_args, model_args, train_ds, eval_ds)
    if spec.k == 1:
        model, metrics = fit.one(args, train_ds, resume, t0)
        models, ensemble, folds = [model], None, None
    else:
        plan = member_rows(len(train_ds), spec.k, spec.method, seed=args.seed)
        staging = Path(args.output_dir) / ".ensemble-members"
        models, member_metrics = [], []
        for j, idx in enumerate(plan.members):
            model, m = fit.member(args, j, train_ds.select(idx.tolist()), staging / f"member-{j}", resume)
            models.append(model)
            member_metrics.append(m)
        metrics = _ensemble_metrics(member_metrics, time.time() - t0)
        ensemble = {"k": spec.k, "method": spec.method, "members": [f"members/{j}" for j in range(spec.k)]}
        folds = None
        if spec.method == "crossfit":
            train_rows = rows.iloc[train_ds["row_index"]]
            folds = {"hashes": row_hashes(train_rows, tok, list(graph.order)), "folds": plan.folds}
    metrics["schedule"] = schedule
    if args.process_index == 0:
        config = CausalConfig(
            graph=graph.to_dict(),
            order_policy=data_args.order_policy,
            tokenizer_mode=tok.mode,
            token_map=tok.token_map(),
            architecture=architecture_of(models[0]),
            base_model=model_args.base_model,
            adapter=model_args.adapter,
            attention=model_args.attention,
            seed=args.seed,
            loss_variables=list(data_args.loss_variables) if data_args.loss_variables is not None else None,
            metrics=json.loads(json.dumps(metrics, default=float)),
            support=fit_support(graph, tok, rows),  # the parent configurations the data showed
            ensemble=ensemble,
        )
        save_artefact(models if ensemble else models[0], tok, config, args.output_dir, folds=folds)
        if ensemble:
            shutil.rmtree(Path(args.output_dir) / ".ensemble-members", ignore_errors=True)
        (Path(args.output_dir) / ".schedule.json").unlink(missing_ok=True)  # recorded in metrics.schedule
    if fit.accelerator is not None:
        fit.accelerator.wait_for_everyone()
    return Path(args.output_dir)


def _ensemble_metrics(members: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The members' figures, and their means where a mean means something."""
    out: dict[str, Any] = {"members": members, "train_seconds": round(seconds, 2)}
    for key in ("train_loss", "parameters", "trainable_parameters", "train_rows", "max_sequence_length", "world_size"):
        vals = [m[key] for m in members if key in m]
        if vals:
            out[key] = vals[0] if key in ("parameters", "trainable_parameters", "world_size") else float(np.mean(vals))
    nll = [m["eval_nll_per_variable"] for m in members if "eval_nll_per_variable" in m]
    if nll:
        out["eval_rows"] = members[0]["eval_rows"]
        out["eval_nll_per_variable"] = {k: round(float(np.mean([d[k] for d in nll])), 5) for k in nll[0]}
    return out


class _Fit:
    """Everything the members of a training run share: the collator, the masks, the held-out rows."""

    def __init__(self, graph, tok, data_args, model_args, train_ds, eval_ds):
        self.graph, self.tok, self.model_args, self.eval_ds = graph, tok, model_args, eval_ds
        self.max_len = max(len(x) for x in train_ds["input_ids"])
        self.allowed = segment_attention_matrix(graph) if model_args.attention == "parents" else None
        self.with_segments = model_args.attention in MECHANISM_MODES
        loss_segments = None
        if data_args.loss_variables is not None:  # names were checked in prepare()
            loss_segments = [graph.order.index(v) for v in data_args.loss_variables]
        self.collator = CausalDataCollator(tok.pad_id, self.allowed, loss_segments, self.with_segments)
        self.accelerator = None

    def one(self, args, train_ds, resume: bool, t0: float, seed: int | None = None):
        """Train one model on ``train_ds``; returns it and its metrics."""
        seed = args.seed if seed is None else seed
        model = build_model(self.model_args, self.tok, max_length=max(2 * self.max_len, 64), seed=seed)
        callbacks = []
        if args.early_stopping_patience > 0:
            if self.eval_ds is None or not len(self.eval_ds):
                raise RecipeError("early_stopping_patience needs held-out rows: set eval_fraction > 0 (e.g. 0.05)")
            from transformers import EarlyStoppingCallback

            callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
        ckpt = last_complete_checkpoint(args.output_dir, args.save_only_model) if resume else None
        if ckpt is not None:
            logger.warning("resuming from %s", ckpt)
        trainer = _causal_trainer_class()(
            prior=_read_totals(ckpt),
            started=t0,
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=self.eval_ds if callbacks else None,
            data_collator=self.collator,
            processing_class=self.tok.hf,
            callbacks=callbacks or None,
        )
        self.accelerator = getattr(trainer, "accelerator", None)
        result = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
        totals = trainer.run_totals(float(result.training_loss))  # the whole run, the part before a resume included
        metrics: dict[str, Any] = {
            "train_loss": totals["loss_sum"] / max(totals["steps"], 1)
            if totals["steps"]
            else float(result.training_loss),
            "train_rows": len(train_ds),
            "train_seconds": round(totals["seconds"], 2),
            "train_steps": int(totals["steps"]),
            "max_sequence_length": int(self.max_len),
            "world_size": int(args.world_size),
            **model_summary(model),
        }
        if callbacks:
            from .schedule import best_epoch

            metrics["epochs_trained"] = float(trainer.state.epoch or 0)
            metrics["best_epoch_eval_loss"] = trainer.state.best_metric
            metrics["best_epoch"] = best_epoch(trainer.state.log_history)[0]
            if args.process_index == 0:  # the best weights are loaded; the epoch checkpoints are not part of the engine
                for ck in Path(args.output_dir).glob("checkpoint-*"):
                    shutil.rmtree(ck, ignore_errors=True)
        if self.eval_ds is not None and len(self.eval_ds):
            nll = evaluate_nll(
                trainer.model,
                self.eval_ds,
                list(self.graph.order),
                self.tok.pad_id,
                allowed=self.allowed,
                with_segments=self.with_segments,
            )
            metrics["eval_rows"] = len(self.eval_ds)
            metrics["eval_nll_per_variable"] = {k: round(v, 5) for k, v in nll.items()}
        return trainer.model, metrics

    def member(self, args, j: int, rows_ds, folder: Path, resume: bool):
        """Member ``j`` of an ensemble, trained on ``rows_ds`` (seed + j), or reloaded from ``folder`` when an
        earlier, interrupted run completed it and ``resume`` is set."""
        import dataclasses as dc

        from .modeling import load_weights

        done = folder / "member_metrics.json"
        if resume and done.exists():
            logger.warning("ensemble member %d was completed by an earlier run: reusing %s", j, folder)
            model = load_weights(
                folder, self.tok, base_model=self.model_args.base_model, attention=self.model_args.attention
            )
            return model, json.loads(done.read_text())
        member_args = dc.replace(args, output_dir=str(folder / "trainer"), seed=args.seed + j)
        model, metrics = self.one(member_args, rows_ds, resume, time.time())
        if args.process_index == 0:
            with atomic_folder(folder) as tmp:
                save_weights(model, tmp)
                atomic_write_json(tmp / "member_metrics.json", metrics)
            shutil.rmtree(folder / "trainer", ignore_errors=True)
        return model, metrics

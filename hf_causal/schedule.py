"""The training schedule chosen from the data: ``schedule: auto``.

A fixed number of epochs is right for one data size only: too few leave a mechanism unlearned, too many
overfit small tables. ``auto`` (the default when training on your own ``--graph --data`` without a
recipe) chooses the number of epochs by measurement on the rows themselves, in two stages:

1. **search**: train on all but a held-out tenth of the rows (``eval_fraction``, 0.1 unless set),
   evaluating the held-out NLL every epoch, for at most :func:`max_epochs` epochs (a budget of
   :data:`STEP_BUDGET` optimizer steps), stopping after :data:`PATIENCE` epochs without improvement;
   the best epoch ``E*`` is kept;
2. **refit**: train a fresh model on *all* rows for ``max(E*, MIN_EPOCHS)`` epochs (a full cosine
   schedule over them).

The search model is thrown away: the refit uses every row (early stopping alone loses the held-out
tenth). The floor is there because the held-out NLL is a blunt signal: it is summed over every
variable, and on the demo world at 5,000 rows it stayed within +-0.004 of its best from epoch 4 to 20
while the treatment's effect on the outcome was still being learned (an engine stopped at epoch 6 missed
the ATE by 0.20, one trained for 12 by 0.05; ``benchmarks/schedule.py``). So the search can lengthen the
schedule where the NLL keeps improving (more rows, harder mechanisms), and never shortens it below the
recipes' measured 12 epochs. Keys you set yourself win: ``num_train_epochs`` caps the
search, ``per_device_train_batch_size`` and ``early_stopping_patience`` are used as given. The choice is
printed and recorded in ``causal_config.json`` (``metrics.schedule``); ``benchmarks/schedule.py`` measures
it against a fixed 12-epoch schedule and plain early stopping.

Example:
    >>> max_epochs(2000, 32), max_epochs(20000, 128)
    (150, 77)
    >>> batch_size(2000), batch_size(20000)
    (32, 128)
    >>> refit_epochs(7), refit_epochs(30), refit_epochs(30, cap=8)
    (12, 30, 8)
"""

from __future__ import annotations

import logging
import math

__all__ = [
    "SCHEDULES",
    "STEP_BUDGET",
    "PATIENCE",
    "MIN_EPOCHS",
    "SEARCH_EVAL_FRACTION",
    "max_epochs",
    "batch_size",
    "refit_epochs",
    "search",
    "model_size",
    "choose_model",
    "row_tokens",
]

logger = logging.getLogger("hf_causal.training")  # its messages belong to the training run

SCHEDULES = ("fixed", "auto")
STEP_BUDGET = 12000
"""Upper bound on the search's optimizer steps (the search usually stops far earlier). It also sets how slowly
the search's cosine learning rate decays. At 6,000 the search at 20,000 rows ran into its cap (43 epochs) with
its best epoch at 37-41, because the held-out NLL kept improving while the rate annealed. Doubling the budget
moved the best epochs to 12-35 and brought the refit models closer to the exact answers:
recode-20k 1.05x -> 0.96x the MLE's mean TV (3 datasets); asia-20k 0.90x (6 datasets); demo-2k ATE mean
|error| 0.084 -> 0.051 (5 datasets; the backdoor plug-in on the same rows 0.053). See README, "Mechanism
attention"."""
PATIENCE = 10
"""Epochs without a better held-out NLL before the search stops (long: the NLL is flat within noise)."""
MIN_EPOCHS = 12
"""The refit never trains fewer epochs than this (unless ``num_train_epochs`` caps it lower)."""
SEARCH_EVAL_FRACTION = 0.1
"""Held-out share of the rows during the search, unless ``eval_fraction`` is set."""
SMALL_TABLE = 5000
"""Tables with fewer rows train with batches of 32, larger ones with 128 (the demo recipes' settings)."""


WIDE_ROW_TOKENS = 64
"""Rows of more tokens than this (about 32 single-token variables) get the wider from-scratch model.
Measured (``benchmarks/schedule.py --sizes 2x64 2x128``, auto schedule): at 12-40 tokens a row (demo-5k,
sachs-2k, child-2k, 5 datasets each) 2 x 128 was as accurate as 2 x 64 at 1.8-2.4x the training time; at
74 (alarm-2k, one dataset) it was 4% better at 1.2x."""
SIZES = {"narrow": {"n_layer": 2, "n_embd": 64, "n_head": 4}, "wide": {"n_layer": 2, "n_embd": 128, "n_head": 4}}
"""The from-scratch model sizes ``auto`` chooses between (``benchmarks/schedule.py --sizes`` measures them)."""


def row_tokens(graph) -> int:
    """The most tokens one sequencified row can take: a start token per variable plus its value tokens."""
    return sum(graph[v].max_tokens for v in graph.order)


def model_size(graph) -> dict:
    """The from-scratch model for ``schedule: auto``, from the row's length in tokens: 2 layers x 64 up
    to :data:`WIDE_ROW_TOKENS`, 2 x 128 above (measured in ``benchmarks/schedule.py``; see the README).

    Example:
        >>> from hf_causal.graph import CausalGraph
        >>> g = CausalGraph.from_dict({"variables": {f"x{i}": {"type": "categorical", "values": [0, 1]}
        ...     for i in range(6)}, "edges": []})
        >>> model_size(g)["n_embd"], row_tokens(g)
        (64, 12)
    """
    tokens = row_tokens(graph)
    name = "wide" if tokens > WIDE_ROW_TOKENS else "narrow"
    return {**SIZES[name], "size": name, "row_tokens": tokens}


def choose_model(model_args, graph, given: set[str]) -> dict | None:
    """For a from-scratch model whose size the user did not set, set it from the data (:func:`model_size`)
    and print it; returns the size used (None for a pretrained base)."""
    if model_args.base_model is not None:
        return None
    keys = ("n_layer", "n_embd", "n_head")
    if not given & set(keys):
        size = model_size(graph)
        for k in keys:
            setattr(model_args, k, size[k])
        logger.warning(
            "hf_causal: model auto: %(n_layer)d layers x %(n_embd)d, %(n_head)d heads (%(row_tokens)d tokens a row; "
            "set n_layer/n_embd/n_head to choose); recorded in causal_config.json (metrics.schedule.model)",
            size,
        )
        return size
    return {k: getattr(model_args, k) for k in keys}


def batch_size(n_rows: int) -> int:
    """Rows per optimizer step: 32 below :data:`SMALL_TABLE` rows (enough steps per epoch), else 128."""
    return 32 if n_rows < SMALL_TABLE else 128


def max_epochs(n_rows: int, batch: int, cap: float | None = None) -> int:
    """The search's epoch limit: :data:`STEP_BUDGET` steps, at least 10 and at most 150 epochs (or ``cap``)."""
    steps_per_epoch = max(1, math.ceil(n_rows / batch))
    epochs = min(150, max(10, math.ceil(STEP_BUDGET / steps_per_epoch)))
    return int(min(epochs, cap)) if cap else epochs


def refit_epochs(best: int, cap: float | None = None) -> int:
    """Epochs of the refit: the search's best epoch, at least :data:`MIN_EPOCHS`, at most ``cap``."""
    epochs = max(best, MIN_EPOCHS)
    return int(min(epochs, cap)) if cap else epochs


def best_epoch(log_history: list[dict]) -> tuple[int, float]:
    """The epoch (rounded to a whole one, at least 1) with the lowest ``eval_loss`` in a Trainer's log history,
    and that loss."""
    evals = [(h["eval_loss"], h["epoch"]) for h in log_history if "eval_loss" in h]
    if not evals:
        raise ValueError("no evaluation in the log history")
    loss, epoch = min(evals)
    return max(1, round(epoch)), float(loss)


def search(fit, args, train_ds, eval_ds, given: set[str], resume: bool):
    """``schedule: auto``: early stopping on the held-out rows finds the best epoch (``fit.one``, the
    training run of :mod:`hf_causal.training`); returns all rows, no held-out set, the training arguments
    of the refit, and the record."""
    import dataclasses as dc
    import json
    import shutil
    import time
    from pathlib import Path

    from datasets import concatenate_datasets

    from .errors import RecipeError
    from .fileio import atomic_write_json

    if eval_ds is None or not len(eval_ds):
        raise RecipeError(
            "schedule: auto searches the number of epochs on held-out rows: set eval_fraction > 0 (e.g. 0.1), "
            "or use schedule: fixed with num_train_epochs"
        )
    n_search = len(train_ds)
    batch = args.per_device_train_batch_size if "per_device_train_batch_size" in given else batch_size(n_search)
    cap = args.num_train_epochs if "num_train_epochs" in given else None
    limit = max_epochs(n_search, batch * max(1, args.world_size) * args.gradient_accumulation_steps, cap)
    patience = args.early_stopping_patience if args.early_stopping_patience > 0 else PATIENCE
    record_path = Path(args.output_dir) / ".schedule.json"
    if resume and record_path.exists():
        record = json.loads(record_path.read_text())
        logger.warning("schedule: reusing the epochs searched by an earlier run (%s)", record_path)
    else:
        search_dir = Path(args.output_dir) / ".schedule-search"
        search_args = dc.replace(
            args,
            output_dir=str(search_dir),
            num_train_epochs=limit,
            per_device_train_batch_size=batch,
            early_stopping_patience=patience,
        )
        _, m = fit.one(search_args, train_ds, False, time.time())
        record = {
            "mode": "auto",
            "search_rows": n_search,
            "held_out_rows": len(eval_ds),
            "search_epoch_limit": limit,
            "patience": patience,
            "search_epochs_run": m["epochs_trained"],
            "best_epoch": m["best_epoch"],
            "best_eval_loss": m["best_epoch_eval_loss"],
            "search_eval_nll_per_variable": m.get("eval_nll_per_variable"),
            "search_seconds": m["train_seconds"],
            "min_epochs": MIN_EPOCHS,
            "num_train_epochs": refit_epochs(m["best_epoch"], cap),
            "per_device_train_batch_size": batch,
        }
        if args.process_index == 0:
            atomic_write_json(record_path, record)
            shutil.rmtree(search_dir, ignore_errors=True)
    print(
        f"hf_causal: schedule auto: the held-out NLL was best after {record['best_epoch']} epoch(s) (search on "
        f"{record['search_rows']} rows, {record['held_out_rows']} held out, stopped after "
        f"{record['search_epochs_run']:g} of at most {record['search_epoch_limit']}); training on all "
        f"{record['search_rows'] + record['held_out_rows']} rows for {record['num_train_epochs']} epoch(s) (at "
        f"least {record['min_epochs']} unless num_train_epochs caps it), batch "
        f"{record['per_device_train_batch_size']}; recorded in causal_config.json (metrics.schedule)"
    )
    refit = dc.replace(
        args,
        num_train_epochs=record["num_train_epochs"],
        per_device_train_batch_size=record["per_device_train_batch_size"],
        early_stopping_patience=0,
        eval_strategy="no",
        load_best_model_at_end=False,
        save_strategy=args.save_strategy if args.early_stopping_patience == 0 else "no",
    )
    return concatenate_datasets([train_ds, eval_ds]), None, refit, record

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
    (96, 39)
    >>> batch_size(2000), batch_size(20000)
    (32, 128)
    >>> refit_epochs(7), refit_epochs(30), refit_epochs(30, cap=8)
    (12, 30, 8)
"""

from __future__ import annotations

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
]

SCHEDULES = ("fixed", "auto")
STEP_BUDGET = 6000
"""Upper bound on the search's optimizer steps (the search usually stops far earlier)."""
PATIENCE = 10
"""Epochs without a better held-out NLL before the search stops (long: the NLL is flat within noise)."""
MIN_EPOCHS = 12
"""The refit never trains fewer epochs than this (unless ``num_train_epochs`` caps it lower)."""
SEARCH_EVAL_FRACTION = 0.1
"""Held-out share of the rows during the search, unless ``eval_fraction`` is set."""
SMALL_TABLE = 5000
"""Tables with fewer rows train with batches of 32, larger ones with 128 (the demo recipes' settings)."""


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

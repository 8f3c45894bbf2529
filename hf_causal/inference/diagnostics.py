"""Diagnostics attached to answers: how well the data support the forced values (positivity)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import CausalWarning

__all__ = ["positivity", "extrapolation"]


def extrapolation(extrapolated: Mapping[str, Any]) -> dict[str, Any]:
    """``{"extrapolated": ...}`` and a :class:`CausalWarning` when values beyond the training range were forced."""
    if not extrapolated:
        return {}
    shown = ", ".join(
        f"{k}={v['value']:g} (range {v['fitted_range'][0]:g}..{v['fitted_range'][1]:g})"
        for k, v in extrapolated.items()
    )
    warnings.warn(
        f"{shown}: outside the range seen in training, forced into the edge bin; the answer is an extrapolation "
        "that the data do not support",
        CausalWarning,
        stacklevel=4,
    )
    return {"extrapolated": dict(extrapolated)}


def positivity(
    logp: Mapping[str, np.ndarray],
    loss_variables: list[str] | None = None,
    threshold: float = 0.01,
    share: float = 0.1,
    unseen: Mapping[str, float] | None = None,
    reads_parents_only: bool = False,
) -> dict[str, Any]:
    """How well the data support an intervention, as ``diagnostics`` entries, with a :class:`CausalWarning`
    when they do not.

    ``p_forced[X]``: the model's probability of the forced value of X in each sampled context (for
    sequences and text also its least likely token), and ``share_below``, the share of contexts where it
    is below ``threshold``. When that share exceeds ``share``, the intervention creates prefixes the data
    never had (a structural positivity violation): a model whose conditionals read all earlier tokens
    answers there by extrapolation, so this warns unless the model reads only parents.

    ``unseen_parent_configs[C]``: for each child C of an intervened variable, the share of contexts whose
    parent configuration the training rows never showed (:mod:`hf_causal.support`). This is what matters
    for a model that reads only parents (``attention: local``/``two_stream``), and it warns above ``share``
    whatever the attention. Variables outside ``loss_variables`` were never trained: no p_forced check.
    """
    diag: dict[str, Any] = {}
    for d, lp in logp.items():
        if loss_variables is not None and d.split(" ")[0] not in loss_variables:
            diag[f"p_forced[{d}]"] = "not trained (loss_variables): no support diagnostic"
            continue
        p, tok = np.exp(lp[:, 0]), np.exp(lp[:, 1])
        below = float((tok < threshold).mean())
        diag[f"p_forced[{d}]"] = {
            "mean": float(p.mean()),
            "min": float(p.min()),
            "least_likely_token_mean": float(tok.mean()),
            "share_below": below,
            "threshold": threshold,
        }
        if below > share and not reads_parents_only:
            warnings.warn(
                f"do({d}): in {below:.0%} of the sampled contexts the model gives the forced value a probability "
                f"below {threshold:g}: the intervention creates prefixes the data never had (positivity), and a "
                "model that reads all earlier tokens answers there by extrapolation. Train with attention: local "
                "(predictions read only the parents), or intervene where the data have support",
                CausalWarning,
                stacklevel=4,
            )
    for child, frac in (unseen or {}).items():
        diag[f"unseen_parent_configs[{child}]"] = frac
        if frac > share:
            warnings.warn(
                f"in {frac:.0%} of the sampled contexts the parents of {child!r} take a combination the training "
                "data never showed: there its mechanism is an extrapolation",
                CausalWarning,
                stacklevel=4,
            )
    if unseen:
        diag["positivity_share"] = share
    return diag

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
    logp: Mapping[str, np.ndarray], loss_variables: list[str] | None = None, threshold: float = 1e-3
) -> dict[str, Any]:
    """The model's probability of each forced value in its context, as ``{"p_forced[X]": {...}}``.

    Warns (:class:`CausalWarning`) when a forced token (for sequences and text: the least likely one)
    has mean probability below ``threshold``: the data hardly support the intervention. Variables
    outside ``loss_variables`` were never trained, so their probabilities say nothing.
    """
    diag = {}
    for d, lp in logp.items():
        if loss_variables is not None and d.split(" ")[0] not in loss_variables:
            diag[f"p_forced[{d}]"] = "not trained (loss_variables): no support diagnostic"
            continue
        p, tok = np.exp(lp[:, 0]), np.exp(lp[:, 1])
        diag[f"p_forced[{d}]"] = {
            "mean": float(p.mean()),
            "min": float(p.min()),
            "least_likely_token_mean": float(tok.mean()),
        }
        if float(tok.mean()) < threshold:
            warnings.warn(
                f"do({d}): the model gives a forced token probability {tok.mean():.2g} on average; "
                "the intervention is outside the data's support (positivity), so the answer is an extrapolation",
                CausalWarning,
                stacklevel=4,
            )
    return diag

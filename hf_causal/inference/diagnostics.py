"""Diagnostics attached to answers: how well the data support the forced values (positivity), and how well a
doubly robust answer's propensity read-out fits the observed treatments (overlap, calibration)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import CausalWarning

__all__ = ["positivity", "extrapolation", "propensity_fit", "clipped_rows"]


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


def clipped_rows(estimand: str, e1: np.ndarray, e0: np.ndarray, clip: float) -> np.ndarray:
    """The rows whose propensities a doubly robust ``estimand`` clips: for the ATT only those whose control
    probability is below ``clip`` (it weighs a control by e1 / e0, so it needs overlap one way); for the ATE
    and CATE those with either propensity outside ``[clip, 1 - clip]`` (they divide by both)."""
    if estimand == "ATT":
        return e0 < clip
    return (np.minimum(e1, 1 - e1) < clip) | (np.minimum(e0, 1 - e0) < clip)


def propensity_fit(
    treatment: str,
    a: np.ndarray,
    e1: np.ndarray,
    e0: np.ndarray,
    clip: float,
    cross_fitted: bool,
    share: float = 0.1,
    estimand: str = "ATE",
) -> dict[str, Any]:
    """How well the propensities ``e1``/``e0`` (of the treated and control values) predict the observed
    treatments ``a`` (1, 0, or -1 for another value), as a ``details["propensity"]`` entry, with a
    :class:`CausalWarning` when they predict worse than the marginal rates or when over ``share`` of the rows
    are clipped (for the ATT only a control probability below ``clip`` is: the ATT needs overlap one way).

    The log loss of the observed arm, -mean log e_{a_i}(x_i) over the rows in either arm, is compared with
    that of the arms' frequencies. A propensity that loses to the frequencies is overconfident (scored out of
    fold by a crossfit ensemble, an overfit treatment conditional shows exactly so); its inverse weights are
    then mostly noise and the doubly robust estimate varies much more than it needs to (its interval counts
    that variance).

    Example:
        >>> a = np.array([1, 0, 1, 0]); e = np.array([0.9, 0.2, 0.7, 0.4])
        >>> d = propensity_fit("t", a, e, 1 - e, clip=0.01, cross_fitted=False)
        >>> d["log_loss"] < d["log_loss_marginal"]
        True
    """
    arm = a >= 0
    n = int(arm.sum())
    if n == 0:
        return {}
    e_obs = np.where(a == 1, e1, e0)[arm]
    rate = np.where(a == 1, (a == 1).mean(), (a == 0).mean())[arm]
    log_loss = float(-np.mean(np.log(np.clip(e_obs, 1e-12, 1.0))))
    marginal = float(-np.mean(np.log(rate)))
    extreme = clipped_rows(estimand, e1, e0, clip)
    scored = "cross-fitted" if cross_fitted else "not cross-fitted"
    diag = {
        "log_loss": log_loss,
        "log_loss_marginal": marginal,
        "scored": scored,
        "min": float(min(e1.min(), e0.min())),
        "max": float(max(e1.max(), e0.max())),
        "share_clipped": float(extreme.mean()),
    }
    if log_loss > marginal:
        warnings.warn(
            f"the propensity read-out of {treatment!r} predicts the observed treatment worse than the arms' "
            f"frequencies ({scored} log loss {log_loss:.3f} vs {marginal:.3f}): it is overconfident, so the "
            "doubly robust weights are mostly noise and the estimate varies more than it needs to. Train the "
            "treatment's conditional with more regularisation (fewer epochs, schedule: auto, more dropout), pass "
            "calibrate_propensity=True (a crossfit ensemble) or raise clip",
            CausalWarning,
            stacklevel=4,
        )
    if extreme.mean() > share:
        what = (
            f"a probability of the control value of {treatment!r} below {clip:g}"
            if estimand == "ATT"
            else f"a propensity of {treatment!r} outside [{clip:g}, {1 - clip:g}]"
        )
        warnings.warn(
            f"{int(extreme.sum())} of {len(extreme)} rows have {what} and were clipped (poor overlap): the doubly "
            "robust estimate leans on the outcome model there",
            CausalWarning,
            stacklevel=4,
        )
    return diag

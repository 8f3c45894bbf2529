"""Intervals that say what they cover: Monte Carlo error only (one model), or estimation error too (an ensemble).

A single model's interval is the Monte Carlo interval of its draws: it ignores that a model fitted to
other rows of the same world would answer differently, which is usually the larger error. An
ensemble's members (:mod:`hf_causal.ensemble`) estimate that error, and :func:`combine` turns K
per-member answers into one:

* the estimate is the mean over members (a bagged plug-in);
* ``se_monte_carlo`` = sqrt(mean_k se_k^2 / K), the Monte Carlo error of that mean;
* ``se_estimation``: for ``bootstrap`` members the spread of their estimates, for ``crossfit`` members
  (each trained on all folds but one) the delete-a-group jackknife, (K-1)/K * sum_k (theta_k - mean)^2;
  in both the members' own Monte Carlo noise is subtracted (it is part of their spread);
* ``se`` = sqrt(se_estimation^2 + se_monte_carlo^2), and the 95% interval uses Student's t with K-1
  degrees of freedom, since the spread is estimated from K values.

Example:
    >>> t_quantile(4)
    2.776
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np

from ..errors import CausalWarning
from .results import Z95, Estimate

__all__ = ["combine", "t_quantile", "MonteCarloOnlyWarning", "MONTE_CARLO_ONLY", "WITH_ESTIMATION"]

MONTE_CARLO_ONLY = "monte_carlo_only"
WITH_ESTIMATION = "estimation+monte_carlo"
_T975 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


class MonteCarloOnlyWarning(CausalWarning):
    """An answer from a single model: its interval covers Monte Carlo error only, not estimation error."""


def t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (the normal's beyond 30)."""
    return _T975[df - 1] if 1 <= df <= len(_T975) else Z95


def _estimation_var(values: np.ndarray, mc_var: np.ndarray, method: str) -> np.ndarray:
    k = values.shape[0]
    if method == "crossfit":
        spread = (k - 1) / k * ((values - values.mean(0)) ** 2).sum(0)
        return np.maximum(spread - (k - 1) ** 2 / k * mc_var.mean(0), 0.0)
    return np.maximum(values.var(0, ddof=1) - mc_var.mean(0), 0.0)


def _warn_single() -> None:
    warnings.warn(
        "this answer comes from a single model: its interval covers Monte Carlo error only, not the estimation "
        "error of the fit (usually the larger one). Train an ensemble (recipe key ensemble: {k: 5, method: "
        "bootstrap}) for intervals that cover both, or use estimator='aipw' on data rows",
        MonteCarloOnlyWarning,
        stacklevel=4,
    )


def combine(answers: list, method: str | None, warn: bool = True):
    """One answer from the members' answers (all :class:`Estimate` or all :class:`Distribution`)."""
    first = answers[0]
    if len(answers) == 1:
        if warn:
            _warn_single()
        if isinstance(first, Estimate):
            return replace(first, se_monte_carlo=first.se, interval_kind=MONTE_CARLO_ONLY)
        return replace(first, se_monte_carlo=dict(first.se), interval_kind=MONTE_CARLO_ONLY)
    k = len(answers)
    t = t_quantile(k - 1)
    if isinstance(first, Estimate):
        vals = np.array([a.estimate for a in answers], dtype=float)
        mc = np.array([a.se if math.isfinite(a.se) else 0.0 for a in answers], dtype=float) ** 2
        est, se_mc = float(vals.mean()), float(math.sqrt(mc.mean() / k))
        se_est = float(math.sqrt(_estimation_var(vals[:, None], mc[:, None], method or "bootstrap")[0]))
        se = math.sqrt(se_est**2 + se_mc**2)
        details = dict(first.details)
        details["member_estimates"] = vals.tolist()
        for key in ("mean_treated", "mean_control"):
            if key in details:
                details[key] = float(np.mean([a.details[key] for a in answers]))
        return replace(
            first,
            estimate=est,
            se=se,
            ci_low=est - t * se,
            ci_high=est + t * se,
            se_monte_carlo=se_mc,
            se_estimation=se_est,
            interval_kind=WITH_ESTIMATION,
            members=k,
            details=details,
        )
    keys = list(first.probs)
    vals = np.array([[a.probs[x] for x in keys] for a in answers], dtype=float)
    mc = np.array([[a.se[x] if math.isfinite(a.se[x]) else 0.0 for x in keys] for a in answers]) ** 2
    mean = vals.mean(0)
    se_mc = np.sqrt(mc.mean(0) / k)
    se_est = np.sqrt(_estimation_var(vals, mc, method or "bootstrap"))
    se = np.sqrt(se_est**2 + se_mc**2)
    return replace(
        first,
        probs={x: float(v) for x, v in zip(keys, mean)},
        se={x: float(v) for x, v in zip(keys, se)},
        se_monte_carlo={x: float(v) for x, v in zip(keys, se_mc)},
        se_estimation={x: float(v) for x, v in zip(keys, se_est)},
        interval_kind=WITH_ESTIMATION,
        members=k,
        t_quantile=t,
    )

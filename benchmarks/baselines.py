"""The simple estimators the engine is compared with, kept apart from the simulators (``hf_causal.worlds``).

Each takes sampled rows and returns what a user without the engine would compute: a naive difference
in means, or stratification on the covariates at hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hf_causal.errors import DataError, QueryError

__all__ = [
    "maze_naive_outcome",
    "chess_check_win_rate",
    "papers_naive_difference",
    "papers_stratified_effects",
    "papers_covariate_adjusted_att",
    "econml_effects",
    "econml_makers",
]


def _mc(x: np.ndarray):
    from hf_causal.worlds.maze import MCMean

    x = np.asarray(x, dtype=float)
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")
    return MCMean(float(x.mean()), se, int(len(x)))


def maze_naive_outcome(world, data: pd.DataFrame, actions: Sequence[str] | str, outcome: str = "reached"):
    """The confounded observational E[outcome | actions = a] from a maze world's rows (mean, SE, rows)."""
    from hf_causal.worlds.maze import OUTCOMES

    if outcome not in OUTCOMES:
        raise QueryError(f"unknown maze outcome {outcome!r}; use 'reached' or 'distance'")
    key = tuple(world.moves_of(actions))
    col = "path" if "path" in data.columns else "actions"
    sel = data[data[col].map(lambda x: tuple(world.moves_of(x)) == key)]
    if len(sel) == 0:
        raise DataError(f"no row has actions = {' '.join(key) or '(empty)'}")
    return _mc(sel[outcome].to_numpy(dtype=float))


def chess_check_win_rate(data: pd.DataFrame, check: bool = True, material: str | None = None) -> tuple[float, float]:
    """The proportion of won games among rows whose first White move is (not) a check: ``(estimate, se)``."""
    sel = data["first_check"].astype(bool) == bool(check)
    if material is not None:
        sel &= data["material"] == material
    y = (data.loc[sel, "result"] == "win").to_numpy(float)
    if y.size == 0:
        raise DataError("no rows with that first_check value")
    return float(y.mean()), float(math.sqrt(y.mean() * (1 - y.mean()) / y.size))


def papers_naive_difference(data: pd.DataFrame) -> float:
    """E[accepted | keyword=1] - E[accepted | keyword=0]: confounded by the abstract."""
    a = data["keyword"].to_numpy() == 1
    y = data["accepted"].to_numpy(float)
    if a.all() or not a.any():
        raise DataError("the naive difference needs treated and control papers (keyword 1 and 0)")
    return float(y[a].mean() - y[~a].mean())


def papers_stratified_effects(data: pd.DataFrame, by: str | Sequence[str] = ("venue", "authors")) -> dict[str, float]:
    """ATT and ATE by exact stratification on the columns ``by`` (default: the structured covariates
    only, which leaves a bias: the abstract's confounding is only partly carried by them).

    Strata without both arms are left out, which narrows the estimand to the papers of the other
    strata: ``treated_used`` and ``rows_used`` report the fractions kept (the ATT's and the ATE's)."""
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in by if c not in data.columns]
    if missing:
        raise DataError(f"stratified_effects: no column {missing} in the data (columns: {list(data.columns)})")
    y = data["accepted"].to_numpy(float)
    a = data["keyword"].to_numpy() == 1
    strata = data[list(by)].astype(str).agg("|".join, axis=1).to_numpy()
    att_num = att_w = ate_num = ate_w = 0.0
    for s in np.unique(strata):
        i = strata == s
        t, c = i & a, i & ~a
        if t.sum() == 0 or c.sum() == 0:
            continue
        d = y[t].mean() - y[c].mean()
        att_num, att_w = att_num + t.sum() * d, att_w + t.sum()
        ate_num, ate_w = ate_num + i.sum() * d, ate_w + i.sum()
    if not att_w:
        raise DataError(f"stratified_effects: no stratum of {by} holds both treated and control papers")
    return {
        "ATT": float(att_num / att_w),
        "ATE": float(ate_num / ate_w),
        "treated_used": float(att_w / a.sum()),
        "rows_used": float(ate_w / len(a)),
    }


def papers_covariate_adjusted_att(data: pd.DataFrame, by: str | Sequence[str] = ("venue", "authors")) -> float:
    """The ATT of :func:`papers_stratified_effects`."""
    return papers_stratified_effects(data, by)["ATT"]


def econml_makers(seed: int) -> dict:
    """``{name: () -> unfitted estimator}``: EconML's CausalForestDML with gradient-boosting nuisances
    and DRLearner with its defaults, the peers every effect benchmark fits."""
    from econml.dml import CausalForestDML
    from econml.dr import DRLearner
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    return {
        "EconML CausalForestDML": lambda: CausalForestDML(
            model_y=GradientBoostingRegressor(random_state=seed),
            model_t=GradientBoostingClassifier(random_state=seed),
            discrete_treatment=True,
            random_state=seed,
        ),
        "EconML DRLearner": lambda: DRLearner(random_state=seed),
    }


def econml_effects(X: np.ndarray, T: np.ndarray, Y: np.ndarray, masks: dict[str, np.ndarray], seed: int) -> dict:
    """EconML CausalForestDML (gradient-boosting nuisances) and DRLearner fitted on ``(Y, T, X)``:
    ``{name: ({label: (effect, ci_low, ci_high)}, fit seconds)}``, the average effect over the rows of
    each boolean mask in ``masks`` with its 95% interval."""
    import time

    out = {}
    for name, make in econml_makers(seed).items():
        t0 = time.time()
        est = make().fit(Y, T, X=X)
        res = {}
        for label, m in masks.items():
            lo, hi = est.ate_interval(X[m], alpha=0.05)
            res[label] = (float(est.ate(X[m])), float(np.ravel(lo)[0]), float(np.ravel(hi)[0]))
        out[name] = (res, time.time() - t0)
    return out

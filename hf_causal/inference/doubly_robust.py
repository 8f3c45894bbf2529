"""Doubly robust (AIPW) effects on data rows, from the model's own nuisances (method.md §5b).

For each row i with covariates x_i (the variables before the treatment in the order), treatment a_i
and outcome y_i, the model gives both nuisance functions exactly, by read-out:

* the propensity e_a(x_i) = p(A = a | x_i): the probability of the forced treatment token;
* the outcome model mu_a(x_i) = E[Y | x_i, do(A = a)]: the outcome's softmax behind the forced value
  (mediators between A and Y averaged over ``draws_per_row`` draws).

    psi_i = mu_1 - mu_0 + 1[a_i = 1] (y_i - mu_1) / e_1 - 1[a_i = 0] (y_i - mu_0) / e_0

ATE = mean psi_i with the influence-function standard error sd(psi)/sqrt(n); CATE over a subgroup of rows
is the mean of psi_i there (the DR-learner's first stage); the ATT uses
psi_i = [1[a_i = 1](y_i - mu_0) - 1[a_i = 0] e_1/e_0 (y_i - mu_0)] / P(A = 1). The estimate is consistent
when either nuisance is right. With a ``crossfit`` ensemble each training row is scored by the member
that did not see it (cross-fitting), and only by it (the K members together score each training row
once: a crossfit ensemble costs one model's scoring, not K); other rows, and every row of a single model
or a bootstrap ensemble, use the mean of the members' nuisances. Propensities are clipped to [clip, 1 - clip] and
the number of clipped rows is reported; ``details["propensity"]`` says how well the propensity predicts the
observed treatments (:func:`~hf_causal.inference.diagnostics.propensity_fit`, which warns when it is
overconfident or when many rows are clipped). ``calibrate_propensity=True`` Platt-scales a crossfit
ensemble's out-of-fold propensities first (:func:`calibrated`): an overfit treatment conditional is
overconfident out of fold, and two parameters per arm fitted to all rows undo most of it.

The influence-function standard error treats the nuisances as fixed functions. Cross-fitted members are
fits to different folds, and their fit-to-fit differences are estimation error that it does not see (on
the coverage benchmark it was 0.84-0.9x the spread of the estimates between datasets). A cross-fitted
answer therefore also computes the estimate on each member's own held-out fold, and reports the larger of
the two standard errors: the influence function's and the between-fold one, sd(theta_k) / sqrt(K), with
normal quantiles. It is in the spirit of double machine learning's repeated splits (Chernozhukov et al.
2018 add the spread of the estimates between splits to the variance), with the folds of the ensemble's one
split in place of repeated splits, which would cost K more fits each.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, QueryError, UnsupportedQueryError
from ..interventions import PartialSequence
from .diagnostics import clipped_rows, propensity_fit
from .planner import same_value
from .results import Z95, Estimate, effect_label, fmt_values

if TYPE_CHECKING:  # pragma: no cover
    from .engine import CausalEngine

__all__ = ["ESTIMATORS", "aipw", "aipw_from_nuisances", "between_fold_se", "calibrated", "member_of_rows"]

ESTIMATORS = ("plugin", "aipw")


def member_of_rows(engine: CausalEngine, rows) -> tuple[np.ndarray, bool]:
    """For each data row, the ensemble member that did not see it in training (-1: none is known, use all
    members), and whether any row was matched (cross-fitting applies)."""
    from ..ensemble import row_hashes

    n = len(rows)
    folds = engine.folds
    if not folds or engine.ensemble_method != "crossfit":
        return np.full(n, -1), False
    names = [v for v in engine.graph.order if v in rows.columns]
    if len(names) != len(engine.graph.order):
        return np.full(n, -1), False
    pending: dict[str, list[int]] = defaultdict(list)
    for h, f in zip(folds["hashes"], folds["folds"]):
        pending[h].append(f)
    out = np.full(n, -1)
    for i, h in enumerate(row_hashes(rows, engine.tokenizer, names)):
        if pending.get(h):
            out[i] = pending[h].pop(0)
    return out, bool((out >= 0).any())


def _outcome_values(engine: CausalEngine, rows, outcome: str, event: Any) -> np.ndarray:
    var = engine.graph[outcome]
    y = []
    for i, x in zip(rows.index, rows[outcome].tolist()):
        try:
            v = var.coerce(x)
        except DataError as e:
            raise DataError(f"row {i}: {e}") from None
        if event is not None:
            y.append(float(v == var.coerce(event)))
        elif v is None or not var.is_numeric:
            raise UnsupportedQueryError(
                f"outcome {outcome!r}: a doubly robust estimate needs a numeric outcome or event=<value>"
            )
        else:
            y.append(float(v))
    return np.asarray(y, dtype=float)


def aipw_from_nuisances(
    estimand: str,
    y: np.ndarray,
    a: np.ndarray,
    mu1: np.ndarray,
    mu0: np.ndarray,
    e1: np.ndarray,
    e0: np.ndarray,
    clip: float = 0.01,
) -> tuple[float, float, int]:
    """``(estimate, influence-function se, clipped rows)`` from per-row nuisances; ``a`` is 1 (treated),
    0 (control) or -1 (another treatment value, which enters only through mu).

    Clipping: the ATE and CATE divide by both propensities, so both are held to ``[clip, 1 - clip]``. The
    ATT weighs a control by e1 / e0 and needs overlap one way only: a control that looks nothing like the
    treated (e1 near 0) should weigh nearly nothing, so only e0 is held to at least ``clip``. (Raising e1 to
    ``clip`` there gave LaLonde's 14,800 CPS controls with e1 < 0.01 ten times their weight.)"""
    t1, t0 = (a == 1).astype(float), (a == 0).astype(float)
    clipped = int(clipped_rows(estimand, e1, e0, clip).sum())
    if estimand == "ATT":
        e0 = np.maximum(e0, clip)
        p1 = t1.mean()
        psi = (t1 * (y - mu0) - t0 * e1 / e0 * (y - mu0)) / p1
        est = float(psi.mean())
        phi = psi - t1 * est / p1  # influence function of the ratio estimator
    else:
        e1, e0 = np.clip(e1, clip, 1 - clip), np.clip(e0, clip, 1 - clip)
        psi = mu1 - mu0 + t1 * (y - mu1) / e1 - t0 * (y - mu0) / e0
        est = float(psi.mean())
        phi = psi
    se = float(phi.std(ddof=1) / math.sqrt(len(phi))) if len(phi) > 1 else float("nan")
    return est, se, clipped


def between_fold_se(
    estimand: str,
    y: np.ndarray,
    a: np.ndarray,
    mu1: np.ndarray,
    mu0: np.ndarray,
    e1: np.ndarray,
    e0: np.ndarray,
    fold: np.ndarray,
    clip: float = 0.01,
) -> float | None:
    """sd(theta_k) / sqrt(K) over the estimates theta_k on each fold's rows (``fold``: the member that scored
    each row, -1 for rows of no fold); None where fewer than two folds hold rows (or, for the ATT, treated
    rows)."""
    thetas = []
    for k in np.unique(fold[fold >= 0]):
        s = fold == k
        if s.sum() < 2 or (estimand == "ATT" and not (a[s] == 1).any()):
            continue
        thetas.append(aipw_from_nuisances(estimand, y[s], a[s], mu1[s], mu0[s], e1[s], e0[s], clip)[0])
    if len(thetas) < 2:
        return None
    return float(np.std(thetas, ddof=1) / math.sqrt(len(thetas)))


def calibrated(e: np.ndarray, t: np.ndarray, iters: int = 50) -> tuple[np.ndarray, float, float]:
    """Platt scaling: ``(sigmoid(s * logit(e) + b), s, b)`` with (s, b) the maximum-likelihood logistic fit of
    the indicators ``t`` on logit(e) (Newton's method). On out-of-fold propensities this undoes an overfit
    model's overconfidence (s < 1) with two parameters fitted to all rows.

    Example:
        >>> e = np.array([0.01, 0.99, 0.01, 0.99]); t = np.array([0, 1, 1, 0])
        >>> calibrated(e, t)[1] < 0.01  # a read-out that says nothing about t: slope 0, the rate
        True
    """
    t = np.asarray(t, dtype=float)
    e = np.clip(np.asarray(e, dtype=float), 1e-9, 1 - 1e-9)
    if t.min() == t.max():
        return e, 1.0, 0.0  # one class only: nothing to fit
    x = np.stack([np.log(e) - np.log1p(-e), np.ones_like(e)], 1)

    def loglik(w: np.ndarray) -> float:
        z = x @ w
        return float(np.sum(t * z - np.logaddexp(0.0, z)))

    rate = t.mean()
    w = np.array([0.0, math.log(rate / (1 - rate))])  # the constant rate: always a safe start
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        h = x.T @ (x * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, x.T @ (t - p))
        old, scale = loglik(w), 1.0
        while loglik(w + scale * step) < old and scale > 1e-6:  # damped Newton: never lose likelihood
            scale /= 2
        w = w + scale * step
        if np.abs(scale * step).max() < 1e-10:
            break
    return 1.0 / (1.0 + np.exp(-(x @ w))), float(w[0]), float(w[1])


NUISANCE_CACHE_SIZE = 4
"""Row sets whose nuisances an engine keeps (``ate`` then ``att`` on the same rows score them once)."""


def _nuisances(engine, df, member, outcome, treatment, treated, control, event, draws_per_row, seed):
    """``(mus, props, rows scored per member)``: each arm's outcome read-out and propensity, ``[k, n]``
    (read-only); a cross-fitted row is scored by its own member only (the others' entries stay NaN).

    The same rows with the same arguments give the same numbers, so they are kept on the engine (the last
    :data:`NUISANCE_CACHE_SIZE` row sets, keyed by the rows' content): the ATE and the ATT of one table cost
    one scoring pass."""
    import hashlib

    import pandas as pd

    from .engine import _MemberView
    from .estimators import _arms

    try:
        digest = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    except TypeError:  # cells pandas cannot hash (a sequence variable's lists): score without the cache
        key = None
    else:
        digest.update(repr(list(df.columns)).encode())
        members = tuple(id(s) for s in engine.samplers)
        key = (
            members,
            outcome,
            treatment,
            repr(treated),
            repr(control),
            repr(event),
            draws_per_row,
            seed,
            digest.hexdigest(),
        )
    cache = engine._nuisance_cache
    if key in cache:
        cache[key] = cache.pop(key)  # the most recently used last
        return cache[key]
    k, n = len(engine.samplers), len(df)
    mus = {arm: np.full((k, n), np.nan) for arm in (1, 0)}
    props = {arm: np.full((k, n), np.nan) for arm in (1, 0)}
    scored = []
    for j, sampler in enumerate(engine.samplers):
        need = (member == j) | (member < 0)
        scored.append(int(need.sum()))
        if not need.any():
            continue
        sub = df[need]
        rep = sub.loc[sub.index.repeat(draws_per_row)].reset_index(drop=True)
        view = _MemberView(engine, sampler)
        arms, _ = _arms(view, outcome, treatment, treated, control, None, len(rep), seed, event, rep)
        for arm, (mu, draws) in zip((1, 0), arms):
            lp = draws.forced_logp[treatment][:, 0]
            mus[arm][j, need] = mu.reshape(len(sub), draws_per_row).mean(1)
            props[arm][j, need] = np.exp(lp).reshape(len(sub), draws_per_row).mean(1)
    for m in (*mus.values(), *props.values()):
        m.flags.writeable = False  # shared with later calls through the cache
    if key is not None:
        cache[key] = (mus, props, tuple(scored))
        while len(cache) > NUISANCE_CACHE_SIZE:
            cache.pop(next(iter(cache)))
    return mus, props, tuple(scored)


def aipw(
    engine: CausalEngine,
    estimand: str,
    outcome: str,
    treatment: str,
    treated: Any,
    control: Any,
    data: Any,
    given: dict[str, Any] | None = None,
    event: Any = None,
    clip: float = 0.01,
    draws_per_row: int = 1,
    seed: int = 0,
    calibrate_propensity: bool = False,
) -> Estimate:
    """The doubly robust ATE, ATT or CATE (``estimand``) on the rows of ``data`` (see the module docstring).

    ``calibrate_propensity``: Platt-scale the cross-fitted propensities of each arm (:func:`calibrated`) before
    they weight the residuals; only for a crossfit ensemble on its own training rows."""
    from ..data import load_table, source_name

    if estimand not in ("ATE", "ATT", "CATE"):
        raise QueryError(f"estimand must be ATE, ATT or CATE, got {estimand!r}")
    if data is None:
        raise UnsupportedQueryError(
            "estimator='aipw' works on data rows (their observed treatment and outcome): pass data=..."
        )
    tvar = engine.planner.variable(treatment, "treatment")
    engine.planner.variable(outcome, "outcome")
    if isinstance(treated, PartialSequence) or isinstance(control, PartialSequence) or not tvar.is_single_token:
        raise UnsupportedQueryError(
            f"estimator='aipw' needs a categorical or integer treatment; {treatment!r} is {tvar.type} (its "
            "propensity of a whole sequence is not a single read-out)"
        )
    trained = engine.config.loss_variables
    if trained is not None and treatment not in trained:
        raise UnsupportedQueryError(
            f"estimator='aipw' reads the propensity p({treatment} | covariates) from the model, but this model was "
            f"trained on {trained} only (loss_variables): its {treatment!r} conditional is untrained. Train with "
            f"loss_variables including {treatment!r} (or all variables), or use estimator='plugin'"
        )
    if not 0 <= clip < 0.5:
        raise QueryError(f"clip must be in [0, 0.5), got {clip}")
    where = source_name(data)
    df = load_table(data, engine.graph)
    missing = [c for c in (treatment, outcome) if c not in df.columns]
    if missing:
        raise DataError(
            f"{where} has no column(s) {missing}: a doubly robust estimate needs the observed treatment and outcome"
        )
    try:
        a1, a0 = tvar.coerce(treated), tvar.coerce(control)
    except DataError as e:
        raise QueryError(f"treated/control: {e}") from None
    if estimand == "CATE":
        if not given:
            raise UnsupportedQueryError("the doubly robust CATE needs given covariates to define the subgroup")
        for k, v in engine.planner.coerce(given, "given").items():
            if k not in df.columns:
                raise DataError(f"{where} has no column {k!r} to select the subgroup {k}={v!r}")
            var = engine.graph[k]
            df = df[df[k].map(lambda x, var=var, v=v: same_value(var, x, v))]
        if not len(df):
            raise DataError(f"{where} has no row in the subgroup {fmt_values(given)}")
    df = df.reset_index(drop=True)
    a = df[treatment].map(lambda x: 1 if same_value(tvar, x, a1) else (0 if same_value(tvar, x, a0) else -1)).to_numpy()
    y = _outcome_values(engine, df, outcome, event)
    if estimand == "ATT" and not (a == 1).any():
        raise DataError(f"{where} has no row with {treatment} = {treated!r}: the ATT is undefined")
    member, crossfit = member_of_rows(engine, df)
    k = len(engine.samplers)
    n = len(df)
    mus, props, scored = _nuisances(
        engine, df, member, outcome, treatment, treated, control, event, draws_per_row, seed
    )

    def pick(stacked: np.ndarray) -> np.ndarray:
        out = np.empty(n)
        own = member >= 0
        out[own] = stacked[member[own], np.flatnonzero(own)]
        out[~own] = stacked[:, ~own].mean(0)  # every member scored these
        return out

    mu1, mu0, e1, e0 = pick(mus[1]), pick(mus[0]), pick(props[1]), pick(props[0])
    calibration = None
    if calibrate_propensity:
        if not crossfit or (member < 0).any():
            raise UnsupportedQueryError(
                "calibrate_propensity needs out-of-fold propensities for every row: a crossfit ensemble scoring the "
                "rows it was trained on. A model's propensities on rows it saw look better than they are, and "
                "calibrating them would make them more confident, not less"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            before = propensity_fit(treatment, a, e1, e0, clip, cross_fitted=True, estimand=estimand)
        (e1, s1, b1), (e0, s0, b0) = calibrated(e1, a == 1), calibrated(e0, a == 0)
        calibration = {
            "method": "platt",
            "treated": {"slope": s1, "intercept": b1},
            "control": {"slope": s0, "intercept": b0},
            "log_loss_before": before["log_loss"],
        }
    fit = propensity_fit(treatment, a, e1, e0, clip, cross_fitted=crossfit, estimand=estimand)
    if calibration:
        fit["calibration"] = calibration
    est, se_if, clipped = aipw_from_nuisances(estimand, y, a, mu1, mu0, e1, e0, clip)
    se_folds = between_fold_se(estimand, y, a, mu1, mu0, e1, e0, member, clip) if crossfit else None
    se = se_if if se_folds is None else max(se_if, se_folds)
    t1, t0 = (a == 1).astype(float), (a == 0).astype(float)
    g = fmt_values(given) if given else ""
    label = effect_label(estimand, outcome, treatment, treated, control, g, method="doubly robust, AIPW")
    details = {
        "estimator": "aipw",
        "rows": int(len(df)),
        "treated_rows": int(t1.sum()),
        "control_rows": int(t0.sum()),
        "propensity_clip": clip,
        "clipped_rows": clipped,
        "cross_fitted_rows": int((member >= 0).sum()),
        "rows_scored_per_member": list(scored),
        "cross_fitted": crossfit,
        "members": k,
        "se_influence_function": se_if,
        "se_between_folds": se_folds,
        "plug_in": float((mu1 - mu0)[t1 == 1].mean() if estimand == "ATT" else (mu1 - mu0).mean()),
        "propensity_mean": float(e1.mean()),  # of the treated value, over the rows
        "propensity": fit,
    }
    return Estimate(
        label,
        est,
        se,
        est - Z95 * se,
        est + Z95 * se,
        int(len(df)),
        seed,
        "data",
        details,
        se_monte_carlo=None,
        se_estimation=se,
        interval_kind="influence_function",
        members=k,
    )

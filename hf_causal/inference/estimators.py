"""The estimands, as functions of an engine: distributions, expectations, ATE, CATE, ATT, per-row effects.

Each one plans the query (:mod:`.planner`), walks it (:mod:`.sampler`) and averages per-context
quantities. A single-token target is never sampled: its distribution is read from the softmax behind
each sampled context (a Rao-Blackwellised Monte Carlo estimate). Contrasts use the same seed, hence
the same contexts, in both arms (common random numbers); the sign is treated minus control.

Over 500 lines: the estimands share their private helpers (the arms of a contrast, read-outs, weights,
diagnostics); split, each module would import most of the others'.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import DataError, QueryError, UnsupportedQueryError
from ..interventions import PartialSequence
from ..mechanisms import MECHANISM_MODES
from ..support import sparse_records, unseen_shares
from .diagnostics import extrapolation, positivity
from .planner import Plan, same_value
from .results import Z95, Distribution, Estimate, effect_label, fmt_values, jsonable
from .sampler import Draws

if TYPE_CHECKING:  # pragma: no cover
    from .engine import CausalEngine

__all__ = [
    "sample",
    "distribution",
    "expectation",
    "contrast",
    "att",
    "individual_effects",
    "outcome_numbers",
]


def _diagnostics(engine: CausalEngine, plan: Plan, *draws: Draws) -> dict[str, Any]:
    """Positivity (forced values, unseen parent configurations) and extrapolation of one answer; with two
    arms' draws (a contrast), the control arm's forced values are reported as ``X (control)``."""
    logp, unseen = {}, {}
    for i, dr in enumerate(draws):
        suffix = "" if i == 0 else " (control)"
        logp.update({f"{k}{suffix}": v for k, v in dr.forced_logp.items()})
        for child, frac in unseen_shares(engine.config.support, dr, engine.tokenizer).items():
            unseen[child] = max(unseen.get(child, 0.0), frac)
    refuse_unsupported(engine, plan, unseen)
    sparse = {
        f"support_check[{c}]": f"intervened parents only: the training rows cover too little of the parents' "
        f"joint configurations (Good-Turing unseen mass {m:.2f}) for an unseen one to mean no support"
        for c, m in sparse_records(engine.config.support, plan).items()
    }
    diag = positivity(
        logp,
        engine.config.loss_variables,
        engine.positivity_threshold,
        engine.positivity_share,
        unseen,
        reads_parents_only=engine.config.attention in MECHANISM_MODES,
    )
    return {**sparse, **diag, **extrapolation(plan.extrapolated)}


def refuse_unsupported(engine: CausalEngine, plan: Plan, unseen: dict[str, float]) -> None:
    """UnsupportedQueryError when, for a child of an intervened variable through which the intervention
    reaches a target, no sampled context has a parent configuration the data showed."""
    if not unseen or not plan.targets:
        return
    g = engine.graph
    reach = set(plan.targets) | g.ancestors(plan.targets)
    dead = [c for c, frac in unseen.items() if frac >= 1.0 - 1e-9 and c in reach]
    if dead:
        c = dead[0]
        raise UnsupportedQueryError(
            f"the answer would rest entirely on parent configurations of {c!r} ({', '.join(g.parents(c))}) that "
            "the training data never showed: in every sampled context the intervention gives them a combination "
            "with no support, so the model's mechanism there is pure extrapolation"
        )


def outcome_numbers(engine: CausalEngine, target: str, event: Any = None) -> np.ndarray:
    """The numeric value of each of ``target``'s values (or the indicator of ``event``)."""
    var = engine.planner.variable(target, "outcome")
    if event is not None:
        if var.type not in ("categorical", "integer"):
            raise UnsupportedQueryError(f"event= needs a categorical/integer target; {target!r} is {var.type}")
        try:
            ev = var.coerce(event)
        except DataError as e:
            raise QueryError(f"event: {e}") from None
        return np.asarray([float(k == ev) for k in var.value_keys()])
    if not var.is_single_token:
        raise UnsupportedQueryError(f"outcome {target!r} is a {var.type} variable; expectations need a numeric one")
    nums = engine.tokenizer.token_numbers(target)
    if nums is None:
        raise UnsupportedQueryError(
            f"outcome {target!r} has non-numeric values {var.values}; pass event=<value> to estimate "
            "the probability of one value"
        )
    if np.isnan(nums).any():
        raise UnsupportedQueryError(f"outcome {target!r} allows missing values; its expectation is undefined")
    return nums


def _readout(engine: CausalEngine, draws: Draws, target: str) -> np.ndarray:
    """``[n, k]``: the target's distribution behind each draw, or, when weighted evidence after it depends
    on its value (``plan.sample_readout``), the one-hot of its sampled value."""
    if not draws.plan.sample_readout:
        return draws.readout
    return _one_hot(engine, draws, target)


def _one_hot(engine: CausalEngine, draws: Draws, target: str) -> np.ndarray:
    slot = {int(t): i for i, t in enumerate(engine.tokenizer.value_ids[target])}
    out = np.zeros((len(draws.values[target]), len(slot)))
    for i, ids in enumerate(draws.values[target]):
        out[i, slot[int(ids[0])]] = 1.0
    return out


def _weights(engine: CausalEngine, draws: Draws, n_total: int) -> np.ndarray | None:
    """Self-normalised likelihood weights of the draws (None without weighted evidence); refuses when the
    effective sample size is below ``engine.min_ess``."""
    lw = draws.log_weights
    if lw is None:
        return None
    w = np.exp(lw - lw.max())
    ess = float(w.sum() ** 2 / (w**2).sum())
    if ess < engine.min_ess:
        ev = fmt_values(draws.plan.given)
        raise UnsupportedQueryError(
            f"the evidence ({ev}) is so unlikely in the sampled contexts that the effective sample size of the "
            f"likelihood weights is {ess:.1f} of {n_total} draws (below min_ess={engine.min_ess}): the answer would "
            "rest on a handful of draws. Draw more (num_samples=), give the evidence's ancestors as data rows "
            "(data=), or lower min_ess if you accept a noisier answer"
        )
    return w


def weighted_mean(f: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``f`` (``[n]`` or ``[n, k]``) with self-normalised weights ``w``, and its delta-method standard
    error sqrt(sum w^2 (f - mean)^2) / sum w (without weights: sd / sqrt(n))."""
    if w is None:
        mean = f.mean(0)
        se = f.std(0, ddof=1) / math.sqrt(len(f)) if len(f) > 1 else np.full(np.shape(mean), np.nan)
        return mean, se
    ww = w.reshape(-1, *([1] * (f.ndim - 1)))
    mean = (ww * f).sum(0) / w.sum()
    se = np.sqrt(((ww * (f - mean)) ** 2).sum(0)) / w.sum()
    return mean, se


def _evidence_details(engine: CausalEngine, plan: Plan, w: np.ndarray | None) -> dict[str, Any]:
    """What the evidence meant: its weights (likelihood weighting) and the bins of continuous values."""
    out: dict[str, Any] = {}
    if w is not None:
        out["effective_sample_size"] = float(w.sum() ** 2 / (w**2).sum())
        out["weights"] = f"likelihood weighting: each draw weighted by p({', '.join(plan.weighted)} | its context)"
    bins = {}
    for k, v in plan.given.items():
        var = engine.graph[k]
        if var.type == "continuous" and var.edges is not None:
            from ..kinds.continuous import bin_of

            b = bin_of(var, v)
            bins[k] = f"{v:g} means its bin [{var.edges[b]:.4g}, {var.edges[b + 1]:.4g})"
    if bins:
        out["evidence_bins"] = bins
    return out


def _mu(engine: CausalEngine, outcome: str, plan: Plan, num_samples: int, seed: int, event=None, rows=None):
    """Per-context E[outcome | context, do] (or P(outcome = event | ...)) and the draws."""
    nums = outcome_numbers(engine, outcome, event)
    n = len(rows) if rows is not None else num_samples
    draws = engine.sampler.run(plan, n, seed, rows=rows)
    return _readout(engine, draws, outcome) @ nums, draws


def sample(
    engine: CausalEngine,
    n: int,
    do: Mapping[str, Any] | None = None,
    given: Mapping[str, Any] | None = None,
    seed: int = 0,
    variables: Sequence[str] | None = None,
    progress: bool = False,
    weights: str = "resample",
) -> pd.DataFrame:
    """``n`` draws from the (interventional) joint as a DataFrame (see :meth:`CausalEngine.sample`)."""
    if weights not in ("resample", "column"):
        raise QueryError(f"weights must be 'resample' or 'column', got {weights!r}")
    graph = engine.graph
    targets = list(variables) if variables else list(graph.order)
    targets = [t for t in targets if t not in (do or {}) and t not in (given or {})]
    plan = engine.planner.plan(targets, do, given, warn=False)
    if not variables:
        plan.order = engine.planner.order_for(set(graph.order), set(plan.given))
    draws = engine.sampler.run(plan, n, seed, progress=progress)
    rng = np.random.default_rng(seed)
    data = {}
    for v in variables or graph.order:
        if v in draws.values:
            data[v] = [engine.tokenizer.decode_value(v, ids, rng) for ids in draws.values[v]]
    df = pd.DataFrame(data)
    _diagnostics(engine, plan, draws)
    w = _weights(engine, draws, n)
    if w is not None:
        ess = float(w.sum() ** 2 / (w**2).sum())
        if weights == "column":
            df["weight"] = w / w.sum()
        else:  # sampling-importance-resampling: equal-weight rows, drawn with replacement
            pick = np.random.default_rng([int(seed), 17]).choice(n, size=n, replace=True, p=w / w.sum())
            df = df.iloc[pick].reset_index(drop=True)
        df.attrs.update(_evidence_details(engine, plan, w), effective_sample_size=ess, weights_mode=weights)
    return df


def distribution(
    engine: CausalEngine,
    target: str,
    do: Mapping[str, Any] | None = None,
    given: Mapping[str, Any] | None = None,
    num_samples: int = 2000,
    seed: int = 0,
    data: Any = None,
    progress: bool = False,
) -> Distribution:
    """P(target | do, given) for a single-token target, with Monte Carlo standard errors."""
    var = engine.planner.variable(target, "target")
    if not var.is_single_token:
        raise UnsupportedQueryError(
            f"target {target!r} is a {var.type} variable: its distribution has no finite support; "
            "use sample() and summarise the draws"
        )
    plan, rows = engine.planner.plan_with_data([target], do, given, data, target)
    n = len(rows) if rows is not None else num_samples
    draws = engine.sampler.run(plan, n, seed, rows=rows, progress=progress)
    w = _weights(engine, draws, n)
    keys = var.value_keys()
    mean, se = weighted_mean(_readout(engine, draws, target), w)
    return Distribution(
        target,
        {k: float(x) for k, x in zip(keys, mean)},
        {k: float(x) for k, x in zip(keys, se)},
        int(n),
        seed,
        jsonable(plan.do),
        jsonable(plan.given),
        "data" if rows is not None else "model",
        {**_diagnostics(engine, plan, draws), **_evidence_details(engine, plan, w)},
    )


def distributions_many(
    engine: CausalEngine, queries: Sequence[Any], num_samples: int = 2000, seed: int = 0
) -> list[Distribution]:
    """P(target | do, given) for many queries; those that share ``do`` and ``given`` share one walk (see
    :meth:`CausalEngine.query_many`)."""
    import json

    parsed = []
    for q in queries:
        if isinstance(q, Mapping):
            unknown = set(q) - {"target", "do", "given"}
            if "target" not in q or unknown:
                raise QueryError(f"query_many takes {{'target', 'do', 'given'}} dicts or (target, do) pairs, got {q!r}")
            parsed.append((q["target"], q.get("do") or {}, q.get("given") or {}))
        elif isinstance(q, (tuple, list)) and len(q) in (2, 3):
            parsed.append((q[0], q[1] or {}, (q[2] if len(q) == 3 else None) or {}))
        else:
            raise QueryError(f"query_many takes {{'target', 'do', 'given'}} dicts or (target, do) pairs, got {q!r}")
    groups: dict[str, list[int]] = {}
    for i, (t, do, given) in enumerate(parsed):
        var = engine.planner.variable(t, "target")
        if not var.is_single_token:
            raise UnsupportedQueryError(
                f"target {t!r} is a {var.type} variable: its distribution has no finite support"
            )
        key = json.dumps([jsonable(dict(do)), jsonable(dict(given))], sort_keys=True, default=str)
        groups.setdefault(key, []).append(i)
    out: list[Distribution | None] = [None] * len(parsed)
    for idx in groups.values():
        _, do, given = parsed[idx[0]]
        targets = list(dict.fromkeys(parsed[i][0] for i in idx))
        plan = engine.planner.plan(targets, do, given, readout=targets[0] if len(targets) == 1 else None)
        draws = engine.sampler.run(plan, num_samples, seed)
        w = _weights(engine, draws, num_samples)
        diag = {**_diagnostics(engine, plan, draws), **_evidence_details(engine, plan, w)}
        diag["shared_walk"] = {"targets": targets, "variables_walked": len(plan.order)}
        for i in idx:
            t = parsed[i][0]
            if len(targets) == 1:
                f = _readout(engine, draws, t)
            elif plan.sample_readout:
                f = _one_hot(engine, draws, t)
            else:
                f = draws.readouts[t]
            keys = engine.graph[t].value_keys()
            mean, se = weighted_mean(f, w)
            out[i] = Distribution(
                t,
                {k: float(x) for k, x in zip(keys, mean)},
                {k: float(x) for k, x in zip(keys, se)},
                int(num_samples),
                seed,
                jsonable(plan.do),
                jsonable(plan.given),
                "model",
                dict(diag),
            )
    return out  # type: ignore[return-value]


def expectation(
    engine: CausalEngine,
    target: str,
    do: Mapping[str, Any] | None = None,
    given: Mapping[str, Any] | None = None,
    num_samples: int = 2000,
    seed: int = 0,
    event: Any = None,
    data: Any = None,
) -> Estimate:
    """E[target | do, given] (or P(target = event | ...)) with its Monte Carlo standard error."""
    plan, rows = engine.planner.plan_with_data([target], do, given, data, target)
    mu, draws = _mu(engine, target, plan, num_samples, seed, event, rows)
    name = f"E[{target} | do({fmt_values(plan.do)}){', ' + fmt_values(plan.given) if plan.given else ''}]"
    source = "data" if rows is not None else "model"
    w = _weights(engine, draws, len(mu))
    details = {**_diagnostics(engine, plan, draws), **_evidence_details(engine, plan, w)}
    if w is None:
        return Estimate.from_draws(name, mu, seed, source, **details)
    est, se = (float(x) for x in weighted_mean(mu, w))
    return Estimate(name, est, se, est - Z95 * se, est + Z95 * se, len(mu), seed, source, jsonable(details), se)


def _arms(
    engine: CausalEngine, outcome, treatment, treated, control, given, num_samples, seed, event, data, partial=False
):
    """Per-context means and forced-value log-probs of the treated and the control arm (same seed)."""
    engine.planner.variable(treatment, "treatment")
    if data is not None:
        from ..data import load_table

        data = load_table(data, engine.graph)  # once, not once per arm
    plans, rowsets = [], []
    for val in (treated, control):
        plan, rows = engine.planner.plan_with_data(
            [outcome], {treatment: val}, given, data, outcome, partial_rows=partial
        )
        plans.append(plan)
        rowsets.append(rows)
    if rowsets[0] is not None and all(_read_behind(p, rowsets[0], treatment, outcome) for p in plans):
        return _paired_arms(engine, outcome, treatment, plans, rowsets[0], seed, event), plans
    return [_mu(engine, outcome, p, num_samples, seed, event, r) for p, r in zip(plans, rowsets)], plans


def _read_behind(plan: Plan, rows: pd.DataFrame, treatment: str, outcome: str) -> bool:
    """Whether the walk samples nothing: every variable before the treatment comes from the rows (or is
    given), and the outcome is read out right behind it. (A sampled variable would differ between two
    copies of a row, where two walks with one seed share it: common random numbers.)"""
    if treatment not in plan.order or isinstance(plan.do[treatment], PartialSequence):
        return False
    at = plan.order.index(treatment)
    before, after = plan.order[:at], plan.order[at + 1 :]
    from_rows = all(v in rows.columns or v in plan.given for v in before)
    return from_rows and after == [outcome] and plan.readout == outcome and not (plan.weighted or plan.weighted_rows)


def _paired_arms(engine: CausalEngine, outcome, treatment, plans, rows, seed, event):
    """Both arms of data rows from one walk: each row twice, side by side, with the treated and the control
    value (``Plan.do_rows``). The two copies share one cache slot up to the treatment (identical histories),
    so the rows' covariate tokens (an abstract) run once for both arms. Only where nothing is sampled after
    the treatment (:func:`_read_behind`): each row's answer is then an exact read-out, the same as two walks'."""
    n = len(rows)
    both = rows.loc[rows.index.repeat(2)].reset_index(drop=True)
    both[treatment] = [plans[0].do[treatment], plans[1].do[treatment]] * n
    plan = dataclasses.replace(plans[0], do_rows=[treatment])
    mu, draws = _mu(engine, outcome, plan, 2 * n, seed, event, both)
    return [(mu[j::2], draws.select(np.arange(j, 2 * n, 2), plans[j])) for j in (0, 1)]


def contrast(
    engine: CausalEngine, name, outcome, treatment, treated, control, given, num_samples, seed, event, data
) -> Estimate:
    """E[Y | do(T=treated), given] - E[Y | do(T=control), given], per context with common random numbers."""
    arms, plans = _arms(engine, outcome, treatment, treated, control, given, num_samples, seed, event, data)
    both = dataclasses.replace(plans[0], extrapolated={**plans[0].extrapolated, **plans[1].extrapolated})
    diag = _diagnostics(engine, both, arms[0][1], arms[1][1])
    g = fmt_values(engine.planner.coerce(given, "given")) if given else ""
    label = effect_label(name, outcome, treatment, treated, control, g)
    source = "data" if data is not None else "model"
    (f1, d1), (f0, d0) = arms
    w1, w0 = _weights(engine, d1, len(f1)), _weights(engine, d0, len(f0))
    if w1 is None:
        return Estimate.from_draws(
            label, f1 - f0, seed, source, mean_treated=float(f1.mean()), mean_control=float(f0.mean()), **diag
        )
    # two self-normalised means (the arms' weights differ when the evidence is after the treatment); the
    # linearised difference keeps the common random numbers' covariance
    m1, _ = weighted_mean(f1, w1)
    m0, _ = weighted_mean(f0, w0)
    phi = w1 * (f1 - m1) / w1.sum() - w0 * (f0 - m0) / w0.sum()
    est, se = float(m1 - m0), float(np.sqrt((phi**2).sum()))
    details = {
        "mean_treated": float(m1),
        "mean_control": float(m0),
        **diag,
        **_evidence_details(engine, plans[0], w1),
        "effective_sample_size_control": float(w0.sum() ** 2 / (w0**2).sum()),
    }
    return Estimate(label, est, se, est - Z95 * se, est + Z95 * se, len(f1), seed, source, jsonable(details), se)


ROW_DRAWS_WEIGHTED = 256
"""Default draws per row when a row's covariates are not an initial segment (each row's draws are weighted)."""


def individual_effects(
    engine: CausalEngine,
    outcome,
    treatment,
    treated,
    control,
    data,
    draws_per_row: int | None = None,
    seed: int = 0,
    event=None,
) -> np.ndarray:
    """Per-row E[Y | do(T=treated), x_i] - E[Y | do(T=control), x_i] (see :meth:`CausalEngine.individual_effects`)."""
    from ..data import load_table

    if draws_per_row is not None and (isinstance(draws_per_row, bool) or draws_per_row < 1):
        raise QueryError(f"draws_per_row must be >= 1, got {draws_per_row}")
    df = load_table(data, engine.graph).reset_index(drop=True)
    if len(df) == 0:
        raise DataError("no rows to compute individual effects for")
    probe, _ = engine.planner.plan_with_data(
        [outcome], {treatment: treated}, None, df.head(1), outcome, partial_rows=True
    )
    weighted = bool(probe.weighted_rows)
    d = draws_per_row or (ROW_DRAWS_WEIGHTED if weighted else 1)
    rep = df.loc[df.index.repeat(d)].reset_index(drop=True)
    arms, _ = _arms(engine, outcome, treatment, treated, control, None, len(rep), seed, event, rep, partial=True)
    per_arm = []
    for mu, draws in arms:
        mu = mu.reshape(len(df), d)
        lw = draws.log_weights
        if lw is None:
            per_arm.append(mu.mean(1))
            continue
        lw = lw.reshape(len(df), d)
        w = np.exp(lw - lw.max(1, keepdims=True))
        ess = w.sum(1) ** 2 / (w**2).sum(1)
        floor = min(engine.min_ess, 0.1 * d)
        low = np.nonzero(ess < floor)[0]
        if len(low):
            i = int(low[0])
            raise UnsupportedQueryError(
                f"row {i}: its covariates ({', '.join(probe.weighted_rows)}) are so unlikely under the sampled "
                f"earlier variables that the effective sample size of its {d} weighted draws is {ess[i]:.1f} (below "
                f"{floor:g}); raise draws_per_row, or give the rows' earlier columns ({len(low)} row(s) affected)"
            )
        per_arm.append((w * mu).sum(1) / w.sum(1))
    return per_arm[0] - per_arm[1]


def att(
    engine: CausalEngine,
    outcome,
    treatment,
    treated,
    control,
    data=None,
    num_samples: int = 2000,
    seed: int = 0,
    event=None,
) -> Estimate:
    """ATT = E[Y(treated) - Y(control) | T = treated] (see :meth:`CausalEngine.att`)."""
    tvar = engine.planner.variable(treatment, "treatment")
    if isinstance(treated, PartialSequence) or isinstance(control, PartialSequence):
        raise UnsupportedQueryError(
            "att() with a partial intervention is not supported: 'the treated' (units whose sequence took "
            "the forced steps) is not defined by the forced steps alone; use ate()/individual_effects() "
            "with data= rows you select"
        )
    try:
        t1 = tvar.coerce(treated)
    except DataError as e:
        raise QueryError(f"treated: {e}") from None
    if data is not None:
        from ..data import load_table

        df = load_table(data, engine.graph)
        if treatment not in df.columns:
            raise DataError(f"data has no column {treatment!r} to select the treated rows")
        sel = df[df[treatment].map(lambda x: same_value(tvar, x, t1))]
        if len(sel) == 0:
            raise DataError(f"data has no row with {treatment} = {treated!r}")
        est = contrast(engine, "ATT", outcome, treatment, treated, control, None, num_samples, seed, event, sel)
        est.details["treated_rows"] = len(sel)
        return est
    mus, logps = [], []
    for val in (treated, control):
        plan = engine.planner.plan([outcome], {treatment: val}, None, readout=outcome)
        if treatment not in plan.order:
            raise UnsupportedQueryError(
                f"att(): the outcome {outcome!r} comes before the treatment {treatment!r} in the model's order, so it "
                "is not an effect of it (the effect is zero) and the treated units' weights p(treatment | context) "
                "are not read before it"
            )
        mu, draws = _mu(engine, outcome, plan, num_samples, seed, event)
        mus.append(mu)
        logps.append(draws.forced_logp[treatment][:, 0])
    w = np.exp(logps[0])  # p(T=treated | context_k), same contexts in both arms
    f = mus[0] - mus[1]
    est = float((w * f).sum() / w.sum())
    se = float(math.sqrt(((w * (f - est)) ** 2).sum()) / w.sum())
    ess = float(w.sum() ** 2 / (w**2).sum())
    return Estimate(
        effect_label("ATT", outcome, treatment, treated, control),
        est,
        se,
        est - Z95 * se,
        est + Z95 * se,
        len(f),
        seed,
        "model",
        jsonable({"effective_sample_size": ess, "weights": "p(treatment=treated | context)"}),
    )

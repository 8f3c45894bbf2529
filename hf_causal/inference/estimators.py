"""The estimands, as functions of an engine: distributions, expectations, ATE, CATE, ATT, per-row effects.

Each one plans the query (:mod:`.planner`), walks it (:mod:`.sampler`) and averages per-context
quantities. A single-token target is never sampled: its distribution is read from the softmax behind
each sampled context (a Rao-Blackwellised Monte Carlo estimate). Contrasts use the same seed, hence
the same contexts, in both arms (common random numbers); the sign is treated minus control.
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
from ..support import unseen_shares
from .diagnostics import extrapolation, positivity
from .planner import Plan, same_value
from .results import Z95, Distribution, Estimate, fmt_values, jsonable
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
    diag = positivity(
        logp,
        engine.config.loss_variables,
        engine.positivity_threshold,
        engine.positivity_share,
        unseen,
        reads_parents_only=engine.config.attention in MECHANISM_MODES,
    )
    return {**diag, **extrapolation(plan.extrapolated)}


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


def _mu(engine: CausalEngine, outcome: str, plan: Plan, num_samples: int, seed: int, event=None, rows=None):
    """Per-context E[outcome | context, do] (or P(outcome = event | ...)) and the draws."""
    nums = outcome_numbers(engine, outcome, event)
    n = len(rows) if rows is not None else num_samples
    draws = engine.sampler.run(plan, n, seed, rows=rows)
    return draws.readout @ nums, draws


def sample(
    engine: CausalEngine,
    n: int,
    do: Mapping[str, Any] | None = None,
    given: Mapping[str, Any] | None = None,
    seed: int = 0,
    variables: Sequence[str] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """``n`` draws from the (interventional) joint as a DataFrame (see :meth:`CausalEngine.sample`)."""
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
    p = draws.readout
    keys = var.value_keys()
    mean = p.mean(0)
    se = p.std(0, ddof=1) / math.sqrt(len(p)) if len(p) > 1 else np.full(len(keys), np.nan)
    return Distribution(
        target,
        {k: float(x) for k, x in zip(keys, mean)},
        {k: float(x) for k, x in zip(keys, se)},
        int(n),
        seed,
        jsonable(plan.do),
        jsonable(plan.given),
        "data" if rows is not None else "model",
        _diagnostics(engine, plan, draws),
    )


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
    return Estimate.from_draws(name, mu, seed, source, **_diagnostics(engine, plan, draws))


def _arms(engine: CausalEngine, outcome, treatment, treated, control, given, num_samples, seed, event, data):
    """Per-context means and forced-value log-probs of the treated and the control arm (same seed)."""
    engine.planner.variable(treatment, "treatment")
    if data is not None:
        from ..data import load_table

        data = load_table(data, engine.graph)  # once, not once per arm
    arms, plans = [], []
    for val in (treated, control):
        plan, rows = engine.planner.plan_with_data([outcome], {treatment: val}, given, data, outcome)
        arms.append(_mu(engine, outcome, plan, num_samples, seed, event, rows))
        plans.append(plan)
    return arms, plans


def contrast(
    engine: CausalEngine, name, outcome, treatment, treated, control, given, num_samples, seed, event, data
) -> Estimate:
    """E[Y | do(T=treated), given] - E[Y | do(T=control), given], per context with common random numbers."""
    arms, plans = _arms(engine, outcome, treatment, treated, control, given, num_samples, seed, event, data)
    f = arms[0][0] - arms[1][0]
    both = dataclasses.replace(plans[0], extrapolated={**plans[0].extrapolated, **plans[1].extrapolated})
    diag = _diagnostics(engine, both, arms[0][1], arms[1][1])
    g = fmt_values(engine.planner.coerce(given, "given")) if given else ""
    label = (
        f"{name}: E[{outcome} | do({treatment}={treated}){', ' + g if g else ''}] - "
        f"E[{outcome} | do({treatment}={control}){', ' + g if g else ''}]"
    )
    return Estimate.from_draws(
        label,
        f,
        seed,
        "data" if data is not None else "model",
        mean_treated=float(arms[0][0].mean()),
        mean_control=float(arms[1][0].mean()),
        **diag,
    )


def individual_effects(
    engine: CausalEngine, outcome, treatment, treated, control, data, draws_per_row: int = 1, seed: int = 0, event=None
) -> np.ndarray:
    """Per-row E[Y | do(T=treated), x_i] - E[Y | do(T=control), x_i] (see :meth:`CausalEngine.individual_effects`)."""
    from ..data import load_table

    if draws_per_row < 1:
        raise QueryError(f"draws_per_row must be >= 1, got {draws_per_row}")
    df = load_table(data, engine.graph)
    rep = df.loc[df.index.repeat(draws_per_row)].reset_index(drop=True)
    ((mu1, _), (mu0, _)), _ = _arms(engine, outcome, treatment, treated, control, None, len(rep), seed, event, rep)
    return (mu1 - mu0).reshape(len(df), draws_per_row).mean(1)


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
        f"ATT: E[{outcome}({treatment}={treated}) - {outcome}({treatment}={control}) | {treatment}={treated}]",
        est,
        se,
        est - Z95 * se,
        est + Z95 * se,
        len(f),
        seed,
        "model",
        jsonable({"effective_sample_size": ess, "weights": "p(treatment=treated | context)"}),
    )

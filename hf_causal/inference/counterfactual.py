"""Unit-level counterfactuals: abduction, action and prediction under a Gumbel-max model of the model's
own conditionals (method.md §8; Oberst & Sontag 2019; Chatzi et al. 2024 for token sequences).

Every token the model emits is read as ``argmax_v [log p(v | prefix) + g_v]`` over the candidates the
variable may emit (its value tokens, and for sequences and text the end of the segment), with
independent standard Gumbel noise ``g``. For a factual row:

1. **abduction**: walk the row's own tokens and, at every step, draw the noise from its posterior given
   the observed token (top-down: the maximum ``Z ~ Gumbel(logsumexp)`` goes to the observed candidate,
   the others are Gumbels truncated below ``Z``);
2. **action**: force the intervened values;
3. **prediction**: replay the order token by token with the same noise (fresh noise for steps the factual
   segment did not have), taking the argmax.

Each noise draw gives one counterfactual unit; ``num_samples`` draws give the distribution. With no
intervention the replay reproduces the factual row exactly (consistency).

**The assumption** (counterfactual stability, under which the Gumbel-max model is the natural choice):
the answer is a statement about a structural model that the data cannot distinguish from others with
the same interventional distributions. It cannot be tested from data, and every answer says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import DataError, QueryError, UnsupportedQueryError
from ..interventions import PartialSequence
from .cache import PrefixCache
from .results import jsonable

if TYPE_CHECKING:  # pragma: no cover
    from .engine import CausalEngine

__all__ = ["ASSUMPTION", "Counterfactual", "causal_probabilities", "counterfactual", "posterior_gumbels"]

ASSUMPTION = (
    "counterfactual stability: each token is the argmax of the model's log-probabilities plus Gumbel noise "
    "(a Gumbel-max structural model of the model's own conditionals); this cannot be tested from data"
)


@dataclass
class Counterfactual:
    """Per factual row, the distribution of each target in the world where ``do`` had held."""

    targets: list[str]
    do: dict[str, Any]
    distributions: list[dict[str, dict[Any, float]]]
    """Row i: ``{target: {value: probability}}`` (single-token targets)."""
    samples: list[dict[str, list[Any]]]
    """Row i: ``{target: [the value in each noise draw]}``."""
    factual: list[dict[str, Any]]
    num_samples: int
    seed: int
    assumption: str = ASSUMPTION
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "targets": self.targets,
                "do": self.do,
                "rows": [{"factual": f, "counterfactual": d} for f, d in zip(self.factual, self.distributions)],
                "num_samples": self.num_samples,
                "seed": self.seed,
                "assumption": self.assumption,
                "details": self.details,
            }
        )


def _gumbel(shape, gen) -> torch.Tensor:
    u = torch.rand(shape, generator=gen).clamp(1e-12, 1 - 1e-12)
    return -torch.log(-torch.log(u))


def posterior_gumbels(logp: torch.Tensor, obs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Noise ``g`` ([B, C]) from its posterior given ``argmax(logp + g) == obs`` (top-down truncated Gumbels);
    candidates of probability 0 keep prior noise (the observation says nothing about them)."""
    finite = torch.isfinite(logp)
    lse = torch.logsumexp(logp, -1, keepdim=True)
    z = lse + _gumbel(lse.shape, gen)  # the maximum
    u = logp + _gumbel(logp.shape, gen)  # prior perturbed values, then truncated below the maximum
    trunc = -torch.log(torch.exp(-z) + torch.exp(-u))
    pert = torch.where(finite, trunc, u)
    pert.scatter_(1, obs[:, None], z)
    g = torch.where(finite, pert - logp, _gumbel(logp.shape, gen))
    return g


def _candidates(sampler, last_logits, var, vids, term, step, cap):
    """Log-probabilities over what the variable may emit at this step (the sampler's candidates: values,
    then the end of the segment for sequences and text)."""
    lp = torch.log_softmax(last_logits.float(), -1).cpu()
    if var.is_single_token:
        return torch.log_softmax(lp[:, vids], -1)
    allowed = sampler._emit_ids(var, vids)
    cand = torch.cat([lp[:, allowed], torch.logsumexp(lp[:, term], -1, keepdim=True)], 1)
    cand = cand - torch.logsumexp(cand, -1, keepdim=True)
    if step == cap:
        cand[:, :-1] = -math.inf
    return cand


@torch.no_grad()
def counterfactual(
    engine: CausalEngine,
    rows: Any,
    do: Mapping[str, Any],
    targets: Sequence[str],
    num_samples: int = 200,
    seed: int = 0,
) -> Counterfactual:
    """The counterfactual distribution of ``targets`` for each factual row of ``rows`` under ``do`` (see the
    module docstring). Every variable up to the last target in the order must be observed in the rows."""
    from ..data import load_table

    if not do:
        raise QueryError("a counterfactual needs an intervention (do=...)")
    targets = [targets] if isinstance(targets, str) else list(targets)
    if not targets:
        raise QueryError("a counterfactual needs at least one target")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise QueryError(f"num_samples must be a positive integer, got {num_samples!r}")
    for v in do.values():
        if isinstance(v, PartialSequence):
            raise UnsupportedQueryError("counterfactuals take whole values in do (no PartialSequence)")
    g = engine.graph
    do = engine.planner.coerce(do, "do")
    for t in targets:
        engine.planner.variable(t, "target")
        if t in do:
            raise UnsupportedQueryError(f"target {t!r} is also intervened on; its value is fixed by do()")
    order = list(g.order)
    last = max(order.index(t) for t in targets)
    order = order[: last + 1]
    if not set(do) <= set(order):
        order = list(g.order)[: max(last, *(g.order.index(d) for d in do)) + 1]
    df = load_table(rows, g)
    missing = [v for v in order if v not in df.columns]
    if missing:
        raise DataError(
            f"a counterfactual needs the factual value of every variable up to its last target; the rows lack {missing}"
        )
    if len(df) == 0:
        raise DataError("no factual rows")
    tok = engine.tokenizer
    factual_ids = {v: [tok.encode_value(v, x) for x in df[v].tolist()] for v in order}
    sampler = engine.sampler
    gen = torch.Generator().manual_seed(int(seed) * 7919 + 17)
    per_batch = max(1, engine.batch_size // num_samples)
    dists, samples, facts = [], [], []
    for s in range(0, len(df), per_batch):
        idx = list(range(s, min(len(df), s + per_batch)))
        noise = _abduct(engine, sampler, order, {v: [factual_ids[v][i] for i in idx] for v in order}, num_samples, gen)
        cf = _replay(engine, sampler, order, do, noise, len(idx) * num_samples, gen)
        for j, i in enumerate(idx):
            row_d, row_s = {}, {}
            for t in targets:
                ids = cf[t][j * num_samples : (j + 1) * num_samples]
                vals = [tok.decode_value(t, x) for x in ids]
                row_s[t] = vals
                if g[t].is_single_token:
                    keys = g[t].value_keys()
                    counts = {k: 0 for k in keys}
                    for x in vals:
                        counts[x] += 1
                    row_d[t] = {k: c / num_samples for k, c in counts.items()}
            dists.append(row_d)
            samples.append(row_s)
            facts.append({v: df[v].iloc[i] for v in order})
    return Counterfactual(targets, jsonable(do), dists, samples, facts, num_samples, seed)


def _abduct(engine, sampler, order, factual: dict[str, list[list[int]]], reps: int, gen) -> dict:
    """``{variable: [noise per step]}``, each ``[rows * reps, C]``: the posterior noise of every factual token."""
    tok = engine.tokenizer
    n = len(next(iter(factual.values())))
    st = PrefixCache(
        sampler.model, n, sampler.device, share_prefixes=False, allowed=_allowed(sampler), mechanism=sampler.mechanism
    )
    noise: dict[str, list[torch.Tensor]] = {}
    pos = {v: i for i, v in enumerate(engine.graph.order)}
    for v in order:
        var = engine.graph[v]
        vids = torch.as_tensor(tok.value_ids[v], dtype=torch.long)
        term = _terminators(engine, order, v, sampler)
        lists = factual[v]
        k = max(len(x) for x in lists)
        ids = torch.full((n, 1 + k), tok.pad_id, dtype=torch.long)
        mask = torch.zeros((n, 1 + k), dtype=torch.long)
        ids[:, 0], mask[:, 0] = tok.start_ids[v], 1
        for i, x in enumerate(lists):
            ids[i, 1 : 1 + len(x)] = torch.as_tensor(x, dtype=torch.long)
            mask[i, 1 : 1 + len(x)] = 1
        logits = st.feed(ids, mask, keep=1 + k, seg=torch.full_like(ids, pos[v]))  # [n, 1 + k, V]
        steps = 1 if var.is_single_token else var.max_length + 1
        allowed = None if var.is_single_token else sampler._emit_ids(var, vids)
        slot = {int(t): j for j, t in enumerate((vids if var.is_single_token else allowed).tolist())}
        noise[v] = []
        for step in range(min(steps, k + 1)):
            # the logits that predict step `step` sit at the position of the token before it: the start
            # token for step 0, the (step-1)-th value token otherwise; rows shorter than the step are padded
            # at the end, and with right padding position `step` is that token for every row
            cand = _candidates(sampler, logits[:, step], var, vids, term, step, var.max_length)
            obs = torch.tensor([slot[x[step]] if step < len(x) else cand.shape[1] - 1 for x in lists])
            if var.is_single_token:
                obs = torch.tensor([slot[x[0]] for x in lists])
            bad = ~torch.isfinite(cand.gather(1, obs[:, None]))[:, 0] & torch.tensor([step <= len(x) for x in lists])
            if bad.any():
                i = int(torch.nonzero(bad)[0, 0])
                raise UnsupportedQueryError(
                    f"row {i}: the model gives the observed value of {v!r} probability 0, so there is no noise that "
                    "explains it and no counterfactual"
                )
            rep_cand = cand.repeat_interleave(reps, 0)
            rep_obs = obs.repeat_interleave(reps, 0)
            live = torch.tensor([step <= len(x) for x in lists]).repeat_interleave(reps, 0)
            g = posterior_gumbels(rep_cand, rep_obs, gen)
            noise[v].append(torch.where(live[:, None], g, _gumbel(g.shape, gen)))
    return noise


def _allowed(sampler):
    return None if sampler.mechanism is not None else sampler.allowed


def _terminators(engine, order, v, sampler) -> torch.Tensor:
    tok = engine.tokenizer
    placed = set(order[: order.index(v) + 1])
    return torch.as_tensor(
        [tok.start_ids[u] for u in engine.graph.order if u not in placed or sampler.allowed is not None] + [tok.eos_id],
        dtype=torch.long,
    )


def _replay(engine, sampler, order, do, noise, m: int, gen) -> dict[str, list[list[int]]]:
    """Walk the order under ``do`` with the abducted noise; the argmax at every step."""
    tok = engine.tokenizer
    st = PrefixCache(
        sampler.model,
        m,
        sampler.device,
        share_prefixes=sampler.share_prefixes,
        allowed=_allowed(sampler),
        mechanism=sampler.mechanism,
    )
    pos = {v: i for i, v in enumerate(engine.graph.order)}
    out: dict[str, list[list[int]]] = {}
    for v in order:
        var = engine.graph[v]
        vids = torch.as_tensor(tok.value_ids[v], dtype=torch.long)
        term = _terminators(engine, order, v, sampler)
        start = torch.full((m, 1), tok.start_ids[v], dtype=torch.long)
        seg = torch.full((m, 1), pos[v], dtype=torch.long)
        if v in do:
            ids = tok.encode_value(v, do[v])
            x = torch.tensor([[tok.start_ids[v], *ids]]).expand(m, -1)
            st.feed(x, torch.ones_like(x), keep=1, seg=torch.full_like(x, pos[v]))
            out[v] = [list(ids)] * m
            continue
        last = st.feed(start, torch.ones_like(start), keep=1, seg=seg)[:, -1]
        if var.is_single_token:
            cand = _candidates(sampler, last, var, vids, term, 0, 1)
            choice = torch.argmax(cand + noise[v][0], -1)
            chosen = vids[choice]
            st.feed(chosen[:, None], torch.ones(m, 1, dtype=torch.long), keep=1, seg=seg)
            out[v] = chosen[:, None].tolist()
            continue
        allowed = sampler._emit_ids(var, vids)
        rows: list[list[int]] = [[] for _ in range(m)]
        done = torch.zeros(m, dtype=torch.bool)
        for step in range(var.max_length + 1):
            cand = _candidates(sampler, last, var, vids, term, step, var.max_length)
            g = noise[v][step] if step < len(noise[v]) else _gumbel(cand.shape, gen)
            choice = torch.argmax(cand + g, -1)
            ended = choice == len(allowed)
            newly = ~done & ~ended
            toks = torch.where(newly, allowed[choice.clamp(max=len(allowed) - 1)], tok.pad_id)
            for i in torch.nonzero(newly)[:, 0].tolist():
                rows[i].append(int(toks[i]))
            done |= ended
            if bool(done.all()):
                break
            last = st.feed(toks[:, None], newly.long()[:, None], 1, seg=seg)[:, -1]
        out[v] = rows
    return out


def causal_probabilities(
    engine: CausalEngine,
    rows: Any,
    treatment: str,
    outcome: str,
    treated: Any = 1,
    control: Any = 0,
    event: Any = 1,
    num_samples: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Unit-level effects on the treated and the probabilities of necessity and sufficiency.

    * ``effect_on_treated``: mean over the rows with ``treatment = treated`` of 1[y = event] - P(Y_control = event);
    * ``PN`` = P(Y_control != event | treatment = treated, Y = event): how often the outcome would not have
      happened without the treatment, among the treated in whom it happened;
    * ``PS`` = P(Y_treated = event | treatment = control, Y != event): how often the treatment would have
      produced the outcome, among the untreated in whom it did not happen.
    Each is a mean over the rows that qualify (their counts are reported), under the assumption stated.
    """
    from ..data import load_table
    from .planner import same_value

    g = engine.graph
    df = load_table(rows, g)
    tvar, yvar = engine.planner.variable(treatment, "treatment"), engine.planner.variable(outcome, "outcome")
    for c in (treatment, outcome):
        if c not in df.columns:
            raise DataError(f"the rows have no column {c!r}")
    try:
        t1, t0, ev = tvar.coerce(treated), tvar.coerce(control), yvar.coerce(event)
    except DataError as e:
        raise QueryError(str(e)) from None
    is_t1 = df[treatment].map(lambda x: same_value(tvar, x, t1)).to_numpy()
    is_t0 = df[treatment].map(lambda x: same_value(tvar, x, t0)).to_numpy()
    hit = df[outcome].map(lambda x: same_value(yvar, x, ev)).to_numpy()
    out: dict[str, Any] = {"assumption": ASSUMPTION}
    if is_t1.any():
        cf0 = counterfactual(engine, df[is_t1], {treatment: control}, [outcome], num_samples, seed)
        p_event = np.array([d[outcome][ev] for d in cf0.distributions])
        out["effect_on_treated"] = float(np.mean(hit[is_t1].astype(float) - p_event))
        out["treated_rows"] = int(is_t1.sum())
        nec = hit[is_t1]
        out["PN"] = float(np.mean(1 - p_event[nec])) if nec.any() else None
        out["PN_rows"] = int(nec.sum())
    if (is_t0 & ~hit).any():
        sel = is_t0 & ~hit
        cf1 = counterfactual(engine, df[sel], {treatment: treated}, [outcome], num_samples, seed)
        out["PS"] = float(np.mean([d[outcome][ev] for d in cf1.distributions]))
        out["PS_rows"] = int(sel.sum())
    return jsonable(out)

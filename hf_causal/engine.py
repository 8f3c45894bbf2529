"""The inference engine: interventional sampling and estimands from a trained model.

Pearl's truncated factorisation with an autoregressive model: walk a topological order,
sample each variable from the model's conditional, and *force* the tokens of intervened
(``do``) and conditioned-on (``given``) variables. A categorical/integer/continuous
target is never sampled: its distribution is read from one softmax behind each sampled
context and averaged (a Rao-Blackwellised Monte Carlo estimate), with standard errors.

Sampling is batched, uses the KV cache, feeds runs of forced tokens in one forward pass,
restricts every sampled token to its variable's values, stops after the last variable a
query needs, and is deterministic for a fixed seed.

Example:
    >>> engine = CausalEngine.from_pretrained("outputs/demo")          # doctest: +SKIP
    >>> engine.query("recovery", do={"treatment": 1}).probs            # doctest: +SKIP
    >>> engine.ate("recovery", "treatment", treated=1, control=0)      # doctest: +SKIP
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .config import CausalConfig
from .graph import CausalGraph, GraphError
from .interventions import PartialSequence
from .sequencify import Sequencifier
from .tokenization import CausalTokenizer

__all__ = [
    "CausalEngine",
    "Distribution",
    "Estimate",
    "UnsupportedQueryError",
    "CausalWarning",
]

Z95 = 1.959963984540054


class UnsupportedQueryError(ValueError):
    """The method cannot answer this query exactly; the message says why."""


class CausalWarning(UserWarning):
    """A query is answerable but probably not what was meant (or poorly supported by data)."""


def _jsonable(v: Any) -> Any:
    if isinstance(v, PartialSequence):
        return {"partial": v.to_dict()}
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


@dataclass
class Distribution:
    """P(target | do, given) with Monte Carlo standard errors per value."""

    target: str
    probs: dict[Any, float]
    se: dict[Any, float]
    n_samples: int
    seed: int
    do: dict[str, Any] = field(default_factory=dict)
    given: dict[str, Any] = field(default_factory=dict)
    confounder_source: str = "model"
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def interval(self, value: Any, alpha: float = 0.05) -> tuple[float, float]:
        z = _z(alpha)
        return (self.probs[value] - z * self.se[value], self.probs[value] + z * self.se[value])

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(
            {
                "target": self.target,
                "do": self.do,
                "given": self.given,
                "probabilities": {str(k): {"p": self.probs[k], "se": self.se[k]} for k in self.probs},
                "n_samples": self.n_samples,
                "seed": self.seed,
                "confounder_source": self.confounder_source,
                "diagnostics": self.diagnostics,
            }
        )


@dataclass
class Estimate:
    """A point estimate with its Monte Carlo standard error and 95% interval."""

    estimand: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    n_samples: int
    seed: int
    confounder_source: str = "model"
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_draws(cls, estimand: str, f: np.ndarray, seed: int, source: str, **details) -> Estimate:
        f = np.asarray(f, dtype=float)
        est = float(f.mean())
        se = float(f.std(ddof=1) / math.sqrt(len(f))) if len(f) > 1 else float("nan")
        return cls(estimand, est, se, est - Z95 * se, est + Z95 * se, len(f), seed, source, _jsonable(details))

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    def __float__(self) -> float:
        return self.estimate


def _z(alpha: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - alpha / 2)


@dataclass
class _Plan:
    order: list[str]  # variables to walk, truncated after the last one needed
    do: dict[str, Any]
    given: dict[str, Any]
    readout: str | None


class CausalEngine:
    """Answers interventional queries with a trained autoregressive model.

    Args:
        model: a causal LM (``transformers`` or ``peft``) trained on sequencified rows.
        tokenizer: the :class:`CausalTokenizer` it was trained with.
        config: its :class:`CausalConfig`.
        batch_size: rows per forward pass when sampling.
        device: torch device (default: CUDA if available, else CPU).
        marginalize_max: sum out the last variable before a categorical target exactly when it has
            at most this many values (0 disables).
        share_prefixes: run the model once per distinct token history (exact; see ``_State``).
        distributed: under ``torch.distributed`` (``accelerate launch``, ``torchrun``), split the
            Monte Carlo batches across processes and gather them; every process gets the answer of
            a single-process run (batch ``b`` is always seeded by ``(seed, b)``).
    """

    def __init__(
        self,
        model,
        tokenizer: CausalTokenizer,
        config: CausalConfig,
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        marginalize_max: int = 16,
        share_prefixes: bool = True,
        distributed: bool = True,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.graph: CausalGraph = tokenizer.graph
        self.sequencifier = Sequencifier(tokenizer, "canonical")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        vocab = len(tokenizer)
        self.batch_size = batch_size or int(max(64, min(4096, 2e8 // max(vocab, 1) // 4)))
        self.marginalize_max = marginalize_max
        self.share_prefixes = share_prefixes
        self.distributed = distributed
        self._pos = {n: i for i, n in enumerate(self.graph.order)}
        from .modeling import segment_attention_matrix

        attention = getattr(config, "attention", "full")
        self._allowed_segments = segment_attention_matrix(self.graph) if attention == "parents" else None

    # --- loading / saving ----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> CausalEngine:
        """Load a folder written by ``hf-causal train`` (or ``save_pretrained``); safetensors only."""
        from .modeling import load_model

        path = Path(path)
        config = CausalConfig.from_pretrained(path)
        graph = config.causal_graph
        tok = CausalTokenizer.from_pretrained(path, graph, config.tokenizer_mode)
        if _jsonable(tok.token_map()) != _jsonable(config.token_map):
            raise GraphError(
                f"{path}: tokenizer ids do not match causal_config.json's token_map; the folder is inconsistent"
            )
        model = load_model(path, tok)
        return cls(model, tok, config, **kwargs)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write model + tokenizer + ``causal_config.json`` atomically."""
        from .training import save_engine_folder

        return save_engine_folder(self.model, self.tokenizer, self.config, path)

    # --- planning -------------------------------------------------------------------------
    def _coerce(self, values: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
        out = {}
        for k, v in (values or {}).items():
            var = self.graph.variable(k)  # raises for unknown names
            if callable(v):
                raise UnsupportedQueryError(f"{what}[{k!r}]: soft interventions (callables) are not supported yet")
            if isinstance(v, PartialSequence):
                out[k] = self._coerce_partial(k, v, what)
                continue
            try:
                out[k] = var.coerce(v)
            except GraphError as e:
                raise GraphError(f"{what}: {e}") from None
            if var.type in ("text", "sequence"):
                self.tokenizer.encode_value(k, out[k])  # length checks
        return out

    def _coerce_partial(self, k: str, v: PartialSequence, what: str) -> PartialSequence:
        var = self.graph[k]
        if what != "do":
            raise UnsupportedQueryError(
                f"{what}[{k!r}]: a PartialSequence is an intervention (do=); conditioning on some steps of a "
                "sequence is not a prefix conditional of the model"
            )
        if var.type != "sequence":
            raise UnsupportedQueryError(
                f"do[{k!r}]: PartialSequence needs a sequence variable; {k!r} is {var.type}"
                + (
                    " (force whole text values, or declare the words as a sequence variable)"
                    if var.type == "text"
                    else ""
                )
            )
        top = max([*v.forced, (v.length or 0) - 1], default=-1)
        if top >= var.max_length or (v.length or 0) > var.max_length:
            raise GraphError(
                f"do: {k!r} has max_length {var.max_length}, but the partial intervention reaches step {top}"
            )
        forced = {}
        for i, sym in v.forced.items():
            try:
                (forced[i],) = var.coerce([sym])
            except GraphError as e:
                raise GraphError(f"do: {k!r} step {i}: {e}") from None
        return PartialSequence(forced, v.length)

    def _plan(
        self,
        targets: Sequence[str],
        do: Mapping[str, Any] | None,
        given: Mapping[str, Any] | None,
        readout: str | None = None,
        per_row_given: Sequence[str] = (),
        warn: bool = True,
    ) -> _Plan:
        g = self.graph
        for t in targets:
            g.variable(t)
        do = self._coerce(do, "do")
        given = self._coerce(given, "given")
        given_names = list(given) + list(per_row_given)
        for t in targets:
            if t in do:
                raise UnsupportedQueryError(f"target {t!r} is also intervened on; its value is fixed by do()")
            if t in given_names:
                raise UnsupportedQueryError(f"target {t!r} is also in given")
        both = set(do) & set(given_names)
        if both:
            raise UnsupportedQueryError(f"variable(s) {sorted(both)} are both intervened on and conditioned on")
        desc = g.descendants(do) if do else set()
        bad = [v for v in given_names if v in desc]
        if bad:
            src = [d for d in do if bad[0] in g.descendants(d)]
            raise UnsupportedQueryError(
                f"cannot condition on {bad[0]!r}: it is a descendant of the intervened {src[0]!r}, so "
                f"P(. | do({src[0]}), {bad[0]}) is not a prefix conditional of the model (it would need "
                "inference backwards through the intervention). Condition only on pre-treatment variables."
            )
        if do and warn:
            for t in targets:
                if t not in desc:
                    warnings.warn(
                        f"target {t!r} is not a descendant of any intervened variable ({', '.join(do)}): "
                        "the intervention cannot change it",
                        CausalWarning,
                        stacklevel=3,
                    )
        order = self._order_for(set(targets) | set(do) | set(given_names), set(given_names))
        pos = {v: i for i, v in enumerate(order)}
        needed = set(targets) | set(given_names)
        last = max(pos[v] for v in needed) if needed else -1
        order = order[: last + 1]
        # prefix conditioning is exact only if nothing sampled before a given depends on it
        for v in order:
            if v in do or v in given_names:
                continue
            later = [e for e in given_names if pos[e] > pos[v]]
            if later and not g.d_separated({v}, later, order[: pos[v]], do=do):
                raise UnsupportedQueryError(
                    f"cannot condition on {later} by prefix conditioning: {v!r} comes before it in the "
                    f"model's order ({' -> '.join(order)}) and depends on it, so P({v} | ...) would need the "
                    "later evidence. Condition on an initial segment of the order (e.g. all pre-treatment "
                    "variables)."
                )
        trained = self.config.loss_variables
        if trained is not None:
            untrained = [v for v in order if v not in do and v not in given_names and v not in trained]
            if untrained:
                raise UnsupportedQueryError(
                    f"this model was trained on the conditionals of {trained} only (loss_variables), so it cannot "
                    f"sample {untrained}: take them from data (data=rows with those columns) or give them, or "
                    "retrain without loss_variables"
                )
        return _Plan(order, do, given, readout)

    def _order_for(self, needed: set[str], given: set[str]) -> list[str]:
        if self.config.order_policy != "random":
            return list(self.graph.order)
        import networkx as nx

        g = self.graph.as_networkx()
        early = given | self.graph.ancestors(given) if given else set()
        anc = needed | self.graph.ancestors(needed)
        key = {v: (v not in early, v not in anc, self._pos[v]) for v in g}
        return list(nx.lexicographical_topological_sort(g, key=lambda v: key[v]))

    # --- the sampler ----------------------------------------------------------------------
    @torch.no_grad()
    def _run(
        self,
        plan: _Plan,
        n: int,
        seed: int,
        rows: pd.DataFrame | None = None,
        sample_readout: bool = False,
        progress: bool = False,
    ):
        """Walk ``plan.order`` for ``n`` rows. Returns (values, readout_probs, forced_logp).

        values: {variable: list of value-id lists}; readout_probs: [n, n_values] or None;
        forced_logp: {do variable: [n] log-probability the model gave the forced tokens}.
        ``rows``: per-row values of conditioned variables (ATT / data-sourced contexts).
        """
        values: dict[str, list[list[int]]] = {v: [] for v in plan.order}
        probs_all, logp_all = [], {d: [] for d in plan.do}
        bs = self.batch_size
        batches = list(enumerate(range(0, n, bs)))
        rank, world = _dist_rank_world() if self.distributed else (0, 1)
        mine = batches[rank::world]  # batch b is seeded by (seed, b): the union is the same for any world size
        it = mine
        if progress and rank == 0:
            from tqdm.auto import tqdm

            it = tqdm(mine, desc="sampling", unit="batch")
        done = {}
        for b, s in it:
            m = min(bs, n - s)
            gen = torch.Generator(device="cpu").manual_seed(int(seed) * 1_000_003 + b)
            sub = rows.iloc[s : s + m] if rows is not None else None
            done[b] = self._run_batch(plan, m, gen, sub, sample_readout)
        if world > 1:
            import torch.distributed as dist

            parts: list = [None] * world
            dist.all_gather_object(parts, done)
            done = {b: r for part in parts for b, r in part.items()}
        for b, _ in batches:
            vals, probs, logp = done[b]
            for v in vals:
                values[v].extend(vals[v])
            if probs is not None:
                probs_all.append(probs)
            for d in logp:
                logp_all[d].append(logp[d])
        readout = torch.cat(probs_all).numpy().astype(float) if probs_all else None
        logp = {d: torch.cat(x).numpy().astype(float) for d, x in logp_all.items() if x}
        return values, readout, logp

    def _run_batch(self, plan: _Plan, m: int, gen: torch.Generator, rows: pd.DataFrame | None, sample_readout: bool):
        tok = self.tokenizer
        dev = self.device
        st = _State(self.model, m, dev, share_prefixes=self.share_prefixes, allowed=self._allowed_segments)
        pending: list[tuple[torch.Tensor, torch.Tensor, int]] = []  # (ids [m,k], mask [m,k], variable index)
        seg_of = self._pos

        def push_const(ids: Sequence[int], v: str) -> None:
            t = torch.tensor(list(ids), dtype=torch.long).expand(m, -1)
            pending.append((t, torch.ones_like(t), seg_of[v]))

        def push_rows(lists: Sequence[Sequence[int]], v: str) -> None:
            k = max(len(x) for x in lists)
            if k == 0:
                return
            t = torch.full((m, k), tok.pad_id, dtype=torch.long)
            mk = torch.zeros((m, k), dtype=torch.long)
            for i, x in enumerate(lists):
                t[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
                mk[i, : len(x)] = 1
            pending.append((t, mk, seg_of[v]))

        def flush(keep: int = 1) -> torch.Tensor:
            ids = torch.cat([p[0] for p in pending], 1)
            mk = torch.cat([p[1] for p in pending], 1)
            sg = torch.cat([torch.full_like(p[0], p[2]) for p in pending], 1)
            pending.clear()
            return st.feed(ids, mk, keep, seg=sg)

        values: dict[str, list[list[int]]] = {}
        forced_logp: dict[str, torch.Tensor] = {}
        readout = None
        remaining = list(plan.order)
        for v in plan.order:
            remaining.remove(v)
            var = self.graph[v]
            push_const([tok.start_ids[v]], v)
            vids = torch.as_tensor(tok.value_ids[v], dtype=torch.long)
            # terminators: any start of a variable not yet placed, or <eos>
            placed = set(plan.order) - set(remaining)
            # (with parent-restricted attention a segment cannot see which variables were placed)
            term = torch.as_tensor(
                [tok.start_ids[u] for u in self.graph.order if u not in placed or self._allowed_segments is not None]
                + [tok.eos_id],
                dtype=torch.long,
            )
            if v in plan.do and isinstance(plan.do[v], PartialSequence):
                part = plan.do[v]
                forced = {i: tok.encode_value(v, [x])[0] for i, x in part.forced.items()}
                values[v], forced_logp[v] = self._sample_variable_length(
                    st, flush(), var, vids, term, gen, pending, forced=forced, length=part.length
                )
            elif v in plan.do:
                ids = tok.encode_value(v, plan.do[v])
                push_const(ids, v)
                logits = flush(keep=len(ids) + 1)  # [m, len+1, V]
                lp = torch.log_softmax(logits.float(), -1)
                allowed_lp = self._allowed_logp(lp, var, vids, term)
                x = torch.as_tensor(ids, dtype=torch.long)
                idx = _local_index(vids, x) if var.type != "text" else x
                per_tok = allowed_lp[:, torch.arange(len(ids)), idx]
                if var.type in ("sequence", "text") and len(ids) < var.max_length:
                    # the segment's end is part of the forced value (at max_length the end is certain)
                    end = torch.logsumexp(lp[:, -1, term], -1) - torch.logsumexp(
                        lp[:, -1, self._allowed_ids(var, vids).tolist() + term.tolist()], -1
                    )
                    per_tok = torch.cat([per_tok, end[:, None]], 1)
                # [m, 2]: log p(whole forced value | context), log of its least likely token
                forced_logp[v] = torch.stack([per_tok.sum(1), per_tok.min(1).values], 1).cpu()
                values[v] = [list(ids)] * m
            elif v in plan.given or (rows is not None and v in rows.columns):
                if v in plan.given:
                    ids = tok.encode_value(v, plan.given[v])
                    push_const(ids, v)
                    values[v] = [list(ids)] * m
                else:
                    lists = [tok.encode_value(v, x) for x in rows[v].tolist()]
                    push_rows(lists, v)
                    values[v] = lists
            elif v == plan.readout and not sample_readout:
                logits = flush()[:, -1].float()
                readout = torch.softmax(logits[:, vids], -1).cpu()
                values[v] = [[] for _ in range(m)]
            elif (
                var.is_single_token
                and plan.readout is not None
                and not sample_readout
                and remaining == [plan.readout]
                and len(vids) <= self.marginalize_max
            ):
                # Rao-Blackwellise one step further: sum the last variable before the target exactly
                # (its k values side by side in the batch) instead of sampling it.
                logits = flush()[:, -1].float()
                pv = torch.softmax(logits[:, vids], -1).cpu()  # [m, k]
                k = len(vids)
                st.repeat_interleave(k)
                ids = torch.stack([vids.repeat(m), torch.full((m * k,), tok.start_ids[plan.readout])], 1)
                sg = torch.tensor([seg_of[v], seg_of[plan.readout]]).expand(m * k, -1)
                out = st.feed(ids, torch.ones_like(ids), seg=sg)[:, -1].float()
                tv = torch.as_tensor(tok.value_ids[plan.readout], dtype=torch.long)
                py = torch.softmax(out[:, tv], -1).cpu().view(m, k, -1)
                readout = (pv[:, :, None] * py).sum(1)
                values[v] = [[] for _ in range(m)]
                values[plan.readout] = [[] for _ in range(m)]
                break
            elif var.is_single_token:
                logits = flush()[:, -1].float()
                p = torch.softmax(logits[:, vids], -1)
                if v == plan.readout:
                    readout = p.cpu()
                choice = torch.multinomial(p.cpu(), 1, generator=gen)[:, 0]
                chosen = vids[choice]
                pending.append((chosen[:, None], torch.ones(m, 1, dtype=torch.long), seg_of[v]))
                values[v] = [[c] for c in chosen.tolist()]
            else:
                values[v], _ = self._sample_variable_length(st, flush(), var, vids, term, gen, pending)
        return values, readout, forced_logp

    def _allowed_ids(self, var, vids: torch.Tensor) -> torch.Tensor:
        if var.type == "text":
            extra = vids  # the missing token, if any
            return torch.cat([torch.as_tensor(self.tokenizer.text_ids), extra])
        return vids

    def _allowed_logp(self, lp: torch.Tensor, var, vids: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
        """Log-probs renormalised over what the variable may emit at each position."""
        if var.type == "text":
            allowed = torch.cat([torch.as_tensor(self.tokenizer.text_ids), vids, term])
            return lp - torch.logsumexp(lp[..., allowed], -1, keepdim=True)
        if var.type == "sequence":
            allowed = torch.cat([vids, term])
            sub = lp[..., vids]
            return sub - torch.logsumexp(lp[..., allowed], -1, keepdim=True)
        sub = lp[..., vids]
        return sub - torch.logsumexp(sub, -1, keepdim=True)

    def _sample_variable_length(
        self,
        st: _State,
        logits: torch.Tensor,
        var,
        vids,
        term,
        gen,
        pending,
        forced: Mapping[int, int] | None = None,
        length: int | None = None,
    ) -> tuple[list[list[int]], torch.Tensor]:
        """Sample one sequence/text segment token by token (the end is a sampled event too).

        ``forced``: ``{step: token id}`` clamped instead of sampled (a partial intervention);
        ``length``: a fixed length (no end before it, the end at it). Without a fixed length a row
        may end before a forced step, which then does not happen. Returns the token lists and
        ``[m, 2]`` log-probabilities of the forced tokens the rows took (sum, least likely one).
        """
        m = logits.shape[0]
        forced = dict(forced or {})
        allowed = self._allowed_ids(var, vids)
        slot = {int(t): i for i, t in enumerate(allowed.tolist())}
        out: list[list[int]] = [[] for _ in range(m)]
        done = torch.zeros(m, dtype=torch.bool)
        f_sum = torch.zeros(m)
        f_min = torch.zeros(m)
        last = logits[:, -1].float()
        cap = var.max_length if length is None else min(length, var.max_length)
        for step in range(cap + 1):
            lp = torch.log_softmax(last, -1).cpu()
            cand = torch.cat([lp[:, allowed], torch.logsumexp(lp[:, term], -1, keepdim=True)], 1)
            cand = cand - torch.logsumexp(cand, -1, keepdim=True)
            if step == cap:
                cand[:, :-1] = -math.inf
            elif length is not None:
                cand[:, -1] = -math.inf
            if step in forced and step < cap:
                j = slot[forced[step]]
                p_end = cand[:, -1].exp()
                ended = torch.rand(m, generator=gen) < p_end if length is None else torch.zeros(m, dtype=torch.bool)
                choice = torch.where(ended, len(allowed), j)
                took = ~done & ~ended
                lp_tok = torch.where(took, cand[:, j], torch.zeros(m))
                f_sum += lp_tok
                f_min = torch.minimum(f_min, lp_tok)
            else:
                choice = torch.multinomial(torch.softmax(cand, -1), 1, generator=gen)[:, 0]
            ended = choice == len(allowed)
            newly = ~done & ~ended
            toks = torch.where(newly, allowed[choice.clamp(max=len(allowed) - 1)], self.tokenizer.pad_id)
            for i in torch.nonzero(newly)[:, 0].tolist():
                out[i].append(int(toks[i]))
            done |= ended
            if bool(done.all()):
                break
            sg = torch.full((m, 1), self._pos[var.name], dtype=torch.long)
            last = st.feed(toks[:, None], newly.long()[:, None], 1, seg=sg)[:, -1].float()
        return out, torch.stack([f_sum, f_min], 1)

    # --- public API -----------------------------------------------------------------------
    def sample(
        self,
        n: int,
        do: Mapping[str, Any] | None = None,
        given: Mapping[str, Any] | None = None,
        seed: int = 0,
        variables: Sequence[str] | None = None,
        progress: bool = False,
    ) -> pd.DataFrame:
        """``n`` draws from the (interventional) joint as a DataFrame.

        Only variables up to the last of ``variables`` (default: all) in the order are generated;
        continuous values are dequantized uniformly within their bin.
        """
        targets = list(variables) if variables else [v for v in self.graph.order]
        targets = [t for t in targets if t not in (do or {}) and t not in (given or {})]
        plan = self._plan(targets, do, given, warn=False)
        if not variables:
            plan.order = self._order_for(set(self.graph.order), set(plan.given))
        values, _, logp = self._run(plan, n, seed, progress=progress)
        rng = np.random.default_rng(seed)
        cols = variables or self.graph.order
        data = {}
        for v in cols:
            if v not in values:
                continue
            data[v] = [self.tokenizer.decode_value(v, ids, rng) for ids in values[v]]
        df = pd.DataFrame(data)
        self._positivity_warning(logp)
        return df

    def query(
        self,
        target: str,
        do: Mapping[str, Any] | None = None,
        given: Mapping[str, Any] | None = None,
        num_samples: int = 2000,
        seed: int = 0,
        data: Any = None,
        progress: bool = False,
    ) -> Distribution:
        """P(target | do(...), given) for a categorical/integer/continuous target, with MC standard errors.

        The target's distribution is read from the model's softmax behind each sampled context
        (never sampled). ``data``: take the pre-treatment context of each row from a dataset
        (``confounder_source="data"``) instead of sampling it from the model.
        """
        var = self.graph.variable(target)
        if not var.is_single_token:
            raise UnsupportedQueryError(
                f"target {target!r} is a {var.type} variable: its distribution has no finite support; "
                "use sample() and summarise the draws"
            )
        plan, rows = self._plan_with_data([target], do, given, data, target)
        n = len(rows) if rows is not None else num_samples
        _, p, logp = self._run(plan, n, seed, rows=rows, progress=progress)
        keys = self._value_keys(target)
        mean = p.mean(0)
        se = p.std(0, ddof=1) / math.sqrt(len(p)) if len(p) > 1 else np.full(len(keys), np.nan)
        diag = self._positivity_warning(logp)
        return Distribution(
            target,
            {k: float(x) for k, x in zip(keys, mean)},
            {k: float(x) for k, x in zip(keys, se)},
            int(n),
            seed,
            _jsonable(plan.do),
            _jsonable(plan.given),
            "data" if rows is not None else "model",
            diag,
        )

    def _value_keys(self, target: str) -> list[Any]:
        var = self.graph[target]
        if var.type == "continuous":
            e = var.edges
            keys: list[Any] = [f"[{e[k]:.4g}, {e[k + 1]:.4g})" for k in range(len(e) - 1)]
            keys += [f"unused#{k}" for k in range(len(e) - 1, var.bins)]
        else:
            keys = var.domain()
        if var.missing == "as_value":
            keys = keys + [None]
        return keys

    def _numbers(self, target: str, event: Any = None) -> np.ndarray:
        var = self.graph.variable(target)
        if event is not None:
            if var.type not in ("categorical", "integer"):
                raise UnsupportedQueryError(f"event= needs a categorical/integer target; {target!r} is {var.type}")
            ev = var.coerce(event)
            return np.asarray([float(k == ev) for k in self._value_keys(target)])
        if not var.is_single_token:
            raise UnsupportedQueryError(f"outcome {target!r} is a {var.type} variable; expectations need a numeric one")
        nums = self.tokenizer.token_numbers(target)
        if nums is None:
            raise UnsupportedQueryError(
                f"outcome {target!r} has non-numeric values {var.values}; pass event=<value> to estimate "
                "the probability of one value"
            )
        if np.isnan(nums).any():
            raise UnsupportedQueryError(f"outcome {target!r} allows missing values; its expectation is undefined")
        return nums

    def _plan_with_data(self, targets, do, given, data, readout, context_of: str | None = None):
        if data is None:
            return self._plan(targets, do, given, readout=readout), None
        from .data import load_table

        df = load_table(data, self.graph)
        do_names = set(do or {})
        anchor = context_of or (min(do_names, key=self._pos.get) if do_names else None)
        if anchor is None:
            raise UnsupportedQueryError(
                "data-sourced contexts need an intervened variable to define the pre-treatment prefix"
            )
        order = self._order_for(set(targets) | do_names | set(given or {}), set())
        prefix = [v for v in order[: order.index(anchor)] if v not in (given or {}) and v not in do_names]
        missing = [v for v in prefix if v not in df.columns]
        if missing:
            raise GraphError(f"data lacks the pre-treatment column(s) {missing} needed as contexts")
        # contexts must come from p(x | given): keep only the rows that match the given values
        for k, v in self._coerce(given, "given").items():
            if k not in df.columns:
                raise GraphError(f"data has no column {k!r} to select the rows with {k}={v!r} (given)")
            var = self.graph[k]
            df = df[df[k].map(lambda x, var=var, v=v: _same(var, x, v))]
            if len(df) == 0:
                raise GraphError(f"data has no row with {k} = {v!r} (given)")
        rows = df[prefix].reset_index(drop=True)
        return self._plan(targets, do, given, readout=readout, per_row_given=prefix), rows

    def _mu(self, outcome: str, plan: _Plan, num_samples: int, seed: int, event=None, rows=None, progress=False):
        """Per-context E[outcome | context, do] (or P(outcome = event | ...)) and forced-value log-probs."""
        nums = self._numbers(outcome, event)
        n = len(rows) if rows is not None else num_samples
        _, p, logp = self._run(plan, n, seed, rows=rows, progress=progress)
        return p @ nums, logp

    def expectation(
        self,
        target: str,
        do: Mapping[str, Any] | None = None,
        given: Mapping[str, Any] | None = None,
        num_samples: int = 2000,
        seed: int = 0,
        event: Any = None,
        data: Any = None,
    ) -> Estimate:
        """E[target | do(...), given] (or P(target = event | ...)) with its MC standard error."""
        plan, rows = self._plan_with_data([target], do, given, data, target)
        mu, logp = self._mu(target, plan, num_samples, seed, event, rows)
        name = f"E[{target} | do({_fmt(plan.do)}){', ' + _fmt(plan.given) if plan.given else ''}]"
        return Estimate.from_draws(
            name, mu, seed, "data" if rows is not None else "model", **self._positivity_warning(logp)
        )

    def ate(
        self,
        outcome: str,
        treatment: str,
        treated: Any,
        control: Any,
        given: Mapping[str, Any] | None = None,
        num_samples: int = 2000,
        seed: int = 0,
        event: Any = None,
        data: Any = None,
    ) -> Estimate:
        """ATE = E[Y | do(T=treated)] - E[Y | do(T=control)] (treated minus control), common random numbers.

        With ``given`` this is the CATE. With ``data``, contexts come from the dataset's rows.
        """
        return self._contrast(
            "ATE" if not given else "CATE", outcome, treatment, treated, control, given, num_samples, seed, event, data
        )

    def cate(
        self,
        outcome: str,
        treatment: str,
        treated: Any,
        control: Any,
        given: Mapping[str, Any],
        num_samples: int = 2000,
        seed: int = 0,
        event: Any = None,
    ) -> Estimate:
        """CATE(given) = E[Y | do(treated), given] - E[Y | do(control), given]; given must be pre-treatment."""
        if not given:
            raise UnsupportedQueryError("cate() needs given covariates; use ate() for the average effect")
        return self._contrast("CATE", outcome, treatment, treated, control, given, num_samples, seed, event, None)

    def _arms(self, outcome, treatment, treated, control, given, num_samples, seed, event, data):
        """Per-context means and forced-value log-probs of the treated and the control arm (same seed)."""
        self.graph.variable(treatment)
        if data is not None:
            from .data import load_table

            data = load_table(data, self.graph)  # once, not once per arm
        arms = []
        for val in (treated, control):
            plan, rows = self._plan_with_data([outcome], {treatment: val}, given, data, outcome)
            arms.append(self._mu(outcome, plan, num_samples, seed, event, rows))
        return arms

    def _contrast(self, name, outcome, treatment, treated, control, given, num_samples, seed, event, data):
        arms = self._arms(outcome, treatment, treated, control, given, num_samples, seed, event, data)
        f = arms[0][0] - arms[1][0]
        diag = self._positivity_warning({**arms[0][1], **{f"{k} (control)": v for k, v in arms[1][1].items()}})
        g = _fmt(self._coerce(given, "given")) if given else ""
        label = f"{name}: E[{outcome} | do({treatment}={treated}){', ' + g if g else ''}] - E[{outcome} | do({treatment}={control}){', ' + g if g else ''}]"
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
        self,
        outcome: str,
        treatment: str,
        treated: Any,
        control: Any,
        data: Any,
        draws_per_row: int = 1,
        seed: int = 0,
        event: Any = None,
    ) -> np.ndarray:
        """Per-row conditional effects E[Y | do(T=treated), x_i] - E[Y | do(T=control), x_i].

        ``x_i`` is row i's pre-treatment context (the variables before ``treatment`` in the order).
        The outcome's distribution is read exactly from the model's softmax; variables sampled between
        the treatment and the outcome (mediators) are averaged over ``draws_per_row`` draws per row.
        This is the model's CATE at each row, e.g. for PEHE on IHDP.

        Example:
            >>> ite = engine.individual_effects("recovery", "treatment", 1, 0, data=df)  # doctest: +SKIP
        """
        from .data import load_table

        if draws_per_row < 1:
            raise ValueError(f"draws_per_row must be >= 1, got {draws_per_row}")
        df = load_table(data, self.graph)
        rep = df.loc[df.index.repeat(draws_per_row)].reset_index(drop=True)
        (mu1, _), (mu0, _) = self._arms(outcome, treatment, treated, control, None, len(rep), seed, event, rep)
        return (mu1 - mu0).reshape(len(df), draws_per_row).mean(1)

    def att(
        self,
        outcome: str,
        treatment: str,
        treated: Any,
        control: Any,
        data: Any = None,
        num_samples: int = 2000,
        seed: int = 0,
        event: Any = None,
    ) -> Estimate:
        """ATT = E[Y(treated) - Y(control) | T = treated].

        With ``data``: the contexts are the pre-treatment values of the dataset's rows whose
        treatment equals ``treated`` (each used once; the SE treats them as a sample).
        Without: model draws weighted by the model's p(T = treated | context) (self-normalised
        importance weights; the effective sample size is reported).
        """
        tvar = self.graph.variable(treatment)
        if isinstance(treated, PartialSequence) or isinstance(control, PartialSequence):
            raise UnsupportedQueryError(
                "att() with a partial intervention is not supported: 'the treated' (units whose sequence took "
                "the forced steps) is not defined by the forced steps alone; use ate()/individual_effects() "
                "with data= rows you select"
            )
        t1 = tvar.coerce(treated)
        if data is not None:
            from .data import load_table

            df = load_table(data, self.graph)
            if treatment not in df.columns:
                raise GraphError(f"data has no column {treatment!r} to select the treated rows")
            sel = df[df[treatment].map(lambda x: _same(tvar, x, t1))]
            if len(sel) == 0:
                raise GraphError(f"data has no row with {treatment} = {treated!r}")
            est = self._contrast("ATT", outcome, treatment, treated, control, None, num_samples, seed, event, sel)
            est.details["treated_rows"] = len(sel)
            return est
        mus, logps = [], []
        for val in (treated, control):
            plan = self._plan([outcome], {treatment: val}, None, readout=outcome)
            mu, logp = self._mu(outcome, plan, num_samples, seed, event)
            mus.append(mu)
            logps.append(logp[treatment][:, 0])
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
            _jsonable({"effective_sample_size": ess, "weights": "p(treatment=treated | context)"}),
        )

    def _positivity_warning(self, logp: Mapping[str, np.ndarray], threshold: float = 1e-3) -> dict[str, Any]:
        """Diagnostics of forced values: the model's probability of each forced value in its context.

        Warns when a forced token (for sequences and text: the least likely one) has mean
        probability below ``threshold``: the data hardly support the intervention (positivity).
        """
        diag = {}
        trained = self.config.loss_variables
        for d, lp in logp.items():
            if trained is not None and d.split(" ")[0] not in trained:
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
                    stacklevel=3,
                )
        return diag


def _dist_rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _same(var, x, v) -> bool:
    try:
        return var.coerce(x) == v
    except GraphError:
        return False


def _fmt(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())


def _local_index(vids: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    lookup = {int(v): i for i, v in enumerate(vids)}
    return torch.as_tensor([lookup[int(i)] for i in ids], dtype=torch.long)


def _segment_mask_4d(
    allowed: torch.Tensor,
    seg_q: torch.Tensor,
    seg_k: torch.Tensor,
    key_mask: torch.Tensor,
    q_offset: int,
    dtype=torch.float32,
) -> torch.Tensor:
    """Additive [B, 1, q, k] mask: causal, no padding keys, and a query in segment i sees only
    segments j with ``allowed[i, j]`` (its own and its parents'); a query always sees itself."""
    q, k = seg_q.shape[1], seg_k.shape[1]
    ok = allowed[seg_q[:, :, None], seg_k[:, None, :]] & key_mask[:, None, :].bool()
    qpos = torch.arange(q)[:, None] + q_offset
    kpos = torch.arange(k)[None, :]
    ok = ok & (kpos <= qpos)[None]
    ok = ok | (kpos == qpos)[None]
    return torch.zeros(ok.shape, dtype=dtype).masked_fill(~ok, torch.finfo(dtype).min)[:, None]


def _unique_rows(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct rows of a 2-D integer tensor: (one representative row index per group, group of each row).

    Column by column, the running group id and the next column are packed into one integer
    and re-ranked with a 1-D ``unique`` (much faster than ``unique(dim=0)``), so it never overflows.
    """
    group = torch.zeros(key.shape[0], dtype=torch.long)
    for c in range(key.shape[1]):
        col = key[:, c]
        packed = group * (int(col.max()) + 1) + col
        _, group = torch.unique(packed, return_inverse=True)
    n = int(group.max()) + 1 if key.shape[0] else 0
    rep = torch.empty(n, dtype=torch.long).scatter_(0, group, torch.arange(key.shape[0]))
    return rep, group


class _State:
    """KV-cache state of one batch of rows, with prefix sharing.

    Rows whose token histories are identical share one cache *slot*: each feed runs the model
    once per distinct (slot, new tokens) pair and broadcasts the logits back to the rows. With
    discrete variables early in the order most rows share few prefixes, so the cost follows the
    number of distinct histories, not the number of draws; with text or continuous values every
    row gets its own slot and this is the ordinary batched pass. Tokens can be masked out
    (holes) anywhere; positions skip them.
    """

    def __init__(self, model, m: int, device, share_prefixes: bool = True, allowed: torch.Tensor | None = None):
        self.model = model
        self.allowed = allowed  # [n_vars + 1, n_vars + 1] bool: may a query in segment i attend to segment j
        self.seg = torch.zeros((1 if share_prefixes else m, 0), dtype=torch.long)
        self.device = device
        self.cache = None
        self.share = share_prefixes
        n_slots = 1 if share_prefixes else m
        self.inv = torch.zeros(m, dtype=torch.long) if share_prefixes else torch.arange(m)
        self.mask = torch.zeros((n_slots, 0), dtype=torch.long, device=device)
        self.n_real = torch.zeros(n_slots, dtype=torch.long, device=device)

    def _select(self, slots: torch.Tensor) -> None:
        if self.cache is not None:
            self.cache.batch_select_indices(slots.to(self.device))
        self.mask = self.mask[slots]
        self.n_real = self.n_real[slots]
        self.seg = self.seg[slots.cpu()]

    def _segment_mask(self, q: int) -> torch.Tensor:
        k = self.seg.shape[1]
        seg_k = torch.where(self.seg < 0, self.allowed.shape[0] - 1, self.seg)
        m = _segment_mask_4d(self.allowed, seg_k[:, k - q :], seg_k, self.mask.cpu(), k - q)
        return m.to(self.device)

    def repeat_interleave(self, k: int) -> None:
        """Copy every row k times (rows i*k .. i*k+k-1 continue row i)."""
        n_slots = self.mask.shape[0]
        self._select(torch.arange(n_slots).repeat_interleave(k))
        self.inv = (self.inv[:, None] * k + torch.arange(k)[None, :]).reshape(-1)

    def feed(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: int = 1, seg: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Append ``ids`` ([rows, n], holes where ``mask`` is 0; ``seg`` the variable index of each token);
        return the last ``keep`` logits per row."""
        ids, mask = ids.cpu(), mask.cpu()
        seg = torch.zeros_like(ids) if seg is None else seg.cpu().expand_as(ids)
        if self.share:
            rep, row_to_slot = _unique_rows(torch.cat([self.inv[:, None], ids * mask + mask], 1))
            self._select(self.inv[rep])
            self.inv = row_to_slot
            ids, mask, seg = ids[rep], mask[rep], seg[rep]
        self.seg = torch.cat([self.seg, seg], 1)
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (self.n_real[:, None] + mask.cumsum(1) - 1).clamp(min=0)
        self.mask = torch.cat([self.mask, mask], 1)
        attn = self.mask if self.allowed is None else self._segment_mask(ids.shape[1])
        out = self.model(
            input_ids=ids, attention_mask=attn, position_ids=pos, cache=self.cache, use_cache=True, logits_to_keep=keep
        )
        self.cache = out.cache if hasattr(out, "cache") else out.past_key_values
        self.n_real += mask.sum(1)
        return out.logits[self.inv.to(self.device)] if self.share else out.logits

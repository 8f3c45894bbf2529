"""The batched walk: sample, force or read out each variable of a plan, batch by batch.

For each batch of rows the sampler walks the plan's order through one :class:`PrefixCache`. What
happens at a variable depends on its *role* in the query, and each role is one small step
function (``_ROLES``):

==============  =========================================================================
``partial``     a :class:`PartialSequence` intervention: forced steps clamped, the rest sampled
``do``          an intervened value: its tokens forced in one pass, their probability recorded
``given``       a conditioned-on value (exact prefix conditioning), the same for all rows or from each data row
``evidence``    evidence that is not a prefix: forced, and its probability kept as the draw's weight
``row_evidence``  the same for each data row's own value (rows whose columns are not an initial segment)
``row_do``      an intervened value that each data row carries (both arms of a contrast in one walk)
``readout``     the target: its distribution read from the softmax, never sampled
``marginal``    the last variable before a single-token target, summed out exactly
``token``       a single-token variable, sampled from the softmax over its values
``segment``     a sequence or text variable, sampled token by token until its end is drawn
==============  =========================================================================

Sampling restricts every token to what the variable may emit, feeds runs of forced tokens in one
forward pass, and is deterministic for a fixed seed: batch ``b`` is seeded by ``(seed, b)``, so the
draws do not depend on how batches are split across processes.

Over 500 lines: the roles are one dispatch table over one walk's state; they stay together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..errors import QueryError
from ..interventions import PartialSequence
from .cache import PrefixCache
from .planner import Plan

__all__ = ["Sampler", "Draws"]


@dataclass
class Draws:
    """The result of walking a plan for ``n`` rows."""

    values: dict[str, list[list[int]]]
    """``{variable: the value ids of each row}`` (empty lists for read-out or summed-out variables)."""
    readout: np.ndarray | None
    """``[n, n_values]``: the read-out variable's distribution behind each row's context."""
    forced_logp: dict[str, np.ndarray]
    """``{do variable: [n, 2]}``: log p(whole forced value | context), log p of its least likely token."""
    plan: Plan | None = None
    """The plan walked."""
    marginal: dict[str, np.ndarray] = field(default_factory=dict)
    """``{variable: [n, k]}``: the distribution of a variable summed out exactly (instead of sampled)."""
    evidence_logp: dict[str, np.ndarray] = field(default_factory=dict)
    """``{weighted evidence variable: [n, 2]}``: log p(its value | context) as for ``forced_logp``."""
    readouts: dict[str, np.ndarray] = field(default_factory=dict)
    """``{single-token target: [n, n_values]}``: each sampled target's distribution behind its own sampled
    prefix (several targets from one walk: :meth:`CausalEngine.query_many`)."""

    def select(self, idx: np.ndarray, plan: Plan) -> Draws:
        """The draws of rows ``idx`` as the answer to ``plan``."""

        def pick(d: dict) -> dict:
            return {k: v[idx] for k, v in d.items()}

        values = {k: [v[i] for i in idx] for k, v in self.values.items()}
        readout = None if self.readout is None else self.readout[idx]
        return Draws(
            values,
            readout,
            pick(self.forced_logp),
            plan,
            pick(self.marginal),
            pick(self.evidence_logp),
            pick(self.readouts),
        )

    @property
    def log_weights(self) -> np.ndarray | None:
        """Each draw's log likelihood weight (the sum over weighted evidence), or None without evidence."""
        if not self.evidence_logp:
            return None
        return sum(lp[:, 0] for lp in self.evidence_logp.values())


def _dist_rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _local_index(vids: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    lookup = {int(v): i for i, v in enumerate(vids)}
    return torch.as_tensor([lookup[int(i)] for i in ids], dtype=torch.long)


class _Walk:
    """One batch's walk: the cache, the tokens waiting to be fed, and what has been drawn so far."""

    def __init__(self, sampler: Sampler, plan: Plan, m: int, gen: torch.Generator, rows, sample_readout: bool):
        self.s = sampler
        self.plan = plan
        self.m = m
        self.gen = gen
        self.rows = rows
        self.sample_readout = sample_readout
        self.cache = PrefixCache(
            sampler.model,
            m,
            sampler.device,
            share_prefixes=sampler.share_prefixes,
            allowed=None if sampler.mechanism is not None else sampler.allowed,
            mechanism=sampler.mechanism,
            max_tokens=sum(sampler.graph[v].max_tokens for v in plan.order),
        )
        self.pending: list[tuple[torch.Tensor, torch.Tensor, int]] = []  # (ids [m,k], mask [m,k], variable index)
        self.values: dict[str, list[list[int]]] = {}
        self.forced_logp: dict[str, torch.Tensor] = {}
        self.readout: torch.Tensor | None = None
        self.marginal: dict[str, torch.Tensor] = {}
        self.evidence_logp: dict[str, torch.Tensor] = {}
        self.readouts: dict[str, torch.Tensor] = {}
        self.remaining = list(plan.order)

    def push_const(self, ids: Sequence[int], v: str) -> None:
        t = torch.tensor(list(ids), dtype=torch.long).expand(self.m, -1)
        self.pending.append((t, torch.ones_like(t), self.s.position[v]))

    def push_rows(self, lists: Sequence[Sequence[int]], v: str) -> None:
        k = max(len(x) for x in lists)
        if k == 0:
            return
        t = torch.full((self.m, k), self.s.tokenizer.pad_id, dtype=torch.long)
        mk = torch.zeros((self.m, k), dtype=torch.long)
        for i, x in enumerate(lists):
            t[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
            mk[i, : len(x)] = 1
        self.pending.append((t, mk, self.s.position[v]))

    def flush(self, keep: int = 1) -> torch.Tensor:
        """Feed everything pending; the last ``keep`` logits per row."""
        ids = torch.cat([p[0] for p in self.pending], 1)
        mk = torch.cat([p[1] for p in self.pending], 1)
        sg = torch.cat([torch.full_like(p[0], p[2]) for p in self.pending], 1)
        self.pending.clear()
        return self.cache.feed(ids, mk, keep, seg=sg)


class Sampler:
    """Walks plans with a model, in batches, with the KV cache and prefix sharing.

    Args:
        model: the causal LM (``transformers`` or ``peft``), in eval mode on ``device``.
        tokenizer: its :class:`~hf_causal.tokenization.CausalTokenizer`.
        batch_size: rows per batch.
        device: torch device.
        allowed: the segment attention matrix for ``attention: parents`` and the mechanism modes (None:
            full attention).
        mechanism: mechanism attention (:mod:`hf_causal.mechanisms`), or None.
        marginalize_max: sum out the last variable before a single-token target exactly when it has
            at most this many values (0 disables).
        share_prefixes: run the model once per distinct token history (exact).
        distributed: under ``torch.distributed``, split the batches across processes and gather them.
    """

    def __init__(
        self,
        model,
        tokenizer,
        batch_size: int,
        device,
        allowed: torch.Tensor | None = None,
        marginalize_max: int = 16,
        share_prefixes: bool = True,
        distributed: bool = True,
        mechanism=None,
        adapter: str | None = None,
    ):
        self.model = model
        self.mechanism = mechanism
        self.adapter = adapter
        self.tokenizer = tokenizer
        self.graph = tokenizer.graph
        self.batch_size = batch_size
        self.device = device
        self.allowed = allowed
        self.marginalize_max = marginalize_max
        self.share_prefixes = share_prefixes
        self.distributed = distributed
        self.position = {n: i for i, n in enumerate(self.graph.order)}

    @torch.no_grad()
    def run(
        self,
        plan: Plan,
        n: int,
        seed: int,
        rows: pd.DataFrame | None = None,
        sample_readout: bool = False,
        progress: bool = False,
    ) -> Draws:
        """Walk ``plan.order`` for ``n`` rows. ``rows``: per-row values of conditioned variables."""
        import gc

        # the walk allocates one small list per row and variable; with the collector on, each burst of
        # allocations triggers a scan of every live one (profiled: a third of a 20,000-draw query)
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run(plan, n, seed, rows, sample_readout, progress)
        finally:
            if enabled:
                gc.enable()

    def _run(self, plan, n, seed, rows, sample_readout, progress) -> Draws:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise QueryError(f"the number of Monte Carlo draws must be a positive integer, got {n!r}")
        if self.adapter is not None:  # an ensemble of LoRA adapters over one base: this member's adapter
            self.model.set_adapter(self.adapter)
        values: dict[str, list[list[int]]] = {v: [] for v in plan.order}
        probs_all, logp_all, marg_all, ro_all = [], {d: [] for d in plan.do}, {}, {}
        ev_all: dict[str, list] = {e: [] for e in [*plan.weighted, *plan.weighted_rows]}
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
            done[b] = self._walk(plan, m, gen, sub, sample_readout or plan.sample_readout)
        if world > 1:
            import torch.distributed as dist

            parts: list = [None] * world
            dist.all_gather_object(parts, done)
            done = {b: r for part in parts for b, r in part.items()}
        for b, _ in batches:
            vals, probs, logp, marg, ev, ro = done[b]
            for v, p in ro.items():
                ro_all.setdefault(v, []).append(p)
            for v, p in marg.items():
                marg_all.setdefault(v, []).append(p)
            for e, lp in ev.items():
                ev_all[e].append(lp)
            for v in vals:
                values[v].extend(vals[v])
            if probs is not None:
                probs_all.append(probs)
            for d in logp:
                logp_all[d].append(logp[d])
        readout = torch.cat(probs_all).numpy().astype(float) if probs_all else None
        logp = {d: torch.cat(x).numpy().astype(float) for d, x in logp_all.items() if x}
        marginal = {v: torch.cat(x).numpy().astype(float) for v, x in marg_all.items()}
        evidence = {e: torch.cat(x).numpy().astype(float) for e, x in ev_all.items() if x}
        readouts = {v: torch.cat(x).numpy().astype(float) for v, x in ro_all.items()}
        return Draws(values, readout, logp, plan, marginal, evidence, readouts)

    # --- one batch --------------------------------------------------------------------------
    def _walk(self, plan: Plan, m: int, gen: torch.Generator, rows, sample_readout: bool):
        w = _Walk(self, plan, m, gen, rows, sample_readout)
        tok = self.tokenizer
        for v in plan.order:
            w.remaining.remove(v)
            var = self.graph[v]
            w.push_const([tok.start_ids[v]], v)
            vids = torch.as_tensor(tok.value_ids[v], dtype=torch.long)
            # terminators: any start of a variable not yet placed, or <eos>
            # (with parent-restricted attention a segment cannot see which variables were placed)
            placed = set(plan.order) - set(w.remaining)
            term = torch.as_tensor(
                [tok.start_ids[u] for u in self.graph.order if u not in placed or self.allowed is not None]
                + [tok.eos_id],
                dtype=torch.long,
            )
            if _ROLES[self._role(w, v, var, vids)](self, w, v, var, vids, term):
                break
        return w.values, w.readout, w.forced_logp, w.marginal, w.evidence_logp, w.readouts

    def _role(self, w: _Walk, v: str, var, vids: torch.Tensor) -> str:
        plan = w.plan
        if v in plan.do_rows:
            return "row_do"
        if v in plan.do:
            return "partial" if isinstance(plan.do[v], PartialSequence) else "do"
        if v in plan.weighted:
            return "evidence"
        if v in plan.weighted_rows:
            return "row_evidence"
        if v in plan.given or (w.rows is not None and v in w.rows.columns):
            return "given"
        if v == plan.readout and not w.sample_readout:
            return "readout"
        if (
            var.is_single_token
            and plan.readout is not None
            and not w.sample_readout
            and w.remaining == [plan.readout]
            and len(vids) <= self.marginalize_max
        ):
            return "marginal"
        return "token" if var.is_single_token else "segment"

    def _step_partial(self, w: _Walk, v, var, vids, term) -> bool:
        part = w.plan.do[v]
        forced = {i: self.tokenizer.encode_value(v, [x])[0] for i, x in part.forced.items()}
        w.values[v], w.forced_logp[v] = self._sample_segment(
            w, w.flush(), var, vids, term, forced=forced, length=part.length
        )
        return False

    def _step_do(self, w: _Walk, v, var, vids, term) -> bool:
        w.forced_logp[v] = self._force(w, v, var, vids, term, w.plan.do[v])
        return False

    def _step_evidence(self, w: _Walk, v, var, vids, term) -> bool:
        """Weighted evidence: forced like an intervention, its probability recorded for the draw's weight."""
        w.evidence_logp[v] = self._force(w, v, var, vids, term, w.plan.given[v])
        return False

    def _step_row_evidence(self, w: _Walk, v, var, vids, term) -> bool:
        """Each row's own evidence value: forced, its probability recorded for the draw's weight."""
        w.evidence_logp[v] = self._force_rows(w, v, var, vids, term)
        return False

    def _step_row_do(self, w: _Walk, v, var, vids, term) -> bool:
        """An intervention whose value is each row's own (``Plan.do_rows``). The history before it is fed on
        its own first, so that rows which differ only in this value share its cache slot."""
        w.forced_logp[v] = self._force_rows(w, v, var, vids, term, split=True)
        return False

    def _force_rows(self, w: _Walk, v, var, vids, term, split: bool = False) -> torch.Tensor:
        """Feed each row's own value of ``v``; ``[m, 2]`` as for :meth:`_force`. ``split``: feed what is pending
        (the history up to ``v``'s start token) before the values."""
        lists = [self.tokenizer.encode_value(v, x) for x in w.rows[v].tolist()]
        k = max(len(x) for x in lists)
        head = w.flush(keep=1) if split else None
        w.push_rows(lists, v)
        logits = w.flush(keep=k + 1) if head is None else torch.cat([head, w.flush(keep=k)], 1)
        # logits: [m, k + 1, V]; position j predicts token j (right padding)
        lp = torch.log_softmax(logits.float(), -1)
        allowed_lp = self._allowed_logp(lp, var, vids, term)
        out = torch.zeros(w.m, 2)
        emit = self._emit_ids(var, vids).tolist() + term.tolist()
        for i, ids in enumerate(lists):
            x = torch.as_tensor(ids, dtype=torch.long)
            idx = _local_index(vids, x) if not var.kind.base_vocabulary else x
            per_tok = allowed_lp[i, torch.arange(len(ids)), idx]
            if var.kind.variable_length and len(ids) < var.max_length:
                n = len(ids)
                end = torch.logsumexp(lp[i, n, term], -1) - torch.logsumexp(lp[i, n, emit], -1)
                per_tok = torch.cat([per_tok, end[None]])
            out[i] = torch.stack([per_tok.sum(), per_tok.min()]) if len(per_tok) else 0.0
        w.values[v] = lists
        return out.cpu()

    def _force(self, w: _Walk, v, var, vids, term, value) -> torch.Tensor:
        """Feed ``value``'s tokens; ``[m, 2]``: log p(whole value | context), log of its least likely token."""
        ids = self.tokenizer.encode_value(v, value)
        w.push_const(ids, v)
        logits = w.flush(keep=len(ids) + 1)  # [m, len+1, V]
        lp = torch.log_softmax(logits.float(), -1)
        allowed_lp = self._allowed_logp(lp, var, vids, term)
        x = torch.as_tensor(ids, dtype=torch.long)
        idx = _local_index(vids, x) if not var.kind.base_vocabulary else x
        per_tok = allowed_lp[:, torch.arange(len(ids)), idx]
        if var.kind.variable_length and len(ids) < var.max_length:
            # the segment's end is part of the forced value (at max_length the end is certain)
            emit = self._emit_ids(var, vids)
            end = torch.logsumexp(lp[:, -1, term], -1) - torch.logsumexp(lp[:, -1, emit.tolist() + term.tolist()], -1)
            per_tok = torch.cat([per_tok, end[:, None]], 1)
        w.values[v] = [list(ids)] * w.m
        return torch.stack([per_tok.sum(1), per_tok.min(1).values], 1).cpu()

    def _step_given(self, w: _Walk, v, var, vids, term) -> bool:
        if v in w.plan.given:
            ids = self.tokenizer.encode_value(v, w.plan.given[v])
            w.push_const(ids, v)
            w.values[v] = [list(ids)] * w.m
        else:
            lists = [self.tokenizer.encode_value(v, x) for x in w.rows[v].tolist()]
            w.push_rows(lists, v)
            w.values[v] = lists
        return False

    def _step_readout(self, w: _Walk, v, var, vids, term) -> bool:
        logits = w.flush()[:, -1].float()
        w.readout = torch.softmax(logits[:, vids], -1).cpu()
        w.values[v] = [[] for _ in range(w.m)]
        return False

    def _step_marginal(self, w: _Walk, v, var, vids, term) -> bool:
        """Rao-Blackwellise one step further: sum the last variable before the target exactly (its k
        values side by side in the batch) instead of sampling it. Ends the walk."""
        tok, m, target = self.tokenizer, w.m, w.plan.readout
        logits = w.flush()[:, -1].float()
        pv = torch.softmax(logits[:, vids], -1).cpu()  # [m, k]
        k = len(vids)
        w.cache.repeat_interleave(k)
        ids = torch.stack([vids.repeat(m), torch.full((m * k,), tok.start_ids[target])], 1)
        sg = torch.tensor([self.position[v], self.position[target]]).expand(m * k, -1)
        out = w.cache.feed(ids, torch.ones_like(ids), seg=sg)[:, -1].float()
        tv = torch.as_tensor(tok.value_ids[target], dtype=torch.long)
        py = torch.softmax(out[:, tv], -1).cpu().view(m, k, -1)
        w.readout = (pv[:, :, None] * py).sum(1)
        w.marginal[v] = pv
        w.values[v] = [[] for _ in range(m)]
        w.values[target] = [[] for _ in range(m)]
        return True

    def _step_token(self, w: _Walk, v, var, vids, term) -> bool:
        logits = w.flush()[:, -1].float()
        p = torch.softmax(logits[:, vids], -1)
        if v == w.plan.readout:
            w.readout = p.cpu()
        if v in w.plan.targets:
            w.readouts[v] = p.cpu()
        choice = torch.multinomial(p.cpu(), 1, generator=w.gen)[:, 0]
        chosen = vids[choice]
        w.pending.append((chosen[:, None], torch.ones(w.m, 1, dtype=torch.long), self.position[v]))
        w.values[v] = chosen[:, None].tolist()
        return False

    def _step_segment(self, w: _Walk, v, var, vids, term) -> bool:
        w.values[v], _ = self._sample_segment(w, w.flush(), var, vids, term)
        return False

    # --- helpers ----------------------------------------------------------------------------
    def _emit_ids(self, var, vids: torch.Tensor) -> torch.Tensor:
        """What a segment of ``var`` may emit (text: the base subwords plus its missing token)."""
        if var.kind.base_vocabulary:
            return torch.cat([torch.as_tensor(self.tokenizer.text_ids), vids])
        return vids

    def _allowed_logp(self, lp: torch.Tensor, var, vids: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
        """Log-probs renormalised over what the variable may emit at each position (and its end)."""
        if var.kind.base_vocabulary:
            allowed = torch.cat([torch.as_tensor(self.tokenizer.text_ids), vids, term])
            return lp - torch.logsumexp(lp[..., allowed], -1, keepdim=True)
        if var.kind.variable_length:
            allowed = torch.cat([vids, term])
            sub = lp[..., vids]
            return sub - torch.logsumexp(lp[..., allowed], -1, keepdim=True)
        sub = lp[..., vids]
        return sub - torch.logsumexp(sub, -1, keepdim=True)

    def _sample_segment(
        self,
        w: _Walk,
        logits: torch.Tensor,
        var,
        vids,
        term,
        forced: Mapping[int, int] | None = None,
        length: int | None = None,
    ) -> tuple[list[list[int]], torch.Tensor]:
        """Sample one sequence/text segment token by token (the end is a sampled event too).

        ``forced``: ``{step: token id}`` clamped instead of sampled (a partial intervention);
        ``length``: a fixed length (no end before it, the end at it). Without a fixed length a row
        may end before a forced step, which then does not happen. Returns the token lists and
        ``[m, 2]`` log-probabilities of the forced tokens the rows took (sum, least likely one).
        """
        st, gen = w.cache, w.gen
        m = logits.shape[0]
        forced = dict(forced or {})
        allowed = self._emit_ids(var, vids)
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
            sg = torch.full((m, 1), self.position[var.name], dtype=torch.long)
            last = st.feed(toks[:, None], newly.long()[:, None], 1, seg=sg)[:, -1].float()
        return out, torch.stack([f_sum, f_min], 1)


_ROLES = {
    "partial": Sampler._step_partial,
    "do": Sampler._step_do,
    "evidence": Sampler._step_evidence,
    "row_evidence": Sampler._step_row_evidence,
    "row_do": Sampler._step_row_do,
    "given": Sampler._step_given,
    "readout": Sampler._step_readout,
    "marginal": Sampler._step_marginal,
    "token": Sampler._step_token,
    "segment": Sampler._step_segment,
}

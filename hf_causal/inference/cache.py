"""The KV cache of one batch of sampled rows, shared between rows with identical histories."""

from __future__ import annotations

import torch

from ..attention import segment_keys
from ..mechanisms import Mechanism, MechanismCache, cached_forward, mechanism_forward
from ..modeling import base_of

__all__ = ["PrefixCache", "default_batch_size", "keep_slots", "unique_rows"]

CACHE_BUDGET_BYTES = 2 * 2**30
"""The key/value cache a default batch may fill on its longest row (2 GiB; rows that share a prefix share
it, so the real use is lower: alarm's deepest query at 20,000 rows peaked 0.6 GB above the model)."""
MAX_BATCH = 32768


def default_batch_size(model, vocab: int, row_tokens: int, streams: int) -> int:
    """Rows per batch: as many as the cache budget (:data:`CACHE_BUDGET_BYTES`) and a 200 MB logits
    buffer allow, at most :data:`MAX_BATCH`. Larger batches share more prefixes and pay the per-step
    overhead fewer times (measured in ``benchmarks/query_speed.py``); ``streams``: key columns per token
    (2 for mechanism attention).

    Example:
        >>> from transformers import GPT2Config, GPT2LMHeadModel
        >>> default_batch_size(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4)), 120, 74, 2)
        13981
    """
    base = base_of(model)
    cfg, size = base.config, next(base.parameters()).element_size()
    row_bytes = cfg.num_hidden_layers * 2 * streams * (row_tokens + 1) * cfg.hidden_size * size
    return int(max(64, min(MAX_BATCH, 2e8 // max(vocab, 1) // 4, CACHE_BUDGET_BYTES // row_bytes)))


def unique_rows(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


def keep_slots(old_of_group: torch.Tensor, n_old: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Slots for the new groups of rows when histories split: each old slot keeps its first group in
    place, the other groups get new slots after the old ones. Returns (the slot of each group, the old
    slot each new slot copies)."""
    g = len(old_of_group)
    first = torch.full((n_old,), g, dtype=torch.long).scatter_reduce_(0, old_of_group, torch.arange(g), reduce="amin")
    moved = first[old_of_group] != torch.arange(g)
    slot = old_of_group.clone()
    slot[moved] = n_old + torch.arange(int(moved.sum()))
    return slot, old_of_group[moved]


class PrefixCache:
    """KV-cache state of one batch of rows, with prefix sharing.

    Rows whose token histories are identical share one cache *slot*: each feed runs the model
    once per distinct (slot, new tokens) pair and broadcasts the logits back to the rows. With
    discrete variables early in the order most rows share few prefixes, so the cost follows the
    number of distinct histories, not the number of draws; with text or continuous values every
    row gets its own slot and this is the ordinary batched pass. Tokens can be masked out
    (holes) anywhere; positions skip them.

    Args:
        model: the causal LM.
        m: rows in the batch.
        device: where the model runs.
        share_prefixes: share slots between identical histories (exact; False: one slot per row).
        allowed: ``[n_vars + 1, n_vars + 1]`` bool, may a query in segment i attend to segment j
            (``attention: parents``); None: ordinary causal attention.
        mechanism: mechanism attention (``attention: local`` / ``two_stream``): the model's forward is
            :func:`~hf_causal.mechanisms.mechanism_forward` with a :class:`~hf_causal.mechanisms.MechanismCache`.
        max_tokens: the most tokens a row can reach (sizes the mechanism cache once; None: it grows).
    """

    def __init__(
        self,
        model,
        m: int,
        device,
        share_prefixes: bool = True,
        allowed: torch.Tensor | None = None,
        mechanism: Mechanism | None = None,
        max_tokens: int | None = None,
    ):
        self.model = model
        self.capacity = None if max_tokens is None else (m, max_tokens)
        self.allowed = allowed
        self.mechanism = mechanism
        self.seg = torch.zeros((1 if share_prefixes else m, 0), dtype=torch.long)
        self.device = device
        self.cache = None
        self.share = share_prefixes
        n_slots = 1 if share_prefixes else m
        self.inv = torch.zeros(m, dtype=torch.long) if share_prefixes else torch.arange(m)
        self.mask = torch.zeros((n_slots, 0), dtype=torch.long, device=device)
        self.n_real = torch.zeros(n_slots, dtype=torch.long, device=device)

    def _extend(self, src: torch.Tensor) -> None:
        """New slots after the old ones, copies of slots ``src``; the old slots stay where they are."""
        if self.cache is not None:
            self.cache.extend_slots(src.to(self.device))
        self.mask = torch.cat([self.mask, self.mask[src.to(self.device)]])
        self.n_real = torch.cat([self.n_real, self.n_real[src.to(self.device)]])
        self.seg = torch.cat([self.seg, self.seg[src]])

    def _select(self, slots: torch.Tensor) -> None:
        if self.cache is not None:
            self.cache.batch_select_indices(slots.to(self.device))
        self.mask = self.mask[slots]
        self.n_real = self.n_real[slots]
        self.seg = self.seg[slots.cpu()]

    def _bool_mask(self, q: int) -> torch.Tensor:
        """``[slots, q, L]``: the keys each of the ``q`` newest tokens reads (:func:`~hf_causal.attention.segment_keys`)."""
        k = self.mask.shape[1]
        if self.allowed is None:
            return segment_keys(None, None, None, self.mask, k - q, q=q)
        seg = torch.where(self.seg < 0, self.allowed.shape[0] - 1, self.seg)
        return segment_keys(self.allowed, seg[:, k - q :], seg, self.mask, k - q)

    def repeat_interleave(self, k: int) -> None:
        """Copy every row k times (rows i*k .. i*k+k-1 continue row i). With mechanism attention the
        cache is not copied, and the next feed must be the last."""
        n_slots = self.mask.shape[0]
        idx = torch.arange(n_slots).repeat_interleave(k)
        if self.cache is not None:  # the last feed: rows read their history by index
            self.cache.branch(k)
            self.mask, self.n_real, self.seg = (
                self.mask[idx.to(self.device)],
                self.n_real[idx.to(self.device)],
                self.seg[idx],
            )
        else:
            self._select(idx)
        self.inv = (self.inv[:, None] * k + torch.arange(k)[None, :]).reshape(-1)

    def feed(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: int = 1, seg: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Append ``ids`` ([rows, n], holes where ``mask`` is 0; ``seg`` the variable index of each token);
        return the last ``keep`` logits per row."""
        ids, mask = ids.cpu(), mask.cpu()
        seg = torch.zeros_like(ids) if seg is None else seg.cpu().expand_as(ids)
        if self.share:
            # rows whose history and new tokens agree share a slot; a slot whose rows now differ splits,
            # keeping one group in place and copying the cache for the others only
            rep, group = unique_rows(torch.cat([self.inv[:, None], ids * mask + mask], 1))
            slot, src = keep_slots(self.inv[rep], self.mask.shape[0])
            if len(src):
                self._extend(src)
            self.inv = slot[group]
            order = torch.empty(len(rep), dtype=torch.long).scatter_(0, slot, rep)
            ids, mask, seg = ids[order], mask[order], seg[order]
        self.seg = torch.cat([self.seg, seg], 1)
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (self.n_real[:, None] + mask.cumsum(1) - 1).clamp(min=0)
        self.mask = torch.cat([self.mask, mask], 1)
        if self.mechanism is not None:
            if self.cache is None:
                self.cache = MechanismCache(capacity=self.capacity)
            logits, self.cache = mechanism_forward(
                self.model, ids, seg.to(self.device), mask, self.mechanism, cache=self.cache, logits_to_keep=keep
            )
            self.n_real += mask.sum(1)
            return logits[self.inv.to(self.device)] if self.share else logits
        if self.cache is None:
            self.cache = MechanismCache(capacity=self.capacity, streams=1)
        logits = cached_forward(
            self.model, ids, pos, mask, self._bool_mask(ids.shape[1]), self.cache, logits_to_keep=keep
        )
        self.n_real += mask.sum(1)
        return logits[self.inv.to(self.device)] if self.share else logits

"""The KV cache of one batch of sampled rows, shared between rows with identical histories."""

from __future__ import annotations

import torch

from ..attention import segment_mask_4d
from ..mechanisms import Mechanism, MechanismCache, mechanism_forward

__all__ = ["PrefixCache", "unique_rows"]


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
    """

    def __init__(
        self,
        model,
        m: int,
        device,
        share_prefixes: bool = True,
        allowed: torch.Tensor | None = None,
        mechanism: Mechanism | None = None,
    ):
        self.model = model
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

    def _select(self, slots: torch.Tensor) -> None:
        if self.cache is not None:
            self.cache.batch_select_indices(slots.to(self.device))
        self.mask = self.mask[slots]
        self.n_real = self.n_real[slots]
        self.seg = self.seg[slots.cpu()]

    def _segment_mask(self, q: int) -> torch.Tensor:
        k = self.seg.shape[1]
        seg_k = torch.where(self.seg < 0, self.allowed.shape[0] - 1, self.seg)
        m = segment_mask_4d(self.allowed, seg_k[:, k - q :], seg_k, self.mask.cpu(), k - q)
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
            rep, row_to_slot = unique_rows(torch.cat([self.inv[:, None], ids * mask + mask], 1))
            self._select(self.inv[rep])
            self.inv = row_to_slot
            ids, mask, seg = ids[rep], mask[rep], seg[rep]
        self.seg = torch.cat([self.seg, seg], 1)
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (self.n_real[:, None] + mask.cumsum(1) - 1).clamp(min=0)
        self.mask = torch.cat([self.mask, mask], 1)
        if self.mechanism is not None:
            if self.cache is None:
                self.cache = MechanismCache()
            logits, self.cache = mechanism_forward(
                self.model, ids, seg.to(self.device), mask, self.mechanism, cache=self.cache, logits_to_keep=keep
            )
            self.n_real += mask.sum(1)
            return logits[self.inv.to(self.device)] if self.share else logits
        attn = self.mask if self.allowed is None else self._segment_mask(ids.shape[1])
        out = self.model(
            input_ids=ids, attention_mask=attn, position_ids=pos, cache=self.cache, use_cache=True, logits_to_keep=keep
        )
        self.cache = out.cache if hasattr(out, "cache") else out.past_key_values
        self.n_real += mask.sum(1)
        return out.logits[self.inv.to(self.device)] if self.share else out.logits

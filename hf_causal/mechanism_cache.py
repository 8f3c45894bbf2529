"""The sampler's key/value cache for mechanism attention (:mod:`hf_causal.mechanisms`) and its layout.

Each token has two key columns, its prediction-stream key at ``2j`` and its cross key (read by its
children) at ``2j + 1`` (:func:`_interleave`); the buffers are preallocated from the plan and appended in
place, and prefix sharing copies only the slots of a history that splits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["MechanismCache"]


def _interleave(a: torch.Tensor, b: torch.Tensor, keys: bool = True) -> torch.Tensor:
    """Keys or values ``[..., T, d]`` x 2 -> ``[..., 2T, d]`` with ``a``'s token j at 2j and ``b``'s at
    2j + 1 (the cache's layout); with ``keys=False``, masks ``[..., t, T]`` interleaved on the last axis."""
    return torch.stack([a, b], -2).flatten(-3, -2) if keys else torch.stack([a, b], -1).flatten(-2)


@dataclass
class _Branched:
    """Keys or values of a branched cache's last feed: each slot's history once, and every row's new ones."""

    history: torch.Tensor
    """``[slots, heads, history columns, head_dim]``."""
    new: torch.Tensor
    """``[slots * fanout, heads, new columns, head_dim]``: rows ``i * fanout ..`` continue slot ``i``."""
    fanout: int


class MechanismCache:
    """The sampler's cache: per layer, the keys and values of every token fed so far, in preallocated
    buffers ``[slots, heads, 2 * capacity, head_dim]`` that grow by doubling (so a step appends in place
    instead of copying the whole history). Token ``j``'s prediction-stream key (read by its own segment)
    sits at ``2j`` and its cross key (embedding-level or content-stream, read by children) at ``2j + 1``,
    so one strided view feeds one fused attention call. Also each token's segment, position within its
    segment and whether it is real (holes are masked out). With ``streams=1`` it is the cache of
    ordinary attention (:func:`cached_forward`): one key column per token.

    Prefix sharing changes the slots in two ways: :meth:`extend_slots` appends copies of some slots
    (a history that splits; the others stay where they are, nothing is copied for them) and
    :meth:`batch_select_indices` rebuilds the slots in any order (general, copies everything)."""

    def __init__(self, n_layers: int = 0, capacity: tuple[int, int] | None = None, streams: int = 2):
        self.streams = streams
        """Key columns per token: 2 (own and cross, mechanism attention) or 1 (ordinary attention)."""
        self.capacity = capacity
        """(most slots, most tokens) the walk can reach, to size the buffers once; None: grow as needed."""
        self.k: list[torch.Tensor | None] = [None] * n_layers
        self.v: list[torch.Tensor | None] = [None] * n_layers
        self.seg: torch.Tensor | None = None
        self.pos: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None
        self.branches: torch.Tensor | None = None
        """Set by :meth:`branch`: the cached slot each row continues; the next feed is the last."""
        self.n_slots = 0
        """Slots held. ``seg``, ``mask`` and ``pos`` have one row per slot, or a single row when every slot has
        the same layout (no holes, the same segments: a walk over single-token variables), which then
        stands for all of them and keeps the masks' work independent of the number of slots."""

    @property
    def length(self) -> int:
        return 0 if self.seg is None else self.seg.shape[1]

    @property
    def slots(self) -> int:
        return 0 if self.seg is None else self.n_slots

    @property
    def uniform(self) -> bool:
        """Every slot has the same layout (one row of ``seg``, ``mask``, ``pos`` stands for all)."""
        return self.seg is None or self.seg.shape[0] == 1

    def ready(self, n_layers: int) -> None:
        """Before a feed: one buffer pair per layer; a branched cache that had its last feed refuses."""
        if self.branches is not None and self.seg is None:
            raise RuntimeError("a branched cache has had its last feed")
        if len(self.k) != n_layers:
            self.k, self.v = [None] * n_layers, [None] * n_layers

    def record(self, seg: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, slots: int) -> None:
        """After a feed: every cached token's segment, realness and position, for each of ``slots`` slots or
        as one row for all (a branched cache is spent)."""
        if self.branches is not None:
            self.seg = None
        else:
            self.seg, self.mask, self.pos, self.n_slots = seg, mask, pos, slots

    def _reserve(self, i: int, like: torch.Tensor, slots: int, length: int) -> None:
        """Make layer ``i``'s buffers hold ``slots`` x ``length`` tokens (doubling), keeping what is there."""
        buf = self.k[i]
        s = self.streams
        if buf is not None and buf.shape[0] >= slots and buf.shape[2] >= s * length:
            return
        have_b, have_t = (0, 0) if buf is None else (buf.shape[0], buf.shape[2] // s)
        most_b, most_t = self.capacity or (slots, length)
        _, h, _, d = like.shape
        if buf is None and most_b * h * s * most_t * d * like.element_size() <= 2**30:
            # reserve the plan's whole capacity at once: pages are touched only when written, and growing
            # by doubling copied every slot each time (profiled: a tenth of insurance's deepest query)
            have_b = most_b
        cap_b = have_b if have_b >= slots else max(slots, min(2 * have_b, most_b))
        cap_t = have_t if have_t >= length else max(length, 2 * have_t, most_t, 8)
        n, t = self.slots, s * self.length
        for store in (self.k, self.v):
            new = torch.empty(cap_b, h, s * cap_t, d, dtype=like.dtype, device=like.device)
            if store[i] is not None:
                new[:n, :, :t] = store[i][:n, :, :t]
            store[i] = new

    def append(
        self,
        i: int,
        own: tuple[torch.Tensor, torch.Tensor],
        cross: tuple[torch.Tensor, torch.Tensor] | None = None,
        cols: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write layer ``i``'s new keys and values after the cached ones; return what to attend over:
        ``[slots, heads, 2 * (length + new), head_dim]`` interleaved as :func:`_interleave`, or only the
        key columns ``cols`` (the ones some query may read; they include every new token's). With
        ``streams=1`` there is no ``cross``."""
        b, t = own[0].shape[0], own[0].shape[2]
        lo, s = self.length, self.streams
        cross = cross or (None, None)
        pairs = [(self.k, own[0], cross[0]), (self.v, own[1], cross[1])]
        if self.branches is not None:  # the last feed of a branched cache: history by index, nothing stored
            n = int(self.branches.max()) + 1
            hist_cols = None if cols is None else cols[cols < s * lo]
            out = []
            for store, o, c in pairs:
                h = store[i][:n, :, : s * lo]
                h = h if hist_cols is None else h.index_select(2, hist_cols)
                out.append(_Branched(h, o if c is None else _interleave(o, c), len(self.branches) // n))
            return out[0], out[1]
        self._reserve(i, own[0], b, lo + t)
        for store, o, c in pairs:
            if s == 1:
                store[i][:b, :, lo : lo + t] = o
            else:
                store[i][:b, :, 2 * lo : 2 * (lo + t) : 2] = o
                store[i][:b, :, 2 * lo + 1 : 2 * (lo + t) : 2] = c
        keys, values = self.k[i][:b, :, : s * (lo + t)], self.v[i][:b, :, : s * (lo + t)]
        if cols is not None:
            keys, values = keys.index_select(2, cols), values.index_select(2, cols)
        return keys, values

    def extend_slots(self, src: torch.Tensor) -> None:
        """Append copies of slots ``src`` after the existing ones (which stay in place)."""
        if not len(src) or self.seg is None:
            return
        n, n_new, t = self.slots, self.slots + len(src), self.streams * self.length
        for i in range(len(self.k)):
            if self.k[i] is None:
                continue
            self._reserve(i, self.k[i], n_new, self.length)
            for store in (self.k, self.v):
                if 5 * t >= 2 * store[i].shape[2] and not store[i].requires_grad:  # whole rows: one gather
                    torch.index_select(store[i][:n], 0, src, out=store[i][n:n_new])
                else:
                    store[i][n:n_new, :, :t] = store[i][src, :, :t]
        self.n_slots = n_new
        if not self.uniform:
            self.seg = torch.cat([self.seg, self.seg[src]])
            self.pos = torch.cat([self.pos, self.pos[src]])
            self.mask = torch.cat([self.mask, self.mask[src]])

    def branch(self, k: int) -> None:
        """Continue every slot as ``k`` rows (slot i as rows i*k .. i*k+k-1) *without copying the cache*:
        the next feed reads each row's history through an index and is the last (for the sampler's
        exact sum over the values of the variable before the target)."""
        n = self.slots
        self.branches = torch.arange(n, device=self.seg.device).repeat_interleave(k)
        self.n_slots = len(self.branches)
        if not self.uniform:
            self.seg, self.pos, self.mask = self.seg[self.branches], self.pos[self.branches], self.mask[self.branches]

    def batch_select_indices(self, idx: torch.Tensor) -> None:
        """Rebuild the slots as ``idx`` (any order, repeats allowed): one gather, with room for 8 more tokens."""
        if self.seg is None:
            return
        if self.branches is not None:
            raise RuntimeError("a branched cache takes one last feed; it cannot be re-sliced")
        width = self.streams * (self.length + 8)
        for i in range(len(self.k)):
            for store in (self.k, self.v):
                if store[i] is not None:
                    store[i] = store[i][:, :, : min(width, store[i].shape[2])].index_select(0, idx)
        self.n_slots = len(idx)
        if not self.uniform:
            self.seg, self.pos, self.mask = self.seg[idx], self.pos[idx], self.mask[idx]

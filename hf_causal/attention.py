"""Attention masks over segments, shared by training (the collator) and inference (the sampler).

With ``attention: parents`` each variable's tokens attend only to their own segment and to their
parents' segments (and ``<eos>`` sees everything). Over several layers such masks compose: a
variable still depends on its *ancestors* through its parents' hidden states, never on an earlier
non-ancestor.

Example:
    >>> from hf_causal.graph import CausalGraph
    >>> g = CausalGraph.from_dict({"variables": {"Z": {"type": "categorical", "values": [0, 1]},
    ...     "A": {"type": "categorical", "values": [0, 1]}}, "edges": [["Z", "A"]]})
    >>> segment_attention_matrix(g).int().tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
"""

from __future__ import annotations

import torch

__all__ = ["ATTENTION_MODES", "segment_attention_matrix", "segment_mask_4d"]

ATTENTION_MODES = ("full", "parents", "local", "two_stream")
"""``full``: causal attention over everything earlier. ``parents``: a 4-D mask to the own and the
parents' segments (a variable still reads all its ancestors, through its parents' hidden states).
``local`` and ``two_stream``: predictions read only the parents (:mod:`hf_causal.mechanisms`)."""


def segment_attention_matrix(graph) -> torch.Tensor:
    """``A[i, j]``: may tokens of variable ``order[i]`` attend to tokens of ``order[j]``.

    True for the variable itself and its parents; the last row/column is ``<eos>`` (sees all).
    Since V is independent of its non-descendants given pa(V), nothing the true conditional needs is
    hidden, and spurious dependences on other branches cannot be learned.
    """
    names = list(graph.order)
    n = len(names)
    a = torch.eye(n + 1, dtype=torch.bool)
    for i, v in enumerate(names):
        for p in graph.parents(v):
            a[i, names.index(p)] = True
    a[n, :] = True
    return a


def segment_mask_4d(
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

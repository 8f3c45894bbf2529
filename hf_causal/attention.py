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

__all__ = [
    "ATTENTION_MODES",
    "AUTO_ATTENTION",
    "resolve_attention",
    "segment_attention_matrix",
    "segment_keys",
    "segment_mask_4d",
]

ATTENTION_MODES = ("full", "parents", "local", "two_stream")
"""``full``: causal attention over everything earlier. ``parents``: a 4-D mask to the own and the
parents' segments (a variable still reads all its ancestors, through its parents' hidden states).
``local`` and ``two_stream``: predictions read only the parents (:mod:`hf_causal.mechanisms`)."""

AUTO_ATTENTION = "auto"
"""A recipe's default: resolved per graph by :func:`resolve_attention` when training starts."""


def resolve_attention(mode: str, graph) -> str:
    """The attention ``mode`` means for ``graph``: ``auto`` is ``two_stream`` when a text variable is a
    parent of another variable, else ``local``; any other mode is itself.

    Both read only the parents. ``local`` reads a parent through its token embeddings, which is all a
    categorical or numeric value is; a text parent's meaning lies in its words in context, which
    ``two_stream`` reads through the text's own within-segment encoder (measured on the paper world:
    README, "Mechanism attention").

    Example:
        >>> from hf_causal.graph import CausalGraph
        >>> g = CausalGraph.from_dict({"variables": {"abstract": {"type": "text", "max_length": 8},
        ...     "accepted": {"type": "categorical", "values": [0, 1]}}, "edges": [["abstract", "accepted"]]})
        >>> resolve_attention("auto", g), resolve_attention("full", g)
        ('two_stream', 'full')
    """
    if mode != AUTO_ATTENTION:
        return mode
    text_parent = any(graph[p].type == "text" for v in graph.order for p in graph.parents(v))
    return "two_stream" if text_parent else "local"


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


def segment_keys(
    allowed: torch.Tensor | None,
    seg_q: torch.Tensor | None,
    seg_k: torch.Tensor | None,
    key_mask: torch.Tensor,
    q_offset: int,
    q: int | None = None,
) -> torch.Tensor:
    """``[B, q, k]`` bool: the keys each query reads. Causal, no padding keys (``key_mask`` 0), a query
    always sees itself, and with ``allowed`` a query in segment i sees only segments j with
    ``allowed[i, j]`` (its own and its parents'); ``allowed=None`` is ordinary causal attention (then
    ``q`` gives the number of queries). Computed on ``key_mask``'s device."""
    dev = key_mask.device
    q = seg_q.shape[1] if seg_q is not None else q
    k = key_mask.shape[1]
    qpos = torch.arange(q, device=dev)[:, None] + q_offset
    kpos = torch.arange(k, device=dev)[None, :]
    ok = key_mask.bool()[:, None, :] & (kpos <= qpos)[None]
    if allowed is not None:
        ok = ok & allowed.to(dev)[seg_q.to(dev)[:, :, None], seg_k.to(dev)[:, None, :]]
    return ok | (kpos == qpos)[None]


def segment_mask_4d(
    allowed: torch.Tensor,
    seg_q: torch.Tensor,
    seg_k: torch.Tensor,
    key_mask: torch.Tensor,
    q_offset: int,
    dtype=torch.float32,
) -> torch.Tensor:
    """Additive [B, 1, q, k] mask of :func:`segment_keys` (0 where a query reads a key, the dtype's
    minimum elsewhere), for the model's own forward in training."""
    ok = segment_keys(allowed, seg_q, seg_k, key_mask, q_offset)
    return torch.zeros(ok.shape, dtype=dtype, device=ok.device).masked_fill(~ok, torch.finfo(dtype).min)[:, None]

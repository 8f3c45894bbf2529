"""Attention whose predictions read only the parents: each variable's tokens are a mechanism of its parents.

With full attention a variable's prediction reads every earlier token; with the parents mask
(``attention: parents``) it reads its parents' tokens, but over several layers those tokens' hidden
states already carry *their* ancestors, so the conditional still depends on all ancestors. Under an
intervention that forces a value the data never showed with its ancestors (``X := x`` where the data
have ``X = f(S)``), that is extrapolation (method.md §3). Here cross-segment reads are one hop deep
at every layer, so the prediction of a variable's tokens is a function of its parents' tokens and its
own earlier tokens only, and an intervention needs the support of each parent configuration only, as
in a Bayesian network:

``local``       A token attends to its own segment with the layer's ordinary keys and values, and to
                its parents' segments with keys and values computed by the same layer from the
                parents' *token embeddings* (layer 0). No hidden state ever mixes two segments.
``two_stream``  As in XLNet: a content stream in which each segment attends only within itself, and
                the prediction stream, which reads its own segment and its parents' content streams
                at the same layer. Richer parent representations (a text parent is read through its
                own within-segment encoder) at about twice the compute.

Positions count from each segment's start token, so the length of an earlier non-parent segment (a
text, a move list) cannot leak into a prediction either. The weights are the model's own (GPT-2 or
BERT-as-decoder blocks, LoRA adapters included): only the forward pass differs, so saved folders are
ordinary checkpoints and ``causal_config.json`` records the mode.

The module holds the forward pass used by training (through the model classes below, so that the
Trainer, DDP and peft see ordinary ``transformers`` models; a training step computes only what its labels
read, :func:`mechanism_loss`) and by the sampler (with :class:`MechanismCache`, which supports prefix
sharing like the library's caches).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import BertLMHeadModel, GPT2LMHeadModel
from transformers.activations import NewGELUActivation
from transformers.pytorch_utils import Conv1D

from .mechanism_cache import MechanismCache, _Branched, _interleave
from .modeling import base_of

__all__ = [
    "MECHANISM_MODES",
    "Mechanism",
    "MechanismCache",
    "mechanism_forward",
    "mechanism_loss",
    "cached_forward",
    "segment_positions",
    "mechanism_class",
]

MECHANISM_MODES = ("local", "two_stream")


@dataclass
class Mechanism:
    """What the forward pass needs besides the weights: the mode and which segment may read which."""

    mode: str
    allowed: torch.Tensor
    """``[n_vars + 1, n_vars + 1]`` bool: may segment i read segment j (parents; the last row is ``<eos>``)."""


def segment_positions(
    seg: torch.Tensor, mask: torch.Tensor, prev_seg: torch.Tensor | None = None, prev_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Each token's position within its segment: how many real tokens of the same segment come before it
    (in ``prev_*``, the tokens already in the cache, and earlier in this chunk)."""
    same = (seg[:, :, None] == seg[:, None, :]) & mask.bool()[:, None, :]
    before = torch.tril(torch.ones(seg.shape[1], seg.shape[1], dtype=torch.bool, device=seg.device), -1)
    pos = (same & before).sum(-1)
    if prev_seg is not None and prev_seg.shape[1]:
        pos = pos + ((seg[:, :, None] == prev_seg[:, None, :]) & prev_mask.bool()[:, None, :]).sum(-1)
    return pos


# --- the two architectures -------------------------------------------------------------------------------
class _GPT2:
    def __init__(self, base):
        self.base, self.tr = base, base.transformer
        self.layers = list(self.tr.h)
        attn = self.layers[0].attn
        self.heads, self.dim = attn.num_heads, attn.embed_dim

    def embed(self, ids, pos):
        return self.tr.drop(self.tr.wte(ids) + self.tr.wpe(pos))

    def kv_q(self, i, x):
        blk = self.layers[i]
        return blk.attn.c_attn(blk.ln_1(x)).split(self.dim, dim=2)  # q, k, v

    def kv(self, i, x):
        """Keys and values only (local cross keys read no query): a third fewer FLOPs for plain GPT-2."""
        blk = self.layers[i]
        proj = blk.attn.c_attn
        if type(proj) is not Conv1D:  # LoRA-wrapped: the module's own forward
            return self.kv_q(i, x)[1:]
        y = torch.addmm(proj.bias[self.dim :], blk.ln_1(x).flatten(0, 1), proj.weight[:, self.dim :])
        return y.view(*x.shape[:2], 2 * self.dim).split(self.dim, dim=2)

    def scaling(self, i):
        return self.layers[i].attn.scaling

    def attn_dropout(self, i):
        return self.layers[i].attn.attn_dropout

    def finish(self, i, x, ctx):
        blk = self.layers[i]
        h = x + blk.attn.resid_dropout(blk.attn.c_proj(ctx))
        return h + self._mlp(blk.mlp, blk.ln_2(h))

    @staticmethod
    def _mlp(mlp, x):
        if type(mlp.act) is NewGELUActivation:  # the same tanh GELU, fused (its Python form is 5 kernels)
            return mlp.dropout(mlp.c_proj(nn.functional.gelu(mlp.c_fc(x), approximate="tanh")))
        return mlp(x)

    def head(self, h):
        return self.base.lm_head(self.tr.ln_f(h))


class _Bert:
    def __init__(self, base):
        self.base, self.bert = base, base.bert
        self.layers = list(self.bert.encoder.layer)
        att = self.layers[0].attention.self
        self.heads, self.dim = att.num_attention_heads, att.all_head_size

    def embed(self, ids, pos):
        return self.bert.embeddings(input_ids=ids, position_ids=pos, token_type_ids=torch.zeros_like(ids))

    def kv_q(self, i, x):
        att = self.layers[i].attention.self
        return att.query(x), att.key(x), att.value(x)

    def kv(self, i, x):
        att = self.layers[i].attention.self
        return att.key(x), att.value(x)

    def scaling(self, i):
        return self.layers[i].attention.self.scaling

    def attn_dropout(self, i):
        return self.layers[i].attention.self.dropout

    def finish(self, i, x, ctx):
        layer = self.layers[i]
        a = layer.attention.output(ctx, x)
        return layer.output(layer.intermediate(a), a)

    def head(self, h):
        return self.base.cls(h)


def _arch(base):
    if hasattr(base, "transformer"):
        return _GPT2(base)
    if hasattr(base, "bert"):
        return _Bert(base)
    raise TypeError(f"mechanism attention supports GPT-2 and BERT models, not {type(base).__name__}")


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, t, d = x.shape
    return x.view(b, t, heads, d // heads).transpose(1, 2)


def _own_reads(q_seg, q_at, k_seg, k_at, k_real) -> torch.Tensor:
    """``[B, q, k]`` bool: a query reads its own segment's real keys up to its own position, and itself
    (so a padding query has a key). ``*_at``: positions in the row (``[B or 1, n]``), ``k_real``: ``[B, k]``."""
    q_at, k_at = q_at[:, :, None], k_at[:, None, :]
    return ((q_seg[:, :, None] == k_seg[:, None, :]) & (k_at <= q_at) & k_real[:, None, :]) | (k_at == q_at)


def _cross_reads(q_seg, q_at, k_seg, k_at, k_real, allowed) -> torch.Tensor:
    """``[B, q, k]`` bool: a query reads its parents' real keys before it (``allowed``: may segment i read j)."""
    parent = allowed[q_seg[:, :, None], k_seg[:, None, :]] & (q_seg[:, :, None] != k_seg[:, None, :])
    return parent & (k_at[:, None, :] < q_at[:, :, None]) & k_real[:, None, :]


def _merge_heads(out: torch.Tensor) -> torch.Tensor:
    """``[B, heads, t, head_dim]`` -> ``[B, t, hidden]``."""
    b, h, t, d = out.shape
    return out.transpose(1, 2).reshape(b, t, h * d)


def _attend_branched(q, k: _Branched, v: _Branched, mask, scale):
    """Attention of rows that continue a shared history (:meth:`MechanismCache.branch`): the ``fanout`` rows
    of a slot read its history side by side as one block of queries, instead of each row reading a copy
    of it, and the two parts share one softmax. ``mask``: ``[rows, 1, t, history + new columns]``."""
    rows, heads, t, d = q.shape
    n, f, nh = k.history.shape[0], k.fanout, k.history.shape[2]

    def fold(x):  # [rows, H, t, c] -> [slots, H, fanout * t, c]
        return x.view(n, f, heads, t, -1).transpose(1, 2).reshape(n, heads, f * t, -1)

    def unfold(x):  # the inverse
        return x.view(n, heads, f, t, -1).transpose(1, 2).reshape(rows, heads, t, -1)

    scores = torch.cat([unfold(fold(q) @ k.history.transpose(-1, -2)), q @ k.new.transpose(-1, -2)], -1)
    p = torch.softmax((scores * scale).masked_fill(~mask, float("-inf")), -1)
    return _merge_heads(unfold(fold(p[..., :nh]) @ v.history) + p[..., nh:] @ v.new)


def _attend(q, k, v, mask, scale, dropout):
    """Attention over own-segment and parent keys, interleaved (:func:`_interleave`), in one fused call."""
    if isinstance(k, _Branched):  # sampling only: no dropout
        return _attend_branched(q, k, v, mask, scale)
    if q.shape[2] <= 8 and not torch.is_grad_enabled() and not (dropout.training and dropout.p > 0):
        # a sampling step (a few new tokens per slot, thousands of slots): the fused kernel's per-batch
        # overhead dominates such small products; plain matmuls are about twice as fast on CPU (measured)
        scores = (q @ k.transpose(-1, -2) * scale).masked_fill(~mask, float("-inf"))
        return _merge_heads(torch.softmax(scores, -1) @ v)
    p = dropout.p if dropout.training else 0.0
    return _merge_heads(nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, scale=scale))


def mechanism_forward(
    model,
    input_ids: torch.Tensor,
    segments: torch.Tensor,
    key_mask: torch.Tensor,
    mechanism: Mechanism,
    cache: MechanismCache | None = None,
    logits_to_keep: int = 0,
) -> tuple[torch.Tensor, MechanismCache | None]:
    """Logits of ``input_ids`` (``[B, T]``; ``segments``: the variable index of each token, the number of
    variables for ``<eos>``; ``key_mask``: 1 for real tokens, 0 for padding or holes) under
    mechanism attention. With ``cache``, the tokens continue the cached ones and the cache is extended.
    ``logits_to_keep``: only the last so many positions' logits (0: all)."""
    base = base_of(model)
    arch = _arch(base)
    if cache is not None:
        cache.ready(len(arch.layers))
    dev = input_ids.device
    allowed = mechanism.allowed.to(dev)
    key_mask = key_mask.to(dev).long()
    segments = segments.to(dev)
    prev_len = cache.length if cache is not None else 0
    prev_seg = cache.seg if cache is not None and prev_len else None
    prev_mask = cache.mask if cache is not None and prev_len else None
    prev_pos = cache.pos if cache is not None and prev_len else None
    n_rows = segments.shape[0]
    # one layout for every row (no holes, the same segments, a uniform cache): the masks are built on one row
    uniform = cache is not None and cache.uniform and bool(key_mask.all()) and bool((segments == segments[:1]).all())
    if uniform:
        segments, key_mask = segments[:1], key_mask[:1]
    elif prev_seg is not None and prev_seg.shape[0] != n_rows:  # a uniform cache meets rows that differ
        prev_seg, prev_mask, prev_pos = (x.expand(n_rows, -1) for x in (prev_seg, prev_mask, prev_pos))
    pos = segment_positions(segments, key_mask, prev_seg, prev_mask)
    all_seg = segments if prev_seg is None else torch.cat([prev_seg, segments], 1)
    all_mask = key_mask if prev_mask is None else torch.cat([prev_mask, key_mask], 1)
    t_new, t_all = segments.shape[1], all_seg.shape[1]
    qpos = torch.arange(prev_len, prev_len + t_new, device=dev)[None]
    kpos = torch.arange(t_all, device=dev)[None]
    real = all_mask.bool()
    m_own = _own_reads(segments, qpos, all_seg, kpos, real)[:, None]
    m_cross = _cross_reads(segments, qpos, all_seg, kpos, real, allowed)[:, None]
    mask = _interleave(m_own, m_cross, keys=False)
    if mechanism.mode == "two_stream":  # the content stream reads its own segment's content (odd) keys
        c_mask = _interleave(torch.zeros_like(m_own), m_own, keys=False)
    cols = None
    if cache is not None:  # attend over the key columns some query reads (a mechanism reads few of them)
        needed = (mask | c_mask) if mechanism.mode == "two_stream" else mask
        needed = needed.flatten(0, 2).any(0)
        needed[2 * prev_len :] = True
        if int(needed.sum()) < 0.75 * needed.numel():
            cols = needed.nonzero()[:, 0]
            mask = mask[..., cols]
            if mechanism.mode == "two_stream":
                c_mask = c_mask[..., cols]

    h0 = arch.embed(input_ids, pos.expand(n_rows, -1))
    h = h0
    c = h0  # the content stream (two_stream); for local, cross keys come from h0 at every layer
    for i in range(len(arch.layers)):
        q, k, v = arch.kv_q(i, h)
        own = (_split(k, arch.heads), _split(v, arch.heads))
        if mechanism.mode == "local":  # at layer 0 the stream is h0: its keys are the cross keys
            kc, vc = (k, v) if i == 0 else arch.kv(i, h0)
        else:
            qc, kc, vc = arch.kv_q(i, c)
        cross = (_split(kc, arch.heads), _split(vc, arch.heads))
        scale, drop = arch.scaling(i), arch.attn_dropout(i)
        if cache is not None:
            keys, values = cache.append(i, own, cross, cols)
        else:
            keys, values = _interleave(own[0], cross[0]), _interleave(own[1], cross[1])
        ctx = _attend(_split(q, arch.heads), keys, values, mask, scale, drop)
        if mechanism.mode == "two_stream" and i < len(arch.layers) - 1:  # the last layer's content is read by no one
            c = arch.finish(i, c, _attend(_split(qc, arch.heads), keys, values, c_mask, scale, drop))
        h = arch.finish(i, h, ctx)
    if cache is not None:
        cache.record(all_seg, all_mask, pos if prev_pos is None else torch.cat([prev_pos, pos], 1), n_rows)
    if logits_to_keep:
        h = h[:, -logits_to_keep:]
    return arch.head(h), cache


def _positions(need: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``need`` ``[B, T]`` bool -> the needed positions of each row, in order, ``[B, n]`` (n: the most any row
    needs; rows with fewer are padded with unneeded positions), and which of them are needed."""
    n = max(int(need.sum(1).max()), 1)
    idx = torch.argsort((~need).to(torch.int8), dim=1, stable=True)[:, :n]
    return idx, need.gather(1, idx)


def _last_position(segments: torch.Tensor, hit: torch.Tensor, n_segments: int) -> torch.Tensor:
    """``[B, n_segments]``: per row, the last position of ``hit`` in each segment (-1: none)."""
    t = torch.arange(segments.shape[1], device=segments.device).expand_as(segments)
    out = torch.full((segments.shape[0], n_segments), -1, dtype=torch.long, device=segments.device)
    return out.scatter_reduce(1, segments, torch.where(hit, t, -1), "amax")


def mechanism_loss(
    model,
    input_ids: torch.Tensor,
    segments: torch.Tensor,
    key_mask: torch.Tensor,
    mechanism: Mechanism,
    labels: torch.Tensor,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """The training loss of :func:`mechanism_forward` (mean cross-entropy of ``labels[:, 1:]`` at the positions
    before them), computing each stream only at the tokens the labelled predictions depend on.

    A labelled prediction at a token of segment ``s`` reads the prediction stream of ``s``'s earlier tokens and,
    through the cross keys, the content (``two_stream``) or embeddings (``local``) of ``s``'s parents' tokens,
    which read only their own segments' earlier content. So the prediction stream runs on the segments that
    hold a labelled prediction (with ``loss_variables``, those variables only) and the content stream on the
    segments some of them read: the loss equals the dense forward's to float precision (a test checks it)
    while, e.g., a text parent with ``loss_variables: [keyword, accepted]`` runs one stream, not two.
    ``num_items_in_batch`` (the Trainer's count of labels over the accumulated micro-batches and processes):
    the summed loss over it, so gradient accumulation and several processes give the full batch's mean."""
    base = base_of(model)
    arch = _arch(base)
    dev = input_ids.device
    allowed = mechanism.allowed.to(dev)
    n_seg = allowed.shape[0]
    real = key_mask.to(dev).bool()
    segments = segments.to(dev)
    pos = segment_positions(segments, real.long())
    target = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], -100)], 1)
    t = torch.arange(segments.shape[1], device=dev).expand_as(segments)
    # the prediction stream: every token of a segment up to its last labelled prediction
    need_h = real & (t <= _last_position(segments, target != -100, n_seg).gather(1, segments))
    # the cross keys: a parent's tokens before the last prediction-stream token that reads them
    others = torch.arange(n_seg, device=dev) != segments[:, :, None]
    reads = allowed[segments] & others & need_h[:, :, None]  # [B, T, segments]: token t reads segment j's
    last_read = torch.where(reads, t[:, :, None], -1).amax(1)
    need_c = real & (t < last_read.gather(1, segments))
    ih, vh = _positions(need_h)
    ic, vc = _positions(need_c)
    seg_h, seg_c = segments.gather(1, ih), segments.gather(1, ic)
    own_h = _own_reads(seg_h, ih, seg_h, ih, vh)
    mask_h = torch.cat([own_h, _cross_reads(seg_h, ih, seg_c, ic, vc, allowed)], -1)[:, None]
    mask_c = _own_reads(seg_c, ic, seg_c, ic, vc)[:, None]
    h = arch.embed(input_ids.gather(1, ih), pos.gather(1, ih))
    c0 = c = arch.embed(input_ids.gather(1, ic), pos.gather(1, ic))
    for i in range(len(arch.layers)):
        q, k, v = arch.kv_q(i, h)
        if mechanism.mode == "local":
            kc, vc_ = arch.kv(i, c0)
        else:
            qc, kc, vc_ = arch.kv_q(i, c)
        kc, vc_ = _split(kc, arch.heads), _split(vc_, arch.heads)
        keys = torch.cat([_split(k, arch.heads), kc], 2)
        values = torch.cat([_split(v, arch.heads), vc_], 2)
        scale, drop = arch.scaling(i), arch.attn_dropout(i)
        ctx = _attend(_split(q, arch.heads), keys, values, mask_h, scale, drop)
        if mechanism.mode == "two_stream" and i < len(arch.layers) - 1:  # the last layer's content is read by no one
            c = arch.finish(i, c, _attend(_split(qc, arch.heads), kc, vc_, mask_c, scale, drop))
        h = arch.finish(i, h, ctx)
    logits = arch.head(h)
    y = target.gather(1, ih).masked_fill(~vh, -100)
    return _token_loss(logits, y, num_items_in_batch)


def _token_loss(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """Cross-entropy over the labelled positions: their mean, or their sum over ``num_items_in_batch``."""
    flat = logits.reshape(-1, logits.shape[-1]).float()
    if num_items_in_batch is None:
        return nn.functional.cross_entropy(flat, labels.reshape(-1), ignore_index=-100)
    total = nn.functional.cross_entropy(flat, labels.reshape(-1), ignore_index=-100, reduction="sum")
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch


def cached_forward(
    model,
    input_ids: torch.Tensor,
    position_ids: torch.Tensor,
    key_mask: torch.Tensor,
    attn_mask: torch.Tensor,
    cache: MechanismCache,
    logits_to_keep: int = 0,
) -> torch.Tensor:
    """Logits of ``input_ids`` (``[B, t]``) continuing ``cache`` (``streams=1``) with *ordinary* attention,
    through the model's own blocks (GPT-2 or BERT-as-decoder, LoRA included): the sampler's path for
    ``attention: full`` and ``parents``. ``attn_mask``: ``[B, t, L + t]`` bool, which keys each new token
    reads (causal, holes out, and for ``parents`` only the allowed segments); ``key_mask``: ``[B, t]``, 1
    for real tokens. The cache appends in place instead of concatenating the whole history each step."""
    base = base_of(model)
    arch = _arch(base)
    cache.ready(len(arch.layers))
    h = arch.embed(input_ids, position_ids)
    mask = attn_mask[:, None]
    for i in range(len(arch.layers)):
        q, k, v = arch.kv_q(i, h)
        keys, values = cache.append(i, (_split(k, arch.heads), _split(v, arch.heads)))
        ctx = _attend(_split(q, arch.heads), keys, values, mask, arch.scaling(i), arch.attn_dropout(i))
        h = arch.finish(i, h, ctx)
    real = key_mask.long()
    if cache.seg is not None:  # a cache of one slot (one row for all) may have been extended since
        real = torch.cat([cache.seg.expand(real.shape[0], -1), real], 1)
    cache.record(real, real, real, real.shape[0])  # ordinary attention needs only which tokens are real (and how many)
    if logits_to_keep:
        h = h[:, -logits_to_keep:]
    return arch.head(h)


# --- model classes: ordinary checkpoints whose forward takes segment_ids --------------------------------
class _MechanismMixin:
    """``forward(..., segment_ids=...)`` runs mechanism attention (``self.mechanism``); without
    ``segment_ids`` the model is the ordinary one."""

    mechanism: Mechanism | None = None

    def forward(
        self, input_ids=None, attention_mask=None, labels=None, segment_ids=None, num_items_in_batch=None, **kwargs
    ):
        # ``num_items_in_batch``: the Trainer passes it because this forward takes **kwargs, and then no longer
        # divides the loss by the accumulation steps (nor averages it over processes): the loss must be the
        # sum over it, as the library's own causal-LM loss is
        if segment_ids is None or self.mechanism is None:
            if num_items_in_batch is not None:
                kwargs["num_items_in_batch"] = num_items_in_batch
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        from transformers.modeling_outputs import CausalLMOutput

        n = self.mechanism.allowed.shape[0] - 1
        seg = torch.where(segment_ids < 0, n, segment_ids)
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        if labels is not None and self.training:  # a training step needs the loss only: the sparse streams
            return CausalLMOutput(
                loss=mechanism_loss(self, input_ids, seg, mask, self.mechanism, labels, num_items_in_batch)
            )
        logits, _ = mechanism_forward(self, input_ids, seg, mask, self.mechanism)
        loss = None if labels is None else _token_loss(logits[:, :-1], labels[:, 1:], num_items_in_batch)
        return CausalLMOutput(loss=loss, logits=logits)


class GPT2WithMechanisms(_MechanismMixin, GPT2LMHeadModel):
    """GPT-2 whose forward takes ``segment_ids`` (mechanism attention); the weights are GPT-2's."""


class BertWithMechanisms(_MechanismMixin, BertLMHeadModel):
    """BERT-as-decoder whose forward takes ``segment_ids`` (mechanism attention); the weights are BERT's."""


def mechanism_class(architecture: str):
    """The model class of ``architecture`` (``gpt2`` or ``bert``) whose forward takes ``segment_ids``."""
    return GPT2WithMechanisms if architecture == "gpt2" else BertWithMechanisms

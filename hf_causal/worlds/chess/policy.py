"""The behaviour policy's tables (a softmax over distance to mate mixed with random moves) and the win values under it."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .movegen import _PAD, N
from .tablebase import tables


@functools.lru_cache(maxsize=4)
def _policy_tables(
    material: str, tau_white: float, eps_white: float, tau_black: float, eps_black: float, draw_plies: int
) -> tuple[np.ndarray, np.ndarray]:
    """The behaviour policy of :class:`ChessWorld` for every state (read-only, shared by equal worlds)."""
    t = tables(material)
    out = []
    for succ, dtm, sign, tau, eps in (
        (t.succ_w, t.dtm_b, -1.0, tau_white, eps_white),
        (t.succ_b, t.dtm_w, 1.0, tau_black, eps_black),
    ):
        ext = np.concatenate([dtm, [-1, -1]]).astype(np.float64)
        ext[ext < 0] = draw_plies  # not a forced win: a draw
        rows = np.flatnonzero((succ != _PAD).any(1))
        p = np.zeros(succ.shape)
        p[rows] = _mix(sign * ext[succ[rows]] / tau, succ[rows] != _PAD, eps)
        p.flags.writeable = False
        out.append(p)
    return out[0], out[1]


@functools.lru_cache(maxsize=4)
def _win_value_table(material: str, max_plies: int, *policy: Any) -> np.ndarray:
    """P(win | Black to move in s with ``max_plies - 1`` plies left) for every s, by backward induction.

    Index ``N`` (padding) and ``N + 1`` (capture) hold 0, a mated state 1. Only the chain of
    sides that ends at Black with ``max_plies - 1`` plies left is computed.
    """
    t, (pw, pb) = tables(material), _policy_tables(material, *policy)
    rw = np.flatnonzero(t.legal_w & (t.succ_w != _PAD).any(1))
    rb = np.flatnonzero(t.legal_b & (t.succ_b != _PAD).any(1))  # not mated, not stalemated
    sw, pw_, sb, pb_ = t.succ_w[rw], pw[rw], t.succ_b[rb], pb[rb]
    vb = np.concatenate([t.mate_b, [False, False]]).astype(np.float64)  # 0 plies left
    vw = np.zeros(N + 2)
    last = max_plies - 1
    for r in range(1, last + 1):
        if (last - r) % 2 == 0:
            vb[rb] = (pb_ * vw[sb]).sum(1)
        else:
            vw[rw] = (pw_ * vb[sw]).sum(1)
    vb.flags.writeable = False
    return vb


def _mix(score: np.ndarray, valid: np.ndarray, eps: float) -> np.ndarray:
    """``(1 - eps) softmax(score) + eps uniform`` over the valid entries of each row (0 elsewhere)."""
    s = np.where(valid, score, -np.inf)
    top = s.max(1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    e = np.where(valid, np.exp(s - top), 0.0)
    z = e.sum(1, keepdims=True)
    cnt = valid.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (1 - eps) * e / z + eps * valid / cnt
    return np.where(valid, np.nan_to_num(p), 0.0)

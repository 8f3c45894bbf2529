"""Error measures for causal estimates (plain functions; evaluate is in maintenance mode).

Example:
    >>> tv_distance({"a": 0.5, "b": 0.5}, {"a": 0.7, "b": 0.3})
    0.2
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["tv_distance", "kl_divergence", "ate_error", "pehe", "att_relative_error", "interval_coverage"]


def _aligned(p: Mapping, q: Mapping) -> tuple[np.ndarray, np.ndarray]:
    keys = list(dict.fromkeys(list(p) + list(q)))
    sp, sq = {str(k): v for k, v in p.items()}, {str(k): v for k, v in q.items()}
    return (np.array([float(sp.get(str(k), 0.0)) for k in keys]), np.array([float(sq.get(str(k), 0.0)) for k in keys]))


def tv_distance(p: Mapping, q: Mapping) -> float:
    """Total variation distance 1/2 sum |p - q| between two distributions given as {value: prob}."""
    a, b = _aligned(p, q)
    return round(float(0.5 * np.abs(a - b).sum()), 12)


def kl_divergence(p: Mapping, q: Mapping, eps: float = 1e-12) -> float:
    """KL(p || q) in nats."""
    a, b = _aligned(p, q)
    m = a > 0
    return float(np.sum(a[m] * (np.log(a[m]) - np.log(np.maximum(b[m], eps)))))


def ate_error(estimate: float, truth: float) -> float:
    """|estimate - truth|."""
    return abs(float(estimate) - float(truth))


def pehe(cate_hat: Sequence[float], cate_true: Sequence[float]) -> float:
    """sqrt(mean((tau_hat - tau)^2)): precision in estimating heterogeneous effects."""
    a, b = np.asarray(cate_hat, float), np.asarray(cate_true, float)
    return float(math.sqrt(np.mean((a - b) ** 2)))


def att_relative_error(estimate: float, truth: float) -> float:
    """|ATT_hat - ATT| / |ATT| (the PeerRead metric)."""
    if truth == 0:
        raise ValueError("relative error is undefined for a true ATT of 0")
    return abs(float(estimate) - float(truth)) / abs(float(truth))


def interval_coverage(lows: Sequence[float], highs: Sequence[float], truths: Sequence[float] | float) -> float:
    """Fraction of intervals [low, high] that contain the truth."""
    lo, hi = np.asarray(lows, float), np.asarray(highs, float)
    t = np.broadcast_to(np.asarray(truths, float), lo.shape)
    return float(np.mean((lo <= t) & (t <= hi)))

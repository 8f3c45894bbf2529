"""What the engine returns: a :class:`Distribution` or an :class:`Estimate`, both JSON-serialisable."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..interventions import PartialSequence

__all__ = ["Distribution", "Estimate", "jsonable", "Z95"]

Z95 = 1.959963984540054
_SE_NOTE = "null: a standard error needs at least 2 Monte Carlo draws"


def jsonable(v: Any) -> Any:
    """Numpy scalars, partial interventions and tuples as plain JSON values; NaN and infinities as
    None (strict JSON has no NaN), so that ``json.dumps(..., allow_nan=False)`` always works."""
    if isinstance(v, PartialSequence):
        return {"partial": v.to_dict()}
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


def fmt_values(d: Mapping[str, Any]) -> str:
    """``a=1, b=x``: the values of a do/given mapping, for labels."""
    return ", ".join(f"{k}={v}" for k, v in d.items())


def effect_label(
    estimand: str, outcome: str, treatment: str, treated: Any, control: Any, given: str = "", method: str = ""
) -> str:
    """The formula an effect estimates (``estimand``: ATE, ATT or CATE; ``method`` names the estimator, if not
    the plug-in): the ATT in potential outcomes (it averages over the treated units, which ``E[Y | do(T=t)]``
    would not say), the others as a difference of interventional means.

    Example:
        >>> effect_label("ATT", "y", "t", 1, 0, method="doubly robust, AIPW")
        'ATT (doubly robust, AIPW): E[y(t=1) - y(t=0) | t=1]'
        >>> effect_label("CATE", "y", "t", 1, 0, "age=old")
        'CATE: E[y | do(t=1), age=old] - E[y | do(t=0), age=old]'
    """
    name = f"{estimand} ({method})" if method else estimand
    if estimand == "ATT":
        return f"{name}: E[{outcome}({treatment}={treated}) - {outcome}({treatment}={control}) | {treatment}={treated}]"
    g = f", {given}" if given else ""
    return f"{name}: E[{outcome} | do({treatment}={treated}){g}] - E[{outcome} | do({treatment}={control}){g}]"


@dataclass
class Distribution:
    """P(target | do, given) with a standard error per value.

    ``se`` is the total standard error: for one model the Monte Carlo error only
    (``interval_kind="monte_carlo_only"``), for an ensemble estimation and Monte Carlo error
    (``"estimation+monte_carlo"``; see :mod:`hf_causal.inference.uncertainty`). A 95% interval is
    ``p ± t_quantile * se``.
    """

    target: str
    probs: dict[Any, float]
    se: dict[Any, float]
    n_samples: int
    seed: int
    do: dict[str, Any] = field(default_factory=dict)
    given: dict[str, Any] = field(default_factory=dict)
    confounder_source: str = "model"
    diagnostics: dict[str, Any] = field(default_factory=dict)
    se_monte_carlo: dict[Any, float] | None = None
    se_estimation: dict[Any, float] | None = None
    interval_kind: str = "monte_carlo_only"
    members: int = 1
    t_quantile: float = Z95

    def interval(self, value: Any) -> tuple[float, float]:
        """The 95% interval of P(target = value)."""
        p, s = self.probs[value], self.se[value]
        return (p - self.t_quantile * s, p + self.t_quantile * s)

    def to_dict(self) -> dict[str, Any]:
        def entry(k):
            d = {"p": self.probs[k], "se": self.se[k]}
            if self.se_monte_carlo is not None:
                d["se_monte_carlo"] = self.se_monte_carlo[k]
            if self.se_estimation is not None:
                d["se_estimation"] = self.se_estimation[k]
            lo, hi = self.interval(k)
            d["ci_low"], d["ci_high"] = lo, hi
            return d

        out = {
            "target": self.target,
            "do": self.do,
            "given": self.given,
            "probabilities": {str(k): entry(k) for k in self.probs},
            "interval_kind": self.interval_kind,
            "members": self.members,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "confounder_source": self.confounder_source,
            "diagnostics": self.diagnostics,
        }
        if not all(math.isfinite(x) for x in self.se.values()):
            out["se_note"] = _SE_NOTE
        return jsonable(out)


@dataclass
class Estimate:
    """A point estimate with its standard error and 95% interval.

    ``se`` is the total standard error; ``se_monte_carlo`` and ``se_estimation`` are its parts and
    ``interval_kind`` says what the interval covers: ``monte_carlo_only`` (one model),
    ``estimation+monte_carlo`` (an ensemble) or ``influence_function`` (the doubly robust estimators).
    """

    estimand: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    n_samples: int
    seed: int
    confounder_source: str = "model"
    details: dict[str, Any] = field(default_factory=dict)
    se_monte_carlo: float | None = None
    se_estimation: float | None = None
    interval_kind: str = "monte_carlo_only"
    members: int = 1

    @classmethod
    def from_draws(cls, estimand: str, f: np.ndarray, seed: int, source: str, **details) -> Estimate:
        """The mean of per-context quantities ``f`` and its standard error sd(f)/sqrt(n)."""
        f = np.asarray(f, dtype=float)
        est = float(f.mean())
        se = float(f.std(ddof=1) / math.sqrt(len(f))) if len(f) > 1 else float("nan")
        return cls(estimand, est, se, est - Z95 * se, est + Z95 * se, len(f), seed, source, jsonable(details), se)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not math.isfinite(self.se):
            out["se_note"] = _SE_NOTE
        return jsonable(out)

    def __float__(self) -> float:
        return self.estimate

"""Synthetic structural causal models with exact answers by enumeration.

:class:`DiscreteSCM` holds a causal graph, a conditional probability function per discrete
variable, and optional Gaussian leaves (continuous variables whose parents are discrete).
Every interventional quantity of the engine has an exact counterpart here, computed by
summing the truncated factorisation over all configurations.

Example:
    >>> from hf_causal.worlds.demo import demo_world
    >>> w = demo_world()
    >>> p_do = w.distribution("recovery", do={"treatment": 1})
    >>> round(sum(p_do.values()), 6)
    1.0
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import GraphError, QueryError
from ..graph import CausalGraph

__all__ = ["DiscreteSCM"]

CPT = Callable[[Mapping[str, Any]], list[float]]


@dataclass
class DiscreteSCM:
    """A causal model over categorical/integer variables plus Gaussian continuous leaves.

    Args:
        graph: the causal graph (its variable specs declare the domains).
        cpts: ``{name: f(parent values) -> probabilities over graph[name].domain()}``.
        gaussians: ``{name: (mean_fn(parent values), sd)}`` for continuous variables with
            discrete parents and no children.
        name: the world's name.
        roles: the questions the demo asks of it (``hf_causal.demo``): ``outcome``, ``treatment``,
            ``treated``, ``control`` values and a ``subgroup`` mapping for the CATE.
    """

    graph: CausalGraph
    cpts: dict[str, CPT]
    gaussians: dict[str, tuple[Callable[[Mapping[str, Any]], float], float]] = field(default_factory=dict)
    name: str = "scm"
    roles: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for n, v in self.graph.variables.items():
            if n in self.gaussians:
                if v.type != "continuous" or self.graph.descendants(n):
                    raise GraphError(f"gaussian variable {n!r} must be a continuous leaf")
            elif n not in self.cpts:
                raise GraphError(f"variable {n!r} has no conditional probability function")
        self.discrete = [n for n in self.graph.order if n not in self.gaussians]

    # --- probabilities ------------------------------------------------------------------
    def _probs(self, name: str, values: Mapping[str, Any]) -> np.ndarray:
        p = np.asarray(self.cpts[name]({q: values[q] for q in self.graph.parents(name)}), dtype=float)
        if p.shape != (len(self.graph[name].domain()),) or abs(p.sum() - 1) > 1e-9 or (p < 0).any():
            raise GraphError(f"cpt of {name!r} returned invalid probabilities {p}")
        return p

    def joint(self, do: Mapping[str, Any] | None = None) -> list[tuple[dict[str, Any], float]]:
        """All discrete configurations with their probability under ``do`` (truncated factorisation)."""
        do = {k: self.graph[k].coerce(v) for k, v in (do or {}).items()}
        doms = [self.graph[n].domain() if n not in do else [do[n]] for n in self.discrete]
        out = []
        for combo in itertools.product(*doms):
            vals = dict(zip(self.discrete, combo))
            p = 1.0
            for n in self.discrete:
                if n in do:
                    continue
                p *= self._probs(n, vals)[self.graph[n].domain().index(vals[n])]
                if p == 0:
                    break
            if p > 0:
                out.append((vals, p))
        return out

    def _mean_of(self, target: str, vals: Mapping[str, Any], value_fn=None) -> float:
        if target in self.gaussians:
            mean_fn, _ = self.gaussians[target]
            return float(mean_fn({q: vals[q] for q in self.graph.parents(target)}))
        v = vals[target]
        return float(value_fn(v) if value_fn else v)

    def distribution(
        self, target: str, do: Mapping[str, Any] | None = None, given: Mapping[str, Any] | None = None
    ) -> dict[Any, float]:
        """Exact P(target | do, given) for a discrete target."""
        given = {k: self.graph[k].coerce(v) for k, v in (given or {}).items()}
        acc = {v: 0.0 for v in self.graph[target].domain()}
        for vals, p in self.joint(do):
            if all(vals[k] == v for k, v in given.items()):
                acc[vals[target]] += p
        z = sum(acc.values())
        if z == 0:
            raise QueryError(f"conditioning event {given} has probability zero")
        return {k: float(v / z) for k, v in acc.items()}

    def expectation(
        self, target: str, do: Mapping[str, Any] | None = None, given: Mapping[str, Any] | None = None
    ) -> float:
        """Exact E[target | do, given] (continuous leaves: by their conditional means)."""
        given = {k: self.graph[k].coerce(v) for k, v in (given or {}).items()}
        num = den = 0.0
        for vals, p in self.joint(do):
            if all(vals[k] == v for k, v in given.items()):
                num += p * self._mean_of(target, vals)
                den += p
        if den == 0:
            raise QueryError(f"conditioning event {given} has probability zero")
        return num / den

    def ate(self, outcome: str, treatment: str, treated: Any, control: Any) -> float:
        return self.expectation(outcome, {treatment: treated}) - self.expectation(outcome, {treatment: control})

    def cate(self, outcome: str, treatment: str, treated: Any, control: Any, given: Mapping[str, Any]) -> float:
        return self.expectation(outcome, {treatment: treated}, given) - self.expectation(
            outcome, {treatment: control}, given
        )

    def att(self, outcome: str, treatment: str, treated: Any, control: Any) -> float:
        """E[Y(treated) - Y(control) | treatment = treated], adjusting for the treatment's parents."""
        pa = self.graph.parents(treatment)
        treated = self.graph[treatment].coerce(treated)
        w: dict[tuple, float] = {}
        for vals, p in self.joint():
            if vals[treatment] == treated:
                key = tuple(vals[q] for q in pa)
                w[key] = w.get(key, 0.0) + p
        z = sum(w.values())
        return sum(
            (p / z) * self.cate(outcome, treatment, treated, control, dict(zip(pa, key))) for key, p in w.items()
        )

    def naive_distribution(self, target: str, treatment: str, value: Any) -> dict[Any, float]:
        """The confounded observational P(target | treatment = value)."""
        return self.distribution(target, given={treatment: value})

    def naive_expectation(self, target: str, treatment: str, value: Any) -> float:
        return self.expectation(target, given={treatment: value})

    def to_pgmpy(self, string_states: bool = False):
        """The discrete part as a pgmpy ``DiscreteBayesianNetwork`` (needs the ``pgmpy`` extra); with
        ``string_states`` the state names are strings, as in pgmpy's bundled networks."""
        from pgmpy.factors.discrete import TabularCPD
        from pgmpy.models import DiscreteBayesianNetwork

        bn = DiscreteBayesianNetwork([(a, b) for a, b in self.graph.edges if a in self.discrete and b in self.discrete])
        bn.add_nodes_from(self.discrete)
        for n in self.discrete:
            pa = self.graph.parents(n)
            doms = [self.graph[p].domain() for p in pa]
            cols = [self._probs(n, dict(zip(pa, combo))) for combo in itertools.product(*doms)]
            values = np.array(cols).T if cols else np.array([self._probs(n, {})]).T
            bn.add_cpds(
                TabularCPD(
                    n,
                    len(self.graph[n].domain()),
                    values,
                    evidence=pa or None,
                    evidence_card=[len(d) for d in doms] or None,
                    state_names={v: [str(x) if string_states else x for x in self.graph[v].domain()] for v in [n, *pa]},
                )
            )
        bn.check_model()
        return bn

    # --- sampling -----------------------------------------------------------------------
    def sample(self, n: int, seed: int = 0, do: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """``n`` i.i.d. rows (observational, or under ``do``), seeded."""
        rng = np.random.default_rng(seed)
        do = {k: self.graph[k].coerce(v) for k, v in (do or {}).items()}
        cols: dict[str, list] = {n_: [] for n_ in self.graph.order}
        cache: dict[tuple, np.ndarray] = {}
        for _ in range(n):
            vals: dict[str, Any] = {}
            for name in self.graph.order:
                if name in do:
                    vals[name] = do[name]
                elif name in self.gaussians:
                    mean_fn, sd = self.gaussians[name]
                    vals[name] = float(rng.normal(mean_fn({q: vals[q] for q in self.graph.parents(name)}), sd))
                else:
                    key = (name,) + tuple(vals[q] for q in self.graph.parents(name))
                    if key not in cache:
                        cache[key] = np.cumsum(self._probs(name, vals))
                    dom = self.graph[name].domain()
                    vals[name] = dom[min(int(np.searchsorted(cache[key], rng.random(), side="right")), len(dom) - 1)]
                cols[name].append(vals[name])
        return pd.DataFrame(cols)

    # --- the third rung -----------------------------------------------------------------
    def counterfactual(
        self,
        row: Mapping[str, Any],
        do: Mapping[str, Any],
        targets: list[str] | str,
        draws: int = 200_000,
        seed: int = 0,
    ) -> dict[str, dict[Any, float]]:
        """P(target_{do} | the factual ``row``) with every discrete mechanism read as Gumbel-max over its CPT
        (value = argmax(log p(v | parents) + g), g i.i.d. standard Gumbel): the structural model the engine's
        counterfactuals assume, here with the true conditionals.

        Abduction is by rejection: for each variable, prior noise draws are kept where they reproduce the
        factual value given the factual parents (given a fully observed row the posterior factorises over
        variables), an independent check of the engine's top-down truncated-Gumbel sampler. Exact up to the
        Monte Carlo error of ``draws`` (about ``0.5 / sqrt(draws)``).

        Example:
            >>> from hf_causal.worlds.demo import demo_world
            >>> w = demo_world()
            >>> row = {"age": "old", "severity": "severe", "treatment": 1, "biomarker": "low", "recovery": 2,
            ...        "readmitted": 0}
            >>> cf = w.counterfactual(row, {"treatment": 0}, "recovery", draws=20_000)
            >>> cf["recovery"][2] < 1.0  # without the treatment, a good recovery is no longer certain
            True
        """
        targets = [targets] if isinstance(targets, str) else list(targets)
        rng = np.random.default_rng(seed)
        g = self.graph
        do = {k: g[k].coerce(v) for k, v in do.items()}
        for t in targets:
            if t not in self.discrete:
                raise QueryError(f"counterfactual target {t!r} must be a discrete variable of the world")
        try:
            fact = {n: g[n].coerce(row[n]) for n in self.discrete}
        except KeyError as e:
            raise QueryError(f"the factual row lacks {e.args[0]!r}; a counterfactual needs every variable") from None
        moved = set(do).union(*(g.descendants(d) for d in do))
        idx: dict[str, np.ndarray] = {}
        for n in self.discrete:
            dom = g[n].domain()
            if n in do:
                idx[n] = np.full(draws, dom.index(do[n]))
                continue
            if n not in moved:
                idx[n] = np.full(draws, dom.index(fact[n]))
                continue
            pa = g.parents(n)
            logp_f = np.log(self._probs(n, {q: fact[q] for q in pa}))
            noise = self._posterior_noise(logp_f, dom.index(fact[n]), draws, rng, n)
            # the counterfactual parents vary across draws: one CPT look-up per distinct configuration
            keys = np.stack([idx[q] for q in pa], 1) if pa else np.zeros((draws, 0), dtype=int)
            uniq, inv = np.unique(keys, axis=0, return_inverse=True)
            logp = np.stack([np.log(self._probs(n, {q: g[q].domain()[k] for q, k in zip(pa, u)})) for u in uniq])[
                inv.reshape(-1)
            ]
            idx[n] = np.argmax(logp + noise, 1)
        out = {}
        for t in targets:
            dom = g[t].domain()
            counts = np.bincount(idx[t], minlength=len(dom)) / draws
            out[t] = {v: float(c) for v, c in zip(dom, counts)}
        return out

    @staticmethod
    def _posterior_noise(logp: np.ndarray, obs: int, draws: int, rng, name: str) -> np.ndarray:
        """``draws`` Gumbel vectors with ``argmax(logp + g) == obs``, by rejection from the prior."""
        p = float(np.exp(logp[obs]))
        if p < 1e-4:
            raise QueryError(f"the factual value of {name!r} has probability {p:.2g}; too rare for rejection")
        kept, have = [], 0
        while have < draws:
            m = int(min(4 * draws, 1.2 * (draws - have) / p + 1000))
            gum = rng.gumbel(size=(m, len(logp)))
            ok = gum[np.argmax(logp + gum, 1) == obs]
            kept.append(ok)
            have += len(ok)
        return np.concatenate(kept)[:draws]

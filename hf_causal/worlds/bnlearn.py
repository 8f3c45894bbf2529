"""bnlearn networks bundled with pgmpy (< 1.3), with pgmpy's exact interventional answers.

Needs the ``bench`` extra (pgmpy). Loaded offline through ``pgmpy.utils.get_example_model``.

Example:
    >>> w = BNWorld("asia")                                   # doctest: +SKIP
    >>> w.exact("dysp", {"smoke": "yes"})                     # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..graph import CausalGraph
from .registry import register_world

__all__ = ["BNWorld", "load_network"]


def load_network(name: str):
    from pgmpy.utils import get_example_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_example_model(name)


def _own_networks():
    """Networks of our own worlds, by name, as pgmpy models (``recode``: a deterministic re-encoding)."""
    from .recode import recode_world

    return {
        "recode": lambda: recode_world().to_pgmpy(string_states=True),
        "recode-99": lambda: recode_world(eps=0.01).to_pgmpy(string_states=True),
    }


class BNWorld:
    """A discrete Bayesian network as a causal world: graph, sampler, exact do-queries."""

    def __init__(self, network: str = "asia"):
        self.name = network
        self.bn = _own_networks()[network]() if network in _own_networks() else load_network(network)
        states = {}
        for cpd in self.bn.get_cpds():
            states.update({k: list(v) for k, v in cpd.state_names.items()})
        nodes = list(self.bn.nodes())
        self.graph = CausalGraph.from_dict(
            {
                "variables": {n: {"type": "categorical", "values": [str(s) for s in states[n]]} for n in nodes},
                "edges": [[a, b] for a, b in self.bn.edges()],
            }
        )
        self._ci = None
        self._ve = None

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = self.bn.simulate(n_samples=n, seed=seed, show_progress=False)
        return df[self.graph.order].astype(str)

    def _factor_to_dict(self, f, target: str) -> dict[str, float]:
        return {s: float(f.get_value(**{target: s})) for s in self.graph[target].domain()}

    def exact(self, target: str, do: dict[str, Any], evidence: dict[str, Any] | None = None) -> dict[str, float]:
        """Exact P(target | do(...)) (pgmpy CausalInference)."""
        from pgmpy.inference import CausalInference

        self._ci = self._ci or CausalInference(self.bn)
        f = self._ci.query([target], do=do, evidence=evidence or None, show_progress=False)
        return self._factor_to_dict(f, target)

    def observational(self, target: str, evidence: dict[str, Any]) -> dict[str, float]:
        """Exact P(target | evidence): what a naive reading of do(.) as conditioning gives."""
        from pgmpy.inference import VariableElimination

        self._ve = self._ve or VariableElimination(self.bn)
        f = self._ve.query([target], evidence=evidence, show_progress=False)
        return self._factor_to_dict(f, target)

    def queries(
        self, k: int = 20, seed: int = 0, min_gap: float = 0.02, fallback_gap: float = 0.005, max_tries: int = 2000
    ) -> list[dict]:
        """``k`` seeded queries P(Y | do(X=x)) with X an ancestor of Y where confounding matters:
        TV(observational, interventional) >= ``min_gap``. Networks with little confounding (asia) have
        fewer such queries; the list is then topped up with the largest gaps >= ``fallback_gap``
        among the candidates tried. Each query records its ``gap``."""
        from ..metrics import tv_distance

        rng = np.random.default_rng(seed)
        g = self.graph
        pairs = [(x, y) for y in g.order for x in sorted(g.ancestors(y))]
        found, spare, seen = [], [], set()
        for _ in range(max_tries):
            if len(found) >= k or not pairs:
                break
            x, y = pairs[int(rng.integers(len(pairs)))]
            val = g[x].domain()[int(rng.integers(len(g[x].domain())))]
            if (x, y, val) in seen:
                continue
            seen.add((x, y, val))
            try:
                obs = self.observational(y, {x: val})
            except Exception:  # noqa: BLE001 - zero-probability evidence
                continue
            do = self.exact(y, {x: val})
            q = {"target": y, "do": {x: val}, "exact": do, "observational": obs, "gap": tv_distance(obs, do)}
            (found if q["gap"] >= min_gap else spare).append(q)
        if len(found) < k:
            spare = sorted((q for q in spare if q["gap"] >= fallback_gap), key=lambda q: -q["gap"])
            found += spare[: k - len(found)]
        return found


register_world("bnlearn", BNWorld)

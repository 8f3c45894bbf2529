"""A world with a deterministic re-encoding: the case where full attention extrapolates (issue #15).

``X`` re-encodes ``S`` (``X = code(S)``, or with probability ``eps`` a uniform value), and ``X`` has
children of its own. Forcing ``X := x`` with ``x != code(S)`` creates prefixes ``(S, X)`` the data
never show: a model whose conditionals read all earlier tokens has to extrapolate there, while the
true mechanisms of ``X``'s children read only their parents, whose configurations the data do show.

Variables (canonical order): ``site`` (root) -> ``S`` -> ``X`` (the re-encoding) -> ``W`` (from ``S``
and ``site``) -> ``Y`` (from ``X`` and ``W``) -> ``Z`` (from ``Y`` and ``X``). Exact answers by
enumeration (:class:`~hf_causal.worlds.scm.DiscreteSCM`); ``to_pgmpy()`` gives the same network to the
bnlearn benchmark.

Example:
    >>> w = recode_world()
    >>> round(w.distribution("Y", do={"X": 0})[1], 3), round(w.naive_distribution("Y", "X", 0)[1], 3)
    (0.8, 0.717)
"""

from __future__ import annotations

import math

from ..graph import CausalGraph
from .registry import register_world
from .scm import DiscreteSCM

__all__ = ["recode_world"]


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def recode_world(eps: float = 0.0) -> DiscreteSCM:
    """The re-encoding world; ``eps``: the probability that ``X`` is drawn uniformly instead of ``code(S)``
    (0: deterministic; 0.01: 99%)."""
    codes = {"a": 0, "b": 1, "c": 2}
    g = CausalGraph.from_dict(
        {
            "variables": {
                "site": {"type": "categorical", "values": ["north", "south"], "description": "where the unit is"},
                "S": {"type": "categorical", "values": list(codes), "description": "the source category"},
                "X": {"type": "categorical", "values": [0, 1, 2], "description": "S re-encoded as a number"},
                "W": {"type": "categorical", "values": [0, 1], "description": "depends on S and site"},
                "Y": {"type": "categorical", "values": [0, 1], "description": "depends on X and W only"},
                "Z": {"type": "categorical", "values": [0, 1, 2], "description": "depends on Y and X"},
            },
            "edges": [
                ["site", "S"],
                ["S", "X"],
                ["S", "W"],
                ["site", "W"],
                ["X", "Y"],
                ["W", "Y"],
                ["Y", "Z"],
                ["X", "Z"],
            ],
        }
    )

    def x_of(pa):
        p = [eps / 3] * 3
        p[codes[pa["S"]]] += 1 - eps
        return p

    def w_of(pa):
        p = [0.15, 0.5, 0.9][codes[pa["S"]]] + (0.05 if pa["site"] == "south" else -0.05)
        return [1 - p, p]

    def y_of(pa):
        p = _sig([1.2, -0.2, -1.1][pa["X"]] + 1.6 * pa["W"] - 0.4)
        return [1 - p, p]

    def z_of(pa):
        s = 0.8 * pa["Y"] - 0.5 * pa["X"]
        e = [math.exp(0.0), math.exp(s), math.exp(2 * s - 0.3)]
        return [v / sum(e) for v in e]

    cpts = {
        "site": lambda pa: [0.6, 0.4],
        "S": lambda pa: [0.5, 0.3, 0.2] if pa["site"] == "north" else [0.2, 0.3, 0.5],
        "X": x_of,
        "W": w_of,
        "Y": y_of,
        "Z": z_of,
    }
    roles = {"outcome": "Y", "treatment": "X", "treated": 0, "control": 2, "subgroup": {"site": "south"}}
    return DiscreteSCM(g, cpts, name="recode" if eps == 0 else f"recode-eps{eps:g}", roles=roles)


register_world("recode", recode_world)

"""A world whose outcome model is hard to learn: a three-way parity of covariates, and an effect that
depends on an interaction (the coverage benchmark's hard setting, issue #16).

Five independent binary covariates ``x1..x5``; the treatment ``t`` depends on ``x1`` and ``x2``; the
binary outcome ``y`` on ``x1``, ``x2``, the parity of ``x3, x4, x5`` and on ``t`` with an effect that is
larger when ``x3 != x4``. Exact answers by enumeration.

Example:
    >>> w = interaction_world()
    >>> round(float(w.ate("y", "t", 1, 0)), 4)
    0.1289
"""

from __future__ import annotations

import math

from ..graph import CausalGraph
from .registry import register_world
from .scm import DiscreteSCM

__all__ = ["interaction_world"]


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def interaction_world() -> DiscreteSCM:
    xs = [f"x{i}" for i in range(1, 6)]
    g = CausalGraph.from_dict(
        {
            "variables": {
                **{x: {"type": "categorical", "values": [0, 1]} for x in xs},
                "t": {"type": "categorical", "values": [0, 1], "description": "treated"},
                "y": {"type": "categorical", "values": [0, 1], "description": "outcome"},
            },
            "edges": [["x1", "t"], ["x2", "t"], *[[x, "y"] for x in xs], ["t", "y"]],
        }
    )

    def t_of(pa):
        p = [[0.2, 0.45], [0.55, 0.8]][pa["x1"]][pa["x2"]]
        return [1 - p, p]

    def y_of(pa):
        parity = (pa["x3"] + pa["x4"] + pa["x5"]) % 2
        effect = 0.4 + 1.2 * (pa["x3"] != pa["x4"])
        p = _sig(-0.6 + 1.8 * parity + 0.8 * pa["x1"] + 0.9 * pa["x2"] + pa["t"] * effect)
        return [1 - p, p]

    cpts = {x: (lambda pa: [0.5, 0.5]) for x in xs}
    cpts.update(t=t_of, y=y_of)
    roles = {"outcome": "y", "treatment": "t", "treated": 1, "control": 0, "subgroup": {"x3": 1, "x4": 0}}
    return DiscreteSCM(g, cpts, name="interactions", roles=roles)


register_world("interactions", interaction_world)

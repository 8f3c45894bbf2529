"""The bundled demo world: a treatment confounded by age and severity, with a mediator.

Example:
    >>> w = demo_world()
    >>> w.graph.order
    ['age', 'severity', 'treatment', 'biomarker', 'recovery', 'readmitted']
"""

from __future__ import annotations

import math

from ..graph import CausalGraph
from .registry import register_world
from .scm import DiscreteSCM

__all__ = ["demo_world"]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def demo_world(continuous: bool = False) -> DiscreteSCM:
    """The bundled demo: a treatment confounded by age and severity, with a mediator.

    Variables (canonical order): age -> severity -> treatment -> biomarker -> recovery -> readmitted,
    plus ``stay`` (continuous days in hospital) when ``continuous=True``. Severe and older
    patients are treated more often and recover worse, so the naive P(recovery | treatment)
    understates the benefit of treatment.
    """
    variables: dict[str, dict] = {
        "age": {"type": "categorical", "values": ["young", "middle", "old"], "description": "age group"},
        "severity": {"type": "categorical", "values": ["mild", "severe"], "description": "illness severity"},
        "treatment": {"type": "categorical", "values": [0, 1], "description": "treated (1) or not (0)"},
        "biomarker": {"type": "categorical", "values": ["low", "high"], "description": "inflammation marker"},
        "recovery": {"type": "categorical", "values": [0, 1, 2], "description": "0 poor, 1 fair, 2 good"},
        "readmitted": {"type": "categorical", "values": [0, 1], "description": "readmitted within 90 days"},
    }
    edges = [
        ["age", "severity"],
        ["age", "treatment"],
        ["severity", "treatment"],
        ["treatment", "biomarker"],
        ["severity", "biomarker"],
        ["age", "recovery"],
        ["severity", "recovery"],
        ["biomarker", "recovery"],
        ["treatment", "recovery"],
        ["recovery", "readmitted"],
        ["age", "readmitted"],
    ]
    if continuous:
        variables["stay"] = {"type": "continuous", "bins": 32, "description": "days in hospital"}
        edges += [["severity", "stay"], ["age", "stay"], ["biomarker", "stay"], ["treatment", "stay"]]
    g = CausalGraph.from_dict({"variables": variables, "edges": edges})

    age_i = {"young": 0, "middle": 1, "old": 2}

    def recovery(pa):
        s = 0.9 - 1.6 * (pa["severity"] == "severe") - 0.6 * (pa["age"] == "old") + 0.3 * (pa["age"] == "young")
        s += -1.0 * (pa["biomarker"] == "high") + 0.6 * pa["treatment"]
        p_ge1, p_ge2 = _sigmoid(s + 1.2), _sigmoid(s - 0.8)
        return [1 - p_ge1, p_ge1 - p_ge2, p_ge2]

    def treatment(pa):
        p = [[0.15, 0.25, 0.35], [0.65, 0.78, 0.85]][pa["severity"] == "severe"][age_i[pa["age"]]]
        return [1 - p, p]

    def biomarker(pa):
        p = [[0.3, 0.75], [0.15, 0.4]][pa["treatment"]][pa["severity"] == "severe"]
        return [1 - p, p]

    def readmitted(pa):
        p = [0.4, 0.2, 0.06][pa["recovery"]] + 0.1 * (pa["age"] == "old")
        return [1 - p, p]

    cpts = {
        "age": lambda pa: [0.35, 0.40, 0.25],
        "severity": lambda pa: (lambda p: [1 - p, p])([0.2, 0.4, 0.65][age_i[pa["age"]]]),
        "treatment": treatment,
        "biomarker": biomarker,
        "recovery": recovery,
        "readmitted": readmitted,
    }
    gaussians = {}
    if continuous:
        gaussians["stay"] = (
            lambda pa: (
                5.0
                + 4.0 * (pa["severity"] == "severe")
                + 2.0 * (pa["age"] == "old")
                + 3.0 * (pa["biomarker"] == "high")
                - 2.0 * pa["treatment"]
            ),
            1.5,
        )
    roles = {"outcome": "recovery", "treatment": "treatment", "treated": 1, "control": 0, "subgroup": {"age": "old"}}
    return DiscreteSCM(g, cpts, gaussians, name="demo-continuous" if continuous else "demo", roles=roles)


register_world("demo", demo_world)
register_world("demo-continuous", lambda: demo_world(continuous=True))

"""A clinic with mixed kinds, the world of issue #17's opening question: what is the effect of a statin on
an event *for smokers*? (region -> age -> income -> smoker -> statin -> cholesterol -> visits -> event -> cost)

* ``region`` (categorical), ``age`` (integer 40-79), ``income`` (continuous, thousands), ``smoker``;
* ``statin``: the treatment, more likely for older patients and smokers, less likely with a low income;
* ``cholesterol`` (continuous) falls with the statin, by more for smokers (effect modification);
* ``visits`` (integer 0-8) and ``event`` (binary outcome), ``cost`` (continuous) after it.

``smoker`` sits in the middle of the order: region, age and income come before it and it depends on them,
so conditioning on it is not a prefix conditional (likelihood weighting). The truth of any conditional
effect is by simulation with common random numbers (:meth:`ClinicWorld.cate`).

Example:
    >>> w = ClinicWorld()
    >>> df = w.sample(5, seed=0)
    >>> list(df.columns)
    ['region', 'age', 'income', 'smoker', 'statin', 'cholesterol', 'visits', 'event', 'cost']
    >>> w.cate({"smoker": 1}, n=200_000) < w.cate({"smoker": 0}, n=200_000) < 0  # statins help smokers more
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import QueryError
from ..graph import CausalGraph
from .registry import register_world

__all__ = ["ClinicWorld"]

REGIONS = ("north", "south", "east")


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


class ClinicWorld:
    """The clinic world (see the module docstring)."""

    name = "clinic"

    def __init__(self) -> None:
        self.graph = CausalGraph.from_dict(
            {
                "variables": {
                    "region": {"type": "categorical", "values": list(REGIONS)},
                    "age": {"type": "integer", "min": 40, "max": 79},
                    "income": {"type": "continuous", "bins": 16, "description": "yearly income, thousands"},
                    "smoker": {"type": "categorical", "values": [0, 1]},
                    "statin": {"type": "categorical", "values": [0, 1], "description": "treated with a statin"},
                    "cholesterol": {"type": "continuous", "bins": 16, "description": "mg/dL"},
                    "visits": {"type": "integer", "min": 0, "max": 8},
                    "event": {"type": "categorical", "values": [0, 1], "description": "cardiac event"},
                    "cost": {"type": "continuous", "bins": 16, "description": "thousands"},
                },
                "edges": [
                    ["region", "age"],
                    ["region", "income"],
                    ["age", "income"],
                    ["region", "smoker"],
                    ["age", "smoker"],
                    ["income", "smoker"],
                    ["age", "statin"],
                    ["income", "statin"],
                    ["smoker", "statin"],
                    ["age", "cholesterol"],
                    ["smoker", "cholesterol"],
                    ["statin", "cholesterol"],
                    ["cholesterol", "visits"],
                    ["statin", "visits"],
                    ["cholesterol", "event"],
                    ["age", "event"],
                    ["smoker", "event"],
                    ["visits", "event"],
                    ["event", "cost"],
                    ["visits", "cost"],
                ],
            }
        )

    def _draw(self, n: int, rng: np.random.Generator, do: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """All columns; ``do`` forces ``statin`` (the other variables keep their noise: common random numbers
        across calls with the same seed)."""
        do = dict(do or {})
        if set(do) - {"statin"}:
            raise QueryError(f"the clinic world simulates interventions on 'statin' only, got {sorted(do)}")
        u = {k: rng.random(n) for k in ("region", "smoker", "statin", "event")}
        z = {k: rng.standard_normal(n) for k in ("age", "income", "cholesterol", "cost")}
        u_visits = rng.random(n)
        region = np.searchsorted(np.cumsum([0.4, 0.35, 0.25]), u["region"], side="right").clip(0, 2)
        age = np.clip(np.rint(58 + 4 * (region == 0) - 3 * (region == 2) + 9 * z["age"]), 40, 79).astype(int)
        income = np.clip(30 + 0.4 * (age - 40) + 15 * (region == 1) + 8 * z["income"], 5, None)
        smoker = (u["smoker"] < _sig(-0.5 - 0.04 * (income - 40) + 0.7 * (region == 2) - 0.03 * (age - 60))).astype(int)
        statin = (u["statin"] < _sig(-1.0 + 0.07 * (age - 60) + 0.9 * smoker - 0.02 * (income - 40))).astype(int)
        if "statin" in do:
            statin = np.full(n, int(do["statin"]))
        chol = 220 + 0.8 * (age - 60) + 20 * smoker - statin * (30 + 25 * smoker) + 15 * z["cholesterol"]
        lam = np.clip(1.0 + 0.02 * (chol - 200) + 0.5 * statin, 0.1, None)
        visits = np.minimum(_poisson_inverse(lam, u_visits), 8)
        p_event = _sig(-2.0 + 0.03 * (chol - 220) + 0.05 * (age - 60) + 0.6 * smoker - 0.1 * visits)
        event = (u["event"] < p_event).astype(int)
        cost = np.clip(2 + 10 * event + 0.5 * visits + z["cost"], 0, None)
        return {
            "region": np.asarray(REGIONS)[region],
            "age": age,
            "income": income,
            "smoker": smoker,
            "statin": statin,
            "cholesterol": chol,
            "visits": visits,
            "event": event,
            "cost": cost,
            "p_event": p_event,
        }

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        cols = self._draw(n, np.random.default_rng(seed))
        cols.pop("p_event")
        return pd.DataFrame(cols)[list(self.graph.order)]

    def cate(
        self,
        given: Mapping[str, Any | Callable[[np.ndarray], np.ndarray]] | None = None,
        n: int = 2_000_000,
        seed: int = 12345,
    ) -> float:
        """E[event | do(statin=1), given] - E[event | do(statin=0), given] by simulation (common random numbers,
        the event's probability read exactly); ``given`` maps pre-treatment variables to a value or to a
        predicate on the column (e.g. an income bin)."""
        a = self._draw(n, np.random.default_rng(seed), {"statin": 1})
        b = self._draw(n, np.random.default_rng(seed), {"statin": 0})
        keep = np.ones(n, bool)
        for k, v in (given or {}).items():
            if k not in ("region", "age", "income", "smoker"):
                raise QueryError(f"the clinic's conditional effects take pre-treatment covariates, got {k!r}")
            keep &= v(a[k]) if callable(v) else a[k] == v
        if not keep.any():
            raise QueryError(f"no simulated patient has {dict(given or {})}")
        return float(np.mean(a["p_event"][keep] - b["p_event"][keep]))


def _poisson_inverse(lam: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poisson(lam) by inversion of uniforms (so the same uniform gives comparable counts across arms)."""
    k = np.zeros(len(lam), dtype=int)
    p = np.exp(-lam)
    cdf = p.copy()
    for i in range(1, 40):
        more = u > cdf
        if not more.any():
            break
        k += more
        p = p * lam / i
        cdf = cdf + p
    return k


register_world("clinic", ClinicWorld)

"""The maze world: episodes of a maze-aware behaviour policy, and exact potential outcomes of forced move lists."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ...errors import QueryError, RecipeError
from ...graph import CausalGraph
from .grid import (
    _BIT,
    _IDX,
    _OPP,
    CELL_SYMBOLS,
    LAYOUTS,
    MOVES,
    Maze,
    _as_list,
    generate_maze,
    maze_tokens,
    offset_alphabet,
    offset_token,
)


class MCMean(NamedTuple):
    """A Monte Carlo mean with its standard error over ``n`` units."""

    mean: float
    se: float
    n: int


@dataclass(frozen=True)
class OutcomeDistribution:
    """The exact distribution of the outcomes when an action list is forced on one maze.

    Attributes:
        position: P(final cell), row-major.
        reached: ``{0: p, 1: p}``.
        distance: ``{d: p}`` over the distances with positive probability.
    """

    position: np.ndarray
    reached: dict[int, float]
    distance: dict[int, float]

    @property
    def p_reached(self) -> float:
        return self.reached[1]

    @property
    def mean_distance(self) -> float:
        return float(sum(d * p for d, p in self.distance.items()))

    def expected(self, outcome: str = "reached") -> float:
        """E[outcome]: ``reached`` (the probability of reaching the goal) or ``distance``."""
        if outcome == "reached":
            return self.p_reached
        if outcome == "distance":
            return self.mean_distance
        raise QueryError(f"unknown maze outcome {outcome!r}; use 'reached' or 'distance'")


OUTCOMES = ("reached", "distance")


@dataclass
class MazeWorld:
    """Random perfect mazes, a maze-aware behaviour policy, and exact potential outcomes.

    Args:
        sizes: the grid sizes (cells per side), drawn uniformly.
        p: probability that a planned move is the first move of the shortest path (else uniform).
        eps: probability that an executed move slips to a uniformly drawn move.
        max_length: hard cap on the number of moves (the ``actions`` variable's ``max_length``).
        min_horizon: the planning horizon is uniform on ``min_horizon..max_length``.
        layout: ``"actions"`` (the move list is the treatment variable ``actions``) or
            ``"trajectory"`` (a context variable ``offset``, the start relative to the goal, and a
            ``path`` variable that interleaves every move with the position relative to the goal it
            led to, slips included; the engine then forces the moves and samples the positions, see
            :meth:`do` and :data:`LAYOUTS`).
        name: the world's name.

    Example:
        >>> w = MazeWorld(sizes=(5,), eps=0.0)
        >>> row = w.sample(1, seed=3).iloc[0]
        >>> w.expected(row, w.off_policy_actions(row, "shortest"))
        1.0
    """

    sizes: tuple[int, ...] = (5, 6, 7, 8)
    p: float = 0.75
    eps: float = 0.1
    max_length: int = 64
    min_horizon: int = 1
    layout: str = "actions"
    name: str = "maze"
    graph: CausalGraph = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.sizes = tuple(int(s) for s in self.sizes)
        if not self.sizes or min(self.sizes) < 2 or len(set(self.sizes)) != len(self.sizes):
            raise RecipeError(f"maze sizes must be distinct integers >= 2, got {self.sizes}")
        if not 0 <= self.p <= 1 or not 0 <= self.eps <= 1:
            raise RecipeError(f"p and eps must be probabilities, got p={self.p}, eps={self.eps}")
        if self.layout not in LAYOUTS:
            raise RecipeError(f"unknown maze layout {self.layout!r}; use one of {LAYOUTS}")
        if not 1 <= self.min_horizon <= self.max_length:
            raise RecipeError(f"need 1 <= min_horizon <= max_length, got {self.min_horizon}, {self.max_length}")
        self.graph = CausalGraph.from_dict(self.graph_spec())

    # --- the graph ------------------------------------------------------------------------
    def graph_spec(self) -> dict[str, Any]:
        """The causal graph as a ``CausalGraph.from_dict`` mapping."""
        cells = max(self.sizes) ** 2
        ctx = ["size", "start", "goal", "maze", *(["offset"] if self.layout == "trajectory" else [])]
        return {
            "variables": {
                "size": {"type": "categorical", "values": list(self.sizes), "description": "cells per side"},
                "start": {"type": "integer", "min": 0, "max": cells - 1, "description": "start cell (row-major)"},
                "goal": {"type": "integer", "min": 0, "max": cells - 1, "description": "goal cell (row-major)"},
                "maze": {
                    "type": "sequence",
                    "alphabet": list(CELL_SYMBOLS),
                    "max_length": cells,
                    "description": "row-major cells, hex digit of the open sides (U=1, R=2, D=4, L=8), "
                    "start marked S, goal marked G",
                },
                **self._treatment_spec(cells),
                "reached": {"type": "categorical", "values": [0, 1], "description": "ends at the goal"},
                "distance": {
                    "type": "integer",
                    "min": 0,
                    "max": cells - 1,
                    "description": "final shortest-path distance to the goal",
                },
            },
            "edges": [
                ["size", "maze"],
                ["size", "start"],
                ["size", "goal"],
                ["start", "maze"],  # the maze tokens carry the start/goal marks
                ["goal", "maze"],
                *([["size", "offset"], ["start", "offset"], ["goal", "offset"]] if self.layout == "trajectory" else []),
                *[[v, self.treatment] for v in ctx],
                *[[v, "reached"] for v in [*ctx, self.treatment]],
                *[[v, "distance"] for v in [*ctx, self.treatment]],
                # distance == 0 iff reached: the two are dependent given their other parents
                ["reached", "distance"],
            ],
        }

    @property
    def treatment(self) -> str:
        """The name of the action variable: ``actions`` or (trajectory layout) ``path``."""
        return "path" if self.layout == "trajectory" else "actions"

    def _treatment_spec(self, cells: int) -> dict[str, Any]:
        if self.layout == "actions":
            return {
                "actions": {
                    "type": "sequence",
                    "alphabet": list(MOVES),
                    "max_length": self.max_length,
                    "description": "intended moves",
                }
            }
        offsets = offset_alphabet(max(self.sizes))
        return {
            "offset": {
                "type": "categorical",
                "values": offsets,
                "description": "start row and column minus the goal's (e.g. -1+2: one row above, two columns right)",
            },
            "path": {
                "type": "sequence",
                "alphabet": [*MOVES, *offsets],
                "max_length": 2 * self.max_length,
                "description": "each intended move followed by the position relative to the goal it led to "
                "(slips and walls; the goal, +0+0, absorbs)",
            },
        }

    def do(self, actions: Sequence[str] | str) -> dict[str, Any]:
        """The engine's ``do=`` for forcing a move list: ``{"actions": moves}``, or in the trajectory
        layout ``{"path": PartialSequence([m1, None, m2, None, ...])}`` (moves forced, cells sampled).

        Example:
            >>> MazeWorld(layout="trajectory").do(["U", "R"])["path"].forced
            {0: 'U', 2: 'R'}
        """
        from ...interventions import PartialSequence

        acts = self._checked(actions)
        if self.layout == "actions":
            return {"actions": acts}
        return {"path": PartialSequence([x for a in acts for x in (a, None)])}

    def _checked(self, actions: Sequence[str] | str) -> list[str]:
        acts = _as_list(actions)
        bad = [a for a in acts if a not in _IDX]
        if bad:
            raise QueryError(f"action {bad[0]!r} is not one of {MOVES}")
        if len(acts) > self.max_length:
            raise QueryError(f"{len(acts)} moves exceed max_length {self.max_length}")
        return acts

    def moves_of(self, value: Any) -> list[str]:
        """The move list of an ``actions`` or ``path`` value (the cells of a path dropped)."""
        return [t for t in _as_list(value) if t in _IDX]

    # --- simulation -----------------------------------------------------------------------
    def sample_maze(self, rng: np.random.Generator) -> dict[str, Any]:
        """One confounder draw: ``{"size", "maze", "start", "goal"}``."""
        return self._draw(rng)[0]

    def _draw(self, rng: np.random.Generator) -> tuple[dict[str, Any], Maze]:
        size = self.sizes[int(rng.integers(len(self.sizes)))]
        bits = generate_maze(size, rng)
        n = size * size
        start = int(rng.integers(n))
        goal = int(rng.integers(n - 1))
        goal += goal >= start
        row = {"size": size, "start": start, "goal": goal, "maze": maze_tokens(bits, start, goal)}
        if self.layout == "trajectory":
            row["offset"] = offset_token(start, goal, size)
        return row, Maze(size, bits, start, goal)

    def behaviour(self, row: Mapping[str, Any] | Maze, rng: np.random.Generator) -> list[str]:
        """The behaviour policy's (open-loop) action list for a maze."""
        m = row if isinstance(row, Maze) else Maze.from_row(row)
        horizon = int(rng.integers(self.min_horizon, self.max_length + 1))
        u0, u1 = rng.random((2, horizon)).tolist()
        c, out = m.start, []
        nxt, toward = m._next, m.toward_goal
        for t in range(horizon):
            if c == m.goal:
                break
            d = toward[c] if u0[t] < self.p else min(int(u1[t] * 4), 3)
            out.append(MOVES[d])
            c = nxt[d][c]
        return out

    def execute(
        self, row: Mapping[str, Any] | Maze, actions: Sequence[str], rng: np.random.Generator
    ) -> dict[str, int]:
        """Run ``actions`` once with slips: ``{"reached", "distance", "cell", "cells"}`` (one stochastic
        draw; ``cells`` is the cell after each move, the goal absorbing)."""
        m = row if isinstance(row, Maze) else Maze.from_row(row)
        acts = _as_list(actions)
        u0, u1 = rng.random((2, len(acts))).tolist()
        c, nxt = m.start, m._next
        cells = []
        for t, a in enumerate(acts):
            if c != m.goal:
                d = _IDX[a] if u0[t] >= self.eps else min(int(u1[t] * 4), 3)
                c = nxt[d][c]
            cells.append(c)
        return {"reached": int(c == m.goal), "distance": int(m.dist[c]), "cell": c, "cells": cells}

    def sample(self, n: int, seed: int = 0, do: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """``n`` i.i.d. episodes (observational, or with ``do={"actions": [...]}``), seeded.

        Columns follow the graph's order; ``maze`` and ``actions`` (or ``path``) hold lists of symbols.
        Both layouts draw the same episodes for the same seed.
        """
        do = dict(do or {})
        if set(do) - {"actions"}:
            raise QueryError(f"MazeWorld.sample supports do on 'actions' only, got {sorted(do)}")
        forced = self._checked(do["actions"]) if "actions" in do else None
        rng = np.random.default_rng(seed)
        rows = []
        for _ in range(n):
            row, m = self._draw(rng)
            acts = list(forced) if forced is not None else self.behaviour(m, rng)
            out = self.execute(m, acts, rng)
            if self.layout == "trajectory":
                row["path"] = [x for a, c in zip(acts, out["cells"]) for x in (a, offset_token(c, m.goal, m.size))]
            else:
                row["actions"] = acts
            row["reached"], row["distance"] = out["reached"], out["distance"]
            rows.append(row)
        return pd.DataFrame(rows, columns=list(self.graph.order))

    # --- exact ground truth ---------------------------------------------------------------
    def potential_outcome(self, row: Mapping[str, Any] | Maze, actions: Sequence[str] | str) -> OutcomeDistribution:
        """Exact P(reached, distance | do(actions), maze): the position distribution pushed through
        the forced moves (slips and walls included, goal absorbing). No sampling."""
        m = row if isinstance(row, Maze) else Maze.from_row(row)
        acts = _as_list(actions)
        bad = [a for a in acts if a not in _IDX]
        if bad:
            raise QueryError(f"action {bad[0]!r} is not one of {MOVES}")
        n = m.n_cells
        nxt = m.next_cell.copy()
        nxt[:, m.goal] = m.goal  # absorbing
        prob = np.zeros(n)
        prob[m.start] = 1.0
        for a in acts:
            moved = [np.bincount(nxt[d], weights=prob, minlength=n) for d in range(4)]
            prob = (1 - self.eps) * moved[_IDX[a]] + (self.eps / 4) * sum(moved)
        p_goal = float(prob[m.goal])
        dist = np.bincount(m.dist, weights=prob, minlength=n)
        return OutcomeDistribution(
            position=prob,
            reached={0: 1.0 - p_goal, 1: p_goal},
            distance={int(d): float(dist[d]) for d in np.flatnonzero(dist > 0)},
        )

    def expected(self, row: Mapping[str, Any] | Maze, actions: Sequence[str] | str, outcome: str = "reached") -> float:
        """Exact E[outcome | do(actions), maze] for ``outcome`` in ``reached`` / ``distance``."""
        return self.potential_outcome(row, actions).expected(outcome)

    def population_outcome(self, actions: Sequence[str] | str, n_mazes: int = 2000, seed: int = 0) -> dict[str, MCMean]:
        """E[Y | do(actions)] for both outcomes: the mean over ``n_mazes`` fresh mazes of the exact
        per-maze value (exact per maze, Monte Carlo over mazes; ``se`` is that Monte Carlo error).
        The same ``seed`` gives the same mazes, so differences between action lists are paired."""
        vals = self._per_maze(actions, n_mazes, seed)
        return {k: _mc(v) for k, v in vals.items()}

    def population_effect(
        self,
        treated: Sequence[str] | str,
        control: Sequence[str] | str,
        n_mazes: int = 2000,
        seed: int = 0,
    ) -> dict[str, MCMean]:
        """E[Y | do(treated)] - E[Y | do(control)] (treated minus control) on common mazes."""
        t, c = self._per_maze(treated, n_mazes, seed), self._per_maze(control, n_mazes, seed)
        return {k: _mc(t[k] - c[k]) for k in OUTCOMES}

    def _per_maze(self, actions: Sequence[str] | str, n_mazes: int, seed: int) -> dict[str, np.ndarray]:
        if n_mazes < 2:
            raise QueryError("population_outcome needs n_mazes >= 2 for a standard error")
        acts = self._checked(actions)
        rng = np.random.default_rng(seed)
        out = {k: np.empty(n_mazes) for k in OUTCOMES}
        for i in range(n_mazes):
            po = self.potential_outcome(self._draw(rng)[1], acts)
            out["reached"][i], out["distance"][i] = po.p_reached, po.mean_distance
        return out

    # --- off-policy action lists ------------------------------------------------------------
    def off_policy_actions(
        self, row: Mapping[str, Any] | Maze, kind: str = "random", rng: np.random.Generator | None = None
    ) -> list[str]:
        """Action lists the behaviour policy rarely or never produces, for one maze.

        ``kind``:
            * ``shortest``: the shortest path to the goal (deterministic);
            * ``truncated``: the shortest path stopped early, after a uniform ``1..L-1`` of its
              ``L`` moves (the empty list when ``L == 1``);
            * ``detour``: the shortest path with a two-move excursion ``[d, opposite(d)]``
              inserted before a uniformly drawn move, ``d`` an open side other than the path's
              next move (a no-op without slips; it only adds slip risk);
            * ``random``: a uniform length in ``1..max_length`` of uniform moves.

        Lists are cut at ``max_length`` (a cut detour may no longer reach the goal).
        """
        m = row if isinstance(row, Maze) else Maze.from_row(row)
        rng = rng if rng is not None else np.random.default_rng(0)
        path = m.shortest_path()
        if kind == "shortest":
            out = path
        elif kind == "truncated":
            out = path[: int(rng.integers(1, len(path)))] if len(path) > 1 else []
        elif kind == "detour":
            cells = m.replay(path)[:-1]
            options = []
            for k, c in enumerate(cells):
                sides = [d for d in range(4) if m.bits[c] & _BIT[d] and MOVES[d] != path[k]]
                if sides:
                    options.append((k, sides))
            if not options:  # the start is a dead end and the path has one move: bump a wall instead
                options = [(0, [d for d in range(4) if not m.bits[m.start] & _BIT[d]])]
            k, sides = options[int(rng.integers(len(options)))]
            d = sides[int(rng.integers(len(sides)))]
            out = path[:k] + [MOVES[d], MOVES[_OPP[d]]] + path[k:]
        elif kind == "random":
            out = [MOVES[i] for i in rng.integers(0, 4, size=int(rng.integers(1, self.max_length + 1)))]
        else:
            raise QueryError(f"unknown kind {kind!r}; use shortest, truncated, detour or random")
        return out[: self.max_length]


def _mc(x: np.ndarray) -> MCMean:
    x = np.asarray(x, dtype=float)
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")
    return MCMean(float(x.mean()), se, int(len(x)))

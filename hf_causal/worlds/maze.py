"""Mazes: potential outcomes of variable-length move sequences under a high-dimensional confounder.

The world of issue #5 (method.md §9, "Maze"). Each row is one episode:

* ``size``: the grid is ``size x size`` cells, drawn uniformly from ``MazeWorld.sizes``.
* ``maze``: a *perfect* maze (a spanning tree of the grid) from randomized depth-first search
  (the recursive backtracker), as ``size**2`` cell tokens in row-major order. A cell token is
  the hex digit of its open sides, bits ``U=1, R=2, D=4, L=8``: ``"a"`` (8 + 2) is a
  left-right corridor, ``"f"`` a crossing.
* ``start``, ``goal``: two distinct cells (row-major index ``row * size + col``), drawn
  uniformly among the ordered pairs of distinct cells, independently of the walls.
* ``actions``: the move list (``U``/``D``/``L``/``R``) of a behaviour policy that looks at
  the maze. It *plans open loop*: it walks a noise-free mental copy of the maze from
  ``start``; each step takes the first move of the shortest path to the goal with probability
  ``p``, else one of the four moves uniformly (a move into a wall leaves it in place). It stops
  when its plan reaches the goal or after a horizon ``T ~ Uniform{min_horizon..max_length}``.
* ``reached``, ``distance``: the actions are then *executed*. Each move slips with probability
  ``eps``: it is replaced by one of the four moves drawn uniformly (possibly the intended one),
  so the intended move happens with probability ``1 - 3 eps / 4``. Walls block moves, and the
  goal is absorbing: once there the agent stays, so moves after reaching it change nothing.
  ``reached`` is 1 iff the agent ends at the goal (equivalently: visited it), ``distance`` is the
  final shortest-path distance to the goal in the maze (0 iff reached).

Why open loop: the plan depends on the maze, start and goal only, never on the slips, so the
slips (the outcome noise) are independent of the actions given the maze. Hence the maze, start
and goal block every back-door path, E[Y | A=a, maze] = E[Y | do(A=a), maze], and the graph
below is a faithful causal DAG. A policy that reacted to the realised (slipped) positions would
make the positions a hidden confounder that the graph does not show.

Confounding: the policy heads for the goal, so a short action list mostly comes from a start
next to the goal. The naive E[reached | actions = [R]] is large (the rows with that list mostly
reached the goal in one step), while E[reached | do(actions = [R])] over random mazes is small.

Ground truth is exact per maze: :meth:`MazeWorld.potential_outcome` propagates the distribution
of the agent's position through the forced moves (dynamic programming, no sampling).
:meth:`MazeWorld.population_outcome` averages that exact value over freshly sampled mazes
(Monte Carlo over mazes only; it reports the standard error).

Example:
    >>> w = MazeWorld()
    >>> df = w.sample(200, seed=0)
    >>> list(df.columns)
    ['size', 'start', 'goal', 'maze', 'actions', 'reached', 'distance']
    >>> row = df.iloc[0]
    >>> path = w.off_policy_actions(row, "shortest")          # 3 moves; slips make it uncertain
    >>> po = w.potential_outcome(row, path)
    >>> round(po.p_reached, 3), round(po.mean_distance, 3)
    (0.791, 0.518)
    >>> naive = w.naive_outcome(w.sample(3000, seed=0), ["R"])  # confounded: 0.64 +- 0.07 (44 rows)
    >>> pop = w.population_outcome(["R"], n_mazes=500, seed=1)  # interventional: 0.016 +- 0.005
    >>> naive.mean - pop["reached"].mean > 4 * (naive.se + pop["reached"].se)
    True
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..graph import CausalGraph, GraphError

__all__ = [
    "LAYOUTS",
    "MOVES",
    "Maze",
    "MazeWorld",
    "MCMean",
    "OutcomeDistribution",
    "generate_maze",
    "plot_maze",
]

MOVES: tuple[str, ...] = ("U", "D", "L", "R")
"""The action alphabet; a move's index in this tuple is its direction id."""
_BIT = (1, 4, 8, 2)  # U, D, L, R -> wall-opening bit (U=1, R=2, D=4, L=8)
_DR = (-1, 1, 0, 0)
_DC = (0, 0, -1, 1)
_OPP = (1, 0, 3, 2)
_IDX = {m: i for i, m in enumerate(MOVES)}
CELL_SYMBOLS: tuple[str, ...] = tuple(f"{b:x}{mark}" for mark in ("", "S", "G") for b in range(16))
"""The maze alphabet: hex digit of a cell's open sides (``U=1, R=2, D=4, L=8``), suffixed ``S`` on the
start cell and ``G`` on the goal cell (48 symbols; ``CELL_SYMBOLS[b]`` is the unmarked cell ``b``).
The marks put start and goal where the walls are: "the goal is the next cell to the right" is then
a relation between neighbouring tokens, which a small model learns far more easily than one between
two cell numbers."""


LAYOUTS = ("actions", "trajectory")
"""``actions``: the move list is one variable. ``trajectory``: an ``offset`` variable (the start's
position relative to the goal) joins the context, and one ``path`` variable interleaves each move
with the agent's position relative to the goal after it (``U -1+2 R -1+3 ...``): the states of
method.md §2's sequential processes. Relative positions make "at the goal" one token (``+0+0``)
and a move a fixed shift of the previous state, relations a small model learns from every step."""


def offset_token(cell: int, goal: int, size: int) -> str:
    """Row and column of ``cell`` minus those of ``goal``, signed: ``"-1+2"`` (one row up, two right)."""
    (r, c), (gr, gc) = divmod(cell, size), divmod(goal, size)
    return f"{r - gr:+d}{c - gc:+d}"


def offset_alphabet(max_size: int) -> list[str]:
    """All offsets on grids up to ``max_size`` (``(2 * max_size - 1) ** 2`` tokens)."""
    k = range(-(max_size - 1), max_size)
    return [f"{a:+d}{b:+d}" for a in k for b in k]


def maze_tokens(bits: Sequence[int], start: int, goal: int) -> list[str]:
    """Row-major cell tokens with the start and goal marks."""
    return [f"{b:x}" + ("S" if c == start else "G" if c == goal else "") for c, b in enumerate(bits)]


@cache
def _neighbours(size: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per cell: ``(direction id, neighbour cell)`` for the in-grid neighbours."""
    out = []
    for c in range(size * size):
        r, q = divmod(c, size)
        out.append(
            tuple(
                (d, (r + _DR[d]) * size + q + _DC[d])
                for d in range(4)
                if 0 <= r + _DR[d] < size and 0 <= q + _DC[d] < size
            )
        )
    return tuple(out)


def generate_maze(size: int, rng: np.random.Generator) -> list[int]:
    """A perfect ``size x size`` maze by randomized depth-first search (recursive backtracker).

    Returns the open-side bitmask of each cell in row-major order (``U=1, R=2, D=4, L=8``).
    The search starts at a uniformly drawn cell and carves into a uniformly drawn unvisited
    neighbour, backtracking at dead ends, so it carves exactly ``size**2 - 1`` passages.
    """
    n = size * size
    nb = _neighbours(size)
    bits = [0] * n
    visited = [False] * n
    u = rng.random(n).tolist()  # one uniform per carved passage (n - 1), plus the starting cell
    cur = min(int(u[-1] * n), n - 1)
    visited[cur] = True
    stack = [cur]
    i = 0
    while stack:
        c = stack[-1]
        cand = [(d, x) for d, x in nb[c] if not visited[x]]
        if not cand:
            stack.pop()
            continue
        d, x = cand[min(int(u[i] * len(cand)), len(cand) - 1)]
        i += 1
        bits[c] |= _BIT[d]
        bits[x] |= _BIT[_OPP[d]]
        visited[x] = True
        stack.append(x)
    return bits


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    return [str(s) for s in value]


@dataclass(eq=False)
class Maze:
    """One maze with its start and goal, parsed from a row; moves and distances on it.

    Attributes:
        size: cells per side.
        bits: open-side bitmask per cell, row-major (``U=1, R=2, D=4, L=8``).
        start, goal: cell indices.
        next_cell: ``next_cell[d][c]``, the cell reached from ``c`` by move ``MOVES[d]``
            (``c`` itself when a wall blocks it); the goal is *not* absorbing here.
        dist: shortest-path distance of every cell to the goal.
        toward_goal: direction id of the first move of the shortest path to the goal (-1 at the goal).
    """

    size: int
    bits: list[int]
    start: int
    goal: int
    next_cell: np.ndarray = field(init=False, repr=False)
    dist: np.ndarray = field(init=False, repr=False)
    toward_goal: list[int] = field(init=False, repr=False)
    _next: list[list[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.size * self.size
        if len(self.bits) != n:
            raise GraphError(f"maze has {len(self.bits)} cells, expected {n} for size {self.size}")
        for c in (self.start, self.goal):
            if not 0 <= c < n:
                raise GraphError(f"cell {c} is outside the {self.size}x{self.size} maze")
        # plain lists while building (numpy scalar indexing is slow), arrays at the end
        nxt = [list(range(n)) for _ in range(4)]
        adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for c, links in enumerate(_neighbours(self.size)):
            for d, x in links:
                if self.bits[c] & _BIT[d]:
                    nxt[d][c] = x
                    adj[c].append((d, x))
        dist = [-1] * n
        toward = [-1] * n
        dist[self.goal] = 0
        queue = deque([self.goal])
        while queue:
            c = queue.popleft()
            for d, x in adj[c]:
                if dist[x] < 0:
                    dist[x] = dist[c] + 1
                    toward[x] = _OPP[d]
                    queue.append(x)
        if min(dist) < 0:
            raise GraphError("maze is not connected: some cell cannot reach the goal")
        self._next = nxt
        self.next_cell = np.array(nxt, dtype=np.int64)
        self.dist = np.array(dist, dtype=np.int64)
        self.toward_goal = toward

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Maze:
        """Parse a row's ``maze`` (list or space-joined hex tokens), ``start`` and ``goal``."""
        toks = _as_list(row["maze"])
        size = math.isqrt(len(toks))
        if size * size != len(toks) or size < 2:
            raise GraphError(f"maze has {len(toks)} cell tokens, not a square number >= 4")
        if "size" in row and row["size"] is not None and int(row["size"]) != size:
            raise GraphError(f"row says size {row['size']} but its maze has {len(toks)} cells")
        try:
            bits = [int(t.rstrip("SG"), 16) for t in toks]
        except ValueError:
            raise GraphError(f"maze tokens must be hex digits 0-f (marked S/G), got {toks[:5]}...") from None
        marks = {m: [c for c, t in enumerate(toks) if t.endswith(m)] for m in ("S", "G")}
        start = int(row["start"]) if row.get("start") is not None else None
        goal = int(row["goal"]) if row.get("goal") is not None else None
        for name, m, v in (("start", "S", start), ("goal", "G", goal)):
            if marks[m] and (len(marks[m]) > 1 or (v is not None and marks[m][0] != v)):
                raise GraphError(f"maze marks {name} at cell(s) {marks[m]} but the row's {name} is {v}")
        start = start if start is not None else (marks["S"] or [None])[0]
        goal = goal if goal is not None else (marks["G"] or [None])[0]
        if start is None or goal is None:
            raise GraphError("row has no start/goal (neither columns nor S/G marks in the maze)")
        return cls(size, bits, start, goal)

    @property
    def n_cells(self) -> int:
        return self.size * self.size

    def move(self, cell: int, move: str) -> int:
        """The cell after ``move`` from ``cell``, walls blocking (the goal is not absorbing here)."""
        return self._next[_IDX[move]][cell]

    def shortest_path(self, cell: int | None = None) -> list[str]:
        """The moves of the (unique) shortest path from ``cell`` (default: start) to the goal."""
        c = self.start if cell is None else cell
        out = []
        while c != self.goal:
            d = self.toward_goal[c]
            out.append(MOVES[d])
            c = self._next[d][c]
        return out

    def replay(self, actions: Sequence[str], cell: int | None = None) -> list[int]:
        """Cells visited by a slip-free replay, start included; the goal is absorbing."""
        c = self.start if cell is None else cell
        cells = [c]
        for a in actions:
            if c != self.goal:
                c = self._next[_IDX[a]][c]
            cells.append(c)
        return cells


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
        raise GraphError(f"unknown maze outcome {outcome!r}; use 'reached' or 'distance'")


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
            raise GraphError(f"maze sizes must be distinct integers >= 2, got {self.sizes}")
        if not 0 <= self.p <= 1 or not 0 <= self.eps <= 1:
            raise GraphError(f"p and eps must be probabilities, got p={self.p}, eps={self.eps}")
        if self.layout not in LAYOUTS:
            raise GraphError(f"unknown maze layout {self.layout!r}; use one of {LAYOUTS}")
        if not 1 <= self.min_horizon <= self.max_length:
            raise GraphError(f"need 1 <= min_horizon <= max_length, got {self.min_horizon}, {self.max_length}")
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
        from ..interventions import PartialSequence

        acts = self._checked(actions)
        if self.layout == "actions":
            return {"actions": acts}
        return {"path": PartialSequence([x for a in acts for x in (a, None)])}

    def _checked(self, actions: Sequence[str] | str) -> list[str]:
        acts = _as_list(actions)
        bad = [a for a in acts if a not in _IDX]
        if bad:
            raise GraphError(f"action {bad[0]!r} is not one of {MOVES}")
        if len(acts) > self.max_length:
            raise GraphError(f"{len(acts)} moves exceed max_length {self.max_length}")
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
            raise GraphError(f"MazeWorld.sample supports do on 'actions' only, got {sorted(do)}")
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
            raise GraphError(f"action {bad[0]!r} is not one of {MOVES}")
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
            raise GraphError("population_outcome needs n_mazes >= 2 for a standard error")
        acts = self._checked(actions)
        rng = np.random.default_rng(seed)
        out = {k: np.empty(n_mazes) for k in OUTCOMES}
        for i in range(n_mazes):
            po = self.potential_outcome(self._draw(rng)[1], acts)
            out["reached"][i], out["distance"][i] = po.p_reached, po.mean_distance
        return out

    def naive_outcome(self, data: pd.DataFrame, actions: Sequence[str] | str, outcome: str = "reached") -> MCMean:
        """The confounded observational E[outcome | actions = a] from sampled rows (mean, SE, rows)."""
        if outcome not in OUTCOMES:
            raise GraphError(f"unknown maze outcome {outcome!r}; use 'reached' or 'distance'")
        key = tuple(self.moves_of(actions))
        col = "path" if "path" in data.columns else "actions"
        sel = data[data[col].map(lambda x: tuple(self.moves_of(x)) == key)]
        if len(sel) == 0:
            raise GraphError(f"no row has actions = {' '.join(key) or '(empty)'}")
        return _mc(sel[outcome].to_numpy(dtype=float))

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
            raise GraphError(f"unknown kind {kind!r}; use shortest, truncated, detour or random")
        return out[: self.max_length]


def _mc(x: np.ndarray) -> MCMean:
    x = np.asarray(x, dtype=float)
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")
    return MCMean(float(x.mean()), se, int(len(x)))


def _fmt_outcome(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, OutcomeDistribution):
        v = {"P(reached)": v.p_reached, "E[distance]": v.mean_distance}
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={x:.3g}" if isinstance(x, float) else f"{k}={x}" for k, x in v.items())
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def plot_maze(
    row: Mapping[str, Any] | Maze,
    actions: Sequence[str] | str = (),
    predicted: Any = None,
    true: Any = None,
    path: str | Path | None = None,
):
    """Draw a maze's walls, start (green), goal (red) and the slip-free replay of ``actions``.

    ``predicted`` / ``true``: a number, a mapping (e.g. ``{"P(reached)": 0.8}``) or an
    :class:`OutcomeDistribution`, shown in the title. With ``path`` the figure is also saved
    there. Returns the matplotlib Figure (Agg backend; close it with ``plt.close(fig)``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    m = row if isinstance(row, Maze) else Maze.from_row(row)
    s = m.size
    fig, ax = plt.subplots(figsize=(0.55 * s + 1.2, 0.55 * s + 1.4))
    for c, b in enumerate(m.bits):
        r, q = divmod(c, s)
        # y grows downwards so row 0 is on top
        if not b & 1:
            ax.plot([q, q + 1], [r, r], color="black", lw=2)
        if not b & 4:
            ax.plot([q, q + 1], [r + 1, r + 1], color="black", lw=2)
        if not b & 8:
            ax.plot([q, q], [r, r + 1], color="black", lw=2)
        if not b & 2:
            ax.plot([q + 1, q + 1], [r, r + 1], color="black", lw=2)
    acts = _as_list(actions)
    if acts:
        cells = m.replay(acts)
        xs = [c % s + 0.5 for c in cells]
        ys = [c // s + 0.5 for c in cells]
        ax.plot(xs, ys, color="#ff9d00", lw=2.5, alpha=0.8, zorder=2)
    for c, color, label in ((m.start, "#2ca02c", "start"), (m.goal, "#d62728", "goal")):
        ax.scatter([c % s + 0.5], [c // s + 0.5], s=120, color=color, zorder=3, label=label)
    ax.set_xlim(-0.1, s + 0.1)
    ax.set_ylim(s + 0.1, -0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    title = f"{s}x{s} maze, {len(acts)} moves"
    if predicted is not None:
        title += f"\npredicted: {_fmt_outcome(predicted)}"
    if true is not None:
        title += f"\ntrue: {_fmt_outcome(true)}"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=130)
    return fig

"""Perfect mazes: generation by randomized depth-first search, cell tokens, moves and distances (:class:`Maze`)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from ...errors import DataError

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
            raise DataError(f"maze has {len(self.bits)} cells, expected {n} for size {self.size}")
        for c in (self.start, self.goal):
            if not 0 <= c < n:
                raise DataError(f"cell {c} is outside the {self.size}x{self.size} maze")
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
            raise DataError("maze is not connected: some cell cannot reach the goal")
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
            raise DataError(f"maze has {len(toks)} cell tokens, not a square number >= 4")
        if "size" in row and row["size"] is not None and int(row["size"]) != size:
            raise DataError(f"row says size {row['size']} but its maze has {len(toks)} cells")
        try:
            bits = [int(t.rstrip("SG"), 16) for t in toks]
        except ValueError:
            raise DataError(f"maze tokens must be hex digits 0-f (marked S/G), got {toks[:5]}...") from None
        marks = {m: [c for c, t in enumerate(toks) if t.endswith(m)] for m in ("S", "G")}
        start = int(row["start"]) if row.get("start") is not None else None
        goal = int(row["goal"]) if row.get("goal") is not None else None
        for name, m, v in (("start", "S", start), ("goal", "G", goal)):
            if marks[m] and (len(marks[m]) > 1 or (v is not None and marks[m][0] != v)):
                raise DataError(f"maze marks {name} at cell(s) {marks[m]} but the row's {name} is {v}")
        start = start if start is not None else (marks["S"] or [None])[0]
        goal = goal if goal is not None else (marks["G"] or [None])[0]
        if start is None or goal is None:
            raise DataError("row has no start/goal (neither columns nor S/G marks in the maze)")
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

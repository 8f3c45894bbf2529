"""Mazes: potential outcomes of variable-length move sequences under a high-dimensional confounder.

Modules: ``grid`` (maze generation and :class:`Maze`), ``world`` (:class:`MazeWorld`), ``pictures``
(:func:`plot_maze`). The naive observational baseline is ``benchmarks.baselines.maze_naive_outcome``.

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
    >>> pop = w.population_outcome(["R"], n_mazes=500, seed=1)  # interventional: 0.016 +- 0.005
    >>> round(pop["reached"].mean, 3)
    0.016
"""

from ..registry import register_world
from .grid import CELL_SYMBOLS, LAYOUTS, MOVES, Maze, generate_maze, maze_tokens, offset_alphabet, offset_token
from .pictures import plot_maze
from .world import OUTCOMES, MazeWorld, MCMean, OutcomeDistribution

__all__ = [
    "CELL_SYMBOLS",
    "LAYOUTS",
    "MOVES",
    "OUTCOMES",
    "Maze",
    "MazeWorld",
    "MCMean",
    "OutcomeDistribution",
    "generate_maze",
    "maze_tokens",
    "offset_alphabet",
    "offset_token",
    "plot_maze",
]

register_world("maze", MazeWorld)

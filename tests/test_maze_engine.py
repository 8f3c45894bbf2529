"""The engine's mechanics on the maze world (issue #5): do() on a variable-length move list, the maze
as given context, refusals. The session's small maze model is barely trained: it does not learn the
maze -> outcome relation (issue #5 stays open; see benchmarks/maze.py for the measured errors)."""

import pytest
from conftest import MAZE_OPTIONS

from hf_causal import CausalEngine, UnsupportedQueryError
from hf_causal.worlds.maze import MazeWorld

CONTEXT = ["size", "maze", "start", "goal"]


@pytest.fixture(scope="module")
def maze_world():
    return MazeWorld(**MAZE_OPTIONS)


@pytest.fixture(scope="module")
def maze_engine(maze_model_dir):
    return CausalEngine.from_pretrained(maze_model_dir)


def test_per_maze_query_and_refusals(maze_engine, maze_world):
    row = maze_world.sample(1, seed=5).iloc[0].to_dict()
    given = {k: row[k] for k in CONTEXT}
    path = maze_world.off_policy_actions(row, "shortest")
    d = maze_engine.query("reached", do={"actions": path}, given=given, num_samples=4)
    assert set(d.probs) == {0, 1} and sum(d.probs.values()) == pytest.approx(1.0)
    with pytest.raises(UnsupportedQueryError, match="sequence"):
        maze_engine.query("actions", given=given)  # a list has no finite support to return
    with pytest.raises(UnsupportedQueryError, match="descendant"):
        maze_engine.query("distance", do={"actions": path}, given={**given, "reached": 1})

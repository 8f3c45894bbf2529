import math
import re
from collections import Counter, deque

import numpy as np
import pandas as pd
import pytest

from benchmarks.baselines import maze_naive_outcome
from hf_causal.errors import DataError, HfCausalError
from hf_causal.graph import CausalGraph
from hf_causal.sequencify import Sequencifier
from hf_causal.tokenization import CausalTokenizer
from hf_causal.worlds.maze import MOVES, Maze, MazeWorld, generate_maze, offset_token, plot_maze


@pytest.fixture(scope="module")
def world():
    return MazeWorld()


@pytest.fixture(scope="module")
def obs(world):
    return world.sample(3000, seed=0)


def _passages(bits, size):
    """Undirected open passages, checking that each opening is mirrored by the neighbour."""
    edges = set()
    for c, b in enumerate(bits):
        r, q = divmod(c, size)
        for bit, dr, dq, back in ((1, -1, 0, 4), (4, 1, 0, 1), (8, 0, -1, 2), (2, 0, 1, 8)):
            if b & bit:
                r2, q2 = r + dr, q + dq
                assert 0 <= r2 < size and 0 <= q2 < size, "opening through the outer wall"
                assert bits[r2 * size + q2] & back, "wall is not symmetric"
                edges.add(frozenset((c, r2 * size + q2)))
    return edges


@pytest.mark.parametrize("size", [2, 5, 6, 7, 8])
def test_generated_mazes_are_perfect(size):
    for seed in range(40):
        bits = generate_maze(size, np.random.default_rng([size, seed]))
        n = size * size
        edges = _passages(bits, size)
        assert len(edges) == n - 1  # a tree has n - 1 edges ...
        adj = {c: [] for c in range(n)}
        for e in edges:
            a, b = tuple(e)
            adj[a].append(b)
            adj[b].append(a)
        seen, queue = {0}, deque([0])
        while queue:
            for x in adj[queue.popleft()]:
                if x not in seen:
                    seen.add(x)
                    queue.append(x)
        assert len(seen) == n  # ... and connected with n - 1 edges means no cycle


def test_sampled_rows_are_valid_and_seeded(world, obs):
    assert list(obs.columns) == world.graph.order
    assert set(obs["size"]) == set(world.sizes)
    for _, row in obs.head(300).iterrows():
        m = Maze.from_row(row)
        assert len(_passages(m.bits, m.size)) == m.n_cells - 1
        assert m.start != m.goal
        assert row["reached"] == int(row["distance"] == 0)
    again = world.sample(50, seed=0)
    assert again.equals(obs.head(50))
    assert not world.sample(50, seed=1).equals(again)


def test_moves_respect_walls():
    m = Maze(3, [2, 12, 4, 6, 11, 13, 3, 8, 1], start=0, goal=8)
    #  0 - 1   2      row-major 3x3, bits U=1 R=2 D=4 L=8
    #      |   |
    #  3 - 4 - 5
    #  |       |
    #  6 - 7   8
    assert len(_passages(m.bits, 3)) == 8
    assert m.move(0, "R") == 1 and m.move(0, "D") == 0 and m.move(0, "U") == 0 and m.move(0, "L") == 0
    assert m.move(1, "D") == 4 and m.move(1, "R") == 1
    assert m.move(4, "L") == 3 and m.move(4, "R") == 5 and m.move(4, "U") == 1 and m.move(4, "D") == 4
    assert m.move(6, "R") == 7 and m.move(7, "R") == 7
    assert m.shortest_path() == ["R", "D", "R", "D"]
    assert m.dist.tolist() == [4, 3, 2, 3, 2, 1, 4, 5, 0]
    assert m.replay(["R", "D", "R", "D", "U", "L"]) == [0, 1, 4, 5, 8, 8, 8]  # the goal is absorbing
    # an exhaustive check on a random maze: through an opening to the adjacent cell, else stay
    m = Maze.from_row(MazeWorld().sample(1, seed=5).iloc[0])
    for c in range(m.n_cells):
        for d, (bit, dr, dq) in zip(MOVES, ((1, -1, 0), (4, 1, 0), (8, 0, -1), (2, 0, 1))):
            r, q = divmod(c, m.size)
            assert m.move(c, d) == ((r + dr) * m.size + q + dq if m.bits[c] & bit else c)


def test_behaviour_stops_at_the_goal_and_respects_max_length(obs):
    for _, row in obs.head(1000).iterrows():
        acts = row["actions"]
        assert 1 <= len(acts) <= 64 and set(acts) <= set(MOVES)
        cells = Maze.from_row(row).replay(acts)
        assert row["goal"] not in cells[:-1]  # the plan never passes the goal and goes on
    short = MazeWorld(max_length=6, p=0.5)
    df = short.sample(400, seed=2)
    assert df["actions"].map(len).max() <= 6
    planned = [Maze.from_row(r).replay(r["actions"])[-1] == r["goal"] for _, r in df.iterrows()]
    assert 0 < np.mean(planned) < 1  # some plans stop at the goal, some at the horizon


def _monte_carlo(world, row, acts, n, seed):
    rng, m = np.random.default_rng(seed), Maze.from_row(row)
    runs = [world.execute(m, acts, rng) for _ in range(n)]
    return np.array([r["reached"] for r in runs]), np.array([r["distance"] for r in runs])


def test_exact_potential_outcome_matches_monte_carlo_rollouts():
    w = MazeWorld(eps=0.25)
    df = w.sample(4, seed=7)
    rng = np.random.default_rng(0)
    for i, (_, row) in enumerate(df.iterrows()):
        for acts in (
            row["actions"],
            w.off_policy_actions(row, "detour", rng),
            w.off_policy_actions(row, "random", rng),
        ):
            po = w.potential_outcome(row, acts)
            assert abs(sum(po.reached.values()) - 1) < 1e-12 and abs(sum(po.distance.values()) - 1) < 1e-12
            assert abs(po.position.sum() - 1) < 1e-12
            reached, dist = _monte_carlo(w, row, acts, 2000, seed=i)
            se_r = math.sqrt(max(po.p_reached * (1 - po.p_reached), 1e-4) / len(reached))
            assert abs(reached.mean() - po.p_reached) < 4 * se_r
            sd_d = math.sqrt(sum(p * (d - po.mean_distance) ** 2 for d, p in po.distance.items()))
            assert abs(dist.mean() - po.mean_distance) < 4 * max(sd_d, 0.05) / math.sqrt(len(dist))
            emp = Counter(dist.tolist())
            assert set(emp) <= set(po.distance)  # every simulated distance has positive exact probability


def test_without_slips_the_outcome_is_the_deterministic_replay():
    w = MazeWorld(eps=0.0)
    df = w.sample(30, seed=4)
    rng = np.random.default_rng(1)
    for _, row in df.iterrows():
        m = Maze.from_row(row)
        for acts in (
            row["actions"],
            w.off_policy_actions(row, "random", rng),
            w.off_policy_actions(row, "truncated", rng),
        ):
            po = w.potential_outcome(row, acts)
            end = m.replay(acts)[-1]
            assert po.position[end] == 1.0
            assert po.reached[1] == float(end == m.goal) and po.distance == {int(m.dist[end]): 1.0}
            assert w.execute(row, acts, rng) == {
                "reached": int(end == m.goal),
                "distance": int(m.dist[end]),
                "cell": end,
                "cells": m.replay(acts)[1:],
            }
        # observed outcomes are the replay of the observed actions
        assert row["distance"] == m.dist[m.replay(row["actions"])[-1]]


def test_actions_are_unconfounded_given_the_maze():
    """The open-loop policy ignores the slips, so E[Y | A=a, maze] = E[Y | do(A=a), maze]."""
    w = MazeWorld(eps=0.3)
    row = w.sample(1, seed=11).iloc[0]
    m = Maze.from_row(row)
    rng = np.random.default_rng(3)
    groups: dict[tuple, list[int]] = {}
    for _ in range(4000):
        acts = w.behaviour(m, rng)
        groups.setdefault(tuple(acts), []).append(w.execute(m, acts, rng)["reached"])
    checked = 0
    for acts, ys in sorted(groups.items(), key=lambda kv: -len(kv[1]))[:3]:
        p = w.expected(m, list(acts))
        assert abs(np.mean(ys) - p) < 4 * math.sqrt(max(p * (1 - p), 1e-3) / len(ys))
        checked += len(ys) >= 50
    assert checked >= 1


def test_observational_rows_are_confounded(world, obs):
    """The naive E[Y | A=[R]] is far from E[Y | do(A=[R])]: short lists mostly come from starts next to the goal."""
    pop = world.population_outcome(["R"], n_mazes=1500, seed=1)
    for outcome in ("reached", "distance"):
        naive = maze_naive_outcome(world, obs, ["R"], outcome)
        assert naive.n >= 20
        gap = abs(naive.mean - pop[outcome].mean)
        assert gap > 4 * math.hypot(naive.se, pop[outcome].se), (outcome, naive, pop[outcome])
    assert maze_naive_outcome(world, obs, ["R"]).mean > 0.3 > 0.05 > pop["reached"].mean


def test_population_outcome_is_seeded_and_paired(world):
    a = world.population_outcome(["R", "R", "D"], n_mazes=200, seed=2)
    assert a == world.population_outcome("R R D", n_mazes=200, seed=2)
    assert 0 <= a["reached"].mean <= 1 and a["reached"].se > 0 and a["distance"].n == 200
    eff = world.population_effect(["R", "R", "D"], ["R"], n_mazes=200, seed=2)
    b = world.population_outcome(["R"], n_mazes=200, seed=2)
    assert abs(eff["distance"].mean - (a["distance"].mean - b["distance"].mean)) < 1e-12
    with pytest.raises(DataError, match="no row has actions"):
        maze_naive_outcome(world, world.sample(5, seed=0), ["U"] * 40)
    with pytest.raises(HfCausalError, match=".X. is not one of"):
        world.population_outcome(["X"], n_mazes=5)


def test_off_policy_action_lists(world, obs):
    rng = np.random.default_rng(0)
    noslip = MazeWorld(eps=0.0)
    for _, row in obs.head(100).iterrows():
        m = Maze.from_row(row)
        path = world.off_policy_actions(row, "shortest")
        assert len(path) == m.dist[m.start] and noslip.expected(row, path) == 1.0
        detour = world.off_policy_actions(row, "detour", rng)
        assert len(detour) == len(path) + 2 and noslip.expected(row, detour) == 1.0
        trunc = world.off_policy_actions(row, "truncated", rng)
        assert len(trunc) < len(path) and path[: len(trunc)] == trunc and noslip.expected(row, trunc) == 0.0
        rand = world.off_policy_actions(row, "random", rng)
        assert 1 <= len(rand) <= world.max_length and set(rand) <= set(MOVES)
    with pytest.raises(HfCausalError, match="unknown kind"):
        world.off_policy_actions(obs.iloc[0], "sideways")


def test_graph_spec_and_codec_round_trip(world, obs):
    g = world.graph
    assert g.order == ["size", "start", "goal", "maze", "actions", "reached", "distance"]
    assert set(g.parents("actions")) == {"size", "maze", "start", "goal"}
    assert set(g.parents("distance")) == {"size", "maze", "start", "goal", "actions", "reached"}
    # back-door criterion: with the edges out of actions removed, the context separates actions from the outcomes
    cut = CausalGraph(g.variables, [e for e in g.edges if e[0] != "actions"])
    assert cut.d_separated({"actions"}, {"reached", "distance"}, {"size", "maze", "start", "goal"})
    assert CausalGraph.from_dict(g.to_dict()).to_dict() == g.to_dict()
    tok = CausalTokenizer.build(g)
    rows = obs.head(200)
    for policy in ("canonical", "random"):
        seq = Sequencifier(tok, policy, seed=1)
        out = seq({c: rows[c].tolist() for c in rows.columns}, list(range(len(rows))))
        for ids, (_, row) in zip(out["input_ids"], rows.iterrows()):
            assert len(ids) <= 7 + 64 + 64 + 5 + 1
            assert seq.decode(ids) == row.to_dict()
    # space-joined strings (CSV, datasets) encode the same way
    r = obs.iloc[0].to_dict()
    joined = {**r, "maze": " ".join(r["maze"]), "actions": " ".join(r["actions"])}
    assert seq.encode_row(joined) == seq.encode_row(r)
    assert (
        world.potential_outcome(joined, joined["actions"]).reached == world.potential_outcome(r, r["actions"]).reached
    )


def test_sample_under_do_and_bad_input(world):
    df = world.sample(300, seed=3, do={"actions": ["D", "D", "R"]})
    assert (df["actions"].map(tuple) == ("D", "D", "R")).all()
    pop = world.population_outcome(["D", "D", "R"], n_mazes=300, seed=3)
    assert abs(df["reached"].mean() - pop["reached"].mean) < 0.06
    with pytest.raises(HfCausalError, match="do on 'actions' only"):
        world.sample(2, do={"maze": ["0"] * 25})
    with pytest.raises(HfCausalError, match="square"):
        Maze.from_row({"maze": ["0"] * 24, "start": 0, "goal": 1})
    with pytest.raises(HfCausalError, match="not connected"):
        Maze.from_row({"maze": ["0"] * 4, "start": 0, "goal": 1})
    with pytest.raises(HfCausalError, match="min_horizon"):
        MazeWorld(min_horizon=0)


def test_plot_maze(world, obs, tmp_path):
    import matplotlib.pyplot as plt

    row = obs.iloc[0]
    acts = world.off_policy_actions(row, "detour")
    po = world.potential_outcome(row, acts)
    fig = plot_maze(row, acts, predicted={"P(reached)": 0.5}, true=po, path=tmp_path / "maze.png")
    assert (tmp_path / "maze.png").stat().st_size > 1000
    assert "predicted: P(reached)=0.5" in fig.axes[0].get_title() and "true: P(reached)=" in fig.axes[0].get_title()
    plt.close(fig)


def test_trajectory_layout_interleaves_moves_with_the_cells_they_led_to():
    acts_world = MazeWorld(sizes=(5, 6), max_length=16)
    traj_world = MazeWorld(sizes=(5, 6), max_length=16, layout="trajectory")
    a, t = acts_world.sample(200, seed=9), traj_world.sample(200, seed=9)
    # same episodes for the same seed; only the treatment column differs
    pd.testing.assert_frame_equal(a.drop(columns="actions"), t.drop(columns=["path", "offset"]))
    assert list(t.columns) == ["size", "start", "goal", "maze", "offset", "path", "reached", "distance"]
    slipped = 0
    for (_, ra), (_, rt) in zip(a.iterrows(), t.iterrows()):
        m = Maze.from_row(ra)
        path = rt["path"]
        assert traj_world.moves_of(path) == list(ra["actions"]) and len(path) == 2 * len(ra["actions"])
        gr, gc = divmod(m.goal, m.size)
        offsets = [re.fullmatch(r"([+-]\d+)([+-]\d+)", x).groups() for x in path[1::2]]
        cells = [(gr + int(dr)) * m.size + gc + int(dc) for dr, dc in offsets]
        assert rt["offset"] == offset_token(m.start, m.goal, m.size)
        prev = m.start
        for mv, c in zip(path[0::2], cells):
            # each cell is a neighbour reachable through an open side (or a wall bump), the goal absorbs
            reachable = {m.move(prev, d) for d in MOVES} if prev != m.goal else {m.goal}
            assert c in reachable
            slipped += c != (m.move(prev, mv) if prev != m.goal else prev)
            prev = c
        assert rt["reached"] == int(prev == m.goal) and rt["distance"] == m.dist[prev]
    assert slipped > 0  # eps = 0.1 makes some cells differ from the slip-free replay
    # the engine's do: moves forced, cells sampled
    part = traj_world.do(["U", "R"])["path"]
    assert part.forced == {0: "U", 2: "R"} and part.length == 4
    assert acts_world.do(["U", "R"]) == {"actions": ["U", "R"]}
    with pytest.raises(HfCausalError, match="'X'"):
        traj_world.do(["U", "X"])
    assert traj_world.graph["path"].max_length == 32 and {"+5-5", "-5+5", "+0+0"} <= set(
        traj_world.graph["path"].alphabet
    )
    # naive conditional reads the moves of the path
    assert maze_naive_outcome(traj_world, t, ["R"]).n == maze_naive_outcome(acts_world, a, ["R"]).n

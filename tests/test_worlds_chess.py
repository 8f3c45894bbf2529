"""The chess endgame world: move generation, DTM tables, exact DP vs Monte Carlo, codecs, plotting."""

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.baselines import chess_check_win_rate
from hf_causal.errors import HfCausalError
from hf_causal.sequencify import Sequencifier
from hf_causal.tokenization import CausalTokenizer
from hf_causal.worlds.chess import (
    ChessWorld,
    IllegalMoveError,
    Position,
    game_status,
    is_check,
    is_legal_position,
    legal_moves,
    movegen,
    piece_moves,
    plot_position,
    push,
    square_name,
    tablebase,
    tables,
)

Z = 4.0  # Monte Carlo tolerance in standard errors


@pytest.fixture(scope="module", autouse=True)
def _dtm_cache_in_tmp(tmp_path_factory):
    """Keep the on-disk DTM cache out of the user's home while this module builds the tables."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_CAUSAL_CACHE", str(tmp_path_factory.mktemp("hf_causal_cache")))
        yield


@pytest.fixture(scope="module")
def world():
    return ChessWorld()


def _pos(tokens: str, white_to_move: bool = True) -> Position:
    p = Position.parse(tokens)
    return Position(p.material, p.wk, p.piece, p.bk, white_to_move)


def _binomial_close(p_exact: float, hits: int, n: int) -> None:
    se = math.sqrt(max(p_exact * (1 - p_exact), 1e-4) / n)
    assert abs(hits / n - p_exact) <= Z * se, (hits / n, p_exact, se)


# --- move generation ----------------------------------------------------------------------------


def test_known_positions():
    # KQK: Qb1-b7 mates a king on a8 (the queen is defended by Ka6)
    mate_in_1 = _pos("K:a6 Q:b1 k:a8")
    assert "b1b7" in legal_moves(mate_in_1)
    after = push(mate_in_1, "b1b7")
    assert game_status(after) == "checkmate" and legal_moves(after) == []
    # KRK: back-rank mate
    assert game_status(_pos("K:a6 R:h8 k:a8", white_to_move=False)) == "checkmate"
    # stalemates: Qc7 / Rb1 take every square of a king on a8 without giving check
    assert game_status(_pos("K:e1 Q:c7 k:a8", white_to_move=False)) == "stalemate"
    assert game_status(_pos("K:a6 R:b1 k:a8", white_to_move=False)) == "stalemate"
    # an undefended queen next to the king is taken: insufficient material; a defended one is not
    hanging = _pos("K:e1 Q:b7 k:a8", white_to_move=False)
    assert "a8b7" in legal_moves(hanging)
    assert game_status(push(hanging, "a8b7")) == "insufficient"
    assert legal_moves(_pos("K:a6 Q:b7 k:a8", white_to_move=False)) == []
    # sliding pieces are blocked by kings; the black king may not hide behind itself (x-ray)
    assert "a1a8" not in legal_moves(_pos("K:a4 R:a1 k:h8"))
    assert "e7e8" not in legal_moves(_pos("K:h1 R:e1 k:e7", white_to_move=False))
    # a position where the side not to move is in check is illegal
    assert not is_legal_position(_pos("K:e1 Q:e2 k:e8"))
    with pytest.raises(IllegalMoveError, match="not legal"):
        push(mate_in_1, "a6a7")  # kings may not stand next to each other
    assert Position.parse(mate_in_1.fen()) == mate_in_1


@pytest.mark.parametrize("material", ["KQK", "KRK"])
def test_scalar_generator_agrees_with_tables_and_rules(material):
    t = tables(material)
    rng = np.random.default_rng(0)
    for white, legal, succ, code in ((True, t.legal_w, t.succ_w, t.code_w), (False, t.legal_b, t.succ_b, t.code_b)):
        for i in rng.choice(np.flatnonzero(legal), 150, replace=False):
            pos = Position.from_index(material, int(i), white)
            moves = legal_moves(pos)
            table = {movegen._uci(int(c)): int(s) for s, c in zip(succ[i], code[i]) if s != movegen._PAD}
            checks = {movegen._uci(int(c)): bool(k) for c, k in zip(t.code_w[i], t.check_w[i])} if white else {}
            assert set(moves) == set(table) and len(moves) == len(table)
            for m in moves:
                nxt = push(pos, m)
                assert int(movegen._DIST[nxt.wk, nxt.bk]) > 1  # kings never adjacent
                if nxt.piece is None:
                    assert table[m] == movegen._CAPTURE
                    continue
                assert is_legal_position(nxt)  # in particular the mover's king is not left in check
                assert nxt.index == table[m]
                if white:
                    assert is_check(pos, m) == checks[m]
    assert (t.n_moves_w[t.legal_w] > 0).all()  # White always has a move
    for i in np.flatnonzero(t.mate_b)[:50]:
        assert game_status(Position.from_index(material, int(i), False)) == "checkmate"
    for i in np.flatnonzero(t.stalemate_b)[:50]:
        assert game_status(Position.from_index(material, int(i), False)) == "stalemate"


# --- distance to mate ---------------------------------------------------------------------------


@pytest.mark.parametrize("material, longest", [("KQK", 19), ("KRK", 31)])
def test_dtm_tables(material, longest):
    t = tables(material)
    # the longest mates: KQK 10 moves, KRK 16 moves (plies, White to move); every such position wins
    assert int(t.dtm_w[t.legal_w].max()) == longest
    assert (t.dtm_w[t.legal_w] >= 1).all()
    assert (t.dtm_b[t.mate_b] == 0).all()
    # Bellman consistency on a sample: White takes the fastest mate, Black the slowest
    rng = np.random.default_rng(1)
    for i in rng.choice(np.flatnonzero(t.legal_w), 300, replace=False):
        s = t.succ_w[i][t.succ_w[i] != movegen._PAD]
        d = t.dtm_b[s]
        assert t.dtm_w[i] == 1 + d[d >= 0].min()
    for i in rng.choice(np.flatnonzero(t.legal_b & ~t.mate_b & ~t.stalemate_b), 300, replace=False):
        s = t.succ_b[i][t.succ_b[i] != movegen._PAD]
        if (s == movegen._CAPTURE).any() or (t.dtm_w[s[s != movegen._CAPTURE]] < 0).any():
            assert t.dtm_b[i] == -1
        else:
            assert t.dtm_b[i] == 1 + t.dtm_w[s].max()


def test_known_dtm_values():
    assert tables("KQK").dtm_w[_pos("K:a6 Q:b1 k:a8").index] == 1
    assert tables("KRK").dtm_w[_pos("K:a6 R:h1 k:a8").index] == 1
    assert tables("KRK").dtm_b[_pos("K:a6 R:h8 k:a8").index] == 0


def test_dtm_disk_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_CAUSAL_CACHE", str(tmp_path))
    t = tables("KQK")
    tablebase._save_dtm("KQK", t.dtm_w, t.dtm_b)
    files = list((tmp_path / "chess").iterdir())
    assert [f.name for f in files] == [f"dtm_KQK_v{tablebase._TABLE_VERSION}.npz"]  # no temp file left behind
    dtm_w, dtm_b = tablebase._load_dtm("KQK")
    assert np.array_equal(dtm_w, t.dtm_w) and np.array_equal(dtm_b, t.dtm_b)
    files[0].write_bytes(b"not an npz")
    assert tablebase._load_dtm("KQK") is None  # a corrupt cache is rebuilt, never trusted
    monkeypatch.setenv("HF_CAUSAL_CACHE", "")
    assert tablebase._cache_dir() is None


# --- exact answers ------------------------------------------------------------------------------


def test_exact_dp_is_consistent(world):
    pos = _pos("K:e1 R:a1 k:e8")
    out = world.outcome_distribution(pos)
    assert abs(sum(out.probs.values()) - 1) < 1e-12 and out.p_legal == 1.0
    assert max(k for _, k in out.probs) <= world.max_plies
    values = world.first_move_values(pos)
    assert list(values) == sorted(values, key=lambda m: -values[m])
    assert set(values) == set(legal_moves(pos))
    policy = world.move_probabilities(pos)
    assert abs(sum(policy.values()) - 1) < 1e-12
    # forward DP (one position) and backward DP (all states) agree
    assert abs(out.p_win - sum(policy[m] * values[m] for m in values)) < 1e-9
    for m in list(values)[:2] + list(values)[-1:]:
        assert abs(world.outcome_distribution(pos, forced={0: m}).p_win - values[m]) < 1e-9
    # a mate in one, forced, wins at ply 1
    assert world.outcome_distribution(_pos("K:a6 Q:b1 k:a8"), forced=["b1b7"]).probs == {("win", 1): 1.0}


def test_illegal_forced_moves(world):
    pos = _pos("K:e3 Q:d1 k:e5")
    with pytest.raises(IllegalMoveError, match="at ply 0"):
        world.outcome_distribution(pos, forced={0: "d1e5"})
    line = {0: "d1d7", 2: "e3d3", 4: "d3e4"}  # Black's replies can make d3-e4 illegal
    with pytest.raises(IllegalMoveError, match="at ply 4"):
        world.outcome_distribution(pos, forced=line)
    out = world.outcome_distribution(pos, forced=line, on_illegal="condition")
    assert 0.2 < out.p_legal < 0.95 and abs(sum(out.probs.values()) - 1) < 1e-12


def _mc_check(world, pos, forced, n, seed, on_illegal="raise"):
    exact = world.outcome_distribution(pos, forced=forced, on_illegal=on_illegal)
    df = world.sample(n, seed=seed, position=pos, forced=forced, on_illegal=on_illegal)
    _binomial_close(exact.p_legal, len(df), n)
    wins = int((df["result"] == "win").sum())
    _binomial_close(exact.p_win, wins, len(df))
    var = sum(k * k * p for (_, k), p in exact.probs.items()) - exact.mean_plies**2
    assert abs(df["plies"].mean() - exact.mean_plies) <= Z * math.sqrt(var / len(df)) + 1e-9
    if isinstance(forced, dict) and 0 in forced:
        assert (df["first_move"] == forced[0]).all()
    return exact, df


def test_partial_intervention_matches_monte_carlo(world):
    pos = _pos("K:e1 R:a1 k:e8")
    exact, _ = _mc_check(world, pos, {0: "e1d2"}, n=3000, seed=11)  # a quiet king move, then the policy
    assert 0.3 < exact.p_win < 0.9
    # several forced White plies; branches where the line turns illegal are conditioned away
    _mc_check(world, _pos("K:e3 Q:d1 k:e5"), {0: "d1d7", 2: "e3d3", 4: "d3e4"}, 3000, 12, "condition")


def test_complete_intervention_matches_monte_carlo(world):
    # every White move of a recorded game is forced; Black replies by policy
    line = ["d1d7", "e3d3", "d3e4", "e4f4", "d7g7", "g7h8"]
    exact, df = _mc_check(world, _pos("K:e3 Q:d1 k:e5"), line, 3000, 13, "condition")
    assert exact.p_legal < 0.9
    for first, rest in zip(df["first_move"], df["continuation"]):
        played = [first] + rest[1::2]
        assert played[: len(line)] == line[: len(played)]


def test_check_intervention_is_confounded(world):
    df = world.sample(6000, seed=5)
    obs, se = chess_check_win_rate(df)
    obs_exact, _ = world.observational_check()
    assert abs(obs - obs_exact) <= Z * se  # the sampler and the exact observational value agree
    do_check = world.population_check_effect(check=True)
    # the benchmark is meaningful: P(win | check) and P(win | do(check)) differ beyond sampling error
    assert abs(obs - do_check) > Z * se
    assert obs_exact - do_check > 0.05
    # do(first_check=True) by sampling agrees with the exact interventional value
    dfi = world.sample(3000, seed=6, first_check=True)
    assert dfi["first_check"].all()
    _binomial_close(do_check, int((dfi["result"] == "win").sum()), len(dfi))
    assert 0 < world.population_check_effect(check=True, mode="uniform") < do_check


# --- data and plumbing --------------------------------------------------------------------------


def test_sample_columns_and_outcome_rates(world):
    df = world.sample(2000, seed=0)
    assert list(df.columns) == world.graph.order
    assert set(df["material"]) == {"KQK", "KRK"}
    assert (df["plies"] == 1 + df["continuation"].map(len)).all()
    rates = df.groupby("material")["result"].apply(lambda r: (r == "win").mean())
    assert 0.75 < rates["KQK"] < 0.97 and 0.5 < rates["KRK"] < rates["KQK"]
    assert world.sample(5, seed=3).equals(world.sample(5, seed=3))


def _same(a, b) -> bool:
    return (a is None or (isinstance(a, float) and math.isnan(a))) if b is None else a == b


@pytest.mark.parametrize("layout, max_plies, fmt", [("split", 30, "uci"), ("plies", 8, "uci"), ("split", 20, "piece")])
def test_codec_round_trip(layout, max_plies, fmt):
    w = ChessWorld(layout=layout, max_plies=max_plies, move_format=fmt)
    df = w.sample(120, seed=2)
    tok = CausalTokenizer.build(w.graph)
    for policy in ("canonical", "random"):
        s = Sequencifier(tok, policy, seed=4)
        out = s({k: df[k].tolist() for k in df.columns}, list(range(len(df))))
        for i, ids in enumerate(out["input_ids"]):
            back = s.decode(ids)
            row = {k: df[k].iloc[i] for k in df.columns}
            assert set(back) == set(row)
            assert all(_same(row[k], back[k]) for k in row), (row, back)


def test_graph_supports_the_queries():
    g = ChessWorld().graph
    assert g.order == ["material", "position", "first_check", "first_move", "continuation", "result", "plies"]
    assert "first_check" in g.parents("first_move") and "position" in g.parents("first_check")
    assert {"first_move", "continuation"} <= g.descendants("first_check")
    # position is the only back-door path from the first move to the result
    assert g.d_separated({"first_check"}, {"result"}, {"position", "first_move", "continuation"})
    q = ChessWorld().engine_query("K:e1 Q:d1 k:e8", "d1d7")
    assert q == {
        "given": {"material": "KQK", "position": ["K:e1", "Q:d1", "k:e8"]},
        "do": {"first_check": True, "first_move": "d1d7"},
    }
    assert not ChessWorld().engine_query("K:e1 Q:d1 k:e8", "d1d2")["do"]["first_check"]
    gp = ChessWorld(layout="plies", max_plies=6).graph
    assert gp.order[3:9] == ["w1", "b1", "w2", "b2", "w3", "b3"] and gp["b3"].missing == "as_value"


def test_plot_position(tmp_path, world):
    pos = _pos("K:c6 Q:d1 k:a8")
    values = world.first_move_values(pos)
    fig = plot_position(pos, {m: (None if i else 0.5, v) for i, (m, v) in enumerate(list(values.items())[:5])})
    fig.savefig(tmp_path / "board.png")
    assert (tmp_path / "board.png").stat().st_size > 1000


def test_piece_move_format_is_the_same_games():
    """``move_format="piece"`` writes each move as the moved piece and its new square: same games, and
    replaying the tokens reproduces every position (so the board is the last token of each piece)."""
    uci, piece = ChessWorld(max_plies=20), ChessWorld(max_plies=20, move_format="piece")
    a, b = uci.sample(300, seed=8), piece.sample(300, seed=8)
    pd.testing.assert_frame_equal(
        a.drop(columns=["first_move", "continuation"]), b.drop(columns=["first_move", "continuation"])
    )
    captures = 0
    for (_, ra), (_, rb) in zip(a.iterrows(), b.iterrows()):
        pos = Position.parse(ra["position"])
        game_uci, game_piece = [ra["first_move"], *ra["continuation"]], [rb["first_move"], *rb["continuation"]]
        assert piece_moves(pos, game_uci) == game_piece
        for m, tok in zip(game_uci, game_piece):
            nxt = push(pos, m)
            mover = {"K": nxt.wk, "k": nxt.bk, pos.letter: nxt.piece}[tok[0]]
            assert square_name(mover) == tok[2:]
            captures += nxt.piece is None
            pos = nxt
    assert captures > 0  # Black taking White's piece is among the games
    assert set(piece.graph["continuation"].alphabet) == set(piece.graph["position"].alphabet)
    # forced UCI plies become piece moves; a later ply needs the earlier White plies forced
    q = piece.engine_query("K:e3 R:d1 k:e5", forced={0: "d1d7", 2: "e3d3"})
    assert q["do"]["first_move"] == "R:d7" and q["do"]["continuation"].forced == {1: "K:d3"}
    with pytest.raises(HfCausalError, match="unforced ply 0"):
        piece.engine_query("K:e3 R:d1 k:e5", forced={2: "e3d3"})
    assert uci.engine_query("K:e3 R:d1 k:e5", forced={2: "e3d3"})["do"]["continuation"].forced == {1: "e3d3"}

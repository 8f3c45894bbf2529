"""The chess world: random legal starts, a stochastic behaviour policy, exact outcome distributions under forced moves.

One class of about 500 lines: the graph, the policy, the exact dynamic programme and the sampler all work on the
same per-material tables, and splitting them would only pass those tables around."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ...errors import QueryError, RecipeError
from ...graph import CausalGraph
from .movegen import (
    _CAPTURE,
    _PAD,
    _PIECE,
    MATERIALS,
    IllegalMoveError,
    N,
    Position,
    _code,
    _uci,
    is_check,
    move_alphabet,
    piece_moves,
    square,
    square_name,
)
from .policy import _policy_tables, _win_value_table
from .tablebase import tables

# --- the world ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Exact P(result, plies) of one query (see :meth:`ChessWorld.outcome_distribution`).

    Attributes:
        probs: ``{(result, plies): probability}`` with result ``"win"`` or ``"draw"``.
        p_legal: probability that every forced move was legal when its ply came (1 unless
            ``on_illegal="condition"`` dropped branches; ``probs`` is conditioned on legality).
    """

    probs: dict[tuple[str, int], float]
    p_legal: float = 1.0

    @property
    def p_win(self) -> float:
        return float(sum(p for (r, _), p in self.probs.items() if r == "win"))

    @property
    def p_draw(self) -> float:
        return float(sum(p for (r, _), p in self.probs.items() if r == "draw"))

    @property
    def mean_plies(self) -> float:
        return float(sum(k * p for (_, k), p in self.probs.items()))

    def plies_distribution(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for (_, k), p in sorted(self.probs.items(), key=lambda kv: kv[0][1]):
            out[k] = out.get(k, 0.0) + p
        return out


Forced = Mapping[int, str] | Sequence[str | None] | None


@dataclass
class ChessWorld:
    """KQK / KRK endgames under a stochastic behaviour policy, with exact interventional answers.

    Policy (both sides mix a softmax over exact DTM with uniformly random legal moves):

    * White: ``pi_w(a | s) = (1 - eps_white) softmax_a(-dtm(s_a) / tau_white) + eps_white / #moves``,
      where ``dtm(s_a)`` is the successor's plies to mate (0 after a mating move) and a successor
      that is not a forced win (stalemate, an undefended piece next to the black king) counts as
      ``draw_plies``.
    * Black: ``pi_b(a | s) = (1 - eps_black) softmax_a(+dtm(s_a) / tau_black) + eps_black / #moves``:
      longer resistance is preferred, and taking the piece counts as ``draw_plies`` (best).

    A game ends at checkmate (``win``), stalemate, the capture of White's piece (insufficient
    material) or after ``max_plies`` plies (``draw``). X is uniform over ``materials`` and then
    over the legal White-to-move positions of that material (each has at least one checking
    move, which the positivity of ``do(first_check)`` needs; the tables confirm that all do).

    Graph (``layout="split"``): ``material -> position -> {first_check, first_move,
    continuation, result, plies}``, ``first_check -> first_move -> continuation``, and
    ``first_move, continuation -> result -> plies``. ``first_check`` (does White's first move give
    check) is drawn before ``first_move``, so ``p(first_move | position, first_check)`` is the
    policy renormalised to (non-)checking moves and ``do(first_check=True)`` is the "play a
    check" intervention. ``continuation`` holds the remaining plies (Black, White, ...).
    ``move_format="piece"`` writes a move as the moved piece and its new square (``"R:d7"``, the
    alphabet of ``position``): with one piece of each kind that is lossless, and the board after any
    ply is then the last token of each piece, a state a small model can track; ``"uci"`` (default)
    writes ``"d1d7"``. The exact answers always take UCI moves.
    With ``layout="plies"`` every ply is its own categorical variable ``w1, b1, w2, ...``
    (``None`` after the game ended), so forcing several plies or a whole line is a plain ``do``.
    :meth:`engine_query` builds the ``given`` / ``do`` of a per-position engine query.

    Example:
        >>> w = ChessWorld(materials=("KQK",))
        >>> pos = Position.parse("K:c6 Q:d1 k:a8")
        >>> vals = w.first_move_values(pos)           # exact P(win | do(first move)) per move
        >>> best = next(iter(vals)); vals[best] >= max(vals.values())
        True
        >>> round(w.outcome_distribution(pos, forced={0: best}).p_win, 6) == round(vals[best], 6)
        True
    """

    materials: tuple[str, ...] = MATERIALS
    max_plies: int = 30
    tau_white: float = 1.0
    eps_white: float = 0.05
    tau_black: float = 2.0
    eps_black: float = 0.1
    draw_plies: int = 64
    layout: Literal["split", "plies"] = "split"
    move_format: Literal["uci", "piece"] = "uci"
    _cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.materials = tuple(self.materials)
        bad = [m for m in self.materials if m not in MATERIALS]
        if bad or not self.materials:
            raise RecipeError(f"materials must be a non-empty subset of {MATERIALS}, got {self.materials}")
        if self.max_plies < 2:
            raise RecipeError(f"max_plies must be >= 2, got {self.max_plies}")
        if min(self.tau_white, self.tau_black) <= 0 or not (0 <= self.eps_white <= 1 and 0 <= self.eps_black <= 1):
            raise RecipeError("temperatures must be > 0 and eps in [0, 1]")
        if self.layout not in ("split", "plies"):
            raise RecipeError(f"layout must be 'split' or 'plies', got {self.layout!r}")
        if self.move_format not in ("uci", "piece"):
            raise RecipeError(f"move_format must be 'uci' or 'piece', got {self.move_format!r}")

    # --- graph ------------------------------------------------------------------------------
    @property
    def ply_names(self) -> list[str]:
        """The per-ply variables of ``layout="plies"``: ``w1, b1, w2, b2, ...``."""
        return [f"{'wb'[t % 2]}{t // 2 + 1}" for t in range(self.max_plies)]

    @property
    def graph(self) -> CausalGraph:
        """The causal graph (built once per world; see the class docstring)."""
        if "graph" not in self._cache:
            self._cache["graph"] = self._build_graph()
        return self._cache["graph"]

    def _build_graph(self) -> CausalGraph:
        letters = ["K", *sorted({_PIECE[m] for m in self.materials}), "k"]
        moves = (
            move_alphabet()
            if self.move_format == "uci"
            else [f"{c}:{square_name(s)}" for c in letters for s in range(64)]
        )
        spec: dict[str, Any] = {
            "material": {"type": "categorical", "values": list(self.materials), "description": "White's material"},
            "position": {
                "type": "sequence",
                "alphabet": [f"{c}:{square_name(s)}" for c in letters for s in range(64)],
                "max_length": 3,
                "description": "start position, White to move: K:<sq> <Q|R>:<sq> k:<sq>",
            },
            "first_check": {
                "type": "categorical",
                "values": [False, True],
                "description": "White's first move gives check",
            },
        }
        edges = [["material", "position"], ["position", "first_check"]]
        if self.layout == "split":
            spec["first_move"] = {"type": "categorical", "values": moves, "description": "White's first move (UCI)"}
            spec["continuation"] = {
                "type": "sequence",
                "alphabet": moves,
                "max_length": self.max_plies - 1,
                "description": "the plies after White's first move (Black, White, ...)",
            }
            edges += [
                ["position", "first_move"],
                ["first_check", "first_move"],
                ["position", "continuation"],
                ["first_move", "continuation"],
            ]
            game = ["first_move", "continuation"]
        else:
            names = self.ply_names
            for t, name in enumerate(names):
                side = "White" if t % 2 == 0 else "Black"
                spec[name] = {
                    "type": "categorical",
                    "values": moves,
                    "missing": "as_value",
                    "description": f"ply {t + 1} ({side}); missing once the game is over",
                }
                edges += [["position", name]] + [[prev, name] for prev in names[:t]]
            edges.append(["first_check", names[0]])
            game = names
        spec["result"] = {"type": "categorical", "values": ["win", "draw"], "description": "White mates or not"}
        spec["plies"] = {"type": "integer", "min": 1, "max": self.max_plies, "description": "plies played"}
        edges += [["position", "result"], ["position", "plies"], ["result", "plies"]]
        edges += [[g, "result"] for g in game] + [[g, "plies"] for g in game]
        return CausalGraph.from_dict({"variables": spec, "edges": edges})

    # --- policy ---------------------------------------------------------------------------------
    def _policy(self, material: str) -> tuple[np.ndarray, np.ndarray]:
        """Move probabilities ``[N, K]`` aligned with ``tables(material).succ_w`` / ``succ_b``."""
        return _policy_tables(material, self.tau_white, self.eps_white, self.tau_black, self.eps_black, self.draw_plies)

    def move_probabilities(self, position: Position | str | Sequence[str]) -> dict[str, float]:
        """The behaviour policy's probability of each legal move of the side to move."""
        pos = Position.parse(position)
        t, (pw, pb) = tables(pos.material), self._policy(pos.material)
        succ, code, p = (t.succ_w, t.code_w, pw) if pos.white_to_move else (t.succ_b, t.code_b, pb)
        i = pos.index
        return {_uci(int(c)): float(q) for s, c, q in zip(succ[i], code[i], p[i]) if s != _PAD}

    # --- exact answers ----------------------------------------------------------------------------
    def _check_start(self, position: Position | str | Sequence[str]) -> Position:
        pos = Position.parse(position)
        if pos.material not in self.materials:
            raise QueryError(f"material {pos.material} is not in this world's {self.materials}")
        if not pos.white_to_move or not tables(pos.material).legal_w[pos.index]:
            raise QueryError(f"{pos.tokens()} is not a legal position with White to move")
        return pos

    def _forced_codes(self, forced: Forced) -> dict[int, int]:
        if forced is None:
            return {}
        if isinstance(forced, str):
            forced = [forced]
        if not isinstance(forced, Mapping):
            forced = {2 * i: m for i, m in enumerate(forced) if m is not None}
        out = {}
        for ply, move in forced.items():
            if not 0 <= int(ply) < self.max_plies:
                raise QueryError(f"forced ply {ply} is outside 0..{self.max_plies - 1} (ply 0 is White's first move)")
            out[int(ply)] = _code(move)
        return out

    def outcome_distribution(
        self,
        position: Position | str | Sequence[str],
        forced: Forced = None,
        on_illegal: Literal["raise", "condition"] = "raise",
    ) -> Outcome:
        """Exact P(result, plies | position, do(forced moves)), the rest played by the policy.

        Args:
            position: the start position (White to move).
            forced: ``{ply: move}`` with ply 0 = White's first move, 1 = Black's reply, ...; or a
                list of White moves for plies 0, 2, 4, ... (``None`` entries: policy). One forced
                move is a partial intervention; all White moves forced is a complete one
                (Black still replies by policy; if the game outlives the line, the policy takes
                over again). Forced plies after the game ended are moot.
            on_illegal: a forced move that is illegal in a branch that reaches its ply raises
                :class:`IllegalMoveError` (``"raise"``), or that branch is dropped and the answer
                is conditioned on the forced line being legal (``"condition"``; see ``p_legal``).
        """
        pos = self._check_start(position)
        codes = self._forced_codes(forced)
        t, (pw, pb) = tables(pos.material), self._policy(pos.material)
        idx = np.array([pos.index], dtype=np.int64)
        mass = np.ones(1)
        probs: dict[tuple[str, int], float] = {}
        dropped = 0.0
        mates, stalemates = np.flatnonzero(t.mate_b), np.flatnonzero(t.stalemate_b)

        def end(result: str, ply: int, p: float) -> None:
            if p > 0:
                probs[(result, ply)] = probs.get((result, ply), 0.0) + float(p)

        for ply in range(self.max_plies):
            if idx.size == 0:
                break
            white = ply % 2 == 0
            succ, code, p = (t.succ_w, t.code_w, pw) if white else (t.succ_b, t.code_b, pb)
            s, w = succ[idx], p[idx] * mass[:, None]
            if ply in codes:
                hit = code[idx] == codes[ply]
                ok = hit.any(1)
                if not ok.all():
                    if on_illegal == "raise":
                        bad = Position.from_index(pos.material, int(idx[~ok][0]), white)
                        raise IllegalMoveError(
                            f"forced move {_uci(codes[ply])!r} at ply {ply} is illegal in {bad.tokens()} "
                            f"(reached with probability {mass[~ok].sum():.3g}); pass on_illegal='condition' "
                            "to condition on legality"
                        )
                    dropped += float(mass[~ok].sum())
                w = np.where(hit, mass[:, None], 0.0)
            dense = np.bincount(s.ravel(), weights=w.ravel(), minlength=N + 2)
            if white:
                end("win", ply + 1, dense[mates].sum())
                end("draw", ply + 1, dense[stalemates].sum())
                dense[mates] = dense[stalemates] = 0.0
            else:
                end("draw", ply + 1, dense[_CAPTURE])
            dense[_PAD] = dense[_CAPTURE] = 0.0
            idx = np.flatnonzero(dense)
            mass = dense[idx]
        end("draw", self.max_plies, float(mass.sum()) if idx.size else 0.0)
        p_legal = 1.0 - dropped
        if p_legal <= 1e-15:
            raise IllegalMoveError("the forced line is illegal in every branch")
        return Outcome({k: v / p_legal for k, v in sorted(probs.items())}, p_legal)

    def _win_values(self, material: str) -> np.ndarray:
        """``v[s]``: P(win | Black to move in s, ``max_plies - 1`` plies left); see :func:`_win_value_table`."""
        return _win_value_table(
            material, self.max_plies, self.tau_white, self.eps_white, self.tau_black, self.eps_black, self.draw_plies
        )

    def first_move_values(self, position: Position | str | Sequence[str]) -> dict[str, float]:
        """Exact P(win | position, do(first White move = m)) for every legal m, best first."""
        pos = self._check_start(position)
        t, v = tables(pos.material), self._win_values(pos.material)
        i = pos.index
        out = {_uci(int(c)): float(v[s]) for s, c in zip(t.succ_w[i], t.code_w[i]) if s != _PAD}
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def engine_query(
        self,
        position: Position | str | Sequence[str],
        first_move: str | None = None,
        forced: Mapping[int, str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """``{"given": ..., "do": ...}`` for asking a trained engine about ``position`` (split layout).

        ``given`` holds ``material`` and ``position`` (material precedes position in the order, so
        prefix conditioning needs both). With ``first_move``, ``do`` forces it *and* the matching
        ``first_check``: the answer is the same in the true model (``first_check``'s only child is
        ``first_move``), but the model never saw a ``first_check`` that contradicts the move.
        ``forced``: more White plies ``{ply: move}`` (ply 0 = the first move, 2, 4, ...), which become
        a :class:`~hf_causal.interventions.PartialSequence` on ``continuation`` (step ``ply - 1``);
        the model plays the other plies and may end the game before a forced ply, as the policy can.

        Example:
            >>> ChessWorld().engine_query("K:a6 Q:b1 k:a8", "b1b7")["do"]
            {'first_check': True, 'first_move': 'b1b7'}
            >>> ChessWorld().engine_query("K:e3 Q:d1 k:e5", forced={0: "d1d7", 2: "e3d3"})["do"]["continuation"]
            PartialSequence(forced={1: 'e3d3'}, length=None)
        """
        from ...interventions import PartialSequence

        if self.layout != "split":
            raise QueryError("engine_query builds queries for layout='split'; with 'plies' force w1, w2, ... directly")
        pos = self._check_start(position)
        forced = dict(forced or {})
        if first_move is not None:
            if forced.get(0, first_move) != first_move:
                raise QueryError(f"first_move {first_move!r} disagrees with forced[0] = {forced[0]!r}")
            forced[0] = first_move
        bad = [p for p in forced if not (isinstance(p, int) and 0 <= p < self.max_plies and p % 2 == 0)]
        if bad:
            raise QueryError(f"forced plies must be White's (0, 2, 4, ... < {self.max_plies}), got {bad}")
        out: dict[str, dict[str, Any]] = {"given": {"material": pos.material, "position": pos.tokens()}, "do": {}}
        tokens = self._forced_tokens(pos, forced)
        if 0 in forced:
            out["do"] = {"first_check": is_check(pos, forced[0]), "first_move": tokens[0]}
        later = {p - 1: m for p, m in sorted(tokens.items()) if p > 0}
        if later:
            out["do"]["continuation"] = PartialSequence(later)
        return out

    def _forced_tokens(self, pos: Position, forced: Mapping[int, str]) -> dict[int, str]:
        """Forced UCI White moves in this world's move format. In ``piece`` format the moved piece of a
        later ply is known only if every earlier White ply is forced too (Black cannot move White's men)."""
        if self.move_format == "uci":
            return dict(forced)
        squares = {"K": pos.wk, pos.letter: pos.piece}
        out = {}
        for ply in range(0, max(forced, default=-1) + 1, 2):
            if ply not in forced:
                later = [p for p in forced if p > ply]
                raise QueryError(
                    f"move_format='piece': the piece moved at ply {later[0]} depends on White's unforced ply {ply}; "
                    "force every White ply up to it"
                )
            move = forced[ply]
            f, t = square(move[:2]), square(move[2:])
            letter = next((c for c, sq in squares.items() if sq == f), None)
            if letter is None:
                raise IllegalMoveError(f"forced move {move!r} at ply {ply}: no White piece on {move[:2]}")
            out[ply] = f"{letter}:{move[2:]}"
            squares[letter] = t
        return out

    def _start_weights(self, material: str | None) -> dict[str, float]:
        mats = self.materials if material is None else (material,)
        for m in mats:
            if m not in self.materials:
                raise QueryError(f"material {m!r} is not in this world's {self.materials}")
        return {m: 1.0 / len(mats) for m in mats}

    def population_check_effect(
        self, check: bool = True, mode: Literal["policy", "uniform"] = "policy", material: str | None = None
    ) -> float:
        """Exact P(win | do(White's first move is (not) a check)), averaged over the positions X.

        "A check" is a class of moves, so the intervention must say which one is played:
        ``mode="policy"`` plays the behaviour policy renormalised to the (non-)checking moves,
        which is ``do(first_check=check)`` in :attr:`graph`; ``mode="uniform"`` plays a uniformly
        random one. ``material`` restricts X to one material (default: the world's mixture).
        """
        total = 0.0
        for m, wt in self._start_weights(material).items():
            t, (pw, _) = tables(m), self._policy(m)
            rows = np.flatnonzero(t.start)
            cls = t.check_w[rows] if check else (~t.check_w[rows] & (t.succ_w[rows] != _PAD))
            q = np.where(cls, pw[rows] if mode == "policy" else 1.0, 0.0)
            z = q.sum(1)
            if (z <= 0).any():
                raise QueryError(f"{m}: some positions have no {'checking' if check else 'quiet'} move")
            v = self._win_values(m)[t.succ_w[rows]]
            total += wt * float(((q * v).sum(1) / z).mean())
        return total

    def observational_check(self, check: bool = True, material: str | None = None) -> tuple[float, float]:
        """Exact P(win | White's first move is (not) a check): ``(probability, 0.0)``, from the policy and
        the position distribution. It differs from :meth:`population_check_effect` because the policy
        checks more often in positions where checking is good. (The proportion in sampled rows is
        ``benchmarks.baselines.chess_check_win_rate``.)
        """
        num = den = 0.0
        for m, wt in self._start_weights(material).items():
            t, (pw, _) = tables(m), self._policy(m)
            rows = np.flatnonzero(t.start)
            cls = t.check_w[rows] if check else (~t.check_w[rows] & (t.succ_w[rows] != _PAD))
            q = np.where(cls, pw[rows], 0.0)
            v = self._win_values(m)[t.succ_w[rows]]
            num += wt * float((q * v).sum() / rows.size)
            den += wt * float(q.sum() / rows.size)
        return num / den, 0.0

    # --- sampling --------------------------------------------------------------------------------
    def _simulate(
        self,
        material: str,
        starts: np.ndarray,
        rng: np.random.Generator,
        codes: Mapping[int, int],
        first_check: bool | None,
        on_illegal: str,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Play games from ``starts``: move codes [n, max_plies] (-1 after the end), win, plies, first check, legal."""
        t, (pw, pb) = tables(material), self._policy(material)
        n = starts.size
        moves = np.full((n, self.max_plies), -1, dtype=np.int64)
        win = np.zeros(n, dtype=bool)
        plies = np.full(n, self.max_plies, dtype=np.int64)
        legal = np.ones(n, dtype=bool)
        first = np.zeros(n, dtype=bool)
        state = starts.astype(np.int64).copy()
        alive = np.ones(n, dtype=bool)
        for ply in range(self.max_plies):
            rows = np.flatnonzero(alive)
            if rows.size == 0:
                break
            white = ply % 2 == 0
            succ, code, p = (t.succ_w, t.code_w, pw) if white else (t.succ_b, t.code_b, pb)
            s, c, q = succ[state[rows]], code[state[rows]], p[state[rows]]
            if ply == 0 and first_check is not None:
                cls = t.check_w[state[rows]] if first_check else (~t.check_w[state[rows]] & (s != _PAD))
                q = np.where(cls, q, 0.0)
            if ply in codes:
                q = np.where(c == codes[ply], 1.0, 0.0)
            ok = q.sum(1) > 0
            if not ok.all():
                if on_illegal == "raise":
                    bad = Position.from_index(material, int(state[rows[~ok][0]]), white)
                    what = _uci(codes[ply]) if ply in codes else "a (non-)checking move"
                    raise IllegalMoveError(f"forced {what!r} at ply {ply} is illegal in {bad.tokens()}")
                legal[rows[~ok]] = alive[rows[~ok]] = False
                rows, s, c, q = rows[ok], s[ok], c[ok], q[ok]
            cum = np.cumsum(q, 1)
            u = rng.random(rows.size) * cum[:, -1]
            col = np.minimum((cum <= u[:, None]).sum(1), (s != _PAD).sum(1) - 1)
            nxt = s[np.arange(rows.size), col]
            moves[rows, ply] = c[np.arange(rows.size), col]
            if ply == 0:
                first[rows] = t.check_w[state[rows], col]
            if white:
                over = t.mate_b[nxt] | t.stalemate_b[nxt]
                win[rows[t.mate_b[nxt]]] = True
            else:
                over = nxt == _CAPTURE
            plies[rows[over]] = ply + 1
            alive[rows[over]] = False
            state[rows[~over]] = nxt[~over]
        return moves, win, plies, first, legal

    def sample(
        self,
        n: int,
        seed: int = 0,
        *,
        position: Position | str | Sequence[str] | None = None,
        material: str | None = None,
        forced: Forced = None,
        first_check: bool | None = None,
        on_illegal: Literal["raise", "condition"] = "raise",
    ) -> pd.DataFrame:
        """``n`` games as a DataFrame with one column per graph variable, seeded.

        Observational by default. ``position`` fixes X; ``material`` restricts it; ``forced``
        (as in :meth:`outcome_distribution`) forces moves; ``first_check`` plays the policy
        renormalised to (non-)checking first moves, i.e. ``do(first_check=...)``. With
        ``on_illegal="condition"`` games whose forced move is illegal are dropped (fewer rows).
        """
        rng = np.random.default_rng(seed)
        codes = self._forced_codes(forced)
        if position is not None:
            pos = self._check_start(position)
            mats = np.full(n, self.materials.index(pos.material))
        else:
            allowed = list(self._start_weights(material))
            mats = np.array([self.materials.index(m) for m in allowed])[rng.integers(len(allowed), size=n)]
        rows: list[dict[str, Any] | None] = [None] * n
        for k, m in enumerate(self.materials):
            sel = np.flatnonzero(mats == k)
            if sel.size == 0:
                continue
            if position is not None:
                starts = np.full(sel.size, pos.index)
            else:
                pool = np.flatnonzero(tables(m).start)
                starts = pool[rng.integers(pool.size, size=sel.size)]
            moves, win, plies, first, legal = self._simulate(m, starts, rng, codes, first_check, on_illegal)
            for j, i in enumerate(sel):
                if legal[j]:
                    rows[i] = self._row(m, int(starts[j]), moves[j], bool(win[j]), int(plies[j]), bool(first[j]))
        return pd.DataFrame([r for r in rows if r is not None], columns=self.graph.order)

    def _row(self, material: str, start: int, moves: np.ndarray, win: bool, plies: int, first: bool) -> dict:
        ucis = [_uci(int(c)) for c in moves[:plies]]
        if self.move_format == "piece":
            ucis = piece_moves(Position.from_index(material, start), ucis)
        row: dict[str, Any] = {
            "material": material,
            "position": Position.from_index(material, start).tokens(),
            "first_check": first,
        }
        if self.layout == "split":
            row["first_move"], row["continuation"] = ucis[0], ucis[1:]
        else:
            row.update({name: (ucis[i] if i < plies else None) for i, name in enumerate(self.ply_names)})
        row["result"], row["plies"] = ("win" if win else "draw"), plies
        return row

"""Chess endgames (KQK, KRK) played by a stochastic behaviour policy, with exact answers.

X is a random legal 3-piece position with White to move (White: king + queen or rook; Black: a
lone king). Both sides then play a *behaviour policy* (a softmax over exact distance-to-mate plus
uniform random moves) until checkmate, stalemate, the loss of White's piece or a ply cap. Y is the
``result`` (``win`` / ``draw``) and the number of ``plies``.

Everything is computed here, without python-chess (GPL): a move generator for the three pieces,
distance-to-mate (DTM) tables by retrograde analysis over the full state space, and exact
outcome distributions under the policy with forced moves (partial and complete interventions),
by dynamic programming over (state, ply).

Example:
    >>> w = ChessWorld()
    >>> pos = Position.parse("K:a6 Q:b1 k:a8")
    >>> sorted(legal_moves(pos))[:3]
    ['a6a5', 'a6b5', 'a6b6']
    >>> w.outcome_distribution(pos, forced={0: "b1b7"}).p_win     # b7 is mate
    1.0
    >>> df = w.sample(4, seed=0)
    >>> list(df.columns)
    ['material', 'position', 'first_check', 'first_move', 'continuation', 'result', 'plies']
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..graph import CausalGraph, GraphError

__all__ = [
    "ChessWorld",
    "IllegalMoveError",
    "MATERIALS",
    "Outcome",
    "Position",
    "Tables",
    "game_status",
    "in_check",
    "is_check",
    "is_legal_position",
    "legal_moves",
    "move_alphabet",
    "piece_moves",
    "plot_position",
    "push",
    "square",
    "square_name",
    "tables",
]

MATERIALS = ("KQK", "KRK")
_PIECE = {"KQK": "Q", "KRK": "R"}
FILES = "abcdefgh"
N = 64 * 64 * 64  # states per side to move: index = (white king * 64 + piece) * 64 + black king
_PAD, _CAPTURE = N, N + 1  # successor sentinels: no move in this column / Black took White's piece
_TABLE_VERSION = 1

# directions: the first four are the rook's, all eight the queen's and the king's
_DIRS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


class IllegalMoveError(ValueError):
    """A forced or pushed move is not legal in the position it is played in."""


# --- squares and geometry -----------------------------------------------------------------------


def square(name: str) -> int:
    """``"e1"`` -> 4 (``a1`` = 0, ``h8`` = 63)."""
    if len(name) != 2 or name[0] not in FILES or name[1] not in "12345678":
        raise GraphError(f"bad square {name!r}: use a file a-h and a rank 1-8, e.g. 'e4'")
    return FILES.index(name[0]) + 8 * (int(name[1]) - 1)


def square_name(sq: int) -> str:
    return FILES[sq % 8] + str(sq // 8 + 1)


def _build_geometry() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(RAY [64, 8, 7], KN [64, 8], DIST [64, 64], ATT [64, 64, 65]).

    ``RAY[s, d, k]``: the (k+1)-th square from s in direction d, or -1. ``KN``: king neighbours.
    ``DIST``: Chebyshev distance. ``ATT[p, t, b]``: a queen-line piece on p reaches t along a
    line with at most one blocker, on square b (``b = 64``: none); used for queens and rooks by
    masking the direction (see :data:`_ROOK_LINE`).
    """
    ray = -np.ones((64, 8, 7), dtype=np.int64)
    for s in range(64):
        f, r = s % 8, s // 8
        for d, (df, dr) in enumerate(_DIRS):
            for k in range(7):
                ff, rr = f + df * (k + 1), r + dr * (k + 1)
                if not (0 <= ff < 8 and 0 <= rr < 8):
                    break
                ray[s, d, k] = ff + 8 * rr
    kn = ray[:, :, 0].copy()
    f, r = np.arange(64) % 8, np.arange(64) // 8
    dist = np.maximum(np.abs(f[:, None] - f[None, :]), np.abs(r[:, None] - r[None, :]))
    att = np.zeros((64, 64, 65), dtype=bool)
    for s in range(64):
        for d in range(8):
            for k in range(7):
                t = ray[s, d, k]
                if t < 0:
                    break
                att[s, t, :] = True
                att[s, t, ray[s, d, :k]] = False  # a blocker strictly between s and t
    return ray, kn, dist, att


_RAY, _KN, _DIST, _ATT_LINE = _build_geometry()
_F, _R = np.arange(64) % 8, np.arange(64) // 8
_ROOK_LINE = (_F[:, None] == _F[None, :]) | (_R[:, None] == _R[None, :])
_ATT = {"Q": _ATT_LINE, "R": _ATT_LINE & _ROOK_LINE[:, :, None]}


def move_alphabet() -> list[str]:
    """Every from-to pair a king, queen or rook can play (queen lines), UCI-style (``"e1e2"``)."""
    out = []
    for s in range(64):
        for d in range(8):
            for t in _RAY[s, d]:
                if t >= 0:
                    out.append(square_name(s) + square_name(int(t)))
    return sorted(out, key=lambda m: (square(m[:2]), square(m[2:])))


def _code(move: str) -> int:
    if len(move) != 4:
        raise IllegalMoveError(f"bad move {move!r}: write it UCI-style, e.g. 'e1e2'")
    return square(move[:2]) * 64 + square(move[2:])


def _uci(code: int) -> str:
    return square_name(code // 64) + square_name(code % 64)


# --- positions and the scalar move generator ----------------------------------------------------


@dataclass(frozen=True)
class Position:
    """A KQK / KRK position: squares 0..63 of the white king, White's piece and the black king.

    ``piece`` is None once Black has captured it (insufficient material). Parse tokens
    (``"K:e1 Q:d1 k:e8"``, any order) or a FEN with :meth:`parse`.

    Example:
        >>> Position.parse("K:e1 Q:d1 k:e8").tokens()
        ['K:e1', 'Q:d1', 'k:e8']
        >>> Position.parse("4k3/8/8/8/8/8/8/3QK3 w - - 0 1").material
        'KQK'
    """

    material: str
    wk: int
    piece: int | None
    bk: int
    white_to_move: bool = True

    def __post_init__(self) -> None:
        if self.material not in MATERIALS:
            raise GraphError(f"unknown material {self.material!r}; choose one of {MATERIALS}")

    @property
    def letter(self) -> str:
        return _PIECE[self.material]

    def tokens(self) -> list[str]:
        """``["K:e1", "Q:d1", "k:e8"]`` (the ``position`` variable's value)."""
        out = [f"K:{square_name(self.wk)}"]
        if self.piece is not None:
            out.append(f"{self.letter}:{square_name(self.piece)}")
        return out + [f"k:{square_name(self.bk)}"]

    def fen(self) -> str:
        board = [["" for _ in range(8)] for _ in range(8)]
        for sq, ch in ((self.wk, "K"), (self.piece, self.letter), (self.bk, "k")):
            if sq is not None:
                board[7 - sq // 8][sq % 8] = ch
        rows = []
        for row in board:
            s, empty = "", 0
            for ch in row:
                if ch:
                    s += (str(empty) if empty else "") + ch
                    empty = 0
                else:
                    empty += 1
            rows.append(s + (str(empty) if empty else ""))
        return "/".join(rows) + (" w" if self.white_to_move else " b") + " - - 0 1"

    @property
    def index(self) -> int:
        """The state index used by :class:`Tables` (needs the piece on the board)."""
        if self.piece is None:
            raise GraphError("a position without White's piece has no table index")
        return (self.wk * 64 + self.piece) * 64 + self.bk

    @classmethod
    def from_index(cls, material: str, idx: int, white_to_move: bool = True) -> Position:
        idx = int(idx)
        return cls(material, idx // 4096, (idx // 64) % 64, idx % 64, white_to_move)

    @classmethod
    def parse(cls, value: Position | str | Sequence[str]) -> Position:
        """A Position from itself, tokens (list or space-separated) or a FEN string."""
        if isinstance(value, Position):
            return value
        if isinstance(value, str) and "/" in value:
            return cls._from_fen(value)
        toks = value.split() if isinstance(value, str) else [str(t) for t in value]
        found: dict[str, int] = {}
        for t in toks:
            if len(t) != 4 or t[1] != ":" or t[0] not in "KQRk" or t[0] in found:
                raise GraphError(f"bad position token {t!r} in {toks}: expected e.g. ['K:e1', 'Q:d1', 'k:e8']")
            found[t[0]] = square(t[2:])
        pieces = [c for c in "QR" if c in found]
        if "K" not in found or "k" not in found or len(pieces) != 1:
            raise GraphError(f"position {toks}: need K, k and exactly one of Q / R")
        return cls("KQK" if pieces[0] == "Q" else "KRK", found["K"], found[pieces[0]], found["k"])

    @classmethod
    def _from_fen(cls, fen: str) -> Position:
        parts = fen.split()
        found: dict[str, int] = {}
        rows = parts[0].split("/")
        if len(rows) != 8:
            raise GraphError(f"bad FEN {fen!r}")
        for i, row in enumerate(rows):
            f = 0
            for ch in row:
                if ch.isdigit():
                    f += int(ch)
                    continue
                if ch not in "KQRk" or ch in found or f > 7:
                    raise GraphError(f"FEN {fen!r}: only K, Q or R, and k are supported, once each")
                found[ch] = f + 8 * (7 - i)
                f += 1
        wtm = len(parts) < 2 or parts[1] == "w"
        pieces = [c for c in "QR" if c in found]
        if "K" not in found or "k" not in found or len(pieces) != 1:
            raise GraphError(f"FEN {fen!r}: need K, k and exactly one of Q / R")
        return cls("KQK" if pieces[0] == "Q" else "KRK", found["K"], found[pieces[0]], found["k"], wtm)


def _attacks(letter: str, p: int | None, target: int, blocker: int) -> bool:
    """Whether White's queen/rook on ``p`` attacks ``target`` with ``blocker`` in the way."""
    return p is not None and p != target and bool(_ATT[letter][p, target, blocker])


def _king_step_ok(dest: int, other_king: int) -> bool:
    return int(_DIST[dest, other_king]) > 1


def legal_moves(pos: Position | str | Sequence[str]) -> list[str]:
    """The legal moves of the side to move (UCI-style), by a plain scalar generator.

    Kings never stand next to each other, no king moves into check, the queen/rook is blocked
    by either king, and the black king may take an undefended queen/rook.
    """
    pos = Position.parse(pos)
    out = []
    if pos.white_to_move:
        for dest in _KN[pos.wk]:
            if dest >= 0 and dest != pos.piece and _king_step_ok(int(dest), pos.bk):
                out.append(_uci(pos.wk * 64 + int(dest)))
        if pos.piece is not None:
            dirs = range(4) if pos.letter == "R" else range(8)
            for d in dirs:
                for dest in _RAY[pos.piece, d]:
                    if dest < 0 or dest in (pos.wk, pos.bk):
                        break
                    out.append(_uci(pos.piece * 64 + int(dest)))
    else:
        for dest in _KN[pos.bk]:
            dest = int(dest)
            if dest < 0 or not _king_step_ok(dest, pos.wk):
                continue
            if dest == pos.piece:
                if _king_step_ok(pos.piece, pos.wk):  # undefended: take it
                    out.append(_uci(pos.bk * 64 + dest))
            elif not _attacks(pos.letter, pos.piece, dest, pos.wk):
                out.append(_uci(pos.bk * 64 + dest))
    return out


def in_check(pos: Position) -> bool:
    """Whether the side to move is in check (only Black can be: White's king faces a lone king)."""
    return not pos.white_to_move and _attacks(pos.letter, pos.piece, pos.bk, pos.wk)


def push(pos: Position | str | Sequence[str], move: str) -> Position:
    """The position after ``move``; raises :class:`IllegalMoveError` if it is not legal."""
    pos = Position.parse(pos)
    if move not in legal_moves(pos):
        raise IllegalMoveError(f"{move!r} is not legal in {pos.tokens()} ({'White' if pos.white_to_move else 'Black'})")
    f, t = square(move[:2]), square(move[2:])
    if pos.white_to_move:
        if f == pos.wk:
            return Position(pos.material, t, pos.piece, pos.bk, False)
        return Position(pos.material, pos.wk, t, pos.bk, False)
    return Position(pos.material, pos.wk, None if t == pos.piece else pos.piece, t, True)


def game_status(pos: Position | str | Sequence[str]) -> str:
    """``checkmate``, ``stalemate``, ``insufficient`` (White's piece is gone) or ``ongoing``."""
    pos = Position.parse(pos)
    if pos.piece is None:
        return "insufficient"
    if legal_moves(pos):
        return "ongoing"
    return "checkmate" if in_check(pos) else "stalemate"


def is_check(position: Position | str | Sequence[str], move: str) -> bool:
    """Whether White's ``move`` gives check (by the queen/rook, directly or discovered)."""
    nxt = push(position, move)
    return nxt.piece is not None and _attacks(nxt.letter, nxt.piece, nxt.bk, nxt.wk)


def piece_moves(position: Position | str | Sequence[str], moves: Sequence[str]) -> list[str]:
    """UCI moves of a game from ``position`` as piece moves: ``["d1d7", "e5e6"]`` -> ``["R:d7", "k:e6"]``.

    Example:
        >>> piece_moves("K:e3 R:d1 k:e5", ["d1d7", "e5e6", "e3e4"])
        ['R:d7', 'k:e6', 'K:e4']
    """
    pos = Position.parse(position)
    sq = {"K": pos.wk, pos.letter: pos.piece, "k": pos.bk}
    out = []
    for m in moves:
        f, t = square(m[:2]), square(m[2:])
        letter = next((c for c, s in sq.items() if s == f), None)
        if letter is None:
            raise IllegalMoveError(f"{m!r}: no piece on {m[:2]} in this game")
        out.append(f"{letter}:{m[2:]}")
        sq = {c: s for c, s in sq.items() if s != t or c == letter}  # a capture removes the piece
        sq[letter] = t
    return out


def is_legal_position(pos: Position) -> bool:
    """Distinct squares, kings apart, and the side not to move (Black, if White moves) not in check."""
    sqs = [pos.wk, pos.bk] + ([pos.piece] if pos.piece is not None else [])
    if len(set(sqs)) != len(sqs) or not _king_step_ok(pos.wk, pos.bk):
        return False
    return not (pos.white_to_move and _attacks(pos.letter, pos.piece, pos.bk, pos.wk))


# --- vectorised tables: moves of every state and distance to mate --------------------------------


@dataclass
class Tables:
    """Moves and exact distance-to-mate for every state of one material.

    A state is ``(white king, piece, black king)`` with White (``*_w``) or Black (``*_b``) to
    move, indexed as in :attr:`Position.index`. Move tables are ``[N, K]`` with the moves of a
    state first and padding (successor ``N``) after; a Black capture of the piece has successor
    ``N + 1``.

    Attributes:
        legal_w, legal_b: the state is a legal position with that side to move.
        succ_w, code_w, check_w: successor state, move code (from * 64 + to) and "gives check".
        succ_b, code_b: the same for Black.
        mate_b, stalemate_b: Black to move is checkmated / stalemated.
        dtm_w, dtm_b: plies to mate under optimal play (White minimises, Black maximises); -1
            when White cannot force mate (a draw), -2 for illegal states.
    """

    material: str
    legal_w: np.ndarray
    legal_b: np.ndarray
    succ_w: np.ndarray
    code_w: np.ndarray
    check_w: np.ndarray
    succ_b: np.ndarray
    code_b: np.ndarray
    mate_b: np.ndarray
    stalemate_b: np.ndarray
    dtm_w: np.ndarray
    dtm_b: np.ndarray
    build_seconds: float = 0.0

    @property
    def n_moves_w(self) -> np.ndarray:
        return (self.succ_w != _PAD).sum(1)

    @property
    def start(self) -> np.ndarray:
        """Start positions X: legal, White to move, and White has a checking move (positivity)."""
        return self.legal_w & self.check_w.any(1)


class _Packer:
    """Collects each row's moves left-aligned in ``[rows, K]`` arrays (padding: successor ``_PAD``)."""

    def __init__(self, n: int, width: int):
        self.succ = np.full((n, width), _PAD, dtype=np.int32)
        self.code = np.full((n, width), -1, dtype=np.int16)
        self.check = np.zeros((n, width), dtype=bool)
        self.count = np.zeros(n, dtype=np.int64)

    def add(self, ok: np.ndarray, succ: np.ndarray, code: np.ndarray, check: np.ndarray | None = None) -> None:
        rows = np.flatnonzero(ok)
        flat = rows * self.succ.shape[1] + self.count[rows]
        self.succ.reshape(-1)[flat] = succ[rows]
        self.code.reshape(-1)[flat] = code[rows]
        if check is not None:
            self.check.reshape(-1)[flat] = check[rows]
        self.count += ok

    def full(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``[N, K]`` tables with these rows filled (K: the most moves any state has)."""
        k = max(int(self.count.max(initial=0)), 1)
        out = []
        for a, fill in ((self.succ, _PAD), (self.code, -1), (self.check, False)):
            t = np.full((N, k), fill, dtype=a.dtype)
            t[rows] = a[:, :k]
            out.append(t)
        return out[0], out[1], out[2]


def _build_moves(material: str) -> dict[str, np.ndarray]:
    letter = _PIECE[material]
    att = _ATT[letter]
    idx = np.arange(N, dtype=np.int64)
    W, P, B = idx // 4096, (idx // 64) % 64, idx % 64
    distinct = (W != P) & (W != B) & (P != B)
    b_checked = distinct & att[P, B, W]
    legal_b = distinct & (_DIST[W, B] > 1)
    legal_w = legal_b & ~b_checked

    rows = np.flatnonzero(legal_w)  # white to move: work on the legal states only
    w, p, b = W[rows], P[rows], B[rows]
    n_dirs = 4 if letter == "R" else 8
    pk = _Packer(rows.size, 8 + 7 * n_dirs)
    for d in range(8):  # white king
        dest = _KN[w, d]
        dd = np.where(dest >= 0, dest, 0)
        ok = (dest >= 0) & (dest != p) & (_DIST[dd, b] > 1)
        pk.add(ok, (dd * 64 + p) * 64 + b, w * 64 + dd, att[p, b, dd])
    for d in range(n_dirs):  # queen / rook
        alive = np.ones(rows.size, dtype=bool)
        for k in range(7):
            dest = _RAY[p, d, k]
            dd = np.where(dest >= 0, dest, 0)
            alive &= (dest >= 0) & (dest != w) & (dest != b)
            pk.add(alive, (w * 64 + dd) * 64 + b, p * 64 + dd, att[dd, b, w])
    succ_w, code_w, check_w = pk.full(rows)

    rows = np.flatnonzero(legal_b)
    w, p, b = W[rows], P[rows], B[rows]
    pk = _Packer(rows.size, 8)
    for d in range(8):  # black king
        dest = _KN[b, d]
        dd = np.where(dest >= 0, dest, 0)
        cap = dd == p
        ok = (dest >= 0) & (_DIST[dd, w] > 1) & np.where(cap, _DIST[p, w] > 1, ~att[p, dd, w])
        pk.add(ok, np.where(cap, _CAPTURE, (w * 64 + p) * 64 + dd), b * 64 + dd)
    succ_b, code_b, _ = pk.full(rows)
    no_moves = legal_b & (succ_b == _PAD).all(1)
    return {
        "legal_w": legal_w,
        "legal_b": legal_b,
        "succ_w": succ_w,
        "code_w": code_w,
        "check_w": check_w,
        "succ_b": succ_b,
        "code_b": code_b,
        "mate_b": no_moves & b_checked,
        "stalemate_b": no_moves & ~b_checked,
    }


def _retrograde(m: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distance to mate in plies for both sides to move, by backward induction from the mates."""
    dtm_w = np.where(m["legal_w"], -1, -2).astype(np.int16)
    dtm_b = np.where(m["legal_b"], -1, -2).astype(np.int16)
    dtm_b[m["mate_b"]] = 0
    ext_b = np.full(N + 2, -1, dtype=np.int16)  # value seen through a successor (padding: never "mate in k")
    ext_w = np.full(N + 2, -1, dtype=np.int16)  # padding: does not stop "all replies lose"; capture: draw
    ext_w[_PAD] = 0
    open_w = np.flatnonzero(m["legal_w"] & (m["succ_w"] != _PAD).any(1))
    open_b = np.flatnonzero(m["legal_b"] & (m["succ_b"] != _PAD).any(1))
    succ_w, succ_b = m["succ_w"], m["succ_b"]
    k = 1
    while True:
        ext_b[:N] = dtm_b
        won = (ext_b[succ_w[open_w]] == k - 1).any(1)
        dtm_w[open_w[won]] = k
        open_w = open_w[~won]
        ext_w[:N] = dtm_w
        lost = (ext_w[succ_b[open_b]] >= 0).all(1)
        dtm_b[open_b[lost]] = k + 1
        open_b = open_b[~lost]
        if not won.any() and not lost.any():
            return dtm_w, dtm_b
        k += 2


def _cache_dir() -> Path | None:
    """``$HF_CAUSAL_CACHE/chess`` (default ``~/.cache/hf_causal/chess``); ``HF_CAUSAL_CACHE=""`` disables."""
    root = os.environ.get("HF_CAUSAL_CACHE")
    if root == "":
        return None
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hf_causal"
    return base / "chess"


def _load_dtm(material: str) -> tuple[np.ndarray, np.ndarray] | None:
    d = _cache_dir()
    path = d / f"dtm_{material}_v{_TABLE_VERSION}.npz" if d else None
    if path is None or not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            dtm_w, dtm_b = z["dtm_w"], z["dtm_b"]
        if dtm_w.shape == (N,) and dtm_b.shape == (N,) and dtm_w.dtype == np.int16 and dtm_b.dtype == np.int16:
            return dtm_w, dtm_b
    except Exception:  # noqa: BLE001 - a corrupt cache is rebuilt
        pass
    return None


def _save_dtm(material: str, dtm_w: np.ndarray, dtm_b: np.ndarray) -> None:
    d = _cache_dir()
    if d is None:
        return
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, dtm_w=dtm_w, dtm_b=dtm_b)
            os.replace(tmp, d / f"dtm_{material}_v{_TABLE_VERSION}.npz")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass  # a read-only home only costs a rebuild next time


@functools.lru_cache(maxsize=len(MATERIALS))
def tables(material: str) -> Tables:
    """The move and DTM tables of ``material`` (built once per process; DTM also cached on disk).

    Example:
        >>> t = tables("KQK")
        >>> int(t.dtm_w[t.legal_w].max())      # the longest KQK mate: 10 moves
        19
    """
    if material not in MATERIALS:
        raise GraphError(f"unknown material {material!r}; choose one of {MATERIALS}")
    t0 = time.perf_counter()
    m = _build_moves(material)
    cached = _load_dtm(material)
    if cached is None:
        cached = _retrograde(m)
        _save_dtm(material, *cached)
    return Tables(material, **m, dtm_w=cached[0], dtm_b=cached[1], build_seconds=time.perf_counter() - t0)


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
            raise GraphError(f"materials must be a non-empty subset of {MATERIALS}, got {self.materials}")
        if self.max_plies < 2:
            raise GraphError(f"max_plies must be >= 2, got {self.max_plies}")
        if min(self.tau_white, self.tau_black) <= 0 or not (0 <= self.eps_white <= 1 and 0 <= self.eps_black <= 1):
            raise GraphError("temperatures must be > 0 and eps in [0, 1]")
        if self.layout not in ("split", "plies"):
            raise GraphError(f"layout must be 'split' or 'plies', got {self.layout!r}")
        if self.move_format not in ("uci", "piece"):
            raise GraphError(f"move_format must be 'uci' or 'piece', got {self.move_format!r}")

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
            raise GraphError(f"material {pos.material} is not in this world's {self.materials}")
        if not pos.white_to_move or not tables(pos.material).legal_w[pos.index]:
            raise GraphError(f"{pos.tokens()} is not a legal position with White to move")
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
                raise GraphError(f"forced ply {ply} is outside 0..{self.max_plies - 1} (ply 0 is White's first move)")
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
        from ..interventions import PartialSequence

        if self.layout != "split":
            raise GraphError("engine_query builds queries for layout='split'; with 'plies' force w1, w2, ... directly")
        pos = self._check_start(position)
        forced = dict(forced or {})
        if first_move is not None:
            if forced.get(0, first_move) != first_move:
                raise GraphError(f"first_move {first_move!r} disagrees with forced[0] = {forced[0]!r}")
            forced[0] = first_move
        bad = [p for p in forced if not (isinstance(p, int) and 0 <= p < self.max_plies and p % 2 == 0)]
        if bad:
            raise GraphError(f"forced plies must be White's (0, 2, 4, ... < {self.max_plies}), got {bad}")
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
                raise GraphError(
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
                raise GraphError(f"material {m!r} is not in this world's {self.materials}")
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
                raise GraphError(f"{m}: some positions have no {'checking' if check else 'quiet'} move")
            v = self._win_values(m)[t.succ_w[rows]]
            total += wt * float(((q * v).sum(1) / z).mean())
        return total

    def observational_check(
        self, data: pd.DataFrame | None = None, check: bool = True, material: str | None = None
    ) -> tuple[float, float]:
        """P(win | White's first move is (not) a check): ``(estimate, standard error)``.

        Without ``data`` it is exact (standard error 0), from the policy and the position
        distribution; with ``data`` (e.g. :meth:`sample`) it is the sample proportion. It differs
        from :meth:`population_check_effect` because the policy checks more often in positions
        where checking is good.
        """
        if data is not None:
            sel = data["first_check"].astype(bool) == bool(check)
            if material is not None:
                sel &= data["material"] == material
            y = (data.loc[sel, "result"] == "win").to_numpy(float)
            if y.size == 0:
                raise GraphError("no rows with that first_check value")
            return float(y.mean()), float(math.sqrt(y.mean() * (1 - y.mean()) / y.size))
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


@functools.lru_cache(maxsize=4)
def _policy_tables(
    material: str, tau_white: float, eps_white: float, tau_black: float, eps_black: float, draw_plies: int
) -> tuple[np.ndarray, np.ndarray]:
    """The behaviour policy of :class:`ChessWorld` for every state (read-only, shared by equal worlds)."""
    t = tables(material)
    out = []
    for succ, dtm, sign, tau, eps in (
        (t.succ_w, t.dtm_b, -1.0, tau_white, eps_white),
        (t.succ_b, t.dtm_w, 1.0, tau_black, eps_black),
    ):
        ext = np.concatenate([dtm, [-1, -1]]).astype(np.float64)
        ext[ext < 0] = draw_plies  # not a forced win: a draw
        rows = np.flatnonzero((succ != _PAD).any(1))
        p = np.zeros(succ.shape)
        p[rows] = _mix(sign * ext[succ[rows]] / tau, succ[rows] != _PAD, eps)
        p.flags.writeable = False
        out.append(p)
    return out[0], out[1]


@functools.lru_cache(maxsize=4)
def _win_value_table(material: str, max_plies: int, *policy: Any) -> np.ndarray:
    """P(win | Black to move in s with ``max_plies - 1`` plies left) for every s, by backward induction.

    Index ``N`` (padding) and ``N + 1`` (capture) hold 0, a mated state 1. Only the chain of
    sides that ends at Black with ``max_plies - 1`` plies left is computed.
    """
    t, (pw, pb) = tables(material), _policy_tables(material, *policy)
    rw = np.flatnonzero(t.legal_w & (t.succ_w != _PAD).any(1))
    rb = np.flatnonzero(t.legal_b & (t.succ_b != _PAD).any(1))  # not mated, not stalemated
    sw, pw_, sb, pb_ = t.succ_w[rw], pw[rw], t.succ_b[rb], pb[rb]
    vb = np.concatenate([t.mate_b, [False, False]]).astype(np.float64)  # 0 plies left
    vw = np.zeros(N + 2)
    last = max_plies - 1
    for r in range(1, last + 1):
        if (last - r) % 2 == 0:
            vb[rb] = (pb_ * vw[sb]).sum(1)
        else:
            vw[rw] = (pw_ * vb[sw]).sum(1)
    vb.flags.writeable = False
    return vb


def _mix(score: np.ndarray, valid: np.ndarray, eps: float) -> np.ndarray:
    """``(1 - eps) softmax(score) + eps uniform`` over the valid entries of each row (0 elsewhere)."""
    s = np.where(valid, score, -np.inf)
    top = s.max(1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    e = np.where(valid, np.exp(s - top), 0.0)
    z = e.sum(1, keepdims=True)
    cnt = valid.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (1 - eps) * e / z + eps * valid / cnt
    return np.where(valid, np.nan_to_num(p), 0.0)


# --- plotting -------------------------------------------------------------------------------------


def plot_position(
    position: Position | str | Sequence[str],
    move_probs: Mapping[str, tuple[float | None, float | None]] | None = None,
    title: str = "",
):
    """Draw the board with its pieces and an arrow per candidate move, labelled ``pred / exact``.

    Args:
        position: the position (tokens, FEN or :class:`Position`).
        move_probs: ``{move: (predicted P(win), exact P(win))}``; either may be None. Arrows are
            coloured by the exact value (red 0 .. green 1), or the prediction when exact is None.
        title: the axes title.

    Returns:
        a ``matplotlib.figure.Figure`` (no pyplot state; save it with ``fig.savefig``).

    Example:
        >>> fig = plot_position("K:c6 Q:d1 k:a8", {"d1d8": (0.9, 1.0), "d1a4": (0.5, 0.93)})
        >>> len(fig.axes)
        1
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    pos = Position.parse(position)
    fig = Figure(figsize=(5.6, 5.6))
    ax = fig.add_subplot()
    for sq in range(64):
        f, r = sq % 8, sq // 8
        ax.add_patch(Rectangle((f, r), 1, 1, color="#b58863" if (f + r) % 2 == 0 else "#f0d9b5", zorder=0))
    for sq, letter, white in ((pos.wk, "K", True), (pos.piece, pos.letter, True), (pos.bk, "K", False)):
        if sq is None:
            continue
        x, y = sq % 8 + 0.5, sq // 8 + 0.5
        ax.add_patch(Circle((x, y), 0.36, facecolor="white" if white else "black", edgecolor="black", lw=1.5, zorder=3))
        ink = "black" if white else "white"
        ax.text(x, y, letter, ha="center", va="center", fontsize=17, weight="bold", color=ink, zorder=4)
    if move_probs:
        import matplotlib

        cmap = matplotlib.colormaps["RdYlGn"]
        for move, (pred, exact) in move_probs.items():
            a, b = square(move[:2]), square(move[2:])
            x0, y0, x1, y1 = a % 8 + 0.5, a // 8 + 0.5, b % 8 + 0.5, b // 8 + 0.5
            val = exact if exact is not None else pred
            color = cmap(float(val)) if val is not None else "#444444"
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                arrowprops={"arrowstyle": "-|>", "color": color, "lw": 2.2, "alpha": 0.9, "shrinkA": 8, "shrinkB": 4},
                zorder=2,
            )
            label = " / ".join("?" if v is None else f"{v:.2f}" for v in (pred, exact))
            box = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": color, "alpha": 0.85}
            lx, ly = x0 + 0.72 * (x1 - x0), y0 + 0.72 * (y1 - y0) + 0.18
            ax.text(lx, ly, label, ha="center", va="center", fontsize=7, zorder=5, bbox=box)
    ax.set_xlim(0, 8)
    ax.set_ylim(0, 8)
    ax.set_aspect("equal")
    ax.set_xticks([i + 0.5 for i in range(8)], list(FILES))
    ax.set_yticks([i + 0.5 for i in range(8)], [str(i + 1) for i in range(8)])
    ax.tick_params(length=0)
    ax.set_title(title or ("P(win): predicted / exact" if move_probs else pos.fen()), fontsize=10)
    fig.tight_layout()
    return fig

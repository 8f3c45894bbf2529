"""Squares, positions and the legal-move generator for KQK and KRK (White: king + queen or rook; Black: a lone king)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import DataError

MATERIALS = ("KQK", "KRK")
_PIECE = {"KQK": "Q", "KRK": "R"}
FILES = "abcdefgh"
N = 64 * 64 * 64  # states per side to move: index = (white king * 64 + piece) * 64 + black king
_PAD, _CAPTURE = N, N + 1  # successor sentinels: no move in this column / Black took White's piece

# directions: the first four are the rook's, all eight the queen's and the king's
_DIRS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


class IllegalMoveError(ValueError):
    """A forced or pushed move is not legal in the position it is played in."""


# --- squares and geometry -----------------------------------------------------------------------


def square(name: str) -> int:
    """``"e1"`` -> 4 (``a1`` = 0, ``h8`` = 63)."""
    if len(name) != 2 or name[0] not in FILES or name[1] not in "12345678":
        raise DataError(f"bad square {name!r}: use a file a-h and a rank 1-8, e.g. 'e4'")
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
            raise DataError(f"unknown material {self.material!r}; choose one of {MATERIALS}")

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
            raise DataError("a position without White's piece has no table index")
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
                raise DataError(f"bad position token {t!r} in {toks}: expected e.g. ['K:e1', 'Q:d1', 'k:e8']")
            found[t[0]] = square(t[2:])
        pieces = [c for c in "QR" if c in found]
        if "K" not in found or "k" not in found or len(pieces) != 1:
            raise DataError(f"position {toks}: need K, k and exactly one of Q / R")
        return cls("KQK" if pieces[0] == "Q" else "KRK", found["K"], found[pieces[0]], found["k"])

    @classmethod
    def _from_fen(cls, fen: str) -> Position:
        parts = fen.split()
        found: dict[str, int] = {}
        rows = parts[0].split("/")
        if len(rows) != 8:
            raise DataError(f"bad FEN {fen!r}")
        for i, row in enumerate(rows):
            f = 0
            for ch in row:
                if ch.isdigit():
                    f += int(ch)
                    continue
                if ch not in "KQRk" or ch in found or f > 7:
                    raise DataError(f"FEN {fen!r}: only K, Q or R, and k are supported, once each")
                found[ch] = f + 8 * (7 - i)
                f += 1
        wtm = len(parts) < 2 or parts[1] == "w"
        pieces = [c for c in "QR" if c in found]
        if "K" not in found or "k" not in found or len(pieces) != 1:
            raise DataError(f"FEN {fen!r}: need K, k and exactly one of Q / R")
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

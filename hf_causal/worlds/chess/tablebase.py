"""Vectorised tables of every state's moves and the exact distance to mate, by retrograde analysis (cached on disk)."""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import QueryError
from .movegen import _ATT, _CAPTURE, _DIST, _KN, _PAD, _PIECE, _RAY, MATERIALS, N

# --- vectorised tables: moves of every state and distance to mate --------------------------------


_TABLE_VERSION = 1  # bump when the cached tables' layout changes


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
        raise QueryError(f"unknown material {material!r}; choose one of {MATERIALS}")
    t0 = time.perf_counter()
    m = _build_moves(material)
    cached = _load_dtm(material)
    if cached is None:
        cached = _retrograde(m)
        _save_dtm(material, *cached)
    return Tables(material, **m, dtm_w=cached[0], dtm_b=cached[1], build_seconds=time.perf_counter() - t0)

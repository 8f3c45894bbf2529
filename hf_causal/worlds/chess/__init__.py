"""Chess endgames (KQK, KRK) played by a stochastic behaviour policy, with exact answers.

Modules: ``movegen`` (squares, positions, legal moves), ``tablebase`` (every state's moves and the
distance to mate), ``policy`` (the behaviour policy's tables), ``world`` (:class:`ChessWorld`) and
``pictures`` (:func:`plot_position`).

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

from ..registry import register_world
from .movegen import (
    MATERIALS,
    IllegalMoveError,
    Position,
    game_status,
    in_check,
    is_check,
    is_legal_position,
    legal_moves,
    move_alphabet,
    piece_moves,
    push,
    square,
    square_name,
)
from .pictures import plot_position
from .tablebase import Tables, tables
from .world import ChessWorld, Outcome

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

register_world("chess", ChessWorld)

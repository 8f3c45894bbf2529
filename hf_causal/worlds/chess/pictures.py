"""Drawing a position and candidate moves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .movegen import FILES, Position, square

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

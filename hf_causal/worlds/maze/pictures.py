"""Drawing a maze and a move list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .grid import Maze, _as_list
from .world import OutcomeDistribution


def _fmt_outcome(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, OutcomeDistribution):
        v = {"P(reached)": v.p_reached, "E[distance]": v.mean_distance}
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={x:.3g}" if isinstance(x, float) else f"{k}={x}" for k, x in v.items())
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def plot_maze(
    row: Mapping[str, Any] | Maze,
    actions: Sequence[str] | str = (),
    predicted: Any = None,
    true: Any = None,
    path: str | Path | None = None,
):
    """Draw a maze's walls, start (green), goal (red) and the slip-free replay of ``actions``.

    ``predicted`` / ``true``: a number, a mapping (e.g. ``{"P(reached)": 0.8}``) or an
    :class:`OutcomeDistribution`, shown in the title. With ``path`` the figure is also saved
    there. Returns the matplotlib Figure (Agg backend; close it with ``plt.close(fig)``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    m = row if isinstance(row, Maze) else Maze.from_row(row)
    s = m.size
    fig, ax = plt.subplots(figsize=(0.55 * s + 1.2, 0.55 * s + 1.4))
    for c, b in enumerate(m.bits):
        r, q = divmod(c, s)
        # y grows downwards so row 0 is on top
        if not b & 1:
            ax.plot([q, q + 1], [r, r], color="black", lw=2)
        if not b & 4:
            ax.plot([q, q + 1], [r + 1, r + 1], color="black", lw=2)
        if not b & 8:
            ax.plot([q, q], [r, r + 1], color="black", lw=2)
        if not b & 2:
            ax.plot([q + 1, q + 1], [r, r + 1], color="black", lw=2)
    acts = _as_list(actions)
    if acts:
        cells = m.replay(acts)
        xs = [c % s + 0.5 for c in cells]
        ys = [c // s + 0.5 for c in cells]
        ax.plot(xs, ys, color="#ff9d00", lw=2.5, alpha=0.8, zorder=2)
    for c, color, label in ((m.start, "#2ca02c", "start"), (m.goal, "#d62728", "goal")):
        ax.scatter([c % s + 0.5], [c // s + 0.5], s=120, color=color, zorder=3, label=label)
    ax.set_xlim(-0.1, s + 0.1)
    ax.set_ylim(s + 0.1, -0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    title = f"{s}x{s} maze, {len(acts)} moves"
    if predicted is not None:
        title += f"\npredicted: {_fmt_outcome(predicted)}"
    if true is not None:
        title += f"\ntrue: {_fmt_outcome(true)}"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=130)
    return fig

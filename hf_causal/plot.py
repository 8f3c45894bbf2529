"""Pictures of causal answers (matplotlib, written to files)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["plot_distributions", "plot_effects", "plot_dag"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_distributions(panels: Mapping[str, Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Grouped bars per panel: ``{panel: {"values": [...], series: {"p": [...], "se": [...] | None}}}``.

    Typical series: ``exact``, ``engine`` (with MC error bars, 95%), ``naive``.
    """
    plt = _plt()
    import numpy as np

    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False, sharey=True)
    colors = {"exact": "#333333", "engine": "#ff9d00", "naive": "#6f8fd8"}
    for ax, (name, panel) in zip(axes[0], panels.items()):
        vals = [str(v) for v in panel["values"]]
        series = {k: v for k, v in panel.items() if k != "values"}
        w = 0.8 / max(len(series), 1)
        x = np.arange(len(vals))
        for i, (s, d) in enumerate(series.items()):
            err = None if d.get("se") is None else 1.96 * np.asarray(d["se"])
            ax.bar(
                x + (i - (len(series) - 1) / 2) * w,
                d["p"],
                w,
                yerr=err,
                capsize=3,
                label=s,
                color=colors.get(s),
                edgecolor="white",
            )
        ax.set_xticks(x, vals)
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("probability")
    axes[0][-1].legend(frameon=False, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def plot_effects(rows: Mapping[str, Mapping[str, float]], path: str | Path, title: str = "") -> Path:
    """Point estimates with 95% intervals: ``{label: {"estimate", "ci_low", "ci_high", "exact"?, "naive"?}}``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 0.6 * len(rows) + 1.8))
    for i, r in enumerate(rows.values()):
        y = len(rows) - 1 - i
        ax.errorbar(
            r["estimate"],
            y,
            xerr=[[r["estimate"] - r["ci_low"]], [r["ci_high"] - r["estimate"]]],
            fmt="o",
            color="#ff9d00",
            capsize=4,
            label="engine (95% MC)" if i == 0 else None,
        )
        if "exact" in r:
            ax.plot(r["exact"], y, "kx", ms=9, label="exact" if i == 0 else None)
        if "naive" in r:
            ax.plot(r["naive"], y, "s", color="#6f8fd8", label="naive" if i == 0 else None)
    ax.set_yticks(range(len(rows)), list(rows)[::-1])
    ax.axvline(0, color="grey", lw=0.8)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("effect (treated − control)")
    if title:
        import textwrap

        ax.set_title(textwrap.fill(title, 70), fontsize=9)
    return _save(fig, path)


def plot_dag(graph, path: str | Path, title: str = "") -> Path:
    """Draw the causal DAG, layered by topological generation (causes left, effects right)."""
    plt = _plt()
    import networkx as nx

    g = graph.as_networkx()
    layers = list(nx.topological_generations(g))
    pos = {}
    for x, layer in enumerate(layers):
        layer = sorted(layer, key=graph.order.index)
        for i, v in enumerate(layer):
            pos[v] = (x, (len(layer) - 1) / 2 - i)
    fig, ax = plt.subplots(
        figsize=(max(4, 1.9 * len(layers)), max(3.0, 1.1 * max(len(layer) for layer in layers) + 1.5))
    )
    colors = {
        "categorical": "#ffd48a",
        "integer": "#ffd48a",
        "continuous": "#a8d5a2",
        "text": "#b9c7f0",
        "sequence": "#f0b9d8",
    }
    layer_of = {v: x for x, layer in enumerate(layers) for v in layer}
    node_size = 2600
    # edges that skip layers are drawn as arcs (alternating sides), so none hides behind a node
    by_style: dict[float, list] = {}
    for i, (a, b) in enumerate(g.edges):
        span = layer_of[b] - layer_of[a]
        same_row = abs(pos[a][1] - pos[b][1]) < 1e-9
        rad = 0.0 if span <= 1 and not (same_row and span > 1) else (0.18 + 0.06 * (span - 2)) * (-1) ** i
        by_style.setdefault(round(rad, 3), []).append((a, b))
    for rad, edges in by_style.items():
        nx.draw_networkx_edges(
            g,
            pos,
            edgelist=edges,
            ax=ax,
            arrows=True,
            arrowsize=14,
            node_size=node_size,
            edge_color="#555555",
            connectionstyle=f"arc3,rad={rad}",
        )
    nx.draw_networkx_nodes(
        g,
        pos,
        ax=ax,
        node_size=node_size,
        node_color=[colors.get(graph[v].type, "#dddddd") for v in g.nodes],
        edgecolors="#333333",
    )
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=7)
    ax.margins(0.12, 0.35)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)

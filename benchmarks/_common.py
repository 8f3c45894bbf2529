"""Shared pieces of the benchmarks: training on a table, Markdown tables, bar plots, JSON output."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def train_on_rows(rows, graph, out_dir: str | Path, **overrides: Any) -> tuple[Path, float]:
    """Train an engine on a DataFrame (written to Parquet beside the model); returns (folder, seconds)."""
    from hf_causal import train

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    data = out_dir.parent / f"{out_dir.name}.rows.parquet"
    rows.to_parquet(data)
    recipe = {
        "graph": graph.to_dict() if hasattr(graph, "to_dict") else graph,
        "data": str(data),
        "output_dir": str(out_dir),
        "logging_steps": 10**6,
        **overrides,
    }
    t0 = time.time()
    train(recipe)
    return out_dir, time.time() - t0


def _options_file(model_dir: str | Path) -> Path:
    model_dir = Path(model_dir)
    return model_dir.parent / f"{model_dir.name}.options.json"


def record_options(model_dir: str | Path, options: Mapping[str, Any]) -> Path:
    """Record beside a freshly trained model folder the benchmark options that shaped it, for ``--reuse``."""
    return write_json(dict(options), _options_file(model_dir))


def reusable(model_dir: str | Path, options: Mapping[str, Any]) -> bool:
    """``--reuse``: True when ``model_dir`` holds a model trained with ``options`` (as recorded by
    :func:`record_options`), False when it holds none (train it). A model trained with other options, or
    one without a record, stops the run with what differs: scoring it would mislabel the table."""
    model_dir = Path(model_dir)
    if not (model_dir / "causal_config.json").exists():
        return False
    f = _options_file(model_dir)
    if not f.exists():
        raise SystemExit(f"--reuse: {model_dir} has no record of its options ({f.name}); remove it to retrain")
    want = json.loads(json.dumps(dict(options), default=float))  # the record's JSON form (tuples as lists)
    had = json.loads(f.read_text())
    diff = {k: (had.get(k), want.get(k)) for k in sorted(set(had) | set(want)) if had.get(k) != want.get(k)}
    if diff:
        said = "; ".join(f"{k}: trained with {a!r}, asked for {b!r}" for k, (a, b) in diff.items())
        raise SystemExit(f"--reuse: {model_dir} was trained with other options ({said}); drop --reuse or the options")
    return True


def median_seconds(fn, repeats: int = 3, warmup: int = 1) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls of ``fn()`` after ``warmup`` untimed calls, and the last result.

    The machines are shared and noisy: one cold, single measurement read a 35x speed-up as 1.5x."""
    import statistics

    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; floats get 4 significant decimals."""

    def cell(x):
        if isinstance(x, float):
            return f"{x:.4f}" if abs(x) < 1000 else f"{x:.0f}"
        return str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically (temporary file, then rename)."""
    from hf_causal.fileio import atomic_write_json

    return atomic_write_json(path, obj, default=float)


def plot_bars(
    groups: Mapping[str, Mapping[str, float]],
    path: str | Path,
    ylabel: str,
    title: str = "",
    errors: Mapping[str, Mapping[str, float]] | None = None,
    reference: float | None = None,
    log: bool = False,
) -> Path:
    """Grouped bars: ``{group: {method: value}}`` (e.g. network/n -> method -> mean TV)."""
    from hf_causal.plot import _plt, _save

    plt = _plt()
    import numpy as np

    names = list(groups)
    methods = list(dict.fromkeys(m for g in groups.values() for m in g))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(names) * max(1, len(methods)) / 3), 3.8))
    w = 0.8 / max(len(methods), 1)
    x = np.arange(len(names))
    for i, m in enumerate(methods):
        vals = [groups[g].get(m, np.nan) for g in names]
        err = None if errors is None else [errors.get(g, {}).get(m, 0.0) for g in names]
        ax.bar(x + (i - (len(methods) - 1) / 2) * w, vals, w, yerr=err, capsize=2, label=m, edgecolor="white")
    if reference is not None:
        ax.axhline(reference, color="black", lw=1, ls="--", label="benchmark")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False, fontsize=7, ncol=2)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


def publish_card(model_dir: str | Path, card_dir: str | Path, images: Sequence[str | Path] = (), **card) -> Path:
    """Write the model card of ``model_dir`` (``hf_causal.save_model_card(**card)``) and copy it, its
    DAG and ``images`` into ``card_dir`` (e.g. ``model_cards/<name>``), replacing it atomically."""
    import shutil
    import tempfile

    from hf_causal import save_model_card

    model_dir, card_dir = Path(model_dir), Path(card_dir)
    save_model_card(model_dir, **card)
    card_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=card_dir.parent, prefix=f".{card_dir.name}-"))
    for src in (model_dir / "README.md", model_dir / "dag.png", *map(Path, images)):
        if src.exists():
            shutil.copy(src, tmp / src.name)
    if card_dir.exists():
        shutil.rmtree(card_dir)
    tmp.rename(card_dir)
    return card_dir / "README.md"


def recipe_setup(
    recipe_path: str | Path,
    out: Path,
    *,
    rows: int | None = None,
    epochs: float | None = None,
    smoke: bool = False,
    world_options: Mapping[str, Any] | None = None,
    **model: Any,
) -> tuple[dict, dict, Any, dict]:
    """A world benchmark's training set-up: ``(recipe, overrides, world, merged config)``.

    The overrides put the model under ``out/model`` and apply ``rows`` / ``epochs`` / non-None
    ``model`` sizes; ``world_options`` are merged into the recipe's; ``smoke`` shrinks the model."""
    from hf_causal.recipes import load_recipe
    from hf_causal.worlds import get_world

    recipe = load_recipe(recipe_path)
    overrides: dict[str, Any] = {"output_dir": str(out / "model"), "logging_steps": 10**6}
    if rows:
        overrides["world_rows"] = rows
    if epochs:
        overrides["num_train_epochs"] = epochs
    overrides.update({k: v for k, v in model.items() if v is not None})
    if smoke:
        overrides.update(n_embd=32, n_layer=1)
    if world_options:
        overrides["world_options"] = {**(recipe.get("world_options") or {}), **world_options}
    cfg = {**recipe, **overrides}
    world = get_world(cfg["world"], **(cfg.get("world_options") or {}))
    return recipe, overrides, world, cfg


def train_or_load(recipe: dict, overrides: dict, model: str | None) -> tuple[Path, float]:
    """Train the recipe (returns the folder and seconds), or use an existing engine folder (nan s)."""
    if model:
        return Path(model), float("nan")
    from hf_causal import train

    t0 = time.time()
    mdir = train(recipe, overrides)
    return Path(mdir), time.time() - t0


def card_from_earlier_run(ap, args, json_name: str, write_card) -> dict:
    """``--card-only``: rebuild the model card folder from ``args.out/json_name`` without rerunning."""
    if not args.card:
        ap.error("--card-only needs --card DIR")
    result = json.loads((Path(args.out) / json_name).read_text())
    write_card(result, Path(args.out), Path(args.card))
    return result


def add_card_arguments(ap, example: str) -> None:
    """``--card DIR`` and ``--card-only`` for a benchmark that writes a model card folder."""
    ap.add_argument(
        "--card",
        default=None,
        help=f"also write a model card folder here (e.g. {example}); with --card-only, from the JSON and "
        "model already in --out",
    )
    ap.add_argument("--card-only", action="store_true", help="write --card from an earlier run's --out")

"""The bundled demo: train on a simulated world, then ask it the questions whose exact answers are known.

``hf-causal demo`` and ``benchmarks/demo_world.py`` both use :func:`compare`: for a world with
``roles`` (outcome, treatment, treated/control values, a subgroup), the engine's P(outcome | do(treatment)),
ATE, ATT and CATE beside the exact answers and the naive (confounded) ones.

Example:
    >>> report = run_demo("outputs/demo")       # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

__all__ = ["DEMO_RECIPE", "compare", "print_report", "interval_note", "panels", "card_rows", "run_demo"]

DEMO_RECIPE: dict[str, Any] = {
    "world": "demo",
    "world_rows": 20000,
    "world_seed": 0,
    "eval_fraction": 0.05,
    "order_policy": "canonical",
    "architecture": "gpt2",
    "attention": "full",
    "n_layer": 2,
    "n_embd": 64,
    "n_head": 4,
    "learning_rate": 0.003,
    "num_train_epochs": 12,
    "per_device_train_batch_size": 128,
    "lr_scheduler_type": "cosine",
    "seed": 0,
    "output_dir": "outputs/demo",
}
"""The demo recipe (``recipes/demo/gpt2-tiny.yaml`` is the same, as a file; a test keeps them equal)."""


def compare(engine, world, num_samples: int = 4000, seed: int = 0) -> dict[str, Any]:
    """Engine vs exact vs naive on the world's ``roles``: distributions under each treatment value, then
    ATE, ATT and CATE(subgroup). The naive answers are the exact observational ones; the engine's single-model
    warning is left to :func:`interval_note`."""
    from .inference.uncertainty import MonteCarloOnlyWarning

    with warnings.catch_warnings():  # one model: said once, under the tables (:func:`interval_note`)
        warnings.simplefilter("ignore", MonteCarloOnlyWarning)
        return _compare(engine, world, num_samples, seed)


def _compare(engine, world, num_samples: int, seed: int) -> dict[str, Any]:
    from .metrics import tv_distance

    r = world.roles
    y, t = r["outcome"], r["treatment"]
    report: dict[str, Any] = {"roles": dict(r), "queries": [], "estimands": {}}
    for a in world.graph[t].domain():
        d = engine.query(y, do={t: a}, num_samples=num_samples, seed=seed)
        ex = world.distribution(y, do={t: a})
        nv = world.naive_distribution(y, t, a)
        report["queries"].append(
            {
                "label": f"P({y} | do({t}={a}))",
                "do": {t: a},
                "exact": ex,
                "engine": d.to_dict(),
                "engine_probs": {k: d.probs[k] for k in ex},
                "engine_se": {k: d.se[k] for k in ex},
                "naive": nv,
                "tv_engine": tv_distance(d.probs, ex),
                "tv_naive": tv_distance(nv, ex),
            }
        )
    a1, a0, sub = r["treated"], r["control"], r["subgroup"]
    naive_diff = world.naive_expectation(y, t, a1) - world.naive_expectation(y, t, a0)
    label = "CATE(" + ", ".join(f"{k}={v}" for k, v in sub.items()) + ")"
    for name, est, exact in [
        ("ATE", engine.ate(y, t, a1, a0, num_samples=num_samples, seed=seed), world.ate(y, t, a1, a0)),
        ("ATT", engine.att(y, t, a1, a0, num_samples=num_samples, seed=seed), world.att(y, t, a1, a0)),
        (
            label,
            engine.cate(y, t, a1, a0, given=sub, num_samples=num_samples, seed=seed),
            world.cate(y, t, a1, a0, sub),
        ),
    ]:
        report["estimands"][name] = {"exact": exact, "engine": est.to_dict(), "naive_difference": naive_diff}
    report["interval_kind"], report["members"] = est.interval_kind, est.members
    return report


def interval_note(report: dict[str, Any]) -> str:
    """What the report's ± intervals cover, in a sentence (and, for one model, how to get more)."""
    from .inference.uncertainty import MONTE_CARLO_ONLY

    if report["interval_kind"] == MONTE_CARLO_ONLY:
        return (
            "± is a 95% interval of Monte Carlo error only (one model): it does not cover the fit's estimation "
            "error, usually the larger one. Train an ensemble (recipe key ensemble: {k: 5, method: crossfit}) or "
            "use estimator='aipw' on data rows for intervals that do."
        )
    return f"± is a 95% interval of estimation and Monte Carlo error ({report['members']} ensemble members)."


def _halfwidth(e: dict[str, Any]) -> float:
    return (e["ci_high"] - e["ci_low"]) / 2


def print_report(report: dict[str, Any]) -> None:
    print(f"\n{'query':<34} {'value':>5} {'exact':>8} {'engine':>8} {'±95%':>8} {'naive':>8}")
    for q in report["queries"]:
        for k, ex in q["exact"].items():
            e, nv, hw = q["engine_probs"][k], q["naive"][k], _halfwidth(q["engine"]["probabilities"][str(k)])
            print(f"{q['label']:<34} {k!s:>5} {ex:8.4f} {e:8.4f} {hw:8.4f} {nv:8.4f}")
        print(f"{'':<34} {'TV':>5} {'':>8} {q['tv_engine']:8.4f} {'':>8} {q['tv_naive']:8.4f}")
    print(f"\n{'estimand':<22} {'exact':>8} {'engine':>8} {'±95%':>8} {'naive':>8}")
    for name, r in report["estimands"].items():
        e = r["engine"]
        print(f"{name:<22} {r['exact']:8.4f} {e['estimate']:8.4f} {_halfwidth(e):8.4f} {r['naive_difference']:8.4f}")
    print("\n" + interval_note(report))


def panels(report: dict[str, Any]) -> dict[str, Any]:
    """The distributions of a report, as :func:`hf_causal.plot.plot_distributions` panels."""
    out = {}
    for q in report["queries"]:
        keys = list(q["exact"])
        out[q["label"]] = {
            "values": keys,
            "exact": {"p": [q["exact"][k] for k in keys]},
            "engine": {"p": [q["engine_probs"][k] for k in keys], "se": [q["engine_se"][k] for k in keys]},
            "naive": {"p": [q["naive"][k] for k in keys]},
        }
    return out


def card_rows(report: dict[str, Any]) -> list[dict[str, str]]:
    """The model card's evaluation rows of a report."""
    rows = [
        {
            "query": f"TV to exact, {q['label']}",
            "exact": "0",
            "engine": f"{q['tv_engine']:.4f}",
            "naive": f"{q['tv_naive']:.4f}",
        }
        for q in report["queries"]
    ]
    from .inference.uncertainty import MONTE_CARLO_ONLY

    mc_only = report["interval_kind"] == MONTE_CARLO_ONLY
    kind = "Monte Carlo only" if mc_only else f"estimation + Monte Carlo, {report['members']} members"
    for name, r in report["estimands"].items():
        e = r["engine"]
        rows.append(
            {
                "query": name,
                "exact": f"{r['exact']:.4f}",
                "engine": f"{e['estimate']:.4f} ± {_halfwidth(e):.4f} ({kind})",
                "naive": f"{r['naive_difference']:.4f} (difference in means)",
            }
        )
    return rows


def run_demo(
    output_dir: str | Path = "outputs/demo",
    recipe: str | Path | None = None,
    rows: int | None = None,
    epochs: float | None = None,
    num_samples: int = 4000,
    seed: int = 0,
    plot: str | Path | None = None,
    retrain: bool = False,
    repo_id: str = "hf-causal/demo-gpt2-tiny",
) -> dict[str, Any]:
    """Train the demo recipe (unless ``output_dir`` holds a model), print the comparison, write the
    plot, the report JSON and the model card into ``output_dir``; returns the report."""
    from .fileio import atomic_write_json
    from .hub import save_model_card
    from .inference import CausalEngine
    from .plot import plot_distributions
    from .recipes import load_recipe
    from .training import train
    from .worlds import get_world

    cfg = load_recipe(recipe) if recipe else dict(DEMO_RECIPE)
    cfg["output_dir"] = str(output_dir)
    if rows:
        cfg["world_rows"] = rows
    if epochs:
        cfg["num_train_epochs"] = epochs
    world = get_world(cfg.get("world", "demo"), **(cfg.get("world_options") or {}))
    out = Path(output_dir)
    if retrain or not (out / "causal_config.json").exists():
        print(
            f"training on {cfg['world_rows']} simulated rows of the '{world.name}' world "
            f"(order {' -> '.join(world.graph.order)}) ...",
            flush=True,
        )
        train(cfg)
    eng = CausalEngine.from_pretrained(out)
    m = eng.config.metrics
    print(f"model: {m.get('parameters')} parameters, trained {m.get('train_seconds')} s on {m.get('train_rows')} rows")
    report = compare(eng, world, num_samples, seed)
    print_report(report)
    picture = plot_distributions(
        panels(report), plot or out / "demo.png", title=f"{world.name} world: exact vs engine vs naive"
    )
    card = save_model_card(
        out,
        repo_id=repo_id,
        evaluation=card_rows(report),
        data_description=f"{m.get('train_rows')} rows simulated from the '{world.name}' world "
        "(hf_causal.worlds.demo); exact answers by enumeration",
    )
    atomic_write_json(out / "demo_report.json", report, default=str)
    print(f"\nplot: {picture}\nreport: {out / 'demo_report.json'}\nmodel card: {card}")
    return report

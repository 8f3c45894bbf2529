"""Attention modes side by side: accuracy under intervention, and what each costs to train and to query.

Trains one engine per mode (``full``, ``parents``, ``local``, ``two_stream``) on the same rows of a world
and reports the TV to the exact interventional answers, the training seconds and the median seconds of
a query (after a warm-up), each as a ratio to full attention measured in the same run.

    python -m benchmarks.attention --worlds demo recode --rows 20000
    python -m benchmarks.attention --worlds --step-costs        # only the training-step costs on the paper world
    python -m benchmarks.attention --smoke

Writes ``<out>/attention.json``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

from ._common import markdown_table, median_seconds, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

MODES = ("full", "parents", "local", "two_stream")


def _queries(world):
    r = world.roles
    y, t = r["outcome"], r["treatment"]
    return [(y, {t: a}) for a in world.graph[t].domain()]


def step_costs(recipe: dict, modes, batches: int = 4, repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Median seconds of one training step (forward, backward, AdamW) per attention mode, on the same
    ``batches`` collated batches of ``recipe``'s rows, the modes interleaved within each repeat after a
    warm-up (the machine's load then weighs on every mode alike). The recipe's ``loss_variables`` count:
    mechanism attention runs its streams only where the labelled predictions read them."""
    import dataclasses

    import torch

    from hf_causal.attention import resolve_attention
    from hf_causal.modeling import build_model
    from hf_causal.recipes import parse_recipe
    from hf_causal.training import _Fit, prepare

    data_args, model_args, args = parse_recipe(recipe)
    graph, tok, _, train_ds, eval_ds, _ = prepare(data_args, model_args, seed=seed)
    size = args.per_device_train_batch_size
    rows = [train_ds[i] for i in range(min(len(train_ds), batches * size))]
    feats = [{k: r[k] for k in ("input_ids", "segment_ids")} for r in rows]
    steps = {}
    for mode in modes:
        margs = dataclasses.replace(model_args, attention=resolve_attention(mode, graph))
        fit = _Fit(graph, tok, data_args, margs, train_ds, eval_ds)
        data = [fit.collator(feats[s : s + size]) for s in range(0, len(feats), size)]
        model = build_model(margs, tok, max_length=max(2 * fit.max_len, 64), seed=seed).train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        if not fit.with_segments:
            data = [{k: v for k, v in b.items() if k != "segment_ids"} for b in data]

        def step(model=model, opt=opt, data=data):
            for b in data:
                model(**b).loss.backward()
                opt.step()
                opt.zero_grad()

        steps[mode] = step
    times: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(repeats + 1):
        for mode in modes:
            t0 = time.perf_counter()
            steps[mode]()
            if r:  # the first round is the warm-up
                times[mode].append((time.perf_counter() - t0) / len(data))
    return {m: float(sorted(v)[len(v) // 2]) for m, v in times.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", nargs="*", default=["demo", "recode"])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--epochs", type=float, default=12)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--num-samples", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3, help="timed query repeats (median), after a warm-up")
    ap.add_argument(
        "--step-costs",
        action="store_true",
        help="also time one training step per mode (median, modes interleaved) on the paper world with MiniLM + "
        "LoRA, with loss_variables [keyword, accepted] (the benchmark's) and without (every variable)",
    )
    ap.add_argument("--step-rows", type=int, default=64, help="paper-world rows per timed pass (batches of 32)")
    ap.add_argument("--out", default="results/attention")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.rows, args.epochs, args.num_samples, args.repeats, args.modes = 400, 1, 200, 1, ["full", "local"]
        args.step_costs, args.step_rows = True, 8
    warnings.filterwarnings("ignore")
    from hf_causal import CausalEngine, train
    from hf_causal.metrics import tv_distance
    from hf_causal.worlds import get_world

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "demo" / "gpt2-tiny.yaml"
    results = []
    for name in args.worlds:
        world = get_world(name)
        qs = _queries(world)
        for mode in args.modes:
            mdir = out / f"model_{name}_{args.rows}_{mode}"
            t0 = time.time()
            train(
                recipe,
                {
                    "world": name,
                    "world_rows": args.rows,
                    "num_train_epochs": args.epochs,
                    "attention": mode,
                    "output_dir": str(mdir),
                    "logging_steps": 10**6,
                },
            )
            secs = time.time() - t0
            eng = CausalEngine.from_pretrained(mdir)
            tvs = [
                tv_distance(eng.query(y, do=do, num_samples=args.num_samples).probs, world.distribution(y, do=do))
                for y, do in qs
            ]
            y, do = qs[0]
            q_secs, _ = median_seconds(
                lambda eng=eng, y=y, do=do: eng.query(y, do=do, num_samples=args.num_samples), args.repeats
            )
            results.append(
                {
                    "world": name,
                    "rows": args.rows,
                    "attention": mode,
                    "train_seconds": secs,
                    "query_seconds": q_secs,
                    "mean_tv": sum(tvs) / len(tvs),
                    "max_tv": max(tvs),
                    "tvs": tvs,
                }
            )
            print(results[-1], flush=True)
    table = []
    for r in results:
        base = (
            next(x for x in results if x["world"] == r["world"] and x["attention"] == "full")
            if "full" in args.modes
            else r
        )
        table.append(
            [
                r["world"],
                r["rows"],
                r["attention"],
                r["mean_tv"],
                r["max_tv"],
                f"{r['train_seconds']:.0f}",
                f"{r['train_seconds'] / base['train_seconds']:.2f}",
                f"{r['query_seconds']:.3f}",
                f"{r['query_seconds'] / base['query_seconds']:.2f}",
            ]
        )
    print(
        "\n"
        + markdown_table(
            [
                "world",
                "rows",
                "attention",
                "mean TV",
                "max TV",
                "train s",
                "train / full",
                f"query s ({args.num_samples} draws)",
                "query / full",
            ],
            table,
        )
    )
    steps = _step_table(args) if args.step_costs else []
    write_json({"config": vars(args), "results": results, "step_costs": steps}, out / "attention.json")
    return {"results": results, "step_costs": steps}


def _step_table(args) -> list[dict]:
    """Training-step seconds per mode on the paper world (MiniLM + LoRA), printed as ratios to full attention."""
    from hf_causal.checkpoints import MINILM

    size = min(32, args.step_rows)
    recipe = {
        "world": "papers",
        "world_options": {"setting": "interaction"},
        "world_rows": max(args.step_rows + 8, 40),
        "per_device_train_batch_size": size,
        "base_model": MINILM,
        "adapter": "lora",
        "eval_fraction": 0.0,
        "output_dir": str(Path(args.out) / "step_costs"),
    }
    modes = [m for m in ("full", "local", "two_stream") if m in args.modes or m == "full"]
    rows = []
    for loss in (["keyword", "accepted"], None):
        r = {**recipe, **({"loss_variables": loss} if loss else {})}
        secs = step_costs(r, modes, batches=max(1, args.step_rows // size), repeats=max(args.repeats, 1))
        for m in modes:
            rows.append(
                {
                    "loss_variables": loss or "all",
                    "attention": m,
                    "step_seconds": secs[m],
                    "ratio_to_full": secs[m] / secs["full"],
                }
            )
    print(
        "\nTraining step (forward, backward, AdamW), paper world, MiniLM + LoRA, batch "
        f"{size}, median of {max(args.repeats, 1)} after a warm-up, modes interleaved:\n"
        + markdown_table(
            ["loss_variables", "attention", "s / step", "x full"],
            [
                [str(r["loss_variables"]), r["attention"], f"{r['step_seconds']:.3f}", f"{r['ratio_to_full']:.2f}"]
                for r in rows
            ],
        ),
        flush=True,
    )
    return rows


if __name__ == "__main__":
    main()

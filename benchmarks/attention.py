"""Attention modes side by side: accuracy under intervention, and what each costs to train and to query.

Trains one engine per mode (``full``, ``parents``, ``local``, ``two_stream``) on the same rows of a world
and reports the TV to the exact interventional answers, the training seconds and the median seconds of
a query (after a warm-up), each as a ratio to full attention measured in the same run.

    python -m benchmarks.attention --worlds demo recode --rows 20000
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


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", nargs="+", default=["demo", "recode"])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--epochs", type=float, default=12)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--num-samples", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3, help="timed query repeats (median), after a warm-up")
    ap.add_argument("--out", default="results/attention")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.rows, args.epochs, args.num_samples, args.repeats, args.modes = 400, 1, 200, 1, ["full", "local"]
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
    write_json({"config": vars(args), "results": results}, out / "attention.json")
    return {"results": results}


if __name__ == "__main__":
    main()

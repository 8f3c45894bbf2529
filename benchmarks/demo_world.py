"""Demo world benchmark: exact vs engine vs naive, and time to reach a Monte Carlo standard error.

The baseline is what a user would write with plain ``transformers``: ``model.generate(do_sample=True)``
in batches, forcing the intervened tokens between two generate calls and sampling every
other variable *including the target*, whose distribution is then the draws' frequencies. Both are
warmed up, and each time is the median of ``--repeats`` timed runs. The accuracy table is the one
``hf-causal demo`` prints (:func:`hf_causal.demo.compare`).

    python -m benchmarks.demo_world                  # full: 20k rows, the demo recipe
    python -m benchmarks.demo_world --smoke          # CI: tiny model, few draws

Writes ``<out>/demo_world.json`` and ``<out>/demo_world.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

Y, T = "recovery", "treatment"


def baseline_generate(engine, a, n: int, batch: int, seed: int) -> tuple[np.ndarray, int]:
    """Plain generate loop: returns (counts of each target value, number of invalid draws)."""
    from hf_causal import Sequencifier

    tok, model, g = engine.tokenizer, engine.model, engine.graph
    seq = Sequencifier(tok)
    order = g.order
    before = order[: order.index(T)]
    n_prefix = 2 * len(before)  # start + value token per single-token variable
    forced = [tok.start_ids[T]] + tok.encode_value(T, a)
    dom = g[Y].domain()
    id_to_val = dict(zip(tok.value_ids[Y], dom))
    counts = np.zeros(len(dom))
    bad = 0
    torch.manual_seed(seed)
    done = 0
    while done < n:
        m = min(batch, n - done)
        prompt = torch.full((m, 1), tok.start_ids[order[0]], dtype=torch.long)
        with torch.no_grad():
            pre = model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                do_sample=True,
                max_new_tokens=n_prefix - 1,
                pad_token_id=tok.pad_id,
                eos_token_id=tok.eos_id,
            )
            x = torch.cat([pre, torch.tensor(forced).expand(m, -1)], 1)
            out = model.generate(
                x,
                attention_mask=torch.ones_like(x),
                do_sample=True,
                max_new_tokens=2 * (len(order) - len(before) - 1) + 1,
                pad_token_id=tok.pad_id,
                eos_token_id=tok.eos_id,
            )
        for row in out.tolist():
            try:
                segs = seq.split_segments(row)
                counts[dom.index(id_to_val[segs[Y][0]])] += 1
            except Exception:  # noqa: BLE001 - malformed unconstrained draw
                bad += 1
        done += m
    return counts, bad


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a trained demo model folder (default: train the demo recipe)")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--epochs", type=float, default=12)
    ap.add_argument("--engine-samples", type=int, default=8000)
    ap.add_argument("--baseline-samples", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--target-se", type=float, default=0.005)
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported), after one warm-up")
    ap.add_argument("--out", default="results")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes for CI")
    args = ap.parse_args(argv)
    if args.smoke:
        args.rows, args.epochs, args.engine_samples, args.baseline_samples, args.repeats = 600, 1, 256, 256, 1
    warnings.filterwarnings("ignore")
    torch.set_num_threads(max(1, torch.get_num_threads()))

    from hf_causal import CausalEngine, train
    from hf_causal.demo import compare, panels, print_report
    from hf_causal.metrics import tv_distance
    from hf_causal.plot import plot_distributions
    from hf_causal.worlds import demo_world

    from ._common import median_seconds

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w = demo_world()
    model_dir = args.model
    t_train = None
    if model_dir is None:
        model_dir = str(out / "demo_world_model")
        t0 = time.time()
        recipe = Path(__file__).resolve().parents[1] / "recipes" / "demo" / "gpt2-tiny.yaml"
        train(
            recipe,
            {"world_rows": args.rows, "num_train_epochs": args.epochs, "output_dir": model_dir, "logging_steps": 10**6},
        )
        t_train = time.time() - t0
    eng = CausalEngine.from_pretrained(model_dir, batch_size=args.batch_size)

    accuracy = compare(eng, w, num_samples=args.engine_samples, seed=0)  # the same comparison as `hf-causal demo`
    report: dict = {
        "rows": args.rows,
        "epochs": args.epochs,
        "train_seconds": t_train,
        "parameters": eng.config.metrics.get("parameters"),
        "accuracy": accuracy,
        "speed": [],
    }
    print(f"\n## Accuracy, demo world, {args.rows} training rows (naive: the exact observational answer)")
    print_report(accuracy)
    for a in (0, 1):
        t_eng, d = median_seconds(
            lambda a=a: eng.query(Y, do={T: a}, num_samples=args.engine_samples, seed=0), args.repeats
        )
        ex = w.distribution(Y, do={T: a})

        # --- speed: time to reach the target standard error (the worst value's) ---
        ablations = {}
        for label, kw in [
            ("no prefix sharing", {"share_prefixes": False}),
            ("no last-step marginalisation", {"marginalize_max": 0}),
            ("neither", {"share_prefixes": False, "marginalize_max": 0}),
        ]:
            e2 = CausalEngine(eng.model, eng.tokenizer, eng.config, batch_size=args.batch_size, **kw)
            t2, d2 = median_seconds(
                lambda a=a, e2=e2: e2.query(Y, do={T: a}, num_samples=args.engine_samples, seed=0), args.repeats
            )
            var2 = float(max(s**2 * args.engine_samples for s in d2.se.values()))
            ablations[label] = {"seconds_per_draw": t2 / args.engine_samples, "var_per_draw": var2}
        t_base, (counts, bad) = median_seconds(
            lambda a=a: baseline_generate(eng, a, args.baseline_samples, args.batch_size, seed=0), args.repeats
        )
        nb = counts.sum()
        pb = counts / max(nb, 1)
        var_b = float((pb * (1 - pb)).max())  # per-draw variance of the frequency estimate
        var_e = float(max(s**2 * args.engine_samples for s in d.se.values()))
        per_draw_b, per_draw_e = t_base / args.baseline_samples, t_eng / args.engine_samples
        need_b, need_e = var_b / args.target_se**2, var_e / args.target_se**2
        time_b, time_e = need_b * per_draw_b, max(need_e * per_draw_e, 1e-12)  # an untrained model has ~0 variance
        rec = {
            "do": a,
            "engine_seconds_per_draw": per_draw_e,
            "baseline_seconds_per_draw": per_draw_b,
            "engine_var_per_draw": var_e,
            "baseline_var_per_draw": var_b,
            "draws_needed_engine": need_e,
            "draws_needed_baseline": need_b,
            "seconds_to_target_engine": time_e,
            "seconds_to_target_baseline": time_b,
            "speedup": time_b / time_e,
            "baseline_invalid_draws": bad,
            "baseline_tv": tv_distance(dict(zip(ex, pb)), ex),
        }
        for ab in ablations.values():
            ab["seconds_to_target"] = ab["var_per_draw"] / args.target_se**2 * ab["seconds_per_draw"]
            ab["speedup"] = time_b / ab["seconds_to_target"]
        rec["ablations"] = ablations
        report["speed"].append(rec)
    print(
        f"\n## Time to a Monte Carlo standard error of {args.target_se} (worst value), batch {args.batch_size}; "
        f"median of {args.repeats} timed runs after a warm-up\n"
    )
    print(
        "| do | engine s/draw | baseline s/draw | engine var/draw | baseline var/draw | engine s to SE | baseline s to SE | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in report["speed"]:
        print(
            f"| {T}={r['do']} | {r['engine_seconds_per_draw']:.2e} | {r['baseline_seconds_per_draw']:.2e} | "
            f"{r['engine_var_per_draw']:.4f} | {r['baseline_var_per_draw']:.4f} | {r['seconds_to_target_engine']:.2f} | "
            f"{r['seconds_to_target_baseline']:.2f} | **{r['speedup']:.1f}x** |"
        )
        for label, ab in r["ablations"].items():
            print(
                f"| {T}={r['do']} ({label}) | {ab['seconds_per_draw']:.2e} | | {ab['var_per_draw']:.4f} | | "
                f"{ab['seconds_to_target']:.2f} | | {ab['speedup']:.1f}x |"
            )
    report["min_speedup"] = min(r["speedup"] for r in report["speed"])
    if args.smoke:
        print("(smoke run: a barely trained model has almost no variance across contexts; these ratios mean nothing)")
    plot_distributions(panels(accuracy), out / "demo_world.png", title="demo world: exact vs engine vs naive")
    (out / "demo_world.json").write_text(json.dumps(report, indent=2, default=float))
    print(f"\nwrote {out / 'demo_world.json'} and {out / 'demo_world.png'}")
    assert all(math.isfinite(r["speedup"]) for r in report["speed"])
    return report


if __name__ == "__main__":
    main()

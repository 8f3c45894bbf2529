"""The training schedule: ``schedule: auto`` against a fixed 12-epoch schedule and plain early stopping.

For each world and size, fresh datasets (one seed each) train three engines on the same rows, with the
user-data defaults otherwise (``attention: local``, 2 layers x 64):

- ``fixed-12``: 12 epochs, batch 128, cosine (the demo recipe's schedule);
- ``early-stop``: plain early stopping on a held-out tenth (patience 4, batch and epoch limit as
  ``auto``'s search), the best epoch's weights kept;
- ``auto``: the search (patience 10), then a fresh model on all rows for max(best epoch, 12) epochs
  (:mod:`hf_causal.schedule`).

``--sizes 2x64 2x128 4x128`` trains each schedule at each model size (layers x width), to choose the
default size by measurement; ``--regularization none dropout=0.1 weight_decay=0.1`` likewise for dropout and
AdamW weight decay (records carry ``reg``). ``--reuse FILE`` takes the records of an earlier run for the schedules not named in ``--rerun``
(the same seeds give the same models), so a change of ``auto`` reruns only ``auto``.

Error: on the demo world, the ATE of treatment on recovery against the exact value (signed mean with its
standard error, mean absolute error), beside the backdoor plug-in (adjustment on the treatment's
parents) on the same rows; on bnlearn networks, the mean TV of P(Y | do(X=x)) to pgmpy's exact answer over
seeded queries, beside pgmpy's MLE fit on the same rows.

    python -m benchmarks.schedule                                   # demo 2k/5k/20k, asia and sachs at 2k
    python -m benchmarks.schedule --settings demo-5k --datasets 5
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from ._common import markdown_table, train_on_rows, write_json

SETTINGS = {  # name: (world, rows)
    "demo-2k": ("demo", 2000),
    "demo-5k": ("demo", 5000),
    "demo-20k": ("demo", 20000),
    "asia-2k": ("asia", 2000),
    "asia-20k": ("asia", 20000),
    "sachs-2k": ("sachs", 2000),
    "child-2k": ("child", 2000),
    "alarm-2k": ("alarm", 2000),
    "recode-20k": ("recode", 20000),  # our own network: a deterministic re-encoding (hf_causal.worlds.recode)
}
SCHEDULES = ("fixed-12", "early-stop", "auto")


def _overrides(schedule: str, n: int) -> dict:
    from hf_causal import schedule as sch

    if schedule == "fixed-12":
        return {"schedule": "fixed", "num_train_epochs": 12, "per_device_train_batch_size": 128}
    if schedule == "early-stop":
        search_rows = n - round(n * sch.SEARCH_EVAL_FRACTION)
        b = sch.batch_size(search_rows)
        return {
            "schedule": "fixed",
            "eval_fraction": sch.SEARCH_EVAL_FRACTION,
            "early_stopping_patience": 4,
            "num_train_epochs": sch.max_epochs(search_rows, b),
            "per_device_train_batch_size": b,
        }
    return {"schedule": "auto"}


def _regularization(variant: str) -> dict:
    """``dropout=0.1,weight_decay=0.1`` -> the recipe keys (``none``: nothing)."""
    if variant == "none":
        return {}
    out = {}
    for part in variant.split(","):
        key, _, value = part.partition("=")
        if key not in ("dropout", "weight_decay") or not value:
            raise SystemExit(f"--regularization {variant!r}: expected dropout=X and/or weight_decay=X, or none")
        out[key] = float(value)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--datasets", type=int, default=5, help="fresh datasets per setting")
    ap.add_argument("--queries", type=int, default=10, help="bnlearn queries per network")
    ap.add_argument("--num-samples", type=int, default=8000, help="engine draws per query")
    ap.add_argument("--out", default="results/schedule")
    ap.add_argument("--reuse", help="schedule.json of an earlier run whose records to keep")
    ap.add_argument("--rerun", nargs="*", default=["auto"], help="schedules not taken from --reuse")
    ap.add_argument(
        "--sizes",
        nargs="+",
        default=["2x64"],
        help="model sizes LAYERSxWIDTH to train with each schedule (4 heads); records carry the size",
    )
    ap.add_argument("--schedules", nargs="+", default=list(SCHEDULES), choices=list(SCHEDULES))
    ap.add_argument(
        "--regularization",
        nargs="+",
        default=["none"],
        help="variants KEY=VALUE[,KEY=VALUE] of dropout / weight_decay trained with each schedule, or none",
    )
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    reuse = {}
    if args.reuse:
        for r in json.loads(Path(args.reuse).read_text())["records"]:
            if r["schedule"] not in args.rerun:
                r.setdefault("size", "2x64")
                r.setdefault("reg", "none")
                reuse[(r["setting"], r["dataset"], r["schedule"], r["size"], r["reg"])] = r
    if args.smoke:
        args.settings, args.datasets, args.queries, args.num_samples = ["demo-2k"], 1, 2, 300
    warnings.filterwarnings("ignore")
    import numpy as np

    from hf_causal import CausalEngine
    from hf_causal.metrics import tv_distance

    from .bnlearn import _fit_bn
    from .coverage import _strata_effects

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for setting in args.settings:
        world_name, n = SETTINGS[setting]
        if args.smoke:
            n = 400
        if world_name == "demo":
            from hf_causal.worlds import demo_world

            world, queries = demo_world(), None
            truth = world.ate("recovery", "treatment", 1, 0)
        else:
            from hf_causal.worlds.bnlearn import BNWorld

            world = BNWorld(world_name)
            queries = world.queries(args.queries, seed=0)
        for d in range(args.datasets):
            rows = world.sample(n, seed=100 + d)
            if queries is None:
                base = _strata_effects(rows, "recovery", "treatment", 1, 0, world.graph.parents("treatment"), {})
                baseline = float(base["ATE"]) - truth
            else:
                ci = _fit_bn(world, rows, "mle")
                tvs = [
                    tv_distance(
                        world._factor_to_dict(ci.query([q["target"]], do=q["do"], show_progress=False), q["target"]),
                        q["exact"],
                    )
                    for q in queries
                ]
                baseline = float(np.nanmean(tvs))
            runs = [(s, z, g) for g in args.regularization for z in args.sizes for s in args.schedules]
            for schedule, size, reg in runs:
                if (setting, d, schedule, size, reg) in reuse:
                    records.append(reuse[(setting, d, schedule, size, reg)])
                    continue
                if args.smoke and schedule != "auto":
                    ov = {**_overrides(schedule, n), "num_train_epochs": 1}
                else:
                    ov = _overrides(schedule, n)
                layers, width = (int(x) for x in size.split("x"))
                ov.update(n_layer=layers, n_embd=width, n_head=4, **_regularization(reg))
                name = f"model_{setting}_{d}_{schedule}" + ("" if size == "2x64" else f"_{size}")
                name += "" if reg == "none" else "_" + reg.replace("=", "").replace(",", "_")
                mdir, secs = train_on_rows(rows, world.graph, out / name, seed=d, **ov)
                cfg = json.loads((mdir / "causal_config.json").read_text())
                sched = cfg["metrics"]["schedule"]
                eng = CausalEngine.from_pretrained(mdir)
                if queries is None:
                    err = eng.ate("recovery", "treatment", 1, 0, num_samples=args.num_samples, seed=0).estimate - truth
                else:
                    err = float(
                        np.mean(
                            [
                                tv_distance(
                                    eng.query(q["target"], do=q["do"], num_samples=args.num_samples, seed=0).probs,
                                    q["exact"],
                                )
                                for q in queries
                            ]
                        )
                    )
                epochs = sched.get("num_train_epochs")
                if schedule == "early-stop":
                    epochs = cfg["metrics"].get("best_epoch", epochs)
                rec = {
                    "setting": setting,
                    "dataset": d,
                    "schedule": schedule,
                    "size": size,
                    "reg": reg,
                    "rows": n,
                    "error": float(err),
                    "baseline": baseline,
                    "epochs": epochs,
                    "train_seconds": round(secs, 1),
                }
                records.append(rec)
                print(json.dumps(rec), flush=True)
                write_json({"config": vars(args), "records": records}, out / "schedule.json")
    table = _table(records)
    print("\n" + table)
    (out / "schedule.md").write_text(table + "\n")
    return {"records": records}


def _table(records: list[dict]) -> str:
    import numpy as np
    import pandas as pd

    df = pd.DataFrame(records)
    if "size" not in df:
        df["size"] = "2x64"
    df["size"] = df["size"].fillna("2x64")
    df["reg"] = df["reg"].fillna("none") if "reg" in df else "none"
    df["schedule"] = [
        s + ("" if z == "2x64" else f" {z}") + ("" if g == "none" else f" {g}")
        for s, z, g in zip(df["schedule"], df["size"], df["reg"])
    ]
    header = [
        "setting",
        "schedule",
        "datasets",
        "metric",
        "mean error (± se)",
        "mean |error|",
        "baseline",
        "engine / baseline",
        "epochs (mean)",
        "train s (mean)",
    ]
    rows = []
    for (setting, schedule), g in df.groupby(["setting", "schedule"], sort=False):
        demo = setting.startswith("demo")
        err, base = g.error.to_numpy(), g.baseline.to_numpy()
        se = err.std(ddof=1) / np.sqrt(len(err)) if len(err) > 1 else float("nan")
        mae = float(np.abs(err).mean())
        base_mae = float(np.abs(base).mean())
        rows.append(
            [
                setting,
                schedule,
                len(g),
                "ATE error" if demo else "mean TV",
                f"{err.mean():+.4f} ± {se:.4f}" if demo else "",
                mae,
                f"{base_mae:.4f} ({'backdoor plug-in' if demo else 'pgmpy MLE'})",
                f"{mae / base_mae:.2f}",
                f"{g.epochs.astype(float).mean():.1f}",
                f"{g.train_seconds.mean():.0f}",
            ]
        )
    return markdown_table(header, rows)


if __name__ == "__main__":
    main()

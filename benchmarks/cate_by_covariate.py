"""Conditional effects on any covariate (issue #17): the clinic world's "what is the statin's effect for
smokers?", where ``smoker`` sits in the middle of the order (likelihood weighting), against EconML.

For each seed: draw rows, train the engine on them, and ask for E[event | do(statin=1), S] -
E[event | do(statin=0), S] on subgroups S defined by a mid-order covariate (smoker), the first variable
(region, prefix conditioning), an integer (age) and a continuous bin (income); EconML
``CausalForestDML`` and ``DRLearner`` fit on the same rows (X = region, age, income, smoker) answer with
their mean effect over the rows in S. The truth is by simulation with common random numbers
(:meth:`hf_causal.worlds.clinic.ClinicWorld.cate`).

    python -m benchmarks.cate_by_covariate --rows 10000 --seeds 3
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ._common import markdown_table, train_on_rows, write_json

SUBGROUPS = {
    "smoker=1": {"smoker": 1},
    "smoker=0": {"smoker": 0},
    "region=east": {"region": "east"},
    "age=70": {"age": 70},
    "income bin of 50": {"income": 50.0},
}


def _econml(rows, masks, seed):
    from .baselines import econml_effects

    X = pd.get_dummies(rows[["region", "age", "income", "smoker"]], columns=["region"]).to_numpy(float)
    T, Y = rows["statin"].to_numpy(int), rows["event"].to_numpy(float)
    return econml_effects(X, T, Y, masks, seed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.cate_by_covariate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--rows", type=int, default=10000, help="training rows per seed")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=12)
    ap.add_argument("--attention", default="full", help="the engine's attention (the reported run used full)")
    ap.add_argument("--draws", type=int, default=8000, help="Monte Carlo contexts per engine query")
    ap.add_argument("--truth-draws", type=int, default=2_000_000)
    ap.add_argument("--out", default="results/cate_by_covariate")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.rows, args.seeds, args.epochs, args.draws, args.truth_draws = 600, 1, 1, 300, 50_000
    warnings.filterwarnings("ignore")
    from hf_causal import CausalEngine
    from hf_causal.worlds.clinic import ClinicWorld

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    world = ClinicWorld()
    records = []
    for seed in range(args.seeds):
        rows = world.sample(args.rows, seed=seed)
        folder, train_s = train_on_rows(
            rows,
            world.graph,
            out / "models" / f"seed{seed}",
            num_train_epochs=args.epochs,
            n_embd=64,
            n_layer=2,
            attention=args.attention,
            learning_rate=3e-3,
            lr_scheduler_type="cosine",
            per_device_train_batch_size=64,
            seed=seed,
        )
        eng = CausalEngine.from_pretrained(folder)
        edges = eng.graph["income"].edges
        b = int(np.clip(np.searchsorted(edges, 50.0, side="right") - 1, 0, len(edges) - 2))
        lo_b, hi_b = float(edges[b]), float(edges[b + 1])
        masks, truth = {}, {}
        for label, sub in SUBGROUPS.items():
            if label.startswith("income"):
                masks[label] = ((rows.income >= lo_b) & (rows.income < hi_b)).to_numpy()
                truth[label] = world.cate(
                    {"income": lambda x, lo=lo_b, hi=hi_b: (x >= lo) & (x < hi)}, n=args.truth_draws
                )
            else:
                k, v = next(iter(sub.items()))
                masks[label] = (rows[k] == v).to_numpy()
                truth[label] = world.cate(sub, n=args.truth_draws)
        answers: dict[str, tuple[dict, float]] = {}
        t0 = time.time()
        res = {}
        for label, sub in SUBGROUPS.items():
            e = eng.cate("event", "statin", 1, 0, given=sub, num_samples=args.draws, seed=seed)
            res[label] = (e.estimate, e.ci_low, e.ci_high, e.details.get("effective_sample_size"))
        answers["engine (likelihood weighting)"] = (res, train_s + time.time() - t0)
        answers.update(_econml(rows, masks, seed))
        naive = {}
        for label, m in masks.items():
            r = rows[m]
            naive[label] = (float(r[r.statin == 1].event.mean() - r[r.statin == 0].event.mean()), np.nan, np.nan)
        answers["naive difference in the subgroup"] = (naive, 0.0)
        for method, (res, secs) in answers.items():
            for label, (est, lo, hi, *ess) in res.items():
                records.append(
                    {
                        "seed": seed,
                        "method": method,
                        "subgroup": label,
                        "truth": truth[label],
                        "estimate": est,
                        "abs_error": abs(est - truth[label]),
                        "ci_low": lo,
                        "ci_high": hi,
                        "covered": bool(lo <= truth[label] <= hi) if np.isfinite(lo) else None,
                        "ess": ess[0] if ess else None,
                        "rows_in_subgroup": int(masks[label].sum()),
                        "seconds": secs,
                    }
                )
        print(f"seed {seed}: trained in {train_s:.0f} s", flush=True)
    df = pd.DataFrame(records)
    table = []
    for label in SUBGROUPS:
        d = df[df.subgroup == label]
        row = [label, float(d.truth.mean())]
        for method in dict.fromkeys(d.method):
            m = d[d.method == method]
            row.append(f"{m.abs_error.mean():.4f}")
        table.append(row)
    methods = list(dict.fromkeys(df.method))
    md = markdown_table(["subgroup", "truth (mean over seeds)", *[f"{m} MAE" for m in methods]], table)
    cov = df.dropna(subset=["covered"]).groupby("method").covered.mean()
    md += "\n\ncoverage of the 95% intervals over subgroups and seeds: " + ", ".join(
        f"{k} {v:.2f}" for k, v in cov.items()
    )
    md += "\nseconds per seed (train + queries): " + ", ".join(
        f"{m} {df[df.method == m].groupby('seed').seconds.first().mean():.0f}" for m in methods
    )
    ess = df[df.method.str.startswith("engine")].groupby("subgroup").ess.mean()
    md += "\nengine effective sample size (mean): " + ", ".join(
        f"{k} {v:.0f}" if v == v and v is not None else f"{k} exact (prefix)" for k, v in ess.items()
    )
    print(md)
    (out / "cate_by_covariate.md").write_text(md + "\n")
    write_json({"rows": args.rows, "seeds": args.seeds, "records": records}, out / "cate_by_covariate.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

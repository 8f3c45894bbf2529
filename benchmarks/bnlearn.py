"""bnlearn networks: the engine vs a known-structure Bayesian network (pgmpy MLE and Bayesian
estimators, queried exactly) vs the naive observational estimate, against pgmpy's exact answers.

    python -m benchmarks.bnlearn --networks asia sachs child insurance --n 2000 20000
    python -m benchmarks.bnlearn --smoke

DoWhy gcm (issue #3) is not wired in yet. Writes ``<out>/bnlearn.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _fit_bn(world, rows, estimator: str):
    from pgmpy.estimators import BayesianEstimator, MaximumLikelihoodEstimator
    from pgmpy.inference import CausalInference
    from pgmpy.models import DiscreteBayesianNetwork

    bn = DiscreteBayesianNetwork(list(world.bn.edges()))
    bn.add_nodes_from(world.graph.order)
    states = {n: world.graph[n].domain() for n in world.graph.order}
    if estimator == "mle":
        cpds = MaximumLikelihoodEstimator(bn, rows, state_names=states).get_parameters()
    else:
        cpds = BayesianEstimator(bn, rows, state_names=states).get_parameters(
            prior_type="BDeu", equivalent_sample_size=5
        )
    bn.add_cpds(*cpds)
    return CausalInference(bn)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", nargs="+", default=["asia", "sachs", "child", "insurance"])
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--epochs", type=float, default=12)
    ap.add_argument("--num-samples", type=int, default=2000)
    ap.add_argument("--out", default="results/bnlearn")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.networks, args.n, args.queries, args.epochs, args.num_samples = ["asia"], [300], 3, 1, 100
    warnings.filterwarnings("ignore")
    import numpy as np

    from hf_causal import CausalEngine, train
    from hf_causal.metrics import tv_distance
    from hf_causal.worlds.bnlearn import BNWorld

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.networks:
        world = BNWorld(name)
        queries = world.queries(args.queries, seed=0)
        for n in args.n:
            rows = world.sample(n, seed=1)
            t0 = time.time()
            mdir = out / f"model_{name}_{n}"
            train(
                {
                    "graph": world.graph.to_dict(),
                    "data": None,
                    "world": None,
                    "output_dir": str(mdir),
                    "num_train_epochs": args.epochs,
                    "learning_rate": 3e-3,
                    "logging_steps": 10**6,
                    **({"data": str(_write(rows, out / f"rows_{name}_{n}.parquet"))}),
                }
            )
            t_train = time.time() - t0
            eng = CausalEngine.from_pretrained(mdir)
            tv = {"engine": [], "pgmpy_mle": [], "pgmpy_bayes": [], "naive": []}
            t0 = time.time()
            for q in queries:
                d = eng.query(q["target"], do=q["do"], num_samples=args.num_samples, seed=0)
                tv["engine"].append(tv_distance(d.probs, q["exact"]))
            t_query = time.time() - t0
            for est in ("mle", "bayes"):
                ci = _fit_bn(world, rows, est)
                for q in queries:
                    f = ci.query([q["target"]], do=q["do"], show_progress=False)
                    tv[f"pgmpy_{est}"].append(tv_distance(world._factor_to_dict(f, q["target"]), q["exact"]))
            for q in queries:
                ((x, v),) = q["do"].items()
                sel = rows[rows[x] == v][q["target"]]
                emp = {s: float((sel == s).mean()) if len(sel) else 0.0 for s in world.graph[q["target"]].domain()}
                tv["naive"].append(tv_distance(emp, q["exact"]))
            rec = {
                "network": name,
                "n": n,
                "queries": len(queries),
                "train_seconds": t_train,
                "query_seconds": t_query,
                **{f"{k}_mean_tv": float(np.mean(v)) for k, v in tv.items()},
                **{f"{k}_max_tv": float(np.max(v)) for k, v in tv.items()},
            }
            results.append(rec)
            print(json.dumps(rec), flush=True)
    print(
        "\n| network | n | queries | engine mean TV | MLE | Bayes | naive | engine / MLE | engine max TV | train s | query s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['network']} | {r['n']} | {r['queries']} | {r['engine_mean_tv']:.4f} | {r['pgmpy_mle_mean_tv']:.4f} | "
            f"{r['pgmpy_bayes_mean_tv']:.4f} | {r['naive_mean_tv']:.4f} | "
            f"{r['engine_mean_tv'] / max(r['pgmpy_mle_mean_tv'], 1e-12):.2f} | {r['engine_max_tv']:.4f} | "
            f"{r['train_seconds']:.0f} | {r['query_seconds']:.1f} |"
        )
    (out / "bnlearn.json").write_text(json.dumps(results, indent=2))
    return {"results": results}


def _write(rows, path):
    rows.to_parquet(path)
    return path


if __name__ == "__main__":
    main()

"""bnlearn networks: the engine vs a known-structure Bayesian network (pgmpy MLE and Bayesian
estimators, queried exactly) vs the naive observational estimate, against pgmpy's exact answers.

    python -m benchmarks.bnlearn --networks asia sachs child insurance recode --n 20000 --attention full parents local
    python -m benchmarks.bnlearn --smoke

``recode`` is our own network with a deterministic re-encoding (``hf_causal.worlds.recode``), where full
attention extrapolates under intervention; ``--attention`` trains one engine per attention mode on the
same rows.

Peers on the same rows and queries: pgmpy BN with the known structure fitted by maximum likelihood
and by a Bayesian estimator (BDeu, equivalent sample size 5), queried exactly; DoWhy gcm with
auto-assigned mechanisms (``gcm.interventional_samples``, ``--gcm-samples`` draws per query; its
fitting dominates the run time, ``--no-gcm`` skips it); the naive observational P(Y | X=x).
Writes ``<out>/bnlearn.json`` and ``<out>/bnlearn.png`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from ._common import markdown_table, plot_bars, train_on_rows, write_json


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


def _fit_gcm(world, rows):
    import networkx as nx
    from dowhy import gcm

    scm = gcm.StructuralCausalModel(nx.DiGraph(list(world.bn.edges())))
    scm.graph.add_nodes_from(world.graph.order)
    gcm.auto.assign_causal_mechanisms(scm, rows)
    gcm.fit(scm, rows)
    return scm


def _gcm_query(scm, world, q, n: int) -> dict[str, float]:
    from dowhy import gcm

    ((x, v),) = q["do"].items()
    s = gcm.interventional_samples(scm, {x: lambda _, v=v: v}, num_samples_to_draw=n)[q["target"]]
    return {k: float((s == k).mean()) for k in world.graph[q["target"]].domain()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", nargs="+", default=["asia", "sachs", "child", "insurance", "recode"])
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--epochs", type=float, default=30)
    ap.add_argument("--num-samples", type=int, default=20000, help="engine Monte Carlo draws per query")
    ap.add_argument("--gcm-samples", type=int, default=2000, help="DoWhy gcm draws per query")
    ap.add_argument("--no-gcm", action="store_true", help="skip DoWhy gcm (slow to fit)")
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--learning-rate", type=float, default=3e-3)
    ap.add_argument(
        "--attention",
        nargs="+",
        default=["local"],
        choices=["full", "parents", "local", "two_stream"],
        help="engine variants to train and compare on the same rows (default: the recipes' default, local)",
    )
    ap.add_argument(
        "--order-policy",
        default="canonical",
        choices=["canonical", "random"],
        help="train on one topological order (canonical) or a random one per row (random: any ancestral prefix "
        "can be walked first); compare two runs at the same epochs for the cost of random-order training",
    )
    ap.add_argument(
        "--schedule",
        choices=["fixed", "auto"],
        default="fixed",
        help="fixed: --epochs epochs; auto: the user-data default (early-stopping search, then a refit)",
    )
    ap.add_argument("--out", default="results/bnlearn")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.networks, args.n, args.queries, args.epochs, args.num_samples = ["asia", "recode"], [300], 3, 1, 100
        args.gcm_samples, args.attention = 100, ["full", "local"]
    warnings.filterwarnings("ignore")
    import numpy as np

    from hf_causal import CausalEngine
    from hf_causal.metrics import tv_distance
    from hf_causal.worlds.bnlearn import BNWorld

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    peers = ["pgmpy_mle", "pgmpy_bayes"] + ([] if args.no_gcm else ["dowhy_gcm"]) + ["naive"]
    engines = [f"engine_{a}" for a in args.attention]
    methods = engines + peers
    results = []
    for name in args.networks:
        world = BNWorld(name)
        queries = world.queries(args.queries, seed=0)
        for n in args.n:
            rows = world.sample(n, seed=1)
            tv = {m: [] for m in methods}
            secs, walked = {}, {}
            for attention, label in zip(args.attention, engines):
                sched = {"schedule": "auto"} if args.schedule == "auto" else {"num_train_epochs": args.epochs}
                mdir, secs[f"{label}_fit"] = train_on_rows(
                    rows,
                    world.graph,
                    out / f"model_{name}_{n}_{attention}",
                    **sched,
                    learning_rate=args.learning_rate,
                    n_embd=args.n_embd,
                    n_layer=args.n_layer,
                    attention=attention,
                    order_policy=args.order_policy,
                )
                eng = CausalEngine.from_pretrained(mdir)
                t0 = time.time()
                for q in queries:
                    d = eng.query(q["target"], do=q["do"], num_samples=args.num_samples, seed=0)
                    tv[label].append(tv_distance(d.probs, q["exact"]))
                secs[f"{label}_query"] = time.time() - t0
                walked[label] = float(
                    np.mean(
                        [
                            len(eng.planner.plan([q["target"]], q["do"], None, readout=q["target"], warn=False).order)
                            for q in queries
                        ]
                    )
                )
            for est in ("mle", "bayes"):
                t0 = time.time()
                ci = _fit_bn(world, rows, est)
                secs[f"pgmpy_{est}_fit"] = time.time() - t0
                t0 = time.time()
                for q in queries:
                    f = ci.query([q["target"]], do=q["do"], show_progress=False)
                    tv[f"pgmpy_{est}"].append(tv_distance(world._factor_to_dict(f, q["target"]), q["exact"]))
                secs[f"pgmpy_{est}_query"] = time.time() - t0
            if not args.no_gcm:
                t0 = time.time()
                scm = _fit_gcm(world, rows)
                secs["dowhy_gcm_fit"] = time.time() - t0
                t0 = time.time()
                for q in queries:
                    tv["dowhy_gcm"].append(tv_distance(_gcm_query(scm, world, q, args.gcm_samples), q["exact"]))
                secs["dowhy_gcm_query"] = time.time() - t0
            for q in queries:
                ((x, v),) = q["do"].items()
                sel = rows[rows[x] == v][q["target"]]
                emp = {s: float((sel == s).mean()) if len(sel) else 0.0 for s in world.graph[q["target"]].domain()}
                tv["naive"].append(tv_distance(emp, q["exact"]))
            rec = {
                "network": name,
                "n": n,
                "queries": len(queries),
                "seconds": secs,
                "order_policy": args.order_policy,
                "schedule": args.schedule,
                "variables": len(world.graph.order),
                "walked_mean": walked,  # variables walked per query, by engine variant
                # MLE leaves a CPD undefined (0/0) when a parent configuration never occurs in the rows:
                # such queries are NaN for it and left out of its mean (the count is reported)
                **{f"{k}_mean_tv": float(np.nanmean(v)) for k, v in tv.items()},
                **{f"{k}_max_tv": float(np.nanmax(v)) for k, v in tv.items()},
                **{f"{k}_undefined": int(np.isnan(v).sum()) for k, v in tv.items()},
                "per_query": [
                    {"target": q["target"], "do": q["do"], "gap": q["gap"], **{m: tv[m][i] for m in methods}}
                    for i, q in enumerate(queries)
                ],
            }
            results.append(rec)
            print(json.dumps({k: v for k, v in rec.items() if k != "per_query"}), flush=True)
    header = ["network", "n", "queries", "engine", "mean TV", "max TV", "engine / MLE", "MLE mean TV", "MLE max TV"]
    header += [*(["gcm mean TV"] if not args.no_gcm else []), "naive mean TV", "train s", "query s", "train / full"]
    table = []
    for r in results:
        sec, mle = r["seconds"], r["pgmpy_mle_mean_tv"]
        for label, attention in zip(engines, args.attention):
            ratio = sec[f"{label}_fit"] / sec["engine_full_fit"] if "engine_full_fit" in sec else float("nan")
            mle_cell = f"{mle:.4f}" + (f" ({r['pgmpy_mle_undefined']} undefined)" if r["pgmpy_mle_undefined"] else "")
            row = [r["network"], r["n"], r["queries"], attention, r[f"{label}_mean_tv"], r[f"{label}_max_tv"]]
            row += [f"{r[f'{label}_mean_tv'] / max(mle, 1e-12):.2f}", mle_cell, r["pgmpy_mle_max_tv"]]
            row += [r["dowhy_gcm_mean_tv"]] if not args.no_gcm else []
            row += [r["naive_mean_tv"], f"{sec[f'{label}_fit']:.0f}", f"{sec[f'{label}_query']:.1f}", f"{ratio:.2f}"]
            table.append(row)
    print("\n" + markdown_table(header, table))
    write_json({"config": vars(args), "results": results}, out / "bnlearn.json")
    plot_bars(
        {f"{r['network']} n={r['n']}": {m: r[f"{m}_mean_tv"] for m in methods} for r in results},
        out / "bnlearn.png",
        "mean TV to pgmpy's exact P(Y | do(X=x))",
        "bnlearn networks: interventional queries",
        log=True,
    )
    return {"results": results}


if __name__ == "__main__":
    main()

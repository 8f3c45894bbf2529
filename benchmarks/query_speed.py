"""Query speed on bnlearn networks (issue #18): engine seconds per query against the arithmetic limit of
the walk it needs and against pgmpy's exact inference, with the accuracy that speed must not cost.

For each network and attention mode: an engine (trained here, or taken from a bnlearn benchmark folder
with ``--models``), the bnlearn benchmark's seeded queries P(Y | do(X=x)) at ``--draws`` draws each,
timed as the median of ``--repeats`` runs after a warm-up. The FLOP limit of a query is
``2 x parameters x tokens walked x draws`` divided by the fp32 matmul rate measured in the same run;
the variables walked per query are reported (with ``attention: local`` only the ancestors of the
query's variables are walked). pgmpy's exact ``CausalInference`` is timed on the same queries.

    python -m benchmarks.query_speed --networks asia sachs child --models results/bnlearn_15 --n 20000
    python -m benchmarks.query_speed --smoke

Writes ``query_speed.{json,md,png}`` and ``query_speed_walked.png`` (seconds per query against the
variables walked, with the FLOP limit) under ``--out``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from ._common import markdown_table, median_seconds, plot_bars, train_on_rows, write_json


def matmul_rate(n: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of an fp32 ``n x n`` matmul on this machine (median of ``repeats`` after a warm-up)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    secs, _ = median_seconds(lambda: a @ b, repeats=repeats)
    return 2 * n**3 / secs


def plot_walked(records: list[dict], path: Path) -> Path:
    """Seconds per query against the variables the query walks, one series per network and attention,
    with each query's FLOP limit as a hollow marker: how the cost grows with the walk."""
    from hf_causal.plot import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    series = dict.fromkeys((r["network"], r["attention"]) for r in records)
    for i, (net, att) in enumerate(series):
        rs = [r for r in records if r["network"] == net and r["attention"] == att]
        color = f"C{i % 10}"
        ax.scatter([r["walked"] for r in rs], [r["seconds"] for r in rs], s=14, color=color, label=f"{net}, {att}")
        ax.scatter(
            [r["walked"] for r in rs], [r["flop_limit_seconds"] for r in rs], s=14, facecolors="none", edgecolors=color
        )
    ax.set_xlabel("variables walked by the query")
    ax.set_ylabel("seconds per query (hollow: FLOP limit)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=7)
    ax.set_title("cost against the walk a query needs", fontsize=10)
    return _save(fig, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.query_speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--networks", nargs="+", default=["asia", "sachs", "child"])
    ap.add_argument("--attention", nargs="+", default=["full", "local"])
    ap.add_argument("--n", type=int, default=20000, help="training rows (and the folder name with --models)")
    ap.add_argument("--models", help="reuse model_<network>_<n>_<attention> folders of a bnlearn benchmark run")
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--draws", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=30)
    ap.add_argument("--out", default="results/query_speed")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.networks, args.n, args.queries, args.draws, args.repeats, args.epochs = ["asia"], 300, 2, 200, 1, 1
    warnings.filterwarnings("ignore")
    from hf_causal import CausalEngine
    from hf_causal.metrics import tv_distance
    from hf_causal.worlds.bnlearn import BNWorld

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rate = matmul_rate()
    print(f"fp32 matmul: {rate / 1e9:.0f} GFLOP/s", flush=True)
    records = []
    for name in args.networks:
        world = BNWorld(name)
        queries = world.queries(args.queries, seed=0)
        from pgmpy.inference import CausalInference

        ci = CausalInference(world.bn)
        t_pgmpy, _ = median_seconds(
            lambda ci=ci, queries=queries: [ci.query([q["target"]], do=q["do"], show_progress=False) for q in queries],
            repeats=args.repeats,
        )
        for attention in args.attention:
            folder = Path(args.models or out) / f"model_{name}_{args.n}_{attention}"
            if not (folder / "causal_config.json").exists():
                rows = world.sample(args.n, seed=1)
                folder, _ = train_on_rows(
                    rows, world.graph, folder, num_train_epochs=args.epochs, learning_rate=3e-3, attention=attention
                )
            eng = CausalEngine.from_pretrained(folder)
            n_params = sum(p.numel() for p in eng.model.parameters())
            tok = eng.tokenizer
            for q in queries:
                plan = eng.planner.plan([q["target"]], q["do"], None, readout=q["target"], warn=False)
                tokens = sum(1 + len(tok.encode_value(v, eng.graph[v].domain()[0])) for v in plan.order)
                secs, d = median_seconds(
                    lambda q=q, eng=eng: eng.query(q["target"], do=q["do"], num_samples=args.draws, seed=0),
                    repeats=args.repeats,
                )
                flop_s = 2 * n_params * tokens * args.draws / rate
                records.append(
                    {
                        "network": name,
                        "variables": len(eng.graph.order),
                        "attention": attention,
                        "target": q["target"],
                        "walked": len(plan.order),
                        "tokens": tokens,
                        "seconds": secs,
                        "flop_limit_seconds": flop_s,
                        "ratio_to_flop_limit": secs / flop_s,
                        "tv": tv_distance(d.probs, q["exact"]),
                        "pgmpy_seconds_per_query": t_pgmpy / len(queries),
                        "parameters": n_params,
                    }
                )
            print(
                f"{name} {attention}: {np.median([r['seconds'] for r in records[-len(queries) :]]):.2f} s/query",
                flush=True,
            )
    rows_md = []
    for name in args.networks:
        for attention in args.attention:
            rs = [r for r in records if r["network"] == name and r["attention"] == attention]
            if not rs:
                continue
            rows_md.append(
                [
                    name,
                    rs[0]["variables"],
                    attention,
                    float(np.mean([r["walked"] for r in rs])),
                    float(np.median([r["seconds"] for r in rs])),
                    float(sum(r["seconds"] for r in rs)),
                    float(np.median([r["ratio_to_flop_limit"] for r in rs])),
                    float(np.mean([r["tv"] for r in rs])),
                    rs[0]["pgmpy_seconds_per_query"],
                ]
            )
    header = [
        "network",
        "variables",
        "attention",
        "walked (mean)",
        "s/query (median)",
        "s for all queries",
        "x FLOP limit",
        "mean TV",
        "pgmpy exact s/query",
    ]
    md = markdown_table(header, rows_md)
    md += f"\n\n{args.draws} draws per query, median of {args.repeats} after a warm-up; fp32 matmul {rate / 1e9:.0f} GFLOP/s"
    print(md)
    (out / "query_speed.md").write_text(md + "\n")
    write_json({"matmul_flops": rate, "draws": args.draws, "records": records}, out / "query_speed.json")
    try:
        plot_bars(
            {f"{r[0]} ({r[1]} vars)": {r[2]: r[4]} for r in rows_md},
            out / "query_speed.png",
            "seconds per query",
            title="engine seconds per query by attention (local walks only the ancestors)",
        )
        plot_walked(records, out / "query_speed_walked.png")
    except Exception as e:  # noqa: BLE001 - a picture is optional
        print(f"(no plot: {e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

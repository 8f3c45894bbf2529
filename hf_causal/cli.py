"""The ``hf-causal`` command line: train, query, effect, sample, counterfactual, graph, demo.

Run ``hf-causal COMMAND --help`` for each command's options and examples. Nothing heavy is imported
until a command runs, so ``hf-causal --help`` answers at once. Every error of the package is printed
as ``error: ...`` with exit code 2 (as are usage errors); a traceback means a bug. Over 520 lines: the
whole argparse tree and its help texts live here on purpose, so one file shows the CLI surface; each
command's work is in the package (``run_query``, ``train``, ``write_inferred_graph``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__
from .errors import HfCausalError

EPILOG_TRAIN = """examples:
  hf-causal train recipes/demo/gpt2-tiny.yaml
  hf-causal train recipes/demo/gpt2-tiny.yaml --world_rows 2000 --num_train_epochs 2 --output_dir outputs/quick
  hf-causal train --graph graph.yaml --data rows.csv --output_dir outputs/mine
  hf-causal train recipes/demo/gpt2-tiny.yaml --accelerate-config cpu2      # 2 processes on CPU
  hf-causal train recipes/demo/gpt2-tiny.yaml --accelerate-config ddp --num-processes 4
  accelerate launch --config_file recipes/accelerate_configs/cpu2.yaml -m hf_causal.cli train recipes/demo/gpt2-tiny.yaml

A recipe is optional: every recipe key is also an option (--key value), and options override
the recipe. The keys, with their help, follow.
"""

EPILOG_QUERY = """examples:
  hf-causal query outputs/demo --target recovery --do treatment=1
  hf-causal query outputs/demo --target recovery --do treatment=1 --given age=old --json
Values are parsed against the variable's declared domain (e.g. '1' -> 1). Sequence values
are space separated: --do "moves=U U R".
"""

EPILOG_EFFECT = """examples:
  hf-causal effect outputs/demo --outcome recovery --treatment treatment --treated 1 --control 0
  hf-causal effect outputs/demo --outcome recovery --treatment treatment --treated 1 --control 0 --estimand att --data rows.csv
  hf-causal effect outputs/demo --outcome recovery --treatment treatment --treated 1 --control 0 --estimand cate --given age=old
  hf-causal effect outputs/demo --outcome recovery --treatment treatment --treated 1 --control 0 --estimand cate --given severity=severe
ATE = E[Y | do(T=treated)] - E[Y | do(T=control)] (treated minus control). --given may name any
pre-treatment variable: off an initial segment of the order it is answered by likelihood weighting,
and the answer reports the effective sample size of the weights.
"""

EPILOG_COUNTERFACTUAL = """examples:
  hf-causal counterfactual outputs/demo --data patients.csv --do treatment=0 --target recovery
  hf-causal counterfactual outputs/demo --data patients.csv --do treatment=0 --target recovery --target readmitted --json
For each factual row (every variable up to the last target observed), the distribution of the targets in
the world where the intervention had held: abduction of each token's Gumbel noise from the row, then a
replay under do(). Assumption (stated in every answer): counterfactual stability, a Gumbel-max structural
model of the model's own conditionals; it cannot be tested from data.
"""


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _kv(parser: argparse.ArgumentParser, items: list[str] | None, flag: str) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict; malformed or repeated names are usage errors (exit 2)."""
    out: dict[str, str] = {}
    for it in items or []:
        if "=" not in it:
            parser.error(f"{flag} expects NAME=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        k = k.strip()
        if k in out:
            parser.error(f"{flag} names {k!r} twice ({k}={out[k]} and {k}={v.strip()}); give each variable once")
        out[k] = v.strip()
    return out


def _interval_note(ans) -> str:
    """What an answer's interval covers, in words."""
    kind = ans.interval_kind
    if kind == "monte_carlo_only":
        return (
            "interval: Monte Carlo error only (a single model); it does not cover the estimation error of the fit. "
            "Train an ensemble (--ensemble '{k: 5, method: bootstrap}') or use --estimator aipw --data ROWS"
        ) + _weights_note(ans)
    if kind == "influence_function":
        d = getattr(ans, "details", None) or {}
        folds = d.get("se_between_folds")
        if folds is not None and folds > d.get("se_influence_function", folds):
            note = "interval: standard error between the cross-fitted folds of the doubly robust estimate (estimation "
            note += f"error; the influence function's, {d['se_influence_function']:.4g}, is smaller)"
        else:
            note = "interval: influence-function standard error of the doubly robust estimate (estimation error)"
        return note + _weights_note(ans)
    note = f"interval: estimation and Monte Carlo error ({ans.members} ensemble members)"
    return note + _weights_note(ans)


def _weights_note(ans) -> str:
    info = getattr(ans, "details", None) or getattr(ans, "diagnostics", None) or {}
    if "effective_sample_size" not in info:
        return ""
    return f"\n  evidence by likelihood weighting: effective sample size {info['effective_sample_size']:.0f}"


def _print_distribution(d) -> None:
    print(
        f"P({d.target} | do({', '.join(f'{k}={v}' for k, v in d.do.items())})"
        + (f", {', '.join(f'{k}={v}' for k, v in d.given.items())}" if d.given else "")
        + ")"
    )
    print(f"{'value':>12} {'p':>8} {'95% interval':>20}")
    for k, p in d.probs.items():
        lo, hi = d.interval(k)
        print(f"{k!s:>12} {p:8.4f}   [{lo:7.4f}, {hi:7.4f}]")
    print(f"({d.n_samples} Monte Carlo contexts, seed {d.seed}, contexts from the {d.confounder_source})")
    print(_interval_note(d))


def accelerate_config_path(name: str) -> Path:
    """A shipped accelerate config by name (single, cpu2, ddp, fsdp, zero2, zero3) or a YAML path."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    shipped = resources.files("hf_causal").joinpath(f"accelerate_configs/{name}.yaml")
    if not shipped.is_file():
        names = sorted(
            f.name[:-5]
            for f in resources.files("hf_causal").joinpath("accelerate_configs").iterdir()
            if f.name.endswith(".yaml")
        )
        raise SystemExit(f"error: unknown accelerate config {name!r}; shipped: {', '.join(names)} (or a YAML path)")
    return Path(str(shipped))


def _train_help(sub: argparse.ArgumentParser) -> str:
    from .recipes import recipe_parser

    keys = recipe_parser(prog="recipe keys").format_help()
    keys = keys.split("\n", 1)[1] if keys.startswith("usage:") else keys
    return sub.format_help() + "\nrecipe keys (YAML keys, or --key value):" + keys


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    if args.accelerate_config:
        import subprocess

        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(accelerate_config_path(args.accelerate_config)),
        ]
        if args.num_processes:
            cmd += ["--num_processes", str(args.num_processes)]
        recipe = [args.recipe] if args.recipe else []
        cmd += ["-m", "hf_causal.cli", "train", *recipe, *rest] + (["--resume"] if args.resume else [])
        print("launching:", " ".join(cmd), flush=True)
        return subprocess.call(cmd)
    from .training import train

    out = train(args.recipe, resume=args.resume, argv=rest)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        dist.barrier()
        dist.destroy_process_group()  # a clean exit for every rank (hf-notes: avoids SIGABRT at exit)
        if rank != 0:
            return 0
    cfg = json.loads((out / "causal_config.json").read_text()) if (out / "causal_config.json").exists() else {}
    nll = cfg.get("metrics", {}).get("eval_nll_per_variable")
    if nll:
        print("held-out NLL per variable (nats/row):")
        for k, v in nll.items():
            print(f"  {k:>16}: {v:.4f}")
    print(f"saved to {out}")
    return 0


def _refuse_folder(parser, output: str, kind: str, example: str) -> None:
    """``-o`` names a file to write: a folder is an error that says which file to give instead."""
    if Path(output).is_dir():
        parser.error(f"-o {output} is a folder; give the {kind} file to write, e.g. {Path(output) / example}")


def _engine(path: str, batch_size: int | None, extrapolate: bool = False):
    from .inference import CausalEngine

    return CausalEngine.from_pretrained(path, batch_size=batch_size, extrapolate=extrapolate)


def cmd_query(args: argparse.Namespace, parser) -> int:
    from .inference.schema import run_query

    query = {"target": args.target, "do": _kv(parser, args.do, "--do"), "given": _kv(parser, args.given, "--given")}
    if args.data:
        query["data"] = args.data
    eng = _engine(args.model_dir, args.batch_size, args.extrapolate)
    d = run_query(eng, query, num_samples=args.num_samples, seed=args.seed, progress=not args.json)
    if args.json:
        print(json.dumps(d.to_dict(), indent=2, allow_nan=False))
    else:
        _print_distribution(d)
    if args.plot:
        from .plot import plot_distributions

        keys = list(d.probs)
        plot_distributions(
            {
                f"P({d.target} | do({', '.join(f'{k}={v}' for k, v in d.do.items())}))": {
                    "values": keys,
                    "engine": {"p": [d.probs[k] for k in keys], "se": [d.se[k] for k in keys]},
                }
            },
            args.plot,
        )
    return 0


def cmd_effect(args: argparse.Namespace, parser) -> int:
    from .inference.schema import run_query

    query: dict[str, Any] = {
        "effect": args.estimand,
        "outcome": args.outcome,
        "treatment": args.treatment,
        "treated": args.treated,
        "control": args.control,
    }
    given = _kv(parser, args.given, "--given")
    if given or args.estimand == "cate":
        query["given"] = given
    if args.data:
        query["data"] = args.data
    if args.event is not None:
        query["event"] = args.event
    if args.estimator != "plugin":
        query["estimator"], query["clip"] = args.estimator, args.clip
    if args.calibrate_propensity:
        query["calibrate_propensity"] = True
    eng = _engine(args.model_dir, args.batch_size, args.extrapolate)
    est = run_query(eng, query, num_samples=args.num_samples, seed=args.seed)
    if args.json:
        print(json.dumps(est.to_dict(), indent=2, allow_nan=False))
    else:
        print(est.estimand)
        print(
            f"  estimate {est.estimate:.4f}  (se {est.se:.4f}; 95% [{est.ci_low:.4f}, {est.ci_high:.4f}]; "
            f"n={est.n_samples}, seed={est.seed}, contexts from the {est.confounder_source})"
        )
        print(f"  {_interval_note(est)}")
    if args.plot:
        from .plot import plot_effects

        plot_effects({args.estimand.upper(): est.to_dict()}, args.plot, title=est.estimand)
    return 0


def cmd_sample(args: argparse.Namespace, parser) -> int:
    from .fileio import atomic_write_text

    _refuse_folder(parser, args.output, "CSV", "samples.csv")
    eng = _engine(args.model_dir, args.batch_size, args.extrapolate)
    df = eng.sample(
        args.n,
        do=_kv(parser, args.do, "--do"),
        given=_kv(parser, args.given, "--given"),
        seed=args.seed,
        variables=args.variables,
        progress=True,
        weights=args.weights,
    )
    for c in df.columns:
        if df[c].map(lambda x: isinstance(x, list)).any():
            df[c] = df[c].map(lambda x: " ".join(x) if isinstance(x, list) else x)
    atomic_write_text(args.output, df.to_csv(index=False))
    print(f"wrote {len(df)} rows to {args.output}")
    if "effective_sample_size" in df.attrs:
        print(f"  likelihood weighting: effective sample size {df.attrs['effective_sample_size']:.0f} of {args.n}")
    return 0


def cmd_counterfactual(args: argparse.Namespace, parser) -> int:
    from .inference.schema import run_query

    query = {"effect": "counterfactual", "target": args.target, "do": _kv(parser, args.do, "--do"), "data": args.data}
    if not query["do"]:
        parser.error("a counterfactual needs at least one --do A=a")
    eng = _engine(args.model_dir, args.batch_size, args.extrapolate)
    cf = run_query(eng, query, num_samples=args.num_samples, seed=args.seed)
    if args.json:
        print(json.dumps(cf.to_dict(), indent=2, allow_nan=False))
        return 0
    do = ", ".join(f"{k}={v}" for k, v in cf.do.items())
    for i, (fact, dist) in enumerate(zip(cf.factual, cf.distributions)):
        print(f"row {i}: " + ", ".join(f"{k}={v}" for k, v in fact.items()))
        for t in cf.targets:
            if t in dist:
                probs = "  ".join(f"{k}: {p:.3f}" for k, p in dist[t].items())
                print(f"  {t} had do({do}) held:  {probs}")
            else:
                print(f"  {t} had do({do}) held:  {cf.samples[i][t][0]!r} (first of {cf.num_samples} draws)")
    print(f"assumption: {cf.assumption}")
    return 0


def cmd_graph(args: argparse.Namespace, parser) -> int:
    from .graph_formats import write_inferred_graph

    _refuse_folder(parser, args.output, "YAML", "graph.yaml")
    graph = write_inferred_graph(args.data, args.edges, args.output)
    for n in graph.order:
        v = graph[n]
        extra = {
            "categorical": f"values {v.values}",
            "integer": f"{v.min}..{v.max}",
            "continuous": f"{v.bins} bins",
            "text": f"max_length {v.max_length}",
            "sequence": f"max_length {v.max_length}",
        }[v.type]
        print(f"  {n}: {v.type} ({extra}{', missing: as_value' if v.missing == 'as_value' else ''})")
    print(f"wrote {args.output} ({len(graph.order)} variables, {len(graph.edges)} edges)")
    return 0


def cmd_demo(args: argparse.Namespace, parser) -> int:
    from .demo import run_demo

    run_demo(
        args.output_dir,
        recipe=args.recipe,
        rows=args.rows,
        epochs=args.epochs,
        num_samples=args.num_samples,
        seed=args.seed,
        plot=args.plot,
        retrain=args.retrain,
        repo_id=args.repo_id,
    )
    return 0


def _unswallow_recipe(args: argparse.Namespace, rest: list[str], argv: list[str]) -> None:
    """``train --graph g.dot --data d.csv``: argparse takes ``g.dot`` (the value of the recipe key ``--graph``,
    unknown to it) for the optional positional recipe; give it back to its key."""
    known = {"--resume", "--accelerate-config", "--num-processes", "-h", "--help"}
    i = argv.index(args.recipe) if args.recipe in argv else -1
    prev = argv[i - 1] if i > 0 else ""
    if prev.startswith("--") and "=" not in prev and prev not in known and prev in rest:
        rest.insert(rest.index(prev) + 1, args.recipe)
        args.recipe = None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hf-causal",
        description="Causal inference with autoregressive language models: train on rows of a known causal "
        "DAG, then ask interventional questions (p(Y | do(A=a)), ATE, ATT, CATE).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="start with `hf-causal demo`, then `hf-causal COMMAND --help`",
    )
    p.add_argument("--version", action="version", version=f"hf-causal {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    t = sub.add_parser(
        "train",
        help="fine-tune a model from a YAML recipe and/or --key value options",
        epilog=EPILOG_TRAIN,
        formatter_class=raw,
        add_help=False,
    )
    t.add_argument("recipe", nargs="?", help="YAML recipe (see recipes/); optional")
    t.add_argument("-h", "--help", action="store_true", help="show this help, with every recipe key, and exit")
    t.add_argument("--resume", action="store_true", help="resume from the last complete checkpoint in output_dir")
    t.add_argument(
        "--accelerate-config",
        metavar="NAME",
        help="launch with accelerate: single, cpu2 (2 CPU processes), ddp, fsdp, zero2, zero3, or a YAML path",
    )
    t.add_argument("--num-processes", type=int, help="override the accelerate config's number of processes")

    def common(sp, with_given=True, samples=(2000, "Monte Carlo contexts")):
        sp.add_argument("model_dir", help="folder written by `hf-causal train` (or a Hub repo id)")
        if with_given:
            sp.add_argument(
                "--given",
                action="append",
                metavar="X=x",
                help="condition on any variable (repeatable); off an initial segment of the order by likelihood "
                "weighting, with the effective sample size reported; a continuous value means its bin",
            )
        sp.add_argument(
            "--num-samples", type=_positive_int, default=samples[0], help=f"{samples[1]} (default {samples[0]})"
        )
        sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        sp.add_argument(
            "--batch-size",
            type=_positive_int,
            default=None,
            help="rows per forward pass (default: as many as a 2 GiB KV cache holds, at most 32768); the draws depend on it: batch b is "
            "seeded by (seed, b), so the same seed with another batch size gives other draws",
        )
        sp.add_argument(
            "--extrapolate",
            action="store_true",
            help="force continuous values outside the training range (into the edge bin) instead of refusing them; "
            "the answer is marked as an extrapolation",
        )

    q = sub.add_parser("query", help="P(target | do(...), given)", epilog=EPILOG_QUERY, formatter_class=raw)
    common(q)
    q.add_argument("--target", required=True, help="variable whose distribution is wanted")
    q.add_argument("--do", action="append", metavar="A=a", help="intervention (repeatable)")
    q.add_argument("--data", help="take pre-treatment contexts from this data file instead of the model")
    q.add_argument("--json", action="store_true", help="print JSON (probability and se of each value)")
    q.add_argument("--plot", help="write a bar chart to this file")

    e = sub.add_parser("effect", help="ATE / ATT / CATE of a treatment", epilog=EPILOG_EFFECT, formatter_class=raw)
    common(e)
    e.add_argument("--outcome", required=True, help="the outcome variable Y (numeric, or with --event)")
    e.add_argument("--treatment", required=True, help="the treatment variable T")
    e.add_argument("--treated", required=True, help="treatment value of the treated arm")
    e.add_argument("--control", required=True, help="treatment value of the reference arm")
    e.add_argument(
        "--estimand",
        choices=["ate", "att", "cate"],
        default="ate",
        help="ate: average effect; att: effect on the treated; cate: effect given --given covariates",
    )
    e.add_argument("--data", help="ATT: rows whose treated units give the contexts; ATE: contexts from rows")
    e.add_argument("--event", help="for a non-numeric outcome: estimate P(outcome = EVENT)")
    e.add_argument(
        "--estimator",
        choices=["plugin", "aipw"],
        default="plugin",
        help="plugin: the model's interventional contrast; aipw: doubly robust on the --data rows (their observed "
        "treatment and outcome), with an influence-function interval",
    )
    e.add_argument("--clip", type=float, default=0.01, help="aipw: clip propensities to [clip, 1 - clip]")
    e.add_argument(
        "--calibrate-propensity",
        action="store_true",
        help="aipw on a crossfit ensemble's own rows: Platt-scale the out-of-fold propensities first (use it when "
        "the answer warns that the propensity is overconfident)",
    )
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--plot", help="write the estimate with its interval to this file")

    s = sub.add_parser(
        "sample",
        help="draw interventional samples to a CSV file",
        formatter_class=raw,
        epilog="example:\n  hf-causal sample outputs/demo --do treatment=1 -n 1000 -o treated.csv",
    )
    common(s)
    s.add_argument("--do", action="append", metavar="A=a", help="intervention (repeatable)")
    s.add_argument("-n", type=_positive_int, default=1000, help="number of rows (default 1000)")
    s.add_argument("-o", "--output", required=True, help="CSV file to write")
    s.add_argument("--variables", nargs="+", help="only generate up to these variables")
    s.add_argument(
        "--weights",
        choices=["resample", "column"],
        default="resample",
        help="evidence off an initial segment (likelihood weighting): resample to equal-weight rows (default; rows "
        "repeat) or write the weighted draws with a 'weight' column",
    )

    c = sub.add_parser(
        "counterfactual",
        help="unit-level counterfactuals of factual rows: had do(...) held",
        epilog=EPILOG_COUNTERFACTUAL,
        formatter_class=raw,
    )
    common(c, with_given=False, samples=(500, "noise draws per factual row"))
    c.add_argument("--data", required=True, help="factual rows (CSV, JSONL, parquet, a datasets folder)")
    c.add_argument("--do", action="append", metavar="A=a", required=True, help="intervention (repeatable)")
    c.add_argument(
        "--target", action="append", required=True, help="variable whose counterfactual is wanted (repeatable)"
    )
    c.add_argument("--json", action="store_true", help="print JSON (per row: factual values and target distributions)")

    gp = sub.add_parser(
        "graph",
        help="graph files: infer variable kinds from data",
        formatter_class=raw,
        epilog="example:\n  hf-causal graph infer --data rows.csv --edges dag.txt -o graph.yaml\n"
        "EDGES: a DOT file, a dagitty file or string (dag { A -> B }), an edge-list CSV (parent,child), or a "
        "YAML/JSON spec",
    )
    gsub = gp.add_subparsers(dest="graph_command", required=True)
    gi = gsub.add_parser("infer", help="write a graph file with each variable's kind inferred from the data")
    gi.add_argument("--data", required=True, help="the table (CSV, Parquet, JSON Lines, a datasets folder)")
    gi.add_argument("--edges", required=True, help="the DAG: DOT, dagitty, edge-list CSV or YAML/JSON (file or text)")
    gi.add_argument("-o", "--output", required=True, help="YAML graph file to write")

    d = sub.add_parser(
        "demo",
        help="train the bundled demo and compare with exact answers",
        formatter_class=raw,
        epilog="example:\n  hf-causal demo            # trains ~1 min on CPU, prints tables, writes demo.png",
    )
    d.add_argument("--output-dir", default="outputs/demo", help="where the demo model is trained (or found)")
    d.add_argument("--recipe", help="recipe to use instead of the bundled one")
    d.add_argument("--rows", type=_positive_int, help="simulated training rows")
    d.add_argument("--epochs", type=float, help="training epochs")
    d.add_argument("--num-samples", type=_positive_int, default=4000, help="Monte Carlo contexts per query")
    d.add_argument("--seed", type=int, default=0, help="random seed")
    d.add_argument("--plot", default=None, help="the comparison plot (default: OUTPUT_DIR/demo.png)")
    d.add_argument("--retrain", action="store_true", help="train even if output-dir holds a model")
    d.add_argument("--repo-id", default="hf-causal/demo-gpt2-tiny", help="repo id named in the model card")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    sub = parser._subparsers._group_actions[0].choices[args.command]  # noqa: SLF001 - argparse has no public accessor
    if args.command == "train" and args.recipe:
        _unswallow_recipe(args, rest, list(sys.argv[1:] if argv is None else argv))
    if args.command == "train" and args.help:
        print(_train_help(sub))
        raise SystemExit(0)
    if rest and args.command != "train":
        sub.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            if args.command == "train":
                return cmd_train(args, rest)
            return {
                "query": cmd_query,
                "effect": cmd_effect,
                "sample": cmd_sample,
                "counterfactual": cmd_counterfactual,
                "graph": cmd_graph,
                "demo": cmd_demo,
            }[args.command](args, sub)
    except HfCausalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

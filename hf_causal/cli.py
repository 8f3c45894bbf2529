"""The ``hf-causal`` command line: train, query, effect, sample, demo.

Run ``hf-causal COMMAND --help`` for each command's options and examples.
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

EPILOG_TRAIN = """examples:
  hf-causal train recipes/demo/gpt2-tiny.yaml
  hf-causal train recipes/demo/gpt2-tiny.yaml --world_rows 2000 --num_train_epochs 2 --output_dir outputs/quick
  hf-causal train recipes/demo/gpt2-tiny.yaml --accelerate-config cpu2      # 2 processes on CPU
  hf-causal train recipes/demo/gpt2-tiny.yaml --accelerate-config ddp --num-processes 4
  accelerate launch --config_file recipes/accelerate_configs/cpu2.yaml -m hf_causal.cli train recipes/demo/gpt2-tiny.yaml

Recipe keys (YAML, overridable as --key value): graph, data, world, world_rows, order_policy,
architecture, base_model, adapter, n_layer, n_embd, n_head, lora_r, ... and any
transformers.TrainingArguments field (learning_rate, num_train_epochs, output_dir, ...).
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
ATE = E[Y | do(T=treated)] - E[Y | do(T=control)] (treated minus control).
"""


def _kv(items: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for it in items or []:
        if "=" not in it:
            raise SystemExit(f"error: {flag} expects NAME=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _overrides(rest: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    i = 0
    while i < len(rest):
        key = rest[i]
        if not key.startswith("--"):
            raise SystemExit(f"error: unexpected argument {key!r}; overrides are --key value")
        key = key[2:].replace("-", "_")
        if "=" in key:
            key, val = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(rest):
                raise SystemExit(f"error: --{key} needs a value")
            val = rest[i + 1]
            i += 2
        out[key] = yaml.safe_load(val)
    return out


def _print_distribution(d) -> None:
    print(
        f"P({d.target} | do({', '.join(f'{k}={v}' for k, v in d.do.items())})"
        + (f", {', '.join(f'{k}={v}' for k, v in d.given.items())}" if d.given else "")
        + ")"
    )
    print(f"{'value':>12} {'p':>8} {'±1.96 se':>10}")
    for k, p in d.probs.items():
        print(f"{k!s:>12} {p:8.4f} {1.96 * d.se[k]:10.4f}")
    print(f"({d.n_samples} Monte Carlo contexts, seed {d.seed}, contexts from the {d.confounder_source})")


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
        cmd += ["-m", "hf_causal.cli", "train", args.recipe, *rest] + (["--resume"] if args.resume else [])
        print("launching:", " ".join(cmd), flush=True)
        return subprocess.call(cmd)
    from .training import train

    out = train(args.recipe, _overrides(rest), resume=args.resume)
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


def _engine(path: str, batch_size: int | None):
    from .engine import CausalEngine

    return CausalEngine.from_pretrained(path, batch_size=batch_size)


def cmd_query(args: argparse.Namespace) -> int:
    eng = _engine(args.model_dir, args.batch_size)
    d = eng.query(
        args.target,
        do=_kv(args.do, "--do"),
        given=_kv(args.given, "--given"),
        num_samples=args.num_samples,
        seed=args.seed,
        data=args.data,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(d.to_dict(), indent=2))
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


def cmd_effect(args: argparse.Namespace) -> int:
    eng = _engine(args.model_dir, args.batch_size)
    given = _kv(args.given, "--given")
    kw = dict(num_samples=args.num_samples, seed=args.seed, event=args.event)
    if args.estimand == "ate":
        est = eng.ate(
            args.outcome, args.treatment, args.treated, args.control, given=given or None, data=args.data, **kw
        )
    elif args.estimand == "cate":
        est = eng.cate(args.outcome, args.treatment, args.treated, args.control, given=given, **kw)
    else:
        est = eng.att(args.outcome, args.treatment, args.treated, args.control, data=args.data, **kw)
    if args.json:
        print(json.dumps(est.to_dict(), indent=2))
    else:
        print(est.estimand)
        print(
            f"  estimate {est.estimate:.4f}  (MC se {est.se:.4f}; 95% [{est.ci_low:.4f}, {est.ci_high:.4f}]; "
            f"n={est.n_samples}, seed={est.seed}, contexts from the {est.confounder_source})"
        )
    if args.plot:
        from .plot import plot_effects

        plot_effects({args.estimand.upper(): est.to_dict()}, args.plot, title=est.estimand)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .config import atomic_write_text

    eng = _engine(args.model_dir, args.batch_size)
    df = eng.sample(
        args.n,
        do=_kv(args.do, "--do"),
        given=_kv(args.given, "--given"),
        seed=args.seed,
        variables=args.variables,
        progress=True,
    )
    for c in df.columns:
        if df[c].map(lambda x: isinstance(x, list)).any():
            df[c] = df[c].map(lambda x: " ".join(x) if isinstance(x, list) else x)
    atomic_write_text(args.output, df.to_csv(index=False))
    print(f"wrote {len(df)} rows to {args.output}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .engine import CausalEngine
    from .metrics import tv_distance
    from .plot import plot_distributions
    from .training import load_recipe, train
    from .worlds import get_world

    recipe = load_recipe(args.recipe) if args.recipe else _packaged_demo_recipe()
    recipe["output_dir"] = args.output_dir
    if args.rows:
        recipe["world_rows"] = args.rows
    if args.epochs:
        recipe["num_train_epochs"] = args.epochs
    world = get_world(recipe.get("world", "demo"))
    out = Path(args.output_dir)
    if args.retrain or not (out / "causal_config.json").exists():
        print(
            f"training on {recipe['world_rows']} simulated rows of the '{world.name}' world "
            f"(order {' -> '.join(world.graph.order)}) ...",
            flush=True,
        )
        train(recipe)
    eng = CausalEngine.from_pretrained(out)
    cfg = eng.config.metrics
    print(
        f"model: {cfg.get('parameters')} parameters, trained {cfg.get('train_seconds')} s on {cfg.get('train_rows')} rows"
    )
    y, t = "recovery", "treatment"
    panels, report = {}, {"queries": []}
    print(f"\n{'query':<34} {'value':>5} {'exact':>8} {'engine':>8} {'±1.96se':>8} {'naive':>8}")
    for a in world.graph[t].domain():
        d = eng.query(y, do={t: a}, num_samples=args.num_samples, seed=args.seed)
        ex = world.distribution(y, do={t: a})
        nv = world.naive_distribution(y, t, a)
        for k in ex:
            print(
                f"{f'P({y} | do({t}={a}))':<34} {k!s:>5} {ex[k]:8.4f} {d.probs[k]:8.4f} {1.96 * d.se[k]:8.4f} {nv[k]:8.4f}"
            )
        tv_e, tv_n = tv_distance(d.probs, ex), tv_distance(nv, ex)
        print(f"{'':<34} {'TV':>5} {'':>8} {tv_e:8.4f} {'':>8} {tv_n:8.4f}")
        keys = list(ex)
        panels[f"P({y} | do({t}={a}))"] = {
            "values": keys,
            "exact": {"p": [ex[k] for k in keys]},
            "engine": {"p": [d.probs[k] for k in keys], "se": [d.se[k] for k in keys]},
            "naive": {"p": [nv[k] for k in keys]},
        }
        report["queries"].append(
            {"do": {t: a}, "exact": ex, "engine": d.to_dict(), "naive": nv, "tv_engine": tv_e, "tv_naive": tv_n}
        )
    ate = eng.ate(y, t, 1, 0, num_samples=args.num_samples, seed=args.seed)
    att = eng.att(y, t, 1, 0, num_samples=args.num_samples, seed=args.seed)
    cate = eng.cate(y, t, 1, 0, given={"age": "old"}, num_samples=args.num_samples, seed=args.seed)
    naive_diff = world.naive_expectation(y, t, 1) - world.naive_expectation(y, t, 0)
    print(f"\n{'estimand':<22} {'exact':>8} {'engine':>8} {'±1.96se':>8} {'naive':>8}")
    for name, est, exact in [
        ("ATE", ate, world.ate(y, t, 1, 0)),
        ("ATT", att, world.att(y, t, 1, 0)),
        ("CATE(age=old)", cate, world.cate(y, t, 1, 0, {"age": "old"})),
    ]:
        print(f"{name:<22} {exact:8.4f} {est.estimate:8.4f} {1.96 * est.se:8.4f} {naive_diff:8.4f}")
        report[name] = {"exact": exact, "engine": est.to_dict(), "naive_difference": naive_diff}
    plot = plot_distributions(panels, args.plot, title="demo world: exact vs engine vs naive")
    from .hub import save_model_card

    evaluation = [
        {
            "query": f"TV to exact, P({y} | do({t}={q['do'][t]}))",
            "exact": "0",
            "engine": f"{q['tv_engine']:.4f}",
            "naive": f"{q['tv_naive']:.4f}",
        }
        for q in report["queries"]
    ] + [
        {
            "query": name,
            "exact": f"{report[name]['exact']:.4f}",
            "engine": f"{report[name]['engine']['estimate']:.4f} ± {1.96 * report[name]['engine']['se']:.4f}",
            "naive": f"{report[name]['naive_difference']:.4f} (difference in means)",
        }
        for name in ("ATE", "ATT", "CATE(age=old)")
    ]
    card = save_model_card(
        out,
        repo_id=args.repo_id,
        evaluation=evaluation,
        data_description=f"{cfg.get('train_rows')} rows simulated from the '{world.name}' world "
        "(hf_causal.worlds.demo_world); exact answers by enumeration",
    )
    (out / "demo_report.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"\nplot: {plot}\nreport: {out / 'demo_report.json'}\nmodel card: {card}")
    return 0


def _packaged_demo_recipe() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(resources.files("hf_causal").joinpath("recipes/demo.yaml").read_text())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hf-causal",
        description="Causal inference with autoregressive language models: train on rows of a known causal "
        "DAG, then ask interventional questions (p(Y | do(A=a)), ATE, ATT, CATE).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="start with `hf-causal demo`, then `hf-causal COMMAND --help`",
    )
    sub = p.add_subparsers(dest="command", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    t = sub.add_parser("train", help="fine-tune a model from a YAML recipe", epilog=EPILOG_TRAIN, formatter_class=raw)
    t.add_argument("recipe", help="YAML recipe (see recipes/)")
    t.add_argument("--resume", action="store_true", help="resume from the last checkpoint in output_dir")
    t.add_argument(
        "--accelerate-config",
        metavar="NAME",
        help="launch with accelerate: single, cpu2 (2 CPU processes), ddp, fsdp, zero2, zero3, or a YAML path",
    )
    t.add_argument("--num-processes", type=int, help="override the accelerate config's number of processes")

    def common(sp, with_given=True):
        sp.add_argument("model_dir", help="folder written by `hf-causal train`")
        if with_given:
            sp.add_argument(
                "--given", action="append", metavar="X=x", help="condition on a pre-treatment variable (repeatable)"
            )
        sp.add_argument("--num-samples", type=int, default=2000, help="Monte Carlo contexts (default 2000)")
        sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        sp.add_argument("--batch-size", type=int, default=None, help="rows per forward pass")

    q = sub.add_parser("query", help="P(target | do(...), given)", epilog=EPILOG_QUERY, formatter_class=raw)
    common(q)
    q.add_argument("--target", required=True, help="variable whose distribution is wanted")
    q.add_argument("--do", action="append", metavar="A=a", help="intervention (repeatable)")
    q.add_argument("--data", help="take pre-treatment contexts from this data file instead of the model")
    q.add_argument("--json", action="store_true", help="print JSON (probability and se of each value)")
    q.add_argument("--plot", help="write a bar chart to this file")

    e = sub.add_parser("effect", help="ATE / ATT / CATE of a treatment", epilog=EPILOG_EFFECT, formatter_class=raw)
    common(e)
    e.add_argument("--outcome", required=True)
    e.add_argument("--treatment", required=True)
    e.add_argument("--treated", required=True, help="treatment value of the treated arm")
    e.add_argument("--control", required=True, help="treatment value of the reference arm")
    e.add_argument("--estimand", choices=["ate", "att", "cate"], default="ate")
    e.add_argument("--data", help="ATT: rows whose treated units give the contexts; ATE: contexts from rows")
    e.add_argument("--event", help="for a non-numeric outcome: estimate P(outcome = EVENT)")
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
    s.add_argument("-n", type=int, default=1000, help="number of rows")
    s.add_argument("-o", "--output", required=True, help="CSV file to write")
    s.add_argument("--variables", nargs="+", help="only generate up to these variables")

    d = sub.add_parser(
        "demo",
        help="train the bundled demo and compare with exact answers",
        formatter_class=raw,
        epilog="example:\n  hf-causal demo            # trains ~1 min on CPU, prints tables, writes demo.png",
    )
    d.add_argument("--output-dir", default="outputs/demo")
    d.add_argument("--recipe", help="recipe to use instead of the bundled one")
    d.add_argument("--rows", type=int, help="simulated training rows")
    d.add_argument("--epochs", type=float, help="training epochs")
    d.add_argument("--num-samples", type=int, default=4000)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--plot", default="outputs/demo/demo.png")
    d.add_argument("--retrain", action="store_true", help="train even if output-dir holds a model")
    d.add_argument("--repo-id", default="hf-causal/demo-gpt2-tiny", help="repo id named in the model card")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    from .engine import UnsupportedQueryError
    from .graph import GraphError

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            if args.command == "train":
                return cmd_train(args, rest)
            return {"query": cmd_query, "effect": cmd_effect, "sample": cmd_sample, "demo": cmd_demo}[args.command](
                args
            )
    except (GraphError, UnsupportedQueryError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Run every benchmark: ``python -m benchmarks --smoke`` (CI sizes) or ``python -m benchmarks`` (full)."""

import argparse
import sys

from . import (
    attention,
    bnlearn,
    cate_by_covariate,
    chess,
    coverage,
    demo_world,
    ihdp,
    lalonde,
    maze,
    papers,
    query_speed,
    schedule,
    startup,
)

BENCHMARKS = {
    "startup": startup,
    "demo_world": demo_world,
    "attention": attention,
    "bnlearn": bnlearn,
    "query_speed": query_speed,
    "coverage": coverage,
    "schedule": schedule,
    "cate_by_covariate": cate_by_covariate,
    "ihdp": ihdp,
    "lalonde": lalonde,
    "maze": maze,
    "chess": chess,
    "papers": papers,
}
WITH_CARD = ("maze", "chess", "papers")  # benchmarks that also write a model card folder (--card)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: proves each benchmark runs end to end")
    ap.add_argument("--out", default="results", help="results folder (one subfolder per benchmark)")
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    args = ap.parse_args(argv)
    for name in args.only or BENCHMARKS:
        print(f"\n# benchmark: {name}{' (smoke)' if args.smoke else ''}", flush=True)
        argv_ = (["--smoke"] if args.smoke else []) + ["--out", f"{args.out}/{name}"]
        if args.smoke and name in WITH_CARD:  # CI exercises the card code too (never into model_cards/)
            argv_ += ["--card", f"{args.out}/{name}/card"]
        BENCHMARKS[name].main(argv_)
    return 0


if __name__ == "__main__":
    sys.exit(main())

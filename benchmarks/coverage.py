"""Coverage of nominal 95% intervals on fresh datasets, against the exact answers (issue #16).

Each setting draws independent datasets from a world with exact answers; on each it trains the engine
(one model on all rows, and a crossfit ensemble of K members) and fits the peers, then records for
every estimand (ATE, ATT, CATE on the world's subgroup) and estimator whether the 95% interval covered
the exact value, the absolute error and the interval's width:

* ``engine, single model``: the plug-in with its Monte Carlo interval (which should fail);
* ``engine, crossfit ensemble``: the plug-in mean of the members, delete-a-group jackknife interval;
* ``engine AIPW, crossfit``: doubly robust on the rows, each row scored by the member that did not see it;
* ``engine AIPW, single``: doubly robust with the single model's nuisances (not cross-fitted);
* EconML ``CausalForestDML`` and ``DRLearner`` with their intervals;
* the known-structure plug-in (stratification on the treatment's parents) with a 200-resample bootstrap;
* ``oracle AIPW (true nuisances)``: the same AIPW formula and influence-function interval as the engine's, with
  the world's exact propensity and outcome functions in place of any fit. Its width is what a doubly robust
  interval on these rows reaches with perfect nuisances (the efficiency bound of the estimand, up to the
  rows' noise): an engine AIPW width near it cannot be narrowed by a better fit, only by assumptions.

    python -m benchmarks.coverage                          # the full run (see --help for the settings)
    python -m benchmarks.coverage --settings demo-2k --datasets 5
    python -m benchmarks.coverage --smoke

Writes ``<out>/coverage.json`` (every dataset's numbers) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from ._common import markdown_table, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# name: (world, outcome, rows, datasets, epochs, batch size); about 1,500 optimizer steps at 2,000 rows
# (the demo recipe's 12 epochs of batch 128 leave 2,000 rows underfitted: 180 steps, ATE 0.04 for 0.28)
SETTINGS = {
    "demo-2k": ("demo", "recovery", 2000, 50, 24, 32),
    "demo-20k": ("demo", "recovery", 20000, 20, 6, 128),
    "demo-continuous-2k": ("demo-continuous", "stay", 2000, 50, 24, 32),
    "interactions-2k": ("interactions", "y", 2000, 50, 24, 32),
}
ESTIMANDS = ("ATE", "ATT", "CATE")
ORACLE = "oracle AIPW (true nuisances)"
CALIBRATION = "oracle AIPW, calibration datasets"


def _world_roles(name: str):
    """``(world, treatment, treated, control, subgroup)`` of a registered world."""
    from hf_causal.worlds import get_world

    world = get_world(name)
    r = world.roles
    return world, r["treatment"], r["treated"], r["control"], r["subgroup"]


def _exact(world, outcome, t, a1, a0, sub):
    return {
        "ATE": world.ate(outcome, t, a1, a0),
        "ATT": world.att(outcome, t, a1, a0),
        "CATE": world.cate(outcome, t, a1, a0, sub),
    }


def _interval(est) -> tuple[float, float, float]:
    return float(est.estimate), float(est.ci_low), float(est.ci_high)


def _engine_answers(eng, rows, outcome, t, a1, a0, sub, draws, estimator):
    treated = rows[rows[t] == a1]
    if estimator == "aipw":
        return {
            "ATE": _interval(eng.ate(outcome, t, a1, a0, data=rows, estimator="aipw")),
            "ATT": _interval(eng.att(outcome, t, a1, a0, data=rows, estimator="aipw")),
            "CATE": _interval(eng.cate(outcome, t, a1, a0, given=sub, data=rows, estimator="aipw")),
        }
    return {
        "ATE": _interval(eng.ate(outcome, t, a1, a0, num_samples=draws)),
        "ATT": _interval(eng.att(outcome, t, a1, a0, data=treated)),
        "CATE": _interval(eng.cate(outcome, t, a1, a0, given=sub, num_samples=draws)),
    }


def _econml(world, rows, outcome, t, a1, sub, seed):
    import pandas as pd

    from .baselines import econml_effects

    # effect modifiers: every pre-treatment covariate (all of them confound or modify in these worlds)
    pre = [v for v in world.graph.order if world.graph.order.index(v) < world.graph.order.index(t)]
    X = pd.get_dummies(rows[pre].astype(str)).to_numpy(float)
    T = (rows[t] == a1).to_numpy(int)
    Y = rows[outcome].to_numpy(float)
    masks = {"ATE": np.ones(len(rows), bool), "ATT": T == 1, "CATE": _in(rows, sub)}
    return {name: res for name, (res, _) in econml_effects(X, T, Y, masks, seed).items()}


def _strata_effects(rows, outcome, t, a1, a0, pa, sub):
    y = rows[outcome].to_numpy(float)
    a = rows[t].to_numpy()
    key = rows[pa].astype(str).agg("|".join, axis=1).to_numpy() if pa else np.zeros(len(rows), dtype=str)
    in_sub = np.ones(len(rows), bool)
    for k, v in sub.items():
        in_sub &= (rows[k] == v).to_numpy()
    res = {"ATE": [0.0, 0.0], "ATT": [0.0, 0.0], "CATE": [0.0, 0.0]}
    for s in np.unique(key):
        i = key == s
        t1, t0 = i & (a == a1), i & (a == a0)
        if not t1.any() or not t0.any():
            continue
        d = y[t1].mean() - y[t0].mean()
        for name, w in (("ATE", i.sum()), ("ATT", t1.sum()), ("CATE", (i & in_sub).sum())):
            res[name][0] += w * d
            res[name][1] += w
    return {k: (v[0] / v[1] if v[1] else float("nan")) for k, v in res.items()}


def _known_structure(world, rows, outcome, t, a1, a0, sub, seed, boots=200):
    """Backdoor adjustment on the treatment's parents (with the subgroup's variables for the CATE), with a
    percentile bootstrap interval."""
    pa = world.graph.parents(t)
    pa_sub = list(dict.fromkeys([*pa, *sub]))
    point = _strata_effects(rows, outcome, t, a1, a0, pa, {})
    point["CATE"] = _strata_effects(rows[_in(rows, sub)], outcome, t, a1, a0, pa_sub, {})["ATE"]
    rng = np.random.default_rng(seed)
    draws = {k: [] for k in ESTIMANDS}
    for _ in range(boots):
        b = rows.iloc[rng.integers(0, len(rows), len(rows))]
        e = _strata_effects(b, outcome, t, a1, a0, pa, {})
        draws["ATE"].append(e["ATE"])
        draws["ATT"].append(e["ATT"])
        draws["CATE"].append(_strata_effects(b[_in(b, sub)], outcome, t, a1, a0, pa_sub, {})["ATE"])
    return {k: (point[k], *np.nanpercentile(draws[k], [2.5, 97.5]).tolist()) for k in ESTIMANDS}


def _oracle_aipw(world, rows, outcome, t, a1, a0, sub):
    """The AIPW of :func:`hf_causal.inference.doubly_robust.aipw_from_nuisances` on the world's exact nuisances:
    e(x) = P(t = a1 | x) and mu_a(x) = E[outcome | do(t = a), x], x every variable before the treatment."""
    from hf_causal.inference.doubly_robust import aipw_from_nuisances
    from hf_causal.inference.results import Z95

    order = world.graph.order
    pre = order[: order.index(t)]
    xs = list(map(tuple, rows[pre].astype(object).to_numpy()))
    cells = {}
    for x in dict.fromkeys(xs):
        given = dict(zip(pre, x))
        cells[x] = (
            world.distribution(t, given=given)[world.graph[t].coerce(a1)],
            world.expectation(outcome, {t: a1}, given),
            world.expectation(outcome, {t: a0}, given),
        )
    e1, mu1, mu0 = np.array([cells[x] for x in xs]).T
    y = rows[outcome].to_numpy(float)
    a = np.where(rows[t] == a1, 1, np.where(rows[t] == a0, 0, -1))
    out = {}
    for estimand in ESTIMANDS:
        m = _in(rows, sub) if estimand == "CATE" else np.ones(len(rows), bool)
        name = "ATE" if estimand == "CATE" else estimand
        est, se, _ = aipw_from_nuisances(name, y[m], a[m], mu1[m], mu0[m], e1[m], 1 - e1[m])
        out[estimand] = (est, est - Z95 * se, est + Z95 * se)
    return out


def _in(rows, sub):
    m = np.ones(len(rows), bool)
    for k, v in sub.items():
        m &= (rows[k] == v).to_numpy()
    return m


def _records(setting: str, dataset: int, answers: dict, exact: dict) -> list[dict]:
    out = []
    for method, res in answers.items():
        for estimand, (est, lo, hi) in res.items():
            truth = exact[estimand]
            out.append(
                {
                    "setting": setting,
                    "dataset": dataset,
                    "method": method,
                    "estimand": estimand,
                    "truth": truth,
                    "estimate": est,
                    "ci_low": lo,
                    "ci_high": hi,
                    "covered": bool(lo <= truth <= hi),
                    "abs_error": abs(est - truth),
                    "width": hi - lo,
                }
            )
    return out


def _rescore(records: list[dict], out: Path, draws: int) -> list[dict]:
    """The engine AIPW records of every dataset with saved models, scored again by the current code (and the
    oracle AIPW, which needs only the rows)."""
    import pandas as pd

    from hf_causal import CausalEngine

    pairs = dict.fromkeys((r["setting"], r["dataset"]) for r in records if r["method"] != CALIBRATION)
    fresh = []
    for setting, s in pairs:
        world_name, outcome = SETTINGS[setting][:2]
        world, t, a1, a0, sub = _world_roles(world_name)
        rows = pd.read_parquet(out / "rows" / f"{setting}_{s}.parquet")
        answers = {}
        for kind, method in (("crossfit", None), ("single", "engine AIPW, single model")):
            eng = CausalEngine.from_pretrained(out / "models" / f"{setting}_{s}_{kind}")
            method = method or f"engine AIPW, crossfit K={len(eng.samplers)}"
            answers[method] = _engine_answers(eng, rows, outcome, t, a1, a0, sub, draws, "aipw")
        answers[ORACLE] = _oracle_aipw(world, rows, outcome, t, a1, a0, sub)
        fresh += _records(setting, s, answers, _exact(world, outcome, t, a1, a0, sub))
        print(f"{setting} dataset {s}: rescored", flush=True)
    kept = [r for r in records if not r["method"].startswith("engine AIPW") and r["method"] != ORACLE]
    return kept + fresh


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--datasets", type=int, default=None, help="datasets per setting (default: the setting's)")
    ap.add_argument(
        "--first-dataset", type=int, default=0, help="first dataset index (split a setting's datasets across processes)"
    )
    ap.add_argument(
        "--merge", nargs="+", default=None, help="only merge the coverage.json files of split runs into <out>"
    )
    ap.add_argument(
        "--oracle-datasets",
        type=int,
        default=0,
        help="also score the oracle AIPW alone on this many datasets per setting (no training: seconds), the first "
        "ones the same rows as the trained datasets; its coverage, with a binomial error 50 datasets do not "
        "have, says what the influence-function interval itself covers on the setting",
    )
    ap.add_argument("--k", type=int, default=5, help="crossfit ensemble members")
    ap.add_argument("--draws", type=int, default=4000, help="Monte Carlo contexts per plug-in query")
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument(
        "--attention",
        default="local",
        help="the engine's attention (default: the package's, local; the README's first tables used full)",
    )
    ap.add_argument("--out", default="results/coverage")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument(
        "--resume", action="store_true", help="keep the datasets already in <out>/coverage.json and run the rest"
    )
    ap.add_argument(
        "--rescore",
        action="store_true",
        help="no training: score the models saved under <out>/models again with the current doubly robust "
        "estimator and replace the engine AIPW records of <out>/coverage.json",
    )
    args = ap.parse_args(argv)
    if args.smoke:
        args.settings, args.datasets, args.k, args.draws = ["demo-2k"], 1, 2, 200
    warnings.filterwarnings("ignore")
    from hf_causal import CausalEngine, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    config, t_before = vars(args), 0.0
    if args.merge:
        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        seen = set()
        for part in parts:
            for r in part["records"]:
                key = (r["setting"], r["dataset"], r["method"], r["estimand"])
                if key in seen:
                    raise SystemExit(f"--merge: {r['setting']} dataset {r['dataset']} is in more than one file")
                seen.add(key)
                records.append(r)
        config = {**parts[0]["config"], "merged": list(args.merge)}
        t_parts = sum(part.get("seconds") or 0.0 for part in parts)
    elif (args.resume or args.rescore) and (out / "coverage.json").exists():
        previous = json.loads((out / "coverage.json").read_text())
        records = previous["records"]
        if args.resume:
            was = previous["config"]
            ran = {k: was.get(k, "full" if k == "attention" else None) for k in ("k", "n_embd", "attention", "draws")}
            clash = [k for k, v in ran.items() if v != getattr(args, k)]
            if clash:
                raise SystemExit(
                    f"--resume: {out / 'coverage.json'} was run with "
                    + ", ".join(f"--{k.replace('_', '-')} {ran[k]}" for k in clash)
                    + "; pass the same options (or another --out) so that its datasets stay comparable"
                )
            config = {**was, "resumed": [*was.get("resumed", []), dict(vars(args))]}
            t_before = previous.get("seconds") or 0.0
    done = {(r["setting"], r["dataset"]) for r in records if r["method"] != CALIBRATION}  # trained datasets
    t_start = time.time()
    if args.rescore:
        if not records:
            raise SystemExit(f"--rescore: {out / 'coverage.json'} has no records (run the benchmark first)")
        config = {**previous["config"], "rescored": dict(vars(args)), "training_seconds": previous.get("seconds")}
        records = _rescore(records, out, args.draws)
    for setting in [] if (args.merge or args.rescore) else args.settings:
        world_name, outcome, n, datasets, epochs, batch = SETTINGS[setting]
        if args.smoke:
            n, epochs = 300, 1
        world, t, a1, a0, sub = _world_roles(world_name)
        exact = _exact(world, outcome, t, a1, a0, sub)
        for s in range(args.first_dataset, args.datasets or datasets):
            if (setting, s) in done:
                continue
            t0 = time.time()
            rows = world.sample(n, seed=10_000 + s)
            base = {
                "graph": world.graph.to_dict(),
                "n_embd": args.n_embd,
                "n_layer": 2,
                "attention": args.attention,
                "learning_rate": 3e-3,
                "num_train_epochs": epochs,
                "lr_scheduler_type": "cosine",
                "per_device_train_batch_size": batch,
                "logging_steps": 10**6,
                "seed": s,
            }
            data = out / "rows" / f"{setting}_{s}.parquet"
            data.parent.mkdir(parents=True, exist_ok=True)
            rows.to_parquet(data)
            single = CausalEngine.from_pretrained(
                train({**base, "data": str(data), "output_dir": str(out / "models" / f"{setting}_{s}_single")})
            )
            cf = CausalEngine.from_pretrained(
                train(
                    {
                        **base,
                        "data": str(data),
                        "output_dir": str(out / "models" / f"{setting}_{s}_crossfit"),
                        "ensemble": {"k": args.k, "method": "crossfit"},
                    }
                )
            )
            t_train = time.time() - t0
            answers = {
                "engine, single model (Monte Carlo interval)": _engine_answers(
                    single, rows, outcome, t, a1, a0, sub, args.draws, "plugin"
                ),
                f"engine, crossfit ensemble K={args.k} (jackknife interval)": _engine_answers(
                    cf, rows, outcome, t, a1, a0, sub, args.draws, "plugin"
                ),
                f"engine AIPW, crossfit K={args.k}": _engine_answers(
                    cf, rows, outcome, t, a1, a0, sub, args.draws, "aipw"
                ),
                "engine AIPW, single model": _engine_answers(single, rows, outcome, t, a1, a0, sub, args.draws, "aipw"),
                **_econml(world, rows, outcome, t, a1, sub, s),
                "known-structure plug-in (bootstrap)": _known_structure(world, rows, outcome, t, a1, a0, sub, s),
                ORACLE: _oracle_aipw(world, rows, outcome, t, a1, a0, sub),
            }
            records += _records(setting, s, answers, exact)
            print(
                f"{setting} dataset {s}: train {t_train:.0f} s, total {time.time() - t0:.0f} s "
                f"(elapsed {time.time() - t_start:.0f} s)",
                flush=True,
            )
            write_json({"config": config, "records": records}, out / "coverage.json")
    n_oracle = 2 if args.smoke else args.oracle_datasets  # the smoke run exercises it too
    present = dict.fromkeys(x["setting"] for x in records) if (args.merge or args.rescore) else args.settings
    for setting in present if n_oracle else []:
        world_name, outcome, n = SETTINGS[setting][:3]
        world, t, a1, a0, sub = _world_roles(world_name)
        exact = _exact(world, outcome, t, a1, a0, sub)
        records = [x for x in records if (x["setting"], x["method"]) != (setting, CALIBRATION)]
        for s in range(n_oracle):
            rows = world.sample(300 if args.smoke else n, seed=10_000 + s)
            answers = {CALIBRATION: _oracle_aipw(world, rows, outcome, t, a1, a0, sub)}
            records += _records(setting, s, answers, exact)
    table = []
    keys = list(dict.fromkeys((r["setting"], r["estimand"], r["method"]) for r in records))
    for setting, estimand, method in keys:
        sel = [r for r in records if (r["setting"], r["estimand"], r["method"]) == (setting, estimand, method)]
        table.append(
            [
                setting,
                estimand,
                method,
                len(sel),
                f"{np.mean([r['covered'] for r in sel]):.2f}",
                np.mean([r["abs_error"] for r in sel]),
                np.mean([r["width"] for r in sel]),
            ]
        )
    print("\n" + markdown_table(["setting", "estimand", "method", "datasets", "coverage", "MAE", "mean width"], table))
    seconds = t_parts if args.merge else t_before + time.time() - t_start
    summary = {"config": config, "records": records, "seconds": seconds}
    write_json(summary, out / "coverage.json")
    (out / "coverage.md").write_text(
        markdown_table(["setting", "estimand", "method", "datasets", "coverage", "MAE", "mean width"], table) + "\n"
    )
    return summary


if __name__ == "__main__":
    main()

"""LaLonde (Dehejia-Wahba NSW treated units + CPS comparison rows, from causaldata 0.1.5).

The experimental benchmark is the randomized NSW contrast, mean(re78 | NSW treated) -
mean(re78 | NSW control) = $1,794. The observational task: estimate the ATT of the training program
from the 185 NSW treated units and the 15,992 CPS controls, adjusting for age, educ, black, hisp,
marr, nodegree, re74, re75. Every method sees the same rows.

Engine figures:
- ``engine``: ``CausalEngine.att(data=rows)``, both arms from the model, averaged over the treated rows;
- ``engine (observed Y1)``: mean observed re78 of the treated minus the model's E[re78 | do(treat=0), x_i]
  averaged over the treated rows (the usual regression-adjustment form of the ATT);
- ``engine (AIPW)``: ``att(data=rows, estimator="aipw")``, the doubly robust ATT from the model's own
  propensity and outcome read-outs, with its interval (whether it covers $1,794 is recorded). With
  ``--ensemble K`` the engine is a crossfit ensemble of K members, each row scored by the member that did
  not see it, and the AIPW ATT is also reported with the out-of-fold propensities Platt-calibrated
  (``calibrate_propensity=True``).

Peers (``pip install -e '.[bench]'``): DoWhy propensity-score matching and weighting (ATT), EconML
DRLearner (effects averaged over the treated), and the naive difference in means.

    python -m benchmarks.lalonde --seeds 0 1 2 3 4
    python -m benchmarks.lalonde --seeds 0 1 2 3 4 --ensemble 5   # cross-fitted, K = 5
    python -m benchmarks.lalonde --smoke
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from ._common import markdown_table, plot_bars, train_on_rows, write_json

COVARIATES = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]


def load_lalonde() -> tuple:
    """(observational rows: NSW treated + CPS controls, experimental ATT from the randomized NSW sample)."""
    import causaldata
    import pandas as pd

    nsw = causaldata.nsw_mixtape.load_pandas().data
    cps = causaldata.cps_mixtape.load_pandas().data
    experimental = float(nsw.loc[nsw.treat == 1, "re78"].mean() - nsw.loc[nsw.treat == 0, "re78"].mean())
    obs = pd.concat([nsw[nsw.treat == 1], cps[cps.treat == 0]], ignore_index=True)
    obs = obs[COVARIATES + ["treat", "re78"]].copy()
    for c in ("age", "educ", "black", "hisp", "marr", "nodegree", "treat"):
        obs[c] = obs[c].astype(int)
    for c in ("re74", "re75", "re78"):
        obs[c] = obs[c].astype(float)
    return obs, experimental


def lalonde_graph(df, bins: int = 32) -> dict:
    variables = {
        "age": {"type": "integer", "min": int(df.age.min()), "max": int(df.age.max())},
        "educ": {"type": "integer", "min": int(df.educ.min()), "max": int(df.educ.max())},
        **{c: {"type": "categorical", "values": [0, 1]} for c in ("black", "hisp", "marr", "nodegree")},
        "re74": {"type": "continuous", "bins": bins},
        "re75": {"type": "continuous", "bins": bins},
        "treat": {"type": "categorical", "values": [0, 1]},
        "re78": {"type": "continuous", "bins": bins},
    }
    edges = [[c, "treat"] for c in COVARIATES] + [[c, "re78"] for c in COVARIATES] + [["treat", "re78"]]
    edges += [["re74", "re75"]]
    return {"variables": variables, "edges": edges}


def _dowhy(df) -> dict:
    from dowhy import CausalModel

    m = CausalModel(data=df, treatment="treat", outcome="re78", common_causes=COVARIATES)
    ident = m.identify_effect(proceed_when_unidentifiable=True)
    out = {}
    for name, method in (
        ("dowhy_ps_matching", "backdoor.propensity_score_matching"),
        ("dowhy_ps_weighting", "backdoor.propensity_score_weighting"),
    ):
        t0 = time.time()
        est = m.estimate_effect(ident, method_name=method, target_units="att")
        out[name] = (float(est.value), time.time() - t0)
    return out


def _econml(df, seed: int) -> dict:
    from econml.dr import DRLearner

    t0 = time.time()
    X, T, Y = df[COVARIATES].to_numpy(float), df["treat"].to_numpy(), df["re78"].to_numpy()
    est = DRLearner(random_state=seed).fit(Y, T, X=X)
    att = float(est.effect(X[T == 1]).mean())
    return {"econml_dr_learner": (att, time.time() - t0)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=float, default=12)
    ap.add_argument("--learning-rate", type=float, default=3e-3)
    ap.add_argument("--bins", type=int, default=32)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument(
        "--ensemble",
        type=int,
        default=0,
        metavar="K",
        help="train a crossfit ensemble of K members per seed (0: one model); the doubly robust ATT then scores "
        "each row with the member that did not see it",
    )
    ap.add_argument("--out", default="results/lalonde")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import numpy as np
    import pandas as pd

    from hf_causal import CausalEngine

    obs, experimental = load_lalonde()
    if args.smoke:
        args.epochs, args.seeds = 1, [0]
        args.ensemble = min(args.ensemble, 2)
        obs = pd.concat([obs[obs.treat == 1].head(150), obs[obs.treat == 0].head(150)], ignore_index=True)
    out = Path(args.out)
    treated = obs[obs.treat == 1].reset_index(drop=True)
    results = []
    for seed in args.seeds:
        mdir, t_train = train_on_rows(
            obs,
            lalonde_graph(obs, args.bins),
            out / f"model_seed{seed}",
            num_train_epochs=args.epochs,
            learning_rate=args.learning_rate,
            eval_fraction=0.0,
            seed=seed,
            **({"ensemble": {"k": args.ensemble, "method": "crossfit"}} if args.ensemble else {}),
        )
        eng = CausalEngine.from_pretrained(mdir)
        t0 = time.time()
        att = eng.att("re78", "treat", 1, 0, data=treated, seed=seed)
        t_att = time.time() - t0
        t0 = time.time()
        y0 = eng.expectation("re78", do={"treat": 0}, data=treated, seed=seed)
        t_y0 = time.time() - t0
        t0 = time.time()
        dr = eng.att("re78", "treat", 1, 0, data=obs, estimator="aipw", seed=seed)
        t_dr = time.time() - t0
        y1_observed = float(treated.re78.mean()) - y0.estimate
        est = {
            "engine": (att.estimate, t_train + t_att),
            "engine (AIPW)": (dr.estimate, t_train + t_dr),
            "engine (observed Y1)": (y1_observed, t_train + t_y0),
        }
        doubly_robust = {"engine (AIPW)": dr}
        if args.ensemble:  # out-of-fold propensities: their Platt-calibrated version too
            t0 = time.time()
            cal = eng.att("re78", "treat", 1, 0, data=obs, estimator="aipw", seed=seed, calibrate_propensity=True)
            est["engine (AIPW, calibrated propensity)"] = (cal.estimate, t_train + time.time() - t0)
            doubly_robust["engine (AIPW, calibrated propensity)"] = cal
        est.update(_dowhy(obs))
        est.update(_econml(obs, seed))
        est["naive"] = (float(obs.loc[obs.treat == 1, "re78"].mean() - obs.loc[obs.treat == 0, "re78"].mean()), 0.0)
        rec = {
            "seed": seed,
            "experimental_att": experimental,
            **{k: {"att": v, "abs_error": abs(v - experimental), "seconds": s} for k, (v, s) in est.items()},
        }
        for name, d in doubly_robust.items():
            rec[name].update(
                se=float(d.se),
                ci=[float(d.ci_low), float(d.ci_high)],
                covers_experimental=bool(d.ci_low <= experimental <= d.ci_high),
                clipped_rows=int(d.details["clipped_rows"]),
                propensity_log_loss=d.details["propensity"]["log_loss"],
                propensity_log_loss_marginal=d.details["propensity"]["log_loss_marginal"],
            )
        results.append(rec)
        print({k: (round(v["att"]) if isinstance(v, dict) else v) for k, v in rec.items()}, flush=True)
    methods = [k for k in results[0] if isinstance(results[0][k], dict)]
    summary = {
        m: {
            "att_mean": float(np.mean([r[m]["att"] for r in results])),
            "att_sd": float(np.std([r[m]["att"] for r in results], ddof=1)) if len(results) > 1 else 0.0,
            "abs_error_mean": float(np.mean([r[m]["abs_error"] for r in results])),
            "abs_error_sd": float(np.std([r[m]["abs_error"] for r in results], ddof=1)) if len(results) > 1 else 0.0,
            "seconds_mean": float(np.mean([r[m]["seconds"] for r in results])),
            **(
                {"covered": int(sum(r[m]["covers_experimental"] for r in results))}
                if "covers_experimental" in results[0][m]
                else {}
            ),
        }
        for m in methods
    }
    table = markdown_table(
        ["method", "ATT ($, mean ± sd)", "abs error vs experimental ($)", "interval covers $1,794", "fit s"],
        [
            [
                m,
                f"{v['att_mean']:.0f} ± {v['att_sd']:.0f}",
                f"{v['abs_error_mean']:.0f} ± {v['abs_error_sd']:.0f}",
                f"{v['covered']} of {len(results)}" if "covered" in v else "",
                f"{v['seconds_mean']:.1f}",
            ]
            for m, v in summary.items()
        ],
    )
    print(
        f"\nLaLonde: {int((obs.treat == 1).sum())} NSW treated + {int((obs.treat == 0).sum())} CPS controls; "
        f"experimental ATT ${experimental:.0f}; {len(results)} seed(s)"
        f"{f'; crossfit ensembles of {args.ensemble} members' if args.ensemble else ''}\n\n{table}"
    )
    result = {"config": vars(args), "experimental_att": experimental, "summary": summary, "runs": results}
    write_json(result, out / "lalonde.json")
    plot_bars(
        {"ATT": {m: v["att_mean"] for m, v in summary.items()}},
        out / "lalonde.png",
        "ATT of NSW training on 1978 earnings ($)",
        "LaLonde (NSW treated + CPS controls)",
        reference=experimental,
    )
    return result


if __name__ == "__main__":
    main()

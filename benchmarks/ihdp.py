"""IHDP (Hill 2011, response surface B, as shipped by econml 0.17): the engine vs EconML.

747 units, 25 covariates (6 continuous), a binary treatment and a continuous outcome; the true
individual effects are known. Each replication redraws the outcome noise (``random_state``) and
every method is fitted on the same rows; errors are in-sample, as usual for IHDP:

    eps_ATE = |mean(tau_hat) - mean(tau)|,  sqrt(PEHE) = sqrt(mean((tau_hat - tau)^2))

Peers (``pip install -e '.[bench]'``): EconML CausalForestDML, DRLearner and a T-learner with
gradient boosting, and the naive difference in means. The engine's tau_hat(x_i) is
E[y | do(treat=1), x_i] - E[y | do(treat=0), x_i] read from the model's softmax over the outcome
bins (``CausalEngine.individual_effects``). With the treatment in the loss (``--loss-variables treat y``,
or none for the joint) the doubly robust ATE (``estimator="aipw"``, the model's own propensity and
outcome read-outs) is reported too, as ``engine (AIPW)`` (an ATE: no PEHE). With ``--ensemble K`` the
engine is a crossfit ensemble: the doubly robust ATE scores each row with the member that did not see it,
and is also reported with those out-of-fold propensities Platt-calibrated (``calibrate_propensity=True``).

``oracle AIPW (true outcome functions)`` is the same AIPW formula on the replication's exact noise-free outcome
functions (rebuilt from econml's generator): no fit, so its eps_ATE is the floor of AIPW on these rows, the unit
noise of the observed outcomes weighted by 1 / e, which a plug-in such as the T-learner does not carry.
``outcome code, exact means`` is what an engine with perfect conditionals would read through the outcome's
quantile bins (each arm's exact outcome distribution coded into the trained model's bins): the floor that the
code alone puts under the engine's sqrt(PEHE). Each engine row's eps_ATE is also compared with the best peer's,
paired by replication (mean ± se of the difference).

    python -m benchmarks.ihdp --reps 10
    python -m benchmarks.ihdp --reps 10 --loss-variables treat y    # with the doubly robust engine
    python -m benchmarks.ihdp --reps 10 --loss-variables treat y --ensemble 5   # cross-fitted, K = 5
    python -m benchmarks.ihdp --smoke
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import markdown_table, plot_bars, record_options, reusable, train_on_rows, write_json

# the options that shape a replication's model: --reuse loads a saved one only if they match
_MODEL_OPTIONS = (
    "epochs",
    "learning_rate",
    "n_embd",
    "n_layer",
    "dropout",
    "bins",
    "covariate_bins",
    "loss_variables",
    "ensemble",
    "attention",
)

CONTINUOUS_MIN_UNIQUE = 16

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


def load_ihdp(rep: int):
    """(DataFrame with x1..x25, treat, y; true individual effects) for replication ``rep``."""
    import numpy as np
    import pandas as pd
    from econml.data.dgps import ihdp_surface_B

    y, t, x, tau = ihdp_surface_B(random_state=rep)
    keep = [j for j in range(x.shape[1]) if len(np.unique(x[:, j])) > 1]  # column 0 is constant
    df = pd.DataFrame({f"x{j}": x[:, j].astype(int) if np.all(x[:, j] == np.round(x[:, j])) else x[:, j] for j in keep})
    df["treat"] = t.astype(int)
    df["y"] = y.astype(float)
    return df, np.asarray(tau, dtype=float)


ORACLE = "oracle AIPW (true outcome functions)"


def surface_b_means(rep: int):
    """The noise-free outcome functions of replication ``rep``, ``(mu0, mu1)`` per unit, rebuilt from econml's
    generator: the same ``random_state`` draws in the same order (beta, then the noise), checked against the
    true effects it returns. ``Y = mu_T + N(0, 1)``, so ``Y - mu_T`` is the replication's outcome noise."""
    import numpy as np
    from econml.data.dgps import _process_ihdp_sim_data, ihdp_surface_B
    from sklearn.utils import check_random_state

    t, x = _process_ihdp_sim_data()
    n, d = x.shape
    beta = check_random_state(rep).choice([0, 0.1, 0.2, 0.3, 0.4], size=d, replace=True, p=[0.6, 0.1, 0.1, 0.1, 0.1])
    offset = np.concatenate((np.zeros((n, 1)), np.ones((n, d - 1)) * 0.5), axis=1)
    omega = np.mean((x @ beta - np.exp((x + offset) @ beta))[t == 1]) - 4
    mu1, mu0 = x @ beta - omega, np.exp((x + offset) @ beta)
    tau = ihdp_surface_B(random_state=rep)[3]
    if not np.allclose(mu1 - mu0, tau):
        raise RuntimeError("econml's ihdp_surface_B draws changed: the oracle cannot rebuild its outcome functions")
    return mu0, mu1


def oracle_aipw(df, mu0, mu1) -> tuple[float, float]:
    """The engine's AIPW formula (``aipw_from_nuisances``) on the exact outcome functions ``mu0, mu1``
    (:func:`surface_b_means`), with the treated share
    as the propensity (unbiased for any propensity once the outcome functions are exact): ``(estimate, se)``.

    Its error against the in-sample ATE is the outcome noise that AIPW's residual term carries, weighted by
    1 / e, i.e. the floor of any AIPW on these rows however good its nuisances; a plug-in (T-learner) averages
    fitted means and carries none of it."""
    import numpy as np

    from hf_causal.inference.doubly_robust import aipw_from_nuisances

    y, a = df["y"].to_numpy(float), df["treat"].to_numpy(int)
    e1 = np.full(len(df), a.mean())
    est, se, _ = aipw_from_nuisances("ATE", y, a, mu1, mu0, e1, 1 - e1)
    return est, se


CODE_FLOOR = "outcome code, exact means (floor of the engine's read-out)"


def code_floor_effects(mu0, mu1, edges, bin_means) -> np.ndarray:
    """The individual effects an engine with *perfect* conditionals would read through the outcome's bin code:
    E[bin mean of the bin holding mu_a(x) + N(0, 1)] for each arm, from the exact outcome functions ``mu0, mu1``
    (:func:`surface_b_means`). Their
    error against the true effects is what the code alone costs (the tail bins average over a wide range)."""
    import numpy as np
    from scipy.stats import norm

    inner = np.asarray(edges, float)[1:-1]
    means = np.asarray(bin_means, float)

    def coded(mu):
        cdf = norm.cdf(inner[None, :] - mu[:, None])
        ones = np.ones((len(mu), 1))
        return np.diff(np.concatenate([0 * ones, cdf, ones], axis=1), axis=1) @ means

    return coded(mu1) - coded(mu0)


def ihdp_graph(df, bins: int = 32, covariate_bins: int | None = None) -> dict:
    """Covariates are roots; every covariate causes treatment and outcome; treatment causes outcome."""
    import numpy as np

    covs = [c for c in df.columns if c.startswith("x")]
    variables = {}
    for c in covs:
        u = np.unique(df[c])
        if len(u) <= CONTINUOUS_MIN_UNIQUE and np.all(u == np.round(u)):
            variables[c] = {"type": "categorical", "values": [int(v) for v in u]}
        else:
            variables[c] = {"type": "continuous", "bins": covariate_bins or bins}
    variables["treat"] = {"type": "categorical", "values": [0, 1]}
    variables["y"] = {"type": "continuous", "bins": bins}
    edges = [[c, "treat"] for c in covs] + [[c, "y"] for c in covs] + [["treat", "y"]]
    return {"variables": variables, "edges": edges}


def _econml(df, rep: int) -> dict:
    import numpy as np
    from econml.metalearners import TLearner
    from sklearn.ensemble import GradientBoostingRegressor

    from .baselines import econml_makers

    covs = [c for c in df.columns if c.startswith("x")]
    X, T, Y = df[covs].to_numpy(), df["treat"].to_numpy(), df["y"].to_numpy()
    out = {}
    peers = econml_makers(rep)
    models = {
        "econml_causal_forest": peers["EconML CausalForestDML"],
        "econml_dr_learner": peers["EconML DRLearner"],
        "econml_t_learner_gb": lambda: TLearner(models=GradientBoostingRegressor(random_state=rep)),
    }
    for name, make in models.items():
        t0 = time.time()
        est = make()
        est.fit(Y, T, X=X)
        out[name] = (np.asarray(est.effect(X), dtype=float).ravel(), time.time() - t0)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=10, help="replications (random_state first-rep..first-rep+reps-1)")
    ap.add_argument("--first-rep", type=int, default=0, help="first replication (split a run across processes)")
    ap.add_argument(
        "--merge", nargs="+", default=None, help="only merge the ihdp.json files of split runs into one table"
    )
    ap.add_argument("--epochs", type=float, default=150)
    ap.add_argument("--learning-rate", type=float, default=3e-3)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--bins", type=int, default=32, help="quantile bins of the outcome")
    ap.add_argument("--covariate-bins", type=int, default=8, help="quantile bins of continuous covariates")
    ap.add_argument(
        "--loss-variables",
        nargs="*",
        default=["y"],
        help="variables in the training loss (default: the outcome only; contexts come from the rows); "
        "pass no names to train the full joint",
    )
    ap.add_argument(
        "--ensemble",
        type=int,
        default=0,
        metavar="K",
        help="train a crossfit ensemble of K members per replication (0: one model); the doubly robust "
        "engine then scores each row with the member that did not see it",
    )
    ap.add_argument(
        "--attention",
        default="auto",
        choices=["auto", "full", "local", "two_stream"],
        help="the engine's attention (default: the package's, auto; the README's first tables used full)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="load the model folders an earlier run left in --out (their recorded training time) instead of training",
    )
    ap.add_argument("--out", default="results/ihdp")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.reps, args.epochs = 1, 1
    warnings.filterwarnings("ignore")
    import numpy as np

    from hf_causal import CausalEngine
    from hf_causal.inference.results import Z95

    out = Path(args.out)
    if args.merge:
        import json

        per_rep = [r for f in args.merge for r in json.loads(Path(f).read_text())["replications"]]
        return _report(sorted(per_rep, key=lambda r: r["rep"]), args, out)
    per_rep = []
    for rep in range(args.first_rep, args.first_rep + args.reps):
        df, tau = load_ihdp(rep)
        mdir = out / f"model_rep{rep}"
        options = {"rep": rep, **{k: getattr(args, k) for k in _MODEL_OPTIONS}}
        if args.reuse and reusable(mdir, options):
            t_train = None  # read from the loaded model's metrics below (one load)
        else:
            mdir, t_train = train_on_rows(
                df,
                ihdp_graph(df, args.bins, args.covariate_bins),
                mdir,
                num_train_epochs=args.epochs,
                learning_rate=args.learning_rate,
                n_embd=args.n_embd,
                n_layer=args.n_layer,
                dropout=args.dropout,
                per_device_train_batch_size=64,
                eval_fraction=0.0,
                seed=rep,
                attention=args.attention,
                **({"loss_variables": args.loss_variables} if args.loss_variables else {}),
                **({"ensemble": {"k": args.ensemble, "method": "crossfit"}} if args.ensemble else {}),
            )
            record_options(mdir, options)
        t0 = time.time()
        eng = CausalEngine.from_pretrained(mdir)
        if t_train is None:
            t_train = float(eng.config.metrics.get("train_seconds", float("nan")))
        ite = {"engine": (eng.individual_effects("y", "treat", 1, 0, data=df), t_train + time.time() - t0)}
        mu0, mu1 = surface_b_means(rep)  # the replication's exact outcome functions, for both floors
        ite[CODE_FLOOR] = (code_floor_effects(mu0, mu1, eng.graph["y"].edges, eng.graph["y"].bin_means), 0.0)
        aipw = None
        if not args.loss_variables or "treat" in args.loss_variables:  # the propensity was trained
            t0 = time.time()
            dr = eng.ate("y", "treat", 1, 0, data=df, estimator="aipw", seed=rep)
            aipw = {"engine (AIPW)": (dr, t_train + time.time() - t0)}
            if args.ensemble:  # out-of-fold propensities: their Platt-calibrated version too
                t0 = time.time()
                dr = eng.ate("y", "treat", 1, 0, data=df, estimator="aipw", seed=rep, calibrate_propensity=True)
                aipw["engine (AIPW, calibrated propensity)"] = (dr, t_train + time.time() - t0)
        ite.update(_econml(df, rep))
        naive = df.loc[df.treat == 1, "y"].mean() - df.loc[df.treat == 0, "y"].mean()
        ite["naive"] = (np.full(len(df), naive), 0.0)
        rec = {"rep": rep, "true_ate": float(tau.mean())}
        for name, (est, secs) in ite.items():
            rec[name] = {
                "eps_ate": float(abs(est.mean() - tau.mean())),
                "sqrt_pehe": float(np.sqrt(np.mean((est - tau) ** 2))),
                "seconds": float(secs),
            }
        est, se = oracle_aipw(df, mu0, mu1)
        rec[ORACLE] = {
            "eps_ate": float(abs(est - tau.mean())),
            "sqrt_pehe": float("nan"),
            "seconds": 0.0,
            "se": float(se),
            "covers_sample_ate": bool(abs(est - tau.mean()) <= Z95 * se),
        }
        for name, (dr, secs) in (aipw or {}).items():  # an ATE only: no individual effects, no PEHE
            rec[name] = {
                "eps_ate": float(abs(dr.estimate - tau.mean())),
                "sqrt_pehe": float("nan"),
                "seconds": float(secs),
                "clipped_rows": int(dr.details["clipped_rows"]),
                "se": float(dr.se),
                "se_influence_function": float(dr.details.get("se_influence_function", dr.se)),
                "se_between_folds": float(dr.details.get("se_between_folds") or float("nan")),
                "covers_sample_ate": bool(dr.ci_low <= tau.mean() <= dr.ci_high),
                "propensity_log_loss": dr.details["propensity"]["log_loss"],
                "propensity_log_loss_marginal": dr.details["propensity"]["log_loss_marginal"],
            }
        per_rep.append(rec)
        print({k: (v if not isinstance(v, dict) else round(v["eps_ate"], 3)) for k, v in rec.items()}, flush=True)
    return _report(per_rep, args, out)


def _report(per_rep: list[dict], args, out: Path) -> dict:
    import numpy as np

    methods = [k for k in per_rep[0] if isinstance(per_rep[0][k], dict)]
    summary = {}
    for m in methods:
        e = np.array([r[m]["eps_ate"] for r in per_rep])
        p = np.array([r[m]["sqrt_pehe"] for r in per_rep])
        s = np.array([r[m]["seconds"] for r in per_rep])
        summary[m] = {
            "eps_ate_mean": float(e.mean()),
            "eps_ate_sd": float(e.std(ddof=1)) if len(e) > 1 else 0.0,
            "sqrt_pehe_mean": float(p.mean()),
            "sqrt_pehe_sd": float(p.std(ddof=1)) if len(p) > 1 else 0.0,
            "seconds_mean": float(s.mean()),
        }
        if "covers_sample_ate" in per_rep[0][m]:  # the doubly robust interval, against the replication's ATE
            summary[m]["coverage"] = float(np.mean([r[m]["covers_sample_ate"] for r in per_rep]))
            summary[m]["se_mean"] = float(np.mean([r[m]["se"] for r in per_rep]))
    table = markdown_table(
        ["method", "eps_ATE (mean ± sd)", "sqrt PEHE (mean ± sd)", "fit s / rep"],
        [
            [
                m,
                f"{v['eps_ate_mean']:.3f} ± {v['eps_ate_sd']:.3f}",
                f"{v['sqrt_pehe_mean']:.3f} ± {v['sqrt_pehe_sd']:.3f}",
                f"{v['seconds_mean']:.1f}",
            ]
            for m, v in summary.items()
        ],
    )
    print(f"\nIHDP surface B, {len(per_rep)} replications, 747 units\n\n{table}")
    paired = _paired(per_rep, methods)
    if paired:
        print(
            f"\neps_ATE paired by replication against the best peer ({paired['peer']}): method - peer, mean ± se "
            f"over {len(per_rep)} replications, and in how many the method is lower\n"
        )
        print(
            markdown_table(
                ["method", "eps_ATE - peer (mean ± se)", "lower in"],
                [
                    [m, f"{d['mean']:+.3f} ± {d['se']:.3f}", f"{d['wins']} of {d['n']}"]
                    for m, d in paired["diffs"].items()
                ],
            )
        )
    for m, v in summary.items():
        if "coverage" in v:
            print(
                f"{m}: its 95% interval covers the sample ATE in {v['coverage']:.2f} of replications, mean se {v['se_mean']:.3f}"
            )
    result = {"config": vars(args), "summary": summary, "paired_eps_ate": paired, "replications": per_rep}
    write_json(result, out / "ihdp.json")
    plot_bars(
        {
            "eps_ATE": {m: v["eps_ate_mean"] for m, v in summary.items() if m != "naive"},
            "sqrt PEHE": {
                m: v["sqrt_pehe_mean"]
                for m, v in summary.items()
                if m != "naive" and v["sqrt_pehe_mean"] == v["sqrt_pehe_mean"]
            },
        },
        out / "ihdp.png",
        "error (mean over replications)",
        f"IHDP surface B, {len(per_rep)} replications",
        errors={
            "eps_ATE": {m: v["eps_ate_sd"] for m, v in summary.items()},
            "sqrt PEHE": {m: v["sqrt_pehe_sd"] for m, v in summary.items()},
        },
    )
    return result


def _paired(per_rep: list[dict], methods: list[str]) -> dict | None:
    """eps_ATE of each engine row and of the oracle minus that of the best EconML peer (lowest mean eps_ATE),
    paired by replication: the replications' spread (sd about 0.1) hides a 0.02 difference in the means, the
    paired difference does not."""
    import numpy as np

    peers = [m for m in methods if m.startswith("econml")]
    if not peers or len(per_rep) < 2:
        return None
    best = min(peers, key=lambda m: np.mean([r[m]["eps_ate"] for r in per_rep]))
    ref = np.array([r[best]["eps_ate"] for r in per_rep])
    diffs = {}
    for m in methods:
        if m.startswith("engine") or m in (ORACLE, CODE_FLOOR):
            d = np.array([r[m]["eps_ate"] for r in per_rep]) - ref
            diffs[m] = {
                "mean": float(d.mean()),
                "se": float(d.std(ddof=1) / np.sqrt(len(d))),
                "wins": int((d < 0).sum()),
                "n": len(d),
            }
    return {"peer": best, "diffs": diffs}


if __name__ == "__main__":
    main()

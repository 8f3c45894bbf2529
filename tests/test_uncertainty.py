"""Ensembles, intervals that say what they cover, and doubly robust effects (issue #16)."""

import json
import math
import shutil
import warnings

import numpy as np
import pytest

import hf_causal
from hf_causal import CausalEngine, train
from hf_causal.inference.diagnostics import propensity_fit
from hf_causal.inference.doubly_robust import aipw_from_nuisances, between_fold_se, member_of_rows
from hf_causal.inference.results import Estimate
from hf_causal.inference.schema import parse_query
from hf_causal.inference.uncertainty import MonteCarloOnlyWarning, combine, t_quantile

Y, T = "recovery", "treatment"


@pytest.fixture(scope="module")
def bootstrap_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ens_boot")
    train(
        {
            "world": "demo",
            "world_rows": 600,
            "num_train_epochs": 1,
            "n_embd": 16,
            "output_dir": str(out),
            "logging_steps": 10**6,
            "ensemble": {"k": 3, "method": "bootstrap"},
        }
    )
    return out


def test_ensemble_round_trips_through_save_hub_load_and_pipeline(bootstrap_dir, tmp_path, monkeypatch):
    from test_hub_pipeline import FakeHub

    eng = CausalEngine.from_pretrained(bootstrap_dir)
    assert len(eng.samplers) == 3 and eng.config.ensemble["method"] == "bootstrap"
    assert sorted(p.name for p in (bootstrap_dir / "members").iterdir()) == ["0", "1", "2"]
    assert not (bootstrap_dir / ".ensemble-members").exists()
    ref = eng.ate(Y, T, 1, 0, num_samples=200, seed=1)
    assert (
        ref.members == 3 and ref.interval_kind == "estimation+monte_carlo" and len(ref.details["member_estimates"]) == 3
    )
    assert len(set(ref.details["member_estimates"])) == 3  # three different fits
    copy = tmp_path / "copy"
    shutil.copytree(bootstrap_dir, copy)
    hub = FakeHub(tmp_path / "hub")
    hf_causal.push_to_hub(copy, "someone/ens", api=hub)
    card = (tmp_path / "hub" / "someone--ens" / "README.md").read_text()
    assert "Ensemble: 3 members (bootstrap)" in card
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    q = {"effect": "ate", "outcome": Y, "treatment": T, "treated": 1, "control": 0}
    via_hub = hf_causal.load("someone/ens").ate(Y, T, 1, 0, num_samples=200, seed=1)
    via_pipe = hf_causal.pipeline("someone/ens")(q, num_samples=200, seed=1)
    assert via_hub.estimate == ref.estimate and via_hub.se == ref.se
    assert via_pipe == ref.to_dict()


def test_lora_ensemble_is_k_named_adapters_over_one_base(tmp_path):
    from hf_causal.testing import tiny_gpt2_checkpoint

    base = tiny_gpt2_checkpoint(tmp_path / "gpt2")
    out = train(
        {
            "world": "demo",
            "world_rows": 200,
            "base_model": str(base),
            "num_train_epochs": 1,
            "output_dir": str(tmp_path / "ens"),
            "logging_steps": 10**6,
            "ensemble": {"k": 2, "method": "crossfit"},
        }
    )
    eng = CausalEngine.from_pretrained(out)
    assert {a for _, a in eng.members} == {"member-0", "member-1"}
    assert len({id(m) for m, _ in eng.members}) == 1  # one base model in memory
    assert all((out / "members" / j / "adapter_model.safetensors").exists() for j in ("0", "1"))
    per = [eng._over_members(lambda v: v.sampler.adapter, combine_answers=False)]
    assert per == [["member-0", "member-1"]]
    a = eng.query(Y, do={T: 1}, num_samples=50, seed=0)
    b = CausalEngine.from_pretrained(out).query(Y, do={T: 1}, num_samples=50, seed=0)
    assert a.probs == b.probs and a.members == 2


_ATE_QUERY = {"effect": "ate", "outcome": "stay", "treatment": T, "treated": 1, "control": 0}


def test_crossfitting_never_scores_a_training_row_with_a_member_that_saw_it(tmp_path, capsys):
    """Rows with a continuous column are unique; every training row gets the member of its fold, which
    was trained on the other folds only, and rows the artefact never saw get every member (-1)."""
    from hf_causal.ensemble import member_rows
    from hf_causal.worlds import demo_world

    w = demo_world(continuous=True)
    out = train(
        {
            "world": "demo-continuous",
            "world_rows": 300,
            "num_train_epochs": 1,
            "n_embd": 16,
            "output_dir": str(tmp_path / "cf"),
            "logging_steps": 10**6,
            "ensemble": {"k": 3, "method": "crossfit"},
        }
    )
    eng = CausalEngine.from_pretrained(out)
    rows = w.sample(300, seed=0)  # the training table (world_seed 0)
    member, crossfit = member_of_rows(eng, rows)
    assert crossfit
    folds = json.loads((out / "ensemble_folds.json").read_text())
    n_train = len(folds["folds"])
    plan = member_rows(n_train, 3, "crossfit", seed=0)
    assert plan.folds == folds["folds"]
    # the training rows are the rows not held out for the loss (eval_fraction 0.05): recover their order
    seen = member >= 0
    assert seen.sum() == n_train and (~seen).sum() == 300 - n_train
    train_positions = np.cumsum(seen) - 1
    for i in np.flatnonzero(seen):
        j = member[i]
        assert train_positions[i] not in set(plan.members[j].tolist())  # member j never saw row i
    dr = eng.ate("stay", T, 1, 0, data=rows, estimator="aipw")  # cross-fitted: the larger of the two SEs
    d = dr.details
    assert d["cross_fitted"] and d["se_between_folds"] is not None
    # each member scores its own fold and the unseen rows, nothing else: the training rows once in all
    assert d["rows_scored_per_member"] == [int((member == j).sum() + (~seen).sum()) for j in range(3)]
    assert dr.se == max(d["se_influence_function"], d["se_between_folds"])
    assert d["propensity"]["scored"] == "cross-fitted" and 0 < d["propensity"]["min"] <= d["propensity"]["max"] < 1
    train_rows = rows[seen].reset_index(drop=True)  # calibration needs every row scored out of fold
    cal = eng.ate("stay", T, 1, 0, data=train_rows, estimator="aipw", calibrate_propensity=True)
    c = cal.details["propensity"]["calibration"]
    assert c["method"] == "platt" and c["treated"]["slope"] > 0 and np.isfinite(cal.estimate)
    from hf_causal import QueryError, UnsupportedQueryError

    with pytest.raises(UnsupportedQueryError, match="out-of-fold propensities for every row"):
        eng.ate("stay", T, 1, 0, data=rows, estimator="aipw", calibrate_propensity=True)  # 15 unseen rows
    with pytest.raises(QueryError, match="use estimator='aipw'"):
        eng.ate("stay", T, 1, 0, data=rows, calibrate_propensity=True)
    with pytest.raises(QueryError, match="calibrate_propensity must be true or false, got 'yes'"):
        parse_query({**_ATE_QUERY, "calibrate_propensity": "yes"})
    from hf_causal.cli import main

    train_rows.to_csv(tmp_path / "rows.csv", index=False)
    argv = ["effect", str(out), "--outcome", "stay", "--treatment", T, "--treated", "1", "--control", "0"]
    argv += ["--data", str(tmp_path / "rows.csv"), "--estimator", "aipw", "--calibrate-propensity", "--json"]
    capsys.readouterr()
    assert main(argv) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["details"]["propensity"]["calibration"] == c and said["estimate"] == pytest.approx(cal.estimate)
    from hf_causal.cli import _interval_note

    used = "between the cross-fitted folds" if d["se_between_folds"] > d["se_influence_function"] else "influence"
    assert used in _interval_note(dr)  # the CLI says which of the two the interval is
    fresh, _ = member_of_rows(eng, w.sample(50, seed=99))
    assert (fresh == -1).all()


def test_doubly_robust_is_doubly_robust():
    """With the true propensity, a constant (wrong) outcome model still gives the exact ATE; with the true
    outcome model, a constant (wrong) propensity does too; the plug-in of the wrong outcome model does not."""
    from hf_causal.worlds import demo_world

    w = demo_world()
    rows = w.sample(20000, seed=3)
    exact = w.ate(Y, T, 1, 0)
    ctx = list(zip(rows["age"], rows["severity"]))
    cells = {c: {"age": c[0], "severity": c[1]} for c in set(ctx)}  # exact answers once per covariate cell
    e1_cell = {c: w.distribution(T, given=g)[1] for c, g in cells.items()}
    mu_cell = {t: {c: w.expectation(Y, do={T: t}, given=g) for c, g in cells.items()} for t in (0, 1)}
    e1 = np.array([e1_cell[c] for c in ctx])
    mu = {t: np.array([mu_cell[t][c] for c in ctx]) for t in (0, 1)}
    y = rows[Y].to_numpy(float)
    a = rows[T].to_numpy()
    const = np.full(len(rows), y.mean())
    est_e, se_e, _ = aipw_from_nuisances("ATE", y, a, const, const, e1, 1 - e1)
    est_mu, se_mu, _ = aipw_from_nuisances("ATE", y, a, mu[1], mu[0], np.full(len(rows), 0.5), np.full(len(rows), 0.5))
    assert abs(est_e - exact) < 3 * se_e + 0.01 and abs(est_mu - exact) < 3 * se_mu + 0.01
    assert abs((const - const).mean() - exact) > 0.2  # the plug-in of the constant outcome model is 0
    att_exact = w.att(Y, T, 1, 0)
    est_att, se_att, _ = aipw_from_nuisances("ATT", y, a, const, const, e1, 1 - e1)
    assert abs(est_att - att_exact) < 3 * se_att + 0.01


def test_att_clips_only_the_control_weight():
    """The ATT needs overlap one way: controls that look nothing like the treated (e1 near 0) weigh e1 / e0,
    nearly nothing. With the true propensity and a constant (wrong) outcome model the doubly robust ATT is
    exact; holding e1 to at least the clip, as the ATE must, gives those controls up to 10x their weight and
    misses (LaLonde: 92% of the rows are such CPS controls)."""
    rng = np.random.default_rng(0)
    n = 200_000
    x = rng.random(n) < 0.2  # 20% of units are like the treated
    e1 = np.where(x, 0.5, 0.001)
    a = (rng.random(n) < e1).astype(int)
    y0 = np.where(x, 1.0, 5.0) + rng.normal(0, 0.1, n)  # the unlike controls have other outcomes
    y = y0 + 2.0 * a  # effect 2 on the treated
    const = np.zeros(n)  # an outcome model that knows nothing
    est, se, clipped = aipw_from_nuisances("ATT", y, a, const, const, e1, 1 - e1, clip=0.01)
    assert abs(est - 2.0) < 3 * se + 0.02 and clipped == 0
    e1_held = np.clip(e1, 0.01, 0.99)  # the two-sided clip
    wrong, se_w, _ = aipw_from_nuisances("ATT", y, a, const, const, e1_held, 1 - e1_held, clip=0.0)
    assert abs(wrong - 2.0) > 10 * se_w + 0.2  # 1.64: the unlike controls' outcomes (5) weigh 10x
    ate, _, clipped_ate = aipw_from_nuisances("ATE", y, a, const, const, e1, 1 - e1, clip=0.01)
    assert clipped_ate == int((~x).sum())  # the ATE divides by e1: it must hold it to the clip
    fit = propensity_fit("t", a, e1, 1 - e1, 0.01, cross_fitted=False, estimand="ATT")
    assert fit["share_clipped"] == 0.0


def test_between_fold_se_sees_member_to_member_differences_the_influence_function_misses():
    """With fixed nuisances the between-fold SE estimates the influence function's variance (same size);
    when each fold's member has its own error (an outcome offset, with a wrong propensity so that AIPW
    does not remove it), the fold estimates spread and the between-fold SE exceeds the influence
    function's, which treats the nuisances as fixed and cannot see it."""
    rng = np.random.default_rng(0)
    n, k = 20000, 5
    x = rng.integers(0, 2, n)
    e = np.where(x == 1, 0.7, 0.3)
    a = (rng.random(n) < e).astype(int)
    y = 0.5 * a + x + rng.normal(size=n)
    fold = rng.integers(0, k, n)
    mu1, mu0 = 0.5 + x.astype(float), x.astype(float)
    est, se_if, _ = aipw_from_nuisances("ATE", y, a, mu1, mu0, e, 1 - e)
    se_f = between_fold_se("ATE", y, a, mu1, mu0, e, 1 - e, fold)
    thetas = [
        aipw_from_nuisances(
            "ATE", y[fold == j], a[fold == j], mu1[fold == j], mu0[fold == j], e[fold == j], 1 - e[fold == j]
        )[0]
        for j in range(k)
    ]
    assert se_f == pytest.approx(np.std(thetas, ddof=1) / math.sqrt(k))
    assert 0.3 < se_f / se_if < 2.5  # both estimate the same variance (K = 5: a noisy estimate)
    offset = np.array([-0.3, -0.15, 0.0, 0.15, 0.3])[fold]  # each member's own outcome error
    wrong = np.full(n, 0.2)
    _, se_if2, _ = aipw_from_nuisances("ATE", y, a, mu1 + offset, mu0 - offset, wrong, 1 - wrong)
    se_f2 = between_fold_se("ATE", y, a, mu1 + offset, mu0 - offset, wrong, 1 - wrong, fold)
    assert se_f2 > 3 * se_if2
    assert between_fold_se("ATE", y, a, mu1, mu0, e, 1 - e, np.full(n, -1)) is None  # no folds: no rule
    att = between_fold_se("ATT", y, a, mu1, mu0, e, 1 - e, fold)
    assert att is not None and att > 0


def test_propensity_fit_flags_an_overconfident_propensity_and_not_a_calibrated_one():
    """A propensity that is the true one beats the arms' frequencies in log loss and gives no warning; one
    that is confident and unrelated to the treatment (an overfit conditional scored out of fold) loses to
    them, warns, and its clipped rows are counted. The doubly robust estimate with it is much noisier."""
    from hf_causal import CausalWarning
    from hf_causal.inference.diagnostics import propensity_fit

    rng = np.random.default_rng(1)
    n = 4000
    x = rng.integers(0, 2, n)
    e = np.where(x == 1, 0.7, 0.3)
    a = (rng.random(n) < e).astype(int)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        good = propensity_fit("t", a, e, 1 - e, clip=0.01, cross_fitted=True)
    assert not [w for w in caught if issubclass(w.category, CausalWarning)]
    assert good["log_loss"] < good["log_loss_marginal"] - 0.05 and good["share_clipped"] == 0
    wild = np.where(rng.random(n) < 0.5, 0.005, 0.995)  # confident, and unrelated to a
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bad = propensity_fit("t", a, wild, 1 - wild, clip=0.01, cross_fitted=True)
    said = " | ".join(str(w.message) for w in caught if issubclass(w.category, CausalWarning))
    assert "worse than the arms' frequencies (cross-fitted log loss" in said
    assert "4000 of 4000 rows have a propensity of 't' outside [0.01, 0.99]" in said
    assert bad["log_loss"] > bad["log_loss_marginal"] and bad["share_clipped"] == 1.0
    y = 0.5 * a + x + rng.normal(size=n)
    mu1, mu0 = 0.5 + x.astype(float), x.astype(float)
    _, se_good, _ = aipw_from_nuisances("ATE", y, a, mu1, mu0, e, 1 - e)
    _, se_bad, _ = aipw_from_nuisances("ATE", y, a, mu1, mu0, wild, 1 - wild)
    assert se_bad > 3 * se_good


def test_platt_calibration_undoes_an_overconfident_propensity():
    """An overconfident propensity sigmoid(4x) of a treatment drawn with sigmoid(x): Platt scaling recovers the
    slope 1/4 and the true propensity, and with a wrong (constant) outcome model only the calibrated
    propensity gives the exact ATE back; the overconfident one misses it by many standard errors."""
    from hf_causal.inference.doubly_robust import calibrated

    rng = np.random.default_rng(2)
    n = 40000
    x = rng.normal(size=n)
    e = 1 / (1 + np.exp(-x))
    a = (rng.random(n) < e).astype(int)
    y = 1.0 * a + 2 * x + rng.normal(size=n)  # ATE 1
    wild = 1 / (1 + np.exp(-4 * x))
    cal, slope, intercept = calibrated(wild, a == 1)
    assert abs(slope - 0.25) < 0.02 and abs(intercept) < 0.05 and np.abs(cal - e).max() < 0.03
    const = np.full(n, y.mean())
    est_bad, se_bad, _ = aipw_from_nuisances("ATE", y, a, const, const, wild, 1 - wild)
    cal0, _, _ = calibrated(1 - wild, a == 0)
    est_cal, se_cal, _ = aipw_from_nuisances("ATE", y, a, const, const, cal, cal0)
    assert abs(est_cal - 1.0) < 3 * se_cal + 0.02
    assert abs(est_bad - 1.0) > 10 * se_cal  # the overconfident weights leave the confounding in
    assert np.allclose(cal + cal0, 1, atol=1e-6)  # for a binary treatment the two arms' fits agree


def test_engine_aipw_on_the_demo_is_close_to_exact(demo_engine, demo_world_):
    rows = demo_world_.sample(20000, seed=0)  # the demo model's own rows: no crossfit for a single model
    exact = demo_world_.ate(Y, T, 1, 0)
    dr = demo_engine.ate(Y, T, 1, 0, data=rows, estimator="aipw")
    assert dr.interval_kind == "influence_function" and dr.details["clipped_rows"] == 0
    fit = dr.details["propensity"]  # the demo's treatment depends on age and severity: the read-out beats the rates
    assert fit["scored"] == "not cross-fitted" and fit["log_loss"] < fit["log_loss_marginal"] - 0.02
    assert abs(dr.estimate - exact) < 0.04 and dr.ci_low < exact < dr.ci_high
    naive = demo_world_.naive_expectation(Y, T, 1) - demo_world_.naive_expectation(Y, T, 0)
    assert abs(naive - exact) > 0.1  # the confounded difference in means would miss
    att = demo_engine.att(Y, T, 1, 0, data=rows, estimator="aipw")
    assert abs(att.estimate - demo_world_.att(Y, T, 1, 0)) < 0.05
    assert att.estimand == f"ATT (doubly robust, AIPW): E[{Y}({T}=1) - {Y}({T}=0) | {T}=1]"
    cate = demo_engine.cate(Y, T, 1, 0, given={"age": "old"}, data=rows, estimator="aipw")
    assert abs(cate.estimate - demo_world_.cate(Y, T, 1, 0, {"age": "old"})) < 0.06


def test_aipw_refusals(tiny_engine, demo_world_):
    from hf_causal import DataError, QueryError, UnsupportedQueryError

    rows = demo_world_.sample(50, seed=0)
    with pytest.raises(UnsupportedQueryError, match="works on data rows"):
        tiny_engine.ate(Y, T, 1, 0, estimator="aipw")
    with pytest.raises(DataError, match=r"no column\(s\) \['recovery'\]"):
        tiny_engine.ate(Y, T, 1, 0, data=rows.drop(columns=[Y]), estimator="aipw")
    with pytest.raises(QueryError, match="estimator must be one of"):
        tiny_engine.ate(Y, T, 1, 0, data=rows, estimator="tmle")
    with pytest.raises(UnsupportedQueryError, match="numeric outcome or event"):
        tiny_engine.ate("age", T, 1, 0, data=rows, estimator="aipw")


def test_aipw_refuses_an_untrained_propensity(tiny_engine, demo_world_, monkeypatch):
    """A model trained with loss_variables=[outcome] has a random treatment conditional: a doubly robust
    estimate on it would divide by noise, so it is refused (the plug-in still answers)."""
    from hf_causal import UnsupportedQueryError

    rows = demo_world_.sample(50, seed=0)
    monkeypatch.setattr(tiny_engine.config, "loss_variables", [Y])
    with pytest.raises(UnsupportedQueryError, match=r"propensity p\(treatment \| covariates\).*untrained"):
        tiny_engine.ate(Y, T, 1, 0, data=rows, estimator="aipw")
    monkeypatch.setattr(tiny_engine.config, "loss_variables", [T, Y])
    assert np.isfinite(tiny_engine.ate(Y, T, 1, 0, data=rows, estimator="aipw").estimate)


def test_single_model_answers_say_their_interval_is_monte_carlo_only(tiny_engine, capsys, tiny_model_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = tiny_engine.ate(Y, T, 1, 0, num_samples=50)
        d = tiny_engine.query(Y, do={T: 1}, num_samples=50)
    assert est.interval_kind == "monte_carlo_only" and d.to_dict()["interval_kind"] == "monte_carlo_only"
    assert est.se_monte_carlo == est.se and est.se_estimation is None
    assert any(
        issubclass(w.category, MonteCarloOnlyWarning) and "Monte Carlo error only" in str(w.message) for w in caught
    )
    from hf_causal.cli import main

    assert (
        main(
            [
                "effect",
                str(tiny_model_dir),
                "--outcome",
                Y,
                "--treatment",
                T,
                "--treated",
                "1",
                "--control",
                "0",
                "--num-samples",
                "20",
            ]
        )
        == 0
    )
    assert "interval: Monte Carlo error only (a single model)" in capsys.readouterr().out


def test_combining_members():
    def est(x, se):
        return Estimate("x", x, se, x - 1.96 * se, x + 1.96 * se, 100, 0, "model", {}, se)

    xs, ses = [0.1, 0.3, 0.2, 0.4], [0.01] * 4
    boot = combine([est(x, s) for x, s in zip(xs, ses)], "bootstrap")
    jack = combine([est(x, s) for x, s in zip(xs, ses)], "crossfit")
    assert boot.estimate == pytest.approx(0.25) and jack.estimate == pytest.approx(0.25)
    assert boot.se_monte_carlo == pytest.approx(0.01 / 2)
    assert boot.se_estimation == pytest.approx(math.sqrt(np.var(xs, ddof=1) - 0.01**2))
    spread = 3 / 4 * sum((x - 0.25) ** 2 for x in xs)
    assert jack.se_estimation == pytest.approx(math.sqrt(spread - 9 / 4 * 0.01**2))
    assert jack.se_estimation > boot.se_estimation  # overlapping folds understate the spread: the jackknife inflates it
    assert boot.ci_high - boot.estimate == pytest.approx(t_quantile(3) * boot.se)


def test_both_arms_of_data_rows_from_one_walk_equal_two_walks(tiny_engine, demo_world_, monkeypatch):
    """With nothing sampled after the treatment, a contrast on data rows walks each row twice side by side
    (one per arm, sharing the covariates' cache slot); its per-row read-outs and propensities are the two
    separate walks' (to float precision), and so are the plug-in and AIPW answers built on them."""
    from hf_causal.inference import estimators

    rows = demo_world_.sample(60, seed=4)
    args = ("biomarker", T, 1, 0, None, 60, 0, "high", rows)
    paired, plans = estimators._arms(tiny_engine, *args)
    assert estimators._read_behind(plans[0], rows, T, "biomarker")  # the one-walk path was taken
    assert not estimators._read_behind(tiny_engine.planner.plan([Y], {T: 1}, None, readout=Y), rows, T, Y)  # a mediator
    # a covariate the rows lack is sampled: two walks share it (one seed), two copies of a row would not
    assert not estimators._read_behind(plans[0], rows.drop(columns="severity"), T, "biomarker")
    kw = {"data": rows, "event": "high", "seed": 0}
    one = [tiny_engine.ate("biomarker", T, 1, 0, **kw).estimate]
    one.append(tiny_engine.att("biomarker", T, 1, 0, estimator="aipw", **kw).estimate)
    monkeypatch.setattr(estimators, "_read_behind", lambda *a: False)
    tiny_engine._nuisance_cache.clear()  # else the AIPW below reuses the one-walk read-outs of the same rows
    separate, _ = estimators._arms(tiny_engine, *args)
    two = [tiny_engine.ate("biomarker", T, 1, 0, **kw).estimate]
    two.append(tiny_engine.att("biomarker", T, 1, 0, estimator="aipw", **kw).estimate)
    for (mu_p, d_p), (mu_s, d_s) in zip(paired, separate):
        np.testing.assert_allclose(mu_p, mu_s, atol=1e-6)
        np.testing.assert_allclose(d_p.forced_logp[T], d_s.forced_logp[T], atol=1e-5)
        assert d_p.plan.do[T] == d_s.plan.do[T]
    assert not np.allclose(paired[0][0], paired[1][0])  # the arms differ: the rows really were forced per arm
    np.testing.assert_allclose(one, two, atol=1e-6)


def test_ate_and_att_on_the_same_rows_score_them_once(tiny_engine, demo_world_, monkeypatch):
    """The doubly robust read-outs of a row set are kept on the engine: the ATT after the ATE of the same
    rows scores nothing, and gives what a fresh scoring gives; other rows, a changed cell or another seed
    are scored again."""
    from hf_causal.inference import estimators

    calls = []
    arms = estimators._arms
    monkeypatch.setattr(estimators, "_arms", lambda *a, **k: calls.append(1) or arms(*a, **k))
    rows = demo_world_.sample(80, seed=6)
    tiny_engine._nuisance_cache.clear()
    tiny_engine.ate(Y, T, 1, 0, data=rows, estimator="aipw")
    att = tiny_engine.att(Y, T, 1, 0, data=rows, estimator="aipw")
    assert len(calls) == 1
    tiny_engine._nuisance_cache.clear()
    fresh = tiny_engine.att(Y, T, 1, 0, data=rows, estimator="aipw")
    assert len(calls) == 2 and (fresh.estimate, fresh.se) == (att.estimate, att.se)
    changed = rows.copy()
    changed.loc[0, "age"] = "old" if changed.loc[0, "age"] != "old" else "young"
    for kw in ({"data": rows.iloc[:70]}, {"data": changed}, {"data": rows, "seed": 1}):
        tiny_engine.ate(Y, T, 1, 0, estimator="aipw", **kw)
    assert len(calls) == 5  # the content of the rows is the key, not the object


def test_the_demo_report_says_what_its_intervals_cover(tiny_engine, bootstrap_dir, demo_world_, capsys):
    """``hf-causal demo`` printed ±1.96 se under a bare header, and the model card the same, for a single model
    whose interval is Monte Carlo only: the printed intervals must say what they cover, once."""
    from hf_causal.demo import card_rows, compare, print_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        single = compare(tiny_engine, demo_world_, num_samples=200)
    assert not [w for w in caught if issubclass(w.category, MonteCarloOnlyWarning)]  # said under the tables
    print_report(single)
    out = capsys.readouterr().out
    assert single["interval_kind"] == "monte_carlo_only" and "Monte Carlo error only (one model)" in out
    ate = single["estimands"]["ATE"]["engine"]
    assert f"{(ate['ci_high'] - ate['ci_low']) / 2:8.4f}" in out
    assert all("(Monte Carlo only)" in r["engine"] for r in card_rows(single) if not r["query"].startswith("TV"))

    ens = compare(CausalEngine.from_pretrained(bootstrap_dir), demo_world_, num_samples=200)
    print_report(ens)
    out = capsys.readouterr().out
    assert ens["interval_kind"] == "estimation+monte_carlo" and "Monte Carlo error only" not in out
    assert "estimation and Monte Carlo error (3 ensemble members)" in out
    ate = ens["estimands"]["ATE"]["engine"]  # Student's t with K - 1 df, not 1.96
    assert (ate["ci_high"] - ate["ci_low"]) / 2 == pytest.approx(t_quantile(2) * ate["se"])
    assert f"{(ate['ci_high'] - ate['ci_low']) / 2:8.4f}" in out
    assert all("estimation + Monte Carlo, 3 members" in r["engine"] for r in card_rows(ens) if "TV" not in r["query"])

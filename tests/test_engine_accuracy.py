"""The engine against exact answers (enumeration of the demo SCM), with tolerances that the
naive, confounded estimate violates -- so each test could fail."""

import json

import numpy as np
import pytest

from hf_causal import CausalEngine, train
from hf_causal.cli import main as cli_main
from hf_causal.metrics import tv_distance
from hf_causal.worlds import demo_world

TV_TOL = 0.03
Y, T = "recovery", "treatment"


@pytest.mark.parametrize("a", [0, 1])
def test_interventional_distribution_is_exact_up_to_fit(demo_engine, demo_world_, a):
    d = demo_engine.query(Y, do={T: a}, num_samples=4000, seed=0)
    exact = demo_world_.distribution(Y, do={T: a})
    naive = demo_world_.naive_distribution(Y, T, a)
    rows = demo_world_.sample(20000, seed=0)  # the training rows: the naive estimate a user would compute
    sel = rows[rows[T] == a][Y]
    naive_emp = {k: float((sel == k).mean()) for k in exact}
    tv = tv_distance(d.probs, exact)
    print(f"do({T}={a}): TV engine {tv:.4f}, naive {tv_distance(naive, exact):.4f}, se max {max(d.se.values()):.4f}")
    assert tv <= TV_TOL
    assert tv_distance(naive, exact) > TV_TOL + 0.05  # the confounded answer fails the same test
    assert tv_distance(naive_emp, exact) > TV_TOL + 0.05
    assert max(d.se.values()) < 0.005  # the tolerance is about the model, not Monte Carlo noise
    assert d.n_samples == 4000 and d.seed == 0


def test_ate_att_cate_against_exact(demo_engine, demo_world_):
    w = demo_world_
    exact_ate, exact_att = w.ate(Y, T, 1, 0), w.att(Y, T, 1, 0)
    exact_cate = w.cate(Y, T, 1, 0, {"age": "old", "severity": "severe"})
    naive = w.naive_expectation(Y, T, 1) - w.naive_expectation(Y, T, 0)
    ate = demo_engine.ate(Y, T, 1, 0, num_samples=4000, seed=0)
    att_iw = demo_engine.att(Y, T, 1, 0, num_samples=4000, seed=0)
    att_data = demo_engine.att(Y, T, 1, 0, data=w.sample(4000, seed=11), seed=0)
    cate = demo_engine.cate(Y, T, 1, 0, given={"age": "old", "severity": "severe"}, num_samples=2000)
    print(
        f"ATE {ate.estimate:.4f} vs {exact_ate:.4f}; ATT iw {att_iw.estimate:.4f} data {att_data.estimate:.4f} vs "
        f"{exact_att:.4f}; CATE {cate.estimate:.4f} vs {exact_cate:.4f}; naive {naive:.4f}"
    )
    tol = 0.03
    assert abs(ate.estimate - exact_ate) < tol
    assert abs(att_iw.estimate - exact_att) < tol
    assert abs(att_data.estimate - exact_att) < tol
    assert abs(cate.estimate - exact_cate) < tol
    assert abs(naive - exact_ate) > 10 * tol  # confounding flips the sign here
    assert ate.ci_low < ate.estimate < ate.ci_high and ate.n_samples == 4000
    assert att_iw.details["effective_sample_size"] > 1000
    assert att_data.details["treated_rows"] == int((w.sample(4000, seed=11)[T] == 1).sum())
    # both ATTs say that they average over the treated units, which a difference of do-means would not
    assert att_iw.estimand == att_data.estimand == f"ATT: E[{Y}({T}=1) - {Y}({T}=0) | {T}=1]"


def test_sign_convention_is_treated_minus_control(demo_engine, demo_world_):
    fwd = demo_engine.ate(Y, T, treated=1, control=0, num_samples=500, seed=3)
    rev = demo_engine.ate(Y, T, treated=0, control=1, num_samples=500, seed=3)
    assert demo_world_.ate(Y, T, 1, 0) > 0.2 and fwd.estimate > 0.2  # the treatment helps
    assert fwd.estimate == pytest.approx(-rev.estimate, abs=1e-9)
    assert fwd.estimate == pytest.approx(fwd.details["mean_treated"] - fwd.details["mean_control"], abs=1e-9)


def test_event_probability_effect(demo_engine, demo_world_):
    est = demo_engine.ate(Y, T, 1, 0, event=2, num_samples=2000)
    exact = demo_world_.distribution(Y, {T: 1})[2] - demo_world_.distribution(Y, {T: 0})[2]
    assert abs(est.estimate - exact) < 0.03


def test_conditional_on_initial_segment(demo_engine, demo_world_):
    given = {"age": "young"}
    d = demo_engine.query(Y, do={T: 0}, given=given, num_samples=2000)
    exact = demo_world_.distribution(Y, do={T: 0}, given=given)
    marginal = demo_world_.distribution(Y, do={T: 0})
    assert tv_distance(d.probs, exact) < TV_TOL < tv_distance(marginal, exact)


def test_save_load_identical_and_cli_json_matches(demo_engine, tmp_path, capsys):
    demo_engine.save_pretrained(tmp_path / "copy")
    again = CausalEngine.from_pretrained(tmp_path / "copy")
    a = demo_engine.query(Y, do={T: 1}, num_samples=300, seed=4)
    b = again.query(Y, do={T: 1}, num_samples=300, seed=4)
    assert a.probs == b.probs and a.se == b.se
    assert (
        cli_main(
            [
                "query",
                str(tmp_path / "copy"),
                "--target",
                Y,
                "--do",
                f"{T}=1",
                "--num-samples",
                "300",
                "--seed",
                "4",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out == json.loads(json.dumps(a.to_dict()))
    assert set(out["probabilities"]) == {"0", "1", "2"} and {"p", "se"} <= set(out["probabilities"]["1"])
    e = demo_engine.ate(Y, T, 1, 0, num_samples=300, seed=4)
    assert (
        cli_main(
            [
                "effect",
                str(tmp_path / "copy"),
                "--outcome",
                Y,
                "--treatment",
                T,
                "--treated",
                "1",
                "--control",
                "0",
                "--num-samples",
                "300",
                "--seed",
                "4",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(e.to_dict()))


@pytest.fixture(scope="module")
def continuous_engine(tmp_path_factory):
    out = tmp_path_factory.mktemp("cont")
    train(
        {
            "world": "demo-continuous",
            "world_rows": 10000,
            "num_train_epochs": 12,
            "learning_rate": 3e-3,
            "output_dir": str(out),
            "logging_steps": 100000,
        }
    )
    return CausalEngine.from_pretrained(out)


def test_continuous_outcome(continuous_engine):
    w = demo_world(continuous=True)
    tol = 0.2  # days; the outcome's sd given its parents is 1.5, the confounding gap is > 1.5
    for a in (0, 1):
        est = continuous_engine.expectation("stay", do={T: a}, num_samples=4000)
        exact, naive = w.expectation("stay", do={T: a}), w.naive_expectation("stay", T, a)
        print(f"E[stay | do({a})] {est.estimate:.3f} vs {exact:.3f} (naive {naive:.3f}, se {est.se:.3f})")
        assert abs(est.estimate - exact) < tol < abs(naive - exact)
    ate = continuous_engine.ate("stay", T, 1, 0, num_samples=4000)
    naive_ate = w.naive_expectation("stay", T, 1) - w.naive_expectation("stay", T, 0)
    assert abs(ate.estimate - w.ate("stay", T, 1, 0)) < tol < abs(naive_ate - w.ate("stay", T, 1, 0))
    draws = continuous_engine.sample(2000, do={T: 1}, seed=1, variables=["stay"])["stay"]
    assert draws.nunique() > 1000  # dequantized: real numbers, not 32 bin values
    assert abs(draws.mean() - w.expectation("stay", do={T: 1})) < 0.3


def test_bert_decoder(tmp_path_factory, demo_world_):
    out = tmp_path_factory.mktemp("bert")
    train(
        {
            "world": "demo",
            "world_rows": 6000,
            "architecture": "bert",
            "num_train_epochs": 10,
            "learning_rate": 3e-3,
            "output_dir": str(out),
            "logging_steps": 100000,
        }
    )
    eng = CausalEngine.from_pretrained(out)
    assert eng.model.config.is_decoder and eng.model.config.model_type == "bert"
    for a in (0, 1):
        d = eng.query(Y, do={T: a}, num_samples=4000)
        exact = demo_world_.distribution(Y, do={T: a})
        print(f"BERT do({a}) TV {tv_distance(d.probs, exact):.4f}")
        assert tv_distance(d.probs, exact) <= TV_TOL < tv_distance(demo_world_.naive_distribution(Y, T, a), exact)


def test_given_with_data_contexts_uses_matching_rows(demo_engine, demo_world_):
    """Contexts from data must follow p(x | given): rows are filtered on the given values."""
    w = demo_world_
    rows = w.sample(6000, seed=21)
    d = demo_engine.query(Y, do={T: 1}, given={"age": "old"}, data=rows, seed=0)
    exact = w.distribution(Y, do={T: 1}, given={"age": "old"})
    # what ignoring the filter would estimate: severity from all patients instead of old ones
    p_sev = rows["severity"].value_counts(normalize=True)
    parts = {s: w.distribution(Y, do={T: 1}, given={"age": "old", "severity": s}) for s in p_sev.index}
    unfiltered = {k: sum(p_sev[s] * parts[s][k] for s in p_sev.index) for k in exact}
    assert d.confounder_source == "data" and d.n_samples == int((rows["age"] == "old").sum())
    assert tv_distance(d.probs, exact) < TV_TOL < tv_distance(unfiltered, exact)
    with pytest.raises(Exception, match="data has no column 'age'"):
        demo_engine.ate(Y, T, 1, 0, given={"age": "old"}, data=rows.drop(columns=["age"]))


def test_individual_effects_are_per_row_cates(demo_engine, demo_world_):
    """Each row's effect is the CATE at its own pre-treatment context (age, severity); the mediator
    between treatment and outcome is summed out exactly, so one draw per row suffices."""
    w = demo_world_
    rows = w.sample(300, seed=5)
    ite = demo_engine.individual_effects(Y, T, 1, 0, data=rows, seed=0)
    exact = [w.cate(Y, T, 1, 0, {"age": a, "severity": s}) for a, s in zip(rows["age"], rows["severity"])]
    err = abs(ite - exact)
    const = abs(w.ate(Y, T, 1, 0) - np.asarray(exact))  # what a per-row answer that ignored x would miss by
    print(f"individual effects: mean error {err.mean():.4f} (max {err.max():.4f}); constant ATE {const.mean():.4f}")
    assert ite.shape == (300,)
    assert err.mean() < 0.025 < 0.035 < const.mean()  # heterogeneous effects: the constant answer fails
    assert err.max() < 0.08  # the rarest strata are the least accurate (27 old-mild rows: 0.055)
    twice = demo_engine.individual_effects(Y, T, 1, 0, data=rows, draws_per_row=2, seed=0)
    assert abs(twice - ite).max() < 1e-5  # nothing random left to average once the mediator is summed out
    with pytest.raises(ValueError, match="draws_per_row"):
        demo_engine.individual_effects(Y, T, 1, 0, data=rows, draws_per_row=0)

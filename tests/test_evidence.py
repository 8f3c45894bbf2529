"""Evidence anywhere in the order, by likelihood weighting (issue #17), checked against exact answers."""

import warnings

import numpy as np
import pytest

from hf_causal import UnsupportedQueryError
from hf_causal.metrics import tv_distance

Y, T = "recovery", "treatment"
TOL = 0.03


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def test_mid_order_covariate(demo_engine, demo_world_):
    """P(Y | do(T=1), severity=severe): severity is not an initial segment (age comes first and depends on it)."""
    d = _quiet(demo_engine.query, Y, do={T: 1}, given={"severity": "severe"}, num_samples=8000, seed=0)
    exact = demo_world_.distribution(Y, do={T: 1}, given={"severity": "severe"})
    ignoring = demo_world_.distribution(Y, do={T: 1})  # the answer without the evidence
    assert tv_distance(d.probs, exact) < TOL < tv_distance(ignoring, exact)
    assert 1000 < d.diagnostics["effective_sample_size"] < 8000 and "likelihood weighting" in d.diagnostics["weights"]
    for k in exact:  # the interval is the weighted one, and it is honest about the Monte Carlo part
        assert d.se[k] > 0


def test_mediator_after_the_treatment(demo_engine, demo_world_):
    """P(Y | do(T=1), biomarker=high): evidence on a descendant of the intervened variable."""
    d = _quiet(demo_engine.query, Y, do={T: 1}, given={"biomarker": "high"}, num_samples=8000, seed=1)
    exact = demo_world_.distribution(Y, do={T: 1}, given={"biomarker": "high"})
    naive = demo_world_.distribution(Y, given={T: 1, "biomarker": "high"})  # observational conditioning
    assert tv_distance(d.probs, exact) < TOL < tv_distance(naive, exact)
    assert tv_distance(demo_world_.distribution(Y, do={T: 1}), exact) > TOL


def test_evidence_after_the_target(demo_engine, demo_world_):
    """P(severity | readmitted=1): the target is sampled (not read out), since the evidence depends on it."""
    d = _quiet(demo_engine.query, "severity", given={"readmitted": 1}, num_samples=8000, seed=2)
    exact = demo_world_.distribution("severity", given={"readmitted": 1})
    assert tv_distance(d.probs, exact) < TOL < tv_distance(demo_world_.distribution("severity"), exact)


def test_cate_on_a_mid_order_covariate(demo_engine, demo_world_):
    est = _quiet(demo_engine.cate, Y, T, 1, 0, given={"severity": "severe"}, num_samples=8000, seed=3)
    exact = demo_world_.cate(Y, T, 1, 0, {"severity": "severe"})
    ate = demo_world_.ate(Y, T, 1, 0)
    assert abs(est.estimate - exact) < TOL < abs(ate - exact)
    assert est.details["effective_sample_size"] > 1000


def test_unlikely_evidence_is_refused_with_the_ess(tiny_engine):
    eng = tiny_engine
    old = eng.min_ess
    try:
        eng.min_ess = 10**9  # no draw count can satisfy it
        with pytest.raises(UnsupportedQueryError, match=r"effective sample size of the likelihood weights is \d"):
            eng.query(Y, do={T: 1}, given={"severity": "severe"}, num_samples=50)
    finally:
        eng.min_ess = old
    # prefix conditioning stays exact and unweighted
    d = _quiet(eng.query, Y, do={T: 1}, given={"age": "old"}, num_samples=50)
    assert "effective_sample_size" not in d.diagnostics


def test_weighted_mean_formula():
    from hf_causal.inference.estimators import weighted_mean

    f = np.array([1.0, 0.0, 1.0, 1.0])
    w = np.array([1.0, 3.0, 1.0, 1.0])
    m, se = weighted_mean(f, w)
    assert m == pytest.approx(0.5)
    assert se == pytest.approx(np.sqrt((1 * 0.5) ** 2 * 3 + (3 * 0.5) ** 2) / 6)


def test_individual_effects_for_rows_with_mid_order_covariates(demo_engine, demo_world_):
    """Rows that give only severity (age, before it in the order, is missing): each row's draws are weighted
    by the model's p(severity | sampled age); the answer is the CATE given severity, not the ATE."""
    import pandas as pd

    rows = pd.DataFrame({"severity": ["severe", "mild"]})
    ie = demo_engine.individual_effects(Y, T, 1, 0, data=rows, seed=0)
    exact = [demo_world_.cate(Y, T, 1, 0, {"severity": s}) for s in rows.severity]
    ate = demo_world_.ate(Y, T, 1, 0)
    assert np.abs(ie - exact).max() < TOL < min(abs(e - ate) for e in exact)


def test_weighted_sample_resamples_or_returns_weights(demo_engine, demo_world_):
    exact = demo_world_.distribution(Y, do={T: 1}, given={"biomarker": "high"})
    df = _quiet(demo_engine.sample, 6000, do={T: 1}, given={"biomarker": "high"}, seed=0)
    assert tv_distance(df[Y].value_counts(normalize=True).to_dict(), exact) < TOL
    assert df.attrs["weights_mode"] == "resample" and df.attrs["effective_sample_size"] > 1000
    dw = _quiet(demo_engine.sample, 6000, do={T: 1}, given={"biomarker": "high"}, seed=0, weights="column")
    assert dw["weight"].sum() == pytest.approx(1.0)
    assert tv_distance(dw.groupby(Y)["weight"].sum().to_dict(), exact) < TOL
    # unweighted, the draws are P(Y | do(T=1)) and miss the evidence
    assert tv_distance(dw[Y].value_counts(normalize=True).to_dict(), exact) > TOL


def test_continuous_evidence_means_its_bin(tiny_continuous_model_dir):
    """A value of a binned variable stands for its bin, and the answer says which (``stay`` comes after the
    treatment, so it is weighted evidence here)."""
    from hf_causal import CausalEngine

    eng = CausalEngine.from_pretrained(tiny_continuous_model_dir)
    var = eng.graph["stay"]
    mid = float((var.edges[10] + var.edges[11]) / 2)
    d = _quiet(eng.query, Y, do={T: 1}, given={"stay": mid}, num_samples=300)
    note = d.diagnostics["evidence_bins"]["stay"]
    assert "means its bin" in note and f"{var.edges[10]:.4g}" in note
    assert "stay" in d.diagnostics["weights"]

"""The benchmarks' shared helpers that decide what a table reports (``benchmarks._common``)."""

import pytest

from benchmarks._common import record_options, reusable


def test_reuse_loads_only_a_model_trained_with_the_same_options(tmp_path):
    mdir = tmp_path / "model_rep3"
    options = {"rep": 3, "epochs": 150, "loss_variables": ("treat", "y"), "ensemble": 5}
    assert reusable(mdir, options) is False  # nothing saved: train it
    mdir.mkdir()
    (mdir / "causal_config.json").write_text("{}")
    with pytest.raises(SystemExit, match="no record of its options"):
        reusable(mdir, options)  # a folder from before the record: cannot tell what it is
    record_options(mdir, options)
    assert reusable(mdir, options) is True  # tuples compare as their JSON lists
    with pytest.raises(SystemExit, match=r"ensemble: trained with 5, asked for 0"):
        reusable(mdir, {**options, "ensemble": 0})
    with pytest.raises(SystemExit, match=r"dropout: trained with None, asked for 0.1"):
        reusable(mdir, {**options, "dropout": 0.1})


def test_the_coverage_oracle_recovers_the_exact_effects_that_the_naive_contrast_misses():
    """The coverage benchmark's oracle AIPW row (the world's exact nuisances) must be right, or the width it
    reports as the bound would be a wrong yardstick."""
    from benchmarks.coverage import _exact, _oracle_aipw
    from hf_causal.worlds import get_world

    world = get_world("demo")
    r = world.roles
    args = (r["outcome"], r["treatment"], r["treated"], r["control"], r["subgroup"])
    exact = _exact(world, *args)
    rows = world.sample(20_000, seed=3)
    oracle = _oracle_aipw(world, rows, *args)
    y, t = rows[r["outcome"]].astype(float), rows[r["treatment"]]
    naive = y[t == 1].mean() - y[t == 0].mean()
    for estimand, (est, lo, hi) in oracle.items():
        se = (hi - lo) / (2 * 1.96)
        assert abs(est - exact[estimand]) < 3 * se, (estimand, est, exact[estimand], se)
        assert se < 0.03  # 20,000 rows: a tolerance the confounded contrast (0.46 off) cannot meet
    assert abs(naive - exact["ATE"]) > 10 * (oracle["ATE"][2] - oracle["ATE"][1]) / 3.92


def test_the_ihdp_oracle_rebuilds_the_outcome_functions_and_sits_at_the_noise_floor():
    """The IHDP benchmark's oracle AIPW (the exact outcome functions) is the floor it reports for any AIPW on
    those rows: the rebuilt functions must leave exactly the generator's unit noise, and the oracle's error
    against the in-sample ATE must be that noise weighted by 1 / e, no more. Over the 10 replications it must
    beat the naive difference in means, which the confounded treatment assignment biases."""
    import numpy as np

    from benchmarks.ihdp import load_ihdp, oracle_aipw, surface_b_means

    oracle_err, naive_err = [], []
    for rep in range(10):
        df, tau = load_ihdp(rep)
        mu0, mu1 = surface_b_means(rep)
        t, y = df["treat"].to_numpy(), df["y"].to_numpy()
        noise = y - np.where(t == 1, mu1, mu0)
        est, se = oracle_aipw(df, mu0, mu1)
        e = t.mean()
        # exact outcome functions leave AIPW nothing but its residual term: the noise weighted by 1 / e
        assert est - tau.mean() == pytest.approx(np.mean(t * noise / e - (1 - t) * noise / (1 - e)), abs=1e-9)
        oracle_err.append(abs(est - tau.mean()))
        naive_err.append(abs(y[t == 1].mean() - y[t == 0].mean() - tau.mean()))
        if rep in (0, 4):  # 4 has the largest outcomes (max 66)
            assert 0.9 < noise.std() < 1.1 and abs(noise.mean()) < 0.15  # N(0, 1), as econml draws it
            swapped = y - np.where(t == 1, mu0, mu1)
            assert swapped.std() > 2  # the arms the other way round would not leave unit noise
            floor = np.sqrt((t / e**2 + (1 - t) / (1 - e) ** 2).sum()) / len(t)  # sd of the noise term
            assert 0.08 < floor < 0.11
            assert abs(est - tau.mean()) < 3 * floor, (rep, est, tau.mean(), floor)
            assert se > floor  # its se is for the population ATE: the effects' spread over units adds to it
    assert np.mean(oracle_err) < 0.6 * np.mean(naive_err), (np.mean(oracle_err), np.mean(naive_err))


def test_the_ihdp_code_floor_is_exact_through_fine_bins_and_costs_through_coarse_ones():
    """The IHDP row 'outcome code, exact means' codes each arm's exact outcome distribution into bins: through
    bins far finer than the noise it must return the true effects, and through 4 quantile bins it must not."""
    import numpy as np

    from benchmarks.ihdp import code_floor_effects, load_ihdp, surface_b_means

    df, tau = load_ihdp(4)
    mu0, mu1 = surface_b_means(4)
    lo, hi = df["y"].min() - 60, df["y"].max() + 60
    fine = np.linspace(lo, hi, 4001)
    t_fine = code_floor_effects(mu0, mu1, fine, (fine[:-1] + fine[1:]) / 2)
    assert np.sqrt(np.mean((t_fine - tau) ** 2)) < 0.05
    q = np.quantile(df["y"], [0, 0.25, 0.5, 0.75, 1])
    coarse_means = [df["y"][(df["y"] >= a) & (df["y"] <= b)].mean() for a, b in zip(q[:-1], q[1:])]
    t_coarse = code_floor_effects(mu0, mu1, q, coarse_means)
    assert np.sqrt(np.mean((t_coarse - tau) ** 2)) > 1.0

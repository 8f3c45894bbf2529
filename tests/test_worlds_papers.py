"""The paper world (issue #7): exact effects from the text, checked by simulation; the bias that
adjusting for the structured covariates alone leaves."""

import numpy as np
import pytest

from benchmarks.baselines import papers_covariate_adjusted_att, papers_naive_difference, papers_stratified_effects
from hf_causal.errors import DataError, HfCausalError
from hf_causal.worlds import get_world
from hf_causal.worlds.papers import BUZZWORDS, PaperWorld

N = 8000


@pytest.fixture(scope="module", params=["simple", "interaction"])
def world_and_rows(request):
    w = PaperWorld(setting=request.param)
    return w, w.sample(N, seed=0)


def test_rows_and_text(world_and_rows):
    w, df = world_and_rows
    assert list(df.columns) == w.graph.order == ["venue", "authors", "abstract", "keyword", "accepted"]
    assert df["authors"].between(1, 8).all() and set(df["venue"]) == {"acl", "neurips", "iclr"}
    words = df["abstract"].str.split().map(len)
    assert words.min() >= 8 and words.max() <= 60
    assert all(t.endswith(".") and t[0].isupper() for t in df["abstract"].head(50))
    assert w.buzz("A deep, neural model; we outperform baselines. Deep again.") == 3
    # the propensity is the stated function of the words, and the treatment follows it
    p = w.propensity(df["abstract"].tolist())
    assert np.allclose(p, 0.1 + 0.6 * df["abstract"].map(w.buzz) / len(BUZZWORDS))
    lo, hi = p < 0.2, p > 0.4
    assert df["keyword"][lo].mean() < 0.2 < 0.4 < df["keyword"][hi].mean()
    assert get_world("papers", setting="interaction").setting == "interaction"
    with pytest.raises(HfCausalError, match="setting"):
        PaperWorld(setting="other")


def test_true_effects_agree_with_simulated_interventions(world_and_rows):
    """ATE and ATT from the exact per-paper probabilities vs the paired arms do(keyword=1), do(keyword=0)."""
    w, df = world_and_rows
    truth = w.true_effects(df)
    y1 = w.sample(N, seed=0, do={"keyword": 1})
    y0 = w.sample(N, seed=0, do={"keyword": 0})
    assert (y1["abstract"] == df["abstract"]).all() and (y0["abstract"] == df["abstract"]).all()
    diff = y1["accepted"].to_numpy(float) - y0["accepted"].to_numpy(float)
    treated = df["keyword"].to_numpy() == 1
    for name, d in (("ATE", diff), ("ATT", diff[treated])):
        se = d.std(ddof=1) / np.sqrt(len(d))
        assert abs(d.mean() - truth[name]) < 4 * se, (name, d.mean(), truth[name], se)
    assert truth["ATE"] > 0.05 and truth["ATT"] > 0.05
    if w.setting == "interaction":
        assert truth["ATE"] - truth["ATT"] > 0.01  # the setting where ATT and ATE differ


def test_confounding_lives_in_the_text(world_and_rows):
    w, df = world_and_rows
    att = w.true_effects(df)["ATT"]
    naive = papers_naive_difference(df)
    covariates_only = papers_covariate_adjusted_att(df)
    buzz = df.assign(buzz=df["abstract"].map(w.buzz))
    from_text = papers_covariate_adjusted_att(buzz, by=["buzz"])  # what the abstract reveals
    assert naive - att > 0.15 and covariates_only - att > 0.15  # adjusting for venue/authors leaves the bias
    assert abs(from_text - att) < 0.03  # adjusting for the text's confounder removes it
    # coverage of the stratified estimate, and clear errors for estimands the data cannot give
    strat = papers_stratified_effects(buzz, by="buzz")
    assert strat["ATT"] == from_text and 0.9 < strat["rows_used"] <= 1.0 and 0.9 < strat["treated_used"] <= 1.0
    with pytest.raises(DataError, match="no column"):
        papers_stratified_effects(df, by="topic")
    with pytest.raises(DataError, match="treated and control"):
        papers_naive_difference(df[df["keyword"] == 1])
    with pytest.raises(DataError, match="both treated and control"):
        papers_stratified_effects(df[df["keyword"] == 1])

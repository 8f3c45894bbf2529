import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_causal.codecs import ContinuousCodec, codec_for
from hf_causal.graph import GraphError, Variable

CAT = Variable(name="c", type="categorical", values=["a", "b c", 0, 1, True])
INT = Variable(name="i", type="integer", min=-3, max=12)
SEQ = Variable(name="s", type="sequence", alphabet=["U", "D", "L", "R"], max_length=8)


@given(st.sampled_from(CAT.values))
def test_categorical_round_trip(v):
    c = codec_for(CAT)
    out = c.decode(c.encode(v))
    assert out == v and type(out) is type(v)


@given(st.integers(-3, 12))
def test_integer_round_trip(v):
    c = codec_for(INT)
    assert c.decode(c.encode(v)) == v


@given(st.lists(st.sampled_from(["U", "D", "L", "R"]), max_size=8))
def test_sequence_round_trip(seq):
    c = codec_for(SEQ)
    assert c.decode(c.encode(seq)) == seq
    assert len(c.encode(seq)) == len(seq)


def test_sequence_overflow_policies():
    with pytest.raises(GraphError, match=r"'s': sequence of length 9 exceeds max_length 8"):
        codec_for(SEQ).encode(["U"] * 9)
    trunc = Variable(name="t", type="sequence", alphabet=["U"], max_length=2, overflow="truncate")
    assert codec_for(trunc).decode(codec_for(trunc).encode(["U"] * 5)) == ["U", "U"]


@settings(deadline=None, max_examples=60)
@given(st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=20, max_size=300), st.integers(2, 40), st.data())
def test_continuous_round_trip_within_resolution(train, bins, data):
    var = Variable(name="y", type="continuous", bins=bins)
    c = ContinuousCodec(var).fit(train)
    x = data.draw(st.floats(min(train), max(train)))
    tok = c.encode(x)
    assert len(tok) == 1
    # decoding returns the bin mean; a uniform draw within the bin when given an rng
    k = c.bin_of(x)
    lo, hi = var.edges[k], var.edges[k + 1]
    assert abs(c.decode(tok) - x) <= c.resolution() + 1e-9
    assert lo - 1e-9 <= c.decode(tok, np.random.default_rng(0)) <= hi + 1e-9


def test_continuous_resolution_is_small_for_smooth_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=20000)
    c = ContinuousCodec(Variable(name="y", type="continuous", bins=32)).fit(x)
    inner = np.quantile(x, [0.05, 0.95])
    e = np.asarray(c.var.edges)
    widths = np.diff(e)[(e[:-1] >= inner[0]) & (e[1:] <= inner[1])]
    assert widths.max() < 0.25  # in units of the sd (1/32 of the mass per bin)
    # bin means reproduce the mean of the data exactly (they partition it)
    counts = np.bincount([c.bin_of(v) for v in x], minlength=c.n_bins)
    assert abs(np.dot(counts, c.var.bin_means) / len(x) - x.mean()) < 1e-9


def test_unfitted_continuous_codec_refuses():
    with pytest.raises(GraphError, match="not fitted"):
        ContinuousCodec(Variable(name="y", type="continuous")).encode(1.0)


def test_missing_as_value():
    var = Variable(name="m", type="categorical", values=[0, 1], missing="as_value")
    c = codec_for(var)
    assert c.encode(None) == ["<m?>"] and c.decode(["<m?>"]) is None
    assert "<m?>" in c.value_tokens()

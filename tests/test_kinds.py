import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_causal.errors import DataError
from hf_causal.graph import Variable
from hf_causal.kinds import KINDS
from hf_causal.kinds.continuous import bin_of, n_bins, resolution

CAT = Variable(name="c", type="categorical", values=["a", "b c", 0, 1, True])
INT = Variable(name="i", type="integer", min=-3, max=12)
SEQ = Variable(name="s", type="sequence", alphabet=["U", "D", "L", "R"], max_length=8)


@given(st.sampled_from(CAT.values))
def test_categorical_round_trip(v):
    out = CAT.decode(CAT.encode(v))
    assert out == v and type(out) is type(v)


@given(st.integers(-3, 12))
def test_integer_round_trip(v):
    assert INT.decode(INT.encode(v)) == v


@given(st.lists(st.sampled_from(["U", "D", "L", "R"]), max_size=8))
def test_sequence_round_trip(seq):
    assert SEQ.decode(SEQ.encode(seq)) == seq
    assert len(SEQ.encode(seq)) == len(seq)


def test_sequence_overflow_policies():
    with pytest.raises(DataError, match=r"'s': sequence of length 9 exceeds max_length 8"):
        SEQ.encode(["U"] * 9)
    trunc = Variable(name="t", type="sequence", alphabet=["U"], max_length=2, overflow="truncate")
    assert trunc.decode(trunc.encode(["U"] * 5)) == ["U", "U"]


@settings(deadline=None, max_examples=60)
@given(st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=20, max_size=300), st.integers(2, 40), st.data())
def test_continuous_round_trip_within_resolution(train, bins, data):
    unfitted = Variable(name="y", type="continuous", bins=bins)
    var = unfitted.fit(train)
    assert unfitted.edges is None  # fitting returns a new variable; the spec is not changed
    x = data.draw(st.floats(min(train), max(train)))
    tok = var.encode(x)
    assert len(tok) == 1
    # decoding returns the bin mean; a uniform draw within the bin when given an rng
    k = bin_of(var, x)
    lo, hi = var.edges[k], var.edges[k + 1]
    assert abs(var.decode(tok) - x) <= resolution(var) + 1e-9
    assert lo - 1e-9 <= var.decode(tok, np.random.default_rng(0)) <= hi + 1e-9


def test_continuous_resolution_is_small_for_smooth_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=20000)
    var = Variable(name="y", type="continuous", bins=32).fit(x)
    inner = np.quantile(x, [0.05, 0.95])
    e = np.asarray(var.edges)
    widths = np.diff(e)[(e[:-1] >= inner[0]) & (e[1:] <= inner[1])]
    assert widths.max() < 0.25  # in units of the sd (1/32 of the mass per bin)
    # bin means reproduce the mean of the data exactly (they partition it)
    counts = np.bincount([bin_of(var, v) for v in x], minlength=n_bins(var))
    assert abs(np.dot(counts, var.bin_means) / len(x) - x.mean()) < 1e-9


def test_unfitted_continuous_variable_refuses():
    with pytest.raises(DataError, match="no fitted bins"):
        Variable(name="y", type="continuous").encode(1.0)


def test_missing_as_value():
    var = Variable(name="m", type="categorical", values=[0, 1], missing="as_value")
    assert var.encode(None) == ["<m?>"] and var.decode(["<m?>"]) is None
    assert "<m?>" in var.value_tokens()
    assert var.value_keys() == [0, 1, None] and np.isnan(var.numbers()[-1])


def test_every_kind_is_registered_from_its_own_module():
    import hf_causal.kinds as kinds

    assert set(KINDS) == {"categorical", "integer", "continuous", "sequence", "text"}
    for name, kind in KINDS.items():
        assert type(kind).__module__ == f"{kinds.__name__}.{name}"  # one file per kind
    assert KINDS["text"].base_vocabulary and not KINDS["sequence"].base_vocabulary
    assert KINDS["sequence"].variable_length and KINDS["integer"].single_token

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

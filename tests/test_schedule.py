"""``schedule: auto`` (issue #19): the epochs chosen on held-out rows, then a refit on all rows."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from hf_causal import RecipeError
from hf_causal.schedule import MIN_EPOCHS, batch_size, best_epoch, max_epochs, refit_epochs


def test_best_epoch_is_the_lowest_held_out_loss():
    hist = [{"loss": 1.0, "epoch": 0.5}, {"eval_loss": 0.9, "epoch": 1.0}, {"eval_loss": 0.7, "epoch": 2.0}]
    hist += [{"eval_loss": 0.8, "epoch": 3.0}, {"train_loss": 0.5, "epoch": 3.0}]
    assert best_epoch(hist) == (2, 0.7)
    with pytest.raises(ValueError, match="no evaluation"):
        best_epoch([{"loss": 1.0, "epoch": 1.0}])


def test_epoch_limit_follows_the_step_budget():
    # more rows -> fewer epochs; the cap (a num_train_epochs the user set) wins
    assert max_epochs(2000, 32) > max_epochs(20000, 128) >= 10
    assert max_epochs(200000, 128) == 10 and max_epochs(100, 32) == 150
    assert max_epochs(2000, 32, cap=7) == 7
    assert batch_size(4999) == 32 and batch_size(5000) == 128
    # the refit trains at least MIN_EPOCHS (the held-out NLL is flat long before the mechanisms converge)
    assert refit_epochs(3) == MIN_EPOCHS and refit_epochs(MIN_EPOCHS + 5) == MIN_EPOCHS + 5
    assert refit_epochs(3, cap=8) == 8


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 300)
    t = (rng.random(300) < 0.3 + 0.4 * z).astype(int)
    y = (rng.random(300) < 0.2 + 0.3 * t + 0.3 * z).astype(int)
    d = tmp_path_factory.mktemp("sched")
    pd.DataFrame({"z": z, "t": t, "y": y}).to_csv(d / "rows.csv", index=False)
    (d / "dag.txt").write_text("dag { z -> t; z -> y; t -> y }")
    return d


def test_auto_searches_the_epochs_then_refits_on_all_rows(table, tmp_path, capsys):
    from hf_causal.cli import main

    out = tmp_path / "model"
    argv = ["train", "--graph", str(table / "dag.txt"), "--data", str(table / "rows.csv"), "--output_dir", str(out)]
    argv += ["--num_train_epochs", "8", "--n_embd", "16", "--n_layer", "1", "--logging_steps", "1000"]
    assert main(argv) == 0  # no recipe: auto is the default
    assert "schedule auto: the held-out NLL was best after" in capsys.readouterr().out
    m = json.loads((out / "causal_config.json").read_text())["metrics"]
    s = m["schedule"]
    assert s["mode"] == "auto" and s["held_out_rows"] == 30 and s["search_rows"] == 270
    assert s["search_epoch_limit"] == 8  # num_train_epochs set by the user caps the search
    assert 1 <= s["best_epoch"] <= s["search_epochs_run"] <= 8
    assert s["num_train_epochs"] == 8 and s["per_device_train_batch_size"] == 32  # max(best, 12), capped at 8
    # the refit: a fresh model on all 300 rows for num_train_epochs, with no held-out set left
    assert m["train_rows"] == 300 and "eval_nll_per_variable" not in m
    assert m["train_steps"] == math.ceil(300 / 32) * 8
    assert not (out / ".schedule.json").exists() and not (out / ".schedule-search").exists()
    assert s["model"] == {"n_layer": 1, "n_embd": 16, "n_head": 4}  # the size the user set is kept and recorded


def test_auto_sizes_a_from_scratch_model_by_the_row_length(caplog):
    """Up to WIDE_ROW_TOKENS tokens a row: 2 x 64; a longer row: 2 x 128; a size the user set, or a
    pretrained base, is left alone."""
    from types import SimpleNamespace

    from hf_causal import CausalGraph
    from hf_causal.schedule import WIDE_ROW_TOKENS, choose_model, model_size, row_tokens

    def graph(n, seq=False):
        v = {f"x{i}": {"type": "categorical", "values": [0, 1, 2]} for i in range(n)}
        if seq:
            v["moves"] = {"type": "sequence", "alphabet": ["U", "D"], "max_length": 70}
        return CausalGraph.from_dict({"variables": v, "edges": []})

    assert row_tokens(graph(6)) == 12 and row_tokens(graph(2, seq=True)) == 4 + 72
    assert model_size(graph(WIDE_ROW_TOKENS // 2))["n_embd"] == 64
    assert model_size(graph(WIDE_ROW_TOKENS // 2 + 1))["n_embd"] == 128
    assert model_size(graph(2, seq=True))["n_embd"] == 128  # a long sequence variable makes a long row
    args = SimpleNamespace(base_model=None, n_layer=2, n_embd=64, n_head=4)
    with caplog.at_level("WARNING"):
        assert choose_model(args, graph(40), set())["n_embd"] == 128 and args.n_embd == 128
    assert "model auto: 2 layers x 128" in caplog.text
    args = SimpleNamespace(base_model=None, n_layer=3, n_embd=32, n_head=2)
    assert choose_model(args, graph(20), {"n_embd"}) == {"n_layer": 3, "n_embd": 32, "n_head": 2}
    assert choose_model(SimpleNamespace(base_model="bert", n_layer=1, n_embd=1, n_head=1), graph(20), set()) is None


def test_recipes_keep_their_fixed_schedule(table, tmp_path):
    from hf_causal import train

    recipe = {"graph": str(table / "dag.txt"), "data": str(table / "rows.csv"), "output_dir": str(tmp_path / "m")}
    out = train({**recipe, "num_train_epochs": 2, "n_embd": 16, "n_layer": 1, "per_device_train_batch_size": 100})
    m = json.loads((out / "causal_config.json").read_text())["metrics"]
    assert m["schedule"] == {"mode": "fixed", "num_train_epochs": 2.0, "per_device_train_batch_size": 100}
    assert m["train_steps"] == 2 * math.ceil(m["train_rows"] / 100)
    with pytest.raises(RecipeError, match="eval_fraction > 0"):
        train({**recipe, "schedule": "auto", "eval_fraction": 0, "num_train_epochs": 1})
    with pytest.raises(RecipeError, match="schedule must be 'fixed' or 'auto'"):
        train({**recipe, "schedule": "sometimes"})

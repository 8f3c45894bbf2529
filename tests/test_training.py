"""Training: recipes, bad inputs (clear errors, nothing half-written), atomic saves, NLL report."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hf_causal import ArtefactError, CausalEngine, GraphError, HfCausalError, RecipeError, train
from hf_causal.cli import main as cli_main
from hf_causal.recipes import parse_recipe

ROOT = Path(__file__).resolve().parents[1]
GRAPH = {
    "variables": {
        "Z": {"type": "categorical", "values": ["no", "yes"]},
        "A": {"type": "categorical", "values": [0, 1]},
        "moves": {"type": "sequence", "alphabet": ["U", "D"], "max_length": 3},
        "note": {"type": "text", "max_length": 4},
        "Y": {"type": "integer", "min": 0, "max": 3},
    },
    "edges": [["Z", "A"], ["A", "moves"], ["moves", "Y"], ["Z", "Y"], ["Z", "note"]],
}
ROWS = pd.DataFrame(
    {
        "Z": ["no", "yes"] * 20,
        "A": [0, 1, 1, 0] * 10,
        "moves": ["U D", "D", "", "U U D"] * 10,
        "note": ["good day", "bad day"] * 20,
        "Y": [0, 1, 2, 3] * 10,
    }
)
FAST = {"num_train_epochs": 1, "n_embd": 16, "logging_steps": 100000}
# exactly one plain SGD step on all the rows, nothing that rescales it (clipping, schedule, warm-up)
ONE_SGD_STEP = {"max_steps": 1, "optim": "sgd", "max_grad_norm": 0.0, "lr_scheduler_type": "constant"}
ONE_SGD_STEP.update(warmup_steps=0, eval_fraction=0.0, seed=3)


def assert_same_step(reference: dict, other: dict, start: dict) -> None:
    """``other`` (weights) took ``reference``'s step from ``start``, to 1e-3 of its largest move, which is real."""
    moved = max(float((reference[k] - start[k]).abs().max()) for k in reference)
    assert moved > 1e-3  # the step did something
    for k in reference:
        diff = float((reference[k] - other[k]).abs().max())
        assert diff < 1e-3 * moved, (k, diff, moved)


def _run(tmp_path, graph=GRAPH, rows=ROWS, **kw):
    data = tmp_path / "rows.csv"
    rows.to_csv(data, index=False)
    return train({"graph": graph, "data": str(data), "output_dir": str(tmp_path / "out"), **FAST, **kw})


def _assert_nothing_written(tmp_path):
    out = tmp_path / "out"
    assert not (out / "causal_config.json").exists()
    assert not out.exists() or not any(out.iterdir())
    assert not list(tmp_path.glob(".out.partial-*"))


def test_trains_and_reports_nll_per_variable(tmp_path):
    out = _run(tmp_path, eval_fraction=0.25)
    cfg = json.loads((out / "causal_config.json").read_text())
    nll = cfg["metrics"]["eval_nll_per_variable"]
    assert set(nll) == {"Z", "A", "moves", "note", "Y", "total"}
    assert all(v > 0 for v in nll.values())
    assert abs(sum(v for k, v in nll.items() if k != "total") - nll["total"]) < 1e-3
    assert cfg["hf_causal_version"] and cfg["format_version"] == 1 and cfg["order_policy"] == "canonical"
    assert (out / "model.safetensors").exists() and not list(out.glob("*.bin")) and not list(out.glob("*.pt"))
    eng = CausalEngine.from_pretrained(out)
    assert eng.sample(3, seed=0).shape == (3, 5)


def test_nll_per_variable_counts_what_loss_variables_trains(tmp_path):
    """A variable's held-out NLL is the loss its mechanism is trained on with ``loss_variables: [it]``: the
    predictions made at its tokens (its value and its end), as the collator labels them. The text's end event
    belongs to the text; attributed by the labelled token instead, it would land on the next variable."""
    import torch
    from datasets import Dataset

    from hf_causal.sequencify import Sequencifier
    from hf_causal.training import CausalDataCollator, evaluate_nll

    eng = CausalEngine.from_pretrained(_run(tmp_path))
    seq = Sequencifier(eng.tokenizer)
    ids, seg = zip(*(seq.encode_row(r) for r in ROWS.head(8).to_dict("records")))
    ds = Dataset.from_dict({"input_ids": list(ids), "segment_ids": list(seg)})
    names = list(eng.graph.order)
    nll = evaluate_nll(eng.model, ds, names, eng.tokenizer.pad_id)
    feats = [{"input_ids": x, "segment_ids": g} for x, g in zip(ids, seg)]
    with torch.no_grad():
        for j, name in enumerate(names):
            b = CausalDataCollator(eng.tokenizer.pad_id, loss_segments=[j], with_segments=True)(feats)
            logits = eng.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1]
            ce = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), b["labels"][:, 1:].reshape(-1), reduction="sum"
            )
            assert abs(float(ce) / len(feats) - nll[name]) < 1e-4, name
            if name == "note":  # attributed by the labelled token's own variable, the text's end would be Y's
                lp = torch.log_softmax(logits, -1).gather(-1, b["input_ids"][:, 1:, None])[..., 0]
                own = b["segment_ids"][:, 1:] == j
                assert abs(float(-(lp * own).sum()) / len(feats) - nll[name]) > 1e-3


def test_random_order_policy_walks_only_what_a_query_needs(tmp_path):
    out = _run(tmp_path, order_policy="random")
    eng = CausalEngine.from_pretrained(out)
    assert eng.config.order_policy == "random"
    # trained on every topological order, the engine can put the target's ancestors first and stop:
    # canonical order would walk Z, A, moves before reaching note
    assert eng.planner.plan(["note"], None, {"Z": "yes"}).order == ["Z", "note"]
    assert list(eng.sample(4, given={"Z": "yes"}, variables=["note"]).columns) == ["note"]
    (tmp_path / "c").mkdir()
    # full attention: a canonical mechanism model (attention: local) would walk the ancestors only, too
    canonical = CausalEngine.from_pretrained(_run(tmp_path / "c", order_policy="canonical", attention="full"))
    assert canonical.planner.plan(["note"], None, {"Z": "yes"}).order == ["Z", "A", "moves", "note"]


@pytest.mark.parametrize(
    "graph_edit, rows_edit, message",
    [
        (lambda g: g["edges"].append(["Y", "Z"]), None, r"cycle: .*Z.*Y|cycle: .*Y.*Z"),
        (lambda g: g["edges"].append(["Q", "Y"]), None, r"edge Q -> Y: variable 'Q' is not declared"),
        (
            lambda g: g["variables"].update({"Q": {"type": "categorical", "values": [0]}}),
            None,
            r"no column for variable\(s\) Q",
        ),
        (None, lambda r: r.assign(A=[0, 5] * 20), r"row 1: variable 'A': value '?5'? is not one of \[0, 1\]"),
        (None, lambda r: r.assign(Y=[0, 9] * 20), r"row 1: variable 'Y': value 9 is outside the declared range 0..3"),
        (None, lambda r: r.assign(Z=["no", None] * 20), r"row 1: variable 'Z': missing value"),
        (None, lambda r: r.assign(moves=["U U U U"] * 40), r"'moves': sequence of length 4 exceeds max_length 3"),
        (
            None,
            lambda r: r.assign(note=["good day bad day good"] * 40),
            r"'note': text has 5 tokens, more than max_length 4",
        ),
    ],
)
def test_bad_input_is_named_and_nothing_is_written(tmp_path, graph_edit, rows_edit, message):
    g = json.loads(json.dumps(GRAPH))
    if graph_edit:
        graph_edit(g)
    rows = rows_edit(ROWS.copy()) if rows_edit else ROWS
    with pytest.raises(HfCausalError, match=message):
        _run(tmp_path, graph=g, rows=rows)
    _assert_nothing_written(tmp_path)


def test_duplicate_variable_in_yaml_list(tmp_path):
    gfile = tmp_path / "g.yaml"
    gfile.write_text(
        yaml.safe_dump(
            {
                "variables": [
                    {"name": "Z", "type": "categorical", "values": [0]},
                    {"name": "Z", "type": "categorical", "values": [1]},
                ]
            }
        )
    )
    with pytest.raises(GraphError, match=r"duplicate variable\(s\): Z"):
        _run(tmp_path, graph=str(gfile))
    _assert_nothing_written(tmp_path)


def test_missing_policy_as_value(tmp_path):
    g = json.loads(json.dumps(GRAPH))
    g["variables"]["Z"]["missing"] = "as_value"
    out = _run(tmp_path, graph=g, rows=ROWS.assign(Z=["no", None] * 20))
    eng = CausalEngine.from_pretrained(out)
    assert None in eng.query("Z", num_samples=4).probs


def test_crash_while_saving_leaves_no_loadable_folder(tmp_path, monkeypatch):
    import hf_causal.modeling

    def boom(model, path):
        (Path(path) / "model.safetensors").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(hf_causal.modeling, "save_weights", boom)
    with pytest.raises(OSError, match="disk full"):
        _run(tmp_path)
    assert not (tmp_path / "out" / "causal_config.json").exists()
    assert not list(tmp_path.glob(".out.*"))  # the temporary folder is gone
    with pytest.raises(ArtefactError, match="not an hf_causal model folder"):
        CausalEngine.from_pretrained(tmp_path / "out")


def test_incompatible_version_is_refused(tmp_path):
    out = _run(tmp_path)
    cfg = json.loads((out / "causal_config.json").read_text())
    cfg["format_version"] = 99
    (out / "causal_config.json").write_text(json.dumps(cfg))
    from hf_causal import IncompatibleVersionError

    with pytest.raises(IncompatibleVersionError, match="format_version 99"):
        CausalEngine.from_pretrained(out)


def test_every_recipe_parses():
    recipes = sorted((ROOT / "recipes").rglob("*.yaml"))
    recipes = [r for r in recipes if "accelerate_configs" not in r.parts]
    assert recipes
    for r in recipes:
        d, m, t = parse_recipe(r)
        assert t.output_dir and (d.world or d.data)


def test_packaged_demo_recipe_matches_the_repo_copy():
    from hf_causal.demo import DEMO_RECIPE

    assert DEMO_RECIPE == yaml.safe_load((ROOT / "recipes/demo/gpt2-tiny.yaml").read_text())


def test_unknown_recipe_key_is_named():
    with pytest.raises(RecipeError, match="unknown recipe key 'learnin_rate'"):
        parse_recipe({"world": "demo", "learnin_rate": 1.0})


def test_cli_train_overrides_and_errors(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"world": "demo", "world_rows": 300, "output_dir": str(tmp_path / "m"), **FAST}))
    assert cli_main(["train", str(recipe), "--n_embd", "8", "--output_dir", str(tmp_path / "m2")]) == 0
    cfg = json.loads((tmp_path / "m2" / "causal_config.json").read_text())
    assert cfg["metrics"]["parameters"] < 20000  # n_embd 8 took effect
    assert "held-out NLL per variable" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"world": "nowhere", "output_dir": str(tmp_path / "m3")}))
    assert cli_main(["train", str(bad)]) == 2
    assert "unknown world 'nowhere'" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "datasets"])
def test_data_formats(tmp_path, fmt):
    import datasets

    rows = ROWS.assign(moves=ROWS["moves"].str.split())  # real lists, not strings
    if fmt == "parquet":
        path = tmp_path / "rows.parquet"
        rows.to_parquet(path)
    elif fmt == "jsonl":
        path = tmp_path / "rows.jsonl"
        rows.to_json(path, orient="records", lines=True)
    else:
        path = tmp_path / "rows_ds"
        datasets.Dataset.from_pandas(rows).save_to_disk(str(path))
    out = train({"graph": GRAPH, "data": str(path), "output_dir": str(tmp_path / "out"), **FAST})
    assert CausalEngine.from_pretrained(out).config.metrics["train_rows"] == 38


def test_early_stopping_keeps_the_best_epoch_and_no_checkpoints(tmp_path):
    out = train(
        {
            "world": "demo",
            "world_rows": 600,
            "eval_fraction": 0.2,
            "num_train_epochs": 60,
            "learning_rate": 0.02,  # large enough to overfit 480 rows quickly, so the held-out loss turns
            "lr_scheduler_type": "constant",
            "early_stopping_patience": 1,
            "output_dir": str(tmp_path / "es"),
            "logging_steps": 10**6,
        }
    )
    m = json.loads((out / "causal_config.json").read_text())["metrics"]
    assert m["epochs_trained"] < 60 and m["best_epoch_eval_loss"] > 0
    assert not list(out.glob("checkpoint-*")) and (out / "model.safetensors").exists()
    eng = CausalEngine.from_pretrained(out)
    assert sum(eng.query("recovery", do={"treatment": 1}, num_samples=50).probs.values()) == pytest.approx(1.0)
    with pytest.raises(RecipeError, match="eval_fraction"):
        train(
            {
                "world": "demo",
                "world_rows": 100,
                "eval_fraction": 0.0,
                "early_stopping_patience": 1,
                "output_dir": str(tmp_path / "bad"),
            }
        )


def test_loss_variables_mask_the_rest_and_the_engine_refuses_to_sample_them(tmp_path):
    from hf_causal import UnsupportedQueryError
    from hf_causal.training import CausalDataCollator

    feats = [
        {"input_ids": [5, 6, 7, 8, 9], "segment_ids": [0, 0, 1, 1, -1]},
        {"input_ids": [5, 6], "segment_ids": [0, 0]},
    ]
    b = CausalDataCollator(0, None, loss_segments=[1])(feats)
    # labels are the predictions made at segment 1's tokens: its value (8) and its end (<eos>, 9); its start
    # token (7) is segment 0's end event, predicted at segment 0's last token
    assert b["labels"].tolist() == [[-100, -100, -100, 8, 9], [-100, -100, -100, -100, -100]]
    assert CausalDataCollator(0, None, loss_segments=[0])(feats)["labels"].tolist()[0] == [-100, 6, 7, -100, -100]
    # without loss_variables every prediction is labelled; the first token is predicted by nothing, so the
    # Trainer's label count (num_items_in_batch) is the number of predictions: 4 + 1, not 5 + 2
    assert CausalDataCollator(0)(feats)["labels"].tolist() == [[-100, 6, 7, 8, 9], [-100, 6, -100, -100, -100]]

    keep = ["treatment", "biomarker", "recovery"]
    common = {"world": "demo", "world_rows": 1500, "num_train_epochs": 2, "logging_steps": 10**6}
    out = train({**common, "loss_variables": keep, "output_dir": str(tmp_path / "m")})
    eng = CausalEngine.from_pretrained(out)
    assert eng.config.loss_variables == keep
    with pytest.raises(UnsupportedQueryError, match=r"cannot sample \['age', 'severity'\]"):
        eng.query("recovery", do={"treatment": 1}, num_samples=10)
    rows = pd.DataFrame({"age": ["old", "young"], "severity": ["mild", "severe"]})
    d = eng.query("recovery", do={"treatment": 1}, data=rows)  # contexts from data: allowed
    assert d.n_samples == 2 and sum(d.probs.values()) == pytest.approx(1.0)
    with pytest.raises(RecipeError, match="loss_variables.*'outcome'"):
        train({**common, "loss_variables": ["outcome"], "output_dir": str(tmp_path / "bad")})
    assert not (tmp_path / "bad" / "causal_config.json").exists()


@pytest.mark.parametrize("attention", ["local", "full"])
def test_gradient_accumulation_takes_the_full_batchs_step(tmp_path, attention):
    """4 rows x 2 accumulated micro-batches make the same SGD step as one batch of 8. The Trainer hands a
    forward that takes **kwargs the label count of the whole step (``num_items_in_batch``) and stops dividing
    by the accumulation steps; a mechanism loss that ignored it made this step twice as long (and, under
    ``accelerate launch``, num_processes times)."""
    from safetensors.torch import load_file

    rows = ROWS.head(8)

    def weights(name, **kw):
        out = _run(tmp_path / name, rows=rows, attention=attention, **ONE_SGD_STEP, **kw)
        return load_file(str(out / "model.safetensors"))

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    start = weights("c", learning_rate=0.0, per_device_train_batch_size=8)
    full = weights("a", learning_rate=0.5, per_device_train_batch_size=8)
    accumulated = weights("b", learning_rate=0.5, per_device_train_batch_size=4, gradient_accumulation_steps=2)
    assert_same_step(full, accumulated, start)
    # and that step is SGD's on the mean loss over the 8 rows' predictions (not over their tokens: the first
    # token of a row is predicted by nothing, and counting it shrank the step by 8 / (tokens of the batch))

    from hf_causal.sequencify import Sequencifier
    from hf_causal.training import CausalDataCollator

    eng = CausalEngine.from_pretrained(tmp_path / "c" / "out")
    ids, seg = zip(*(Sequencifier(eng.tokenizer).encode_row(r) for r in rows.to_dict("records")))
    b = CausalDataCollator(eng.tokenizer.pad_id, with_segments=True)(
        [{"input_ids": x, "segment_ids": g} for x, g in zip(ids, seg)]
    )
    model = eng.model.train()
    for prm in model.parameters():
        prm.requires_grad_(True)
    # the loaded model is the class that training used: with segment ids, a mechanism model's forward is
    # mechanism attention's training loss (a plain class would drop them and run full attention)
    segments = {} if attention == "full" else {"segment_ids": b["segment_ids"]}
    loss = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"], **segments).loss
    loss.backward()
    sgd = {k: start[k] - 0.5 * prm.grad for k, prm in model.named_parameters() if k in full}
    assert set(sgd) == set(full)  # every saved weight is checked against SGD
    assert_same_step(full, sgd, start)

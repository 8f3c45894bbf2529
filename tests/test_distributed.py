"""A real two-process launch (accelerate, gloo on CPU) end to end: train -> save -> push to a
mocked Hub -> load via hf_causal.load and via pipeline() -> identical answers; accurate."""

import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import yaml
from transformers import pipeline

import hf_causal
from hf_causal.metrics import tv_distance

ROOT = Path(__file__).resolve().parents[1]


def test_two_process_training_end_to_end(tmp_path, monkeypatch, demo_world_):
    from test_hub_pipeline import FakeHub

    recipe = yaml.safe_load((ROOT / "recipes/demo/gpt2-tiny.yaml").read_text())
    recipe.update(
        world_rows=10000, per_device_train_batch_size=64, output_dir=str(tmp_path / "m"), logging_steps=100000
    )
    rfile = tmp_path / "recipe.yaml"
    rfile.write_text(yaml.safe_dump(recipe))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    exe = Path(sys.executable).parent / "hf-causal"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hf_causal.cli"]
    r = subprocess.run(
        cmd + ["train", str(rfile), "--accelerate-config", "cpu2"], capture_output=True, text=True, timeout=600, env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((tmp_path / "m" / "causal_config.json").read_text())
    assert cfg["metrics"]["world_size"] == 2  # really two processes, not accelerate's silent single CPU process

    hub = FakeHub(tmp_path / "hub")
    hf_causal.push_to_hub(tmp_path / "m", "someone/demo-ddp", api=hub)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    eng = hf_causal.load("someone/demo-ddp")
    q = {"target": "recovery", "do": {"treatment": 1}}
    d = eng.query("recovery", do={"treatment": 1}, num_samples=2000, seed=5)
    # transformers' pipeline() resolves Hub ids itself (no network here): use the folder laid out as the repo
    repo_dir = hub.snapshot_download("someone/demo-ddp")
    assert pipeline("causal-inference", model=repo_dir)(q, num_samples=2000, seed=5) == d.to_dict()
    assert hf_causal.pipeline(tmp_path / "m")(q, num_samples=2000, seed=5) == d.to_dict()
    exact = demo_world_.distribution("recovery", do={"treatment": 1})
    naive = demo_world_.naive_distribution("recovery", "treatment", 1)
    tol = 0.05  # 10k rows
    assert tv_distance(d.probs, exact) < tol < tv_distance(naive, exact)


def test_monte_carlo_split_across_two_processes_gives_the_same_answer(tiny_model_dir, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "recipes/accelerate_configs/cpu2.yaml"),
        "-m",
        "benchmarks.distributed_query",
        "--model",
        str(tiny_model_dir),
        "--num-samples",
        "3000",
        "--batch-size",
        "256",
        "--out",
        str(tmp_path),
    ]
    r = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    assert r.returncode == 0, r.stderr[-3000:]
    two = json.loads((tmp_path / "distributed_query_2.json").read_text())
    assert two["world_size"] == 2
    one = hf_causal.load(tiny_model_dir, batch_size=256).query(
        "recovery", do={"treatment": 1}, num_samples=3000, seed=0
    )
    ref = json.loads(json.dumps(one.to_dict()))
    assert two["result"]["n_samples"] == ref["n_samples"] == 3000
    for k, v in ref["probabilities"].items():  # same draws; only float summation order (threads) may differ
        assert abs(two["result"]["probabilities"][k]["p"] - v["p"]) < 1e-7
        assert abs(two["result"]["probabilities"][k]["se"] - v["se"]) < 1e-7


def test_two_processes_take_the_one_process_step(tmp_path):
    """Two processes x 4 rows make the same SGD step as one process with all 8 (``attention: local``, the
    mechanism loss). Under a launch the Trainer scales the loss by the number of processes and expects it
    normalised by the label count of the whole step; a mechanism loss that ignored that count stepped 2x."""
    from safetensors.torch import load_file
    from test_training import GRAPH, ONE_SGD_STEP, ROWS, assert_same_step

    data = tmp_path / "rows.csv"
    ROWS.head(8).to_csv(data, index=False)
    base = {"graph": GRAPH, "data": str(data), "attention": "local", "n_embd": 16, **ONE_SGD_STEP}
    base.update(learning_rate=0.5, logging_steps=100000)
    one = {**base, "per_device_train_batch_size": 8, "output_dir": str(tmp_path / "one")}
    hf_causal.train(one)
    rfile = tmp_path / "two.yaml"
    rfile.write_text(  # sort_keys=False: the variables keep their order, and so do the sequences
        yaml.safe_dump({**base, "per_device_train_batch_size": 4, "output_dir": str(tmp_path / "two")}, sort_keys=False)
    )
    exe = Path(sys.executable).parent / "hf-causal"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hf_causal.cli"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(
        cmd + ["train", str(rfile), "--accelerate-config", "cpu2"], capture_output=True, text=True, timeout=600, env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((tmp_path / "two" / "causal_config.json").read_text())["metrics"]["world_size"] == 2
    w1, w2 = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("one", "two"))
    hf_causal.train({**one, "learning_rate": 0.0, "output_dir": str(tmp_path / "start")})
    assert_same_step(w1, w2, load_file(str(tmp_path / "start" / "model.safetensors")))

"""Training killed with SIGKILL resumes from its last checkpoint and ends with the same weights."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from safetensors.torch import load_file

RECIPE = {
    "world": "demo",
    "world_rows": 3000,
    "n_embd": 16,
    "n_layer": 1,
    "num_train_epochs": 2,
    "per_device_train_batch_size": 16,
    "save_strategy": "steps",
    "save_steps": 40,
    "logging_steps": 100000,
    "learning_rate": 3e-3,
    "eval_fraction": 0.05,
}


def _cmd():
    exe = Path(sys.executable).parent / "hf-causal"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hf_causal.cli"]


def _recipe(tmp_path, name):
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(dict(RECIPE, output_dir=str(tmp_path / name))))
    return p


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    killed = _recipe(tmp_path, "killed")
    proc = subprocess.Popen(
        _cmd() + ["train", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.time() + 300
    while time.time() < deadline and not (tmp_path / "killed" / "checkpoint-80" / "trainer_state.json").exists():
        assert proc.poll() is None, "training ended before it could be interrupted"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out = tmp_path / "killed"
    assert not (out / "causal_config.json").exists()  # killed mid-run: no complete model folder
    from hf_causal import ArtefactError, CausalEngine

    try:
        CausalEngine.from_pretrained(out)
        raise AssertionError("an interrupted run must not load as complete")
    except ArtefactError:
        pass
    r = subprocess.run(
        _cmd() + ["train", str(killed), "--resume"], capture_output=True, text=True, env=env, timeout=600
    )
    assert r.returncode == 0, r.stderr[-2000:]
    ref = subprocess.run(
        _cmd() + ["train", str(_recipe(tmp_path, "straight"))], capture_output=True, text=True, env=env, timeout=600
    )
    assert ref.returncode == 0, ref.stderr[-2000:]
    a = load_file(out / "model.safetensors")
    b = load_file(tmp_path / "straight" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-5, k

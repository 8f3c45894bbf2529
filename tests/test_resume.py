"""Training killed with SIGKILL resumes from its last complete checkpoint and ends with the same weights,
and the recorded metrics cover the whole run (issue #14)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
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
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _cmd():
    exe = Path(sys.executable).parent / "hf-causal"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hf_causal.cli"]


def _recipe(tmp_path, name):
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(dict(RECIPE, output_dir=str(tmp_path / name))))
    return p


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The same recipe trained without interruption."""
    tmp = tmp_path_factory.mktemp("straight")
    r = subprocess.run(
        _cmd() + ["train", str(_recipe(tmp, "straight"))], capture_output=True, text=True, env=ENV, timeout=600
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return tmp / "straight"


def _kill_when(proc, condition, what):
    deadline = time.time() + 300
    while time.time() < deadline and not condition():
        assert proc.poll() is None, f"training ended before {what}"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _resume_and_compare(recipe, out, straight):
    from hf_causal import ArtefactError, CausalEngine

    assert not (out / "causal_config.json").exists()  # killed mid-run: no complete model folder
    with pytest.raises(ArtefactError):
        CausalEngine.from_pretrained(out)  # an interrupted run never loads as complete
    r = subprocess.run(
        _cmd() + ["train", str(recipe), "--resume"], capture_output=True, text=True, env=ENV, timeout=600
    )
    assert r.returncode == 0, r.stderr[-2000:]
    a = load_file(out / "model.safetensors")
    b = load_file(straight / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-5, k
    ma = json.loads((out / "causal_config.json").read_text())["metrics"]
    mb = json.loads((straight / "causal_config.json").read_text())["metrics"]
    # the metrics cover the whole run, not only the resumed part
    assert ma["train_steps"] == mb["train_steps"] > 0
    assert ma["train_loss"] == pytest.approx(mb["train_loss"], rel=1e-3) and ma["train_loss"] > 0
    return r


def test_sigkill_then_resume_matches_uninterrupted(tmp_path, straight):
    killed = _recipe(tmp_path, "killed")
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd() + ["train", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
    )
    _kill_when(proc, lambda: (out / "checkpoint-80" / "hf_causal_run.json").exists(), "checkpoint-80")
    _resume_and_compare(killed, out, straight)


# Runs `hf-causal train` with the Trainer's state writer held up once checkpoint-80's weights are on disk,
# so the test can kill the process in the window between the two (which is otherwise a few milliseconds).
HOLD = """
import sys, time
from pathlib import Path
from transformers.trainer_callback import TrainerState
write = TrainerState.save_to_json
def held(self, path):
    if Path(path).parent.name == "checkpoint-80":
        (Path(path).parent.parent / "HELD").write_text("weights written, trainer_state.json not yet")
        time.sleep(600)
    return write(self, path)
TrainerState.save_to_json = held
from hf_causal.cli import main
sys.exit(main(["train", sys.argv[1]]))
"""


def test_kill_while_a_checkpoint_is_written(tmp_path, straight):
    killed = _recipe(tmp_path, "killed")
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
    )
    _kill_when(proc, lambda: (out / "HELD").exists(), "checkpoint-80 was written")
    ck = out / "checkpoint-80"
    assert ck.is_dir() and list(ck.glob("*.safetensors")) and not (ck / "trainer_state.json").exists()
    r = _resume_and_compare(killed, out, straight)
    assert "skipping incomplete checkpoint" in r.stderr and "no trainer_state.json" in r.stderr
    assert "resuming from" in r.stderr and "checkpoint-40" in r.stderr

"""Shared fixtures: offline mode, tiny tokenizers/models, and engines trained once per session."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from hf_causal import CausalEngine, train  # noqa: E402
from hf_causal.worlds import demo_world  # noqa: E402

# transformers deprecations are errors in our own calls (style.md: peft's conftest)
warnings.filterwarnings("error", category=FutureWarning, module="hf_causal.*")

DEMO_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo" / "gpt2-tiny.yaml"


@pytest.fixture(scope="session")
def demo_world_():
    return demo_world()


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory):
    """The demo recipe's model (recipes/demo/gpt2-tiny.yaml): a from-scratch GPT-2 on 19k rows."""
    out = tmp_path_factory.mktemp("demo_gpt2")
    train(DEMO_RECIPE, {"output_dir": str(out), "logging_steps": 100000})
    return out


@pytest.fixture(scope="session")
def demo_engine(demo_model_dir):
    return CausalEngine.from_pretrained(demo_model_dir)


def train_world(out, world: str, rows: int, epochs: float, options: dict | None = None, **overrides):
    """Train a small from-scratch engine on a simulated world (defaults: GPT-2 2 x 64, lr 3e-3 cosine)."""
    recipe = {
        "world": world,
        "world_rows": rows,
        "num_train_epochs": epochs,
        "n_embd": 64,
        "n_layer": 2,
        "learning_rate": 3e-3,
        "lr_scheduler_type": "cosine",
        "per_device_train_batch_size": 64,
        "attention": "full",  # the thresholds of the world tests were measured with it
        "output_dir": str(out),
        "logging_steps": 10**6,
        **overrides,
    }
    if options:
        recipe["world_options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    return train(recipe)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A barely trained demo model for plumbing tests (seconds)."""
    out = tmp_path_factory.mktemp("tiny")
    train(
        {
            "world": "demo",
            "world_rows": 500,
            "num_train_epochs": 1,
            "n_embd": 32,
            "output_dir": str(out),
            "logging_steps": 100000,
        }
    )
    return out


@pytest.fixture(scope="session")
def tiny_continuous_model_dir(tmp_path_factory):
    """A barely trained demo-continuous model (a binned ``stay``) for plumbing tests (seconds)."""
    out = tmp_path_factory.mktemp("tiny_cont")
    train(
        {
            "world": "demo-continuous",
            "world_rows": 400,
            "num_train_epochs": 1,
            "n_embd": 16,
            "output_dir": str(out),
            "logging_steps": 10**6,
        }
    )
    return out


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir):
    return CausalEngine.from_pretrained(tiny_model_dir)


MAZE_OPTIONS = {"sizes": (5,), "max_length": 12, "layout": "trajectory"}
MAZE_ROWS = 3000


@pytest.fixture(scope="session")
def maze_model_dir(tmp_path_factory):
    """A small maze engine (5x5 mazes, at most 12 moves, trajectory layout): about a minute on 2 cores."""
    out = tmp_path_factory.mktemp("maze")
    train_world(out, "maze", MAZE_ROWS, 8, MAZE_OPTIONS)
    return out


CHESS_OPTIONS = {"materials": ["KRK"], "max_plies": 10, "move_format": "piece"}
CHESS_ROWS = 8000


@pytest.fixture(scope="session")
def chess_model_dir(tmp_path_factory):
    """A small chess engine (KRK, games of at most 10 plies, piece moves): under a minute on 2 cores."""
    out = tmp_path_factory.mktemp("chess")
    train_world(out, "chess", CHESS_ROWS, 6, CHESS_OPTIONS)
    return out


PAPERS_OPTIONS = {"setting": "simple"}
PAPERS_ROWS = 2000


@pytest.fixture(scope="session")
def papers_model_dir(tmp_path_factory):
    """A small paper-world engine (GPT-2 2 x 64 from scratch, word-level text vocabulary); only the
    keyword's and acceptance's conditionals are trained: the abstracts of an ATT come from the rows."""
    out = tmp_path_factory.mktemp("papers")
    train_world(
        out,
        "papers",
        PAPERS_ROWS,
        10,
        PAPERS_OPTIONS,
        loss_variables=["keyword", "accepted"],
        per_device_train_batch_size=32,
    )
    return out

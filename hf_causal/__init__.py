"""hf_causal: deep autoregressive models as causal inference engines.

Sequencify rows of a known causal DAG in a topological order, fine-tune one
autoregressive model on them, then answer p(Y | do(A=a)), ATE, ATT and CATE by clamping
the intervened tokens and sampling the rest (Im, Zhang, Verma, Cho; arXiv 2409.18581).

``import hf_causal`` is light: the public names below are imported on first use (torch,
transformers, datasets and peft only when a command needs them), and the ``causal-inference``
pipeline task is registered with transformers as soon as ``transformers.pipelines`` is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from . import _hooks
from .errors import (
    ArtefactError,
    CausalWarning,
    DataError,
    GraphError,
    HfCausalError,
    IncompatibleVersionError,
    QueryError,
    RecipeError,
    UnsupportedQueryError,
)

__version__ = "0.1.0"

_LAZY = {
    "CausalConfig": "config",
    "CausalEngine": "inference",
    "CausalGraph": "graph",
    "CausalInferencePipeline": "pipelines",
    "CausalTokenizer": "tokenization",
    "CausalTrainingArguments": "arguments",
    "DataArguments": "arguments",
    "Distribution": "inference",
    "Estimate": "inference",
    "ModelArguments": "arguments",
    "PartialSequence": "interventions",
    "Sequencifier": "sequencify",
    "Variable": "graph",
    "build_model": "modeling",
    "load": "inference",
    "load_table": "data",
    "parse_recipe": "recipes",
    "pipeline": ("pipelines", "make_pipeline"),
    "push_to_hub": "hub",
    "render_model_card": "hub",
    "run_query": "inference.schema",
    "save_model_card": "hub",
    "start_token": "tokenization",
    "train": "training",
}

__all__ = [
    "ArtefactError",
    "CausalConfig",
    "CausalEngine",
    "CausalGraph",
    "CausalInferencePipeline",
    "CausalTokenizer",
    "CausalTrainingArguments",
    "CausalWarning",
    "DataArguments",
    "DataError",
    "Distribution",
    "Estimate",
    "GraphError",
    "HfCausalError",
    "IncompatibleVersionError",
    "ModelArguments",
    "PartialSequence",
    "QueryError",
    "RecipeError",
    "Sequencifier",
    "UnsupportedQueryError",
    "Variable",
    "build_model",
    "load",
    "load_table",
    "parse_recipe",
    "pipeline",
    "push_to_hub",
    "render_model_card",
    "run_query",
    "save_model_card",
    "start_token",
    "train",
]


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'hf_causal' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


_hooks.register_pipeline_on_transformers_import()

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .arguments import CausalTrainingArguments, DataArguments, ModelArguments
    from .config import CausalConfig
    from .data import load_table
    from .graph import CausalGraph, Variable
    from .hub import push_to_hub, render_model_card, save_model_card
    from .inference import CausalEngine, Distribution, Estimate, load
    from .inference.schema import run_query
    from .interventions import PartialSequence
    from .modeling import build_model
    from .pipelines import CausalInferencePipeline
    from .pipelines import make_pipeline as pipeline
    from .recipes import parse_recipe
    from .sequencify import Sequencifier
    from .tokenization import CausalTokenizer, start_token
    from .training import train

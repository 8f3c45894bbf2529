"""hf_causal: deep autoregressive models as causal inference engines.

Sequencify rows of a known causal DAG in a topological order, fine-tune one
autoregressive model on them, then answer p(Y | do(A=a)), ATE, ATT and CATE by clamping
the intervened tokens and sampling the rest (Im, Zhang, Verma, Cho; arXiv 2409.18581).
"""

__version__ = "0.1.0"

from .codecs import codec_for, start_token
from .config import CausalConfig, IncompatibleVersionError
from .data import load_table
from .engine import CausalEngine, CausalWarning, Distribution, Estimate, UnsupportedQueryError
from .graph import CausalGraph, GraphError, Variable
from .hub import load, push_to_hub, render_model_card, save_model_card
from .interventions import PartialSequence
from .modeling import ModelArguments, build_model, load_model
from .pipeline import CausalInferencePipeline
from .pipeline import make_pipeline as pipeline
from .pipeline import register as _register_pipeline
from .sequencify import Sequencifier
from .tokenization import CausalTokenizer
from .training import CausalTrainingArguments, DataArguments, parse_recipe, train

_register_pipeline()  # pipeline("causal-inference", ...) works after `import hf_causal`


__all__ = [
    "CausalConfig",
    "CausalEngine",
    "CausalGraph",
    "CausalInferencePipeline",
    "CausalTokenizer",
    "CausalTrainingArguments",
    "CausalWarning",
    "DataArguments",
    "Distribution",
    "Estimate",
    "GraphError",
    "IncompatibleVersionError",
    "ModelArguments",
    "PartialSequence",
    "Sequencifier",
    "UnsupportedQueryError",
    "Variable",
    "build_model",
    "codec_for",
    "load",
    "load_model",
    "load_table",
    "parse_recipe",
    "pipeline",
    "push_to_hub",
    "render_model_card",
    "save_model_card",
    "start_token",
    "train",
]

"""The recipe's three argument groups: data, model and training (a ``TrainingArguments`` subclass).

A recipe (:mod:`hf_causal.recipes`) is a flat YAML whose keys are the fields below; each field's
``help`` is what ``hf-causal train --help`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from .attention import ATTENTION_MODES, AUTO_ATTENTION
from .checkpoints import portable_checkpoint, resolve_checkpoint
from .ensemble import EnsembleSpec
from .errors import RecipeError
from .modeling import ARCHITECTURES
from .sequencify import ORDER_POLICIES

__all__ = ["DataArguments", "ModelArguments", "CausalTrainingArguments", "parse_mapping"]


def parse_mapping(value: Any, key: str) -> Any:
    """A mapping given as a YAML/JSON string on the command line, parsed; anything else unchanged."""
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        return value
    import yaml

    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise RecipeError(f"{key}: could not parse {value!r} as a mapping: {e}") from None


@dataclass
class DataArguments:
    """Where the rows come from and how they become sequences."""

    _argument_group_name = "data"

    graph: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "the causal graph: a YAML/JSON spec, a DOT file, a dagitty string (dag { A -> B }), an edge-list "
            "CSV, or an inline mapping (default: the world's graph); kinds it does not declare are inferred from data"
        },
    )
    data: str | None = field(
        default=None, metadata={"help": "the rows: a CSV, Parquet or JSON Lines file, or a saved datasets folder"}
    )
    world: str | None = field(
        default=None, metadata={"help": "a built-in world to simulate rows from (demo, maze, chess, papers, bnlearn)"}
    )
    loss_variables: list[str] | None = field(
        default=None,
        metadata={
            "help": "train only these variables' conditionals (default: all, the joint). With few rows and many "
            "covariates, e.g. [treatment, outcome] spends the model on the mechanisms; queries must then take the "
            "other variables from data (data=...), and the engine refuses to sample them. A variable's conditional "
            "is every prediction made at its tokens, its end included (where a text stops); with mechanism "
            "attention a training step then runs only on what those predictions read"
        },
    )
    world_options: dict[str, Any] | str | None = field(
        default=None, metadata={"help": "keyword arguments of the world, e.g. {sizes: [5, 6], max_length: 32} for maze"}
    )
    world_rows: int = field(default=20000, metadata={"help": "rows to simulate from the world"})
    world_seed: int = field(default=0, metadata={"help": "seed of the simulated rows"})
    eval_fraction: float = field(default=0.05, metadata={"help": "held-out fraction for the per-variable NLL"})
    order_policy: str = field(
        default="canonical", metadata={"help": "canonical or random (one topological order per row)"}
    )
    max_text_vocab: int = field(
        default=8000, metadata={"help": "closed vocabulary: most frequent words of text variables"}
    )
    tokenizer: str | None = field(
        default=None, metadata={"help": "tokenizer to extend (default: base_model's, else closed vocabulary)"}
    )
    ensemble: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "several models in one artefact, e.g. {k: 5, method: bootstrap} (intervals that include "
            "estimation error) or {k: 5, method: crossfit} (doubly robust estimators score each training row with "
            "the member that did not see it); K times the training"
        },
    )

    def __post_init__(self) -> None:
        self.graph = parse_mapping(self.graph, "graph")
        self.ensemble = parse_mapping(self.ensemble, "ensemble")
        if isinstance(self.ensemble, str) and self.ensemble.isdigit():
            self.ensemble = int(self.ensemble)
        EnsembleSpec.parse(self.ensemble)  # fail early
        self.world_options = parse_mapping(self.world_options, "world_options")
        if isinstance(self.loss_variables, str):
            self.loss_variables = [self.loss_variables]
        if self.order_policy not in ORDER_POLICIES:
            raise RecipeError(f"order_policy must be one of {ORDER_POLICIES}, got {self.order_policy!r}")
        if not 0 <= self.eval_fraction < 1:
            raise RecipeError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")


@dataclass
class ModelArguments:
    """How to build the model.

    ``base_model`` set: load that GPT-2/BERT checkpoint, resize its embeddings for the new
    tokens and (``adapter="lora"``, the default then) train LoRA adapters plus the new token
    rows (``trainable_token_indices``, which keeps GPT-2's tied ``wte``/``lm_head`` tied).
    ``base_model`` unset: a fresh model of ``architecture`` with the sizes below, fully trained.
    ``base_model`` is kept in its portable form (``package:...`` or a Hub id), which is what the
    saved folder records.
    """

    _argument_group_name = "model"

    architecture: str = field(
        default="gpt2", metadata={"help": "gpt2 or bert (BERT runs as a decoder, is_decoder=True); from scratch"}
    )
    base_model: str | None = field(
        default=None, metadata={"help": "checkpoint folder, Hub id or package:<module>/<folder>; unset = from scratch"}
    )
    adapter: str | None = field(
        default=None, metadata={"help": "lora or none; default lora with base_model, else none"}
    )
    n_layer: int = field(default=2, metadata={"help": "layers (from scratch)"})
    n_embd: int = field(default=64, metadata={"help": "hidden size (from scratch)"})
    n_head: int = field(default=4, metadata={"help": "attention heads (from scratch)"})
    dropout: float = field(default=0.0, metadata={"help": "dropout (from scratch)"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout"})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "default: c_attn,c_proj (gpt2) / query,value (bert)"}
    )
    attention: str = field(
        default=AUTO_ATTENTION,
        metadata={
            "help": "auto (default: two_stream when a text variable is a parent of another, else local); local "
            "(each variable's tokens read its own segment and its parents' token embeddings only, so an "
            "intervention needs the support of each parent configuration only and a deterministic relation it "
            "breaks does not leak; see hf_causal.mechanisms); two_stream (the parents' within-segment content "
            "streams instead: a text parent read in context); full (causal attention over every earlier token); "
            "parents (a mask to the own and the parents' segments: a variable still reads all its ancestors "
            "through them)"
        },
    )

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise RecipeError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.base_model:
            # fail early if a package checkpoint is missing, but keep the portable name
            self.base_model = portable_checkpoint(self.base_model)
            resolve_checkpoint(self.base_model)
        if self.adapter is None:
            self.adapter = "lora" if self.base_model else "none"
        if self.adapter not in ("lora", "none"):
            raise RecipeError(f"adapter must be 'lora' or 'none', got {self.adapter!r}")
        if self.attention not in (AUTO_ATTENTION, *ATTENTION_MODES):
            raise RecipeError(f"attention must be one of {(AUTO_ATTENTION, *ATTENTION_MODES)}, got {self.attention!r}")
        if self.adapter == "lora" and not self.base_model:
            raise RecipeError("adapter='lora' needs base_model (LoRA on random weights learns little)")


@dataclass
class CausalTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with defaults for small causal models on CPU."""

    _argument_group_name = "training (any transformers.TrainingArguments field)"

    output_dir: str = field(default="outputs/model", metadata={"help": "where the trained model is written"})
    learning_rate: float = field(default=2e-3, metadata={"help": "peak learning rate (AdamW)"})
    num_train_epochs: float = field(default=8.0, metadata={"help": "epochs over the training rows"})
    per_device_train_batch_size: int = field(default=128, metadata={"help": "rows per optimizer step and device"})
    per_device_eval_batch_size: int = field(default=256, metadata={"help": "rows per evaluation batch"})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "learning-rate schedule"})
    warmup_steps: float = field(default=0.02, metadata={"help": "warm-up: steps, or a fraction of them if < 1"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    logging_steps: int = field(default=50, metadata={"help": "log the loss every N steps"})
    save_strategy: str = field(default="no", metadata={"help": "no, steps or epoch: Trainer checkpoints for --resume"})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "experiment trackers (none)"})
    use_cpu: bool = field(default=True, metadata={"help": "train on the CPU (set false for a GPU)"})
    seed: int = field(default=0, metadata={"help": "seed of data preparation and training"})
    disable_tqdm: bool = field(default=True, metadata={"help": "no progress bar"})
    dataloader_num_workers: int = field(default=0, metadata={"help": "data loader processes"})
    early_stopping_patience: int = field(
        default=0,
        metadata={
            "help": "0 = off; N > 0: evaluate the held-out rows (eval_fraction) every epoch, stop after N epochs "
            "without improvement and keep the best epoch's weights (num_train_epochs is then an upper bound)"
        },
    )

    schedule: str | None = field(
        default=None,
        metadata={
            "help": "fixed (num_train_epochs as given) or auto (the epochs chosen on the rows: early stopping on a "
            "held-out tenth finds the best epoch, then a fresh model trains on all rows for that many; see "
            "hf_causal.schedule); default auto for --graph/--data without a recipe, else fixed"
        },
    )

    def __post_init__(self) -> None:
        if self.schedule is not None and self.schedule not in ("fixed", "auto"):
            raise RecipeError(f"schedule must be 'fixed' or 'auto', got {self.schedule!r}")
        if self.early_stopping_patience > 0:
            self.eval_strategy = "epoch"
            self.save_strategy = "epoch"
            self.load_best_model_at_end = True
            self.metric_for_best_model = "eval_loss"
            self.greater_is_better = False
            self.save_total_limit = 1
            self.save_only_model = True
        super().__post_init__()

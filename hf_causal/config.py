"""``causal_config.json``: the single saved truth of a trained engine, beside its weights.

It holds the graph with its fitted bins, the order policy, the token map, the architecture, the
portable name of the base checkpoint, the attention mode and the training figures. Loading reads
it (:mod:`hf_causal.artefact`); nothing else about a folder is inferred from other files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArtefactError, IncompatibleVersionError
from .fileio import atomic_write_text
from .graph import CausalGraph

__all__ = ["CausalConfig", "CONFIG_NAME", "FORMAT_VERSION", "IncompatibleVersionError"]

CONFIG_NAME = "causal_config.json"
FORMAT_VERSION = 1


@dataclass
class CausalConfig:
    """The causal side of a trained model.

    Attributes:
        graph: the graph spec (with fitted continuous bins).
        order_policy: ``canonical`` or ``random`` (orders used in training).
        tokenizer_mode: ``closed`` or ``pretrained``.
        token_map: start/value/pad/eos ids; checked against the tokenizer on load.
        architecture: ``gpt2`` or ``bert``.
        base_model: the portable name of the checkpoint fine-tuned (None when trained from scratch).
        adapter: ``lora`` (a peft adapter beside this file) or ``none`` (full weights).
        attention: the attention the model was trained with: ``local``, ``two_stream``, ``full`` or ``parents`` (:mod:`hf_causal.mechanisms`); artefacts written before the field existed are ``full``.
        seed: the seed of data preparation and training.
        loss_variables: the variables whose tokens were in the training loss (None: all of them).
            The engine refuses to sample any other variable: their conditionals were never learned.
        metrics: held-out NLL per variable and other training figures.
        support: the parent configurations the training rows showed, per variable
            (:func:`hf_causal.support.fit_support`); None for folders written before it existed.
        ensemble: ``{"k", "method", "members"}`` when the folder holds K members (:mod:`hf_causal.ensemble`):
            their weights are in ``members/<j>/``; None for a single model.
    """

    graph: dict[str, Any]
    order_policy: str = "canonical"
    tokenizer_mode: str = "closed"
    token_map: dict[str, Any] = field(default_factory=dict)
    architecture: str = "gpt2"
    base_model: str | None = None
    adapter: str = "none"
    attention: str = "full"
    seed: int = 0
    loss_variables: list[str] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    support: dict[str, Any] | None = None
    ensemble: dict[str, Any] | None = None
    hf_causal_version: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        from .attention import ATTENTION_MODES

        if self.attention not in ATTENTION_MODES:  # a saved model records the mode it was trained with
            raise ArtefactError(
                f"causal_config.json: attention {self.attention!r} is not one of {ATTENTION_MODES} (a model "
                "records the resolved mode; 'auto' is a recipe's choice); the file is corrupt or hand-edited"
            )
        if not self.hf_causal_version:
            from . import __version__

            self.hf_causal_version = __version__

    @property
    def causal_graph(self) -> CausalGraph:
        return CausalGraph.from_dict(self.graph)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False, default=str)

    def save_pretrained(self, path: str | Path) -> None:
        atomic_write_text(Path(path) / CONFIG_NAME, self.to_json() + "\n")

    @classmethod
    def from_pretrained(cls, path: str | Path) -> CausalConfig:
        p = Path(path) / CONFIG_NAME
        if not p.exists():
            raise ArtefactError(
                f"{p} not found: {path} is not an hf_causal model folder (train one with `hf-causal train`)"
            )
        try:
            d = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ArtefactError(f"{p} is not valid JSON ({e}): the file is corrupt; re-download or re-train") from None
        if not isinstance(d, dict):
            raise ArtefactError(f"{p} must hold a JSON object: the file is corrupt; re-download or re-train")
        fv = d.get("format_version")
        if fv != FORMAT_VERSION:
            raise IncompatibleVersionError(
                f"{p} has format_version {fv} (written by hf_causal {d.get('hf_causal_version', '?')}); "
                f"this hf_causal reads format {FORMAT_VERSION}. Install the matching hf_causal version."
            )
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

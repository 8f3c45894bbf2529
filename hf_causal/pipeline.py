"""A ``transformers`` pipeline for causal queries, registered as ``"causal-inference"``.

The task is registered when ``hf_causal`` is imported, so no remote code is needed::

    import hf_causal
    from transformers import pipeline

    pipe = hf_causal.pipeline("outputs/demo")            # adapter or full model folder, or Hub id
    pipe({"target": "recovery", "do": {"treatment": 1}})
    pipe({"effect": "ate", "outcome": "recovery", "treatment": "treatment", "treated": 1, "control": 0})
    pipe([query1, query2], num_samples=4000, seed=0)     # a list batches queries

``pipeline("causal-inference", model=FOLDER_OR_REPO)`` works too, adapters included: the task's
registered model class loads hf_causal folders through :func:`hf_causal.load` (plain
``AutoModelForCausalLM`` would load an adapter's *base* model and tokenizer, losing the
``<start_NAME>`` tokens). A model object without ``causal_config.json`` is refused with the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoModelForCausalLM, Pipeline

from .config import CONFIG_NAME, CausalConfig
from .engine import CausalEngine, UnsupportedQueryError
from .interventions import PartialSequence

__all__ = ["CausalInferencePipeline", "TASK", "register", "make_pipeline"]

TASK = "causal-inference"
_EFFECTS = ("ate", "att", "cate", "expectation")


def _intervention(v: Any) -> Any:
    """JSON ``{"partial": {...}}`` -> :class:`PartialSequence`; anything else unchanged."""
    if isinstance(v, dict) and set(v) == {"partial"}:
        return PartialSequence.from_dict(v["partial"])
    return v


class CausalInferencePipeline(Pipeline):
    """Answers causal queries given as dicts; outputs are JSON-serialisable dicts with standard errors.

    Query forms:
        ``{"target": Y, "do": {...}, "given": {...}}`` -> the distribution of Y;
        ``{"effect": "ate"|"att"|"cate", "outcome": Y, "treatment": A, "treated": a1, "control": a0,
        "given": {...}, "event": v}`` -> an :class:`~hf_causal.engine.Estimate`;
        ``{"effect": "expectation", "target": Y, "do": {...}}`` -> E[Y | do].
    A partial intervention on a sequence variable is written ``{"partial": {"forced": {"0": "U"},
    "length": 4}}`` (see :class:`~hf_causal.interventions.PartialSequence`), in ``do`` or as
    ``treated``/``control``.
    Call options: ``num_samples`` (default 2000), ``seed`` (default 0).
    """

    def __init__(self, model=None, tokenizer=None, engine: CausalEngine | None = None, **kwargs):
        if isinstance(model, CausalEngine):
            engine, model = model, model.model
        if engine is None:
            engine = _engine_from_loaded(model, tokenizer)
        self.engine = engine
        kwargs.pop("task", None)
        super().__init__(
            model=engine.model,
            tokenizer=engine.tokenizer.hf,
            task=TASK,
            device=kwargs.pop("device", engine.device),
            **kwargs,
        )

    def _sanitize_parameters(self, num_samples: int | None = None, seed: int | None = None, **kwargs):
        forward = {}
        if num_samples is not None:
            forward["num_samples"] = int(num_samples)
        if seed is not None:
            forward["seed"] = int(seed)
        return {}, forward, {}

    def preprocess(self, query: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(query, dict):
            raise UnsupportedQueryError(f"a causal query is a dict, got {type(query).__name__}: {query!r}")
        kind = query.get("effect")
        if kind is not None and kind not in _EFFECTS:
            raise UnsupportedQueryError(f"effect must be one of {_EFFECTS}, got {kind!r}")
        if kind is None and "target" not in query:
            raise UnsupportedQueryError(
                "a query needs 'target' (a distribution) or 'effect' (ate/att/cate/expectation)"
            )
        q = dict(query)
        if isinstance(q.get("do"), dict):
            q["do"] = {k: _intervention(v) for k, v in q["do"].items()}
        for k in ("treated", "control"):
            if k in q:
                q[k] = _intervention(q[k])
        return q

    def _forward(self, q: dict[str, Any], num_samples: int = 2000, seed: int = 0) -> dict[str, Any]:
        e = self.engine
        kw = {"num_samples": num_samples, "seed": seed}
        kind = q.get("effect")
        if kind is None:
            res = e.query(q["target"], do=q.get("do"), given=q.get("given"), data=q.get("data"), **kw)
        elif kind == "expectation":
            res = e.expectation(q["target"], do=q.get("do"), given=q.get("given"), event=q.get("event"), **kw)
        elif kind == "ate":
            res = e.ate(
                q["outcome"],
                q["treatment"],
                q["treated"],
                q["control"],
                given=q.get("given"),
                event=q.get("event"),
                data=q.get("data"),
                **kw,
            )
        elif kind == "cate":
            res = e.cate(
                q["outcome"],
                q["treatment"],
                q["treated"],
                q["control"],
                given=q.get("given") or {},
                event=q.get("event"),
                **kw,
            )
        else:
            res = e.att(
                q["outcome"], q["treatment"], q["treated"], q["control"], data=q.get("data"), event=q.get("event"), **kw
            )
        return {"result": res.to_dict()}

    def postprocess(self, out: dict[str, Any]) -> dict[str, Any]:
        return out["result"]


class AutoCausalEngineModel:
    """The model class registered for the task: hf_causal folders (adapters included) load through
    :func:`hf_causal.load` -- base resized for the saved tokenizer, then the adapter -- and carry their
    engine; anything else is ``AutoModelForCausalLM``."""

    @classmethod
    def from_pretrained(cls, name_or_path, *args, **kwargs):
        from .hub import _resolve

        try:
            folder = _resolve(name_or_path, kwargs.get("revision"))
        except Exception:  # noqa: BLE001 - not an hf_causal repo: let transformers try
            folder = None
        if folder is not None and (folder / CONFIG_NAME).exists():
            engine = CausalEngine.from_pretrained(folder)
            engine.model._hf_causal_engine = engine
            return engine.model
        return AutoModelForCausalLM.from_pretrained(name_or_path, *args, **kwargs)


def _engine_from_loaded(model, tokenizer) -> CausalEngine:
    """Build an engine from what ``transformers.pipeline`` loaded, or explain the right path."""
    from .tokenization import CausalTokenizer

    attached = getattr(model, "_hf_causal_engine", None)
    if attached is not None:  # loaded by AutoCausalEngineModel: its own tokenizer, not the base's
        return attached

    path = Path(str(getattr(model, "name_or_path", "") or ""))
    if not (path / CONFIG_NAME).exists():
        raise UnsupportedQueryError(
            f"{path or 'this model'} has no {CONFIG_NAME}. If you passed an hf_causal LoRA adapter, "
            "transformers.pipeline() loaded its base model and base tokenizer, which lack the <start_NAME> "
            "tokens; load it with `hf_causal.pipeline(repo_or_dir)` or "
            "`pipeline('causal-inference', model=hf_causal.load(repo_or_dir))` instead."
        )
    config = CausalConfig.from_pretrained(path)
    if config.adapter == "lora":
        raise UnsupportedQueryError(
            f"{path} holds a LoRA adapter; use `hf_causal.pipeline('{path}')` so the base model is resized for "
            "the saved tokenizer before the adapter is applied"
        )
    tok = CausalTokenizer(config.causal_graph, tokenizer, config.tokenizer_mode)
    return CausalEngine(model, tok, config)


def register() -> None:
    """Register the ``causal-inference`` task with transformers (idempotent; done on import)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    if TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(
            TASK, pipeline_class=CausalInferencePipeline, pt_model=AutoCausalEngineModel
        )


def make_pipeline(repo_or_dir: str | Path, **kwargs) -> CausalInferencePipeline:
    """``pipeline("causal-inference")`` over an hf_causal folder or Hub repo (adapters included)."""
    from transformers import pipeline

    from .hub import load

    engine = load(repo_or_dir)
    return pipeline(TASK, model=engine.model, tokenizer=engine.tokenizer.hf, engine=engine, **kwargs)

"""A ``transformers`` pipeline for causal queries, registered as ``"causal-inference"``.

``import hf_causal`` arranges the registration without importing transformers: the task is
registered when ``transformers.pipelines`` is first imported (or at once, if it already is), so no
remote code is needed::

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
Queries follow :mod:`hf_causal.inference.schema`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from transformers import Pipeline

from .artefact import refuse_remote_code, resolve_folder, tokenizer_for
from .config import CONFIG_NAME, CausalConfig
from .errors import ArtefactError, UnsupportedQueryError
from .inference import CausalEngine, load
from .inference.schema import parse_query, run_query

__all__ = ["CausalInferencePipeline", "TASK", "register", "make_pipeline"]

TASK = "causal-inference"


class CausalInferencePipeline(Pipeline):
    """Answers causal queries given as dicts (:mod:`hf_causal.inference.schema`); outputs are
    JSON-serialisable dicts with standard errors. Call options: ``num_samples`` (default 2000),
    ``seed`` (default 0)."""

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

    def __call__(self, inputs, *args, **kwargs):
        """A list of plain distribution queries (``target``, ``do``, ``given``; no ``data``) is answered through
        :meth:`CausalEngine.query_many`: queries with the same intervention share one walk."""
        if isinstance(inputs, list) and inputs and not args and set(kwargs) <= {"num_samples", "seed"}:
            qs = [parse_query(q) for q in inputs]
            if all(q["kind"] == "distribution" and q.get("data") is None for q in qs):
                many = self.engine.query_many(
                    [{"target": q["target"], "do": q.get("do"), "given": q.get("given")} for q in qs],
                    num_samples=int(kwargs.get("num_samples", 2000)),
                    seed=int(kwargs.get("seed", 0)),
                )
                return [d.to_dict() for d in many]
        return super().__call__(inputs, *args, **kwargs)

    def preprocess(self, query: dict[str, Any]) -> dict[str, Any]:
        return parse_query(query)

    def _forward(self, q: dict[str, Any], num_samples: int = 2000, seed: int = 0) -> dict[str, Any]:
        return {"result": run_query(self.engine, q, num_samples=num_samples, seed=seed).to_dict()}

    def postprocess(self, out: dict[str, Any]) -> dict[str, Any]:
        return out["result"]


class AutoCausalEngineModel:
    """The model class registered for the task: hf_causal folders (adapters included) load through
    :func:`hf_causal.load` -- base resized for the saved tokenizer, then the adapter -- and carry their
    engine. Anything else is refused: the task answers causal queries with hf_causal engines only, and
    loading an arbitrary folder could run its code."""

    @classmethod
    def from_pretrained(cls, name_or_path, *args, **kwargs):
        folder = resolve_folder(name_or_path, kwargs.get("revision"))
        if not (folder / CONFIG_NAME).exists():
            raise ArtefactError(
                f"{name_or_path} has no {CONFIG_NAME}: it is not an hf_causal model folder (train one with "
                "`hf-causal train`)"
            )
        engine = CausalEngine.from_pretrained(folder)
        engine.model._hf_causal_engine = engine
        return engine.model


def _engine_from_loaded(model, tokenizer) -> CausalEngine:
    """Build an engine from what ``transformers.pipeline`` loaded, or explain the right path."""
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
        raise ArtefactError(
            f"{path} holds a LoRA adapter; use `hf_causal.pipeline('{path}')` so the base model is resized for "
            "the saved tokenizer before the adapter is applied"
        )
    return CausalEngine(model, tokenizer_for(config, tokenizer, path), config)


def _guard(pipeline_fn):
    """``transformers.pipeline`` that, for this task only, refuses a folder asking to run its own code
    before transformers reads its config, and passes ``trust_remote_code=False`` (no prompt, ever)."""

    @functools.wraps(pipeline_fn)
    def pipeline(task=None, model=None, *args, **kwargs):
        if task == TASK:
            kwargs.setdefault("trust_remote_code", False)
            if isinstance(model, (str, Path)):
                folder = resolve_folder(model, kwargs.get("revision"))
                refuse_remote_code(folder)
                if not (folder / CONFIG_NAME).exists():
                    raise ArtefactError(
                        f"{model} has no {CONFIG_NAME}: it is not an hf_causal model folder (train one with "
                        "`hf-causal train`)"
                    )
        return pipeline_fn(task, model, *args, **kwargs)

    pipeline._hf_causal_guard = True
    return pipeline


def register() -> None:
    """Register the ``causal-inference`` task with transformers (idempotent), and guard
    ``transformers.pipeline`` for it (see :func:`_guard`)."""
    import transformers
    import transformers.pipelines as tp

    if TASK not in tp.PIPELINE_REGISTRY.get_supported_tasks():
        tp.PIPELINE_REGISTRY.register_pipeline(
            TASK, pipeline_class=CausalInferencePipeline, pt_model=AutoCausalEngineModel
        )
    if not getattr(tp.pipeline, "_hf_causal_guard", False):
        tp.pipeline = _guard(tp.pipeline)
    if "pipeline" in vars(transformers) and not getattr(transformers.pipeline, "_hf_causal_guard", False):
        transformers.pipeline = tp.pipeline


def make_pipeline(repo_or_dir: str | Path, **kwargs) -> CausalInferencePipeline:
    """``pipeline("causal-inference")`` over an hf_causal folder or Hub repo (adapters included)."""
    from transformers import pipeline

    register()
    engine = load(repo_or_dir)
    return pipeline(TASK, model=engine.model, tokenizer=engine.tokenizer.hf, engine=engine, **kwargs)


register()  # importing this module (which imports transformers.pipelines) registers the task

"""Register the ``causal-inference`` pipeline task when transformers' pipelines are imported.

Registration lasts for one process, and importing ``transformers.pipelines`` costs seconds (it pulls
in torch), so ``import hf_causal`` does not import it. Instead a finder on ``sys.meta_path`` watches
for that module and registers the task right after it has executed; if it is already imported, the
task is registered at once.
"""

from __future__ import annotations

import importlib.abc
import sys
import warnings

__all__ = ["register_pipeline_on_transformers_import"]

_TARGET = "transformers.pipelines"


def _register() -> None:
    mod = sys.modules.get(f"{__package__}.pipelines")
    if mod is not None and not hasattr(mod, "register"):
        return  # hf_causal.pipelines is being imported right now; it registers the task itself when done
    try:
        from .pipelines import register

        register()
    except Exception as e:  # noqa: BLE001 - never break the user's transformers import
        warnings.warn(f"hf_causal could not register the 'causal-inference' pipeline: {e}", stacklevel=2)


class _PipelinesFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of ``transformers.pipelines`` so that the task is registered after it runs."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_and_register(module):
            exec_module(module)
            _uninstall()
            _register()

        loader.exec_module = exec_and_register
        return spec


_FINDER = _PipelinesFinder()


def _uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def register_pipeline_on_transformers_import() -> None:
    if _TARGET in sys.modules:
        _register()
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)

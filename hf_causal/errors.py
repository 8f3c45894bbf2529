"""The errors and warnings of hf_causal: one base class, one subclass per thing that can be wrong.

Every error names what failed (the variable, value, file, row or key) and, where there is one,
the fix. Catch :class:`HfCausalError` to catch them all; a traceback of any other exception from
hf_causal is a bug.

========================  =====================================================================
``GraphError``            the causal graph or a variable spec is invalid (cycle, unknown option)
``DataError``             a data file or a value in it does not fit the graph (row, column named)
``RecipeError``           a recipe or training option is invalid (unknown key, bad value)
``ArtefactError``         a saved model folder is missing, corrupt or incompatible
``QueryError``            a query is malformed (unknown variable, value outside its domain)
``UnsupportedQueryError`` a well-formed query the method cannot answer exactly (the reason says why)
``CausalWarning``         answerable, but poorly supported by the data or probably not what was meant
========================  =====================================================================

Example:
    >>> from hf_causal.errors import HfCausalError, QueryError
    >>> issubclass(QueryError, HfCausalError) and issubclass(QueryError, ValueError)
    True
"""

from __future__ import annotations

__all__ = [
    "HfCausalError",
    "GraphError",
    "DataError",
    "RecipeError",
    "ArtefactError",
    "IncompatibleVersionError",
    "QueryError",
    "UnsupportedQueryError",
    "CausalWarning",
]


class HfCausalError(Exception):
    """Base class of every error hf_causal raises on purpose."""


class GraphError(HfCausalError, ValueError):
    """A causal graph or variable spec is invalid; the message names the culprit."""


class DataError(HfCausalError, ValueError):
    """Data that do not fit the graph: a missing column, a value outside its variable's domain, an
    unreadable file. The message names the file, row and column where it knows them."""


class RecipeError(HfCausalError, ValueError):
    """A recipe or a training/model option is invalid: unknown key, bad value, missing package."""


class ArtefactError(HfCausalError, OSError):
    """A saved model folder (local or on the Hub) is missing, incomplete, corrupt or unsafe to load."""


class IncompatibleVersionError(ArtefactError):
    """A saved folder was written by an hf_causal whose format this version cannot read."""


class QueryError(HfCausalError, ValueError):
    """A malformed query: an unknown variable, a value outside its domain, a bad option."""


class UnsupportedQueryError(QueryError):
    """The method cannot answer this query exactly; the message says why and what would work."""


class CausalWarning(HfCausalError, UserWarning):
    """A query is answerable but poorly supported by the data (positivity), or probably not what was meant."""

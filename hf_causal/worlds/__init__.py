"""Worlds with exact causal ground truth, used by recipes, tests and benchmarks.

A world is a simulator: a :class:`World` has a ``name``, a causal ``graph`` and ``sample(n, seed)``;
most also answer interventional questions exactly (enumeration, dynamic programming, pgmpy). They are
kept apart from the engine, which never imports this package. Each world module registers its
worlds by name, so a recipe's ``world: <name>`` (with ``world_options``) finds them:

===================  ======================================================================
``demo``             ``worlds.demo``: the bundled demo (also ``demo-continuous``)
``maze``             ``worlds.maze``: variable-length move lists in random mazes
``chess``            ``worlds.chess``: KQK/KRK endgames under a behaviour policy
``papers``           ``worlds.papers``: a title keyword's effect, confounded by the abstract
``bnlearn``          ``worlds.bnlearn``: pgmpy's bundled networks (``world_options: {network: asia}``)
===================  ======================================================================

Example:
    >>> get_world("demo").graph.order[:3]
    ['age', 'severity', 'treatment']
"""

from __future__ import annotations

from .registry import World, available_worlds, get_world, register_world

__all__ = ["World", "register_world", "get_world", "available_worlds", "DiscreteSCM", "demo_world"]


def __getattr__(name: str):  # the most used worlds, without importing every simulator up front
    if name == "DiscreteSCM":
        from .scm import DiscreteSCM

        return DiscreteSCM
    if name == "demo_world":
        from .demo import demo_world

        return demo_world
    raise AttributeError(name)

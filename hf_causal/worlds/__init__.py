"""Worlds with exact causal ground truth, used by recipes, tests and benchmarks.

They are simulators, kept apart from the engine: the engine never imports this package.
"""

from .synthetic import WORLDS, DiscreteSCM, demo_world, get_world

__all__ = ["DiscreteSCM", "demo_world", "get_world", "WORLDS"]

"""The inference engine, split by job.

=================  ====================================================================
``results``        what an answer is: :class:`Distribution`, :class:`Estimate`
``planner``        query validation, refusals, the order of the walk: :class:`Plan`
``cache``          the prefix-shared KV cache of one batch
``sampler``        the batched walk, one step function per role a variable plays
``estimators``     distributions, expectations, ATE/CATE/ATT, per-row effects
``diagnostics``    positivity of forced values
``schema``         the JSON query form shared by the CLI, ``pipeline()`` and benchmarks
``engine``         :class:`CausalEngine`, the facade
=================  ====================================================================
"""

from .engine import CausalEngine, load
from .planner import Plan, Planner
from .results import Distribution, Estimate

__all__ = ["CausalEngine", "Distribution", "Estimate", "Plan", "Planner", "load"]

"""``CausalEngine``: the user-facing facade over the planner, the sampler and the estimators.

Pearl's truncated factorisation with an autoregressive model: walk a topological order, sample each
variable from the model's conditional, and *force* the tokens of intervened (``do``) and
conditioned-on (``given``) variables. See :mod:`.planner` (what is answerable and how),
:mod:`.sampler` (the batched KV-cache walk) and :mod:`.estimators` (the estimands).

Example:
    >>> engine = CausalEngine.from_pretrained("outputs/demo")          # doctest: +SKIP
    >>> engine.query("recovery", do={"treatment": 1}).probs            # doctest: +SKIP
    >>> engine.ate("recovery", "treatment", treated=1, control=0)      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..attention import segment_attention_matrix
from ..config import CausalConfig
from ..errors import QueryError, UnsupportedQueryError
from ..graph import CausalGraph
from ..mechanisms import MECHANISM_MODES, Mechanism
from ..schedule import row_tokens
from ..tokenization import CausalTokenizer
from . import estimators
from .cache import default_batch_size
from .planner import Planner
from .results import Distribution, Estimate
from .sampler import Sampler
from .uncertainty import combine

__all__ = ["CausalEngine", "load"]


class CausalEngine:
    """Answers interventional queries with a trained autoregressive model.

    Args:
        model: a causal LM (``transformers`` or ``peft``) trained on sequencified rows.
        tokenizer: the :class:`CausalTokenizer` it was trained with.
        config: its :class:`CausalConfig`.
        batch_size: rows per forward pass when sampling (default: :func:`.cache.default_batch_size`, as
            many as a 2 GiB cache holds, at most 32,768). The draws depend on it: batch ``b`` is seeded
            by ``(seed, b)``, so the same seed with another batch size gives other (equally valid) draws.
        device: torch device (default: CUDA if available, else CPU).
        marginalize_max: sum out the last variable before a categorical target exactly when it has
            at most this many values (0 disables).
        share_prefixes: run the model once per distinct token history (exact; see :class:`.cache.PrefixCache`).
        distributed: under ``torch.distributed`` (``accelerate launch``, ``torchrun``), split the
            Monte Carlo batches across processes and gather them; every process gets the answer of
            a single-process run (batch ``b`` is always seeded by ``(seed, b)``).
        extrapolate: force continuous ``do``/``given`` values outside the training range into the edge
            bin, with a :class:`CausalWarning` and ``extrapolated`` in the answer's diagnostics; by
            default such values are refused with the range.
        positivity_threshold, positivity_share: warn (:class:`CausalWarning`) when more than
            ``positivity_share`` of the sampled contexts give a forced value a probability below
            ``positivity_threshold`` (full attention), or have a parent configuration the training data
            never showed (:mod:`hf_causal.support`); refuse when every context lacks that support.
        min_ess: evidence that is not a prefix of the order is answered by likelihood weighting; an answer
            whose weights' effective sample size is below this is refused with the reason.
    """

    def __init__(
        self,
        model,
        tokenizer: CausalTokenizer,
        config: CausalConfig,
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        marginalize_max: int = 16,
        share_prefixes: bool = True,
        distributed: bool = True,
        extrapolate: bool = False,
        positivity_threshold: float = 0.01,
        positivity_share: float = 0.1,
        members: list[tuple[Any, str | None]] | None = None,
        min_ess: float = 100.0,
    ):
        self.min_ess = min_ess
        self.positivity_threshold = positivity_threshold
        self.positivity_share = positivity_share
        self.folds: dict | None = None  # a crossfit ensemble's training-row folds (set by from_pretrained)
        self._nuisance_cache: dict = {}  # doubly robust read-outs of recent row sets (inference.doubly_robust)
        self.members = members or [(model, None)]
        self.model = self.members[0][0]
        self.tokenizer = tokenizer
        self.config = config
        self.graph: CausalGraph = tokenizer.graph
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        for m in {id(m): m for m, _ in self.members}.values():
            m.eval().to(self.device)
        vocab = len(tokenizer)
        streams = 2 if config.attention in MECHANISM_MODES else 1
        self.batch_size = batch_size or default_batch_size(self.model, vocab, row_tokens(self.graph), streams)
        self.planner = Planner(
            self.graph,
            tokenizer,
            config.order_policy,
            config.loss_variables,
            extrapolate,
            ancestral=config.attention in MECHANISM_MODES,
        )
        allowed = segment_attention_matrix(self.graph) if config.attention != "full" else None
        mechanism = Mechanism(config.attention, allowed) if config.attention in MECHANISM_MODES else None
        self.samplers = [
            Sampler(
                m,
                tokenizer,
                self.batch_size,
                self.device,
                allowed=allowed,
                marginalize_max=marginalize_max,
                share_prefixes=share_prefixes,
                distributed=distributed,
                mechanism=mechanism,
                adapter=adapter,
            )
            for m, adapter in self.members
        ]
        self.sampler = self.samplers[0]

    @property
    def ensemble_method(self) -> str | None:
        """``bootstrap`` or ``crossfit`` for an ensemble, None for a single model."""
        return (self.config.ensemble or {}).get("method")

    def _over_members(self, fn, *args, combine_answers: bool = True, **kwargs):
        """``fn(view, ...)`` for every member (a view of this engine with that member's sampler), combined
        into one answer (:func:`~hf_causal.inference.uncertainty.combine`); warnings are given once."""
        import warnings

        out = []
        for j, sampler in enumerate(self.samplers):
            view = _MemberView(self, sampler)
            if j == 0:
                out.append(fn(view, *args, **kwargs))
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out.append(fn(view, *args, **kwargs))
        return combine(out, self.ensemble_method) if combine_answers else out

    # --- loading / saving ----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, repo_or_dir: str | Path, revision: str | None = None, **kwargs) -> CausalEngine:
        """Load a folder written by ``hf-causal train`` (or ``save_pretrained``), or a Hub repo; safetensors only."""
        from ..artefact import load_folds, load_parts, resolve_folder

        path = resolve_folder(repo_or_dir, revision)
        members, tok, config = load_parts(path)
        engine = cls(members[0][0], tok, config, members=members, **kwargs)
        engine.folds = load_folds(path)
        return engine

    def save_pretrained(self, path: str | Path) -> Path:
        """Write model + tokenizer + ``causal_config.json`` atomically."""
        from ..artefact import save

        models = [m for m, _ in self.members]
        if self.config.ensemble and len({id(m) for m in models}) == 1 and len(models) > 1:
            raise NotImplementedError("save_pretrained of a LoRA ensemble: copy the folder it was loaded from")
        return save(models if self.config.ensemble else self.model, self.tokenizer, self.config, path)

    # --- queries --------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        do: Mapping[str, Any] | None = None,
        given: Mapping[str, Any] | None = None,
        seed: int = 0,
        variables: Sequence[str] | None = None,
        progress: bool = False,
        weights: str = "resample",
    ) -> pd.DataFrame:
        """``n`` draws from the (interventional) joint as a DataFrame.

        Only variables up to the last of ``variables`` (default: all) in the order are generated;
        continuous values are dequantized uniformly within their bin. Evidence that is not an initial
        segment of the order is answered by likelihood weighting: ``weights="resample"`` (default) returns
        ``n`` equal-weight rows resampled with replacement from ``n`` weighted draws (so rows repeat: the
        effective sample size is in ``df.attrs``), ``weights="column"`` the weighted draws themselves with a
        ``weight`` column summing to 1.
        """
        if len(self.samplers) == 1:
            return estimators.sample(self, n, do, given, seed, variables, progress, weights)
        # an ensemble samples from the mixture of its members: member j draws rows j, j+K, ...
        k = len(self.samplers)
        parts = self._over_members(
            lambda v: estimators.sample(v, -(-n // k), do, given, seed, variables, progress, weights),
            combine_answers=False,
        )
        rows = [parts[j % k].iloc[j // k] for j in range(n)]
        return pd.DataFrame(rows).reset_index(drop=True)

    def query(
        self,
        target: str,
        do: Mapping[str, Any] | None = None,
        given: Mapping[str, Any] | None = None,
        num_samples: int = 2000,
        seed: int = 0,
        data: Any = None,
        progress: bool = False,
    ) -> Distribution:
        """P(target | do(...), given) for a categorical/integer/continuous target, with MC standard errors.

        The target's distribution is read from the model's softmax behind each sampled context
        (never sampled). ``data``: take the pre-treatment context of each row from a dataset
        (``confounder_source="data"``) instead of sampling it from the model.
        """
        return self._over_members(estimators.distribution, target, do, given, num_samples, seed, data, progress)

    def query_many(self, queries: Sequence[Any], num_samples: int = 2000, seed: int = 0) -> list[Distribution]:
        """Many distributions at once: ``queries`` are ``(target, do)`` pairs, ``(target, do, given)`` triples or
        ``{"target", "do", "given"}`` dicts. Queries with the same ``do`` and ``given`` share one walk: one set of
        sampled contexts, each target's distribution read behind its own sampled prefix (with a single target the
        answer is the same as :meth:`query` with the same seed). Returns the answers in the order asked.

        Example:
            >>> engine.query_many([("recovery", {"treatment": 1}), ("readmitted", {"treatment": 1})])  # doctest: +SKIP
        """
        per = self._over_members(estimators.distributions_many, queries, num_samples, seed, combine_answers=False)
        if len(per) == 1:
            return per[0]
        return [combine([p[i] for p in per], self.ensemble_method) for i in range(len(queries))]

    def expectation(
        self,
        target: str,
        do: Mapping[str, Any] | None = None,
        given: Mapping[str, Any] | None = None,
        num_samples: int = 2000,
        seed: int = 0,
        event: Any = None,
        data: Any = None,
    ) -> Estimate:
        """E[target | do(...), given] (or P(target = event | ...)) with its MC standard error."""
        return self._over_members(estimators.expectation, target, do, given, num_samples, seed, event, data)

    def ate(
        self,
        outcome: str,
        treatment: str,
        treated: Any,
        control: Any,
        given: Mapping[str, Any] | None = None,
        num_samples: int = 2000,
        seed: int = 0,
        event: Any = None,
        data: Any = None,
        estimator: str = "plugin",
        clip: float = 0.01,
        calibrate_propensity: bool = False,
    ) -> Estimate:
        """ATE = E[Y | do(T=treated)] - E[Y | do(T=control)] (treated minus control), common random numbers.

        With ``given`` this is the CATE. With ``data``, contexts come from the dataset's rows.
        ``estimator="aipw"``: the doubly robust estimate on the rows of ``data`` (their observed treatment and
        outcome), with an influence-function interval (:mod:`.doubly_robust`); ``clip``: its propensity clip;
        ``calibrate_propensity``: Platt-scale a crossfit ensemble's out-of-fold propensities first.
        """
        name = "ATE" if not given else "CATE"
        if _check_estimator(estimator, calibrate_propensity) == "aipw":
            args = (outcome, treatment, treated, control, data)
            return self._doubly_robust(name, args, given, event, clip, seed, calibrate_propensity)
        return self._over_members(
            estimators.contrast, name, outcome, treatment, treated, control, given, num_samples, seed, event, data
        )

    def cate(
        self,
        outcome: str,
        treatment: str,
        treated: Any,
        control: Any,
        given: Mapping[str, Any],
        num_samples: int = 2000,
        seed: int = 0,
        event: Any = None,
        data: Any = None,
        estimator: str = "plugin",
        clip: float = 0.01,
        calibrate_propensity: bool = False,
    ) -> Estimate:
        """CATE(given) = E[Y | do(treated), given] - E[Y | do(control), given]; given must be pre-treatment.

        ``estimator="aipw"`` with ``data``: the mean of the doubly robust scores of the rows in the subgroup."""
        if not given:
            raise UnsupportedQueryError("cate() needs given covariates; use ate() for the average effect")
        if _check_estimator(estimator, calibrate_propensity) == "aipw":
            args = (outcome, treatment, treated, control, data)
            return self._doubly_robust("CATE", args, given, event, clip, seed, calibrate_propensity)
        if data is not None:
            return self._over_members(
                estimators.contrast, "CATE", outcome, treatment, treated, control, given, num_samples, seed, event, data
            )
        return self._over_members(
            estimators.contrast, "CATE", outcome, treatment, treated, control, given, num_samples, seed, event, None
        )

    def att(
        self,
        outcome: str,
        treatment: str,
        treated: Any,
        control: Any,
        data: Any = None,
        num_samples: int = 2000,
        seed: int = 0,
        event: Any = None,
        estimator: str = "plugin",
        clip: float = 0.01,
        calibrate_propensity: bool = False,
    ) -> Estimate:
        """ATT = E[Y(treated) - Y(control) | T = treated].

        With ``data``: the contexts are the pre-treatment values of the dataset's rows whose
        treatment equals ``treated`` (each used once; the SE treats them as a sample).
        Without: model draws weighted by the model's p(T = treated | context) (self-normalised
        importance weights; the effective sample size is reported). ``estimator="aipw"``: the doubly
        robust ATT on the rows of ``data``.
        """
        if _check_estimator(estimator, calibrate_propensity) == "aipw":
            args = (outcome, treatment, treated, control, data)
            return self._doubly_robust("ATT", args, None, event, clip, seed, calibrate_propensity)
        return self._over_members(estimators.att, outcome, treatment, treated, control, data, num_samples, seed, event)

    def individual_effects(
        self,
        outcome: str,
        treatment: str,
        treated: Any,
        control: Any,
        data: Any,
        draws_per_row: int | None = None,
        seed: int = 0,
        event: Any = None,
    ) -> np.ndarray:
        """Per-row conditional effects E[Y | do(T=treated), x_i] - E[Y | do(T=control), x_i].

        ``x_i`` is row i's pre-treatment context: the columns of ``data`` among the variables before
        ``treatment`` in the order. The outcome's distribution is read exactly from the model's softmax;
        variables sampled between the treatment and the outcome (mediators) are averaged over
        ``draws_per_row`` draws per row (default 1). Rows may lack pre-treatment columns: those are
        sampled, and when the given columns are not an initial segment of the order each row's draws
        are weighted by the model's probability of its own values (likelihood weighting, normalised per
        row; default 256 draws per row; a row whose weights' effective sample size is below
        ``min(min_ess, draws_per_row / 10)`` is refused). This is the model's CATE at each row, e.g.
        for PEHE on IHDP.

        Example:
            >>> ite = engine.individual_effects("recovery", "treatment", 1, 0, data=df)  # doctest: +SKIP
        """
        per = self._over_members(
            estimators.individual_effects,
            outcome,
            treatment,
            treated,
            control,
            data,
            draws_per_row,
            seed,
            event,
            combine_answers=False,
        )
        return np.mean(per, axis=0)  # an ensemble: the mean of its members' effects

    def _doubly_robust(self, estimand, args, given, event, clip, seed, calibrate_propensity) -> Estimate:
        from .doubly_robust import aipw

        return aipw(self, estimand, *args, given, event, clip, seed=seed, calibrate_propensity=calibrate_propensity)

    # --- the third rung ---------------------------------------------------------------------
    def counterfactual(
        self, rows: Any, do: Mapping[str, Any], targets: Sequence[str] | str, num_samples: int = 200, seed: int = 0
    ):
        """For each factual row (every variable up to the last target observed), the distribution of ``targets``
        in the world where ``do`` had held: abduction, action, prediction under a Gumbel-max structural model
        of the model's own conditionals (:mod:`.counterfactual`). The answer states its assumption, which
        cannot be tested from data.

        Example:
            >>> cf = engine.counterfactual(rows, do={"treatment": 0}, targets="recovery")  # doctest: +SKIP
            >>> cf.distributions[0]["recovery"]                                            # doctest: +SKIP
        """
        from .counterfactual import counterfactual

        return counterfactual(self, rows, do, targets, num_samples, seed)

    def causal_probabilities(
        self,
        rows: Any,
        treatment: str,
        outcome: str,
        treated: Any = 1,
        control: Any = 0,
        event: Any = 1,
        num_samples: int = 200,
        seed: int = 0,
    ) -> dict[str, Any]:
        """Unit-level effect on the treated, PN and PS for a binary treatment and outcome (see
        :func:`~hf_causal.inference.counterfactual.causal_probabilities`)."""
        from .counterfactual import causal_probabilities

        return causal_probabilities(self, rows, treatment, outcome, treated, control, event, num_samples, seed)


def _check_estimator(estimator: str, calibrate_propensity: bool = False) -> str:
    from .doubly_robust import ESTIMATORS

    if estimator not in ESTIMATORS:
        raise QueryError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if calibrate_propensity and estimator != "aipw":
        raise QueryError(
            "calibrate_propensity calibrates the doubly robust estimator's propensity: use estimator='aipw'"
        )
    return estimator


class _MemberView:
    """An engine as seen by one ensemble member: everything shared, but that member's sampler."""

    def __init__(self, engine: CausalEngine, sampler: Sampler):
        self._engine, self.sampler = engine, sampler

    def __getattr__(self, name):
        return getattr(self._engine, name)


def load(repo_or_dir: str | Path, revision: str | None = None, **engine_kwargs) -> CausalEngine:
    """Load an engine from a local folder or a Hub repo: adapter (+ base) or full model, tokenizer,
    ``causal_config.json``. safetensors only; never needs ``trust_remote_code``.

    Example:
        >>> engine = load("outputs/demo")  # doctest: +SKIP
    """
    return CausalEngine.from_pretrained(repo_or_dir, revision, **engine_kwargs)

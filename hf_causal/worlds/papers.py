"""Papers: the effect of a title keyword on acceptance, confounded by what the abstract says.

The world of issue #7, a semi-synthetic setting after the CausalBERT protocol (Veitch, Sridhar & Blei
2020; method.md §10), on generated text because PeerRead cannot be downloaded here. One row is a paper:

* ``venue`` (acl / neurips / iclr) and ``authors`` (1..8): structured covariates;
* ``abstract``: 3-5 English sentences from templates. A latent *topic* (theory, methods, empirical,
  resource; its distribution depends on the venue) picks the vocabulary, and *buzzwords* (deep,
  neural, embedding, outperform, novel, state-of-the-art) appear with topic-dependent rates;
* ``keyword``: 1 if the title says "state-of-the-art" (the treatment). Its propensity is a function of
  the abstract's text: ``p = 0.1 + 0.6 * buzz / 6`` with ``buzz`` the number of distinct buzzwords;
* ``accepted``: ``Bernoulli(sigmoid(score))`` with ``c = 3 (p - 0.25)`` the confounding score,
  ``y0 = beta1 * c + alpha`` and ``y1 = y0 + beta0`` (``setting="simple"``) or
  ``y1 = y0 + beta0 * (1 + 4 c**2)`` (``"interaction"``, where the ATT and the ATE differ).

Because ``p`` and ``c`` are functions of the abstract's words, the per-paper potential outcome
probabilities ``sigmoid(y0)`` and ``sigmoid(y1)`` are exact functions of the text
(:meth:`PaperWorld.potential_outcomes`), and so are the true ATE and ATT of any sample. The topic is not
a column: the venue carries a little of it and the number of authors a weak signal of the buzzword
rate, so adjusting for them alone leaves nearly all of the bias, and only a model that reads the
abstract removes it (``benchmarks.baselines.papers_covariate_adjusted_att``).

Example:
    >>> w = PaperWorld()
    >>> df = w.sample(2000, seed=0)
    >>> list(df.columns)
    ['venue', 'authors', 'abstract', 'keyword', 'accepted']
    >>> truth = w.true_effects(df)
    >>> 0 < truth["ATT"] < 0.3
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, QueryError, RecipeError
from ..graph import CausalGraph
from .registry import register_world

__all__ = ["BUZZWORDS", "PaperWorld"]

VENUES = ("acl", "neurips", "iclr")
TOPICS = ("theory", "methods", "empirical", "resource")
BUZZWORDS = ("deep", "neural", "embedding", "outperform", "novel", "state-of-the-art")
# P(topic | venue)
_TOPIC_GIVEN_VENUE = {
    "acl": (0.10, 0.30, 0.30, 0.30),
    "neurips": (0.35, 0.35, 0.25, 0.05),
    "iclr": (0.15, 0.45, 0.35, 0.05),
}
# per topic: probability that each buzzword is used
_BUZZ_RATE = {"theory": 0.08, "methods": 0.45, "empirical": 0.6, "resource": 0.2}
_SUBJECTS = {
    "theory": ["the sample complexity", "a generalization bound", "the convergence rate", "a lower bound"],
    "methods": ["a training objective", "an attention mechanism", "a regularizer", "an optimization method"],
    "empirical": ["a benchmark study", "an evaluation protocol", "a large comparison", "an ablation study"],
    "resource": ["a new corpus", "an annotated dataset", "a treebank", "a multilingual lexicon"],
}
_CLAIMS = {
    "theory": ["we prove that {s} is tight", "we derive {s} under mild assumptions", "we show {s} for convex losses"],
    "methods": ["we propose {s} for sequence models", "we introduce {s} that scales", "we design {s} for transfer"],
    "empirical": ["we report {s} across tasks", "we present {s} on standard data", "we run {s} with many seeds"],
    "resource": ["we release {s} for research", "we collect {s} from the web", "we describe {s} and its annotation"],
}
_FILLERS = [
    "our analysis clarifies when the approach works",
    "experiments confirm the main claims",
    "the results hold across settings",
    "we discuss limitations and future work",
    "code and data are publicly available",
    "the method is simple to implement",
]
_BUZZ_SENTENCES = {
    "deep": "the model is a deep network",
    "neural": "we use a neural encoder",
    "embedding": "each token gets an embedding",
    "outperform": "we outperform strong baselines",
    "novel": "the idea is novel",
    "state-of-the-art": "results are state-of-the-art on two tasks",
}


def _sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class PaperWorld:
    """Generated papers whose abstracts confound a title keyword and acceptance (CausalBERT protocol).

    Args:
        beta0: the treatment effect on the logit scale.
        beta1: the confounding strength (coefficient of ``c`` in the logit).
        alpha: the logit intercept.
        setting: ``"simple"`` (constant effect on the logit) or ``"interaction"`` (effect grows with
            ``c**2``: the ATT and the ATE differ).
        max_words: the ``abstract`` variable's ``max_length`` (tokens of the model's tokenizer).
        name: the world's name.
    """

    beta0: float = 1.0
    beta1: float = 5.0
    alpha: float = -1.0
    setting: str = "simple"
    max_words: int = 96
    name: str = "papers"
    graph: CausalGraph = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.setting not in ("simple", "interaction"):
            raise RecipeError(f"setting must be 'simple' or 'interaction', got {self.setting!r}")
        self.graph = CausalGraph.from_dict(self.graph_spec())

    def graph_spec(self) -> dict[str, Any]:
        """The causal graph: covariates and abstract before the keyword, acceptance last."""
        return {
            "variables": {
                "venue": {"type": "categorical", "values": list(VENUES)},
                "authors": {"type": "integer", "min": 1, "max": 8, "description": "number of authors"},
                "abstract": {"type": "text", "max_length": self.max_words, "description": "generated abstract"},
                "keyword": {"type": "categorical", "values": [0, 1], "description": "'state-of-the-art' in the title"},
                "accepted": {"type": "categorical", "values": [0, 1]},
            },
            "edges": [
                ["venue", "abstract"],
                ["authors", "abstract"],
                ["abstract", "keyword"],
                ["abstract", "accepted"],
                ["keyword", "accepted"],
                ["venue", "accepted"],
                ["authors", "accepted"],
            ],
        }

    # --- the text -------------------------------------------------------------------------
    def _abstract(self, topic: str, authors: int, rng: np.random.Generator) -> str:
        subj = _SUBJECTS[topic]
        claim = _CLAIMS[topic][int(rng.integers(len(_CLAIMS[topic])))].format(s=subj[int(rng.integers(len(subj)))])
        sents = [claim]
        # larger teams use buzzwords a little more often: authors carry a weak signal of the text's score
        rate = _BUZZ_RATE[topic] * (1.0 + 0.05 * (authors - 4))
        sents += [_BUZZ_SENTENCES[b] for b in BUZZWORDS if rng.random() < rate]
        k = int(rng.integers(1, 3))
        sents += [_FILLERS[i] for i in rng.choice(len(_FILLERS), size=k, replace=False)]
        order = [sents[0], *[sents[i] for i in 1 + rng.permutation(len(sents) - 1)]]
        return ". ".join(s[0].upper() + s[1:] for s in order) + "."

    @staticmethod
    def buzz(abstract: str) -> int:
        """The number of distinct buzzwords in an abstract (whole words, case-insensitive)."""
        words = set(re.findall(r"[a-z][a-z-]*", abstract.lower()))
        return sum(b in words for b in BUZZWORDS)

    def propensity(self, abstract: str | Sequence[str]) -> np.ndarray:
        """P(keyword = 1 | abstract): ``0.1 + 0.6 * buzz / 6``."""
        texts = [abstract] if isinstance(abstract, str) else list(abstract)
        return np.array([0.1 + 0.6 * self.buzz(t) / len(BUZZWORDS) for t in texts])

    def potential_outcomes(self, abstract: str | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``(P(accepted | do(keyword=0), text), P(accepted | do(keyword=1), text))`` per paper."""
        p = self.propensity(abstract)
        c = 3.0 * (p - 0.25)
        y0 = self.alpha + self.beta1 * c
        effect = self.beta0 if self.setting == "simple" else self.beta0 * (1.0 + 4.0 * c**2)
        return _sigmoid(y0), _sigmoid(y0 + effect)

    # --- sampling ---------------------------------------------------------------------------
    def sample(self, n: int, seed: int = 0, do: dict[str, Any] | None = None) -> pd.DataFrame:
        """``n`` papers (observational, or with ``do={"keyword": 0 | 1}``), seeded.

        The same seed gives the same papers (and outcome noise) in every arm, so arms are paired."""
        do = dict(do or {})
        if set(do) - {"keyword"}:
            raise QueryError(f"PaperWorld.sample supports do on 'keyword' only, got {sorted(do)}")
        forced = self.graph["keyword"].coerce(do["keyword"]) if "keyword" in do else None
        rng = np.random.default_rng(seed)
        rows = []
        for _ in range(n):
            venue = VENUES[int(rng.integers(len(VENUES)))]
            authors = int(min(8, 1 + rng.poisson(2.5)))
            topic = TOPICS[int(rng.choice(len(TOPICS), p=_TOPIC_GIVEN_VENUE[venue]))]
            text = self._abstract(topic, authors, rng)
            p = float(self.propensity(text)[0])
            u = rng.random()  # drawn under do() too, so a seed gives the same papers in every arm
            a = int(u < p) if forced is None else int(forced)
            q0, q1 = self.potential_outcomes(text)
            y = int(rng.random() < float((q1 if a else q0)[0]))
            rows.append({"venue": venue, "authors": authors, "abstract": text, "keyword": a, "accepted": y})
        return pd.DataFrame(rows, columns=list(self.graph.order))

    # --- ground truth -----------------------------------------------------------
    def true_effects(self, data: pd.DataFrame) -> dict[str, float]:
        """The sample's exact ATE and ATT (and the population-free per-paper means behind them)."""
        q0, q1 = self.potential_outcomes(data["abstract"].tolist())
        treated = data["keyword"].to_numpy() == 1
        if not treated.any():
            raise DataError("no treated paper (keyword = 1) in the data: the ATT is undefined")
        return {"ATE": float(np.mean(q1 - q0)), "ATT": float(np.mean((q1 - q0)[treated]))}


register_world("papers", PaperWorld)

"""Codecs: a variable's value <-> its token strings.

Every closed-vocabulary kind (categorical, integer, continuous, sequence) owns value tokens
named after the variable, so a token never belongs to two variables and constrained
decoding is a lookup. Text is tokenized by the model's tokenizer (see ``tokenization``).

Continuous values use **quantile bins**: one token per bin, edges from the training data,
and each bin remembers the mean of the training values that fell in it. Why bins and not
digit strings: a single token per value makes the outcome distribution one softmax, so
expectations are exact sums over bins (a Rao-Blackwellised estimate from one forward pass)
instead of multi-token sampling; with 32 quantile bins the widest bin inside the central 90%
of a normal sample is under 0.25 sd (``tests/test_codecs.py``), and the bin means reproduce the
data mean exactly. On the demo world's continuous outcome the engine's E[Y | do] is within
0.05-0.1 days of exact (sd 1.5; ``tests/test_engine_accuracy.py``). Sampled values are
dequantized uniformly within their bin; expectations use the bin means.

Example:
    >>> from hf_causal.graph import Variable
    >>> c = codec_for(Variable(name="A", type="categorical", values=["no", "yes"]))
    >>> c.encode("yes")
    ['<A=yes>']
    >>> c.decode(['<A=yes>'])
    'yes'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .graph import GraphError, Variable, _value_key

__all__ = [
    "Codec",
    "CategoricalCodec",
    "IntegerCodec",
    "ContinuousCodec",
    "SequenceCodec",
    "TextCodec",
    "codec_for",
    "start_token",
]


def start_token(name: str) -> str:
    """The special token that opens variable ``name``'s segment (the paper's ``<start_i>``)."""
    return f"<start_{name}>"


def _safe(s: str) -> str:
    return re.sub(r"\s+", "_", s)


class Codec:
    """Base class: subclasses map one variable's values to token strings and back."""

    def __init__(self, var: Variable):
        self.var = var
        self.name = var.name

    @property
    def missing_token(self) -> str | None:
        return f"<{self.name}?>" if self.var.missing == "as_value" else None

    def value_tokens(self) -> list[str]:
        """The value tokens this variable adds to the vocabulary (closed kinds)."""
        toks = self._value_tokens()
        return toks + ([self.missing_token] if self.missing_token else [])

    def _value_tokens(self) -> list[str]:
        return []

    def encode(self, value: Any) -> list[str]:
        value = self.var.coerce(value)
        if value is None:
            return [self.missing_token]
        return self._encode(value)

    def decode(self, tokens: Sequence[str], rng: np.random.Generator | None = None) -> Any:
        if self.missing_token and list(tokens) == [self.missing_token]:
            return None
        return self._decode(list(tokens), rng)

    def _encode(self, value: Any) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _decode(self, tokens: list[str], rng: np.random.Generator | None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _unknown(self, tok: str) -> GraphError:
        return GraphError(f"variable {self.name!r}: token {tok!r} is not one of its value tokens")


class _FiniteCodec(Codec):
    """One token per value of a finite domain."""

    def __init__(self, var: Variable):
        super().__init__(var)
        self.values = var.domain()
        self._tokens = [self._token_for(v) for v in self.values]
        if len(set(self._tokens)) != len(self._tokens):
            raise GraphError(f"variable {self.name!r}: values collide after replacing whitespace: {self.values}")
        self._by_key = {_value_key(v): t for v, t in zip(self.values, self._tokens)}
        self._by_tok = dict(zip(self._tokens, self.values))

    def _token_for(self, v: Any) -> str:
        return f"<{self.name}={_safe(str(v))}>"

    def _value_tokens(self) -> list[str]:
        return list(self._tokens)

    def _encode(self, value: Any) -> list[str]:
        return [self._by_key[_value_key(value)]]

    def _decode(self, tokens: list[str], rng) -> Any:
        if len(tokens) != 1 or tokens[0] not in self._by_tok:
            raise self._unknown(" ".join(tokens))
        return self._by_tok[tokens[0]]

    def token_numbers(self) -> list[float] | None:
        """The numeric value of each value token (for expectations), or None if not numeric."""
        if not self.var.is_numeric:
            return None
        return [float(v) for v in self.values]


class CategoricalCodec(_FiniteCodec):
    pass


class IntegerCodec(_FiniteCodec):
    pass


class ContinuousCodec(Codec):
    """Quantile bins with within-bin means; call :meth:`fit` on training values first."""

    def __init__(self, var: Variable):
        super().__init__(var)
        self._tokens = [f"<{self.name}#{k}>" for k in range(var.bins)]
        self._idx = {t: k for k, t in enumerate(self._tokens)}

    @property
    def fitted(self) -> bool:
        return self.var.edges is not None

    def fit(self, values: Sequence[float]) -> ContinuousCodec:
        """Set bin edges to the empirical quantiles of ``values`` and store each bin's mean.

        Duplicate quantiles (many tied values) merge bins; unused bin tokens stay in the
        vocabulary but are never produced.
        """
        x = np.asarray([float(self.var.coerce(v)) for v in values if v is not None and v == v], dtype=float)
        if x.size < 2:
            raise GraphError(f"continuous variable {self.name!r}: need at least 2 values to fit bins")
        q = np.quantile(x, np.linspace(0, 1, self.var.bins + 1))
        edges = np.unique(q)
        if edges.size < 2:
            edges = np.array([x[0] - 0.5, x[0] + 0.5])
        idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
        means = []
        for k in range(edges.size - 1):
            sel = x[idx == k]
            means.append(float(sel.mean()) if sel.size else float((edges[k] + edges[k + 1]) / 2))
        self.var.edges = [float(e) for e in edges]
        self.var.bin_means = means
        return self

    @property
    def n_bins(self) -> int:
        return len(self.var.edges) - 1

    def resolution(self) -> float:
        """The widest bin: the largest possible |decode(encode(x)) - x| within the fitted range."""
        e = np.asarray(self.var.edges)
        return float(np.max(np.diff(e)))

    def _value_tokens(self) -> list[str]:
        return list(self._tokens)

    def bin_of(self, x: float) -> int:
        if not self.fitted:
            raise GraphError(f"continuous variable {self.name!r}: codec is not fitted; call fit(values)")
        e = self.var.edges
        return int(np.clip(np.searchsorted(e, x, side="right") - 1, 0, len(e) - 2))

    def _encode(self, value: float) -> list[str]:
        return [self._tokens[self.bin_of(value)]]

    def _decode(self, tokens: list[str], rng) -> float:
        if len(tokens) != 1 or tokens[0] not in self._idx:
            raise self._unknown(" ".join(tokens))
        k = min(self._idx[tokens[0]], self.n_bins - 1)
        lo, hi = self.var.edges[k], self.var.edges[k + 1]
        if rng is None:
            return float(self.var.bin_means[k])
        return float(rng.uniform(lo, hi))

    def token_numbers(self) -> list[float]:
        means = list(self.var.bin_means)
        # bins merged away by ties are never produced; give them the last mean
        return means + [means[-1]] * (len(self._tokens) - len(means))


class SequenceCodec(Codec):
    """A variable-length list of symbols, one token each; the segment ends at the next start token."""

    def __init__(self, var: Variable):
        super().__init__(var)
        self._tokens = [f"<{self.name}:{_safe(a)}>" for a in var.alphabet]
        self._by_sym = dict(zip(var.alphabet, self._tokens))
        self._by_tok = dict(zip(self._tokens, var.alphabet))

    def _value_tokens(self) -> list[str]:
        return list(self._tokens)

    def _encode(self, seq: list[str]) -> list[str]:
        if len(seq) > self.var.max_length:
            if self.var.overflow == "error":
                raise GraphError(
                    f"variable {self.name!r}: sequence of length {len(seq)} exceeds max_length "
                    f"{self.var.max_length} (set `overflow: truncate` to cut it)"
                )
            seq = seq[: self.var.max_length]
        return [self._by_sym[s] for s in seq]

    def _decode(self, tokens: list[str], rng) -> list[str]:
        out = []
        for t in tokens:
            if t not in self._by_tok:
                raise self._unknown(t)
            out.append(self._by_tok[t])
        return out


class TextCodec(Codec):
    """Free text; tokens come from the model tokenizer (length checks happen there)."""

    def _encode(self, value: str) -> list[str]:
        return [value]

    def _decode(self, tokens: list[str], rng) -> str:
        return " ".join(tokens)


_CODECS = {
    "categorical": CategoricalCodec,
    "integer": IntegerCodec,
    "continuous": ContinuousCodec,
    "sequence": SequenceCodec,
    "text": TextCodec,
}


def codec_for(var: Variable) -> Codec:
    """The codec for a variable spec."""
    return _CODECS[var.type](var)

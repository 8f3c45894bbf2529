"""Tokenizers with one ``<start_NAME>`` token per variable and per-variable value tokens.

Two modes:

* ``closed``: a word-level ``tokenizers`` model over exactly the tokens the graph needs
  (plus the words of text variables seen in the data), for models trained from scratch.
* ``pretrained``: a GPT-2 (byte-level BPE) or BERT (WordPiece) tokenizer from a local
  folder or Hub id, extended with the start and value tokens as special tokens; text
  variables use the base subwords.

Example:
    >>> from hf_causal.graph import CausalGraph
    >>> g = CausalGraph.from_dict({"variables": {"A": {"type": "categorical", "values": [0, 1]}}})
    >>> tok = CausalTokenizer.build(g)
    >>> tok.encode_value("A", 1) == [tok.value_ids["A"][1]]
    True
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArtefactError, DataError
from .graph import CausalGraph

__all__ = ["CausalTokenizer", "PAD", "EOS", "UNK", "start_token"]

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def start_token(name: str) -> str:
    """The special token that opens variable ``name``'s segment (the paper's ``<start_i>``)."""
    return f"<start_{name}>"


class CausalTokenizer:
    """A Hugging Face tokenizer plus the map from variables to token ids.

    Attributes:
        hf: the ``transformers`` tokenizer (saved with the model).
        start_ids: ``{variable: id of <start_variable>}``.
        value_ids: ``{variable: [ids of its value tokens]}`` (empty for text).
        pad_id, eos_id: padding and end-of-sequence ids (always distinct).
        text_ids: ids a text variable may emit (the base vocabulary, no special tokens).
    """

    def __init__(self, graph: CausalGraph, hf, mode: str):
        self.graph = graph
        self.hf = hf
        self.mode = mode
        vocab = hf.get_vocab()
        missing = [t for t in self._needed_tokens() if t not in vocab]
        if missing:
            raise ArtefactError(
                f"tokenizer lacks {len(missing)} token(s) this graph needs, e.g. {missing[:3]}; "
                "was it saved with a different causal graph?"
            )
        self.start_ids = {n: vocab[start_token(n)] for n in graph.variables}
        tokens = {n: v.value_tokens() for n, v in graph.variables.items()}
        self.value_ids = {n: [vocab[t] for t in tokens[n]] for n in graph.variables}
        self._tok_of_id = {i: t for n in graph.variables for i, t in zip(self.value_ids[n], tokens[n])}
        self.pad_id = hf.pad_token_id
        self.eos_id = hf.eos_token_id
        if self.pad_id is None or self.eos_id is None or self.pad_id == self.eos_id:
            raise ArtefactError("tokenizer needs distinct pad and eos tokens")
        special = set(hf.all_special_ids) | set(self._tok_of_id) | set(self.start_ids.values())
        added = set(getattr(hf, "added_tokens_decoder", {}) or {})
        self.text_ids = np.array(sorted(set(range(len(hf))) - special - added), dtype=np.int64)

    # --- construction ---------------------------------------------------------------
    def _needed_tokens(self) -> list[str]:
        toks = [start_token(n) for n in self.graph.variables]
        for v in self.graph.variables.values():
            toks += v.value_tokens()
        return toks

    @classmethod
    def build(
        cls,
        graph: CausalGraph,
        base: str | Path | None = None,
        text_corpus: Mapping[str, Iterable[str]] | None = None,
        max_text_vocab: int = 8000,
    ) -> CausalTokenizer:
        """Build a closed-vocabulary tokenizer (``base=None``) or extend ``base``.

        Args:
            graph: the causal graph.
            base: a local tokenizer folder or Hub id (GPT-2 or BERT) to extend.
            text_corpus: ``{text variable: texts}`` whose words enter a closed vocabulary.
            max_text_vocab: cap on words taken from ``text_corpus`` (most frequent first).
        """
        starts = [start_token(n) for n in graph.variables]
        values = [t for v in graph.variables.values() for t in v.value_tokens()]
        if base is None:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers
            from transformers import PreTrainedTokenizerFast

            words: list[str] = []
            if text_corpus:
                counts: collections.Counter[str] = collections.Counter()
                for texts in text_corpus.values():
                    for t in texts:
                        if isinstance(t, str):
                            counts.update(t.split())
                reserved = set(starts) | set(values) | {PAD, EOS, UNK}
                words = [w for w, _ in counts.most_common() if w not in reserved][:max_text_vocab]
            vocab = {t: i for i, t in enumerate([PAD, EOS, UNK] + starts + values + words)}
            tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
            tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
            tk.decoder = decoders.WordPiece(prefix="##")  # joins words with single spaces
            hf = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token=PAD, eos_token=EOS, unk_token=UNK)
            hf.add_special_tokens({"additional_special_tokens": starts + values})
            return cls(graph, hf, "closed")
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(base), local_files_only=_is_local(base), trust_remote_code=False)
        extra: dict[str, Any] = {}
        if hf.eos_token is None:
            extra["eos_token"] = EOS
        if hf.pad_token is None or hf.pad_token == hf.eos_token:
            extra["pad_token"] = PAD
        hf.add_special_tokens({**extra, "additional_special_tokens": starts + values})
        return cls(graph, hf, "pretrained")

    @classmethod
    def from_pretrained(cls, path: str | Path, graph: CausalGraph, mode: str) -> CausalTokenizer:
        from transformers import AutoTokenizer

        return cls(
            graph, AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False), mode
        )

    def save_pretrained(self, path: str | Path) -> None:
        self.hf.save_pretrained(str(path))

    def __len__(self) -> int:
        return len(self.hf)

    def token_map(self) -> dict[str, Any]:
        return {
            "start": dict(self.start_ids),
            "values": {n: list(v) for n, v in self.value_ids.items()},
            "pad": self.pad_id,
            "eos": self.eos_id,
        }

    # --- values <-> ids -------------------------------------------------------------
    def encode_value(self, name: str, value: Any) -> list[int]:
        """The value token ids of ``value`` (without the start token)."""
        var = self.graph.variables[name]
        if not var.kind.base_vocabulary:
            return [self.hf.convert_tokens_to_ids(t) for t in var.encode(value)]
        value = var.coerce(value)
        if value is None:
            return [self.hf.convert_tokens_to_ids(var.missing_token)]
        ids = self.hf(value, add_special_tokens=False)["input_ids"]
        if len(ids) > var.max_length:
            if var.overflow == "error":
                raise DataError(
                    f"variable {name!r}: text has {len(ids)} tokens, more than max_length "
                    f"{var.max_length} (set `overflow: truncate` to cut it)"
                )
            ids = ids[: var.max_length]
        return ids

    def decode_value(self, name: str, ids: Iterable[int], rng: np.random.Generator | None = None) -> Any:
        var = self.graph.variables[name]
        ids = [int(i) for i in ids]
        if var.kind.base_vocabulary:
            if var.missing_token and len(ids) == 1 and self._tok_of_id.get(ids[0]) == var.missing_token:
                return None
            return self.hf.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False).strip()
        toks = []
        for i in ids:
            if i not in self._tok_of_id:
                raise DataError(
                    f"variable {name!r}: id {i} ({self.hf.convert_ids_to_tokens(i)!r}) is not a value token"
                )
            toks.append(self._tok_of_id[i])
        return var.decode(toks, rng)

    def token_numbers(self, name: str) -> np.ndarray | None:
        """Numeric value of each value token of ``name`` (bin means for continuous; missing: NaN)."""
        nums = self.graph.variables[name].numbers()
        return None if nums is None else np.asarray(nums, dtype=float)

    def emittable_ids(self, name: str) -> np.ndarray:
        """The ids a segment of ``name`` may emit: its value tokens, or for a base-vocabulary kind (text)
        the base subwords plus its missing token."""
        if self.graph.variables[name].kind.base_vocabulary:
            return np.concatenate([self.text_ids, np.asarray(self.value_ids[name], dtype=np.int64)])
        return np.asarray(self.value_ids[name], dtype=np.int64)


def _is_local(p: str | Path) -> bool:
    return Path(str(p)).exists()

"""Tiny local checkpoints for tests and docs (no downloads): a GPT-2 with a real byte-level
BPE tokenizer of ~20 tokens, and a BERT with a ~30-word WordPiece vocabulary.

Example:
    >>> import tempfile
    >>> d = tiny_gpt2_checkpoint(tempfile.mkdtemp())
    >>> (d / "config.json").exists()
    True
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["tiny_gpt2_checkpoint", "tiny_bert_checkpoint"]

_BPE_VOCAB = [
    "l",
    "o",
    "w",
    "e",
    "r",
    "s",
    "t",
    "i",
    "d",
    "n",
    "a",
    "\u0120",
    "\u0120l",
    "\u0120n",
    "\u0120lo",
    "\u0120low",
    "er",
    "\u0120lowest",
    "\u0120newer",
    "\u0120wider",
    "<unk>",
    "<|endoftext|>",
]
_BPE_MERGES = [("\u0120", "l"), ("\u0120l", "o"), ("\u0120lo", "w"), ("e", "r")]
_WORDS = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "paper",
    "model",
    "deep",
    "neural",
    "novel",
    "results",
    "we",
    "propose",
    "a",
    "new",
    "method",
    "for",
    "learning",
    "data",
    "##s",
    "##ing",
    "show",
    "state",
    "-",
    "of",
    "art",
    "is",
    "and",
    "on",
]


def tiny_gpt2_checkpoint(path: str | Path, n_layer: int = 2, n_embd: int = 32, seed: int = 0) -> Path:
    """Write a randomly initialised GPT-2 and its (tiny, real byte-level BPE) tokenizer to ``path``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = GPT2Tokenizer(
        vocab={t: i for i, t in enumerate(_BPE_VOCAB)},
        merges=list(_BPE_MERGES),
        unk_token="<unk>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
    )
    tok.save_pretrained(path)
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=128,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=2,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    GPT2LMHeadModel(cfg).save_pretrained(path)
    return path


def tiny_bert_checkpoint(path: str | Path, n_layer: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    """Write a randomly initialised BERT encoder (no LM head, like MiniLM) and a WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(_WORDS) + "\n")
    tok = BertTokenizer(vocab=str(path / "vocab.txt"))
    tok.save_pretrained(path)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        num_hidden_layers=n_layer,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    BertModel(cfg).save_pretrained(path)
    return path

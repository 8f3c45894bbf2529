import pytest

from hf_causal.errors import ArtefactError, DataError
from hf_causal.graph import CausalGraph
from hf_causal.testing import tiny_bert_checkpoint, tiny_gpt2_checkpoint
from hf_causal.tokenization import CausalTokenizer, start_token

GRAPH = {
    "variables": {
        "title": {"type": "text", "max_length": 10},
        "A": {"type": "categorical", "values": [0, 1]},
        "moves": {"type": "sequence", "alphabet": ["U", "D"], "max_length": 4},
        "Y": {"type": "integer", "min": 0, "max": 2},
    },
    "edges": [["title", "A"], ["A", "moves"], ["moves", "Y"], ["title", "Y"]],
}


def _check_map(tok: CausalTokenizer):
    g = tok.graph
    ids = set()
    for n in g.variables:
        assert tok.hf.convert_ids_to_tokens(tok.start_ids[n]) == start_token(n)
        ids.add(tok.start_ids[n])
        ids.update(tok.value_ids[n])
    assert len(ids) == len(g.variables) + sum(len(v) for v in tok.value_ids.values())  # all distinct
    assert tok.pad_id != tok.eos_id
    assert not ids & set(tok.text_ids.tolist())  # text never emits a start/value token


def test_closed_vocabulary(tmp_path):
    g = CausalGraph.from_dict(GRAPH)
    tok = CausalTokenizer.build(g, text_corpus={"title": ["deep neural nets", "a novel method"]})
    _check_map(tok)
    assert tok.decode_value("title", tok.encode_value("title", "a  novel   nets")) == "a novel nets"
    assert tok.decode_value("moves", tok.encode_value("moves", ["U", "D", "D"])) == ["U", "D", "D"]
    # the whole sequencified string round-trips through the HF tokenizer itself
    text = " ".join([start_token("A"), "<A=1>", start_token("Y"), "<Y=2>"])
    ids = tok.hf(text, add_special_tokens=False)["input_ids"]
    assert ids == [tok.start_ids["A"], tok.value_ids["A"][1], tok.start_ids["Y"], tok.value_ids["Y"][2]]
    tok.save_pretrained(tmp_path)
    again = CausalTokenizer.from_pretrained(tmp_path, g, "closed")
    assert again.token_map() == tok.token_map()


def test_extends_gpt2_bpe(tmp_path):
    base = tiny_gpt2_checkpoint(tmp_path / "gpt2")
    g = CausalGraph.from_dict(GRAPH)
    tok = CausalTokenizer.build(g, base=base)
    _check_map(tok)
    assert tok.mode == "pretrained"
    assert tok.eos_id == tok.hf.convert_tokens_to_ids("<|endoftext|>")  # GPT-2's own eos is kept
    assert tok.hf.pad_token == "<pad>"
    ids = tok.encode_value("title", " lowest newer")
    assert len(ids) >= 2 and all(i in set(tok.text_ids.tolist()) for i in ids)
    assert tok.decode_value("title", ids) == "lowest newer"


def test_extends_bert_wordpiece(tmp_path):
    base = tiny_bert_checkpoint(tmp_path / "bert")
    g = CausalGraph.from_dict(GRAPH)
    tok = CausalTokenizer.build(g, base=base)
    _check_map(tok)
    assert tok.pad_id == tok.hf.convert_tokens_to_ids("[PAD]")
    assert tok.hf.convert_ids_to_tokens(tok.eos_id) == "<eos>"
    ids = tok.encode_value("title", "we propose a new method")
    assert tok.decode_value("title", ids) == "we propose a new method"
    assert tok.hf.cls_token_id not in ids and tok.hf.sep_token_id not in ids  # no [CLS]/[SEP] slip in


def test_text_overflow(tmp_path):
    g = CausalGraph.from_dict(GRAPH)
    tok = CausalTokenizer.build(g, text_corpus={"title": ["w " * 20]})
    with pytest.raises(DataError, match=r"'title': text has 11 tokens, more than max_length 10"):
        tok.encode_value("title", "w " * 11)
    spec = {"variables": {"title": {"type": "text", "max_length": 3, "overflow": "truncate"}}}
    tok2 = CausalTokenizer.build(CausalGraph.from_dict(spec), text_corpus={"title": ["a b c d e"]})
    assert tok2.decode_value("title", tok2.encode_value("title", "a b c d e")) == "a b c"


def test_tokenizer_for_other_graph_is_rejected(tmp_path):
    tok = CausalTokenizer.build(CausalGraph.from_dict(GRAPH))
    tok.save_pretrained(tmp_path)
    other = CausalGraph.from_dict({"variables": {"B": {"type": "categorical", "values": [0, 1]}}})
    with pytest.raises(ArtefactError, match="tokenizer lacks"):
        CausalTokenizer.from_pretrained(tmp_path, other, "closed")

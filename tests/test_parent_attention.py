"""attention="parents": a variable's tokens see only its own and its parents' tokens."""

import pytest
import torch

from hf_causal import CausalEngine, train


@pytest.fixture(scope="module")
def parents_engine(tmp_path_factory):
    out = tmp_path_factory.mktemp("parents")
    train(
        {
            "world": "demo",
            "world_rows": 3000,
            "num_train_epochs": 3,
            "attention": "parents",
            "output_dir": str(out),
            "logging_steps": 100000,
        }
    )
    return CausalEngine.from_pretrained(out)


def test_non_ancestors_cannot_influence_a_variable(tmp_path):
    """Through the layers a variable sees its parents' tokens, which saw theirs: its prediction may
    depend on its ancestors (harmless: V is independent of non-descendants given its parents) but
    never on a variable that is not an ancestor, even one that comes earlier in the order."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 400
    z1, z2 = rng.integers(0, 2, n), rng.integers(0, 2, n)
    a = (rng.random(n) < 0.2 + 0.6 * z1).astype(int)
    y = (rng.random(n) < 0.2 + 0.3 * a + 0.3 * z2).astype(int)
    data = tmp_path / "rows.csv"
    pd.DataFrame({"Z1": z1, "Z2": z2, "A": a, "Y": y}).to_csv(data, index=False)
    graph = {
        "variables": {v: {"type": "categorical", "values": [0, 1]} for v in ["Z1", "Z2", "A", "Y"]},
        "edges": [["Z1", "A"], ["A", "Y"], ["Z2", "Y"]],
    }
    out = train(
        {
            "graph": graph,
            "data": str(data),
            "attention": "parents",
            "num_train_epochs": 2,
            "output_dir": str(tmp_path / "m"),
            "logging_steps": 100000,
        }
    )
    eng = CausalEngine.from_pretrained(out)
    assert eng.graph.order == ["Z1", "Z2", "A", "Y"]
    pa = [eng.query("A", given={"Z1": 1, "Z2": z}, num_samples=1).probs[1] for z in (0, 1)]
    assert pa[0] == pytest.approx(pa[1], abs=1e-6)  # Z2 precedes A but is not its ancestor
    py = [eng.query("Y", given={"Z1": 1, "Z2": z, "A": 1}, num_samples=1).probs[1] for z in (0, 1)]
    assert abs(py[0] - py[1]) > 1e-4  # Z2 is a parent of Y
    full = train(
        {
            "graph": graph,
            "data": str(data),
            "attention": "full",
            "num_train_epochs": 2,
            "output_dir": str(tmp_path / "f"),
            "logging_steps": 100000,
        }
    )
    eng_f = CausalEngine.from_pretrained(full)
    pf = [eng_f.query("A", given={"Z1": 1, "Z2": z}, num_samples=1).probs[1] for z in (0, 1)]
    assert abs(pf[0] - pf[1]) > 1e-6  # with full attention the same test can fail


def test_engine_and_training_masks_agree(parents_engine):
    """Logits from the engine's cached, chunked path equal a full pass with the training collator's mask."""
    from hf_causal import Sequencifier
    from hf_causal.attention import segment_attention_matrix
    from hf_causal.training import CausalDataCollator

    eng = parents_engine
    row = dict(age="middle", severity="mild", treatment=0, biomarker="low", recovery=2, readmitted=0)
    ids, seg = Sequencifier(eng.tokenizer).encode_row(row)
    coll = CausalDataCollator(eng.tokenizer.pad_id, segment_attention_matrix(eng.graph))
    b = coll([{"input_ids": ids, "segment_ids": seg}])
    with torch.no_grad():
        full = eng.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[0]
    # the engine reads recovery at its start token, given the forced earlier values
    d = eng.query("recovery", given={k: row[k] for k in ["age", "severity", "treatment", "biomarker"]}, num_samples=1)
    pos = ids.index(eng.tokenizer.start_ids["recovery"])
    ref = torch.softmax(full[pos, eng.tokenizer.value_ids["recovery"]], -1)
    torch.testing.assert_close(torch.tensor(list(d.probs.values()), dtype=ref.dtype), ref, atol=1e-5, rtol=0)

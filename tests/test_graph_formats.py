"""Graphs in the formats users hold, kinds inferred from data, training from a table and a DAG alone (#19)."""

import json

import networkx as nx
import pandas as pd
import pytest

from hf_causal import CausalGraph, GraphError
from hf_causal.graph_formats import load_graph, parse_structure, to_dagitty
from hf_causal.kind_inference import infer_variables

EDGES = [("A", "B"), ("A", "C"), ("B", "C"), ("C", "D")]


@pytest.fixture(scope="module")
def frame():
    n = 400
    return pd.DataFrame(
        {
            "A": ["lo", "hi"] * (n // 2),
            "B": [i % 7 + 3 for i in range(n)] * 1,
            "C": [0.37 * i for i in range(n)],
            "D": [f"the outcome note number {i} reads well enough" for i in range(n)],
        }
    )


def _reference(frame):
    spec = {"variables": infer_variables(frame), "edges": [list(e) for e in EDGES]}
    return CausalGraph.from_dict(spec)


@pytest.mark.parametrize(
    "fmt,text,suffix",
    [
        ("dot", 'digraph G {\n  A -> B [weight=1];\n  A -> C; B -> C\n  "C" -> D;\n}\n', ".dot"),
        ("dagitty", "dag {\n A -> {B C}\n C <- B\n C -> D\n}\n", ".txt"),
        ("edgelist", "source,target\nA,B\nA,C\nB,C\nC,D\n", ".csv"),
        ("edgelist", "A -> B\nA -> C\nB -> C\nC -> D\n", ".txt"),
        ("yaml", "edges:\n  - A -> B\n  - [A, C]\n  - [B, C]\n  - C -> D\n", ".yaml"),
    ],
)
def test_each_format_round_trips_to_the_same_graph(fmt, text, suffix, frame, tmp_path):
    ref = _reference(frame)
    path = tmp_path / f"g{suffix}"
    path.write_text(text)
    for source in (path, str(path), text):
        st = parse_structure(source)
        assert st.format == fmt and sorted(st.edges) == sorted(EDGES)
        g = load_graph(source, data=frame)
        assert g.order == ref.order and sorted(g.edges) == sorted(ref.edges)
        assert {n: g[n].to_dict() for n in g.order} == {n: ref[n].to_dict() for n in ref.order}


def test_networkx_dagitty_and_full_specs(frame, tmp_path):
    ref = _reference(frame)
    g = load_graph(nx.DiGraph(EDGES), data=frame)
    assert g.to_dict() == ref.to_dict()
    assert load_graph(to_dagitty(ref), data=frame).to_dict() == ref.to_dict()
    # a spec that declares every kind needs no data, in YAML and JSON alike
    path = tmp_path / "g.json"
    path.write_text(json.dumps(ref.to_dict()))
    assert CausalGraph.coerce(path).to_dict() == ref.to_dict()
    assert CausalGraph.coerce(str(path)).to_dict() == ref.to_dict()
    with pytest.raises(GraphError, match="declares no kinds"):
        load_graph("dag { A -> B }")
    with pytest.raises(GraphError, match="not columns of the data"):
        load_graph("dag { A -> Z }", data=frame)


def test_inferred_kinds_on_a_crafted_frame():
    df = pd.DataFrame(
        {
            "cat": ["b", "a", "b", "c"] * 25,
            "flag": [True, False] * 50,
            "count": [i % 30 for i in range(100)],
            "code": [str(i % 3) for i in range(100)],
            "x": [0.5 * i + 0.01 for i in range(100)],
            "wide": [i * 1000 for i in range(100)],
            "note": [f"patient {i} said the pain was mild today" for i in range(100)],
            "gappy": [1.5 * i if i % 10 else None for i in range(100)],
        }
    )
    spec = infer_variables(df)
    assert spec["cat"] == {"type": "categorical", "values": ["b", "a", "c"]}  # data order
    assert spec["flag"] == {"type": "categorical", "values": [False, True]}
    assert spec["count"] == {"type": "integer", "min": 0, "max": 29}
    assert spec["code"] == {"type": "categorical", "values": [0, 1, 2]}  # numbers written as strings
    assert spec["x"]["type"] == "continuous" and spec["wide"]["type"] == "continuous"  # 100,000-value range
    assert spec["note"] == {"type": "text", "max_length": 8}
    assert spec["gappy"]["type"] == "continuous" and spec["gappy"]["missing"] == "as_value"
    CausalGraph.from_dict({"variables": spec, "edges": []})  # every inferred spec is a valid variable


@pytest.mark.parametrize(
    "text,line",
    [
        ("digraph {\n  A -> B;\n  B -- C;\n}\n", 3),
        ("dag {\n A -> B\n\n A -> ?? \n}", 4),
        ("source,target\nA,B\nA,B,C\n", 3),
        ("A -> B\nA -> B -> C\n", 2),
        ("graph {\n A -- B\n}", 1),
    ],
)
def test_parse_errors_name_the_line(text, line):
    with pytest.raises(GraphError, match=rf"line {line}\b"):
        parse_structure(text)


def test_train_from_a_table_and_a_dag_without_a_recipe(tmp_path, capsys):
    from hf_causal import CausalEngine
    from hf_causal.cli import main

    rows = pd.DataFrame({"z": ["u", "v"] * 100, "t": [0, 1, 1, 0] * 50, "y": [0.1 * i for i in range(200)]})
    data, dag, out = tmp_path / "rows.csv", tmp_path / "dag.txt", tmp_path / "model"
    rows.to_csv(data, index=False)
    dag.write_text("dag { z -> t; z -> y; t -> y }")
    argv = ["train", "--graph", str(dag), "--data", str(data), "--output_dir", str(out), "--num_train_epochs", "1"]
    assert main([*argv, "--n_embd", "16", "--n_layer", "1", "--logging_steps", "1000"]) == 0
    assert "variable kinds inferred" in capsys.readouterr().out
    eng = CausalEngine.from_pretrained(out)
    assert {n: eng.graph[n].type for n in eng.graph.order} == {
        "z": "categorical",
        "t": "categorical",
        "y": "continuous",
    }
    assert eng.config.attention == "local"  # the default for new recipes
    # hf-causal graph infer writes the same kinds to an editable file
    assert main(["graph", "infer", "--data", str(data), "--edges", str(dag), "-o", str(tmp_path / "g.yaml")]) == 0
    assert CausalGraph.coerce(tmp_path / "g.yaml").order == eng.graph.order

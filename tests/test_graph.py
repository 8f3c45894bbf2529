import json

import networkx as nx
import pytest

from hf_causal.errors import DataError
from hf_causal.graph import CausalGraph, GraphError, Variable

SPEC = {
    "variables": {
        "Z": {"type": "categorical", "values": ["no", "yes"]},
        "A": {"type": "categorical", "values": [0, 1]},
        "M": {"type": "integer", "min": 0, "max": 3},
        "Y": {"type": "continuous", "bins": 8},
        "moves": {"type": "sequence", "alphabet": ["U", "D", "L", "R"], "max_length": 5},
        "notes": {"type": "text", "max_length": 12},
    },
    "edges": [["Z", "A"], ["A", "M"], ["M", "Y"], ["Z", "Y"], "A -> moves", ["notes", "Z"]],
}


def test_order_is_topological_and_stable():
    g = CausalGraph.from_dict(SPEC)
    assert g.is_topological(g.order)
    assert g.order == CausalGraph.from_dict(SPEC).order
    assert g.order.index("notes") < g.order.index("Z") < g.order.index("A") < g.order.index("Y")
    assert g.parents("Y") == ["Z", "M"] or set(g.parents("Y")) == {"Z", "M"}
    assert g.descendants("A") == {"M", "Y", "moves"}
    assert g.ancestors("Y") == {"notes", "Z", "A", "M"}


def test_loaders_agree(tmp_path):
    import yaml

    (tmp_path / "g.yaml").write_text(yaml.safe_dump(SPEC))
    (tmp_path / "g.json").write_text(json.dumps(SPEC))
    a = CausalGraph.from_file(tmp_path / "g.yaml")
    b = CausalGraph.from_file(tmp_path / "g.json")
    nxg = nx.DiGraph()
    for n, spec in SPEC["variables"].items():
        nxg.add_node(n, **spec)
    nxg.add_edges_from(a.edges)
    c = CausalGraph.from_networkx(nxg)
    parents_form = CausalGraph.from_dict(
        {
            "variables": {
                "Z": {"type": "categorical", "values": [0, 1]},
                "Y": {"type": "categorical", "values": [0, 1], "parents": ["Z"]},
            }
        }
    )
    assert a.order == b.order == c.order
    assert sorted(a.edges) == sorted(b.edges) == sorted(c.edges)
    assert parents_form.edges == [("Z", "Y")]
    assert CausalGraph.from_dict(a.to_dict()).order == a.order


def test_cycle_is_printed():
    spec = {
        "variables": {n: {"type": "categorical", "values": [0, 1]} for n in "ABC"},
        "edges": [["A", "B"], ["B", "C"], ["C", "A"]],
    }
    with pytest.raises(GraphError, match=r"cycle: [ABC] -> [ABC] -> [ABC] -> [ABC]"):
        CausalGraph.from_dict(spec)


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"variables": {"A": {"type": "categorical", "values": [0, 1]}}, "edges": [["A", "B"]]},
            r"edge A -> B: variable 'B' is not declared",
        ),
        (
            {
                "variables": [
                    {"name": "A", "type": "categorical", "values": [0]},
                    {"name": "A", "type": "categorical", "values": [1]},
                ]
            },
            r"duplicate variable\(s\): A",
        ),
        ({"variables": {"A": {"type": "banana"}}}, r"variable 'A': unknown type 'banana'"),
        ({"variables": {"A": {"type": "categorical"}}}, r"categorical variable 'A' needs"),
        ({"variables": {"A": {"type": "categorical", "values": [1, 1]}}}, r"'A': duplicate values"),
        ({"variables": {"A B": {"type": "categorical", "values": [1]}}}, r"invalid variable name 'A B'"),
        ({"variables": {"A": {"type": "integer", "min": 3, "max": 1}}}, r"integer variable 'A' needs"),
        ({"variables": {"S": {"type": "sequence", "alphabet": ["U"]}}}, r"sequence variable 'S' needs 'max_length'"),
        ({"variables": {"A": {"type": "categorical", "values": [0], "colour": 1}}}, r"'A': unknown option"),
        ({"variables": {"A": {"type": "categorical", "values": [0, 1]}}, "edges": [["A", "A"]]}, r"self-loop"),
    ],
)
def test_bad_graphs_name_the_culprit(spec, message):
    with pytest.raises(GraphError, match=message):
        CausalGraph.from_dict(spec)


def test_missing_graph_file(tmp_path):
    with pytest.raises(GraphError, match="does not exist"):
        CausalGraph.from_file(tmp_path / "nope.yaml")


def test_coerce_values_and_domain_errors():
    g = CausalGraph.from_dict(SPEC)
    assert g["A"].coerce("1") == 1 and type(g["A"].coerce(True)) is int  # bools map to 0/1 declared as ints
    assert g["M"].coerce("2") == 2 and g["M"].coerce(3.0) == 3
    assert g["moves"].coerce("U D") == ["U", "D"]
    with pytest.raises(DataError, match=r"variable 'A': value 7 is not one of \[0, 1\]"):
        g["A"].coerce(7)
    with pytest.raises(DataError, match=r"variable 'M': value 9 is outside the declared range 0..3"):
        g["M"].coerce(9)
    with pytest.raises(DataError, match=r"variable 'moves': symbol 'X' is not in the alphabet"):
        g["moves"].coerce(["U", "X"])
    with pytest.raises(DataError, match=r"variable 'Z': missing value; declare `missing: as_value`"):
        g["Z"].coerce(None)
    assert Variable(name="Q", type="categorical", values=[0, 1], missing="as_value").coerce(float("nan")) is None


def test_d_separation_with_do():
    g = CausalGraph.from_dict(SPEC)
    # Z -> A: dependent; after do(A) the edge is cut
    assert not g.d_separated({"Z"}, {"A"}, set())
    assert g.d_separated({"Z"}, {"A"}, set(), do=["A"])

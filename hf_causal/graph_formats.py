"""Causal graphs in the formats users hold: DOT, dagitty, edge lists, networkx, and our YAML/JSON specs.

:func:`load_graph` reads any of them (a path, by extension or content, or the text itself) into a
:class:`~hf_causal.graph.CausalGraph`. Structure-only formats (DOT, dagitty, edge lists, a bare
networkx graph) carry no variable kinds: give ``data`` and the kinds are inferred from its columns
(:mod:`hf_causal.kind_inference`). A parse error names the line.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"A": [0, 1, 0, 1], "B": ["x", "y", "y", "x"]})
    >>> g = load_graph("dag { A -> B }", data=df)
    >>> g.edges, g["B"].type
    ([('A', 'B')], 'categorical')
    >>> parse_structure("digraph { A -> B; B -> C [label=x]; }").edges
    [('A', 'B'), ('B', 'C')]
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GraphError

__all__ = ["Structure", "parse_structure", "load_graph", "to_dagitty", "write_inferred_graph", "FORMATS"]

FORMATS = ("yaml", "json", "dot", "dagitty", "edgelist", "networkx")
_ID = r'(?:"[^"]+"|[A-Za-z_][\w.\-]*)'


@dataclass
class Structure:
    """Nodes and edges, with variable specs where the source declared them."""

    nodes: list[str]
    edges: list[tuple[str, str]]
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    format: str = ""

    def declares_kinds(self) -> bool:
        return bool(self.nodes) and all("type" in self.specs.get(n, {}) for n in self.nodes)


def _unquote(s: str) -> str:
    s = s.strip()
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def _strip_comments(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = re.sub(r"//.*$|#.*$", "", line)
        out.append(line)
    return out


def _parse_arrows(text: str, source: str, fmt: str) -> Structure:
    """DOT and dagitty bodies: statements ``A -> B -> C``, ``A -> {B C}``, ``B <- A`` (dagitty), bare nodes,
    attribute lists ``[...]`` ignored. Undirected or bidirected edges are refused: a causal DAG needs
    directions (a bidirected edge is a hidden confounder, which the method does not handle)."""
    lines = _strip_comments(text)
    joined = "\n".join(lines)
    m = re.search(r"\b(strict\s+)?(digraph|dag|graph|pdag|mag)\b[^{]*\{", joined)
    if not m:
        raise GraphError(f"{source}: line 1: expected 'digraph {{ ... }}' (DOT) or 'dag {{ ... }}' (dagitty)")
    kind = m.group(2)
    if kind in ("graph", "pdag", "mag"):
        line = joined[: m.start()].count("\n") + 1
        raise GraphError(f"{source}: line {line}: a {kind!r} is not a DAG; write 'digraph' (DOT) or 'dag' (dagitty)")
    body_start = m.end()
    end = joined.rfind("}")
    if end < body_start:
        raise GraphError(f"{source}: line {len(lines)}: the graph's '{{' is never closed")
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []

    def add(n: str) -> None:
        if n not in nodes:
            nodes.append(n)

    offset = joined[:body_start].count("\n")
    body = joined[body_start:end]
    for i, raw in enumerate(body.split("\n")):
        lineno = offset + i + 1
        for stmt in re.split(r";", raw):
            stmt = re.sub(r"\[[^\]]*\]", "", stmt).strip()  # attributes
            if not stmt or re.fullmatch(r"(graph|node|edge)\b.*", stmt) or re.fullmatch(r"\w+\s*=\s*\S+", stmt):
                continue
            if "--" in stmt or "<->" in stmt or "@-@" in stmt:
                raise GraphError(
                    f"{source}: line {lineno}: {stmt!r} is not a directed edge; a causal DAG needs '->' "
                    "(bidirected edges stand for hidden confounders, which the method does not handle)"
                )
            parts = re.split(r"(->|<-)", stmt)
            groups = []
            for j, p in enumerate(parts):
                if j % 2:
                    continue
                p = p.strip().strip("{}").strip()
                names = re.findall(_ID, p)
                rest = re.sub(_ID, "", p).replace(",", "").strip()
                if rest or not names:
                    raise GraphError(f"{source}: line {lineno}: cannot read {stmt!r} (near {p!r})")
                groups.append([_unquote(n) for n in names])
            for g in groups:
                for n in g:
                    add(n)
            for j in range(len(groups) - 1):
                arrow = parts[2 * j + 1]
                a, b = (groups[j], groups[j + 1]) if arrow == "->" else (groups[j + 1], groups[j])
                edges += [(x, y) for x in a for y in b]
    return Structure(nodes, edges, {}, "dagitty" if kind == "dag" else "dot")


def _parse_edgelist(text: str, source: str) -> Structure:
    """CSV/TSV with two columns (a header such as ``source,target`` is skipped) or ``A -> B`` lines."""
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    lines = text.splitlines()
    if any("->" in ln for ln in lines):
        for i, ln in enumerate(lines, 1):
            ln = re.sub(r"#.*$", "", ln).strip()
            if not ln:
                continue
            if ln.count("->") != 1:
                raise GraphError(f"{source}: line {i}: expected 'A -> B', got {ln!r}")
            a, b = (s.strip() for s in ln.split("->"))
            edges.append((a, b))
    else:
        dialect = "excel-tab" if "\t" in text and "," not in text else "excel"
        for i, row in enumerate(csv.reader(io.StringIO(text), dialect=dialect), 1):
            row = [c.strip() for c in row]
            if not row or all(not c for c in row) or row[0].startswith("#"):
                continue
            if len(row) != 2 or not all(row):
                raise GraphError(f"{source}: line {i}: an edge list row has two columns (parent, child), got {row}")
            if i == 1 and [c.lower() for c in row] in (["source", "target"], ["from", "to"], ["parent", "child"]):
                continue
            edges.append((row[0], row[1]))
    for a, b in edges:
        for n in (a, b):
            if n not in nodes:
                nodes.append(n)
    return Structure(nodes, edges, {}, "edgelist")


def _from_spec(spec: Any, source: str) -> Structure:
    from .graph import CausalGraph

    if not isinstance(spec, Mapping):
        raise GraphError(f"{source} must hold a mapping with 'variables' and 'edges'")
    if "graph" in spec and "variables" not in spec:
        spec = spec["graph"]
    variables = spec.get("variables")
    if isinstance(variables, (list, tuple)):  # the list form: [{name: A, type: ...}, ...]
        if all(isinstance(v, Mapping) and "type" in v for v in variables):
            g = CausalGraph.from_dict(spec)  # names duplicates and bad entries
            return Structure(
                list(g.variables), list(g.edges), {n: g.to_dict()["variables"][n] for n in g.variables}, "yaml"
            )
        listed = {}
        for v in variables:
            name = v.get("name") if isinstance(v, Mapping) else v
            if not isinstance(name, str):
                raise GraphError(f"{source}: variable entry {v!r}: give each a name")
            if name in listed:
                raise GraphError(f"{source}: duplicate variable(s): {name}")
            listed[name] = {k: x for k, x in v.items() if k != "name"} if isinstance(v, Mapping) else {}
        variables = listed
    if variables is not None and not isinstance(variables, Mapping):
        raise GraphError(f"{source}: 'variables' must map names to specs (or list specs with a 'name')")
    if variables is not None and all(isinstance(v, Mapping) and "type" in v for v in dict(variables).values()):
        g = CausalGraph.from_dict(spec)
        return Structure(
            list(g.variables), list(g.edges), {n: g.to_dict()["variables"][n] for n in g.variables}, "yaml"
        )
    # edges only (or variables without kinds): the kinds come from the data
    specs = {str(k): dict(v or {}) for k, v in dict(variables or {}).items()}
    edges: list[tuple[str, str]] = []
    for e in spec.get("edges", []) or []:
        if isinstance(e, str) and "->" in e:
            a, b = (s.strip() for s in e.split("->", 1))
        elif isinstance(e, (list, tuple)) and len(e) == 2:
            a, b = str(e[0]), str(e[1])
        else:
            raise GraphError(f"{source}: edge {e!r}: write edges as 'A -> B' or [A, B]")
        edges.append((a, b))
    for n, opts in specs.items():
        edges += [(str(p), n) for p in opts.pop("parents", []) or []]
    nodes = list(specs)
    for a, b in edges:
        for n in (a, b):
            if n not in nodes:
                nodes.append(n)
    return Structure(nodes, edges, specs, "yaml")


def parse_structure(source: Any) -> Structure:
    """The nodes, edges and any variable specs of a graph given as a path, a string, a mapping or a networkx
    ``DiGraph``. Files are recognised by extension (``.yaml .yml .json .dot .gv .csv .tsv .txt``), then by
    content; a string that is not an existing path is read as graph text."""
    import networkx as nx

    from .graph import CausalGraph, load_spec_text

    if isinstance(source, CausalGraph):
        return Structure(list(source.order), list(source.edges), source.to_dict()["variables"], "yaml")
    if isinstance(source, nx.Graph):
        if not isinstance(source, nx.DiGraph):
            raise GraphError("an undirected networkx graph is not a causal DAG; give an nx.DiGraph")
        specs = {str(n): dict(a) for n, a in source.nodes(data=True) if a}
        return Structure([str(n) for n in source.nodes], [(str(a), str(b)) for a, b in source.edges], specs, "networkx")
    if isinstance(source, Mapping):
        return _from_spec(source, "the graph mapping")
    if not isinstance(source, (str, Path)):
        raise GraphError(f"a graph is a path, graph text, a mapping or an nx.DiGraph, got {type(source).__name__}")
    text, name, suffix = str(source), "the graph text", ""
    is_path = isinstance(source, Path) or (
        "\n" not in text
        and len(text) < 4096
        and (Path(text).exists() or re.fullmatch(r"[^{};]+\.(ya?ml|json|dot|gv|csv|tsv|txt)", text.strip(), re.I))
    )
    if is_path:
        path = Path(source)
        if not path.exists():
            raise GraphError(f"graph file {path} does not exist")
        text, name, suffix = path.read_text(), str(path), path.suffix.lower()
    head = "\n".join(_strip_comments(text)).lstrip()
    if suffix in (".dot", ".gv") or re.match(r"(strict\s+)?(di)?graph\b", head):
        return _parse_arrows(text, name, "dot")
    if re.match(r"(dag|pdag|mag)\s*\{", head):
        return _parse_arrows(text, name, "dagitty")
    if suffix in (".csv", ".tsv"):
        return _parse_edgelist(text, name)
    if suffix in (".yaml", ".yml", ".json") or re.match(r"[{]|\w+\s*:", head):
        return _from_spec(load_spec_text(text, name, json_format=suffix == ".json"), name)
    return _parse_edgelist(text, name)


def load_graph(source: Any, data: Any = None) -> Any:
    """A :class:`~hf_causal.graph.CausalGraph` from any supported format; kinds the source does not declare
    are inferred from ``data`` (a table or a path) and the rows' other columns are ignored."""
    from .graph import CausalGraph

    if isinstance(source, CausalGraph):
        return source
    st = parse_structure(source)
    if st.declares_kinds():
        return CausalGraph.from_dict({"variables": {n: st.specs[n] for n in st.nodes}, "edges": st.edges})
    if data is None:
        raise GraphError(
            f"the graph ({st.format}) declares no kinds for {[n for n in st.nodes if 'type' not in st.specs.get(n, {})]}; "
            "give the data to infer them (train with --data, or `hf-causal graph infer --data D --edges E -o graph.yaml` "
            "to write a graph file you can edit)"
        )
    from .data import load_table
    from .kind_inference import infer_variables

    df = load_table(data)
    missing = [n for n in st.nodes if n not in df.columns]
    if missing:
        raise GraphError(f"the graph's variable(s) {missing} are not columns of the data (columns: {list(df.columns)})")
    todo = [n for n in st.nodes if "type" not in st.specs.get(n, {})]
    inferred = infer_variables(df, todo)
    variables = {n: {**st.specs.get(n, {}), **inferred.get(n, {})} for n in st.nodes}
    return CausalGraph.from_dict({"variables": variables, "edges": st.edges})


def to_dagitty(graph: Any) -> str:
    """The graph's structure as a dagitty string (``dag { A -> B; ... }``)."""
    lines = [f"  {n}" for n in graph.order if not graph.parents(n) and not any(a == n for a, _ in graph.edges)]
    lines += [f"  {a} -> {b}" for a, b in graph.edges]
    return "dag {\n" + "\n".join(lines) + "\n}\n"


def write_inferred_graph(data: Any, edges: Any, output: str | Path) -> Any:
    """``hf-causal graph infer``: the DAG ``edges`` (any format) with every undeclared kind inferred from ``data``,
    written atomically to ``output`` as a YAML spec a user can read and edit (defaults left out). Returns the graph."""
    from dataclasses import fields

    import yaml

    from .fileio import atomic_write_text
    from .graph import Variable

    st = parse_structure(edges)
    graph = load_graph({"variables": {n: st.specs.get(n, {}) for n in st.nodes}, "edges": st.edges}, data=data)
    defaults = {f.name: f.default for f in fields(Variable)}
    spec = {
        "variables": {
            n: {k: v for k, v in graph[n].to_dict().items() if k != "name" and v != defaults.get(k, object())}
            for n in graph.order
        },
        "edges": [[a, b] for a, b in graph.edges],
    }
    header = (
        f"# inferred by `hf-causal graph infer` from {data} and {edges} ({st.format});\n"
        "# check each variable's type and values, then train with --graph this file\n"
    )
    atomic_write_text(output, header + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return graph

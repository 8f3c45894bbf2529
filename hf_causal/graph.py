"""Causal graphs over typed variables.

A :class:`CausalGraph` holds named :class:`Variable` specs and directed edges. It is
validated on construction (no cycles, no unknown variables, no duplicates) and gives a
canonical topological order, ancestor/descendant queries and d-separation.

Example:
    >>> g = CausalGraph.from_dict({
    ...     "variables": {"Z": {"type": "categorical", "values": ["no", "yes"]},
    ...                   "A": {"type": "categorical", "values": [0, 1]},
    ...                   "Y": {"type": "continuous", "bins": 8}},
    ...     "edges": [["Z", "A"], ["Z", "Y"], ["A", "Y"]]})
    >>> g.order
    ['Z', 'A', 'Y']
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import networkx as nx

from .errors import DataError, GraphError
from .kinds import KINDS, VariableKind
from .kinds.base import is_missing

__all__ = ["CausalGraph", "GraphError", "Variable", "VARIABLE_TYPES"]

VARIABLE_TYPES = tuple(KINDS)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _int_option(name: str, opt: str, v: Any) -> int | None:
    """An integer option (``min``, ``max``, ``bins``, ``max_length``), or a GraphError naming it."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise GraphError(f"variable {name!r}: {opt} must be an integer, got {v!r}")
    try:
        f = float(v)
    except ValueError:
        raise GraphError(f"variable {name!r}: {opt} must be an integer, got {v!r}") from None
    if not math.isfinite(f) or not f.is_integer():
        raise GraphError(f"variable {name!r}: {opt} must be an integer, got {v!r}")
    return int(f)


@dataclass
class Variable:
    """One variable of the causal graph: its spec; the behaviour of its ``type`` is in :mod:`hf_causal.kinds`.

    Attributes:
        name: identifier (letters, digits, ``_ . -``; no spaces).
        type: one of :data:`VARIABLE_TYPES` (``categorical``, ``continuous``, ``integer``, ``sequence``, ``text``).
        values: the declared categories (categorical).
        min, max: the declared inclusive range (integer).
        bins: number of quantile bins (continuous).
        edges, bin_means: fitted bin edges and within-bin means (continuous; see :meth:`fit`).
        alphabet: the symbols (sequence).
        max_length: maximum number of tokens/symbols (text, sequence).
        overflow: ``error`` or ``truncate`` when a text/sequence is longer than ``max_length``.
        missing: ``error`` (default) or ``as_value`` (missing becomes its own token, decoded as None).
    """

    name: str
    type: str
    values: list[Any] | None = None
    min: int | None = None
    max: int | None = None
    bins: int = 32
    edges: list[float] | None = None
    bin_means: list[float] | None = None
    alphabet: list[str] | None = None
    max_length: int | None = None
    overflow: str = "error"
    missing: str = "error"
    description: str = ""

    def __post_init__(self) -> None:
        n = self.name
        if not isinstance(n, str) or not _NAME_RE.match(n):
            raise GraphError(f"invalid variable name {n!r}: use letters, digits, '_', '.', '-' and no spaces")
        if not isinstance(self.type, str) or self.type not in KINDS:
            raise GraphError(f"variable {n!r}: unknown type {self.type!r}; choose one of {VARIABLE_TYPES}")
        if self.missing not in ("error", "as_value"):
            raise GraphError(f"variable {n!r}: missing must be 'error' or 'as_value', got {self.missing!r}")
        if self.overflow not in ("error", "truncate"):
            raise GraphError(f"variable {n!r}: overflow must be 'error' or 'truncate', got {self.overflow!r}")
        if not isinstance(self.description, str):
            raise GraphError(f"variable {n!r}: description must be a string")
        for opt in ("values", "alphabet", "edges", "bin_means"):
            v = getattr(self, opt)
            if v is not None and not isinstance(v, (list, tuple)):
                raise GraphError(f"variable {n!r}: {opt} must be a list, got {v!r}")
        for opt in ("min", "max", "bins", "max_length"):
            setattr(self, opt, _int_option(n, opt, getattr(self, opt)))
        self.kind.validate(self)
        if self.max_length is not None and self.max_length < 1:
            raise GraphError(f"variable {n!r}: max_length must be >= 1")

    @property
    def kind(self) -> VariableKind:
        """The behaviour of this variable's type (:mod:`hf_causal.kinds`)."""
        return KINDS[self.type]

    # --- values -----------------------------------------------------------------------------
    @property
    def is_single_token(self) -> bool:
        """Whether every value is exactly one token (its distribution is one softmax)."""
        return self.kind.single_token

    @property
    def max_tokens(self) -> int:
        """The most tokens this variable takes in a sequencified row: its start token and its value's
        (one for a single-token kind; ``max_length`` and an end otherwise)."""
        return 2 if self.is_single_token else 2 + (self.max_length or 1)

    @property
    def is_numeric(self) -> bool:
        return self.kind.is_numeric(self)

    def domain(self) -> list[Any]:
        """The finite list of values (categorical, integer)."""
        dom = self.kind.domain(self)
        if dom is None:
            raise GraphError(f"variable {self.name!r} of type {self.type} has no finite domain")
        return dom

    def coerce(self, value: Any) -> Any:
        """Map a user value (e.g. the string ``"1"`` from a CLI) to the declared value.

        Raises DataError naming the variable and value when it is outside the domain.
        """
        if is_missing(value):
            if self.missing == "as_value":
                return None
            raise DataError(f"variable {self.name!r}: missing value; declare `missing: as_value` to allow it")
        return self.kind.coerce(self, value)

    # --- tokens -----------------------------------------------------------------------------
    @property
    def missing_token(self) -> str | None:
        return f"<{self.name}?>" if self.missing == "as_value" else None

    def value_tokens(self) -> list[str]:
        """The value tokens this variable adds to the vocabulary (closed kinds; text adds none)."""
        toks = self.kind.value_tokens(self)
        return toks + ([self.missing_token] if self.missing_token else [])

    def encode(self, value: Any) -> list[str]:
        """The token strings of a value (a text value is one string, tokenized by the model's tokenizer)."""
        value = self.coerce(value)
        if value is None:
            return [self.missing_token]
        return self.kind.encode(self, value)

    def decode(self, tokens: Sequence[str], rng=None) -> Any:
        """The value of a segment's token strings (continuous: the bin mean, or a uniform draw with ``rng``)."""
        if self.missing_token and list(tokens) == [self.missing_token]:
            return None
        return self.kind.decode(self, list(tokens), rng)

    def numbers(self) -> list[float] | None:
        """The numeric value of each value token (missing: NaN), or None for a non-numeric variable."""
        nums = self.kind.numbers(self)
        if nums is None:
            return None
        return list(nums) + ([float("nan")] if self.missing_token else [])

    def value_keys(self) -> list[Any]:
        """The labels of this variable's distribution entries (missing: None)."""
        return self.kind.value_keys(self) + ([None] if self.missing == "as_value" else [])

    def fit(self, values: Iterable[Any]) -> Variable:
        """This variable fitted to training values (continuous bins), as a new object."""
        return self.kind.fit(self, list(values))

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in d.items() if v is not None and not (k == "description" and not v)}


def _edge_end(v: Any, where: Any) -> str:
    if not isinstance(v, (str, int)) or isinstance(v, bool):
        raise GraphError(f"edge {where!r}: {v!r} is not a variable name")
    return str(v)


def load_spec_text(text: str, source: str, json_format: bool = False, error: type[Exception] = GraphError) -> Any:
    """YAML (safe) or JSON text as Python data, refusing duplicate keys (which both formats would
    otherwise resolve silently, keeping the last); problems raise ``error`` naming ``source``."""
    if json_format:

        def pairs(items):
            seen = {}
            for k, v in items:
                if k in seen:
                    raise error(f"{source}: key {k!r} appears twice in the same mapping; give each once")
                seen[k] = v
            return seen

        try:
            return json.loads(text, object_pairs_hook=pairs)
        except json.JSONDecodeError as e:
            raise error(f"could not parse {source}: {e}") from None
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise error(
                    f"{source}, line {key_node.start_mark.line + 1}: key {key!r} appears twice in the same mapping "
                    f"(first on line {seen[key]}); give each variable and option once"
                )
            seen[key] = key_node.start_mark.line + 1
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise error(f"could not parse {source}: {e}") from None


@dataclass
class CausalGraph:
    """A DAG over typed variables.

    Build it with :meth:`from_dict`, :meth:`from_file` (YAML or JSON) or
    :meth:`from_networkx`. ``order`` is the canonical topological order: Kahn's algorithm,
    ties broken by declaration order, so it is stable across runs.
    """

    variables: dict[str, Variable]
    edges: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen = set()
        for a, b in self.edges:
            for v in (a, b):
                if v not in self.variables:
                    raise GraphError(f"edge {a} -> {b}: variable {v!r} is not declared")
            if a == b:
                raise GraphError(f"edge {a} -> {b}: a self-loop is a cycle")
            if (a, b) in seen:
                raise GraphError(f"edge {a} -> {b} is listed twice")
            seen.add((a, b))
        g = nx.DiGraph()
        g.add_nodes_from(self.variables)
        g.add_edges_from(self.edges)
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            path = " -> ".join([e[0] for e in cycle] + [cycle[0][0]])
            raise GraphError(f"the graph has a cycle: {path}")
        self._g = g
        decl = {v: i for i, v in enumerate(self.variables)}
        self.order: list[str] = list(nx.lexicographical_topological_sort(g, key=lambda v: decl[v]))

    # --- constructors ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> CausalGraph:
        """From ``{"variables": {name: {...}} | [{name:..., ...}], "edges": [[a, b], ...]}``.

        Instead of ``edges``, a variable may list ``parents: [...]``.
        """
        if not isinstance(spec, Mapping):
            raise GraphError(f"a graph spec is a mapping with 'variables' and 'edges', got {type(spec).__name__}")
        if "variables" not in spec:
            raise GraphError("graph spec needs a 'variables' section")
        raw = spec["variables"]
        items: list[tuple[str, dict]] = []
        if isinstance(raw, Mapping):
            for k, v in raw.items():
                if v is not None and not isinstance(v, Mapping):
                    raise GraphError(f"variable {k!r}: its spec must be a mapping of options, got {v!r}")
                items.append((str(k), dict(v or {})))
        elif isinstance(raw, (list, tuple)):
            for v in raw:
                if not isinstance(v, Mapping):
                    raise GraphError(f"variable entry {v!r} must be a mapping with a 'name'")
                v = dict(v)
                if "name" not in v:
                    raise GraphError(f"variable entry {v} has no 'name'")
                items.append((str(v.pop("name")), v))
        else:
            raise GraphError(f"'variables' must map names to specs (or list specs with a 'name'), got {raw!r}")
        names = [n for n, _ in items]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise GraphError(f"duplicate variable(s): {', '.join(dups)}")
        edges: list[tuple[str, str]] = []
        variables: dict[str, Variable] = {}
        known = {f for f in Variable.__dataclass_fields__}
        for name, opts in items:
            parents = opts.pop("parents", []) or []
            if not isinstance(parents, (list, tuple)):
                raise GraphError(f"variable {name!r}: parents must be a list of variable names, got {parents!r}")
            for p in parents:
                edges.append((_edge_end(p, name), name))
            unknown = set(map(str, opts)) - known
            if unknown:
                raise GraphError(f"variable {name!r}: unknown option(s) {sorted(unknown)}")
            if "type" not in opts:
                raise GraphError(f"variable {name!r} has no 'type' (one of {VARIABLE_TYPES})")
            variables[name] = Variable(name=name, **opts)
        raw_edges = spec.get("edges", []) or []
        if not isinstance(raw_edges, (list, tuple)):
            raise GraphError(f"'edges' must be a list of [A, B] pairs or 'A -> B' strings, got {raw_edges!r}")
        for e in raw_edges:
            if isinstance(e, str):
                if "->" not in e:
                    raise GraphError(f"edge {e!r}: write edges as 'A -> B' or [A, B]")
                a, b = (s.strip() for s in e.split("->", 1))
            else:
                if not isinstance(e, (list, tuple)) or len(e) != 2:
                    raise GraphError(f"edge {e!r} must have exactly two ends")
                a, b = _edge_end(e[0], e), _edge_end(e[1], e)
            edges.append((a, b))
        return cls(variables=variables, edges=edges)

    @classmethod
    def from_file(cls, path: str | Path) -> CausalGraph:
        """Load a YAML (``.yaml``/``.yml``) or JSON graph spec (``yaml.safe_load``); a key given twice
        (a variable declared twice, say) is an error naming the key, the line and the file."""
        path = Path(path)
        if not path.exists():
            raise GraphError(f"graph file {path} does not exist")
        text = path.read_text()
        spec = load_spec_text(text, str(path), json_format=path.suffix == ".json")
        if not isinstance(spec, Mapping):
            raise GraphError(f"graph file {path} must hold a mapping with 'variables' and 'edges'")
        if "graph" in spec and "variables" not in spec:
            spec = spec["graph"]
        return cls.from_dict(spec)

    def fit(self, data) -> CausalGraph:
        """A new graph whose variables are fitted to a table's columns (continuous bins); self is unchanged."""
        fitted = {}
        for n, v in self.variables.items():
            col = data[n].tolist()
            try:
                fitted[n] = v.fit(col)
            except DataError:
                for i, x in zip(data.index, col):  # name the first row at fault
                    try:
                        v.coerce(x)
                    except DataError as e:
                        raise DataError(f"row {i}: {e}") from None
                raise
        return CausalGraph(fitted, list(self.edges))

    @classmethod
    def from_networkx(cls, g: nx.DiGraph, variables: Mapping[str, Mapping[str, Any]] | None = None) -> CausalGraph:
        """From a DiGraph whose node attributes (or ``variables[name]``) hold the variable specs."""
        specs = {}
        for n, attrs in g.nodes(data=True):
            opts = dict(attrs)
            if variables and n in variables:
                opts.update(variables[n])
            specs[str(n)] = opts
        return cls.from_dict({"variables": specs, "edges": [[str(a), str(b)] for a, b in g.edges]})

    @classmethod
    def coerce(cls, graph: CausalGraph | Mapping | str | Path | nx.DiGraph) -> CausalGraph:
        if isinstance(graph, CausalGraph):
            return graph
        if isinstance(graph, nx.DiGraph):
            return cls.from_networkx(graph)
        if isinstance(graph, Mapping):
            return cls.from_dict(graph)
        from .graph_formats import load_graph

        return load_graph(graph)  # YAML/JSON specs, DOT, dagitty, edge lists (kinds declared)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variables": {
                n: {k: v for k, v in var.to_dict().items() if k != "name"} for n, var in self.variables.items()
            },
            "edges": [[a, b] for a, b in self.edges],
        }

    # --- structure ------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self.variables

    def __getitem__(self, name: str) -> Variable:
        return self.variable(name)

    def variable(self, name: str) -> Variable:
        if name not in self.variables:
            raise GraphError(f"variable {name!r} is not in the graph (variables: {', '.join(self.variables)})")
        return self.variables[name]

    def parents(self, name: str) -> list[str]:
        self.variable(name)
        return [p for p in self.order if self._g.has_edge(p, name)]

    def ancestors(self, names: str | Iterable[str]) -> set[str]:
        names = [names] if isinstance(names, str) else list(names)
        out: set[str] = set()
        for n in names:
            self.variable(n)
            out |= nx.ancestors(self._g, n)
        return out

    def descendants(self, names: str | Iterable[str]) -> set[str]:
        names = [names] if isinstance(names, str) else list(names)
        out: set[str] = set()
        for n in names:
            self.variable(n)
            out |= nx.descendants(self._g, n)
        return out

    def is_topological(self, order: list[str]) -> bool:
        pos = {v: i for i, v in enumerate(order)}
        return set(order) == set(self.variables) and all(pos[a] < pos[b] for a, b in self.edges)

    def d_separated(self, x: Iterable[str], y: Iterable[str], z: Iterable[str], do: Iterable[str] = ()) -> bool:
        """Whether X is d-separated from Y given Z in the graph mutilated by ``do`` (edges into it cut)."""
        g = self._g.copy()
        for d in do:
            g.remove_edges_from(list(g.in_edges(d)))
        x, y, z = set(x), set(y), set(z)
        if not x or not y:
            return True
        return nx.is_d_separator(g, x, y, z)

    def random_topological_order(self, rng) -> list[str]:
        """A uniformly drawn next-available choice at each step (a random valid order)."""
        indeg = {v: self._g.in_degree(v) for v in self.variables}
        avail = [v for v in self.variables if indeg[v] == 0]
        order = []
        while avail:
            i = int(rng.integers(len(avail)))
            v = avail.pop(i)
            order.append(v)
            for c in self._g.successors(v):
                indeg[c] -= 1
                if indeg[c] == 0:
                    avail.append(c)
        return order

    def as_networkx(self) -> nx.DiGraph:
        return self._g.copy()

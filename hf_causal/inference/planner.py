"""Query planning: validate a query, refuse what the method cannot answer exactly, choose the walk.

A :class:`Plan` says which variables the sampler walks (in which order, stopping after the last
one the query needs), which values it forces (``do``) or conditions on (``given``, or per-row
contexts taken from data), and which variable's distribution is read out instead of sampled.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..errors import CausalWarning, DataError, GraphError, QueryError, UnsupportedQueryError
from ..interventions import PartialSequence

__all__ = ["Plan", "Planner"]


@dataclass
class Plan:
    """What the sampler does for one query."""

    order: list[str]
    """Variables to walk, truncated after the last one needed."""
    do: dict[str, Any]
    """Intervened variables and their (coerced) values or :class:`PartialSequence`."""
    given: dict[str, Any]
    """Conditioned-on variables (forced like ``do``, but a prefix conditional)."""
    readout: str | None
    """The variable whose distribution is read from the softmax instead of sampled."""
    extrapolated: dict[str, Any] = field(default_factory=dict)
    """Continuous ``do``/``given`` values outside the training range, forced anyway (``extrapolate=True``)."""
    targets: list[str] = field(default_factory=list)
    """The variables the query asks about."""
    weighted: list[str] = field(default_factory=list)
    """Evidence answered by likelihood weighting (method.md §5c): forced where it comes in the order, each
    draw weighted by the model's probability of it. Empty when prefix conditioning is exact."""
    sample_readout: bool = False
    """Sample the target instead of reading its softmax: weighted evidence after it depends on its value."""
    weighted_rows: list[str] = field(default_factory=list)
    """Per-row data columns answered by likelihood weighting (rows whose columns are not an initial segment):
    each row's value forced and its probability kept as the draw's weight, normalised within the row's draws."""
    do_rows: list[str] = field(default_factory=list)
    """Intervened variables whose forced value is each data row's own (its column in the rows; ``do`` holds one
    of the values, for the checks): both arms of a contrast in one walk (``estimators._paired_arms``)."""


class Planner:
    """Validates queries against a graph and a model's training configuration and returns plans.

    Args:
        graph: the causal graph.
        tokenizer: the :class:`~hf_causal.tokenization.CausalTokenizer` (length checks of forced values).
        order_policy: the model's training orders, ``canonical`` or ``random``.
        loss_variables: the variables whose conditionals were trained (None: all).
        extrapolate: force continuous values outside the range seen in training (into the edge bin),
            marking the answer as an extrapolation; by default they are refused.
        ancestral: walk only what the query needs and its ancestors (exact when each variable's
            prediction reads its parents' tokens only: ``attention: local`` or ``two_stream``, whose
            positions are counted within each segment); otherwise every variable before the last one needed.
    """

    def __init__(
        self,
        graph,
        tokenizer,
        order_policy: str = "canonical",
        loss_variables: list[str] | None = None,
        extrapolate: bool = False,
        ancestral: bool = False,
    ):
        self.ancestral = ancestral
        self.graph = graph
        self.tokenizer = tokenizer
        self.order_policy = order_policy
        self.loss_variables = loss_variables
        self.extrapolate = extrapolate
        self.position = {n: i for i, n in enumerate(graph.order)}

    # --- values ---------------------------------------------------------------------------
    def variable(self, name: str, what: str = "query"):
        """The graph's variable ``name``; a QueryError naming the query part if there is none."""
        if not isinstance(name, str):
            raise QueryError(f"{what}: a variable name is a string, got {name!r}")
        try:
            return self.graph.variable(name)
        except GraphError as e:
            raise QueryError(f"{what}: {e}") from None

    def coerce(
        self, values: Mapping[str, Any] | None, what: str, extrapolated: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``do``/``given`` values as the declared values (length-checked for text and sequences; continuous
        values checked against the training range, recorded in ``extrapolated`` when forced beyond it)."""
        if values is not None and not isinstance(values, Mapping):
            raise QueryError(f"{what} must map variable names to values, got {values!r}")
        out = {}
        for k, v in (values or {}).items():
            var = self.variable(k, what)
            if callable(v):
                raise UnsupportedQueryError(f"{what}[{k!r}]: soft interventions (callables) are not supported yet")
            if isinstance(v, PartialSequence):
                out[k] = self._coerce_partial(k, v, what)
                continue
            try:
                out[k] = var.coerce(v)
                if not var.is_single_token:
                    self.tokenizer.encode_value(k, out[k])  # length checks
            except DataError as e:
                raise QueryError(f"{what}: {e}") from None
            if var.edges is not None and out[k] is not None and not var.edges[0] <= out[k] <= var.edges[-1]:
                lo, hi = var.edges[0], var.edges[-1]
                if not self.extrapolate:
                    raise QueryError(
                        f"{what}: variable {k!r}: value {out[k]:g} is outside the range seen in training "
                        f"[{lo:g}, {hi:g}]; the model's bins cannot represent it (it would be clipped to the edge "
                        "bin). Choose a value in the range, or load the engine with extrapolate=True "
                        "(CLI: --extrapolate) to force the edge bin and get an answer marked as an extrapolation"
                    )
                if extrapolated is not None:
                    extrapolated[f"{what}[{k}]"] = {"value": out[k], "fitted_range": [lo, hi]}
        return out

    def _coerce_partial(self, k: str, v: PartialSequence, what: str) -> PartialSequence:
        var = self.graph[k]
        if what != "do":
            raise UnsupportedQueryError(
                f"{what}[{k!r}]: a PartialSequence is an intervention (do=); conditioning on some steps of a "
                "sequence is not a prefix conditional of the model"
            )
        if var.type != "sequence":
            raise UnsupportedQueryError(
                f"do[{k!r}]: PartialSequence needs a sequence variable; {k!r} is {var.type}"
                + (
                    " (force whole text values, or declare the words as a sequence variable)"
                    if var.type == "text"
                    else ""
                )
            )
        top = max([*v.forced, (v.length or 0) - 1], default=-1)
        if top >= var.max_length or (v.length or 0) > var.max_length:
            raise QueryError(
                f"do: {k!r} has max_length {var.max_length}, but the partial intervention reaches step {top}"
            )
        forced = {}
        for i, sym in v.forced.items():
            try:
                (forced[i],) = var.coerce([sym])
            except DataError as e:
                raise QueryError(f"do: {k!r} step {i}: {e}") from None
        return PartialSequence(forced, v.length)

    # --- plans ----------------------------------------------------------------------------
    def plan(
        self,
        targets: Sequence[str],
        do: Mapping[str, Any] | None,
        given: Mapping[str, Any] | None,
        readout: str | None = None,
        per_row_given: Sequence[str] = (),
        warn: bool = True,
        weigh_rows: bool = False,
    ) -> Plan:
        """The plan of a query, or an :class:`UnsupportedQueryError` saying why it has none. ``weigh_rows``:
        per-row columns that are not an initial segment are weighted (``Plan.weighted_rows``) instead of refused."""
        g = self.graph
        for t in targets:
            self.variable(t, "target")
        extrapolated: dict[str, Any] = {}
        do = self.coerce(do, "do", extrapolated)
        given = self.coerce(given, "given", extrapolated)
        given_names = list(given) + list(per_row_given)
        for t in targets:
            if t in do:
                raise UnsupportedQueryError(f"target {t!r} is also intervened on; its value is fixed by do()")
            if t in given_names:
                raise UnsupportedQueryError(f"target {t!r} is also in given")
        both = set(do) & set(given_names)
        if both:
            raise UnsupportedQueryError(f"variable(s) {sorted(both)} are both intervened on and conditioned on")
        desc = g.descendants(do) if do else set()
        bad = [v for v in per_row_given if v in desc]
        if bad:
            src = [d for d in do if bad[0] in g.descendants(d)]
            raise UnsupportedQueryError(
                f"cannot take {bad[0]!r} from data rows: it is a descendant of the intervened {src[0]!r}; give it "
                "as evidence (given=) to condition on it by likelihood weighting"
            )
        needs_weights = any(v in desc for v in given)  # post-treatment evidence: not a prefix conditional
        needs_row_weights = False
        if do and warn:
            for t in targets:
                if t not in desc:
                    warnings.warn(
                        f"target {t!r} is not a descendant of any intervened variable ({', '.join(do)}): "
                        "the intervention cannot change it",
                        CausalWarning,
                        stacklevel=4,
                    )
        order = self.order_for(set(targets) | set(do) | set(given_names), set(given_names))
        pos = {v: i for i, v in enumerate(order)}
        needed = set(targets) | set(given_names)
        last = max(pos[v] for v in needed) if needed else -1
        order = order[: last + 1]
        # prefix conditioning is exact only if nothing sampled before a given depends on it; otherwise the
        # evidence is weighted (likelihood weighting), which is exact in expectation for evidence anywhere
        for v in order:
            if v in do or v in given_names:
                continue
            later = [e for e in given_names if pos[e] > pos[v]]
            if later and not g.d_separated({v}, later, order[: pos[v]], do=do):
                rows_later = [e for e in later if e in per_row_given]
                if rows_later and not weigh_rows:
                    raise UnsupportedQueryError(
                        f"cannot take {rows_later} from data rows: {v!r} comes before it in the model's order "
                        f"({' -> '.join(order)}) and depends on it; give the rows' earlier columns too, pass the "
                        "values as evidence (given=), or ask individual_effects(), which weighs each row's draws"
                    )
                needs_row_weights |= bool(rows_later)
                needs_weights |= any(e in given for e in later)
        weighted = list(given) if needs_weights else []
        sample_readout = bool(weighted) and any(pos[e] > pos[t] for e in weighted for t in targets if t in pos)
        trained = self.loss_variables
        if trained is not None:
            untrained = [v for v in order if v not in do and v not in given_names and v not in trained]
            if untrained:
                raise UnsupportedQueryError(
                    f"this model was trained on the conditionals of {trained} only (loss_variables), so it cannot "
                    f"sample {untrained}: take them from data (data=rows with those columns) or give them, or "
                    "retrain without loss_variables"
                )
        weighted_rows = list(per_row_given) if needs_row_weights else []
        return Plan(order, do, given, readout, extrapolated, list(targets), weighted, sample_readout, weighted_rows)

    def order_for(self, needed: set[str], given: set[str]) -> list[str]:
        """The walk's order: the canonical one, or for a random-order model a valid order that puts the
        evidence and its ancestors first, then the ancestors of what the query needs."""
        if self.order_policy != "random":
            if self.ancestral:
                keep = needed | self.graph.ancestors(needed) if needed else set()
                return [v for v in self.graph.order if v in keep]
            return list(self.graph.order)
        import networkx as nx

        g = self.graph.as_networkx()
        early = given | self.graph.ancestors(given) if given else set()
        anc = needed | self.graph.ancestors(needed)
        key = {v: (v not in early, v not in anc, self.position[v]) for v in g}
        return list(nx.lexicographical_topological_sort(g, key=lambda v: key[v]))

    def plan_with_data(
        self, targets, do, given, data, readout, context_of: str | None = None, partial_rows: bool = False
    ) -> tuple[Plan, pd.DataFrame | None]:
        """A plan whose pre-treatment context comes from the rows of ``data`` (None: from the model).
        ``partial_rows``: the rows may lack pre-treatment columns; those are sampled, and the rows' columns
        that are not an initial segment weighted (``Plan.weighted_rows``)."""
        if data is None:
            return self.plan(targets, do, given, readout=readout), None
        from ..data import load_table, source_name

        df = load_table(data, self.graph)
        where = source_name(data)
        if len(df) == 0:
            raise DataError(f"{where} has no rows to take contexts from")
        do_names = set(do or {})
        anchor = context_of or (min(do_names, key=self.position.get) if do_names else None)
        if anchor is None:
            raise UnsupportedQueryError(
                "data-sourced contexts need an intervened variable to define the pre-treatment prefix"
            )
        order = self.order_for(set(targets) | do_names | set(given or {}), set())
        prefix = [v for v in order[: order.index(anchor)] if v not in (given or {}) and v not in do_names]
        missing = [v for v in prefix if v not in df.columns]
        if partial_rows:
            prefix = [v for v in prefix if v in df.columns]
        elif missing:
            raise DataError(f"{where} lacks the pre-treatment column(s) {missing} needed as contexts")
        # contexts must come from p(x | given): keep only the rows that match the given values
        for k, v in self.coerce(given, "given").items():
            if k not in df.columns:
                raise DataError(f"{where} has no column {k!r} to select the rows with {k}={v!r} (given)")
            var = self.graph[k]
            df = df[df[k].map(lambda x, var=var, v=v: same_value(var, x, v))]
            if len(df) == 0:
                raise DataError(f"{where} has no row with {k} = {v!r} (given)")
        rows = df[prefix].reset_index(drop=True)
        for v in prefix:  # bad values are reported at their row before any sampling
            var = self.graph[v]
            for i, x in zip(df.index, rows[v].tolist()):
                try:
                    var.coerce(x)
                except DataError as e:
                    raise DataError(f"{where}, row {i}: {e}") from None
        return self.plan(targets, do, given, readout=readout, per_row_given=prefix, weigh_rows=partial_rows), rows


def same_value(var, x, v) -> bool:
    """Whether data value ``x`` is the declared value ``v`` of ``var`` (False if it does not coerce)."""
    try:
        return var.coerce(x) == v
    except DataError:
        return False

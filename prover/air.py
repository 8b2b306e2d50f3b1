"""The AIR interface: what a computation declares so it can be proven.

An AIR (algebraic intermediate representation) is, in the spirit of
Winterfell's ``Air`` trait, a small declaration:

* **main segments**: named base-field columns, each segment committed on its
  own.  A segment may be *external*: committed by an earlier proof and reused
  here by its Merkle root, which the verifier takes as a public input; and a
  segment may be *exported*: committed here for a later proof to reuse (this
  is how order-book states chain from batch to batch; docs/SECURITY.md).
* **auxiliary columns**: extension-field columns built *after* the main
  segments are committed, from verifier challenges (LogUp running sums).
* **periodic columns**: fixed value patterns repeating down the trace.
* **public values**: base-field values both sides know (bound into the
  transcript by :meth:`Air.public_bytes`);
* **derived values**: extension values computed from the challenges and the
  public data by :meth:`Air.derive`, the same code on both sides (e.g. the
  verifier's side of a LogUp sum over a public table);
* **transition constraints** over the current and next row, each with a
  declared degree, holding on every row but the last; or, marked
  ``every_row``, holding on all N rows, cyclically: on row N-1 the next row
  is row 0 (the quotient divides those by x^N - 1 instead of
  (x^N - 1)/(x - w^(N-1)));
* **boundary constraints**: a column's value at one row.

Constraints are :mod:`expressions <zksidecar.prover.expr>`, written once in
:meth:`Air.transitions` / :meth:`Air.boundaries` against a :class:`Frame`.
"""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from .expr import CHALLENGE, DERIVED, PERIODIC, PUBLIC, TRACE, Constraint, Expr, var, variables
from .ext_scalar import Ext
from .shape_cache import ShapeCache

if TYPE_CHECKING:
    from .constraint_program import NativeBlock


#: Air.next_row_columns by transition list
_NEXT_READS: "ShapeCache[frozenset[int]]" = ShapeCache(8)

#: names the proof gives its own matrices (proof.layout: the auxiliary
#: segment, the quotient chunks) and its rounds' shared trees
#: (proof.statement_trees): a main segment may not take one, or its rows,
#: openings, values and (zk mode) salt label would be the other's
RESERVED_MATRIX_NAMES = frozenset({"aux", "quotient", "main round", "aux round", "quotient round"})

#: the derived-value name under which a domain's claimed sum is read
#: (Frame.claimed_sum); not a name derive() may return
CLAIMED_SUM = "<claimed sum>"


@dataclass(frozen=True)
class Segment:
    """Named base-field columns committed together.  `external`: committed
    by an earlier proof, reused here by its root.  `exported`: committed here
    for a later proof to reuse; the proof then also opens it at the point its
    root selects (domain.link_point), which is what binds the two proofs to
    one table."""

    name: str
    columns: tuple[str, ...]
    external: bool = False
    exported: bool = False


@dataclass(frozen=True)
class TransitionConstraint(Constraint):
    degree: int = 1
    #: a relation that holds on all N rows, the last included (LogUp's
    #: relations); read cyclically: row N-1's next row is row 0
    every_row: bool = False
    #: the run of constraints with a kernel of its own this one belongs to
    #: (constraint_program.NativeBlock): how the prover may evaluate it on
    #: the quotient domain, not what it is (`expr` is)
    native: "NativeBlock | None" = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class BoundaryConstraint:
    """Column `column` equals `value` at `row` (negative rows count from the
    end: -1 is the last row).  `value` has degree 0: constants, public values
    and challenges."""

    name: str
    column: str
    row: int
    value: Expr


class Frame:
    """The variables a constraint can name."""

    def __init__(self, air: "Air"):
        self._air = air

    def cur(self, column: str) -> Expr:
        return var(TRACE, self._air.column_index(column), 0)

    def next(self, column: str) -> Expr:
        return var(TRACE, self._air.column_index(column), 1)

    def periodic(self, name: str) -> Expr:
        if name not in self._air.periodic_columns:
            raise KeyError(f"{type(self._air).__name__} has no periodic column {name!r}")
        return var(PERIODIC, name)

    def public(self, name: str) -> Expr:
        if name not in self._air.public_values:
            raise KeyError(f"{type(self._air).__name__} has no public value {name!r}")
        return var(PUBLIC, name)

    def derived(self, name: str) -> Expr:
        if name not in self._air.derived_values:
            raise KeyError(f"{type(self._air).__name__} derives no value {name!r}")
        return var(DERIVED, name)

    def claimed_sum(self) -> Expr:
        """This domain's claimed sum t_d (a degree-0 constant, bound per
        proof): the target of the AIR's shared LogUp argument."""
        if self._air.shared_argument is None:
            raise KeyError(f"{type(self._air).__name__} shares no LogUp argument, so it claims no sum")
        return var(DERIVED, CLAIMED_SUM)

    def challenge(self, i: int) -> Expr:
        if not 0 <= i < self._air.num_challenges:
            raise KeyError(f"{type(self._air).__name__} draws {self._air.num_challenges} "
                           f"challenges; there is no challenge {i}")
        return var(CHALLENGE, i)


class MainColumns(Mapping):
    """The main columns by name, as build_aux receives them from the prover:
    each a contiguous array, copied out of its segment matrix on first use;
    ``view(name)`` is the column where it lies (a strided view), for readers
    that take strides (the LogUp kernel), so unread columns are never
    copied."""

    def __init__(self, air: "Air", traces: dict[str, np.ndarray]):
        self.segments = traces       # segment name -> (N, w) matrix
        self._views = {c: traces[s.name][:, j] for s in air.main_segments for j, c in enumerate(s.columns)}
        self._copies: dict[str, np.ndarray] = {}

    def view(self, name: str) -> np.ndarray:
        return self._views[name]

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._copies:
            self._copies[name] = np.ascontiguousarray(self._views[name])
        return self._copies[name]

    def __iter__(self):
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)


class Air(ABC):
    """Subclass, declare the class attributes, implement the constraints."""

    main_segments: tuple[Segment, ...] = ()
    aux_columns: tuple[str, ...] = ()
    num_challenges: int = 0
    #: name -> one period of values (canonical ints); the period is a power of
    #: two dividing the trace length
    periodic_columns: dict[str, list[int]] = {}
    #: names of the values :meth:`derive` computes
    derived_values: tuple[str, ...] = ()
    #: the LogUp sums (logup.LogUp) behind the auxiliary columns: their
    #: soundness degree enters :meth:`algebraic_degree`
    lookup_arguments: tuple = ()
    #: the LogUp argument (one of lookup_arguments) this AIR shares with the
    #: other domains of a statement (statement.py): its target is
    #: Frame.claimed_sum(), a value the proof carries and the statement
    #: checks, with the other domains' claims, against its own target
    shared_argument = None
    #: the claimed sum bound to this instance (with_claimed_sum), or None
    _claimed_sum: Ext | None = None

    def __init__(self, trace_length: int, public_values: dict[str, int] | None = None):
        if trace_length < 2 or trace_length & (trace_length - 1):
            raise ValueError(f"trace length must be a power of two >= 2, got {trace_length}")
        self.trace_length = trace_length
        self.public_values: dict[str, int] = dict(public_values or {})

    # --------------------------------------------------------- to implement --

    @abstractmethod
    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        """Constraints between row i and row i + 1, for every i < N - 1."""

    def boundaries(self, f: Frame) -> list[BoundaryConstraint]:
        return []

    def main_columns(self, traces: dict[str, np.ndarray]) -> MainColumns:
        """The main columns by name, from the segment matrices, as the prover
        hands them to build_aux."""
        return MainColumns(self, traces)

    def build_aux(self, main: dict[str, np.ndarray], challenges: np.ndarray) -> np.ndarray:
        """The auxiliary columns, shape (N, len(aux_columns), 4), Montgomery
        form, from the main columns (by name: a dict, or the prover's
        :class:`MainColumns`) and the challenges (k, 4)."""
        raise NotImplementedError(f"{type(self).__name__} declares auxiliary columns "
                                  "but does not build them")

    def derive(self, challenges: np.ndarray) -> dict[str, Ext]:
        """The derived values, from the challenges ((k, 4) Montgomery) and the
        public data.  Prover and verifier both call this, so it is part of the
        statement: keep it a plain function of public things."""
        return {}

    def constants(self, challenges: np.ndarray):
        """The resolver of degree-0 variables (public values, challenges,
        derived values) for one proof: key -> Ext."""
        # derive is a function of public data and the challenges, and the
        # prover asks for it more than once per proof (aux columns, quotient):
        # computed once per challenge set
        memo = getattr(self, "_derived_memo", None)
        if memo is not None and memo[0] == challenges.tobytes():
            derived = memo[1]
        else:
            derived = self.derive(challenges) if self.derived_values else {}
            self._derived_memo = (challenges.tobytes(), derived)
        if set(derived) != set(self.derived_values):
            raise ValueError(f"{type(self).__name__}.derive returned {sorted(derived)}, "
                             f"declared {sorted(self.derived_values)}")

        claimed = self._claimed_sum

        def value(key: tuple) -> Ext:
            kind, name = key
            if kind == DERIVED and name == CLAIMED_SUM:
                if claimed is None:
                    raise ValueError(f"{type(self).__name__}: the claimed sum is read before "
                                     "one is bound (with_claimed_sum)")
                return claimed
            if kind == PUBLIC:
                return Ext(self.public_values[name])
            if kind == CHALLENGE:
                return Ext.from_mont(challenges[name])
            if kind == DERIVED:
                return derived[name]
            raise KeyError(key)

        return value

    def claim_shared_sum(self, main, challenges: np.ndarray, aux: np.ndarray) -> Ext:
        """The sum the prover claims for this domain, the shared argument's
        fractions over every row, from the auxiliary columns `aux` built
        with a claim of 0, which it closes on that sum in place
        (logup.LogUp.close_on_total)."""
        return self.shared_argument.close_on_total(self, main, challenges, aux)

    def with_claimed_sum(self, claimed: Ext) -> "Air":
        """This AIR with `claimed` bound as its claimed sum, for one proof:
        a shallow copy (the constraints, and every cache keyed on them, are
        shared), so the caller's instance is never changed."""
        bound = copy.copy(self)
        bound._claimed_sum = claimed
        return bound

    def public_bytes(self) -> bytes:
        """Everything public that the proof must be bound to, as bytes (the
        public values by default; override to add, e.g., operation lists)."""
        return b"".join(name.encode() + b"=" + str(v).encode() + b";"
                        for name, v in sorted(self.public_values.items()))

    # -------------------------------------------------------------- derived --

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """Every column: main segments in order, then auxiliary columns."""
        names = [c for s in self.main_segments for c in s.columns] + list(self.aux_columns)
        if len(set(names)) != len(names):
            raise ValueError(f"{type(self).__name__} declares a column name twice")
        return tuple(names)

    @cached_property
    def num_main_columns(self) -> int:
        return sum(len(s.columns) for s in self.main_segments)

    def column_index(self, name: str) -> int:
        try:
            return self._column_index[name]
        except KeyError:
            raise KeyError(f"{type(self).__name__} has no column {name!r}") from None

    @cached_property
    def _column_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.columns)}

    def is_aux(self, column_index: int) -> bool:
        return column_index >= self.num_main_columns

    @cached_property
    def transition_constraints(self) -> list[TransitionConstraint]:
        cons = self.transitions(Frame(self))
        for c in cons:
            if c.expr.degree != c.degree:
                raise ValueError(f"constraint {c.name!r} of {type(self).__name__} is declared "
                                 f"with degree {c.degree} but has degree {c.expr.degree}")
            if c.degree < 1:
                raise ValueError(f"constraint {c.name!r} does not involve the trace")
        return cons

    @property
    def next_row_columns(self) -> frozenset[int]:
        """The columns (indices) some transition constraint reads on the next
        row: only their matrices are opened at w*z.  Found by walking the
        constraints once per transition list (the order book shares one per
        trace length), not per proof."""
        cons = self.transition_constraints
        return _NEXT_READS.get(("next-reads", id(cons)), cons, lambda: frozenset(
            args[1] for args in variables([c.expr for c in cons]) if args[0] == TRACE and args[2]))

    @cached_property
    def boundary_constraints(self) -> list[BoundaryConstraint]:
        cons = self.boundaries(Frame(self))
        n = self.trace_length
        for b in cons:
            self.column_index(b.column)
            if not -n <= b.row < n:
                raise ValueError(f"boundary {b.name!r} names row {b.row} of a {n}-row trace")
            if b.value.degree != 0:
                raise ValueError(f"boundary {b.name!r} must have a constant value")
        return cons

    @cached_property
    def max_degree(self) -> int:
        return max([c.degree for c in self.transition_constraints] + [1])

    def identity_degree(self, trace_length: int) -> int:
        """d*N: the degree of the identity checked at the out-of-domain point."""
        return self.max_degree * trace_length

    def lookup_degree(self, trace_length: int) -> int:
        """The AIR's LogUp sums' Schwartz-Zippel degree, summed (they share
        their challenges: a union bound)."""
        return sum(a.soundness_degree(trace_length) for a in self.lookup_arguments)

    def algebraic_degree(self, trace_length: int) -> int:
        """The largest degree, at `trace_length` rows, of a polynomial in a
        challenge that the proof is sound only off the roots of
        (docs/SECURITY.md, "Security level"): d*N for the identity checked
        at the out-of-domain point, and each LogUp sum's Schwartz-Zippel
        degree (logup.LogUp.soundness_degree; summed: they share the
        challenges, a union bound).  The constraint combination's
        (the number of constraints, in alpha) is far below both.
        params.ProofOptions.conjectured_security takes it."""
        return max(self.identity_degree(trace_length), self.lookup_degree(trace_length))

    def validate(self) -> None:
        """Check the declaration itself (raises ValueError)."""
        _ = self.columns, self.transition_constraints, self.boundary_constraints
        n = self.trace_length
        for name, values in self.periodic_columns.items():
            k = len(values)
            if k < 1 or k & (k - 1) or k > n:
                raise ValueError(f"periodic column {name!r} has period {k}: it must be a "
                                 f"power of two no larger than the trace ({n} rows)")
        if self.aux_columns and self.num_challenges == 0:
            raise ValueError("auxiliary columns need at least one challenge")
        seen = set()
        for seg in self.main_segments:
            if seg.name in RESERVED_MATRIX_NAMES:
                raise ValueError(f"{type(self).__name__}: main segment {seg.name!r} takes a name the proof "
                                 f"gives its own matrices or trees ({', '.join(sorted(RESERVED_MATRIX_NAMES))})")
            if seg.name in seen:
                raise ValueError(f"{type(self).__name__}: two main segments are named {seg.name!r}")
            seen.add(seg.name)
            if seg.external and seg.exported:
                raise ValueError(f"segment {seg.name!r} is both external and exported: a reused "
                                 "segment is exported by the proof that committed it")

"""LogUp: lookups, range checks and multiset equalities as running sums.

The argument (Haböck, "Multivariate lookups based on logarithmic
derivatives", 2022): multisets A (with multiplicities m) and B are equal iff

    sum_i m_i / (alpha - a_i)  =  sum_j 1 / (alpha - b_j)

as rational functions of alpha; the verifier draws alpha at random from the
extension field (Schwartz-Zippel).  Tuples are first compressed with
independent challenges, one per entry after the first:
(c0, c1, c2, ...) -> c0 + beta_1*c1 + beta_2*c2 + ...  (powers of one beta
would multiply the compression's error by the tuple width: docs/LOGUP.md,
"Soundness error").

An AIR describes one argument as a list of :class:`Fraction` s, each a signed
multiplicity over a tuple of expressions of the *current* row:

    supply(values, m)   contributes  +m / (alpha - compress(values))
    consume(values, m)  contributes  -m / (alpha - compress(values))

Row i's **term** is the sum of its fractions; the argument proves that the
terms of all N rows sum to ``target`` (0 unless given; any degree-0
expression: a constant, a public value, a challenge combination).

Columns (extension field, auxiliary segment), for an argument named ``x``
with G groups of fractions (below):

    x.sum[i]  = S[i] = sum over j < i of (term(j) - target/N)     (S[0] = 0)
    x.h<g>[i] = the fractions of group g at row i,  g = 0 .. G-2   (none when G = 1)

One cyclic running sum.  Every relation is an *every-row* constraint
(air.TransitionConstraint(every_row=True)): the quotient divides it by
x^N - 1, so it holds on all N rows, the last included, and a next-row
read on row N-1 reads row 0 (the trace polynomial at w * w^(N-1) = 1).
The sum relation is

    S' - S = term - target/N           every row, row N-1 wrapping to row 0

and summing it over the N rows telescopes the left side to 0:
sum_i term(i) = N * target/N = target (N < p is invertible).  No boundary
constraint is needed and no term is skipped; S[0] is free (the prover
takes 0).  target/N is a degree-0 expression (a constant of the
constraint: public values, challenges, derived values), evaluated by
prover and verifier alike.  (Earlier versions kept two columns, prev and
sum, with prev' = sum, prev[0] = 0 and sum[N-1] = target: one more
extension column; docs/LOGUP.md.)

Constraints and degrees.  Fractions are split into groups of at most
``group_size`` (default 2).  Groups g < G-1 get a helper column h_g:

    h_g * prod_k d_k  =  sum_k m_k * prod_{j != k} d_j      d_k = alpha - compress_k

and the last group is absorbed into the sum relation, with its helper
replaced by what the sum relation says it is:

    (S' - S + target/N - sum_{g < G-1} h_g) * prod_k d_k  =  sum_k m_k * prod_{j != k} d_j

(for G = 1 the sum over helpers is empty).  That is the same system with
one variable eliminated.  The degree of either kind is 1 + sum_k deg(d_k)
(when multiplicities are no higher than denominators): **3 for two
fractions of degree-1 tuples**, the default.  Degrees are computed from the
expressions, not asserted by hand.  Degree 3 puts the quotient below 2N,
so the LDE needs blowup >= 2 (proof.quotient_log_blowup).  Aux width: G extension columns (S and
G-1 helpers) per argument.

A denominator that vanishes at some row (alpha equal to a compressed tuple)
makes the prover's inversion fail; it happens with probability at most
(rows * fractions) / |F_p^4| ~ 2^-100 for the sizes used here.

Soundness of the equality as multisets needs every multiplicity total below
p (fewer than p rows times fractions: true for any trace here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np

from . import constraints as C
from . import extension as E
from . import field as F
from .air import CLAIMED_SUM, Air, BoundaryConstraint, Frame, MainColumns, TransitionConstraint
from .expr import CHALLENGE, DERIVED, PERIODIC, TRACE, Expr, const, evaluate, topological, variables
from .ext_scalar import Ext, ScalarAlgebra
from .native import ffi, lib
from .shape_cache import ShapeCache

#: a column name, an integer constant, or a function of the frame giving an expression
Term = Union[str, int, Callable[[Frame], Expr]]


def term_expr(f: Frame, t: Term) -> Expr:
    if isinstance(t, Expr):
        return t
    if isinstance(t, bool):
        raise TypeError("a LogUp term cannot be a bool")
    if isinstance(t, int):
        return const(t)
    if isinstance(t, str):
        return f.cur(t)
    if callable(t):
        return t(f)
    raise TypeError(f"a LogUp term is a column name, an int or a function of the frame, "
                    f"got {type(t).__name__}")


@dataclass(frozen=True)
class Fraction:
    """multiplicity / (alpha - compress(values)), on one row."""

    multiplicity: Term
    values: tuple[Term, ...]
    sign: int = 1

    def numerator(self, f: Frame) -> Expr:
        m = term_expr(f, self.multiplicity)
        return m if self.sign > 0 else -m


def supply(values: Sequence[Term], multiplicity: Term = 1) -> Fraction:
    """A table entry / a write: + multiplicity / (alpha - tuple)."""
    return Fraction(multiplicity, tuple(values), 1)


def consume(values: Sequence[Term], multiplicity: Term = 1) -> Fraction:
    """A lookup / a read: - multiplicity / (alpha - tuple)."""
    return Fraction(multiplicity, tuple(values), -1)


def with_next_rows(periodic: dict[str, list[int]]) -> dict[str, list[int]]:
    """Periodic columns plus their rotated twins (name + "'": row i holds
    row i+1's value).  LogUp no longer needs them (its fractions are stated
    on the current row only); kept for AIRs that declare them."""
    out = dict(periodic)
    for name, values in periodic.items():
        out[name + "'"] = list(values[1:]) + list(values[:1])
    return out


class LogUp:
    """One LogUp sum over an AIR's rows.  The AIR lists ``columns`` among its
    auxiliary columns, adds ``transitions(f)`` and ``boundaries(f)`` to its
    own, and builds the columns with ``build`` (or :func:`build_aux`)."""

    def __init__(self, name: str, fractions: Sequence[Fraction], *, alpha: int = 0,
                 beta: int = 1, group_size: int = 2, target: Term | None = None):
        if not fractions:
            raise ValueError("a LogUp argument needs at least one fraction")
        if group_size < 1:
            raise ValueError("group_size must be >= 1")
        self.name, self.alpha, self.beta, self.target = name, alpha, beta, target
        self.fractions = list(fractions)
        # the soundness error counts alpha and the compression challenges as
        # independent (soundness_degree): alpha must not be one of them
        if self.beta <= alpha < self.beta + self.arity - 1:
            raise ValueError(f"LogUp {name!r}: alpha (challenge {alpha}) is one of the tuples' "
                             f"compression challenges ({self.beta}..{self.beta + self.arity - 2})")
        self.groups = [self.fractions[i: i + group_size]
                       for i in range(0, len(self.fractions), group_size)]

    # ----------------------------------------------------------- soundness --
    def soundness_degree(self, trace_length: int, public_fractions: int = 0,
                         public_arity: int = 0) -> int:
        """D with Pr[a false sum passes] <= D / |F_p^4| over the challenges
        (docs/LOGUP.md, "Soundness error"), for these fractions on every one
        of `trace_length` rows plus `public_fractions` the verifier sums
        itself.  With F fractions in all: the compression (one independent
        challenge per entry, so two distinct tuples differ by a nonzero
        affine form) merges a tuple of the imbalance with another with
        probability at most (F - 1) / |F_p^4|; then the nonzero rational sum
        in alpha vanishes, or alpha hits a denominator, with probability at
        most 2F / |F_p^4|: D = 3F, whatever the tuples' width."""
        return 3 * (len(self.fractions) * trace_length + public_fractions)

    @property
    def arity(self) -> int:
        """The widest tuple's number of entries."""
        return max(1, max(len(fr.values) for fr in self.fractions))

    @property
    def challenges_used(self) -> int:
        """How many challenges the AIR must draw for this argument: alpha,
        and beta_1 .. beta_(arity-1) from index `beta` on."""
        return max(self.alpha, self.beta + self.arity - 2) + 1

    def compression_coefficients(self, challenges: np.ndarray, arity: int | None = None) -> np.ndarray:
        """(arity, 4) Montgomery: 1, beta_1, ..., beta_(arity-1), the
        coefficients of a tuple's entries (challenges (k, 4) Montgomery)."""
        arity = self.arity if arity is None else arity
        if len(challenges) < self.beta + arity - 1:
            raise ValueError(f"LogUp {self.name!r}: tuples of {arity} entries need challenges up to "
                             f"index {self.beta + arity - 2}, the AIR draws {len(challenges)}")
        out = np.empty((arity, 4), dtype=np.uint32)
        out[0] = Ext(1).to_mont()
        out[1:] = challenges[self.beta: self.beta + arity - 1]
        return out

    # ------------------------------------------------------------- columns --
    @property
    def sum(self) -> str:
        """The cyclic running sum S (docstring of the module)."""
        return f"{self.name}.sum"

    @property
    def helpers(self) -> tuple[str, ...]:
        """One column per group but the last (absorbed into the sum relation)."""
        return tuple(f"{self.name}.h{g}" for g in range(len(self.groups) - 1))

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.sum,) + self.helpers

    def shift(self, f: Frame) -> Expr:
        """target / N, the amount S drops by per row: degree 0."""
        if self.target is None:
            return const(0)
        n_inv = pow(f._air.trace_length, F.P - 2, F.P)
        return term_expr(f, self.target) * const(n_inv)

    # ---------------------------------------------------------- expressions --
    def _compress(self, f: Frame, values: tuple[Term, ...]) -> Expr:
        acc = None
        for j, v in enumerate(values):
            e = term_expr(f, v)
            acc = e if acc is None else acc + f.challenge(self.beta + j - 1) * e
        return acc if acc is not None else const(0)

    def _parts(self, f: Frame, group: list[Fraction]) -> list[tuple[Expr, Expr]]:
        """(numerator, denominator) of each fraction, current row."""
        alpha = f.challenge(self.alpha)
        return [(fr.numerator(f), alpha - self._compress(f, fr.values)) for fr in group]

    @staticmethod
    def _cleared(lhs: Expr, parts: list[tuple[Expr, Expr]]) -> Expr:
        """lhs * prod d_k - sum_k m_k prod_{j != k} d_j: zero iff lhs = sum m_k / d_k
        (when no d_k is zero)."""
        prod = None
        for _, d in parts:
            prod = d if prod is None else prod * d
        rhs = None
        for k, (m, _) in enumerate(parts):
            t = m
            for j, (_, d) in enumerate(parts):
                if j != k:
                    t = t * d
            rhs = t if rhs is None else rhs + t
        return lhs * prod - rhs

    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        """Every relation once, as an every-row constraint (all N rows, the
        last included, its next row being row 0): one per helper, then the
        sum relation with the last group absorbed."""
        out = []
        parts = [self._parts(f, g) for g in self.groups]
        if any(kind == TRACE and key[1] for kind, *key in variables([e for p in parts for q in p for e in q])):
            raise ValueError(f"{self.name}: a LogUp fraction reads the current row only; "
                             f"it cannot read the next row")
        # target / N is the same on every row only if target is: a target
        # reading the trace would turn the statement into sum(term) =
        # mean(target), silently
        if self.shift(f).degree != 0:
            raise ValueError(f"{self.name}: the target must be a constant, a public or a derived "
                             "value (degree 0), not an expression of the trace")

        def row(name: str, expr: Expr) -> None:
            out.append(TransitionConstraint(name, expr, expr.degree, every_row=True))

        acc = f.next(self.sum) - f.cur(self.sum) + self.shift(f)
        for g, h in enumerate(self.helpers):
            row(f"{self.name}: h{g} = group {g} fractions", self._cleared(f.cur(h), parts[g]))
            acc = acc - f.cur(h)
        row(f"{self.name}: sum' - sum = term - target/N", self._cleared(acc, parts[-1]))
        return out

    def boundaries(self, f: Frame) -> list[BoundaryConstraint]:
        """None: the cyclic sum needs no boundary (kept for AIRs that add
        an argument's boundaries to their own)."""
        return []

    # ---------------------------------------------------------------- build --
    def build(self, air: Air, main: dict[str, np.ndarray], challenges: np.ndarray,
              out: np.ndarray | None = None) -> np.ndarray:
        """This argument's columns, (N, len(columns), 4) Montgomery, from the
        main columns and the challenges, written into `out` if given (e.g. a
        view of the whole auxiliary matrix).  The tuple entries and
        multiplicities that are not a column, a constant or a short sum of
        columns (split into its columns: _linear) are evaluated here;
        csrc/stark/logup.c does the rest in one pass over the rows,
        block by block.  An argument whose entries are extension-valued is
        built by :meth:`build_numpy` instead.  Never raises on a trace that
        does not close: the sum relation then fails at row N-1 instead."""
        n = air.trace_length
        shape = (n, len(self.columns), 4)
        if out is None:
            out = np.empty(shape, dtype=np.uint32)
        elif out.shape != shape or out.dtype != np.uint32 or out.strides[1:] != (16, 4):
            raise ValueError(f"out must be a uint32 {shape} array with contiguous rows")
        plan = self._plan(air)
        bound = None if plan is None else plan.bind(air, main, challenges)
        if bound is None:
            out[...] = self.build_numpy(air, main, challenges)
            return out
        shift = np.ascontiguousarray(self._shift_value(air, challenges).to_mont(), dtype=np.uint32)
        self._run_kernel(out, bound, n, shift, None)
        return out

    def _run_kernel(self, out: np.ndarray, bound, rows: int, shift: np.ndarray,
                    end: np.ndarray | None) -> None:
        """csrc/stark/logup.c over `rows` rows of a bound plan into `out`;
        `end`, if given, receives the running sum after the last row."""
        fractions, keep = bound
        status = lib.zk_logup_build(ffi.cast("uint32_t *", out.ctypes.data), out.strides[0] // 4,
                                    ffi.cast("zk_logup_fraction *", fractions.ctypes.data),
                                    len(self.fractions), len(self.groups), rows,
                                    ffi.cast("uint32_t *", shift.ctypes.data),
                                    ffi.NULL if end is None else ffi.cast("uint32_t *", end.ctypes.data))
        del keep
        if status == -2:
            raise MemoryError(f"{self.name}: no scratch memory for the LogUp columns")
        if status == -3:  # pragma: no cover - the plan is built here, always well formed
            raise ValueError(f"{self.name}: malformed LogUp description")
        if status >= 0:
            row, k = divmod(int(status), len(self.fractions))
            raise ZeroDivisionError(f"{self.name}: the denominator of fraction {k} vanishes at row {row}")

    def _shift_value(self, air: Air, challenges: np.ndarray) -> Ext:
        """target / N for one proof's challenges."""
        if self.target is None:
            return Ext(0)
        (v,) = evaluate([self.shift(Frame(air))], ScalarAlgebra(air.constants(challenges)))
        return v if isinstance(v, Ext) else Ext(int(v))

    def _plan(self, air: Air) -> "_Plan | None":
        """This argument's kernel plan for `air` (see _Plan), or None when
        some entry or multiplicity is extension-valued.  Kept per shape: the
        plan is a function of the fractions and the AIR's column layout, and
        an AIR whose transition constraints are the same objects (the order
        book shares them per trace length) states the same argument, since
        LogUp.transitions is part of them; an AIR building them afresh gets
        a plan per instance, held by the cache with the list."""
        cons = air.transition_constraints
        key = (id(cons), self.name, len(self.fractions), len(self.groups))
        return _PLANS.get(key, cons, lambda: _Plan.of(self, air))

    def build_numpy(self, air: Air, main: dict[str, np.ndarray], challenges: np.ndarray) -> np.ndarray:
        """The same columns, column by column in numpy: the readable
        definition the kernel is tested against, and the path for
        extension-valued entries.  One batch inversion for all denominators;
        prefix sums in numpy."""
        group_sums = self.group_sums(air, main, challenges)
        term = group_sums[0]
        for v in group_sums[1:]:
            term = F.add(term, v)
        # S[i] = sum_{j < i} (term(j) - target/N); Montgomery form is linear,
        # so summing representations mod p sums values
        step = F.sub(term, np.ascontiguousarray(np.broadcast_to(
            self._shift_value(air, challenges).to_mont(), term.shape)))
        running = np.zeros_like(term)
        running[1:] = (np.cumsum(step[:-1].astype(np.uint64), axis=0) % F.P).astype(np.uint32)
        return np.stack([running] + group_sums[:-1], axis=1)

    def row_term(self, air: Air, main, challenges: np.ndarray, row: int) -> Ext:
        """The sum of this argument's fractions at one row (the target not
        subtracted): the kernel on that row alone, its running sum after
        the row (an argument with extension-valued entries: group_sums on
        that row)."""
        rows = slice(row, row + 1)
        plan = self._plan(air)
        bound = None if plan is None else plan.bind(air, main, challenges, rows)
        if bound is None:
            acc = np.zeros(4, dtype=np.uint64)
            for g in self.group_sums(air, main, challenges, rows):
                acc += g[0]
            return Ext.from_mont((acc % F.P).astype(np.uint32))
        end = np.zeros(4, dtype=np.uint32)
        self._run_kernel(np.empty((1, len(self.columns), 4), dtype=np.uint32), bound, 1,
                         np.zeros(4, dtype=np.uint32), end)
        return Ext.from_mont(end)

    def targets_claimed_sum(self, air: Air) -> bool:
        """Whether this argument's target, in `air`, is the domain's claimed
        sum (Frame.claimed_sum()): what a shared argument must close on."""
        if self.target is None:
            return False
        try:
            e = term_expr(Frame(air), self.target)
        except (KeyError, TypeError):
            return False
        return e.op == "var" and tuple(e.args) == (DERIVED, CLAIMED_SUM)

    def close_on_total(self, air: Air, main, challenges: np.ndarray, aux: np.ndarray) -> Ext:
        """For a domain's shared argument (Air.shared_argument, whose target
        is the domain's claimed sum): given the auxiliary columns `aux`
        ((N, k, 4) Montgomery) built with a claim of 0, the total t of the
        fractions over the N rows, with this argument's running sum closed
        on it in place.  With target 0, S0[i] is the sum of the terms of
        rows below i, so t = S0[N-1] + term(N-1), and the sum with target
        t is S[i] = S0[i] - i t/N (the helper columns do not depend on the
        target): one row evaluated and one pass down the column where it
        lies (zk_logup_ramp_sub), instead of every fraction summed a second
        time."""
        if not self.targets_claimed_sum(air):
            raise ValueError(f"{self.name}: a shared argument's target must be the domain's "
                             "claimed sum (Frame.claimed_sum())")
        n = air.trace_length
        col = air.column_index(self.sum) - air.num_main_columns
        if not isinstance(aux, np.ndarray) or aux.dtype != np.uint32 or aux.ndim != 3 or aux.shape[0] != n \
                or aux.shape[2] != 4 or aux.strides[2] != 4 or aux.strides[0] % 4 or not aux.flags.writeable:
            raise ValueError(f"{self.name}: the auxiliary columns are a writeable uint32 ({n}, k, 4) array "
                             "with contiguous extension elements")
        t = Ext.from_mont(aux[n - 1, col]) + self.row_term(air, main, challenges, n - 1)
        step = np.ascontiguousarray((t * pow(n, F.P - 2, F.P)).to_mont(), dtype=np.uint32)
        lib.zk_logup_ramp_sub(ffi.cast("uint32_t *", aux[:, col].ctypes.data), aux.strides[0] // 4, n,
                              ffi.cast("uint32_t *", step.ctypes.data))
        return t

    def total(self, air: Air, main: dict[str, np.ndarray], challenges: np.ndarray) -> Ext:
        """The sum of every row's term (the argument holds when it is the
        target): for tests and diagnostics, by :meth:`group_sums`."""
        acc = np.zeros(4, dtype=np.uint64)
        for g in self.group_sums(air, main, challenges):
            acc += g.astype(np.uint64).sum(axis=0) % F.P
        return Ext.from_mont((acc % F.P).astype(np.uint32))

    def group_sums(self, air: Air, main: dict[str, np.ndarray], challenges: np.ndarray,
                   rows: slice | None = None) -> list[np.ndarray]:
        """Every group's fractions summed, row by row: G (n, 4) Montgomery
        columns, the last group's included (it has no column of its own),
        over every row or the contiguous `rows` (row_term's path for an
        argument with extension-valued entries, which the kernel does not
        take)."""
        n = air.trace_length if rows is None else len(range(*rows.indices(air.trace_length)))
        f = Frame(air)
        parts = [self._parts(f, g) for g in self.groups]
        flat = [p for g in parts for p in g]
        alg = C.ColumnAlgebra(n, _trace_source(air, main, challenges, rows))
        values = evaluate([e for p in flat for e in p], alg)
        nums, dens = values[0::2], values[1::2]
        den = np.concatenate([C.as_column(d, n, True) for d in dens])
        inv = E.inv(np.ascontiguousarray(den))
        fracs = [alg.mul(np.ascontiguousarray(inv[k * n: (k + 1) * n]), m) for k, m in enumerate(nums)]
        fracs = [C.as_column(v, n, True) for v in fracs]
        group_sums, k = [], 0
        for g in self.groups:
            acc = fracs[k]
            for v in fracs[k + 1: k + len(g)]:
                acc = F.add(acc, v)
            group_sums.append(acc)
            k += len(g)
        return group_sums


def _main_column(air: Air, main, name: str) -> np.ndarray:
    """A bare column of a tuple: where it lies, if the prover says where."""
    if air.is_aux(air.column_index(name)):
        raise ValueError("LogUp fractions may only use main columns of the current row")
    return main.view(name) if isinstance(main, MainColumns) else main[name]


def _strided(col: np.ndarray) -> np.ndarray:
    """A base column as csrc/stark/logup.c reads it: uint32 values evenly spaced
    (a copy only when they are not)."""
    col = np.asarray(col)
    if col.dtype != np.uint32 or col.ndim != 1 or col.strides[0] < 4 or col.strides[0] % 4:
        col = np.ascontiguousarray(col, dtype=np.uint32)
    return col


def _trace_source(air: Air, main: dict[str, np.ndarray], challenges: np.ndarray,
                  rows: slice | None = None):
    """A variable's column over every row, or over the contiguous `rows`
    only (main columns read where they lie, then sliced)."""
    n = air.trace_length
    periodic: dict[str, np.ndarray] = {}
    constants = air.constants(challenges)

    def column(key):
        kind = key[0]
        if kind == TRACE:
            col, nxt = key[1], key[2]
            if nxt or air.is_aux(col):
                raise ValueError("LogUp fractions may only use main columns of the current row")
            if rows is None:
                return main[air.columns[col]]
            return np.ascontiguousarray(_main_column(air, main, air.columns[col])[rows])
        if kind == PERIODIC:
            if key[1] not in periodic:
                vals = air.periodic_columns[key[1]]
                full = F.encode(np.tile(np.asarray(vals, dtype=np.int64), n // len(vals)))
                periodic[key[1]] = full if rows is None else np.ascontiguousarray(full[rows])
            return periodic[key[1]]
        return constants(key)

    return column


#: zk_logup_fraction as a numpy record, field offsets read from the compiled
#: header (pointers and size_t as unsigned integers of their width), so a
#: plan fills every fraction's description in a few array operations
_FRACTION = np.dtype({
    "names": ["offset", "n_values", "group", "sign", "mult", "mult_stride", "values", "strides",
              "coeffs"],
    "formats": [("<u4", (4,)), "<u4", "<u4", "<i4", np.uintp, f"u{ffi.sizeof('size_t')}", np.uintp,
                np.uintp, np.uintp],
    "offsets": [ffi.offsetof("zk_logup_fraction", f) for f in (
        "offset", "n_values", "group", "sign", "mult", "mult_stride", "values", "strides", "coeffs")],
    "itemsize": ffi.sizeof("zk_logup_fraction")})
assert ffi.sizeof("uint32_t *") == np.dtype(np.uintp).itemsize


class _Plan:
    """What csrc/stark/logup.c needs of one argument that depends on its
    shape alone, worked out once (LogUp._plan keeps it): for every fraction
    its sign, group and varying entries, each entry's source (a bare main
    column, or an expression evaluated per proof; a linear entry is one
    source per column it sums, its coefficient times the entry's challenge:
    `scale`) and compression challenge, the
    tuples' integer constants as a matrix, and the multiplicity's source.
    `bind` then describes one proof's fractions with array operations: no
    Python per fraction or per entry, only per expression evaluated."""

    def __init__(self):
        self.bare: list[str] = []           # sources [0, len(bare)): main columns by name
        self.exprs: list[Expr] = []         # the next sources: evaluated per proof
        self.const_cols: list[int] = []     # then: constant multiplicities, as columns
        self.const_terms: list[tuple[int, int, Expr]] = []   # (fraction, power, non-int constant)

    @classmethod
    def of(cls, arg: LogUp, air: Air) -> "_Plan | None":
        f = Frame(air)
        plan = cls()
        sources: dict[object, tuple[str, int]] = {}   # a term's source: (list, index)

        def bare(name: str) -> tuple[str, int]:
            if air.is_aux(air.column_index(name)):
                raise ValueError("LogUp fractions may only use main columns of the current row")
            if ("bare", name) not in sources:
                sources[("bare", name)] = ("bare", len(plan.bare))
                plan.bare.append(name)
            return sources[("bare", name)]

        def varying(e: Expr) -> tuple[str, int]:
            if any(kind in (CHALLENGE, DERIVED) for kind, *_ in variables([e])):
                raise _ExtensionValued
            plan.exprs.append(e)
            return ("expr", len(plan.exprs) - 1)

        def constant_column(value: int) -> tuple[str, int]:
            if ("const", value) not in sources:
                sources[("const", value)] = ("const", len(plan.const_cols))
                plan.const_cols.append(value)
            return sources[("const", value)]

        is_int = lambda t: isinstance(t, int) and not isinstance(t, bool)   # noqa: E731
        nf = len(arg.fractions)
        plan.arity = arg.arity
        consts = np.zeros((nf, plan.arity), dtype=np.int64)
        power, src, start, mult, scale = [], [], [], [], []
        try:
            for k, fr in enumerate(arg.fractions):
                start.append(len(src))
                for j, t in enumerate(fr.values):
                    if is_int(t):
                        consts[k, j] = t % F.P
                    elif isinstance(t, str):
                        power.append(j), src.append(bare(t)), scale.append(1)
                    else:
                        e = term_expr(f, t)
                        lin = None if e.degree == 0 else _linear(e)
                        if e.degree == 0:
                            plan.const_terms.append((k, j, e))
                        elif lin is not None:
                            # a short sum of main columns plus a constant: the
                            # columns are entries of their own (coefficient
                            # a * beta_j), the constant joins the tuple's
                            terms, c = lin
                            consts[k, j] = (int(consts[k, j]) + c) % F.P
                            for col, a in terms.items():
                                power.append(j), src.append(bare(air.columns[col])), scale.append(a)
                        else:
                            power.append(j), src.append(varying(e)), scale.append(1)
                m = fr.multiplicity
                if is_int(m):
                    mult.append(None if m % F.P == 1 else constant_column(m % F.P))
                elif isinstance(m, str):
                    mult.append(bare(m))
                else:
                    e = term_expr(f, m)
                    if e.degree == 0:     # a public value, say: bound per proof
                        if any(kind in (CHALLENGE, DERIVED) for kind, *_ in variables([e])):
                            return None
                        plan.const_terms.append((k, -1, e))
                        mult.append(None)
                    else:
                        mult.append(varying(e))
        except _ExtensionValued:
            return None
        # a source's index into one proof's address list: the bare columns,
        # then the expressions, then the constant columns
        first = {"bare": 0, "expr": len(plan.bare), "const": len(plan.bare) + len(plan.exprs)}
        index = lambda x: -1 if x is None else first[x[0]] + x[1]   # noqa: E731
        plan.power = np.array(power, dtype=np.int64)
        # each entry's coefficient is its challenge times this base factor
        # (1 but for the columns of a linear entry), Montgomery
        plan.scale = None if all(a == 1 for a in scale) else F.encode(np.array(scale, dtype=np.int64))
        plan.source = np.array([index(x) for x in src], dtype=np.int64)
        plan.mult_source = np.array([index(x) for x in mult], dtype=np.int64)
        plan.start = np.array(start, dtype=np.int64)
        plan.const_matrix = F.encode(consts)
        plan.fractions = np.zeros(nf, dtype=_FRACTION)
        plan.fractions["n_values"] = np.diff(np.r_[plan.start, len(src)])
        plan.fractions["group"] = [g for g, grp in enumerate(arg.groups) for _ in grp]   # consecutive
        plan.fractions["sign"] = [1 if fr.sign > 0 else -1 for fr in arg.fractions]
        plan.alpha, plan.argument = f.challenge(arg.alpha), arg
        # the main columns the expressions read, by segment: (segment index,
        # names, places in the segment), gathered per proof in one pass each
        read = {air.columns[key[0]] for kind, *key in variables(plan.exprs) if kind == TRACE}
        plan.expr_inputs = [(i, [c for c in sg.columns if c in read],
                             np.array([j for j, c in enumerate(sg.columns) if c in read], dtype=np.uintp))
                            for i, sg in enumerate(air.main_segments) if read & set(sg.columns)]
        # each bare column's segment and place in it: addresses without a lookup per column
        where = {c: (i, j) for i, sg in enumerate(air.main_segments) for j, c in enumerate(sg.columns)}
        plan.bare_segment = np.array([where[c][0] for c in plan.bare], dtype=np.int64)
        plan.bare_column = np.array([where[c][1] for c in plan.bare], dtype=np.uint64)
        return plan

    def _gathered(self, air: Air, main: MainColumns) -> dict[str, np.ndarray]:
        """The main columns the expressions read, each contiguous: the
        chosen columns of each segment matrix in one cache-blocked pass
        (zk_gather_columns), not a strided copy per column.  The matrices'
        strides are bind's to check."""
        out: dict[str, np.ndarray] = {}
        for i, names, places in self.expr_inputs:
            mat = main.segments[air.main_segments[i].name]
            n = mat.shape[0]
            offsets = (places * (mat.strides[1] // 4)).astype(np.uintp)
            cols = np.empty((len(names), n), dtype=np.uint32)
            lib.zk_gather_columns(ffi.cast("uint32_t *", cols.ctypes.data), n,
                                  ffi.cast("uint32_t *", mat.ctypes.data), mat.strides[0] // 4, n,
                                  ffi.cast("size_t *", offsets.ctypes.data), len(names))
            out.update(zip(names, cols))
        return out

    def bind(self, air: Air, main, challenges: np.ndarray, rows: slice | None = None):
        """(the fractions' zk_logup_fraction records, the arrays they point
        into) for one proof, over every row or the contiguous `rows` only,
        or None when a constant multiplicity turns out extension-valued."""
        n = air.trace_length if rows is None else len(range(*rows.indices(air.trace_length)))
        first_row = 0 if rows is None else rows.indices(air.trace_length)[0]
        constants = air.constants(challenges)
        alpha = constants(self.alpha.args)
        keep: list = []
        # every source's address and stride (in words)
        if isinstance(main, MainColumns):
            mats = main.segments
            base = np.array([mats[s.name].ctypes.data for s in air.main_segments], dtype=np.uint64)
            rstride = np.array([mats[s.name].strides[0] for s in air.main_segments], dtype=np.uint64)
            cstride = np.array([mats[s.name].strides[1] for s in air.main_segments], dtype=np.uint64)
            if (rstride % 4).any() or (cstride % 4).any() or \
                    any(mats[s.name].dtype != np.uint32 for s in air.main_segments):
                raise ValueError("the main segments must be uint32 matrices")
            addr = [base[self.bare_segment] + cstride[self.bare_segment] * self.bare_column
                    + rstride[self.bare_segment] * np.uint64(first_row)]
            stride = [rstride[self.bare_segment] // 4]
        else:
            cols = [_strided(_main_column(air, main, c)[first_row: first_row + n]) for c in self.bare]
            keep.append(cols)
            addr = [np.array([c.ctypes.data for c in cols], dtype=np.uint64)]
            stride = [np.array([c.strides[0] // 4 for c in cols], dtype=np.uint64)]
        if self.exprs:
            # every row of a trace matrix: the expressions' columns gathered
            # in one pass; a row range (a claim's last row): each read sliced
            whole = rows is None and isinstance(main, MainColumns)
            source = self._gathered(air, main) if whole else main
            alg = C.ColumnAlgebra(n, _trace_source(air, source, challenges, rows))
            cols = [_strided(c) for c in evaluate(self.exprs, alg)]
            keep.append(cols)
            addr.append(np.array([c.ctypes.data for c in cols], dtype=np.uint64))
            stride.append(np.array([c.strides[0] // 4 for c in cols], dtype=np.uint64))
        extra = []
        for k, j, e in self.const_terms:
            if j < 0:      # a degree-0 multiplicity other than 1
                (m,) = evaluate([e], ScalarAlgebra(constants))
                if not m.is_base():
                    return None
                if m.c[0] != 1:
                    extra.append((k, np.full(n, F.encode_int(m.c[0]), dtype=np.uint32)))
        cols = [np.full(n, F.encode_int(c), dtype=np.uint32) for c in self.const_cols] + [c for _, c in extra]
        keep.append(cols)
        addr.append(np.array([c.ctypes.data for c in cols], dtype=np.uint64))
        stride.append(np.ones(len(cols), dtype=np.uint64))
        addr, stride = np.concatenate(addr), np.concatenate(stride)

        fr = self.fractions.copy()
        # values and strides: one flat array each, fraction k's from its start
        # (one spare entry: a fraction with no varying entry points at it)
        values = np.zeros(len(self.source) + 1, dtype=np.uintp)
        strides = np.ones(len(self.source) + 1, dtype=fr.dtype["mult_stride"])
        values[:-1], strides[:-1] = addr[self.source], stride[self.source]
        powers = self.argument.compression_coefficients(challenges, self.arity)
        coeffs = np.zeros((len(self.source) + 1, 4), dtype=np.uint32)
        coeffs[:-1] = powers[self.power]
        if self.scale is not None:
            E.mul_base(coeffs[:-1], self.scale, out=coeffs[:-1])
        fr["values"] = values.ctypes.data + values.itemsize * self.start
        fr["strides"] = strides.ctypes.data + strides.itemsize * self.start
        fr["coeffs"] = coeffs.ctypes.data + coeffs.strides[0] * self.start
        has_mult = self.mult_source >= 0
        fr["mult"][has_mult] = addr[self.mult_source[has_mult]]
        fr["mult_stride"][has_mult] = stride[self.mult_source[has_mult]]
        for i, (k, _) in enumerate(extra):
            fr["mult"][k], fr["mult_stride"][k] = addr[len(addr) - len(extra) + i], 1
        # offsets: alpha minus each tuple's constant part sum_j c_j beta_j
        const = E.combine_rows(self.const_matrix, powers)
        for k, j, e in self.const_terms:
            if j >= 0:
                (v,) = evaluate([e], ScalarAlgebra(constants))
                const[k] = (Ext.from_mont(const[k]) + Ext.from_mont(powers[j]) * v).to_mont()
        fr["offset"] = F.sub(np.ascontiguousarray(np.broadcast_to(alpha.to_mont(), const.shape)), const)
        keep += [values, strides, coeffs]
        return fr, keep


#: the most columns a linear entry is split into (each an entry of the kernel's)
LINEAR_TERMS = 16


def _linear(e: Expr) -> tuple[dict[int, int], int] | None:
    """e as sum_i a_i * col_i + c (current-row trace columns by index,
    integer coefficients mod p, none zero), or None when it is not one of
    at most LINEAR_TERMS columns: a product of two varying factors, a
    periodic column, a public value or a challenge."""
    cache: dict[int, tuple[dict[int, int], int] | None] = {}
    for node in topological([e]):
        if node.op == "const":
            v = ({}, node.args[0] % F.P)
        elif node.op == "var":
            kind, *key = node.args
            v = ({key[0]: 1}, 0) if kind == TRACE and not key[1] else None
        else:
            args = [cache[id(a)] for a in node.args]
            if any(a is None for a in args):
                v = None
            elif node.op == "neg":
                (t, c), = args
                v = ({k: (-a) % F.P for k, a in t.items()}, (-c) % F.P)
            elif node.op == "mul":
                (ta, ca), (tb, cb) = args
                if ta and tb:
                    v = None
                else:
                    t, s = (ta, cb) if ta else (tb, ca)
                    v = ({k: a * s % F.P for k, a in t.items()}, ca * cb % F.P)
            else:
                (ta, ca), (tb, cb) = args
                sign = 1 if node.op == "add" else -1
                t = dict(ta)
                for k, a in tb.items():
                    t[k] = (t.get(k, 0) + sign * a) % F.P
                v = (t, (ca + sign * cb) % F.P)
        cache[id(node)] = v if v is None else ({k: a for k, a in v[0].items() if a}, v[1])
    out = cache[id(e)]
    return None if out is None or len(out[0]) > LINEAR_TERMS else out


class _ExtensionValued(Exception):
    """A tuple entry that is extension-valued: the argument takes build_numpy."""


#: kernel plans by (constraint list, argument), the most recent few (LogUp._plan)
_PLANS: "ShapeCache[_Plan | None]" = ShapeCache(8)


def aux_columns(*arguments: LogUp) -> tuple[str, ...]:
    """The auxiliary columns of several arguments, in order."""
    return tuple(c for a in arguments for c in a.columns)


def build_aux(air: Air, arguments: Sequence[LogUp], main: dict[str, np.ndarray],
              challenges: np.ndarray) -> np.ndarray:
    """Air.build_aux for an AIR whose auxiliary columns are exactly
    ``aux_columns(*arguments)``."""
    if tuple(air.aux_columns) != aux_columns(*arguments):
        raise ValueError("the AIR's aux_columns must be aux_columns(*arguments), in order")
    out = np.empty((air.trace_length, len(air.aux_columns), 4), dtype=np.uint32)
    col = 0
    for a in arguments:
        a.build(air, main, challenges, out[:, col: col + len(a.columns)])
        col += len(a.columns)
    return out


def transitions(f: Frame, arguments: Sequence[LogUp]) -> list[TransitionConstraint]:
    return [c for a in arguments for c in a.transitions(f)]


def boundaries(f: Frame, arguments: Sequence[LogUp]) -> list[BoundaryConstraint]:
    return [b for a in arguments for b in a.boundaries(f)]

"""The STARK prover: prove(air, traces) -> Proof, in numbered protocol steps.

Domains: the trace lives on H = <w_N>; every committed matrix is its
low-degree extension on D = g * <w_M>, M = N * 2^log_blowup, g = 31, in
natural order (row i at g * w_M^i, so "next row" is i + 2^log_blowup).  FRI
takes the DEEP composition in bit-reversed order (fri.py says why).

    1. commit main segments      (external ones: reuse the earlier commitment)
    2. commit auxiliary segment  (built from challenges drawn after step 1)
    3. constraint quotient       Q = sum alpha^i C_i / Z_i over D
    4. commit quotient chunks    Q = sum_i x^(iN) Q_i(x), deg Q_i < N
    5. out-of-domain openings    every column at z (trace columns also at w z);
                                 exported segments also at their link point
    6. DEEP composition          f = sum gamma_k (P_k(x) - P_k(y_k)) / (x - y_k),
                                 one independent gamma_k per term
    7. FRI commit phase
    8. proof of work
    9. query openings

Each step's seconds go to ``ProveResult.timings``, never into the proof: a
proof is a function of its inputs (the same batch, parameters and
pre-state give the same bytes).
"""
from __future__ import annotations

import functools
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from . import constraints as C
from . import extension as E
from . import field as F
from . import fri, ntt
from .air import Air, Frame
from .domain import (COSET_SHIFT, Link, absorb_header, deep_coefficients, link_point,
                     periodic_values_on_lde, zpowers)
from .constraint_program import Output, Program, matrix_columns
from .expr import CONSTANT_KINDS, PERIODIC, TRACE, evaluate
from .ext_scalar import Ext
from .merkle import MerkleTree, commit_extend, commit_lde
from .merkle_batch import sibling_positions
from .native import lib, u32p
from .params import ProofOptions, ParameterError
from .proof import Proof, layout, quotient_chunks, quotient_log_blowup
from .shape_cache import ShapeCache
from .transcript import Transcript


class ConstraintError(ValueError):
    """The trace does not satisfy the AIR (debug mode names where)."""


@dataclass
class SegmentCommitment:
    """A committed matrix: its trace (N, w), LDE (M, w) and Merkle tree.  An
    exported segment's commitment can be handed to a later proof as an
    external segment, with its link()."""

    trace: np.ndarray
    lde: np.ndarray
    tree: MerkleTree

    @property
    def root(self) -> bytes:
        return self.tree.root

    @classmethod
    def commit(cls, trace: np.ndarray, log_blowup: int) -> "SegmentCommitment":
        lde, tree = commit_lde(trace, log_blowup, COSET_SHIFT)   # one pass: leaves hashed from cache
        return cls(trace, lde, tree)

    def link(self) -> Link:
        """The Link of this table: its columns' values at the point its root
        selects.  Needs only the table, so a batch's successor can be proven
        before (or while) the batch itself is."""
        z = link_point(self.root)
        if z.is_base():
            raise ValueError("the root selects a link point in the base field (probability 2^-93)")
        values = E.sum_rows(np.ascontiguousarray(self.trace), barycentric_weights(z, self.trace.shape[0]))
        return Link(z, [Ext.from_mont(v) for v in values])


@dataclass
class ProveResult:
    proof: Proof
    commitments: dict[str, SegmentCommitment]   # every matrix, by layout name
    links: dict[str, Link]                      # exported segments: what a later proof needs
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def _span(timings: dict, name: str):
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0


def prove(air: Air, traces: dict[str, np.ndarray], options: ProofOptions,
          external: dict[str, tuple[SegmentCommitment, Link | None]] | None = None,
          debug: bool = False) -> ProveResult:
    """Prove that `traces` (segment name -> (N, w) Montgomery matrix)
    satisfy `air`.  `external` maps each external segment to the commitment
    of an earlier proof and its Link (None for a table whose root the
    verifier computes itself).  `debug` checks every constraint on
    the trace first and names the first failure."""
    options.validate()
    air.validate()
    n, lb = air.trace_length, options.log_blowup
    if lb < quotient_log_blowup(air):
        raise ParameterError(f"constraints of degree {air.max_degree} need a blowup of at least "
                             f"{1 << quotient_log_blowup(air)}; log_blowup is {lb}")
    external = external or {}
    m_log = n.bit_length() - 1 + lb
    mats = layout(air)
    timings: dict[str, float] = {}
    tr = Transcript(b"zksidecar-stark")
    absorb_header(tr, air, options, {s: ext[1] for s, ext in external.items()})

    # 1 -------------------------------------------------------------------
    commitments: dict[str, SegmentCommitment] = {}
    with _span(timings, "1_commit_main"):
        for seg in air.main_segments:
            trace = traces.get(seg.name)
            if trace is None:
                raise ValueError(f"no trace for segment {seg.name!r}")
            if trace.shape != (n, len(seg.columns)) or trace.dtype != np.uint32:
                raise ValueError(f"segment {seg.name!r} must be a ({n}, {len(seg.columns)}) uint32 "
                                 f"matrix, got {trace.dtype} {trace.shape}")
            if seg.external:
                if seg.name not in external:
                    raise ValueError(f"external segment {seg.name!r} needs its earlier commitment")
                com, link = external[seg.name]
                if com.lde.shape[0] != n << lb or not np.array_equal(com.trace, trace):
                    raise ValueError(f"external segment {seg.name!r}: the commitment is not of this trace")
                if link is not None and link.z != link_point(com.root):
                    raise ValueError(f"external segment {seg.name!r}: the link is not its root's")
            else:
                com = SegmentCommitment.commit(np.ascontiguousarray(trace), lb)
            commitments[seg.name] = com
            tr.absorb(b"root", com.root)

    # 2 -------------------------------------------------------------------
    challenges = np.zeros((0, 4), dtype=np.uint32)
    with _span(timings, "2_commit_aux"):
        if air.num_challenges:
            challenges = tr.challenge_ext(air.num_challenges)
        if air.aux_columns:
            main_cols = air.main_columns(traces)      # columns copied out only when read
            aux = air.build_aux(main_cols, challenges)
            if aux.shape != (n, len(air.aux_columns), 4):
                raise ValueError(f"build_aux returned {aux.shape}, expected {(n, len(air.aux_columns), 4)}")
            com = SegmentCommitment.commit(np.ascontiguousarray(aux.reshape(n, -1)), lb)
            commitments["aux"] = com
            tr.absorb(b"root", com.root)

    trace_mats = [commitments[m.name] for m in mats if m.is_trace]
    if debug:
        check_constraints(air, [c.trace for c in trace_mats], challenges)

    # 3 -------------------------------------------------------------------
    with _span(timings, "3_quotient"):
        alpha = Ext.from_mont(tr.challenge_ext(1)[0])
        q = quotient_on_lde(air, [c.lde for c in trace_mats], challenges, alpha, lb)

    # 4 -------------------------------------------------------------------
    k = quotient_chunks(air)
    with _span(timings, "4_commit_quotient"):
        coeffs = ntt.coset_intt(q, COSET_SHIFT, out=q)         # (|Q|, 4); q is not read again
        # beyond k chunks only when |Q| > k N; debug's check_constraints
        # (step 2) is the check that always runs
        if debug and coeffs[k * n:].any():
            raise ConstraintError("the quotient has degree >= its bound: some constraint does not "
                                  "hold on the trace")
        chunks = np.empty((n, 4 * k), dtype=np.uint32)        # chunk i's coefficients, side by side
        for i in range(k):
            chunks[:, 4 * i: 4 * i + 4] = coeffs[i * n: (i + 1) * n]
        chunk_lde, chunk_tree = commit_extend(chunks, lb, COSET_SHIFT)   # no zero rows transformed
        qcom = SegmentCommitment(chunks, chunk_lde, chunk_tree)
        commitments["quotient"] = qcom
        tr.absorb(b"root", qcom.root)

    # 5 -------------------------------------------------------------------
    with _span(timings, "5_ood"):
        z = Ext.from_mont(tr.challenge_ext(1)[0])
        if z.is_base():
            raise ValueError("out-of-domain point fell in the base field (probability 2^-93)")
        w_n = F.two_adic_generator(n.bit_length() - 1)
        # trace matrices from their values on H (barycentric: no interpolation),
        # the quotient chunks from their coefficients (z^0 .. z^(N-1))
        u = barycentric_weights(z, n)
        u_next = np.roll(u, 1, axis=0)          # the weights at w z: u_next[i] = u[i - 1]
        ood_z, ood_next = {}, {}
        for m in mats:
            com = commitments[m.name]
            if m.is_trace:   # the trace's rows summed with the weights, as they lie (no transpose)
                ood_z[m.name], ood_next[m.name] = E.sum_rows2(np.ascontiguousarray(com.trace), u, u_next)
            else:
                ood_z[m.name] = E.sum_rows(chunks, zpowers(z, n))
        for m in mats:
            tr.absorb_array(b"ood-z", ood_z[m.name])
            if m.is_trace:
                tr.absorb_array(b"ood-next", ood_next[m.name])
        links = {name: ext[1] for name, ext in external.items() if ext[1] is not None}
        for m in mats:
            if m.exported:
                links[m.name] = commitments[m.name].link()
                tr.absorb_array(b"link", F.encode(_ext_rows(links[m.name].values)))

    # 6 -------------------------------------------------------------------
    with _span(timings, "6_deep"):
        groups = deep_coefficients(tr, mats, links)
        f = deep_composition(mats, commitments, ood_z, ood_next, z, z * w_n, groups, links, m_log)

    # 7 -------------------------------------------------------------------
    with _span(timings, "7_fri_commit"):
        f_br = ntt.bit_reverse_rows(f)
        fri_com = fri.commit(f_br, n, options, m_log, COSET_SHIFT, tr)

    # 8 -------------------------------------------------------------------
    with _span(timings, "8_grind"):
        nonce = tr.grind(options.grinding_bits)

    # 9 -------------------------------------------------------------------
    with _span(timings, "9_queries"):
        positions = np.array(tr.challenge_indices(options.num_queries, n << lb), dtype=np.int64)
        natural = fri.bit_reverse_ints(positions, m_log)
        order = np.argsort(natural)
        rows_idx = natural[order]
        rows, row_proofs = {}, {}
        siblings = sibling_positions(n << lb, rows_idx)      # the same in every matrix's tree
        for m in mats:
            com = commitments[m.name]
            rows[m.name] = F.decode(np.ascontiguousarray(com.lde[rows_idx]))
            row_proofs[m.name] = com.tree.nodes[siblings]
        fri_open = fri.open_layers(fri_com, positions, options.fri_folding_factor)

    proof = Proof(
        options=options, log_trace_length=n.bit_length() - 1,
        roots={m.name: commitments[m.name].root for m in mats if not m.external},
        ood_z={k_: F.decode(v) for k_, v in ood_z.items()},
        ood_next={k_: F.decode(v) for k_, v in ood_next.items()},
        fri_roots=fri_com.roots, fri_final=F.decode(fri_com.final_coeffs), pow_nonce=nonce,
        rows=rows, row_proofs=row_proofs,
        fri_leaves=[leaves for leaves, _ in fri_open], fri_proofs=[p for _, p in fri_open],
        link_values={m.name: _ext_rows(links[m.name].values) for m in mats if m.exported})
    return ProveResult(proof, commitments, {m.name: links[m.name] for m in mats if m.exported},
                       timings)


# ----------------------------------------------------------------- steps --

def _variable_source(air: Air, mats: list[np.ndarray], challenges: np.ndarray, step: int,
                     periodic: dict[str, np.ndarray]):
    """Column lookup for ColumnAlgebra over trace-shaped matrices (the trace
    itself with step 1, or the LDE with step = blowup): the next row is `step`
    rows down, cyclically."""
    offsets, start = [], 0
    for m in mats:
        offsets.append(start)
        start += m.shape[1]
    n_main = air.num_main_columns
    constants = air.constants(challenges)
    cache: dict[tuple, np.ndarray] = {}
    wrapped: dict[int, np.ndarray] = {}

    def wrapped_column(col: int) -> np.ndarray:
        """Column `col` followed by its first `step` rows again: the current
        row is the view [0, n) and the next row the view [step, n + step),
        both contiguous, with no copy per use.  Base columns come from one
        blocked transpose per matrix."""
        if col not in wrapped:
            if col < n_main:
                k = next(i for i, off in enumerate(offsets) if off <= col < off + mats[i].shape[1])
                for j, c in enumerate(_columns(mats[k], step)):
                    wrapped[offsets[k] + j] = c
            else:  # an auxiliary (extension) column: four base columns
                a = col - n_main
                src = mats[-1][:, 4 * a: 4 * a + 4]
                n = src.shape[0]
                out = np.empty((n + step, 4), dtype=np.uint32)
                out[:n], out[n:] = src, src[:step]
                wrapped[col] = out
        return wrapped[col]

    def column(key):
        if key in cache:
            return cache[key]
        kind = key[0]
        if kind == TRACE:
            col, nxt = key[1], key[2]
            full = wrapped_column(col)
            n = full.shape[0] - step
            v = full[step: step + n] if nxt else full[:n]
        elif kind == PERIODIC:
            v = periodic[key[1]]
        elif kind in CONSTANT_KINDS:
            return constants(key)
        else:
            raise KeyError(key)
        cache[key] = v
        return v

    return column


def barycentric_weights(z: Ext, n: int) -> np.ndarray:
    """(n, 4) Montgomery: the weights u_i with P(z) = sum_i u_i P(w^i) for
    every P of degree < n given by its values on H = <w_n> (z outside H):
    u_i = (z^n - 1) / n * w^i / (z - w^i).  The weights at w z are the same,
    rotated by one row (u_(i-1)), since (w z)^n = z^n."""
    h, h_ext = _trace_points(n.bit_length() - 1)
    scale = (z ** n - 1) * pow(n, F.P - 2, F.P)
    # w^i / (w^i - z) in one pass (E.add_quotient into zeros), then times -scale
    u = E.add_quotient(np.zeros((n, 4), dtype=np.uint32), h_ext, np.zeros(4, dtype=np.uint32), h,
                       z.to_mont())
    return E.mul_scalar(u, (-scale).to_mont(), out=u)


@functools.lru_cache(maxsize=4)
def _trace_points(log_n: int) -> tuple[np.ndarray, np.ndarray]:
    """H = <w_N>, natural order, Montgomery, as base (N,) and extension
    (N, 4) elements (read-only, computed once per size)."""
    h = ntt.domain(log_n)
    h_ext = E.from_base(h)
    h.flags.writeable = h_ext.flags.writeable = False
    return h, h_ext


def _ext_rows(values: list[Ext]) -> np.ndarray:
    """(k, 4) canonical words of extension values."""
    return np.array([v.c for v in values], dtype=np.uint32).reshape(len(values), 4)


def _columns(mat: np.ndarray, wrap: int = 0) -> np.ndarray:
    """(cols, n + wrap): each column of the row-major (n, cols) `mat`, then
    its first `wrap` values again (so a next-row view is contiguous); one
    cache-blocked transpose."""
    n, cols = mat.shape
    out = np.empty((cols, n + wrap), dtype=np.uint32)
    lib.zk_transpose_u32(u32p(out), n + wrap, u32p(np.ascontiguousarray(mat)), n, cols)
    out[:, n:] = out[:, :wrap]
    return out


_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A uint32 buffer of `shape` for the calling thread, kept from call to
    call under `name` (valid until the thread's next call with that name):
    for intermediates a proof writes and reads but never returns.  A fresh
    4-40 MB buffer per proof cost its pages' zeroing by the kernel, and the
    second proof of a process paid again while the heap grew."""
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    size = int(np.prod(shape))
    buf = bufs.get(name)
    if buf is None or buf.size < size:
        buf = bufs[name] = np.empty(size, dtype=np.uint32)
    return buf[:size].reshape(shape)


def check_constraints(air: Air, trace_mats: list[np.ndarray], challenges: np.ndarray) -> None:
    """Debug mode: every constraint on every row; raise ConstraintError naming
    the first failing constraint and row."""
    n = air.trace_length
    periodic = {name: F.encode(np.tile(np.asarray(v, dtype=np.int64), n // len(v)))
                for name, v in air.periodic_columns.items()}
    source = _variable_source(air, trace_mats, challenges, 1, periodic)
    alg = C.ColumnAlgebra(n, source)
    cons = air.transition_constraints
    first = None  # (row, constraint name): the earliest row, then declaration order
    wrap = None   # the first every-row constraint failing on row N-1 (next row: row 0)
    for c, v in zip(cons, evaluate([c.expr for c in cons], alg)):
        col = C.as_column(v, n, isinstance(v, np.ndarray) and v.ndim == 2)
        rows = col.reshape(n, -1).any(axis=1)
        bad = np.flatnonzero(rows[: n - 1])
        if bad.size and (first is None or bad[0] < first[0]):
            first = (int(bad[0]), c.name)
        if c.every_row and wrap is None and rows[n - 1]:
            wrap = c.name
    if first:
        row, name = first
        raise ConstraintError(f"transition constraint {name!r} fails at row {row} "
                              f"(between rows {row} and {row + 1})")
    for b in air.boundary_constraints:
        row = b.row % n
        (col,) = evaluate([_boundary_expr(air, b)], alg)
        col = C.as_column(col, n, isinstance(col, np.ndarray) and col.ndim == 2)
        if col.reshape(n, -1)[row].any():
            raise ConstraintError(f"boundary constraint {b.name!r} fails at row {row}")
    # the wrap last, after the boundaries: there a LogUp sum that does not
    # close fails (its cyclic relation, row N-1 -> row 0), which tells less
    # than a boundary or a row's own rule failing alongside
    if wrap is not None:
        raise ConstraintError(f"transition constraint {wrap!r} fails at row {n - 1} "
                              f"(between rows {n - 1} and 0, the wrap)")


def _boundary_expr(air: Air, b):
    return Frame(air).cur(b.column) - b.value


def _shape_of(e) -> tuple:
    """A small expression's structure, as a hashable tuple."""
    if e.op in ("var", "const"):
        return (e.op,) + tuple(e.args)
    return (e.op,) + tuple(_shape_of(a) for a in e.args)


def quotient_on_lde(air: Air, ldes: list[np.ndarray], challenges: np.ndarray, alpha: Ext,
                    log_blowup: int) -> np.ndarray:
    """sum_i alpha^i C_i(x) / Z_i(x) on the quotient domain Q, (|Q|, 4)
    Montgomery: transitions over Z = (x^N - 1) / (x - w^(N-1)), then
    boundaries over (x - w^row).  Q = s <w_(N 2^e)>, e = quotient_log_blowup,
    is every 2^(log_blowup - e)-th row of the LDE domain D = s <w_M>: the
    quotient has degree below 2^e N (the constraints' degree bound), so its
    values there determine it, and the constraints are evaluated on a
    fraction 2^(e - log_blowup) of D (half, at blowup 4 and degree 3).  The
    prover is free to compute the quotient any way it likes: the verifier
    checks it at z.  The numerators come from one compiled pass
    (constraint_program.py): the transitions into one accumulator, each
    boundary row's into its own."""
    n = air.trace_length
    qlb = quotient_log_blowup(air)
    if qlb > log_blowup:
        raise ValueError(f"constraints of degree {air.max_degree} need blowup >= 2^{qlb}")
    skip = 1 << (log_blowup - qlb)       # LDE rows per quotient-domain row
    step = 1 << qlb                      # the next trace row, in quotient-domain rows
    m = n << qlb
    plan = _quotient_plan(air, ldes, qlb)
    # inputs: every column of the LDE matrices where it lies, read every
    # skip-th row (the evaluator reads them strided and wraps next-row
    # loads), the periodic columns likewise
    base, ext, keep = [], [], list(ldes)
    for mat in ldes[:len(air.main_segments)]:
        addr, stride = matrix_columns(mat)
        base.append((addr, stride * skip))
    if air.aux_columns:
        addr, stride = matrix_columns(ldes[len(air.main_segments)], 4)
        ext.append((addr, stride * skip))
    if air.periodic_columns:
        periodic = periodic_values_on_lde(air, log_blowup)     # on D: read every skip-th
        cols = [periodic[name] for name in plan.periodic]
        keep.append(cols)
        base.append((np.array([c.ctypes.data for c in cols], dtype=np.uintp),
                     np.array([c.strides[0] // 4 * skip for c in cols], dtype=np.uintp)))
    join = lambda parts, i: np.concatenate([p[i] for p in parts]) if parts \
        else np.zeros(0, dtype=np.uintp)   # noqa: E731
    weights = zpowers(alpha, plan.program.n_outputs)      # transitions, then boundaries
    program = plan.program.bind(air.constants(challenges), weights)
    accs = program.run_at(join(base, 0), join(base, 1), join(ext, 0), join(ext, 1), m, step, keep)

    transition, inv_zh, boundary = _divisors_on_lde(n, qlb, plan.rows)
    q = E.mul_base(accs[0], transition)
    if plan.every_row:
        F.add(q, E.mul_base(accs[plan.every], inv_zh), out=q)
    for inv, num in zip(boundary, accs[1:plan.every]):
        F.add(q, E.mul_base(num, inv), out=q)
    return q


@dataclass
class _QuotientPlan:
    """What quotient_on_lde needs that depends on the AIR's shape alone: the
    compiled program (its constants and weights bound per proof), the
    boundary rows, the accumulator of the every-row constraints, the order
    of the periodic inputs."""

    program: Program
    rows: tuple[int, ...]
    every: int
    every_row: bool
    periodic: tuple[str, ...]


#: quotient plans by shape (see _quotient_plan), the most recent few
_QUOTIENT_PLANS: "ShapeCache[_QuotientPlan]" = ShapeCache(8)


def _quotient_plan(air: Air, ldes: list[np.ndarray], log_blowup: int) -> _QuotientPlan:
    """The quotient's plan for this AIR's shape, compiled on first use and
    kept while the AIR's transition constraints are the same objects (the
    order book caches them per trace length), the boundaries the same in
    shape and the matrices the same in width; an AIR building its
    constraints afresh compiles per instance."""
    n = air.trace_length
    cons = air.transition_constraints
    bcons = air.boundary_constraints
    key = (id(cons), n, log_blowup, tuple(mat.shape[1] for mat in ldes),
           tuple((b.column, b.row % n, _shape_of(b.value)) for b in bcons),
           tuple(sorted(air.periodic_columns)))
    return _QUOTIENT_PLANS.get(key, cons, lambda: _compile_quotient(air, ldes))


def _compile_quotient(air: Air, ldes: list[np.ndarray]) -> _QuotientPlan:
    """The quotient's plan, compiled: inputs numbered in the order
    quotient_on_lde passes them, one output per constraint."""
    n = air.trace_length
    cons = air.transition_constraints
    bcons = air.boundary_constraints
    base_inputs, ext_inputs, col = {}, {}, 0
    for mat in ldes[:len(air.main_segments)]:
        for _ in range(mat.shape[1]):
            base_inputs[(TRACE, col)] = col
            col += 1
    for a in range(len(air.aux_columns)):
        ext_inputs[(TRACE, col + a)] = a
    periodic = tuple(air.periodic_columns)
    for i, name in enumerate(periodic):
        base_inputs[(PERIODIC, name)] = col + i
    # accumulators: transitions, each boundary row, then every-row constraints
    rows = sorted({b.row % n for b in bcons})
    every = 1 + len(rows)
    outputs = [Output(every if c.every_row else 0, c.expr, Ext(0)) for c in cons]
    outputs += [Output(1 + rows.index(b.row % n), _boundary_expr(air, b), Ext(0)) for b in bcons]
    # compiled with placeholder values: bind() gives each proof its own
    program = Program(outputs, _no_constants, base_inputs, ext_inputs, every + 1)
    return _QuotientPlan(program, tuple(rows), every, any(c.every_row for c in cons), periodic)


def _no_constants(key) -> Ext:
    """A placeholder resolver for compiling a shape (every value zero)."""
    return Ext(0)


@functools.lru_cache(maxsize=4)
def _divisors_on_lde(n: int, log_blowup: int, rows: tuple[int, ...]):
    """The quotient's divisors on D, inverted, which depend on the shape
    alone (so a chain of proofs of one shape computes them once; read-only):
    (x - w^(N-1)) / (x^N - 1) for the transitions, 1 / (x^N - 1) for the
    every-row constraints, and 1 / (x - w^row) for each boundary row."""
    m = n << log_blowup
    x = _coset_points(m.bit_length() - 1)
    # x^N takes 2^log_blowup values on D, periodically
    step = 1 << log_blowup
    xn = F.power(np.ascontiguousarray(x[:step]), n)
    inv_zh = np.tile(F.inv(F.sub(xn, np.full(step, F.ONE, dtype=np.uint32))), n)
    w_n = F.two_adic_generator(n.bit_length() - 1)
    last = F.encode_int(pow(w_n, n - 1, F.P))
    transition = F.mul(F.sub(x, np.full(m, last, dtype=np.uint32)), inv_zh)
    boundary = [F.inv(F.sub(x, np.full(m, F.encode_int(pow(w_n, row, F.P)), dtype=np.uint32)))
                for row in rows]
    for a in (transition, inv_zh, *boundary):
        a.flags.writeable = False
    return transition, inv_zh, boundary


def deep_composition(mats, commitments, ood_z, ood_next, z: Ext, z_next: Ext, groups,
                     links: dict[str, Link], log_m: int) -> np.ndarray:
    """f(x) on D, natural order, (M, 4): every committed column's DEEP
    quotients, each with its own coefficient (`groups`, from
    domain.deep_coefficients, which fixes the order the verifier repeats).
    A trace matrix's LDE is read once for both its points (combine_rows2)."""
    x = _coset_points(log_m)
    rows = x.size
    groups = dict(groups)
    coeffs_z, coeffs_next = dict(groups["z"]), dict(groups["next"])
    values = {"z": ood_z, "next": ood_next}
    # every intermediate is the thread's scratch (see _scratch); only f is new
    nums = {"z": _scratch("deep_z", (rows, 4)), "next": _scratch("deep_next", (rows, 4))}
    nums["z"].fill(0)
    nums["next"].fill(0)
    a, b = _scratch("deep_a", (rows, 4)), _scratch("deep_b", (rows, 4))  # each matrix's sums
    for name in coeffs_z:
        lde = commitments[name].lde
        if name in coeffs_next:
            E.combine_rows2(lde, coeffs_z[name], coeffs_next[name], out_a=a, out_b=b)
            F.add(nums["next"], b, out=nums["next"])
        else:
            E.combine_rows(lde, coeffs_z[name], out=a)
        F.add(nums["z"], a, out=nums["z"])
    points = {"z": z, "next": z_next}
    consts = {point: _dot(np.concatenate([cs for _, cs in groups[point]]),
                          np.concatenate([values[point][name] for name, _ in groups[point]]))
              for point in ("z", "next")}
    for name, link in links.items():
        (_, cs), = groups[name]
        nums[name] = E.combine_rows(commitments[name].lde, cs, out=_scratch(f"deep_link_{name}", (rows, 4)))
        points[name] = link.z
        consts[name] = _dot(cs, _mont_rows(link.values))
    f = np.zeros((rows, 4), dtype=np.uint32)
    for point, num in nums.items():     # f += (num - c) / (x - point), one pass each
        E.add_quotient(f, num, consts[point], x, points[point].to_mont())
    return f


@functools.lru_cache(maxsize=4)
def _coset_points(log_m: int) -> np.ndarray:
    """D = g * <w_M>, natural order, Montgomery (read-only, computed once per size)."""
    x = ntt.domain(log_m, COSET_SHIFT)
    x.flags.writeable = False
    return x



def _mont_rows(values: list[Ext]) -> np.ndarray:
    """(k, 4) Montgomery words of extension values."""
    return F.encode(_ext_rows(values))


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum_k a[k] * b[k] of two (k, 4) Montgomery arrays, as one (4,) Montgomery
    value: one kernel product, then the sum (Montgomery form is linear)."""
    prod = E.mul(np.ascontiguousarray(a), np.ascontiguousarray(b)).astype(np.uint64)
    return (prod.sum(axis=0) % F.P).astype(np.uint32)

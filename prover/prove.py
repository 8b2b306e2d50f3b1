"""The STARK prover: prove(air, traces) -> Proof, in numbered protocol steps.

`prove` takes an AIR or a statement of several domains (statement.py):
each step below runs domain by domain, in the statement's order, with one
set of challenges, one alpha and one z for all; a domain's N, H, D and
vanishing polynomials are its own; step 2 also binds each domain's claimed
sum; step 7 is one FRI, the tall domain's f its first layer and every other
domain's f joining where the folding reaches its height; step 9 draws
positions on the tall domain and opens domain d at rev(j >> s_d).  A
one-domain statement is the single-AIR proof exactly.

Trees (proof.statement_trees): a chained segment (external or exported)
has a tree of its own; the other matrices of a round share one tree with
every domain's matrices of that round, the shorter joining at their height
(merkle.MerkleTree.shared).  Leaves are in bit-reversed order, so leaf j of
a tree is FRI position j and a query opens one leaf per tree.

Domains: the trace lives on H = <w_N>; every committed matrix is its
low-degree extension on D = g * <w_M>, M = N * 2^log_blowup, g = 31, in
natural order (row i at g * w_M^i, so "next row" is i + 2^log_blowup).  FRI
takes the DEEP composition in bit-reversed order (fri.py says why).

    1. commit main segments      (external ones: reuse the earlier commitment)
    2. commit auxiliary segment  (built from challenges drawn after step 1)
    3. constraint quotient       Q = sum alpha^i C_i / Z_i over D
    4. commit quotient chunks    Q = sum_i x^(iN) Q_i(x), deg Q_i < N
    5. out-of-domain openings    every column at z, the columns whose next
                                 row a constraint reads also at w z;
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
from typing import Sequence

import numpy as np

from . import constraints as C
from . import extension as E
from . import field as F
from . import fri, ntt, zk_keys
from .air import Air, Frame
from .domain import (COSET_SHIFT, Link, absorb_claimed_sum, absorb_header, absorb_ood,
                     deep_coefficients, link_point, periodic_values_on_lde, zpowers)
from .constraint_program import Output, Program, matrix_columns
from .expr import CONSTANT_KINDS, PERIODIC, TRACE, evaluate
from .ext_scalar import Ext
from .masking import Mask, StateKey, commit_quotient, fri_layer_salts, leaf_salts, masked_quotient
from .merkle import MerkleTree, commit_lde, lde_leaves
from .merkle_batch import sibling_positions
from .native import lib, u32p
from .params import ProofOptions, ParameterError
from .proof import (Proof, check_zk_degrees, fri_degree_bound, fri_schedule, mask_degree, quotient_chunks,
                    quotient_log_blowup, quotient_size, statement_layouts, statement_trees)
from .shape_cache import ShapeCache
from .statement import Statement, as_statement
from .transcript import Transcript


class ConstraintError(ValueError):
    """The trace does not satisfy the AIR (debug mode names where)."""


@dataclass
class SegmentCommitment:
    """A committed matrix: its trace (N, w), LDE (M, w) and Merkle tree (its
    own, or its round's shared tree).  An exported segment's commitment (a
    tree of its own) can be handed to a later proof as an external segment,
    with its link().

    Masked (zk mode, masking.py), the committed polynomial is f = t + Z_H r
    and the leaves are salted: `lde` is f's, `mask` holds r and the salts,
    and `trace` is still the table (f = t on H).  `cosets` holds f's values
    on the small cosets its LDE was asked for (zk mode's quotient reads
    them: :meth:`coset_values`), by (log_m, shift): ``(2^log_m, w)`` each."""

    trace: np.ndarray
    lde: np.ndarray
    tree: MerkleTree
    mask: Mask | None = None
    cosets: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def salts(self) -> np.ndarray | None:
        """The leaves' salts, (M, 16) by leaf, or None (an unsalted tree)."""
        return None if self.mask is None else self.mask.salts

    @classmethod
    def commit(cls, trace: np.ndarray, log_blowup: int, mask: Mask | None = None,
               cosets: Sequence[tuple[int, int]] = ()) -> "SegmentCommitment":
        """Commit `trace` in a tree of its own: its LDE, or with `mask` the
        LDE of f = t + Z_H r with salted leaves (a chained state: the mask
        of its state key, masking.STATE_LABEL).  One pass: leaves hashed
        from cache.  `cosets` (masked only), ``(log_m, shift)`` each: f's
        values there, folded by the same pass from the coefficients it
        computes (``cosets``, :meth:`coset_values`)."""
        if mask is None:
            lde, tree = commit_lde(trace, log_blowup, COSET_SHIFT)
            return cls(trace, lde, tree)
        lde, leaves, values = _masked_lde(mask, trace, log_blowup, cosets)
        return cls(trace, lde, MerkleTree.from_leaves(leaves), mask, values)

    def values_at(self, z: Ext, u: np.ndarray, z_next: Ext | None = None,
                  u_next: np.ndarray | None = None,
                  next_columns: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(w, 4) Montgomery: the committed polynomials at z, and at z_next
        when given (else None) those of `next_columns` ((len, 4); every
        column when None), from the table's values on H by the barycentric
        weights u (u_next) of barycentric_weights, which give the
        interpolant t; a masked commitment adds (z^N - 1) r(z)
        (masking.Mask.value_at), so the value is f's (docs/ZK.md, 5.6).
        One `sum_rows2` for both points (the rows weighed as they lie, the
        second weighting only for the chunks of columns that hold a next
        column)."""
        trace = np.ascontiguousarray(self.trace)
        if z_next is None:
            at_z, at_next = E.sum_rows(trace, u), None
        else:
            at_z, at_next = E.sum_rows2(trace, u, u_next, columns_b=next_columns)
        if self.mask is not None:
            n = trace.shape[0]
            F.add(at_z, self.mask.value_at(z, n), out=at_z)
            if z_next is not None:
                r_next = self.mask.value_at(z_next, n)
                if next_columns is not None:
                    r_next = np.ascontiguousarray(r_next[list(next_columns)])
                F.add(at_next, r_next, out=at_next)
        return at_z, at_next

    def coefficients(self, out: np.ndarray | None = None) -> np.ndarray:
        """(N + h, w) Montgomery, rows X^0 .. X^(N + h - 1): the committed
        polynomials' coefficients, t's from the table by one inverse
        transform of size N and, masked, f = t + (X^N - 1) r: r subtracted
        from the first h rows and written at rows N .. N + h - 1 (docs/ZK.md
        5.2; h = 0 unmasked).  Written into `out` when given (that shape,
        C-contiguous)."""
        n, w = self.trace.shape
        h = 0 if self.mask is None else self.mask.h
        if out is None:
            out = np.empty((n + h, w), dtype=np.uint32)
        elif out.shape != (n + h, w) or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous {(n + h, w)} array, got {out.shape}")
        ntt.intt(np.ascontiguousarray(self.trace), out=out[:n])
        if h:
            F.sub(out[:h], self.mask.coeffs, out=out[:h])
            out[n:] = self.mask.coeffs
        return out

    def coset_values(self, cosets: Sequence[tuple[int, int]], outs: Sequence[np.ndarray]) -> None:
        """The committed polynomials' values on small cosets shift <w_m>
        (``(log_m, shift)`` each), natural order, each into its `outs`
        array ((2^log_m, w), C-contiguous): those the commitment's LDE
        folded (``cosets``), the others from :meth:`coefficients` (a
        commitment made without them: an earlier proof's chained state),
        the cosets of one size by one ntt.coset_values_at."""
        missing = []
        for (log_m, shift), out in zip(cosets, outs, strict=True):
            values = self.cosets.get((log_m, shift))
            if values is None:
                missing.append((log_m, shift, out))
            else:
                np.copyto(out, values)
        if not missing:
            return
        n, w = self.trace.shape
        h = 0 if self.mask is None else self.mask.h
        coeffs = self.coefficients(_scratch("top_coeffs", (n + h, w)))
        for log_m in sorted({lm for lm, _, _ in missing}):      # the cosets of one size from one read
            group = [(shift, out) for lm, shift, out in missing if lm == log_m]
            ntt.coset_values_at(coeffs, log_m, [s for s, _ in group], [o for _, o in group])

    def link(self) -> Link:
        """The Link of this table: its committed columns' values at the
        point its root selects.  Needs only the table (and, masked, its
        mask: a chained state's comes from its state key), so a batch's
        successor can be proven before (or while) the batch itself is."""
        z = link_point(self.root)
        if z.is_base():
            raise ValueError("the root selects a link point in the base field (probability 2^-93)")
        values, _ = self.values_at(z, barycentric_weights(z, self.trace.shape[0]))
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


def prove(subject: Air | Statement, traces: dict[str, np.ndarray], options: ProofOptions,
          external: dict[str, tuple[SegmentCommitment, Link | None]] | None = None,
          debug: bool = False, zk_key: bytes | None = None,
          state_keys: dict[str, StateKey] | None = None) -> ProveResult:
    """Prove that `traces` satisfy `subject`: an AIR, or a statement of
    several domains (statement.py).  `traces` maps each main segment, by
    its matrix name (``segment``, or ``domain.segment`` in a statement of
    several domains), to its (N_d, w) Montgomery matrix.  `external` maps
    each external segment (by the same name) to the commitment of an
    earlier proof and its Link (None for a table whose root the verifier
    computes itself).  `debug` checks every constraint on the traces first
    (and the claimed sums against the statement's target) and names the
    first failure.

    zk mode (``options.zk``, docs/ZK.md): `zk_key` is the batch's key
    (zk_keys.batch_key); every mask and salt only this proof opens comes
    from its proof key, zk_keys.proof_key(zk_key, the transcript header's
    digest, zk_keys.traces_digest of every main trace), labelled by
    matrix: a function of the witness, so a key reused for another witness
    masks it afresh.  `state_keys` maps each exported segment to its state
    key sigma (zk_keys.state_key) with its table's digest
    (masking.StateKey), which mask it (masking.Mask.for_state) so that a
    later proof rebuilds the same commitment from the same table; an
    external segment's commitment must be masked alike (or, a public table
    the verifier commits itself, with h = 0)."""
    st = as_statement(subject)
    options.validate()
    options.check_trace_length(max(dom.air.trace_length for dom in st.domains))
    st.validate()
    lb = options.log_blowup
    zk = options.zk
    h = mask_degree(st, options)
    for dom in st.domains:
        if zk:
            check_zk_degrees(dom.air, options, h)
        elif lb < quotient_log_blowup(dom.air):
            raise ParameterError(f"constraints of degree {dom.air.max_degree} need a blowup of at "
                                 f"least {1 << quotient_log_blowup(dom.air)}; log_blowup is {lb}")
    if zk and (not isinstance(zk_key, bytes) or len(zk_key) != zk_keys.KEY_BYTES):
        raise ValueError(f"zk mode needs its batch key, {zk_keys.KEY_BYTES} bytes (zk_key)")
    if not zk and (zk_key is not None or state_keys):
        raise ValueError("zk_key and state_keys are for zk mode (ProofOptions.zk); these options are transparent")
    state_keys = state_keys or {}
    external = external or {}
    layouts = statement_layouts(st, zk)
    trees = statement_trees(st)
    ns = [dom.air.trace_length for dom in st.domains]
    m_logs = [log_n + lb for log_n in st.log_lengths]
    timings: dict[str, float] = {}
    tr = Transcript(b"zksidecar-stark")
    absorb_header(tr, st, options, {s: ext[1] for s, ext in external.items()})
    mains = _main_traces(st, traces)
    # zk: the proof key covers the header and the witness (the traces'
    # digest), so one batch key given for two witnesses masks them apart
    # (but with probability at most (rows + columns) / p^4: zk_keys)
    header = tr.digest()
    proof_key = zk_keys.proof_key(zk_key, header, zk_keys.traces_digest(
        zk_key, header, [(name, trace) for _, _, name, trace in mains])) if zk else None

    # zk mode's quotient reads the committed polynomials on small cosets
    # where D does not hold it (quotient_coefficients, _top_inputs): each
    # commitment's LDE folds them from its coefficients on the way
    # (dropped after step 3)
    cosets = {m.name: top_cosets(dom.air, h, lb, m.at_next) if zk else []
              for dom, mats in zip(st.domains, layouts) for m in mats}

    def extended(name: str, mat: np.ndarray, d: int) -> "_Extended":
        """A shared tree's matrix of domain d extended and hashed; masked
        and salted under the proof key in zk mode."""
        mat = np.ascontiguousarray(mat)
        if not zk:
            return _Extended(mat, *lde_leaves(mat, lb, COSET_SHIFT))
        mask = Mask.derive(proof_key, name, mat.shape[1], h, m_logs[d])
        lde, leaves, values = _masked_lde(mask, mat, lb, cosets[name])
        return _Extended(mat, lde, leaves, mask, values)

    # 1 -------------------------------------------------------------------
    commitments: dict[str, SegmentCommitment] = {}
    with _span(timings, "1_commit_main"):
        for d, seg, name, trace in mains:
            n = ns[d]
            if seg.external:
                if name not in external:
                    raise ValueError(f"external segment {name!r} needs its earlier commitment")
                com, link = external[name]
                if not zk and com.mask is not None:
                    raise ValueError(f"external segment {name!r} is masked: a masked commitment is "
                                     "proven in zk mode (ProofOptions.zk)")
                # zk: a chained state (with its link) masked with this proof's h; a
                # public table (no link: the verifier commits it) with h = 0
                want = h if link is not None else 0
                if zk and (com.mask is None or com.mask.h != want):
                    raise ValueError(f"external segment {name!r}: zk mode needs its commitment masked "
                                     f"with h = {want} (" + ("masking.Mask.for_state" if want else
                                                             "a public table: masking.Mask.public")
                                     + "), not " + ("unmasked" if com.mask is None else f"h = {com.mask.h}"))
                if com.lde.shape[0] != n << lb or not np.array_equal(com.trace, trace):
                    raise ValueError(f"external segment {name!r}: the commitment is not of this trace")
                if link is not None and link.z != link_point(com.root):
                    raise ValueError(f"external segment {name!r}: the link is not its root's")
            elif seg.exported:
                mask = None
                if zk:
                    if not isinstance(state_keys.get(name), StateKey):
                        raise ValueError(f"exported segment {name!r} needs its state key in zk mode "
                                         "(state_keys, a masking.StateKey: the successor rebuilds its "
                                         "commitment)")
                    mask = Mask.for_state(state_keys[name], trace.shape[1], h, m_logs[d])
                com = SegmentCommitment.commit(np.ascontiguousarray(trace), lb, mask, cosets[name])
            else:               # its round's shared tree: below
                com = extended(name, trace, d)
            commitments[name] = com
        _commit_round(tr, "main", trees, commitments)

    # 2 -------------------------------------------------------------------
    challenges = np.zeros((0, 4), dtype=np.uint32)
    airs: list[Air] = []            # each domain's AIR, its claimed sum bound
    claims: dict[int, Ext] = {}
    with _span(timings, "2_commit_aux"):
        if st.num_challenges:
            challenges = tr.challenge_ext(st.num_challenges)
        for d, dom in enumerate(st.domains):
            air, n, ch = dom.air, ns[d], st.challenges_of(d, challenges)
            main_cols = None
            if air.aux_columns:      # columns copied out only when read
                main_cols = air.main_columns({seg.name: commitments[st.matrix_name(d, seg.name)].trace
                                              for seg in air.main_segments})
            if air.aux_columns:
                # a shared argument's columns are built on a claim of 0, then
                # closed on the sum its rows give (that sum is the claim)
                builder = air if air.shared_argument is None else air.with_claimed_sum(Ext(0))
                aux = builder.build_aux(main_cols, ch)
                if aux.shape != (n, len(air.aux_columns), 4):
                    raise ValueError(f"build_aux returned {aux.shape}, expected {(n, len(air.aux_columns), 4)}")
                if air.shared_argument is not None:
                    claims[d] = air.claim_shared_sum(main_cols, ch, aux)
                    air = air.with_claimed_sum(claims[d])
                flat = np.ascontiguousarray(aux.reshape(n, -1))
                commitments[st.matrix_name(d, "aux")] = extended(st.matrix_name(d, "aux"), flat, d)
            airs.append(air)
        _commit_round(tr, "aux", trees, commitments)
        for d in st.claiming:
            absorb_claimed_sum(tr, claims[d])

    trace_ldes = [[commitments[m.name] for m in mats if m.is_trace] for mats in layouts]
    if debug:
        for d in range(len(st.domains)):
            check_constraints(airs[d], [c.trace for c in trace_ldes[d]],
                              st.challenges_of(d, challenges))
        if st.claiming and sum((claims[d] for d in st.claiming), Ext(0)) != st.target(challenges):
            raise ConstraintError("the domains' claimed sums do not add up to the statement's target")

    # 3 -------------------------------------------------------------------
    with _span(timings, "3_quotient"):
        alpha = Ext.from_mont(tr.challenge_ext(1)[0])
        qs = [quotient_coefficients(airs[d], trace_ldes[d], st.challenges_of(d, challenges), alpha, lb, zk)
              for d in range(len(st.domains))]
        for name, com in commitments.items():
            if name not in external:
                com.cosets = {}     # read only by the quotient; an earlier proof's left as given

    # 4 -------------------------------------------------------------------
    chunk_coeffs = []       # each quotient matrix's coefficients (rows X^0, X^1, ...)
    schedule = fri_schedule(st, options)
    with _span(timings, "4_commit_quotient"):
        for d, coeffs in enumerate(qs):
            n, k = ns[d], quotient_chunks(airs[d], zk)
            # Q's degree bound, k N (zk mode: its own, from h); debug's
            # check_constraints (step 2) is the check that always runs
            if debug and coeffs[quotient_size(airs[d], h) if zk else k * n:].any():
                raise ConstraintError("the quotient has degree >= its bound: some constraint does not "
                                      "hold on the trace")
            name = st.matrix_name(d, "quotient")
            if zk:
                # masked chunks and R~ (degree < D_F at this height), committed
                # from their coefficients on D in one pass of the fused kernel
                m = 1 << m_logs[d]
                r_degree = fri_degree_bound(schedule) >> (m_logs[st.tall] - m_logs[d])
                chunks = masked_quotient(coeffs, n, k, m, proof_key, name, options.chunk_mask_degree, r_degree)
                salts = leaf_salts(proof_key, name, m)
                degree = max(n + options.chunk_mask_degree, r_degree)   # masked_quotient's rows
                commitments[name] = _Extended(chunks, *commit_quotient(chunks, degree, COSET_SHIFT, salts),
                                              Mask(chunks[:0], salts))
            else:
                chunks = np.empty((n, 4 * k), dtype=np.uint32)    # chunk i's coefficients, side by side
                for i in range(k):
                    chunks[:, 4 * i: 4 * i + 4] = coeffs[i * n: (i + 1) * n]
                # extended from the coefficients: no zero rows transformed
                commitments[name] = _Extended(chunks, *lde_leaves(chunks, lb, COSET_SHIFT, from_coeffs=True))
            chunk_coeffs.append(chunks)
        _commit_round(tr, "quotient", trees, commitments)
        del qs

    # 5 -------------------------------------------------------------------
    with _span(timings, "5_ood"):
        z = Ext.from_mont(tr.challenge_ext(1)[0])
        if z.is_base():
            raise ValueError("out-of-domain point fell in the base field (probability 2^-93)")
        ood_z, ood_next = {}, {}
        links = {name: ext[1] for name, ext in external.items() if ext[1] is not None}
        for d, mats in enumerate(layouts):
            n = ns[d]
            # trace matrices from their values on H (barycentric: no interpolation),
            # the quotient chunks from their coefficients (z^0 .. z^(N-1))
            u = barycentric_weights(z, n)
            u_next = np.roll(u, 1, axis=0)          # the weights at w z: u_next[i] = u[i - 1]
            z_next = z * F.two_adic_generator(st.log_lengths[d])
            for m in mats:
                com = commitments[m.name]
                if m.at_next:
                    ood_z[m.name], ood_next[m.name] = com.values_at(z, u, z_next, u_next, m.next_columns)
                elif m.is_trace:
                    ood_z[m.name], _ = com.values_at(z, u)
                else:
                    ood_z[m.name] = E.sum_rows(chunk_coeffs[d], zpowers(z, chunk_coeffs[d].shape[0]))
            absorb_ood(tr, mats, ood_z, ood_next)
            for m in mats:
                if m.exported:
                    links[m.name] = commitments[m.name].link()
                    tr.absorb_array(b"link", F.encode(_ext_rows(links[m.name].values)))

    # 6 -------------------------------------------------------------------
    with _span(timings, "6_deep"):
        groups = deep_coefficients(tr, layouts, links, zk)
        fs = []
        for d, mats in enumerate(layouts):
            w_n = F.two_adic_generator(st.log_lengths[d])
            fs.append(deep_composition(mats, commitments, ood_z, ood_next, z, z * w_n, groups[d],
                                       {m.name: links[m.name] for m in mats if m.name in links},
                                       m_logs[d]))

    # 7 -------------------------------------------------------------------
    tall = st.tall
    with _span(timings, "7_fri_commit"):
        # the tall domain's f is layer 0; every other joins at its height
        inputs = [(m_logs[d], ntt.bit_reverse_rows(fs[d])) for d in range(len(fs)) if d != tall]
        fri_com = fri.commit(ntt.bit_reverse_rows(fs[tall]), ns[tall], options, m_logs[tall],
                             COSET_SHIFT, tr, inputs=inputs, schedule=schedule,
                             salts=(lambda layer, leaves: fri_layer_salts(proof_key, layer, leaves))
                             if zk else None)
        del fs, inputs

    # 8 -------------------------------------------------------------------
    with _span(timings, "8_grind"):
        nonce = tr.grind(options.grinding_bits)

    # 9 -------------------------------------------------------------------
    with _span(timings, "9_queries"):
        # positions on the tall domain (bit-reversed); domain d, 2^s_d times
        # shorter, is opened at natural row rev(j >> s_d) of its LDE
        positions = np.array(tr.challenge_indices(options.num_queries, 1 << m_logs[tall]), dtype=np.int64)
        rows, row_salts, row_proofs = open_rows(layouts, trees, commitments, positions, m_logs, tall)
        fri_open = fri.open_layers(fri_com, positions)
        fri_salts = fri.opened_salts(fri_com, positions) if zk else []

    all_mats = [m for mats in layouts for m in mats]
    proof = Proof(
        options=options, log_lengths=st.log_lengths,
        roots={t.name: commitments[t.matrices[0][1]].root for t in trees if not t.external},
        ood_z={k_: F.decode(v) for k_, v in ood_z.items()},
        ood_next={k_: F.decode(v) for k_, v in ood_next.items()},
        fri_roots=fri_com.roots, fri_final=F.decode(fri_com.final_coeffs), pow_nonce=nonce,
        rows=rows, row_proofs=row_proofs, row_salts=row_salts, fri_salts=fri_salts,
        fri_leaves=[leaves for leaves, _ in fri_open], fri_proofs=[p for _, p in fri_open],
        link_values={m.name: _ext_rows(links[m.name].values) for m in all_mats if m.exported},
        claimed_sums={st.domains[d].name: np.array(claims[d].c, dtype=np.uint32) for d in st.claiming})
    return ProveResult(proof, commitments, {m.name: links[m.name] for m in all_mats if m.exported},
                       timings)


# ----------------------------------------------------------------- steps --

def _main_traces(st: Statement, traces: dict[str, np.ndarray]) -> list[tuple[int, object, str, np.ndarray]]:
    """Every main segment's trace in statement order, as (domain, segment,
    matrix name, trace), each checked to be its segment's (N_d, w) uint32
    matrix (ValueError naming the segment otherwise)."""
    out = []
    for d, dom in enumerate(st.domains):
        n = dom.air.trace_length
        for seg in dom.air.main_segments:
            name = st.matrix_name(d, seg.name)
            trace = traces.get(name)
            if trace is None:
                raise ValueError(f"no trace for segment {name!r}")
            if not isinstance(trace, np.ndarray) or trace.shape != (n, len(seg.columns)) \
                    or trace.dtype != np.uint32:
                raise ValueError(f"segment {name!r} must be a ({n}, {len(seg.columns)}) uint32 "
                                 f"matrix, got {getattr(trace, 'dtype', type(trace).__name__)} "
                                 f"{getattr(trace, 'shape', '')}")
            out.append((d, seg, name, trace))
    return out


def open_rows(layouts, trees, commitments: dict, positions: np.ndarray, m_logs: list[int],
              tall: int) -> tuple[dict, dict, dict]:
    """Step 9's openings at the tall domain's `positions`: (rows, salts,
    proofs).  rows: each matrix's opened rows, (k_d, w) canonical, in
    position order (leaf j >> s_d of its tree, natural row rev(j >> s_d));
    salts: the same leaves' salts, (k_d, 16), for each matrix committed
    with salted leaves (none for an unsalted one); proofs: each tree's
    batch Merkle proof of its tallest matrices' positions."""
    rows, salts, proofs = {}, {}, {}
    for d, mats in enumerate(layouts):
        pos = fri.input_positions(positions, m_logs[tall], m_logs[d])
        rows_idx = fri.bit_reverse_ints(pos, m_logs[d])
        for m in mats:
            com = commitments[m.name]
            rows[m.name] = F.decode(np.ascontiguousarray(com.lde[rows_idx]))
            if com.salts is not None:
                salts[m.name] = np.ascontiguousarray(com.salts[pos])
    siblings = {}      # by tree height: the same in every tree of that height
    for t in trees:
        height = max(m_logs[d] for d, _ in t.matrices)
        if height not in siblings:
            siblings[height] = sibling_positions(1 << height, fri.input_positions(positions, m_logs[tall], height))
        proofs[t.name] = commitments[t.matrices[0][1]].tree.nodes[siblings[height]]
    return rows, salts, proofs


def _masked_lde(mask: Mask, trace: np.ndarray, log_blowup: int, cosets: Sequence[tuple[int, int]]):
    """(lde, leaves, values) of the masked commitment of `trace`
    (Mask.commit_lde), with `values` its values on each small coset
    ``(log_m, shift)``, a new ``(2^log_m, width)`` array each, folded by
    the same pass."""
    values = {c: np.empty((1 << c[0], trace.shape[1]), dtype=np.uint32) for c in cosets}
    lde, leaves = mask.commit_lde(trace, log_blowup, COSET_SHIFT, [(*c, v) for c, v in values.items()])
    return lde, leaves, values


@dataclass
class _Extended:
    """A matrix of a shared tree before the tree is built: its trace (or
    quotient chunks), LDE, row digests in bit-reversed order, and its mask
    and small cosets' values (zk mode)."""

    trace: np.ndarray
    lde: np.ndarray
    leaves: np.ndarray
    mask: Mask | None = None
    cosets: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)


def _commit_round(tr: Transcript, round_: str, trees, commitments: dict) -> None:
    """Absorb the roots of a round's trees in order, building each shared
    tree from its matrices' row digests; each of its matrices' commitments
    then holds the shared tree."""
    for t in trees:
        if t.round != round_:
            continue
        names = [name for _, name in t.matrices]
        parts = [commitments[name] for name in names]
        if all(isinstance(p, _Extended) for p in parts):
            tree = MerkleTree.shared([p.leaves for p in parts])
            for name, p in zip(names, parts):
                commitments[name] = SegmentCommitment(p.trace, p.lde, tree, p.mask, p.cosets)
        tr.absorb(b"root", commitments[names[0]].root)


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


def quotient_coefficients(air: Air, coms: list[SegmentCommitment], challenges: np.ndarray, alpha: Ext,
                          log_blowup: int, zk: bool = False) -> np.ndarray:
    """Q = sum_i alpha^i C_i / Z_i as coefficients, (rows, 4) Montgomery,
    rows X^0, X^1, ... (at least quotient_chunks(air, zk) N of them, zero
    above Q's degree), from the trace matrices' commitments `coms` (main
    segments in order, then the auxiliary one).

    When the LDE holds the quotient's domain (transparent mode; zk mode at
    degree <= 2 or blowup >= 4): quotient_on_lde there, then its inverse
    transform.  Otherwise (zk mode at degree 3 and blowup 2, docs/ZK.md 5.3)
    Q has degree 2N + 3h - 2 >= M, and two evaluation domains of the same
    program give it: on D its values (quotient_on_lde on every row) give
    R = Q mod Z_D, Z_D = X^M - g^M (one inverse transform of size M); the
    rest, Q = R + Z_D Q_top with deg Q_top < quotient_size - M (~3h), comes
    from the small coset D'' = TOP_SHIFT <w_m>, m the power of two at least
    that (_quotient_top).  Nothing of D'' is hashed or committed."""
    n = air.trace_length
    qlb = quotient_log_blowup(air, zk)
    ldes = [c.lde for c in coms]
    if qlb <= log_blowup:
        q = quotient_on_lde(air, ldes, challenges, alpha, log_blowup, qlb)
        return ntt.coset_intt(q, COSET_SHIFT, out=q)
    m = n << log_blowup
    log_top = _log_top(air, max(0 if c.mask is None else c.mask.h for c in coms), log_blowup)
    q = quotient_on_lde(air, ldes, challenges, alpha, log_blowup, log_blowup)
    r = ntt.coset_intt(q, COSET_SHIFT, out=q)               # Q mod Z_D: M coefficients
    top = _quotient_top(air, coms, challenges, alpha, r, log_blowup, log_top)
    out = np.zeros((max(quotient_chunks(air, zk) * n, m + top.shape[0]), 4), dtype=np.uint32)
    out[:m] = r                                             # Q = R + (X^M - g^M) Q_top
    gm = F.encode_int(pow(COSET_SHIFT, m, F.P))
    F.sub(out[:top.shape[0]], F.mul_scalar(top, gm), out=out[:top.shape[0]])
    F.add(out[m: m + top.shape[0]], top, out=out[m: m + top.shape[0]])
    return out


#: D'' = TOP_SHIFT <w_m>, where zk mode's quotient is evaluated beside D
#: (quotient_coefficients).  g^2: every point of g^2 <w_(2^k)> has x^N != 1
#: and x^M != g^M for all powers of two N, M (g generates the group, whose
#: order 15 * 2^27 no power of two is a multiple of), so D'' and w_N D''
#: (where the next rows are read) miss H, D and every divisor's zeros
#: (on H), whatever the sizes.  A constant: nothing of a run enters it.
TOP_SHIFT = COSET_SHIFT * COSET_SHIFT % F.P


def _log_top(air: Air, h: int, log_blowup: int) -> int:
    """log2 of m'' = |D''|, the power of two at least quotient_size - M."""
    return (max(quotient_size(air, h) - (air.trace_length << log_blowup), 1) - 1).bit_length()


def top_cosets(air: Air, h: int, log_blowup: int, at_next: bool) -> list[tuple[int, int]]:
    """The small cosets ``(log_m, shift)`` zk mode's quotient reads a
    committed matrix of `air` on (masks of degree < h), which its
    commitment evaluates it on from its LDE (SegmentCommitment.commit):
    D'' and, for a matrix read on the next row (`at_next`), w_N D''
    (_top_inputs); none where D holds the quotient's domain."""
    if quotient_log_blowup(air, True) <= log_blowup:
        return []
    log_top = _log_top(air, h, log_blowup)
    next_shift = TOP_SHIFT * F.two_adic_generator(air.trace_length.bit_length() - 1) % F.P
    return [(log_top, TOP_SHIFT)] + ([(log_top, next_shift)] if at_next else [])


def _quotient_top(air: Air, coms: list[SegmentCommitment], challenges: np.ndarray, alpha: Ext,
                  r: np.ndarray, log_blowup: int, log_top: int) -> np.ndarray:
    """Q_top = (Q - R) / Z_D as coefficients, (m'', 4) Montgomery, m'' =
    2^log_top: the program quotient_on_lde runs on D (the same plan) run
    on D'' = TOP_SHIFT <w_m''> gives Q there, R's M coefficients `r`
    folded onto D'' give R there (ntt.coset_values), Z_D = x^M - g^M is a
    constant there when m'' | M (pointwise in general), and one inverse
    transform of size m'' gives Q_top's coefficients (deg Q_top < m'')."""
    n, mt = air.trace_length, 1 << log_top
    plan = _quotient_plan(air, [c.lde for c in coms], log_blowup)
    divisors, inv_zd = _divisors_on_top(n, n << log_blowup, log_top, plan.rows)
    q = _quotient_at(plan, _bind(air, plan, challenges, alpha), _top_inputs(air, plan, coms, log_top),
                     2 * mt, mt, divisors)
    F.sub(q, ntt.coset_values(r, log_top, TOP_SHIFT), out=q)
    E.mul_base(q, inv_zd, out=q)
    return ntt.coset_intt(q, TOP_SHIFT, out=q)


def quotient_on_lde(air: Air, ldes: list[np.ndarray], challenges: np.ndarray, alpha: Ext,
                    log_blowup: int, qlb: int | None = None) -> np.ndarray:
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
    boundary row's into its own.  `qlb` (default: transparent mode's e)
    is e; quotient_coefficients passes zk mode's."""
    n = air.trace_length
    if qlb is None:
        qlb = quotient_log_blowup(air)
    if qlb > log_blowup:
        raise ValueError(f"constraints of degree {air.max_degree} need blowup >= 2^{qlb}")
    skip = 1 << (log_blowup - qlb)       # LDE rows per quotient-domain row
    step = 1 << qlb                      # the next trace row, in quotient-domain rows
    plan = _quotient_plan(air, ldes, qlb)
    return _quotient_at(plan, _bind(air, plan, challenges, alpha),
                        _lde_inputs(air, plan, ldes, log_blowup, skip), n << qlb, step,
                        _divisors_on_lde(n, qlb, plan.rows))


def _bind(air: Air, plan: "_QuotientPlan", challenges: np.ndarray, alpha: Ext) -> Program:
    """The plan's program with this proof's constants and weights (powers
    of alpha: transitions, then boundaries)."""
    return plan.program.bind(air.constants(challenges), zpowers(alpha, plan.program.n_outputs))


def _lde_inputs(air: Air, plan: "_QuotientPlan", ldes: list[np.ndarray], log_blowup: int, skip: int):
    """The program's inputs on the LDE, as (base, ext, keep): every column
    of the LDE matrices where it lies, read every skip-th row (the
    evaluator reads them strided and wraps next-row loads), the periodic
    columns likewise; base and ext are lists of (addresses, strides) in
    the plan's input order."""
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
    return base, ext, keep


def _top_inputs(air: Air, plan: "_QuotientPlan", coms: list[SegmentCommitment], log_top: int):
    """The program's inputs on D'' (_lde_inputs' form): each trace matrix
    as a (2m'', w) matrix, its values on D'' in rows 0 .. m''-1 and, for a
    matrix some constraint reads on the next row, on w_N D'' in rows m'' ..
    2m''-1, so that the evaluator run on 2m'' rows with step m'' reads row
    i's next row at w_N x_i for i < m'' (the rows from m'' on are scratch:
    their results are dropped).  Each from its commitment
    (SegmentCommitment.coset_values: folded by its LDE, or from its
    coefficients); the periodic columns from theirs."""
    n, mt = air.trace_length, 1 << log_top
    next_shift = TOP_SHIFT * F.two_adic_generator(n.bit_length() - 1) % F.P
    reads_next = air.next_row_columns
    base, ext, keep, start = [], [], [], 0
    for i, com in enumerate(coms):
        is_aux = i == len(air.main_segments)
        width = com.trace.shape[1] // 4 if is_aux else com.trace.shape[1]
        mat = np.zeros((2 * mt, com.trace.shape[1]), dtype=np.uint32)
        shifts = [TOP_SHIFT] + ([next_shift] if any(c in reads_next for c in range(start, start + width)) else [])
        com.coset_values([(log_top, s) for s in shifts], [mat[:mt], mat[mt:]][:len(shifts)])
        start += width
        keep.append(mat)
        (ext if is_aux else base).append(matrix_columns(mat, 4 if is_aux else 1))
    if air.periodic_columns:
        mat = np.zeros((2 * mt, len(plan.periodic)), dtype=np.uint32)
        ntt.coset_values(_periodic_coefficients(air, plan.periodic), log_top, TOP_SHIFT, out=mat[:mt])
        keep.append(mat)
        base.append(matrix_columns(mat))
    return base, ext, keep


def _periodic_coefficients(air: Air, names: tuple[str, ...]) -> np.ndarray:
    """(N, p) Montgomery: the periodic columns' coefficients, in `names`'
    order.  A column of period L is R(X^(N/L)), R interpolating its L
    values on <w_L>, so R's coefficients lie every N/L-th row."""
    n = air.trace_length
    out = np.zeros((n, len(names)), dtype=np.uint32)
    for j, name in enumerate(names):
        values = F.encode(np.asarray(air.periodic_columns[name], dtype=np.int64))
        out[::n // len(values), j] = ntt.intt(values)
    return out


def _quotient_at(plan: "_QuotientPlan", program: Program, inputs, rows: int, step: int, divisors) -> np.ndarray:
    """The program run on `rows` rows of `inputs` (_lde_inputs' form,
    next rows `step` rows on), its accumulators divided by `divisors`
    (_divisors_on_lde's form) and summed: the quotient's values at the
    divisors' points, the first len(divisors) rows."""
    base, ext, keep = inputs
    join = lambda parts, i: np.concatenate([p[i] for p in parts]) if parts \
        else np.zeros(0, dtype=np.uintp)   # noqa: E731
    accs = program.run_at(join(base, 0), join(base, 1), join(ext, 0), join(ext, 1), rows, step, keep)
    transition, inv_zh, boundary = divisors
    accs = [a[:transition.shape[0]] for a in accs]
    # the accumulators are this call's own: each divided in place and summed
    # into the first, which is returned (no array of quotient size more)
    q = E.mul_base(accs[0], transition, out=accs[0])
    if plan.every_row:
        F.add(q, E.mul_base(accs[plan.every], inv_zh, out=accs[plan.every]), out=q)
    for inv, num in zip(boundary, accs[1:plan.every]):
        F.add(q, E.mul_base(num, inv, out=num), out=q)
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
    # a run with a kernel of its own (the Poseidon2 block) is that kernel's
    outputs = [Output(every if c.every_row else 0, c.expr, Ext(0), c.native) for c in cons]
    outputs += [Output(1 + rows.index(b.row % n), _boundary_expr(air, b), Ext(0)) for b in bcons]
    # compiled with placeholder values: bind() gives each proof its own
    program = Program(outputs, _no_constants, base_inputs, ext_inputs, every + 1)
    return _QuotientPlan(program, tuple(rows), every, any(c.every_row for c in cons), periodic)


def _no_constants(key) -> Ext:
    """A placeholder resolver for compiling a shape (every value zero)."""
    return Ext(0)


@functools.lru_cache(maxsize=4)
def _divisors_on_lde(n: int, log_blowup: int, rows: tuple[int, ...]):
    """The quotient's divisors on D, inverted (_divisors_at), which depend
    on the shape alone (so a chain of proofs of one shape computes them
    once; read-only)."""
    m = n << log_blowup
    x = _coset_points(m.bit_length() - 1)
    # x^N takes 2^log_blowup values on D, periodically
    step = 1 << log_blowup
    xn = F.power(np.ascontiguousarray(x[:step]), n)
    inv_zh = np.tile(F.inv(F.sub(xn, np.full(step, F.ONE, dtype=np.uint32))), n)
    return _divisors_at(x, inv_zh, n, rows)


@functools.lru_cache(maxsize=4)
def _divisors_on_top(n: int, m: int, log_top: int, rows: tuple[int, ...]):
    """The quotient's divisors on D'' = TOP_SHIFT <w_m''> (_divisors_at),
    and 1 / Z_D = 1 / (x^M - g^M) there (read-only, once per shape)."""
    x = ntt.domain(log_top, TOP_SHIFT)
    one = np.full(x.size, F.ONE, dtype=np.uint32)
    inv_zd = F.inv(F.sub(F.power(x, m), np.full(x.size, F.encode_int(pow(COSET_SHIFT, m, F.P)),
                                                  dtype=np.uint32)))
    inv_zd.flags.writeable = False
    return _divisors_at(x, F.inv(F.sub(F.power(x, n), one)), n, rows), inv_zd


def _divisors_at(x: np.ndarray, inv_zh: np.ndarray, n: int, rows: tuple[int, ...]):
    """The quotient's divisors at the points `x`, inverted, given 1 / (x^N - 1)
    there (read-only): (x - w^(N-1)) / (x^N - 1) for the transitions,
    1 / (x^N - 1) for the every-row constraints, and 1 / (x - w^row) for
    each boundary row."""
    w_n = F.two_adic_generator(n.bit_length() - 1)
    last = F.encode_int(pow(w_n, n - 1, F.P))
    transition = F.mul(F.sub(x, np.full(x.size, last, dtype=np.uint32)), inv_zh)
    boundary = [F.inv(F.sub(x, np.full(x.size, F.encode_int(pow(w_n, row, F.P)), dtype=np.uint32)))
                for row in rows]
    for a in (transition, inv_zh, *boundary):
        a.flags.writeable = False
    return transition, inv_zh, boundary


def deep_composition(mats, commitments, ood_z, ood_next, z: Ext, z_next: Ext, groups,
                     links: dict[str, Link], log_m: int) -> np.ndarray:
    """f(x) on D, natural order, (M, 4): every committed column's DEEP
    quotients, each with its own coefficient (`groups`, from
    domain.deep_coefficients, which fixes the order the verifier repeats).
    A trace matrix's LDE is read once for both its points (combine_rows2,
    its second sum over the matrix's next columns alone)."""
    x = _coset_points(log_m)
    rows = x.size
    groups = dict(groups)
    coeffs_z, coeffs_next = dict(groups["z"]), dict(groups["next"])
    next_columns = {m.name: np.array(m.next_columns, dtype=np.int64) for m in mats}
    values = {"z": ood_z, "next": ood_next}
    # every intermediate is the thread's scratch (see _scratch); only f is new
    nums = {"z": _scratch("deep_z", (rows, 4)), "next": _scratch("deep_next", (rows, 4))}
    parts = {"z": _scratch("deep_a", (rows, 4)), "next": _scratch("deep_b", (rows, 4))}  # a matrix's sums
    summed: set[str] = set()    # the points whose total holds a matrix's sum already

    def sum_into(point: str) -> np.ndarray:
        """Where a matrix's sum for `point` is written: the first straight
        into the point's total (which then needs no zeroing pass), the
        others beside it, to be added (add_sum)."""
        return parts[point] if point in summed else nums[point]

    def add_sum(point: str) -> None:
        """The matrix's sum for `point` added to its total (unless written there)."""
        if point in summed:
            F.add(nums[point], parts[point], out=nums[point])
        summed.add(point)

    for name in coeffs_z:
        lde = commitments[name].lde
        if name in coeffs_next:
            E.combine_rows2(lde, coeffs_z[name], coeffs_next[name], out_a=sum_into("z"),
                            out_b=sum_into("next"), columns_b=next_columns[name])
            add_sum("next")
        else:
            E.combine_rows(lde, coeffs_z[name], out=sum_into("z"))
        add_sum("z")
    for point in nums.keys() - summed:      # no matrix's sum: zero
        nums[point].fill(0)
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

"""The STARK verifier: verify(air, proof, external) raises VerificationError
unless the proof shows the AIR's constraints hold (soundness error at most
2^-security bits, docs/SECURITY.md); verify(statement, ...) likewise for a
statement of several domains (statement.py): the claimed sums against the
statement's target, each domain's identity at the one z, each domain's
opened rows and DEEP function at its positions, one FRI with the shorter
domains' functions joining at their heights.

It replays the prover's transcript from the proof's own messages, checks the
constraints at the out-of-domain point z (the compiled constraint program on
the claimed values; the plain-Python walk, ext_scalar, is the reference it is
tested against), then checks the openings at the query positions against
every commitment and runs FRI on the DEEP composition they imply.  It shares
with the prover only the definitions both must agree on (domain.py,
proof.py, the transcript) and the constraint evaluator.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import extension as E
from . import field as F
from . import fri
from .air import Air, Frame
from .domain import (COSET_SHIFT, Link, absorb_claimed_sum, absorb_header, absorb_ood,
                     deep_coefficients, link_point, periodic_value_at, zpowers)
from .expr import PERIODIC, TRACE, evaluate
from .constraint_program import Output, Program
from .ext_scalar import W, Ext, ScalarAlgebra
from .merkle import SALT_BYTES, hash_rows
from .merkle_batch import verify_shared
from .params import DEFAULT_MIN_SECURITY, ParameterError
from .proof import (Proof, check_zk_degrees, fri_degree_bound, fri_schedule, mask_degree, quotient_chunks,
                    quotient_log_blowup, statement_layouts, statement_trees, zk_degree_growth)
from .shape_cache import ShapeCache
from .statement import Statement, as_statement
from .transcript import Transcript

X = Ext(0, 1, 0, 0)


class VerificationError(ValueError):
    """The proof does not verify; the message says which check failed."""


@dataclass(frozen=True)
class Verified:
    """What an accepted proof establishes for those who build on it."""

    security_bits: int
    roots: dict[str, bytes]      # every main segment's root
    links: dict[str, Link]       # exported segments' links, for a later proof reusing them


def verify(subject: Air | Statement, proof: Proof,
           external: dict[str, tuple[bytes, Link | None]] | None = None,
           min_security: int = DEFAULT_MIN_SECURITY) -> Verified:
    """Verify `proof` for `subject`, an AIR or a statement of several
    domains (statement.py).  `external` gives each external segment (by its
    matrix name: ``segment``, or ``domain.segment`` in a statement of
    several domains) its root and its Link, as the proof that committed it
    exported it (None only for a root the verifier computed itself from a
    known table)."""
    st = as_statement(subject)
    st.validate()
    external = external or {}
    opts = proof.options
    lengths = [dom.air.trace_length for dom in st.domains]
    tall = st.tall
    zk = opts.zk
    if tuple(proof.log_lengths) != st.log_lengths:
        raise VerificationError("proof is for another trace length" if st.single else
                                f"proof is for domain heights 2^{list(proof.log_lengths)}, the "
                                f"statement's are 2^{list(st.log_lengths)}")
    try:
        opts.validate()
        schedule = fri_schedule(st, opts)
        d_f = None
        # zk mode: FRI tests degree < D_F (above N), which is all it enforces
        # of the committed polynomials, so the identity at z has degree d D_F
        extra = 0
        if zk:
            h = mask_degree(st, opts)
            for dom in st.domains:
                check_zk_degrees(dom.air, opts, h)
            d_f = fri_degree_bound(schedule)
            extra = zk_degree_growth(st, schedule)
        if st.single:
            air0 = st.domains[0].air
            bits = opts.check_security(lengths[0], lambda n: air0.algebraic_degree(n) + extra, min_security,
                                       d_f)
        else:
            degree = st.algebraic_degree(opts.log_blowup) + extra
            bits = opts.check_security(lengths[tall], lambda _n: degree, min_security, d_f)
    except (ParameterError, ValueError) as exc:
        raise VerificationError(str(exc)) from None
    for dom in st.domains:
        if not zk and opts.log_blowup < quotient_log_blowup(dom.air):
            raise VerificationError(f"blowup {1 << opts.log_blowup} is below the quotient's degree bound "
                                    f"({1 << quotient_log_blowup(dom.air)} N)")
    layouts = statement_layouts(st, zk)
    trees = statement_trees(st)
    all_mats = [m for mats in layouts for m in mats]
    lb = opts.log_blowup
    log_ms = [log_n + lb for log_n in st.log_lengths]

    # --- the transcript, from the proof's messages ---------------------------
    tr = Transcript(b"zksidecar-stark")
    links = {}
    for d, dom in enumerate(st.domains):
        for seg in dom.air.main_segments:
            if not seg.external:
                continue
            name = st.matrix_name(d, seg.name)
            if name not in external:
                raise VerificationError(f"external segment {name!r} needs its root")
            link = links[name] = external[name][1]
            if link is not None:
                if link.z != link_point(external[name][0]):
                    raise VerificationError(f"link for {name!r} is not at the point its root selects")
                if link.z.is_base():  # x - z would vanish on D; an honest link's z never is
                    raise VerificationError(f"link for {name!r} has a point in the base field")
                if len(link.values) != len(seg.columns):
                    raise VerificationError(f"link for {name!r} has {len(link.values)} values "
                                            f"for {len(seg.columns)} columns")
    absorb_header(tr, st, opts, links)
    tree_roots = {t.name: external[t.name][0] if t.external else proof.roots[t.name] for t in trees}
    roots = {name: tree_roots[t.name] for t in trees for _, name in t.matrices}   # each matrix's tree's

    def absorb_round(round_: str) -> None:
        for t in trees:
            if t.round == round_:
                tr.absorb(b"root", tree_roots[t.name])

    absorb_round("main")
    challenges = tr.challenge_ext(st.num_challenges) if st.num_challenges else np.zeros((0, 4), np.uint32)
    absorb_round("aux")
    # the claimed sums: bound before alpha, checked against the target at once
    airs = [dom.air for dom in st.domains]
    claimed = Ext(0)
    for d in st.claiming:
        t = Ext(*(int(c) for c in proof.claimed_sums[st.domains[d].name]))
        absorb_claimed_sum(tr, t)
        airs[d] = airs[d].with_claimed_sum(t)
        claimed = claimed + t
    if st.claiming and claimed != st.target(challenges):
        raise VerificationError("the domains' claimed sums do not add up to the statement's target")
    alpha = Ext.from_mont(tr.challenge_ext(1)[0])
    absorb_round("quotient")
    z = Ext.from_mont(tr.challenge_ext(1)[0])
    if z.is_base():
        raise VerificationError("out-of-domain point fell in the base field")
    check_ood_shapes(all_mats, proof)
    ood_z = {m.name: F.encode(proof.ood_z[m.name]) for m in all_mats}
    ood_next = {m.name: F.encode(proof.ood_next[m.name]) for m in all_mats if m.at_next}
    for mats in layouts:
        absorb_ood(tr, mats, ood_z, ood_next)
        for m in mats:
            if m.exported:
                point = link_point(roots[m.name])
                if point.is_base():
                    raise VerificationError(f"{m.name}: its root selects a link point in the base field")
                links[m.name] = Link(point, [Ext(*(int(c) for c in row)) for row in proof.link_values[m.name]])
                tr.absorb_array(b"link", F.encode(proof.link_values[m.name]))

    # --- constraints at z, domain by domain ----------------------------------
    for d, mats in enumerate(layouts):
        try:
            check_ood(airs[d], mats, proof, st.challenges_of(d, challenges), alpha, z)
        except VerificationError as exc:
            if st.single:
                raise
            raise VerificationError(f"domain {st.domains[d].name!r}: {exc}") from None

    live_links = {k: v for k, v in links.items() if v is not None}
    deep_groups = deep_coefficients(tr, layouts, live_links, zk)
    final = F.encode(proof.fri_final)
    betas, gammas = fri.draw_challenges(tr, proof.fri_roots, final, schedule)
    if not tr.check_grind(opts.grinding_bits, proof.pow_nonce):
        raise VerificationError("proof of work is invalid")
    positions = np.array(tr.challenge_indices(opts.num_queries, 1 << log_ms[tall]), dtype=np.int64)

    # --- openings, then each domain's DEEP function at its positions --------
    # domain d's positions: the tall positions >> s_d (sorted, distinct), its
    # rows in that order (leaf j >> s_d of their tree, natural row rev(j >> s_d))
    pos = [fri.input_positions(positions, log_ms[tall], log_m) for log_m in log_ms]
    # zk mode salts every tree, transparent mode none
    unsalted = [m.name for m in all_mats if m.name not in proof.row_salts]
    if zk and (unsalted or len(proof.fri_salts) != len(proof.fri_roots)):
        raise VerificationError("a zk proof's openings are salted: no salts for "
                                + (", ".join(unsalted) if unsalted else "some FRI layer"))
    if not zk and (proof.row_salts or proof.fri_salts):
        raise VerificationError("a transparent proof has no salted openings")
    opened = check_openings(layouts, trees, tree_roots, positions, log_ms, tall, proof.rows,
                            proof.row_salts, proof.row_proofs)
    fs = []
    for d, mats in enumerate(layouts):
        w_n = F.two_adic_generator(st.log_lengths[d])
        points = {"z": z, "next": z * w_n}
        points.update({name: link.z for name, link in live_links.items()})
        fs.append(_deep_at(deep_groups[d], opened, fri.query_points(log_ms[d], COSET_SHIFT, pos[d]),
                           points, ood_z, ood_next, live_links, {m.name: list(m.next_columns) for m in mats}))

    # --- FRI: the tall domain's f is layer 0, the others join at their height --
    inputs = [(log_ms[d], fs[d]) for d in range(len(fs)) if d != tall]
    try:
        fri.verify(proof.fri_roots, final, list(zip(proof.fri_leaves, proof.fri_proofs)),
                   positions, fs[tall], lengths[tall], opts, log_ms[tall], COSET_SHIFT, betas,
                   inputs=inputs, gammas=gammas, schedule=schedule,
                   salts=proof.fri_salts if zk else None)
    except fri.FriError as exc:
        raise VerificationError(f"FRI: {exc}") from None
    main_names = [st.matrix_name(d, seg.name) for d, dom in enumerate(st.domains)
                  for seg in dom.air.main_segments]
    return Verified(bits, {name: roots[name] for name in main_names},
                    {m.name: links[m.name] for m in all_mats if m.exported})


def check_ood_shapes(mats, proof: Proof) -> None:
    """Every matrix's values at z, one per column, and at w z one per
    column read on the next row (Matrix.next_columns), and none for a
    matrix the layout has not (at z) or does not read on the next row: VerificationError naming the first that is not so (a decoded
    proof is already of this shape; a Proof built in memory may not be)."""
    stray = sorted(set(proof.ood_z) - {m.name for m in mats})
    if stray:
        raise VerificationError(f"values at z for {', '.join(stray)}, which the layout has no matrix of")
    stray = sorted(set(proof.ood_next) - {m.name for m in mats if m.at_next})
    if stray:
        raise VerificationError(f"values at w*z for {', '.join(stray)}, which no constraint reads "
                                "on the next row")
    for m in mats:
        for point, values, count in (("z", proof.ood_z, m.width), ("w*z", proof.ood_next, len(m.next_columns))):
            if point == "w*z" and not count:
                continue
            got = values.get(m.name)
            if got is None or np.shape(got) != (count, 4):
                what = "no values" if got is None else f"values of shape {np.shape(got)}"
                raise VerificationError(f"{m.name}: {what} at {point}; the layout opens {count} columns "
                                        f"there, ({count}, 4)")


def check_openings(layouts, trees, tree_roots: dict, positions: np.ndarray, log_ms: list[int], tall: int,
                   rows: dict, salts: dict, row_proofs: dict) -> dict:
    """The opened rows (each matrix's (k_d, w) canonical, in position order)
    against every tree: each row's leaf digest (salted with its salt where
    `salts` has the matrix: (k_d, 16) uint8), then one batch Merkle walk per
    tree (merkle_batch.verify_shared, in C; a shared tree's shorter
    matrices hashed in at their height).  Returns the rows in Montgomery
    form by matrix name; VerificationError naming the matrix or tree that
    fails."""
    stray = sorted(set(salts) - {m.name for mats in layouts for m in mats})
    if stray:
        raise VerificationError(f"salts for matrices the statement does not have: {', '.join(stray)}")
    opened, digests = {}, {}
    for d, mats in enumerate(layouts):
        k = fri.input_positions(positions, log_ms[tall], log_ms[d]).size
        for m in mats:
            got = rows[m.name]
            if got.shape != (k, m.width):
                raise VerificationError(f"{m.name}: {got.shape[0]} opened rows, expected {k}")
            opened[m.name] = F.encode(got)
            salt = salts.get(m.name)
            if salt is not None and (salt.dtype != np.uint8 or salt.shape != (k, SALT_BYTES)):
                raise VerificationError(f"{m.name}: salts {salt.dtype} {salt.shape} for {k} opened rows, "
                                        f"expected ({k}, {SALT_BYTES}) bytes")
            digests[m.name] = hash_rows(opened[m.name], None if salt is None else np.ascontiguousarray(salt))
    for t in trees:
        height = max(log_ms[d] for d, _ in t.matrices)
        if not verify_shared(tree_roots[t.name], height, fri.input_positions(positions, log_ms[tall], height),
                             [(height - log_ms[d], digests[name]) for d, name in t.matrices],
                             row_proofs[t.name]):
            what = t.name if len(t.matrices) == 1 else \
                f"{t.name} tree ({', '.join(name for _, name in t.matrices)})"
            raise VerificationError(f"{what}: opened rows do not match the commitment")
    return opened


def _deep_at(groups, opened: dict, x: np.ndarray, points: dict, ood_z: dict,
             ood_next: dict, live_links: dict, next_columns: dict) -> np.ndarray:
    """A domain's DEEP function at its query points x ((k,) Montgomery),
    from its opened rows (row i at point i): (k, 4) Montgomery.  At w z
    a matrix's terms are its `next_columns`' (by matrix name)."""
    k = x.size
    f = np.zeros((k, 4), dtype=np.uint32)
    for point, terms in groups:
        num = np.zeros((k, 4), dtype=np.uint32)
        products = []       # coefficient * claimed value, every column of this point
        for name, coeffs in terms:
            rows = opened[name] if point != "next" else np.ascontiguousarray(opened[name][:, next_columns[name]])
            num = F.add(num, E.combine_rows(rows, coeffs))
            if point == "z":
                values = ood_z[name]
            elif point == "next":
                values = ood_next[name]
            else:
                values = np.stack([v.to_mont() for v in live_links[point].values])
            products.append(E.mul(np.ascontiguousarray(coeffs), np.ascontiguousarray(values)))
        if not products:
            continue
        # their sum, word by word (Montgomery form is linear; below 2^64)
        const = (np.concatenate(products).sum(axis=0, dtype=np.uint64) % F.P).astype(np.uint32)
        num = F.sub(num, np.ascontiguousarray(np.broadcast_to(const, (k, 4))))
        denom = F.sub(E.from_base(x), _bcast(points[point], k))
        f = F.add(f, E.mul(num, E.inv(denom)))
    return f


def _bcast(e: Ext, k: int) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(e.to_mont(), (k, 4)))


def check_ood(air: Air, mats, proof: Proof, challenges, alpha: Ext, z: Ext, compiled: bool = True) -> None:
    """The constraint quotient at z, from the claimed column values, must equal
    the claimed quotient chunks recombined: sum_i z^(iN) Q_i(z)."""
    total = ood_quotient(air, mats, proof, challenges, alpha, z, compiled)
    q = proof.ood_z[next(m.name for m in mats if not m.is_trace)]
    n = air.trace_length
    zn = z ** n
    recombined, zin = Ext(0), Ext(1)
    for i in range(quotient_chunks(air, proof.options.zk)):
        chunk = sum((Ext(*(int(c) for c in q[4 * i + k])) * (X ** k) for k in range(4)), Ext(0))
        recombined = recombined + chunk * zin
        zin = zin * zn
    if total != recombined:
        raise VerificationError("constraints do not hold at the out-of-domain point")


def ood_quotient(air: Air, mats, proof: Proof, challenges, alpha: Ext, z: Ext, compiled: bool = True) -> Ext:
    """The constraint quotient at z, from the proof's claimed column values.

    The transition constraints' random linear combination is computed by the
    compiled constraint program on the one OOD "row" (`compiled`, the
    default: see :func:`_transition_sums_compiled`) or node by node in Python
    integers (the reference; tests hold the two equal, for any claimed
    values)."""
    n = air.trace_length
    n_main = air.num_main_columns
    trace_mats = [m for m in mats if m.is_trace]
    cur = np.concatenate([np.asarray(proof.ood_z[m.name], dtype=np.int64) for m in trace_mats])
    # a column no constraint reads on the next row has no value at w*z: zeros
    # stand in (the constraints never read them)
    nxt = np.zeros_like(cur)
    start = 0
    for m in trace_mats:
        if m.at_next:
            nxt[start + np.array(m.next_columns)] = np.asarray(proof.ood_next[m.name], dtype=np.int64)
        start += m.width
    constants = air.constants(challenges)

    def value(key):
        kind = key[0]
        if kind == TRACE:
            col, is_next = key[1], key[2]
            vals = nxt if is_next else cur
            if col < n_main:
                return Ext(*(int(c) for c in vals[col]))
            base = n_main + 4 * (col - n_main)     # an extension column: four components
            return sum((Ext(*(int(c) for c in vals[base + k])) * (X ** k) for k in range(4)), Ext(0))
        if kind == PERIODIC:
            return periodic_value_at(air.periodic_columns[key[1]], n, z)
        return constants(key)

    cons = air.transition_constraints
    if compiled:
        trans, every, coeff = _transition_sums_compiled(air, cur, nxt, constants, alpha, z)
    else:
        trans, every, coeff = _transition_sums_python(cons, ScalarAlgebra(value), alpha)
    w_n = F.two_adic_generator(n.bit_length() - 1)
    zn = z ** n
    # every-row constraints vanish on all of <w_N>
    total = (trans * (z - pow(w_n, n - 1, F.P)) + every) / (zn - 1)
    frame = Frame(air)
    bcons = air.boundary_constraints
    for bc, v in zip(bcons, evaluate([frame.cur(bc.column) - bc.value for bc in bcons],
                                     ScalarAlgebra(value))):
        total = total + v * coeff / (z - pow(w_n, bc.row % n, F.P))
        coeff = coeff * alpha
    return total


def _transition_sums_python(cons, alg: ScalarAlgebra, alpha: Ext) -> tuple[Ext, Ext, Ext]:
    """(sum of alpha^i C_i over transitions, the same over every-row
    constraints, alpha^len(cons)): every node evaluated in Python integers."""
    trans, every, coeff = Ext(0), Ext(0), Ext(1)
    for c, v in zip(cons, evaluate([c.expr for c in cons], alg)):
        if c.every_row:
            every = every + v * coeff
        else:
            trans = trans + v * coeff
        coeff = coeff * alpha
    return trans, every, coeff


def _transition_sums_compiled(air: Air, cur: np.ndarray, nxt: np.ndarray, constants, alpha: Ext,
                              z: Ext) -> tuple[Ext, Ext, Ext]:
    """What _transition_sums_python computes, by the prover's block evaluator
    (constraint_program.Program, csrc/stark/constraint_vm.c) run on two "rows":
    every column's value at z, then at w·z, so that a next-row load of row 0
    reads w·z.  Every input is an extension value here, so the program is
    compiled with all columns extension-typed; its shape is cached per
    transition list (the order book shares one per trace length), so a
    verification only evaluates the constants (public values, challenges,
    derived values) and the weights.  Field arithmetic is exact, so the sums
    are the same elements the Python walk gives."""
    n_main, n_aux = air.num_main_columns, len(air.aux_columns)
    periodic = sorted(air.periodic_columns)
    width = n_main + n_aux + len(periodic)
    rows = np.zeros((2, width, 4), dtype=np.int64)
    for r, vals in enumerate((cur, nxt)):
        rows[r, :n_main] = vals[:n_main]
        rows[r, n_main:n_main + n_aux] = _compose_ext_columns(vals[n_main:].reshape(n_aux, 4, 4))
    w_n = F.two_adic_generator(air.trace_length.bit_length() - 1)
    for i, name in enumerate(periodic):
        for r, point in enumerate((z, z * w_n)):
            rows[r, n_main + n_aux + i] = periodic_value_at(air.periodic_columns[name], air.trace_length,
                                                            point).c
    mont = F.encode(rows.astype(np.uint32))
    ext_inputs = {(TRACE, c): c for c in range(n_main + n_aux)}
    ext_inputs.update({(PERIODIC, name): n_main + n_aux + i for i, name in enumerate(periodic)})
    cons = air.transition_constraints
    # alpha^0 .. alpha^len(cons), Montgomery, by kernel doubling: the weights
    # bound as they are to the program compiled once per shape (no Output and
    # no Ext per constraint and verification)
    powers = zpowers(alpha, len(cons) + 1)
    key = ("ood-point", id(cons), n_main, n_aux, tuple(periodic))
    compiled = _OOD_PROGRAMS.get(key, cons, lambda: Program(
        [Output(1 if c.every_row else 0, c.expr, Ext(1)) for c in cons], constants, {}, ext_inputs,
        2, cache_key=key, keep=cons))
    accs = compiled.bind(constants, np.ascontiguousarray(powers[:-1])).run_matrix(mont, 1)
    coeff = Ext.from_mont(powers[-1])
    return Ext.from_mont(accs[0][0]), Ext.from_mont(accs[1][0]), coeff


#: the out-of-domain programs by shape, their weights bound per verification
_OOD_PROGRAMS: ShapeCache[Program] = ShapeCache(8)


def _compose_ext_columns(comps: np.ndarray) -> np.ndarray:
    """Extension columns' values from their components' values, canonical:
    comps (k, 4, 4) int64, column a's value is sum_j X^j comps[a, j]."""
    out = np.zeros((comps.shape[0], 4), dtype=np.int64)
    for j in range(4):
        v = comps[:, j]
        # X^j * (c0 + c1 X + c2 X^2 + c3 X^3), with X^4 = W: a rotation that
        # multiplies the coefficients carried past X^3 by W
        out += np.concatenate([W * v[:, 4 - j:], v[:, :4 - j]], axis=1)
    return out % F.P

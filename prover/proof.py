"""The STARK proof: its shape, and its binary format (docs/PROOF_FORMAT.md).

The **layout** of a proof follows from the AIR alone: the committed matrices
in order (each main segment, the auxiliary segment if any, the quotient
chunks), their widths in base-field columns, which are trace matrices
(opened at z; also at w*z, the columns some constraint reads on the
next row), which segments are external (root given to the verifier, not carried in the
proof) and which are exported (also opened at the point their root selects,
for a later proof to reuse).  The decoder reads against that layout, so every
count in the bytes is checked against what the AIR implies, and nothing is
allocated before the bytes for it are known to be there.

A proof of a statement of several domains (statement.py) has one such
layout per domain, its matrices named ``domain.matrix``
(:func:`statement_layouts`); a one-domain statement's is the AIR's layout,
and its bytes are exactly the single-AIR proof's.

The **trees** (:func:`statement_trees`) follow from the layouts: a chained
segment (external or exported) has a tree of its own, since its root is
what a chain reuses; every other matrix shares its round's tree (the main
segments', the auxiliary segments', the quotient chunks') with the other
domains' matrices of that round (docs/MERKLE.md, "Shared trees").
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

import numpy as np

from .air import Air
from .fri import Schedule, layer_schedule
from .params import MAX_LOG_TRACE, ParameterError, ProofOptions
from .statement import Statement, as_statement

MAGIC = b"ZKSP"
#: 8: a Merkle node is one SHA-256 compression of IV and left || right
#: (docs/MERKLE.md, "Nodes"), where 6 and 7 hashed SHA-256(left || right):
#: every root and path means another thing, the layout is 6's;
#: 6: values at w*z only for the columns some constraint reads on the next
#: row (Matrix.next_columns), where 4 and 5 carried a whole matrix's;
#: 4: statements of several domains (a height per domain, claimed sums, rows
#: per domain, FRI layers of their schedule's arity), values at w*z only for
#: matrices read there; 3: no metadata; 2: link values
VERSION = 8
#: a zk-mode proof (docs/ZK.md): version 8's layout with the quotient
#: matrix R~'s four columns wider and 16 bytes of salt after every matrix's
#: opened rows and every FRI layer's opened leaves.  The version is the
#: mode: transparent proofs are version 8 (zk mode's were 7 beside 6, 5
#: beside 4)
ZK_VERSION = 9
#: what this build says of each earlier version it refuses
_OLD_VERSIONS = {3: "one trace length, a tree per matrix",
                 4: "transparent, its values at w*z for every column of a matrix read on the next row",
                 5: "zk mode, its values at w*z for every column of a matrix read on the next row",
                 6: "transparent, its Merkle nodes SHA-256(left || right), two compressions each",
                 7: "zk mode, its Merkle nodes SHA-256(left || right), two compressions each"}
DIGEST = 32
SALT = 16


class ProofFormatError(ValueError):
    """Bytes that are not a well-formed proof for this AIR."""


@dataclass(frozen=True)
class Matrix:
    name: str
    width: int          # base-field columns (an extension column counts 4)
    is_trace: bool      # a trace matrix (main or aux segment), not the quotient
    external: bool      # root supplied by the verifier, not in the proof
    exported: bool = False   # also opened at domain.link_point(root)
    #: the base columns (of this matrix, ascending) opened at w*z: those
    #: some constraint reads on the next row (an extension column's four)
    next_columns: tuple[int, ...] = ()

    @property
    def at_next(self) -> bool:
        """Opened at w*z: some constraint reads one of its columns on the next row."""
        return bool(self.next_columns)


def layout(air: Air, zk: bool = False) -> list[Matrix]:
    """The AIR's matrices in commitment order.  In zk mode the quotient
    matrix holds quotient_chunks(air, zk=True) masked chunks, then R~'s
    four base coordinates (docs/ZK.md 5.4, 5.5)."""
    nxt = air.next_row_columns
    mats, start = [], 0
    for s in air.main_segments:
        mats.append(Matrix(s.name, len(s.columns), True, s.external, s.exported,
                           tuple(c for c in range(len(s.columns)) if start + c in nxt)))
        start += len(s.columns)
    if air.aux_columns:
        mats.append(Matrix("aux", 4 * len(air.aux_columns), True, False, False,
                           tuple(4 * a + k for a in range(len(air.aux_columns)) if start + a in nxt
                                 for k in range(4))))
    mats.append(Matrix("quotient", 4 * quotient_chunks(air, zk) + (4 if zk else 0), False, False))
    return mats


@dataclass(frozen=True)
class Tree:
    """A Merkle tree of the proof: its name (a chained segment's own tree
    has the segment's matrix name; a round's shared tree is named ``main
    round``, ``aux round`` or ``quotient round``), the round it is committed in, its matrices as
    (domain index, matrix name) in the tree's order, and whether its root
    is given to the verifier rather than carried (an external segment)."""

    name: str
    round: str
    matrices: tuple[tuple[int, str], ...]
    external: bool = False


ROUNDS = ("main", "aux", "quotient")


def statement_trees(statement: Statement) -> list[Tree]:
    """The proof's trees in commitment order: the main round's (each
    chained segment's own, in statement order, then the shared tree of the
    other main segments, if any), the auxiliary segments' shared tree (if
    any domain has one), the quotient chunks' shared tree."""
    layouts = statement_layouts(statement)
    chained = [Tree(m.name, "main", ((d, m.name),), m.external)
               for d, lay in enumerate(layouts) for m in lay if m.is_trace and (m.external or m.exported)]
    shared = {r: [] for r in ROUNDS}
    for d, lay in enumerate(layouts):
        for m in lay:
            if not m.is_trace:
                shared["quotient"].append((d, m.name))
            elif m.name == statement.matrix_name(d, "aux"):
                shared["aux"].append((d, m.name))
            elif not (m.external or m.exported):
                shared["main"].append((d, m.name))
    trees = chained + [Tree(f"{r} round", r, tuple(mats)) for r, mats in shared.items() if mats]
    names = [t.name for t in trees]
    if len(set(names)) != len(names):
        raise ValueError(f"a chained segment is named as a round's shared tree: {names}")
    return trees


def statement_layouts(statement: Statement, zk: bool = False) -> list[list[Matrix]]:
    """Each domain's layout (zk mode's with `zk`), in domain order, its
    matrices named as the statement names them (Statement.matrix_name)."""
    out = []
    for d, dom in enumerate(statement.domains):
        out.append([replace(m, name=statement.matrix_name(d, m.name)) for m in layout(dom.air, zk)])
    return out


def quotient_chunks(air: Air, zk: bool = False) -> int:
    """Chunks of degree < N the quotient splits into.  Transparent: d - 1
    for constraints of degree d (the quotient has degree below (d - 1) N).
    zk mode: max(2, d), since masked columns of degree N + h - 1 give the
    quotient degree d (N + h - 1) - (N - 1), below d N while h is small
    enough (check_zk_degrees), and at least two chunks, so the chunk masks
    s_i hide each chunk's values (docs/ZK.md 5.3, 5.4)."""
    if zk:
        return max(2, air.max_degree)
    return max(1, air.max_degree - 1)


def quotient_log_blowup(air: Air, zk: bool = False) -> int:
    """log2 of the quotient domain's size over N: the quotient has degree
    below quotient_chunks(air, zk) * N, so that many evaluations determine
    it, and the smallest power of two at least that many will do.  In zk
    mode at degree 3 that is 4N points, twice the LDE: the prover then
    evaluates it on D and a small second coset instead
    (prove.quotient_coefficients)."""
    return (quotient_chunks(air, zk) - 1).bit_length()


def mask_degree(statement: "Air | Statement", options: ProofOptions) -> int:
    """h for a proof of `statement` (ProofOptions.mask_degree): 4q + 20
    when some chained segment (external or exported) is opened at w z,
    i.e. a constraint reads one of its matrix's columns on the next row
    (the memory example's addresses), else 2q + 20."""
    layouts = statement_layouts(as_statement(statement))
    return options.mask_degree(any(m.at_next and (m.external or m.exported)
                                   for mats in layouts for m in mats))


def quotient_size(air: Air, h: int) -> int:
    """How many coefficients zk mode's quotient can have (its degree bound)
    over committed polynomials of degree < N + h: d (N + h - 1) - (N - 1) + 1
    for transition constraints of degree d (divided by Z, of degree N - 1;
    the every-row ones, over X^N - 1, one fewer), and N + h - 1 for a
    boundary constraint (degree N + h - 1 over x - w^row)."""
    n, d = air.trace_length, air.max_degree
    return max(d * (n + h - 1) - (n - 1) + 1, n + h - 1)


def check_zk_degrees(air: Air, options: ProofOptions, h: int) -> None:
    """ParameterError unless zk mode's masks fit this AIR's trace: the
    quotient of degree-d constraints over columns of degree N + h - 1 must
    stay below its chunks' k N (for d = 3: h <= N/3, docs/ZK.md 5.3), and
    h <= N, what the masked LDE takes (merkle.lde_leaves), which keeps a
    masked column's degree N + h - 1 below the LDE's M >= 2N (so too a
    chunk's N + h_q - 1: h_q < h).  h = 2q + 20 or 4q + 20 is even, so
    the quotient's bound (h <= N + 1 at d = 1) already gave h <= N."""
    n, d = air.trace_length, air.max_degree
    k = quotient_chunks(air, zk=True)
    if quotient_size(air, h) > k * n or h > n:
        largest = min((k * n + n - 2) // d - n + 1, n)
        raise ParameterError(f"zk mode's mask degree h = {h} ({options.num_queries} queries) is "
                             f"too large for {n} rows: constraints of degree {d} in {k} quotient chunks "
                             f"allow h <= {largest} (about N/{d}); prove a longer trace or with fewer queries")


def fri_schedule(statement: Statement, options: ProofOptions) -> Schedule:
    """The FRI schedule of a proof of `statement` under `options`, as
    prover, verifier and decoder derive it.  Transparent: the tall domain's
    f has degree < N.  zk mode: the same layers, and the final degree the
    smallest that makes D_F = final * 2^(folded bits) hold every domain's
    committed degree at its height, (N_d + h) 2^s_d, folding once more
    while that is over the options' final degree bound (docs/ZK.md 5.2's
    table, at a bound of 256: at 2^15 rows and 88 queries, 3 folds of 8,
    final 65, D_F = 33,280); the final degree is then no power of two."""
    tall = statement.tall
    lb = options.log_blowup
    log_m = [log_n + lb for log_n in statement.log_lengths]
    schedule = layer_schedule(options, statement.domains[tall].air.trace_length, log_m[tall],
                              [h for d, h in enumerate(log_m) if d != tall])
    if not options.zk:
        return schedule
    h = max(mask_degree(statement, options), options.chunk_mask_degree)   # the chunks' too
    need = max((dom.air.trace_length + h) << (log_m[tall] - log_m[d])
               for d, dom in enumerate(statement.domains))
    fold = options.fri_folding_factor.bit_length() - 1
    while True:
        folded = sum(schedule.log_arities)
        final = -(-need >> folded)                                # ceil(need / 2^folded)
        # one fold more while the final degree is over the options' bound
        # and the folded vector still holds it (at 2^14 rows, 88 queries
        # and a bound of 256: 260 after 2 folds of 8, 33 after 3)
        room = log_m[tall] - folded - fold      # log2 of the vector after one more fold
        if final <= options.fri_max_final_degree or room < 0 or -(-need >> (folded + fold)) > 1 << room:
            return replace(schedule, final_degree=final)
        schedule = replace(schedule, log_arities=schedule.log_arities + (fold,))


def fri_degree_bound(schedule: Schedule) -> int:
    """D_F: the degree bound FRI tests layer 0 against."""
    return schedule.final_degree << sum(schedule.log_arities)


def zk_degree_growth(statement: Statement, schedule: Schedule) -> int:
    """What zk mode adds to the algebraic degree D of the security figure
    (docs/SECURITY.md, "zk mode"): FRI bounds each committed polynomial by
    D_F at its domain's height, not by N (nor N + h: that is what an honest
    prover commits, not what FRI enforces), so each domain's identity at z,
    d N over unmasked columns, has degree up to d D_F.  The sum over the
    domains of d_d (D_F,d - N_d); d D_F - d N for one domain."""
    d_f, top = fri_degree_bound(schedule), max(statement.log_lengths)
    return sum(dom.air.max_degree * ((d_f >> (top - log_n)) - dom.air.trace_length)
               for dom, log_n in zip(statement.domains, statement.log_lengths))


@dataclass
class Proof:
    options: ProofOptions
    log_lengths: tuple[int, ...]            # log2 N_d, one per domain
    roots: dict[str, bytes]                 # trees carried (not external), by tree name
    ood_z: dict[str, np.ndarray]            # name -> (width, 4) canonical, every matrix
    ood_next: dict[str, np.ndarray]         # name -> (len(next_columns), 4) canonical, matrices read at w*z
    fri_roots: list[bytes]
    fri_final: np.ndarray                   # (d_final, 4) canonical
    pow_nonce: int
    rows: dict[str, np.ndarray]             # matrix name -> (k_d, width) canonical opened rows
    row_proofs: dict[str, np.ndarray]       # tree name -> (n, 32) batch Merkle proof
    fri_leaves: list[np.ndarray]            # per layer (k_l, F, 4) canonical
    fri_proofs: list[np.ndarray]            # per layer (n, 32)
    #: exported segments: name -> (width, 4) canonical values at the link point
    link_values: dict[str, np.ndarray] = field(default_factory=dict)
    #: domains claiming a sum: domain name -> (4,) canonical
    claimed_sums: dict[str, np.ndarray] = field(default_factory=dict)
    #: zk mode (docs/ZK.md 5.1): every matrix name -> (k_d, 16) uint8, the
    #: salts of the opened rows' leaves (none in transparent mode)
    row_salts: dict[str, np.ndarray] = field(default_factory=dict)
    #: zk mode: per FRI layer (k_l, 16) uint8, the opened leaves' salts
    fri_salts: list[np.ndarray] = field(default_factory=list)

    @property
    def log_trace_length(self) -> int:
        """log2 N of a one-domain proof."""
        if len(self.log_lengths) != 1:
            raise ValueError(f"a proof of {len(self.log_lengths)} domains has no single trace length")
        return self.log_lengths[0]

    @log_trace_length.setter
    def log_trace_length(self, value: int) -> None:
        self.log_lengths = (value,)

    # ---------------------------------------------------------------- size --
    def to_bytes(self, subject: "Air | Statement") -> bytes:
        return encode(self, subject)

    @classmethod
    def from_bytes(cls, data: bytes, subject: "Air | Statement") -> "Proof":
        return decode(data, subject)


# --------------------------------------------------------------- encoding --

_OPTS = struct.Struct("<BHBBI")   # log_blowup, queries, grinding, folding factor, final degree


def _u32s(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<u4").tobytes()


def encode(p: Proof, subject: "Air | Statement") -> bytes:
    o = p.options
    if not o.zk and (p.row_salts or p.fri_salts):
        raise ValueError(f"a transparent proof (format {VERSION}) has no salted openings (matrices "
                         f"{', '.join(sorted(p.row_salts)) or 'none'}, {len(p.fri_salts)} FRI layers)")
    st = as_statement(subject)
    layouts = statement_layouts(st, o.zk)
    out = [MAGIC, struct.pack("<H", ZK_VERSION if o.zk else VERSION), bytes(p.log_lengths),
           _OPTS.pack(o.log_blowup, o.num_queries, o.grinding_bits, o.fri_folding_factor,
                      o.fri_max_final_degree)]
    mats = [m for lay in layouts for m in lay]
    trees = statement_trees(st)
    for t in trees:
        if not t.external:
            out.append(p.roots[t.name])
    for d in st.claiming:
        out.append(_u32s(p.claimed_sums[st.domains[d].name]))
    stray = sorted(set(p.ood_z) - {m.name for m in mats})
    if stray:
        raise ValueError(f"values at z for {', '.join(stray)}, which the layout has no matrix of")
    stray = sorted(set(p.ood_next) - {m.name for m in mats if m.at_next})
    if stray:
        raise ValueError(f"values at w*z for {', '.join(stray)}, which no constraint reads on the next row")
    for m in mats:
        out.append(_u32s(_ood_values(p.ood_z, m.name, m.width, "z")))
        if m.at_next:
            out.append(_u32s(_ood_values(p.ood_next, m.name, len(m.next_columns), "w*z")))
    for m in mats:
        if m.exported:
            out.append(_u32s(p.link_values[m.name]))
    out.append(struct.pack("<B", len(p.fri_roots)))
    out += p.fri_roots
    out.append(struct.pack("<H", len(p.fri_final)) + _u32s(p.fri_final))
    out.append(struct.pack("<Q", p.pow_nonce))
    for lay in layouts:
        out.append(struct.pack("<H", p.rows[lay[0].name].shape[0]))
        for m in lay:
            out.append(_u32s(p.rows[m.name]))
            if o.zk:
                out.append(_salts(p.row_salts[m.name], p.rows[m.name].shape[0], m.name))
    for t in trees:
        out.append(struct.pack("<I", len(p.row_proofs[t.name])) + p.row_proofs[t.name].tobytes())
    for i, (leaves, proof) in enumerate(zip(p.fri_leaves, p.fri_proofs)):
        out.append(struct.pack("<H", leaves.shape[0]) + _u32s(leaves))
        if o.zk:
            out.append(_salts(p.fri_salts[i], leaves.shape[0], f"FRI layer {i}"))
        out.append(struct.pack("<I", len(proof)) + proof.tobytes())
    return b"".join(out)


def _ood_values(values: dict, name: str, count: int, point: str) -> np.ndarray:
    """A matrix's (count, 4) values at `point`, or ValueError naming it."""
    got = values.get(name)
    if got is None or np.shape(got) != (count, 4):
        what = "no values" if got is None else f"values of shape {np.shape(got)}"
        raise ValueError(f"{name}: {what} at {point}; the layout opens {count} columns there, ({count}, 4)")
    return got


def _salts(salts: np.ndarray, rows: int, what: str) -> bytes:
    if salts.dtype != np.uint8 or salts.shape != (rows, SALT):
        raise ValueError(f"{what}: salts {salts.dtype} {salts.shape} for {rows} opened rows")
    return salts.tobytes()


class Reader:
    """Bounded reads of untrusted bytes: every read checks the bytes that
    remain first, so nothing is allocated for a length the input cannot back.
    `kind` names the format in error messages ("proof", "batch proof")."""

    def __init__(self, data: bytes, kind: str = "proof"):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ProofFormatError(f"a {kind} is bytes, not {type(data).__name__}")
        self.data, self.pos, self.kind = bytes(data), 0, kind

    def take(self, n: int, what: str) -> bytes:
        return bytes(self.view(n, what))

    def view(self, n: int, what: str) -> memoryview:
        """take, without copying: a view of the input's bytes (for the
        megabyte of records a batch proof carries, copied once by its
        reader)."""
        if n < 0 or self.pos + n > len(self.data):
            raise ProofFormatError(f"{self.kind} truncated: {what} needs {n} bytes at offset "
                                   f"{self.pos}, {len(self.data) - self.pos} remain")
        chunk = memoryview(self.data)[self.pos: self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str):
        s = struct.Struct("<" + fmt)
        return s.unpack(self.take(s.size, what))

    def u32s(self, shape: tuple, what: str) -> np.ndarray:
        count = int(np.prod(shape))
        a = np.frombuffer(self.take(4 * count, what), dtype="<u4").astype(np.uint32).reshape(shape)
        if a.size and a.max() >= 2013265921:
            raise ProofFormatError(f"{what}: value {int(a.max())} is not a reduced field element")
        return a

    def salts(self, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self.take(SALT * count, what), dtype=np.uint8).reshape(count, SALT).copy()

    def digests(self, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self.take(DIGEST * count, what), dtype=np.uint8).reshape(count, DIGEST).copy()


def decode(data: bytes, subject: "Air | Statement") -> Proof:
    """Parse `data` as a proof for `subject` (an AIR or a statement); raise
    ProofFormatError on anything malformed.  The heights are checked first,
    against the cap and the statement's, and allocation is bounded by
    len(data): every count is checked against the bytes that remain before
    anything is read."""
    st = as_statement(subject)
    r = Reader(data)
    if r.take(4, "magic") != MAGIC:
        raise ProofFormatError("not a zksidecar proof (bad magic)")
    (version,) = r.unpack("H", "header")
    if version not in (VERSION, ZK_VERSION):
        why = (f" ({_OLD_VERSIONS[version]}: verify it with the release that wrote it)"
               if version in _OLD_VERSIONS else "")
        raise ProofFormatError(f"proof format version {version} is not supported{why}; this build reads "
                               f"{VERSION}, transparent, and {ZK_VERSION}, zk mode")
    zk = version == ZK_VERSION
    log_lengths = tuple(r.take(len(st.domains), "domain heights"))
    for dom, log_n in zip(st.domains, log_lengths):
        label = "proof" if st.single else f"domain {dom.name!r}"
        if log_n > MAX_LOG_TRACE:
            raise ProofFormatError(f"{label} claims 2^{log_n} rows, over the 2^{MAX_LOG_TRACE} "
                                   "a proof may have")
        if log_n != dom.log_length:
            if st.single:
                raise ProofFormatError(f"proof is for 2^{log_n} rows, the AIR has {dom.air.trace_length}")
            raise ProofFormatError(f"domain {dom.name!r}: the proof claims 2^{log_n} rows, the "
                                   f"statement has {dom.air.trace_length}")
    lb, q, g, fold, final = r.unpack("BHBBI", "options")
    options = ProofOptions(log_blowup=lb, num_queries=q, grinding_bits=g, fri_folding_factor=fold,
                           fri_max_final_degree=final, zk=zk)
    try:
        options.validate()
        options.check_trace_length(1 << max(log_lengths))
        if zk:
            h = mask_degree(st, options)
            for dom in st.domains:
                check_zk_degrees(dom.air, options, h)
    except ValueError as exc:
        raise ProofFormatError(f"bad proof options: {exc}") from None
    layouts = statement_layouts(st, zk)
    mats = [m for lay in layouts for m in lay]
    trees = statement_trees(st)
    roots = {t.name: r.take(DIGEST, f"{t.name} tree root") for t in trees if not t.external}
    claimed_sums = {st.domains[d].name: r.u32s((4,), f"domain {st.domains[d].name!r} claimed sum")
                    for d in st.claiming}
    ood_z, ood_next = {}, {}
    for m in mats:
        ood_z[m.name] = r.u32s((m.width, 4), f"{m.name} values at z")
        if m.at_next:
            ood_next[m.name] = r.u32s((len(m.next_columns), 4), f"{m.name} values at w*z")
    link_values = {m.name: r.u32s((m.width, 4), f"{m.name} values at its link point")
                   for m in mats if m.exported}
    (n_layers,) = r.unpack("B", "FRI layer count")
    tall = st.tall
    log_m = [log_n + lb for log_n in st.log_lengths]
    schedule = fri_schedule(st, options)
    if n_layers != len(schedule.log_arities):
        raise ProofFormatError(f"{n_layers} FRI layers; these parameters and heights fold in "
                               f"{len(schedule.log_arities)}")
    fri_roots = [r.take(DIGEST, f"FRI layer {i} root") for i in range(n_layers)]
    (n_final,) = r.unpack("H", "FRI final degree")
    fri_final = r.u32s((n_final, 4), "FRI final polynomial")
    (pow_nonce,) = r.unpack("Q", "proof-of-work nonce")
    rows, row_proofs, row_salts = {}, {}, {}
    for dom, lay, lm in zip(st.domains, layouts, log_m):
        what = "query count" if st.single else f"domain {dom.name!r} opened row count"
        (k,) = r.unpack("H", what)
        if not 1 <= k <= min(options.num_queries, 1 << lm):
            raise ProofFormatError(f"{k} opened rows for {options.num_queries} queries"
                                   + ("" if st.single else f" on domain {dom.name!r} (2^{lm} rows)"))
        for m in lay:
            rows[m.name] = r.u32s((k, m.width), f"{m.name} opened rows")
            if zk:
                row_salts[m.name] = r.salts(k, f"{m.name} opened rows' salts")
    for t in trees:
        (n,) = r.unpack("I", f"{t.name} tree proof length")
        # a batch opening of k leaves in a tree of depth D has at most k D siblings
        depth = max(log_m[d] for d, _ in t.matrices)
        leaves = max(rows[name].shape[0] for _, name in t.matrices)
        if n > leaves * depth:
            raise ProofFormatError(f"{t.name} tree proof claims {n} digests; {leaves} opened leaves "
                                   f"of a depth-{depth} tree need at most {leaves * depth}")
        row_proofs[t.name] = r.digests(n, f"{t.name} tree Merkle proof")
    fri_leaves, fri_proofs, fri_salts = [], [], []
    for i in range(n_layers):
        (kl,) = r.unpack("H", f"FRI layer {i} leaf count")
        fri_leaves.append(r.u32s((kl, schedule.arity(i), 4), f"FRI layer {i} leaves"))
        if zk:
            fri_salts.append(r.salts(kl, f"FRI layer {i} leaves' salts"))
        (n,) = r.unpack("I", f"FRI layer {i} proof length")
        fri_proofs.append(r.digests(n, f"FRI layer {i} Merkle proof"))
    if r.pos != len(r.data):
        raise ProofFormatError(f"{len(r.data) - r.pos} unexpected bytes after the proof")
    return Proof(options, log_lengths, roots, ood_z, ood_next, fri_roots, fri_final, pow_nonce, rows,
                 row_proofs, fri_leaves, fri_proofs, link_values, claimed_sums, row_salts, fri_salts)

"""A plain, pure-Python REFERENCE prover: the STARK protocol as a specification.

``reference_prove(air, traces, options)`` computes the same proof as
:func:`zksidecar.prover.prove.prove` -- byte for byte, fed nothing but the
same inputs -- using nothing but Python integers, lists, ``hashlib``
and ``struct``.  It shares no arithmetic with the fast prover: no numpy
arithmetic, no C kernels, no field.py / ntt.py / extension.py / merkle.py /
transcript.py / fri.py / domain.py.  It takes from the package only

* the AIR (air.py) and the expression walk order (expr.topological),
* the plain-Python quartic extension Ext (ext_scalar.py, canonical ints),
* the Proof dataclass and the layouts (proof.py), the Statement (statement.py),
* a shared LogUp argument's fraction expressions (logup.LogUp._parts), which
  it sums row by row for a domain's claimed sum,
* ProofOptions (params.py), and in zk mode the plan's shape (proof.py:
  mask_degree, quotient_chunks(zk=True)) and ChaCha20's plain-Python
  definition (chacha20_reference.py).

zk mode (docs/ZK.md) re-implements its key expansion with ``hmac`` and the
plain-Python ChaCha20 of chacha20_reference.py (zk_keys' label encoding,
stream keys, keystream and rejection sampling, written out again below), so
a difference in how a mask or salt is derived shows too.

so a byte difference between the two provers points at a bug in one of them
(docs/REFERENCE.md).  It is slow -- every field operation is a Python integer
operation -- and that is the point: it is the benchmark baseline "a
pure-Python reference prover" as well as an executable specification.

Conventions (the same as the fast prover's; docs/STARK.md):

* p = 15 * 2^27 + 1, values are canonical ints in [0, p);
* w_n = 31^((p - 1) / n) generates the order-n subgroup H_n; g = 31;
* the trace lives on H_N; every committed matrix is its low-degree extension
  on D = g * H_M, M = N * 2^log_blowup, natural order (row i at g * w_M^i),
  so the "next row" of row i on D is row i + 2^log_blowup (cyclically);
* an extension element a0 + a1 X + a2 X^2 + a3 X^3 (X^4 = 11) occupies four
  consecutive base columns of a committed matrix.

The protocol, step by step (each step below is numbered like prove.py's):

    0. transcript header         air name, shape, options, public values, links
    1. commit main segments
    2. commit auxiliary segment  (built from challenges drawn after step 1)
    3. constraint quotient       Q = sum alpha^i C_i / Z_i, point by point on the
                                 quotient domain (every 2^(log_blowup - e)-th row of D)
    4. commit quotient chunks    Q = sum_i x^(iN) Q_i(x), deg Q_i < N
    5. out-of-domain openings    every column at z (matrices whose next row a
                                 constraint reads also at w z)
    6. DEEP composition          f = sum gamma_k (P_k(x) - P_k(y_k)) / (x - y_k),
                                 one independent gamma_k per term
    7. FRI commit phase          bit-reversed layers, binary folds, final polynomial
    8. proof of work
    9. query openings            rows of every matrix, FRI leaves, batch proofs

Trees (proof.statement_trees): a chained segment (external or exported) has
its own; the other matrices of a round share one with every domain's
matrices of that round.  Leaf j of a committed matrix's tree is the digest
of its row rev(j); a matrix 2^s times shorter than the tree's tallest joins
at level s, node i there being N(N(left, right), its row digest at i), N
the node (one SHA-256 compression: sha256_reference.merkle_node; matrices
of one height: SHA-256 of their row digests side by side).
"""
from __future__ import annotations

import hashlib
import hmac
import struct

from . import chacha20_reference
from .air import Air, Frame
from .expr import PERIODIC, TRACE, topological
from .ext_scalar import Ext
from .params import ProofOptions
from .proof import (Proof, mask_degree, quotient_chunks, quotient_log_blowup, statement_layouts,
                    statement_trees)
from .sha256_reference import merkle_node
from .statement import as_statement

# ===================================================================== field ==

P = 2013265921                  # BabyBear: 15 * 2^27 + 1
TWO_ADICITY = 27
GENERATOR = 31                  # generates the multiplicative group
COSET_SHIFT = GENERATOR         # D = g * H_M, disjoint from the trace domain H_N
MONT_R = (1 << 32) % P          # numpy arrays at the API edge hold x * 2^32 mod p
MONT_R_INV = pow(MONT_R, P - 2, P)


def inv(x: int) -> int:
    if x % P == 0:
        raise ZeroDivisionError("inverse of zero in the base field")
    return pow(x, P - 2, P)


def root_of_unity(log_n: int) -> int:
    """w_n, a generator of the subgroup of order n = 2^log_n."""
    assert 0 <= log_n <= TWO_ADICITY
    return pow(GENERATOR, (P - 1) >> log_n, P)


def from_mont(x) -> int:
    return int(x) * MONT_R_INV % P


def to_mont(x: int) -> int:
    return x * MONT_R % P


def bit_reverse(i: int, bits: int) -> int:
    out = 0
    for _ in range(bits):
        out = (out << 1) | (i & 1)
        i >>= 1
    return out


def bit_reverse_list(values: list) -> list:
    n = len(values)
    bits = n.bit_length() - 1
    return [values[bit_reverse(i, bits)] for i in range(n)]


# ======================================================================= NTT ==
# One column at a time, natural order in and out.  ntt(c, s)[i] = sum_j c[j] (s w_n^i)^j.

def ntt(coeffs: list[int], shift: int = 1) -> list[int]:
    """Coefficients -> evaluations at shift * w_n^i, i < n (iterative radix-2)."""
    n = len(coeffs)
    log_n = n.bit_length() - 1
    assert n == 1 << log_n
    # scale coefficient j by shift^j: p(s x) has coefficients c_j s^j
    a, s = [], 1
    for c in coeffs:
        a.append(c * s % P)
        s = s * shift % P
    a = bit_reverse_list(a)
    half = 1
    while half < n:
        w = root_of_unity(half.bit_length())        # order 2 * half
        twiddles = [1] * half
        for j in range(1, half):
            twiddles[j] = twiddles[j - 1] * w % P
        for start in range(0, n, 2 * half):
            for j in range(half):
                u = a[start + j]
                v = a[start + j + half] * twiddles[j] % P
                a[start + j] = (u + v) % P
                a[start + j + half] = (u - v) % P
        half *= 2
    return a


def intt(evals: list[int], shift: int = 1) -> list[int]:
    """Evaluations at shift * w_n^i -> coefficients (the 1/n included).
    c_k s^k = (1/n) sum_i e_i w^(-ik), and sum_i e_i w^(i(n-k)) is the
    forward transform at index (n - k) mod n."""
    n = len(evals)
    fwd = ntt(evals)
    n_inv, s_inv = inv(n), inv(shift)
    out, s = [], 1
    for k in range(n):
        out.append(fwd[-k % n] * n_inv % P * s % P)
        s = s * s_inv % P
    return out


def lde_column(column: list[int], log_blowup: int, mask: list[int] | None = None) -> list[int]:
    """A trace column (values on H_N) -> its polynomial on D = g * H_M; with
    `mask` (r's coefficients), the masked polynomial f = t + (X^N - 1) r's."""
    coeffs = intt(column) if mask is None else masked_coefficients(column, mask)
    return ntt(coeffs + [0] * ((len(column) << log_blowup) - len(coeffs)), COSET_SHIFT)


def masked_coefficients(column: list[int], mask: list[int]) -> list[int]:
    """zk mode (docs/ZK.md, 5.2): the coefficients of f = t + (X^N - 1) r,
    t the column's interpolant on H_N and r the polynomial with
    coefficients `mask` (degree < h): t's with r subtracted from the first
    h, then r at N .. N + h - 1."""
    n = len(column)
    assert len(mask) <= n, "the mask is of degree < h <= N"
    coeffs = intt(column)
    for k, r in enumerate(mask):
        coeffs[k] = (coeffs[k] - r) % P
    return coeffs + list(mask)


def horner(coeffs: list, x):
    """sum_j coeffs[j] x^j (coefficients and x: ints or Ext)."""
    acc = Ext(0) if isinstance(x, Ext) else 0
    for c in reversed(coeffs):
        acc = acc * x + c
        if not isinstance(acc, Ext):
            acc %= P
    return acc


# ==================================================================== Merkle ==
# docs/MERKLE.md: leaf = SHA-256(canonical values, 4 bytes LE each), followed
# by the leaf's 16-byte salt in a salted tree (zk mode);
# node = N(left, right), SHA-256's compression function once on IV and
# left || right (sha256_reference.merkle_node), or N(N(left, right), injected
# digest) at a level where a shorter matrix of a shared tree joins; nodes[1]
# is the root, nodes[rows + r] leaf r.

def hash_row(values: list[int], salt: bytes = b"") -> bytes:
    """A leaf: the row's canonical values, 4 bytes LE each, then its salt
    (16 bytes in a salted tree, none in an unsalted one)."""
    assert len(salt) in (0, 16)
    return hashlib.sha256(struct.pack(f"<{len(values)}I", *values) + salt).digest()


def reversed_row_digests(extended: list[list[int]], salts: list[bytes] | None = None) -> list[bytes]:
    """A committed matrix's leaves: leaf j is the digest of row rev(j),
    salted with salts[j] when `salts` (one per leaf, in leaf order) is given."""
    m = len(extended[0])
    bits = m.bit_length() - 1
    return [hash_row([c[bit_reverse(j, bits)] for c in extended], salts[j] if salts else b"")
            for j in range(m)]


class Tree:
    def __init__(self, leaves: list[bytes], inject: dict[int, list[bytes]] | None = None):
        n = len(leaves)
        assert n >= 1 and n & (n - 1) == 0
        inject = inject or {}
        self.rows = n
        self.depth = n.bit_length() - 1
        self.nodes = [b"\0" * 32] * (2 * n)
        self.nodes[n:] = leaves
        for i in range(n - 1, 0, -1):
            level = self.depth - (i.bit_length() - 1)      # level l holds nodes [n >> l, 2n >> l)
            node = merkle_node(self.nodes[2 * i], self.nodes[2 * i + 1])
            if level in inject:
                node = merkle_node(node, inject[level][i - (n >> level)])
            self.nodes[i] = node

    @classmethod
    def of_rows(cls, rows: list[list[int]], salts: list[bytes] | None = None) -> "Tree":
        return cls([hash_row(row, salts[r] if salts else b"") for r, row in enumerate(rows)])

    @classmethod
    def shared(cls, parts: list[list[bytes]]) -> "Tree":
        """The tree of matrices given by their leaves (reversed_row_digests),
        in the tree's order: the tallest are the leaves, one 2^s times
        shorter joins at level s; matrices of one height are combined row
        by row as SHA-256(d_1 || ... || d_k) (a lone one as it is)."""
        tall = max(len(part) for part in parts)
        groups: dict[int, list[list[bytes]]] = {}
        for part in parts:
            groups.setdefault(tall.bit_length() - len(part).bit_length(), []).append(part)

        def combine(group):
            return group[0] if len(group) == 1 else [hashlib.sha256(b"".join(ds)).digest()
                                                     for ds in zip(*group)]
        return cls(combine(groups[0]), {level: combine(g) for level, g in groups.items() if level})

    @property
    def root(self) -> bytes:
        return self.nodes[1]

    def open_batch(self, indices: list[int]) -> list[bytes]:
        """merkle_batch.py: for sorted distinct leaf indices, level by level from
        the leaves up, a node whose sibling is also known needs nothing; a lone
        node needs its sibling.  The proof is those siblings, by level then index."""
        idx = sorted(set(indices))
        assert idx == sorted(indices)
        proof = []
        for level in range(self.depth):
            level_start = self.rows >> level          # level-l node j is nodes[(rows >> l) + j]
            parents, i = [], 0
            while i < len(idx):
                j = idx[i]
                if j % 2 == 0 and i + 1 < len(idx) and idx[i + 1] == j + 1:
                    i += 2                            # both children known
                else:
                    proof.append(self.nodes[level_start + (j ^ 1)])
                    i += 1
                parents.append(j >> 1)
            idx = parents
        return proof


# ================================================================ transcript ==
# transcript.py's docstring, re-implemented:
#   state_0 = SHA-256("zksidecar-transcript-v1" || domain)
#   absorb:   state = SHA-256(state || 0x01 || u64(len label) || label || u64(len data) || data)
#   squeeze:  block_k = SHA-256(state || 0x02 || u64(k)), then state = SHA-256(state || 0x03)
#   a field element: 8 LE bytes mod p; an index: 8 LE bytes masked to the domain
#   proof of work: the least nonce with SHA-256(state || 0x04 || u64(nonce)) starting
#   with `bits` zero bits, then absorbed as "pow-nonce"

def _u64(x: int) -> bytes:
    return struct.pack("<Q", x)


class RefTranscript:
    def __init__(self, domain: bytes):
        self.state = hashlib.sha256(b"zksidecar-transcript-v1" + domain).digest()

    def absorb(self, label: bytes, data: bytes) -> None:
        self.state = hashlib.sha256(self.state + b"\x01" + _u64(len(label)) + label
                                    + _u64(len(data)) + data).digest()

    def absorb_ints(self, label: bytes, values: list[int]) -> None:
        """Field elements as canonical u32 little-endian."""
        self.absorb(label, struct.pack(f"<{len(values)}I", *values))

    def _squeeze(self, nbytes: int) -> bytes:
        out, k = b"", 0
        while len(out) < nbytes:
            out += hashlib.sha256(self.state + b"\x02" + _u64(k)).digest()
            k += 1
        self.state = hashlib.sha256(self.state + b"\x03").digest()
        return out[:nbytes]

    def _words(self, count: int) -> list[int]:
        raw = self._squeeze(8 * count)
        return [int.from_bytes(raw[8 * i: 8 * i + 8], "little") for i in range(count)]

    def challenge_ext(self) -> Ext:
        """One extension element: four base elements, coefficient of 1 first."""
        return Ext(*(w % P for w in self._words(4)))

    def challenge_exts(self, count: int) -> list[Ext]:
        ints = [w % P for w in self._words(4 * count)]
        return [Ext(*ints[4 * i: 4 * i + 4]) for i in range(count)]

    def challenge_indices(self, count: int, domain_size: int) -> list[int]:
        assert domain_size & (domain_size - 1) == 0
        return sorted({w & (domain_size - 1) for w in self._words(count)})

    def grind(self, bits: int) -> int:
        nonce = 0
        while True:
            digest = hashlib.sha256(self.state + b"\x04" + _u64(nonce)).digest()
            if bits == 0 or int.from_bytes(digest[:8], "big") >> (64 - bits) == 0:
                break
            nonce += 1
        self.absorb(b"pow-nonce", _u64(nonce))
        return nonce


def ext_words(values: list[Ext]) -> list[int]:
    return [c for v in values for c in v.c]


def link_bytes(link) -> bytes:
    """domain.Link.to_bytes: u32 count, then z and the values, 4 words each."""
    words = ext_words([link.z, *link.values])
    return struct.pack(f"<I{len(words)}I", len(link.values), *words)


# ====================================================================== keys ==
# zk_keys.py, re-implemented: label(fields) is le64(count), then per field a
# tag and body (b"B" le64(len) bytes, b"S" le64(len) UTF-8, b"U" le64(value),
# b"L" nested label); derive(K, fields) = HMAC-SHA-256(K, label(fields));
# the stream of (key, fields) is the ChaCha20 keystream (nonce 0, block
# counter from 0) keyed HMAC(key, label(["stream", *fields])); field
# elements are its 32-bit LE words w < 2p, each mod p.

def key_label(fields) -> bytes:
    out = _u64(len(fields))
    for f in fields:
        if isinstance(f, bytes):
            out += b"B" + _u64(len(f)) + f
        elif isinstance(f, str):
            out += b"S" + _u64(len(f.encode())) + f.encode()
        elif isinstance(f, int):
            out += b"U" + _u64(f)
        else:
            out += b"L" + key_label(f)
    return out


def key_stream(key: bytes, fields, nbytes: int) -> bytes:
    stream = hmac.digest(key, key_label(["stream", *fields]), "sha256")
    return chacha20_reference.keystream(stream, bytes(12), 0, nbytes)


def key_elements(key: bytes, fields, count: int) -> list[int]:
    stream, out, i = hmac.digest(key, key_label(["stream", *fields]), "sha256"), [], 0
    while len(out) < count:
        block = chacha20_reference.block(stream, i, bytes(12))
        i += 1
        for j in range(16):
            w = int.from_bytes(block[4 * j: 4 * j + 4], "little")
            if w < 2 * P and len(out) < count:
                out.append(w % P)
    return out


def key_salts(key: bytes, fields, leaves: int) -> list[bytes]:
    raw = key_stream(key, fields, 16 * leaves)
    return [raw[16 * j: 16 * j + 16] for j in range(leaves)]


def table_digest(rows: list[list[int]]) -> bytes:
    """zk_keys.table_digest: SHA-256 of label(["table", rows, columns]) and
    each row's SHA-256 of its canonical values, 4 bytes little-endian each
    (`rows`: Montgomery words, as prove()'s input holds them)."""
    width = len(rows[0]) if rows else 0
    body = b"".join(hashlib.sha256(struct.pack(f"<{width}I", *(from_mont(w) for w in row))).digest()
                    for row in rows)
    return hashlib.sha256(key_label(["table", len(rows), width]) + body).digest()


def _check_next_columns(air: Air, mats, name) -> None:
    """The columns each matrix opens at w z, found again here by walking
    the transition constraints (a column read on the next row: a trace
    variable marked next), not taken from Air.next_row_columns: a wrong
    layout would otherwise be reproduced by the reference, not caught.
    An auxiliary column opens its four coordinates.  `name` gives a
    segment's matrix name in the statement."""
    read = {n.args[1] for n in topological([c.expr for c in air.transition_constraints])
            if n.op == "var" and n.args[0] == TRACE and n.args[2]}
    want, start = {}, 0
    for seg in air.main_segments:
        want[name(seg.name)] = tuple(c for c in range(len(seg.columns)) if start + c in read)
        start += len(seg.columns)
    want[name("aux")] = tuple(4 * a + k for a in range(len(air.aux_columns)) if start + a in read for k in range(4))
    for mm in mats:
        assert mm.next_columns == want.get(mm.name, ()), \
            f"{mm.name}: the layout opens {mm.next_columns} at w z, the constraints read {want.get(mm.name, ())}"


def table_evaluation(rows: list[list[int]], rho: Ext, tau: Ext) -> list[int]:
    """zk_keys.traces_digest's entry for one table but its name: rows,
    columns and the four coefficients of sum_ij t_ij rho^i tau^j (`rows`:
    Montgomery words)."""
    width = len(rows[0]) if rows else 0
    v, rp = Ext(0), Ext(1)
    for row in rows:
        tp = rp
        for word in row:
            v = v + tp * from_mont(word)
            tp = tp * tau
        rp = rp * rho
    return [len(rows), width, *v.c]


def mask_columns(key: bytes, label, width: int, h: int) -> list[list[int]]:
    """masking.Mask.derive's r: coefficient k of column c is element
    k * width + c of ["mask", label]'s elements."""
    e = key_elements(key, ["mask", label], h * width)
    return [[e[k * width + c] for k in range(h)] for c in range(width)]


# =================================================================== algebra ==
# Constraint values at one point: a base-field int or an Ext.

def _add(a, b):
    return (a + b) % P if isinstance(a, int) and isinstance(b, int) else Ext.lift(a) + Ext.lift(b)


def _sub(a, b):
    return (a - b) % P if isinstance(a, int) and isinstance(b, int) else Ext.lift(a) - Ext.lift(b)


def _mul(a, b):
    return a * b % P if isinstance(a, int) and isinstance(b, int) else Ext.lift(a) * Ext.lift(b)


class PointEvaluator:
    """Evaluates the constraint expressions at one point at a time: the DAG's
    order (expr.topological) is computed once, the nodes are walked per point."""

    def __init__(self, roots):
        self.roots = roots
        self.order = topological(roots)

    def __call__(self, variable) -> list:
        val = {}
        for node in self.order:
            if node.op == "var":
                v = variable(node.args)
            elif node.op == "const":
                v = node.args[0] % P
            elif node.op == "neg":
                a = val[id(node.args[0])]
                v = -a % P if isinstance(a, int) else -a
            else:
                a, b = val[id(node.args[0])], val[id(node.args[1])]
                v = {"add": _add, "sub": _sub, "mul": _mul}[node.op](a, b)
            val[id(node)] = v
        return [val[id(r)] for r in self.roots]


def periodic_on_lde(values: list[int], n: int, log_blowup: int) -> list[int]:
    """A periodic column with period L is P(x) = R(x^(N/L)), R interpolating
    the L values on H_L; evaluated at each point of D directly."""
    period = len(values)
    coeffs = intt([v % P for v in values])
    m = n << log_blowup
    w_m = root_of_unity(m.bit_length() - 1)
    out, x = [], COSET_SHIFT
    for _ in range(m):
        out.append(horner(coeffs, pow(x, n // period, P)))
        x = x * w_m % P
    return out


# =================================================================== prover ==

def reference_prove(subject, traces: dict, options: ProofOptions,
                    external: dict | None = None, zk_key: bytes | None = None,
                    state_keys: dict | None = None) -> Proof:
    """The proof prove.prove(subject, traces, options) makes, computed plainly.

    `subject` is an AIR or a statement of several domains (statement.py);
    `traces` is prove()'s input (matrix name -> (N_d, w) Montgomery uint32
    matrix; converted to canonical ints on entry).  `external` maps each
    external segment to the Link of the proof that committed it, or None;
    the reference recommits the segment from its trace (the root is the
    same).  zk mode (options.zk): `zk_key` and `state_keys` as prove()'s;
    an external segment with a link is recommitted under its state key
    (state_keys), one without as a public table (no mask, zero salts)."""
    options.validate()
    st = as_statement(subject)
    st.validate()
    external = external or {}
    lb = options.log_blowup
    blowup = 1 << lb
    doms = st.domains
    names = list(range(len(doms)))
    ns = [dom.air.trace_length for dom in doms]
    log_ns = [n.bit_length() - 1 for n in ns]
    ms = [n << lb for n in ns]                                      # |D_d|
    log_ms = [log_n + lb for log_n in log_ns]
    zk = options.zk
    state_keys = state_keys or {}
    h = mask_degree(st, options)
    hq = options.chunk_mask_degree
    for dom in doms:
        assert zk or lb >= quotient_log_blowup(dom.air), "the LDE must hold the quotient domain"
    # D_d = g * H_(M_d), natural order
    xs = [[COSET_SHIFT * pow(root_of_unity(log_ms[d]), i, P) % P for i in range(ms[d])] for d in names]
    layouts = statement_layouts(st, zk)
    mname = st.matrix_name
    for d in names:
        _check_next_columns(doms[d].air, layouts[d], lambda name, d=d: mname(d, name))

    # 0 -- transcript header ---------------------------------------------------
    #   one domain: the AIR's name and shape; several: the statement's name,
    #   each domain's name, AIR and shape, the shared challenge count
    tr = RefTranscript(b"zksidecar-stark")

    def absorb_shape(air):
        tr.absorb(b"air", type(air).__name__.encode())
        tr.absorb(b"shape", struct.pack("<IIII", air.trace_length, air.num_main_columns,
                                        len(air.aux_columns), air.num_challenges))

    if len(doms) == 1:
        absorb_shape(doms[0].air)
    else:
        tr.absorb(b"statement", st.name.encode())
        for dom in doms:
            tr.absorb(b"domain", dom.name.encode())
            absorb_shape(dom.air)
            tr.absorb(b"public", dom.air.public_bytes())
        tr.absorb(b"challenges", struct.pack("<I", max(dom.air.num_challenges for dom in doms)))
    tr.absorb(b"options", struct.pack("<BHBBI", options.log_blowup, options.num_queries,
                                      options.grinding_bits, options.fri_folding_factor,
                                      options.fri_max_final_degree))
    if zk:
        tr.absorb(b"mode", b"zk")
    #   the public bytes: one domain's after the options; the statement's
    #   own (several domains: always, b"" if none) after them
    if len(doms) == 1:
        tr.absorb(b"public", doms[0].air.public_bytes())
    if len(doms) > 1 or st.public is not None:
        tr.absorb(b"statement-public", st.public or b"")
    for d in names:
        for seg in doms[d].air.main_segments:
            if seg.external:
                link = external.get(mname(d, seg.name))
                tr.absorb(b"link", link_bytes(link) if link is not None else b"")
    #   zk mode: the proof key, HMAC(batch key, label("proof", the header's
    #   digest, the traces' digest)): the traces' digest is SHA-256 of
    #   label(["traces", [[name, rows, columns, v0..v3], ...]]) over every
    #   main segment in statement order, v = sum_ij t_ij rho^i tau^j at the
    #   batch key's two witness points (zk_keys.traces_digest)
    proof_key = None
    if zk:
        e = key_elements(zk_key, ["witness points", tr.state], 8)
        rho, tau = Ext(*e[:4]), Ext(*e[4:])
        mains = [[mname(d, seg.name), *table_evaluation(traces[mname(d, seg.name)].tolist(), rho, tau)]
                 for d in names for seg in doms[d].air.main_segments]
        witness = hashlib.sha256(key_label(["traces", mains])).digest()
        proof_key = hmac.digest(zk_key, key_label(["proof", tr.state, witness]), "sha256")

    # every committed matrix, by its name in the statement: its trace-domain
    # columns (canonical) and its LDE columns on D_d; every tree, by its
    # name, over its matrices' LDE rows
    columns: dict[str, list[list[int]]] = {}
    lde: dict[str, list[list[int]]] = {}
    coef: dict[str, list[list[int]]] = {}       # each committed polynomial's coefficients
    salts: dict[str, list[bytes]] = {}          # zk mode: each matrix's leaf salts
    tree_specs = statement_trees(st)
    trees: dict[str, Tree] = {}
    tree_of: dict[str, Tree] = {}       # matrix name -> its tree

    def commit(name: str, cols: list[list[int]], log_m: int, key: bytes | None = None,
               label: str | list | None = None) -> None:
        """A trace matrix's columns: in zk mode masked (f = t + (X^N - 1) r,
        r from `key` and `label`; none without a key: a public table, zero
        salts) and its leaves salted."""
        columns[name] = cols
        if zk and key is not None:
            masks = mask_columns(key, label, len(cols), h)
            coef[name] = [masked_coefficients(c, r) for c, r in zip(cols, masks)]
            salts[name] = key_salts(key, ["salts", label], 1 << log_m)
        else:
            coef[name] = [intt(c) for c in cols]
            if zk:
                salts[name] = [b"\0" * 16] * (1 << log_m)
        lde[name] = [ntt(c + [0] * ((1 << log_m) - len(c)), COSET_SHIFT) for c in coef[name]]

    def commit_round(round_: str) -> None:
        for t in tree_specs:
            if t.round == round_:
                trees[t.name] = Tree.shared([reversed_row_digests(lde[name], salts.get(name))
                                             for _, name in t.matrices])
                for _, name in t.matrices:
                    tree_of[name] = trees[t.name]
                tr.absorb(b"root", trees[t.name].root)

    # 1 -- commit main segments, domain by domain --------------------------------
    for d in names:
        for seg in doms[d].air.main_segments:
            mat = traces[mname(d, seg.name)]
            assert tuple(mat.shape) == (ns[d], len(seg.columns)), f"segment {seg.name!r} has the wrong shape"
            rows_ = mat.tolist()                  # Montgomery words -> canonical ints, column by column
            cols = [[from_mont(r[j]) for r in rows_] for j in range(len(seg.columns))]
            name = mname(d, seg.name)
            # a chained state: under its state key with the label ["state", its
            # table's digest] (masking.Mask.for_state); an external one without
            # a link is a public table
            state_label = ["state", table_digest(rows_)] if zk and (seg.external or seg.exported) else None
            if seg.external:
                linked = external.get(name) is not None
                commit(name, cols, log_ms[d], state_keys.get(name) if linked else None, state_label)
            elif seg.exported:
                commit(name, cols, log_ms[d], state_keys.get(name), state_label)
            else:
                commit(name, cols, log_ms[d], proof_key, name)
    commit_round("main")

    # 2 -- shared challenges, auxiliary segments, claimed sums -----------------
    #   the statement draws the most challenges any domain declares, once;
    #   domain d reads the first of them it declares
    k_all = max(dom.air.num_challenges for dom in doms)
    challenges: list[Ext] = tr.challenge_exts(k_all) if k_all else []
    airs, claims = [], {}
    for d in names:
        air = doms[d].air
        mine = challenges[: air.num_challenges]
        if air.shared_argument is not None:
            #   the claimed sum: the shared argument's fractions summed over the rows
            claims[d] = _fraction_total(air, air.shared_argument, d, mname, traces, mine)
            air = air.with_claimed_sum(claims[d])
        airs.append(air)
        if air.aux_columns:
            aux = _build_aux(air, {seg.name: traces[mname(d, seg.name)] for seg in air.main_segments},
                             mine)                       # 4 base columns per aux column
            commit(mname(d, "aux"), aux, log_ms[d], proof_key, mname(d, "aux"))
    commit_round("aux")
    for d in sorted(claims):
        tr.absorb(b"claimed-sum", struct.pack("<4I", *claims[d].c))

    # 3 -- constraint quotients on each quotient domain ----------------------
    #   Q_d(x) = sum_t alpha^t C_t(x) (x - w^(N-1)) / (x^N - 1)     transitions, every row but the last
    #          + sum_e alpha^e C_e(x) / (x^N - 1)                     every-row transitions
    #          + sum_b alpha^(T+b) (col_b(x) - value_b) / (x - w^row_b)   boundaries
    #   over domain d's own constraints and N = N_d, one alpha for all.  Q_d has
    #   degree < k N (k chunks), so its values on 2^e N points, 2^e the
    #   smallest power of two >= k, determine it: the rows of D_d a multiple of
    #   2^(log_blowup - e) apart, which are the coset g * H_(2^e N)
    #   zk mode: k = max(2, d) chunks; where 2^e N exceeds D_d (degree 3 at
    #   blowup 2: 4N points) the committed polynomials are evaluated on the
    #   coset g * H_(2^e N) from their coefficients
    alpha = tr.challenge_ext()
    qs = []
    for d in names:
        air, n = airs[d], ns[d]
        w_n = root_of_unity(log_ns[d])
        qlb = quotient_log_blowup(air, zk)
        trace_mats = [mm for mm in layouts[d] if mm.is_trace]
        aux_name = mname(d, "aux")
        if qlb <= lb:
            m, skip, step, points = ms[d], 1 << (lb - qlb), blowup, xs[d]
            base_cols = [c for mm in trace_mats if mm.name != aux_name for c in lde[mm.name]]
            aux_cols = lde.get(aux_name, [])
            periodic = {name: periodic_on_lde(v, n, lb) for name, v in air.periodic_columns.items()}
        else:
            m, skip, step = n << qlb, 1, 1 << qlb
            w_q = root_of_unity(log_ns[d] + qlb)
            points = [COSET_SHIFT * pow(w_q, i, P) % P for i in range(m)]
            wider = {mm.name: [ntt(c + [0] * (m - len(c)), COSET_SHIFT) for c in coef[mm.name]]
                     for mm in trace_mats}
            base_cols = [c for mm in trace_mats if mm.name != aux_name for c in wider[mm.name]]
            aux_cols = wider.get(aux_name, [])
            periodic = {name: periodic_on_lde(v, n, qlb) for name, v in air.periodic_columns.items()}
        constants = air.constants(_mont_array(challenges[: air.num_challenges]))
        n_main = air.num_main_columns
        frame = Frame(air)
        transitions = PointEvaluator([c.expr for c in air.transition_constraints])
        bcons = air.boundary_constraints
        boundaries = PointEvaluator([frame.cur(b.column) - b.value for b in bcons])
        t_count = len(air.transition_constraints)
        every_row = [c.every_row for c in air.transition_constraints]
        powers = [Ext(1)]
        for _ in range(t_count + len(bcons)):
            powers.append(powers[-1] * alpha)
        last = pow(w_n, n - 1, P)
        b_points = [pow(w_n, b.row % n, P) for b in bcons]

        q: list[Ext] = []
        for i in range(0, m, skip):
            def variable(key, i=i):
                kind = key[0]
                if kind == TRACE:
                    col, is_next = key[1], key[2]
                    row = (i + step) % m if is_next else i
                    if col < n_main:
                        return base_cols[col][row]
                    a = 4 * (col - n_main)
                    return Ext(*(aux_cols[a + k][row] for k in range(4)))
                if kind == PERIODIC:
                    return periodic[key[1]][i]
                return constants(key)

            x = points[i]
            acc, every = Ext(0), Ext(0)
            for t, v in enumerate(transitions(variable)):
                if every_row[t]:
                    every = every + powers[t] * v
                else:
                    acc = acc + powers[t] * v
            value = (acc * (x - last) + every) * inv(pow(x, n, P) - 1)
            for b, v in enumerate(boundaries(variable)):
                value = value + powers[t_count + b] * v * inv(x - b_points[b])
            q.append(value)
        qs.append(q)

    # 4 -- quotient chunks, domain by domain ---------------------------------------
    #   interpolate Q_d on its quotient domain (coefficients, degree < k N), cut
    #   into k chunks of N coefficients, extend each chunk on D_d; chunk i is
    #   base columns 4i..4i+3
    #   zk mode: chunk i is Q_i - s_i + X^N s_(i+1) (s_0 = s_k = 0), s_i of
    #   degree < h_q from ["chunk-mask", matrix, i] (coefficient j of
    #   coordinate c: element 4 j + c), then R~'s four coordinates of degree
    #   < D_F at the domain's height from ["deep-mask", matrix]; all as M_d
    #   coefficients, extended on D_d, the leaves salted
    tall = log_ms.index(max(log_ms))
    heights = [log_ms[d] for d in names if d != tall]
    fri_arities, fri_final_degree, fri_joins = reference_schedule(options, ns[tall], log_ms[tall], heights)
    if zk:
        fri_arities, fri_final_degree = reference_zk_plan(
            options, fri_arities, max((ns[d] + max(h, hq)) << (log_ms[tall] - log_ms[d]) for d in names),
            log_ms[tall])
    for d in names:
        n, k, m = ns[d], quotient_chunks(airs[d], zk), ms[d]
        name = mname(d, "quotient")
        q_coeffs = [intt([v.c[c] for v in qs[d]], COSET_SHIFT) for c in range(4)]
        if not zk:
            cols = [q_coeffs[c][i * n: (i + 1) * n] for i in range(k) for c in range(4)]
        else:
            s_mask = {i: key_elements(proof_key, ["chunk-mask", name, i], 4 * hq) for i in range(1, k)}
            cols = []
            for i in range(k):
                for c in range(4):
                    col = q_coeffs[c][i * n: (i + 1) * n] + [0] * (m - n)
                    if i >= 1:
                        for j in range(hq):
                            col[j] = (col[j] - s_mask[i][4 * j + c]) % P
                    if i < k - 1:
                        for j in range(hq):
                            col[n + j] = s_mask[i + 1][4 * j + c]
                    cols.append(col)
            d_r = (fri_final_degree << sum(fri_arities)) >> (log_ms[tall] - log_ms[d])
            r = key_elements(proof_key, ["deep-mask", name], 4 * d_r)
            cols += [[r[4 * j + c] for j in range(d_r)] + [0] * (m - d_r) for c in range(4)]
            salts[name] = key_salts(proof_key, ["salts", name], m)
        columns[name] = coef[name] = cols
        lde[name] = [ntt(cc + [0] * (m - len(cc)), COSET_SHIFT) for cc in cols]
    commit_round("quotient")

    # 5 -- out-of-domain openings: one z for every domain ---------------------------
    z = tr.challenge_ext()
    if z.is_base():
        raise ValueError("out-of-domain point fell in the base field")
    ood_z: dict[str, list[Ext]] = {}
    ood_next: dict[str, list[Ext]] = {}
    #   an exported segment is also opened at the point its root alone selects
    links = {name: (link.z, list(link.values)) for name, link in external.items() if link is not None}
    for d in names:
        z_next = z * root_of_unity(log_ns[d])
        for mm in layouts[d]:
            coeffs = coef[mm.name]          # masked in zk mode
            ood_z[mm.name] = [horner(c, z) for c in coeffs]
            if mm.at_next:      # the columns some constraint reads on the next row
                ood_next[mm.name] = [horner(coeffs[c], z_next) for c in mm.next_columns]
        for mm in layouts[d]:
            tr.absorb_ints(b"ood-z", ext_words(ood_z[mm.name]))
            if mm.at_next:
                tr.absorb_ints(b"ood-next", ext_words(ood_next[mm.name]))
        for mm in layouts[d]:
            if mm.exported:
                point_tr = RefTranscript(b"zksidecar-link")
                point_tr.absorb(b"root", tree_of[mm.name].root)
                y = point_tr.challenge_ext()
                links[mm.name] = (y, [horner(c, y) for c in coef[mm.name]])
                tr.absorb_ints(b"link", ext_words(links[mm.name][1]))

    # 6 -- DEEP composition on each D_d ----------------------------------------------
    #   one coefficient per (column, point) of every domain, all drawn in one
    #   squeeze, domain by domain; within a domain in this order: every matrix
    #   at z, the columns read on the next row at w z (matrix by matrix, in
    #   column order), linked segments at their link points
    groups = []         # (domain, point y, [(matrix name, its columns, values at y)])
    for d in names:
        mats = layouts[d]
        z_next = z * root_of_unity(log_ns[d])
        groups.append((d, z, [(mm.name, range(mm.width), ood_z[mm.name]) for mm in mats]))
        groups.append((d, z_next, [(mm.name, mm.next_columns, ood_next[mm.name]) for mm in mats if mm.at_next]))
        for mm in mats:
            if mm.name in links:
                groups.append((d, links[mm.name][0], [(mm.name, range(mm.width), links[mm.name][1])]))
    gammas = iter(tr.challenge_exts(sum(len(values) for _, _, terms in groups for _, _, values in terms)))
    fs = []
    for d in names:
        deep_terms = []     # (point y, [(column values on D_d, gamma_k, value at y), ...])
        for dd, y, terms in groups:
            if dd != d:
                continue
            cols = []
            for name, columns, values in terms:
                group = [(lde[name][c], next(gammas), v) for c, v in zip(columns, values, strict=True)]
                if zk and name == mname(d, "quotient"):
                    # R~'s coordinates: one extension term, (g, g u, g u^2, g u^3)
                    g = group[-4][1]
                    group[-3:] = [(col, g * Ext(*(int(t == j) for t in range(4))), v)
                                  for j, (col, _, v) in zip((1, 2, 3), group[-3:])]
                cols += group
            deep_terms.append((y, cols))
        f: list[Ext] = []
        for i in range(ms[d]):
            total = Ext(0)
            for y, cols in deep_terms:
                num = Ext(0)
                for col, coeff, v in cols:
                    num = num + coeff * (col[i] - v)
                total = total + num * (xs[d][i] - y).inverse()        # num / (x - y)
            f.append(total)
        fs.append(f)

    # 7 -- FRI commit phase (reference_fri_commit) ------------------------------------
    #   the tall domain's f (the first of the largest height) is layer 0; every
    #   other domain's joins when the folding reaches its height
    #   (the plan: step 4's, zk mode's final degree holding N + h)
    fri_layers, fri_trees, final, fri_salts = reference_fri_commit(
        tr, bit_reverse_list(fs[tall]), options, log_ms[tall],
        [(log_ms[d], bit_reverse_list(fs[d])) for d in names if d != tall],
        (fri_arities, fri_final_degree, fri_joins), proof_key)

    # 8 -- proof of work ---------------------------------------------------------
    nonce = tr.grind(options.grinding_bits)

    # 9 -- queries -----------------------------------------------------------------
    #   positions index the tall domain's layer 0 (bit-reversed); domain d,
    #   2^s shorter, opens its LDE at natural row rev(j >> s), for the
    #   distinct j >> s in order (its leaf in its tree); each tree proves the
    #   distinct positions at its own tallest height.  FRI layer l opens leaf
    #   pos // (its arity), deduplicated.
    positions = tr.challenge_indices(options.num_queries, ms[tall])
    rows, row_proofs, row_salts = {}, {}, {}
    for d in names:
        s = log_ms[tall] - log_ms[d]
        leaves = sorted({p_ >> s for p_ in positions})
        rows_idx = [bit_reverse(j, log_ms[d]) for j in leaves]
        for mm in layouts[d]:
            rows[mm.name] = [[col[r] for col in lde[mm.name]] for r in rows_idx]
            if zk:
                row_salts[mm.name] = [salts[mm.name][j] for j in leaves]
    for t in tree_specs:
        s = log_ms[tall] - max(log_ms[d] for d, _ in t.matrices)
        row_proofs[t.name] = trees[t.name].open_batch(sorted({p_ >> s for p_ in positions}))
    fri_leaves, fri_proofs, fri_opened_salts = [], [], []
    pos = positions
    for layer, tree, log_arity, layer_salts in zip(fri_layers, fri_trees, fri_arities, fri_salts):
        fold = 1 << log_arity
        leaf_idx = sorted({p_ // fold for p_ in pos})
        fri_leaves.append([[layer[j * fold + t].c for t in range(fold)] for j in leaf_idx])
        fri_proofs.append(tree.open_batch(leaf_idx))
        if zk:
            fri_opened_salts.append([layer_salts[j] for j in leaf_idx])
        pos = leaf_idx

    # -- the Proof object (numpy arrays only here, to reuse proof.py's encoder) ----
    all_mats = [mm for mats in layouts for mm in mats]
    return _to_proof(options, tuple(log_ns), layouts, tree_specs, trees, ood_z, ood_next, fri_trees, final, nonce,
                     rows, row_proofs, fri_leaves, fri_proofs,
                     {mm.name: links[mm.name][1] for mm in all_mats if mm.exported},
                     {doms[d].name: claims[d] for d in sorted(claims)}, row_salts, fri_opened_salts)


def _fraction_total(air: Air, argument, d: int, mname, traces: dict, challenges: list[Ext]) -> Ext:
    """A LogUp argument's fractions summed over every row, each evaluated
    at its row in Python integers: sum_i sum_k m_k(i) / (alpha - compress_k(i))."""
    frame = Frame(air)
    parts = [p for g in argument.groups for p in argument._parts(frame, g)]
    evaluator = PointEvaluator([e for p in parts for e in p])
    cols = {}
    for seg in air.main_segments:
        rows_ = traces[mname(d, seg.name)].tolist()
        for j, c in enumerate(seg.columns):
            cols[air.column_index(c)] = [from_mont(r[j]) for r in rows_]
    constants = air.constants(_mont_array(challenges))
    total = Ext(0)
    for i in range(air.trace_length):
        def variable(key, i=i):
            if key[0] == TRACE:
                return cols[key[1]][i]
            if key[0] == PERIODIC:
                values = air.periodic_columns[key[1]]
                return values[i % len(values)] % P
            return constants(key)

        vals = evaluator(variable)
        for num, den in zip(vals[0::2], vals[1::2]):
            total = total + Ext.lift(num) * Ext.lift(den).inverse()
    return total


# ======================================================================= FRI ==

def reference_schedule(options: ProofOptions, degree_bound: int, log_m: int,
                       heights: list[int]) -> tuple[list[int], int, list[int]]:
    """(log2 arity of each layer, final degree bound, the layer each input
    joins) for a function of `degree_bound` on 2^log_m points and inputs on
    2^h points, h in `heights`: between two heights that differ by s, ceil(s/f)
    layers, the first folding by 2^(s - f (ceil(s/f) - 1)) and the rest by the
    folding factor 2^f, so every input height is a layer boundary; below the
    lowest, fold by 2^f while the degree bound is above the final bound and at
    least 2^f."""
    f = options.fri_folding_factor.bit_length() - 1
    log_blowup = log_m - (degree_bound.bit_length() - 1)
    arities, joins, cur = [], [0] * len(heights), log_m
    for h in sorted(set(heights), reverse=True):
        s = cur - h
        count = (s + f - 1) // f
        for layer in range(count):
            arities.append(s - f * (count - 1) if layer == 0 else f)
        cur = h
        joins = [len(arities) if hi == h else j for hi, j in zip(heights, joins)]
    degree = 2 ** (cur - log_blowup)
    while degree > options.fri_max_final_degree and degree >= 2 ** f:
        arities.append(f)
        degree //= 2 ** f
    return arities, degree, joins


def reference_zk_plan(options: ProofOptions, arities: list[int], need: int, log_m: int) -> tuple[list[int], int]:
    """zk mode's FRI plan from the transparent one's layers: the final
    degree ceil(need / 2^(folded bits)), need = max_d (N_d + max(h, h_q))
    2^s_d, and one fold more while it is over the options' bound and the
    folded vector still holds it."""
    f = options.fri_folding_factor.bit_length() - 1
    arities = list(arities)
    while True:
        folded = sum(arities)
        final = -(-need >> folded)
        if final <= options.fri_max_final_degree or -(-need >> (folded + f)) > 1 << (log_m - folded - f):
            return arities, final
        arities.append(f)


def reference_fri_commit(tr: RefTranscript, values: list, options: ProofOptions, log_m: int, inputs: list,
                         plan: tuple, salt_key: bytes | None = None):
    """The FRI commit phase.  Layer 0 is `values`: f in bit-reversed order, so
    position j holds f(g w_M^rev(j)).  `inputs` are (h, values on 2^h points,
    bit-reversed): each joins when the folding reaches 2^h points, as
    v <- v + gamma v_input with gamma drawn there.  Each layer is committed
    with its arity's consecutive values per leaf, then folded log2(arity)
    times with beta, beta^2, beta^4, ...:
        g(x^2) = (f(x) + f(-x)) / 2 + beta (f(x) - f(-x)) / (2x),  x at even position 2i
    `plan` is (log2 arities, final degree, joins) (reference_schedule's,
    with zk mode's final degree); with `salt_key` (zk mode) layer l's
    leaves are salted from ["fri-salts", l].  Returns (layers, trees,
    final coefficients, each layer's leaf salts or None)."""
    arities, final_degree, joins = plan
    shift, log_size = COSET_SHIFT, log_m
    inv2 = inv(2)
    layers, trees, layer_salts = [], [], []

    def join(layer, values):
        for (_, g), j in zip(inputs, joins):
            if j == layer:
                gamma = tr.challenge_ext()
                values = [v + gamma * gv for v, gv in zip(values, g)]
        return values

    for layer, log_arity in enumerate(arities):
        values = join(layer, values)
        fold = 2 ** log_arity
        leaves = len(values) // fold
        layer_salts.append(key_salts(salt_key, ["fri-salts", layer], leaves) if salt_key else None)
        tree = Tree.of_rows([ext_words(values[j * fold: (j + 1) * fold]) for j in range(leaves)], layer_salts[-1])
        tr.absorb(b"fri-layer", tree.root)
        beta = tr.challenge_ext()
        layers.append(values)
        trees.append(tree)
        for _step in range(log_arity):
            w = root_of_unity(log_size)
            folded = []
            for j in range(len(values) // 2):
                a, b = values[2 * j], values[2 * j + 1]
                x = shift * pow(w, bit_reverse(2 * j, log_size), P) % P
                folded.append((a + b) * inv2 + beta * (a - b) * inv(2 * x))
            values = folded
            beta = beta * beta
            shift, log_size = shift * shift % P, log_size - 1
    values = join(len(arities), values)
    # the final polynomial: interpolate the last vector on its coset, keep final_degree coefficients
    natural = bit_reverse_list(values)
    final_coeffs = [intt([v.c[c] for v in natural], shift) for c in range(4)]
    final = [Ext(*(final_coeffs[c][j] for c in range(4))) for j in range(final_degree)]
    tr.absorb_ints(b"fri-final", ext_words(final))
    return layers, trees, final, layer_salts


def _mont_array(challenges: list[Ext]):
    """Challenges as the AIR interface takes them: (k, 4) Montgomery numpy."""
    import numpy as np

    return np.array([[to_mont(c) for c in e.c] for e in challenges], dtype=np.uint32).reshape(-1, 4)


def _build_aux(air: Air, traces: dict, challenges: list[Ext]) -> list[list[int]]:
    """The AIR builds its auxiliary columns through its own interface
    (Montgomery numpy in and out), from its segments' traces by segment
    name; returned as 4 canonical base columns each."""
    import numpy as np

    n = air.trace_length
    main = {c: np.ascontiguousarray(traces[s.name][:, j])
            for s in air.main_segments for j, c in enumerate(s.columns)}
    aux = air.build_aux(main, _mont_array(challenges))
    assert aux.shape == (n, len(air.aux_columns), 4)
    return [[from_mont(aux[i][a][c]) for i in range(n)]
            for a in range(len(air.aux_columns)) for c in range(4)]


def _to_proof(options, log_ns, layouts, tree_specs, trees, ood_z, ood_next, fri_trees, final, nonce, rows,
              row_proofs, fri_leaves, fri_proofs, link_values, claims, row_salts, fri_salts) -> Proof:
    import numpy as np

    def u32(x, shape):
        return np.array(x, dtype=np.uint32).reshape(shape)

    def digests(ds):
        return np.frombuffer(b"".join(ds), dtype=np.uint8).reshape(len(ds), 32).copy()

    def salt_array(ss):
        return np.frombuffer(b"".join(ss), dtype=np.uint8).reshape(len(ss), 16).copy()

    mats = [mm for lay in layouts for mm in lay]
    return Proof(
        options=options, log_lengths=log_ns,
        roots={t.name: trees[t.name].root for t in tree_specs if not t.external},
        ood_z={mm.name: u32(ext_words(ood_z[mm.name]), (mm.width, 4)) for mm in mats},
        ood_next={name: u32(ext_words(v), (len(v), 4)) for name, v in ood_next.items()},
        fri_roots=[t.root for t in fri_trees], fri_final=u32(ext_words(final), (len(final), 4)),
        pow_nonce=nonce,
        rows={mm.name: u32(rows[mm.name], (len(rows[mm.name]), mm.width)) for mm in mats},
        row_proofs={name: digests(p) for name, p in row_proofs.items()},
        fri_leaves=[u32(lv, (len(lv), len(lv[0]), 4)) for lv in fri_leaves],
        fri_proofs=[digests(p) for p in fri_proofs],
        link_values={name: u32(ext_words(v), (len(v), 4)) for name, v in link_values.items()},
        claimed_sums={name: u32(list(t.c), (4,)) for name, t in claims.items()},
        row_salts={name: salt_array(v) for name, v in row_salts.items()},
        fri_salts=[salt_array(v) for v in fri_salts])

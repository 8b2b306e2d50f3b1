"""What prover and verifier must compute identically: the coset, the
transcript header, the DEEP coefficients and their order, periodic columns.

Kept in one place so the two sides cannot drift; everything else the verifier
does is its own (verify.py).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from . import extension as E
from . import field as F
from . import ntt
from .air import Air
from .ext_scalar import Ext
from .params import ProofOptions
from .proof import Matrix
from .statement import Statement
from .transcript import Transcript

#: D = g * <w_M>: the group generator keeps D disjoint from H = <w_N>
COSET_SHIFT = F.GENERATOR


@dataclass(frozen=True)
class Link:
    """What chains a segment from the proof that committed it to a later one:
    the point its root selects (link_point) and the segment's column values
    there (each column is one base-field polynomial; its value at the point
    is an extension element).  Both proofs open the segment at that point;
    docs/SECURITY.md explains why reusing a root needs it.  The link is a
    function of the table alone (SegmentCommitment.link), so a later proof
    never waits for the earlier one."""

    z: Ext
    values: list[Ext]

    def to_bytes(self) -> bytes:
        words = [c for v in [self.z, *self.values] for c in v.c]
        return struct.pack(f"<I{len(words)}I", len(self.values), *words)


def link_point(root: bytes) -> Ext:
    """The extension point a segment root selects: drawn from a transcript of
    the root alone, so it is fixed only once the table is committed, and it
    is the same for every proof that opens the segment.  A point in the base
    field (probability 2^-93) is refused by both sides."""
    tr = Transcript(b"zksidecar-link")
    tr.absorb(b"root", root)
    return Ext.from_mont(tr.challenge_ext(1)[0])


def absorb_header(tr: Transcript, statement: Statement, options: ProofOptions, links: dict) -> None:
    """The transcript's header.  A one-domain statement's is the single-AIR
    proof's: the AIR's name and shape, the options, the AIR's public bytes,
    the external segments' links (and the statement's own public bytes,
    if it was given any, after the AIR's).  With several domains: the
    statement's name; per domain its name, AIR, shape and public bytes
    (each its own framed message); the number of shared challenges; the
    options; the statement's public bytes (b"" if none); the external
    segments' links in domain order.  `links` by matrix name (None: no link).
    A zk-mode proof's header also says so, after the options (its mask
    degrees and FRI plan are functions of the options and heights)."""
    if statement.single:
        air = statement.domains[0].air
        tr.absorb(b"air", type(air).__name__.encode())
        tr.absorb(b"shape", struct.pack("<IIII", air.trace_length, air.num_main_columns,
                                        len(air.aux_columns), air.num_challenges))
    else:
        tr.absorb(b"statement", statement.name.encode())
        for dom in statement.domains:
            air = dom.air
            tr.absorb(b"domain", dom.name.encode())
            tr.absorb(b"air", type(air).__name__.encode())
            tr.absorb(b"shape", struct.pack("<IIII", air.trace_length, air.num_main_columns,
                                            len(air.aux_columns), air.num_challenges))
            tr.absorb(b"public", air.public_bytes())
        tr.absorb(b"challenges", struct.pack("<I", statement.num_challenges))
    tr.absorb(b"options", struct.pack("<BHBBI", options.log_blowup, options.num_queries,
                                      options.grinding_bits, options.fri_folding_factor,
                                      options.fri_max_final_degree))
    if options.zk:      # absent in transparent mode: its transcripts are as they were
        tr.absorb(b"mode", b"zk")
    if statement.single:
        tr.absorb(b"public", statement.domains[0].air.public_bytes())
    if not statement.single or statement.public is not None:
        tr.absorb(b"statement-public", statement.public or b"")
    for d, dom in enumerate(statement.domains):
        for seg in dom.air.main_segments:
            if seg.external:
                link = links.get(statement.matrix_name(d, seg.name))
                tr.absorb(b"link", link.to_bytes() if link is not None else b"")


def absorb_claimed_sum(tr: Transcript, value: Ext) -> None:
    """A domain's claimed sum, after every auxiliary root, before alpha."""
    tr.absorb(b"claimed-sum", struct.pack("<4I", *value.c))


def absorb_ood(tr: Transcript, mats: list[Matrix], ood_z: dict, ood_next: dict) -> None:
    """A domain's claimed values (Montgomery), matrix by matrix: at z
    ((width, 4)), then at w z the columns read on the next row
    ((len(next_columns), 4), for a matrix with any)."""
    for m in mats:
        tr.absorb_array(b"ood-z", ood_z[m.name])
        if m.at_next:
            tr.absorb_array(b"ood-next", ood_next[m.name])


def deep_term_count(mats: list[Matrix], links: dict[str, Link]) -> int:
    """How many DEEP terms a domain has: every column at z, the columns
    read on the next row at w z, linked segments' columns at their link points."""
    return (sum(m.width for m in mats) + sum(len(m.next_columns) for m in mats)
            + sum(m.width for m in mats if m.name in links))


def deep_coefficients(tr: Transcript, layouts: list[list[Matrix]], links: dict[str, Link],
                      zk: bool = False):
    """The DEEP coefficients, drawn from the transcript: one independent
    extension element per term (column, opening point) of every domain, all
    in one squeeze, domain by domain in domain order, and within a domain
    in this order: every matrix at z; the columns read on the next row at
    w z (Matrix.next_columns, matrix by matrix, in column order);
    linked segments (external with a link, and exported) at their link
    points, in layout order; a linked segment's group is named after it.
    Independent coefficients, not powers of one challenge: with powers, the
    batching error grows with the number of terms (249 for the order book
    at capacity 2^14 and 2^15 ops rows, 8 bits; docs/SECURITY.md).
    Returns, per domain, [(point, [(matrix name, coefficients (width, 4)
    Montgomery), ...]), ...]; at w z a matrix's are its next columns'.

    zk mode: R~'s four base coordinates (the quotient matrix's last four
    columns) are one extension term, so they take (gamma, gamma u, gamma u^2,
    gamma u^3), gamma the first of their four draws: independent
    coefficients per coordinate would be F_p-dependent with probability
    ~2^-31, and then R~ would not mask the DEEP function (docs/ZK.md 5.5)."""
    coeffs = tr.challenge_ext(sum(deep_term_count(mats, links) for mats in layouts))
    used = 0

    def take(width: int) -> np.ndarray:
        nonlocal used
        used += width
        return coeffs[used - width: used]

    out = []
    for mats in layouts:
        groups = [("z", [(m.name, take(m.width)) for m in mats]),
                  ("next", [(m.name, take(len(m.next_columns))) for m in mats if m.at_next])]
        for m in mats:
            if m.name in links:
                groups.append((m.name, [(m.name, take(m.width))]))
        if zk:
            quotient = groups[0][1][-1][1]          # the quotient matrix is each layout's last
            quotient[-3:] = E.mul(np.ascontiguousarray(np.repeat(quotient[-4:-3], 3, axis=0)),
                                  _U_POWERS)
        out.append(groups)
    return out


#: u, u^2, u^3 (Montgomery): R~ = R_0 + u R_1 + u^2 R_2 + u^3 R_3
_U_POWERS = np.array([Ext(0, 1, 0, 0).to_mont(), Ext(0, 0, 1, 0).to_mont(), Ext(0, 0, 0, 1).to_mont()],
                     dtype=np.uint32)


def zpowers(z: Ext, n: int) -> np.ndarray:
    """(n, 4) Montgomery: z^0 .. z^(n-1) (extension.powers)."""
    return E.powers(z.to_mont(), n)


def periodic_values_on_lde(air: Air, log_blowup: int) -> dict[str, np.ndarray]:
    """Each periodic column on D.  A column with period L is P(x) = R(x^(N/L))
    with R interpolating the L values on <w_L>; on D, x^(N/L) runs over the
    coset g^(N/L) * <w_(L * blowup)>, so R's extension there, tiled, is P on D."""
    n = air.trace_length
    out = {}
    for name, values in air.periodic_columns.items():
        period = len(values)
        vals = F.encode(np.asarray(values, dtype=np.int64))
        if period == 1:
            out[name] = np.full(n << log_blowup, vals[0], dtype=np.uint32)
            continue
        shift = pow(COSET_SHIFT, n // period, F.P)
        small = ntt.lde(vals, log_blowup, shift)
        out[name] = np.tile(small, n // period)
    return out


def periodic_value_at(values: list[int], n: int, z: Ext) -> Ext:
    """P(z) = R(z^(N/L)) for the verifier: interpolate R, then Horner."""
    period = len(values)
    coeffs = F.decode(ntt.intt(F.encode(np.asarray(values, dtype=np.int64)))) if period > 1 \
        else np.asarray(values)
    y = z ** (n // period)
    acc = Ext(0)
    for c in reversed([int(c) for c in coeffs]):
        acc = acc * y + c
    return acc

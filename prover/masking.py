"""Masked commitments of zk mode: f = t + Z_H r and salted leaves
(docs/ZK.md, sections 5.1, 5.2, 5.6 and 5.7).

A committed trace matrix of N rows is, column by column, the interpolant t
of its values on H = <w_N> (degree < N).  Masked, the prover commits

    f = t + Z_H r,        Z_H = X^N - 1,   r uniformly random of degree < h

instead: on H, f = t, so the constraints see the trace; off H, any h
linearly independent functionals of f are uniform whatever t is.  Each
leaf of the matrix's tree is salted with 16 bytes, so a sibling digest
tells nothing about an unopened row.

Everything random here comes from a key (prover/zk_keys.py: field_elements
for r, expand for the salts) and a label naming its use; no generator is
imported (tests/test_import_graph.py).  The label names the matrix the
mask is for; a chained state's, under its state key sigma_b, is
``[STATE_LABEL, table_digest]`` whatever the segment is called, the digest
being the table's own (zk_keys.table_digest), so batch b's exported
``post``/``final`` and batch b + 1's external ``pre``/``init`` derive the
same r and salts from the same sigma_b and the same table, and commit the
same polynomial under the same root, while one sigma_b given for two
different tables masks them independently.

On the LDE (D = g <w_M>, M = N 2^log_blowup, natural order) x^N takes
2^log_blowup values, periodically: x_i^N = c_b = g^N w_B^b, b = i mod B,
B the blowup.  So on the coset of rows b, f is the polynomial
t + (c_b - 1) r, of degree < N: the LDE kernel adds (c_b - 1) r to the
first h coefficients of coset b's copy before that coset's transform
(csrc/field/ntt.c, ``zk_lde_visit_masked``; merkle.lde_leaves' `mask`),
and f costs what t costs.  From f's coefficients (the transform's first
half) it can also fold f's values on a few small cosets on the way, which
zk mode's quotient reads (prove.SegmentCommitment.coset_values).

Values at a point z outside H (5.6): f(z) = t(z) + (z^N - 1) r(z).  The
prover's barycentric weights give t(z) from the trace's values on H as for
an unmasked matrix (prove.barycentric_weights; they interpolate the
degree < N part only), and :meth:`Mask.value_at` adds the mask's term from
its h coefficients; at w z the same, (w z)^N = z^N.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from . import extension as E
from . import field as F
from . import zk_keys
from .domain import zpowers
from .ext_scalar import Ext
from .merkle import SALT_BYTES, lde_leaves

#: the label of a chained state's mask and salts under its state key: the
#: same in the proof that exports the state and the one that reuses it
STATE_LABEL = "state"


class StateKey(NamedTuple):
    """A chained state's key sigma_b (zk_keys.state_key) with the digest
    of the table it masks (zk_keys.table_digest), which the mask's label
    holds (Mask.for_state).  They travel together because sigma_b is
    derived from that digest: whoever holds the key has hashed the table
    already, and it is not hashed again for the mask.  The digest must be
    the table's own (StateKey.of): with another table's, the commitment's
    mask is not the one a successor rebuilding it from the table derives."""

    key: bytes
    table_digest: bytes

    @classmethod
    def of(cls, key: bytes, table: np.ndarray) -> "StateKey":
        """`key` with the digest of `table` ((N, w) Montgomery)."""
        return cls(key, zk_keys.table_digest(table))


@dataclass(frozen=True, eq=False)
class Mask:
    """What masks one committed matrix of `width` columns: r's coefficients
    ``(h, width)`` Montgomery (row k is the coefficient of X^k, one column
    per committed column) and the salts of the matrix's leaves ``(M, 16)``
    uint8, salts[j] for leaf j (the LDE's row rev(j))."""

    coeffs: np.ndarray
    salts: np.ndarray

    @property
    def h(self) -> int:
        return self.coeffs.shape[0]

    @property
    def width(self) -> int:
        return self.coeffs.shape[1]

    @classmethod
    def derive(cls, key: bytes, label: zk_keys.Field, width: int, h: int, log_m: int) -> "Mask":
        """The mask of a matrix of `width` columns committed on 2^log_m LDE
        rows, from `key` and `label` (a matrix name, or a list of label
        fields): r's h * width coefficients are
        ``zk_keys.field_elements(key, ["mask", label], h * width)`` read row
        by row (coefficient k of column c is element k * width + c), and
        the salts ``zk_keys.expand(key, ["salts", label], 16 * 2^log_m)``,
        16 bytes per leaf in leaf order."""
        if not (isinstance(label, str) or isinstance(label, (list, tuple))) or not label:
            raise ValueError(f"a mask's label must be a non-empty string or list, got {label!r}")
        for name, value in (("width", width), ("h", h), ("log_m", log_m)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        coeffs = F.encode(zk_keys.field_elements(key, ["mask", label], h * width)).reshape(h, width)
        return cls(coeffs, leaf_salts(key, label, 1 << log_m))

    @classmethod
    def for_state(cls, state: StateKey, width: int, h: int, log_m: int) -> "Mask":
        """A chained state's mask for its table of `width` columns:
        :meth:`derive` under its state key sigma_b (``state.key``) with the
        label ``[STATE_LABEL, zk_keys.table_digest(table)]``
        (``state.table_digest``).  Both proofs that open the state hold the
        same table, so they derive the same mask (docs/ZK.md, 5.7); a state
        key given for two different tables masks them independently,
        whoever derived the key (review M2)."""
        return cls.derive(state.key, [STATE_LABEL, state.table_digest], width, h, log_m)

    @classmethod
    def public(cls, width: int, log_m: int) -> "Mask":
        """A public table's (a chain's first state) in zk mode: no mask
        and zero salts, so the verifier, who knows the table, commits it
        itself (docs/ZK.md 5.7)."""
        return cls(np.zeros((0, width), dtype=np.uint32), np.zeros((1 << log_m, SALT_BYTES), dtype=np.uint8))

    def value_at(self, point: Ext, n: int) -> np.ndarray:
        """(width, 4) Montgomery: the mask's term of f at `point`,
        (point^n - 1) r(point), for a trace of n rows."""
        if self.h == 0:
            return np.zeros((self.width, 4), dtype=np.uint32)
        r = E.sum_rows(np.ascontiguousarray(self.coeffs), _point_powers(point, self.h))
        return E.mul_scalar(r, (point ** n - 1).to_mont(), out=r)

    def commit_lde(self, trace: np.ndarray, log_blowup: int, shift: int,
                   cosets: Sequence[tuple[int, int, np.ndarray]] = ()) -> tuple[np.ndarray, np.ndarray]:
        """``(lde, leaves)`` of f = t + Z_H r, t the interpolant of `trace`
        ((N, width) Montgomery): f on D = shift <w_M> (natural order) and
        its salted leaf digests in bit-reversed order, in one pass
        (merkle.lde_leaves).  f has degree N + h - 1; the masked LDE takes
        h <= N (zk mode's h, check_zk_degrees, is at most N).  Each of
        `cosets`, ``(log_m, shift, out)``, receives f's values on the
        small coset shift <w_m> from the same pass."""
        n, width = trace.shape
        if width != self.width:
            raise ValueError(f"a mask of {self.width} columns for a matrix of {width}")
        m = n << log_blowup
        if self.salts.shape != (m, SALT_BYTES):
            raise ValueError(f"a mask with {self.salts.shape[0]} salts for an LDE of {m} rows")
        if self.h > n:
            raise ValueError(f"a mask of h = {self.h} rows on a trace of N = {n} rows: the masked LDE takes "
                             f"h <= N")
        return lde_leaves(trace, log_blowup, shift, salts=self.salts, mask=np.ascontiguousarray(self.coeffs),
                          cosets=cosets)


@functools.lru_cache(maxsize=8)
def _point_powers(point: Ext, h: int) -> np.ndarray:
    """point^0 .. point^(h-1), (h, 4) Montgomery (zpowers), read-only: a
    proof's masked matrices share h and the two points they are opened at
    (z, w z), so each is worked out once a proof, not once a matrix."""
    powers = zpowers(point, h)
    powers.flags.writeable = False
    return powers


def leaf_salts(key: bytes, label: zk_keys.Field, leaves: int) -> np.ndarray:
    """``(leaves, 16)`` uint8: the salts of a tree's leaves, in leaf order,
    ``zk_keys.expand(key, ["salts", label], 16 * leaves)``."""
    return zk_keys.expand_array(key, ["salts", label], SALT_BYTES * leaves).reshape(leaves, SALT_BYTES)


def fri_layer_salts(key: bytes, layer: int, leaves: int) -> np.ndarray:
    """FRI layer `layer`'s leaf salts, ``zk_keys.expand(key, ["fri-salts",
    layer], 16 * leaves)`` (a label no matrix's salts can have)."""
    return zk_keys.expand_array(key, ["fri-salts", layer], SALT_BYTES * leaves).reshape(leaves, SALT_BYTES)


def masked_quotient(coeffs: np.ndarray, n: int, chunks: int, m: int, key: bytes, label: str,
                    h_q: int, r_degree: int) -> np.ndarray:
    """The quotient matrix of zk mode as coefficients, ``(m, 4 chunks + 4)``
    Montgomery (rows: X^0 .. X^(m-1)), from Q's coefficients `coeffs`
    (``(>= chunks n, 4)``, Q = sum_i X^(i n) Q_i, deg Q_i < n):

    - chunk i is Q_i' = Q_i - s_i + X^n s_(i+1) (s_0 = s_chunks = 0), with
      s_1 .. s_(chunks-1) uniformly random extension polynomials of degree
      < h_q, ``zk_keys.field_elements(key, ["chunk-mask", label, i], 4 h_q)``
      row by row: sum_i X^(i n) Q_i' = Q, and at every revealed point all
      but one chunk's value is uniform (docs/ZK.md 5.4);
    - the last four columns are R~'s base coordinates, uniformly random of
      degree < `r_degree` (D_F at this domain's height),
      ``zk_keys.field_elements(key, ["deep-mask", label], 4 r_degree)``
      row by row (5.5)."""
    if n + h_q > m or r_degree > m:
        raise ValueError(f"masked chunks of degree < {n + h_q} and R~ of degree < {r_degree} "
                         f"do not fit {m} rows")
    out = np.zeros((m, 4 * chunks + 4), dtype=np.uint32)
    masks = [None] + [F.encode(zk_keys.field_elements(key, ["chunk-mask", label, i], 4 * h_q)).reshape(h_q, 4)
                      for i in range(1, chunks)]
    for i in range(chunks):
        block = out[:, 4 * i: 4 * i + 4]
        block[:n] = coeffs[i * n: (i + 1) * n]
        if i >= 1:
            block[:h_q] = F.sub(np.ascontiguousarray(block[:h_q]), masks[i])
        if i < chunks - 1:
            block[n: n + h_q] = masks[i + 1]
    out[:r_degree, 4 * chunks:] = F.encode(
        zk_keys.field_elements(key, ["deep-mask", label], 4 * r_degree)).reshape(r_degree, 4)
    return out


def commit_quotient(chunks: np.ndarray, degree: int, shift: int,
                    salts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(lde, leaves)`` of zk mode's quotient matrix from its coefficients
    `chunks` (``(m, cols)`` from :func:`masked_quotient`, every row from
    `degree` <= m on zero): its values on D = shift <w_m> (natural order) and
    their leaf digests salted with `salts`, in bit-reversed order, in one
    pass of the fused LDE-and-hash kernel (merkle.lde_leaves): the words
    of ``ntt.coset_ntt(chunks, shift)`` and of hashing its bit-reversed
    rows, without the bit-reversed copy and the second pass over it.  With
    K = m / 2, the polynomial f is t + (X^K - 1) r, r = f div (X^K - 1)
    (coefficient rows K .. degree - 1: h = degree - K <= K rows) and
    t = f mod (X^K - 1) (rows 0 .. K - 1, r added to the first h): what the
    masked LDE of blowup 2 commits from t's coefficients with r as its
    mask (csrc/field/ntt.c, zk_lde_visit_masked)."""
    m = chunks.shape[0]
    if m < 2 or not 0 <= degree <= m:
        raise ValueError(f"a quotient matrix of {m} rows and degree < {degree}: the rows must hold the degree")
    k = m // 2
    h = max(degree - k, 0)
    r = np.ascontiguousarray(chunks[k: k + h])
    t = chunks[:k].copy()
    t[:h] = F.add(t[:h], r)
    return lde_leaves(t, 1, shift, from_coeffs=True, salts=salts, mask=r)

"""Test helpers for the hiding tests of docs/ZK.md section 12 (tests/
test_zk_mode.py on the example AIRs, tests/test_zk_hiding.py and
tests/test_zk_broken_modes.py on the order book): two-sample statistics,
every kind of value a proof reveals, the counts a proof's length depends
on, repeated salts, what the verifier computes from a proof (its view, as
a distinguisher holds it), exact linear algebra over F_p, and the linear
system a masked matrix's revealed values put on its mask (12.(a2)'s mask
consistency).

The statistics are deterministic given their samples; the tests draw them
from proofs under keys from fixed master seeds, so a run that passes
always passes."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from zksidecar.prover import extension as E
from zksidecar.prover import field as F
from zksidecar.prover import fri, ntt
from zksidecar.prover import verify as V
from zksidecar.prover.domain import zpowers
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.proof import Proof
from zksidecar.prover.prove import COSET_SHIFT


def _ks_p(d: float, ne: float) -> float:
    """Kolmogorov's asymptotic p-value of distance d at effective size ne."""
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    if lam < 0.2:
        return 1.0
    return max(0.0, min(1.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))))


def ks_two_sample(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(a), np.sort(b)
    allv = np.concatenate([a, b])
    d = np.max(np.abs(np.searchsorted(a, allv, side="right") / a.size
                      - np.searchsorted(b, allv, side="right") / b.size))
    return _ks_p(float(d), a.size * b.size / (a.size + b.size))


def ks_uniform(a: np.ndarray) -> float:
    a = np.sort(a)
    n = a.size
    d = max(np.max(np.arange(1, n + 1) / n - a), np.max(a - np.arange(n) / n))
    return _ks_p(float(d), n)


def chi2_uniform(a: np.ndarray, bins: int = 16) -> float:
    """Goodness of fit of a sample of [0, 1) to the uniform distribution
    over `bins` equal bins: the chi-square statistic's p-value (Wilson-
    Hilferty, as chi2_two_sample)."""
    counts = np.bincount(np.minimum((np.asarray(a) * bins).astype(int), bins - 1), minlength=bins).astype(float)
    expected = counts.sum() / bins
    x2 = float(np.sum((counts - expected) ** 2) / expected)
    df = bins - 1
    z = ((x2 / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
    return 0.5 * math.erfc(z / math.sqrt(2))


def chi2_two_sample(a: np.ndarray, b: np.ndarray, bins: int = 64) -> float:
    """Homogeneity of two samples over `bins` equal bins of [0, 1): the
    chi-square statistic, its p-value by the Wilson-Hilferty approximation."""
    ca = np.bincount(np.minimum((a * bins).astype(int), bins - 1), minlength=bins).astype(float)
    cb = np.bincount(np.minimum((b * bins).astype(int), bins - 1), minlength=bins).astype(float)
    ka, kb = math.sqrt(cb.sum() / ca.sum()), math.sqrt(ca.sum() / cb.sum())
    used = (ca + cb) > 0
    x2 = float(np.sum((ka * ca[used] - kb * cb[used]) ** 2 / (ca[used] + cb[used])))
    df = int(used.sum()) - 1
    if df < 1:
        return 0.0
    z = ((x2 / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
    return 0.5 * math.erfc(z / math.sqrt(2))


def revealed_kinds(proof: Proof) -> dict[str, np.ndarray]:
    """Every kind of value a proof reveals, as v / p (bytes as v / 256):
    each matrix's values at z and at w z, its opened rows, each exported
    segment's values at the link point, each domain's claimed sum, each FRI
    layer's opened values, the final polynomial, the salts of the opened
    rows and FRI leaves."""
    kinds = {}
    for name in proof.ood_z:
        kinds[f"{name} at z"] = proof.ood_z[name]
    for name in proof.ood_next:
        kinds[f"{name} at w z"] = proof.ood_next[name]
    for name in proof.rows:
        kinds[f"{name} rows"] = proof.rows[name]
    for name in proof.link_values:
        kinds[f"{name} at the link point"] = proof.link_values[name]
    for name in proof.claimed_sums:
        kinds[f"{name}'s claimed sum"] = proof.claimed_sums[name]
    for layer, leaves in enumerate(proof.fri_leaves):
        kinds[f"FRI layer {layer}"] = leaves
    kinds["FRI final"] = proof.fri_final
    salts = [s.ravel() for s in proof.row_salts.values()] + [s.ravel() for s in proof.fri_salts]
    kinds["salts"] = np.concatenate(salts) if salts else np.zeros(0)
    return {k: np.asarray(v, dtype=np.float64).ravel() / (256.0 if k == "salts" else F.P)
            for k, v in kinds.items()}


def distinguished_kinds(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]],
                        alpha: float = 0.001) -> list[str]:
    """Docs/ZK.md 12.(a1): the kinds whose samples (one dict of kinds per
    proof, revealed_kinds's) the two-sample Kolmogorov-Smirnov test or the
    chi-square test on 64 bins tells apart between `a` and `b`, Bonferroni
    over the kinds and the two tests at family-wise `alpha`.  A kind
    neither side reveals is skipped; one only one side reveals counts as
    told apart."""
    kinds = sorted(set(a[0]) | set(b[0]))
    level = alpha / (2 * len(kinds))
    failed = []
    for kind in kinds:
        if kind not in a[0] or kind not in b[0]:
            failed.append(kind)
            continue
        x = np.concatenate([s[kind] for s in a])
        y = np.concatenate([s[kind] for s in b])
        if x.size == 0 and y.size == 0:
            continue
        if x.size == 0 or y.size == 0 or ks_two_sample(x, y) < level or chi2_two_sample(x, y) < level:
            failed.append(kind)
    return failed


def repeated_salts(proof: Proof, public: tuple = ()) -> int:
    """How many of the 16-byte salts a proof opens (every matrix's opened
    rows', every FRI layer's opened leaves') repeat one opened before: a
    salt drawn uniformly repeats with probability ~n^2 / 2^129, so any
    repeat is two leaves salted alike (ZK.md 5.1: a sibling digest whose
    salt another opening reveals can be tested against guesses).  The
    matrices named in `public` are left out: a public table's tree (a
    chain's first state) has zero salts by design (ZK.md 5.7)."""
    salts = [s for name, s in proof.row_salts.items() if name not in public] + list(proof.fri_salts)
    flat = np.concatenate([np.asarray(s, dtype=np.uint8).reshape(-1, 16) for s in salts])
    return len(flat) - len(np.unique(flat, axis=0))


def layout_counts(proof: Proof) -> tuple:
    """The counts a proof's length depends on that vary from proof to
    proof, all functions of the query positions: the distinct opened rows,
    each FRI layer's opened leaves, and each batch Merkle proof's sibling
    count (positions that share a subtree share siblings)."""
    return (tuple(rows.shape[0] for rows in proof.rows.values()),
            tuple(leaves.shape[0] for leaves in proof.fri_leaves),
            tuple(len(p) for p in proof.row_proofs.values()), tuple(len(p) for p in proof.fri_proofs))


# ------------------------------------------------- exact linear algebra --

def fp_reduce(m: np.ndarray, pivot_columns: int) -> tuple[np.ndarray, int]:
    """Gauss-Jordan elimination of `m` over F_p (canonical integers),
    pivoting in its first `pivot_columns` columns only: (the reduced
    matrix, the rank of those columns).  Rows from the rank on are zero in
    those columns."""
    m = np.array(m, dtype=np.int64) % F.P
    rank = 0
    for c in range(pivot_columns):
        if rank == m.shape[0]:
            break
        nonzero = np.flatnonzero(m[rank:, c])
        if nonzero.size == 0:
            continue
        r = rank + int(nonzero[0])
        m[[rank, r]] = m[[r, rank]]
        m[rank] = m[rank] * pow(int(m[rank, c]), F.P - 2, F.P) % F.P
        others = np.flatnonzero(m[:, c])
        others = others[others != rank]
        m[others] = (m[others] - np.outer(m[others, c], m[rank]) % F.P) % F.P
        rank += 1
    return m, rank


def fp_rank(m: np.ndarray) -> int:
    """The rank of `m` over F_p."""
    m = np.asarray(m)
    return fp_reduce(m, m.shape[1])[1] if m.size else 0


def fp_solvable(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each column of `b` ``(m, k)``: does a r = b[:, c] have a solution
    r over F_p (`a` ``(m, h)``)?  One elimination of [a | b]."""
    h = a.shape[1]
    reduced, rank = fp_reduce(np.concatenate([a, b], axis=1), h)
    return ~reduced[rank:, h:].any(axis=0)


# ------------------------------------------- what the verifier computes --

@dataclass
class VerifierView:
    """What a verifier computes from a proof's public messages and a
    distinguisher may use: the out-of-domain point z, the query positions
    (on the tall domain), each domain's LDE size (log2), the tall domain,
    the blowup (log2) and the DEEP coefficients (domain.deep_coefficients'
    groups, Montgomery)."""

    z: Ext
    positions: np.ndarray
    log_ms: list
    tall: int
    log_blowup: int
    deep: list

    def rows_at(self, d: int) -> np.ndarray:
        """Domain d's opened LDE points (canonical), in the order of the
        proof's rows of its matrices."""
        pos = fri.input_positions(self.positions, self.log_ms[self.tall], self.log_ms[d])
        return F.decode(fri.query_points(self.log_ms[d], COSET_SHIFT, pos)).astype(np.int64)

    def next_point(self, d: int) -> Ext:
        """w z on domain d (w its rows' generator)."""
        return self.z * F.two_adic_generator(self.log_ms[d] - self.log_blowup)


def verifier_view(proof: Proof, run_verifier: Callable[[], object]) -> VerifierView:
    """Run `run_verifier` (a call that verifies `proof`) and record what
    prover/verify.py computes on the way: the view of anyone who holds the
    proof (the verifier's own replay of the transcript, read where it is
    computed rather than computed again)."""
    seen = {}
    ood, openings, deep = V.check_ood, V.check_openings, V.deep_coefficients

    def record_ood(air, mats, proof, challenges, alpha, z, *args, **kw):
        seen["z"] = z
        return ood(air, mats, proof, challenges, alpha, z, *args, **kw)

    def record_openings(layouts, trees, tree_roots, positions, log_ms, tall, *args, **kw):
        seen.update(positions=np.array(positions), log_ms=list(log_ms), tall=tall)
        return openings(layouts, trees, tree_roots, positions, log_ms, tall, *args, **kw)

    def record_deep(*args, **kw):
        seen["deep"] = deep(*args, **kw)
        return seen["deep"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(V, "check_ood", record_ood)
        mp.setattr(V, "check_openings", record_openings)
        mp.setattr(V, "deep_coefficients", record_deep)
        run_verifier()
    return VerifierView(seen["z"], seen["positions"], seen["log_ms"], seen["tall"], proof.options.log_blowup,
                        seen["deep"])


# ------------------------------------------------------ mask consistency --

def mask_system(opened: list, trace: np.ndarray, h: int) -> list[tuple[tuple[int, ...], np.ndarray, np.ndarray]]:
    """docs/ZK.md 12.(a2), mask consistency: the linear systems ``a r = b``
    that the masks r (degree < h, one per column) of a committed matrix
    satisfy if it is f = t + Z_H r, t the interpolant of `trace` (``(N, w)``
    Montgomery: a candidate's matrix), given f's revealed values `opened`:
    (point, values) pairs, a base point (canonical int) with its opened row
    (``(w,)`` canonical) or an extension point (Ext) with ``(w, 4)``
    canonical values, or (point, values, columns) for a point revealing
    only those columns (values ``(len(columns), 4)``: w z, where a proof
    opens the columns read on the next row).  At every point r(x) = (f(x)
    - t(x)) / (x^N - 1): one equation over F_p at a base point, four (one
    per coordinate) at an extension point.  Returns, for each set of
    columns revealed at the same points, ``(columns, a (m, h), b (m,
    len(columns)))`` canonical, column j of b for columns[j]'s mask."""
    n, w = trace.shape
    coeffs = ntt.intt(np.ascontiguousarray(trace))
    rows_a, rows_b, seen = [], [], []      # seen: the columns each equation covers
    for entry in opened:
        point, values = entry[0], entry[1]
        cols = tuple(entry[2]) if len(entry) > 2 else tuple(range(w))
        x = point if isinstance(point, Ext) else Ext(int(point))
        t = F.decode(E.sum_rows(coeffs, zpowers(x, n))).astype(np.int64)
        vals = np.asarray(values, dtype=np.int64).reshape(len(cols), -1)
        f = np.zeros_like(t)            # the columns not revealed here: unused below
        f[list(cols), :vals.shape[1]] = vals
        diff = F.encode((f - t) % F.P)
        r = F.decode(E.mul_scalar(diff, (x ** n - 1).inverse().to_mont())).astype(np.int64)
        powers = F.decode(zpowers(x, h)).astype(np.int64) if h else np.zeros((0, 4), dtype=np.int64)
        for j in range(4 if isinstance(point, Ext) else 1):
            rows_a.append(powers[:, j])
            rows_b.append(r[:, j])
            seen.append(frozenset(cols))
    a_all = np.array(rows_a, dtype=np.int64).reshape(len(rows_a), h)
    b_all = np.array(rows_b, dtype=np.int64).reshape(len(rows_b), w)
    patterns: dict[tuple[int, ...], list[int]] = {}
    for c in range(w):
        patterns.setdefault(tuple(i for i, cs in enumerate(seen) if c in cs), []).append(c)
    return [(tuple(cols), a_all[list(eqs)], b_all[np.ix_(list(eqs), cols)]) for eqs, cols in patterns.items()]

"""Test helpers for the hiding tests of docs/ZK.md section 12 (tests/
test_zk_mode.py on the example AIRs, tests/test_zk_hiding.py on the order
book): two-sample statistics, every kind of value a proof reveals, and the
counts a proof's length depends on.

The statistics are deterministic given their samples; the tests draw them
from proofs under keys from fixed master seeds, so a run that passes
always passes."""
from __future__ import annotations

import math

import numpy as np

from zksidecar.prover import field as F
from zksidecar.prover.proof import Proof


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


def layout_counts(proof: Proof) -> tuple:
    """The counts a proof's length depends on that vary from proof to
    proof, all functions of the query positions: the distinct opened rows,
    each FRI layer's opened leaves, and each batch Merkle proof's sibling
    count (positions that share a subtree share siblings)."""
    return (tuple(rows.shape[0] for rows in proof.rows.values()),
            tuple(leaves.shape[0] for leaves in proof.fri_leaves),
            tuple(len(p) for p in proof.row_proofs.values()), tuple(len(p) for p in proof.fri_proofs))

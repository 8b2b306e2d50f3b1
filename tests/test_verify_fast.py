"""The verifier's fast paths against the plain definitions they replace
(docs/BENCHMARKS.md, order-book verification): the constraint quotient at z
by the compiled program and by Python integers, on honest and tampered
claims; the public LogUp sum in C and table by table; the FRI query points
and folds; the batch Merkle walk; single extension elements in Python
against the kernels.  The references below marked so are the previous
implementations, kept here as oracles."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import test_orderbook_air as ob
from zksidecar.engine.book import Book
from zksidecar.prover import extension as E
from zksidecar.prover import field as F
from zksidecar.prover import fri
from zksidecar.prover import verify as V
from zksidecar.prover.examples.range_check import range_check_instance
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.merkle import MerkleTree, compress_pairs
from zksidecar.prover.merkle_batch import open_batch, sibling_positions, verify_batch
from zksidecar.prover.orderbook import air as air_mod
from zksidecar.prover.orderbook import prove_batch
from zksidecar.prover.orderbook.batch import check_public
from zksidecar.prover.prove import prove

P = F.P
elements = st.tuples(*[st.integers(0, P - 1)] * 4)


# ------------------------------------------------ the quotient at z --

class _Stop(Exception):
    pass


def _ood_args(monkeypatch, air, proof, external):
    """What verify() hands check_ood for this proof's last domain (the
    order book's `ops`; the one domain of an AIR)."""
    seen = []
    with monkeypatch.context() as m:
        m.setattr(V, "check_ood", lambda *args: seen.append(args))
        V.verify(air, proof, external, min_security=0)
    return seen[-1]


def _orderbook_proof():
    book = Book(32)
    ops = ob.random_ops(60, 5, 32)
    bp, _, _ = prove_batch(book, ops, ob.OPTS)
    return bp.public.statement(), bp.proof, {"book.pre": (bp.public.pre_root, bp.public.pre_link)}


def _range_check_proof():
    """Periodic columns (read at the next row too) and LogUp columns."""
    air, traces = range_check_instance(64, bits=4, lanes=2, seed=3)
    return air, prove(air, traces, ob.OPTS).proof, {}


@pytest.mark.parametrize("make", [_orderbook_proof, _range_check_proof])
def test_compiled_quotient_at_z_equals_the_python_one(monkeypatch, make):
    air, proof, external = make()
    args = _ood_args(monkeypatch, air, proof, external)
    fast = V.ood_quotient(*args, compiled=True)
    assert fast == V.ood_quotient(*args, compiled=False)
    V.check_ood(*args, compiled=True)
    V.check_ood(*args, compiled=False)

    # a claimed value at z changed (a main column; a component of an
    # auxiliary column, in one coefficient): both compute the same wrong
    # quotient, and both reject
    rng = np.random.default_rng(0)
    ops = "ops." if "ops.exec" in proof.ood_z else ""
    for matrix, k in (("ops.exec" if ops else "main", 0), (ops + "aux", 2)):
        bad = copy.deepcopy(proof)
        values = bad.ood_z[matrix]
        j = int(rng.integers(0, values.shape[0]))
        values[j, k] = (int(values[j, k]) + 1) % P
        bad_args = (args[0], args[1], bad) + args[3:]
        tampered = V.ood_quotient(*bad_args, compiled=True)
        assert tampered == V.ood_quotient(*bad_args, compiled=False)
        assert tampered != fast
        for compiled in (True, False):
            with pytest.raises(V.VerificationError, match="out-of-domain"):
                V.check_ood(*bad_args, compiled=compiled)


def test_a_tampered_order_book_proof_is_rejected_by_verify(monkeypatch):
    """End to end: a quotient claim changed after the fact fails verify()
    at the constraint check, the first check it reaches."""
    air, proof, external = _orderbook_proof()
    bad = copy.deepcopy(proof)
    bad.ood_z["ops.quotient"][0, 0] = (int(bad.ood_z["ops.quotient"][0, 0]) + 1) % P
    with pytest.raises(V.VerificationError, match="out-of-domain"):
        V.verify(air, bad, external, min_security=0)


# ------------------------------------------------ the public LogUp sum --

@pytest.mark.parametrize("with_trades", [True, False])
def test_public_sum_equals_the_table_by_table_sum(with_trades):
    rng = np.random.default_rng(11)
    tables = [rng.integers(0, P, (50, 10)), rng.integers(0, P, (40, 8)),
              rng.integers(0, P, (30 if with_trades else 0, 9))]
    alpha = F.encode(rng.integers(0, P, 4).astype(np.uint32))
    coeffs = F.encode(rng.integers(0, P, (10, 4)).astype(np.uint32))
    coeffs[0] = Ext(1).to_mont()
    ref = np.zeros(4, dtype=np.uint32)
    for t in tables:
        ref = F.add(ref, air_mod._table_sum(t, alpha, coeffs))
    assert np.array_equal(air_mod._public_sum(tables, alpha, coeffs), ref)


def test_public_sum_of_a_real_batch():
    air = _orderbook_proof()[0].ops
    chal = F.encode(np.random.default_rng(2).integers(0, P, (air.num_challenges, 4)).astype(np.uint32))
    ref = np.zeros(4, dtype=np.uint32)
    for t in air.tables:
        ref = F.add(ref, air_mod._table_sum(t, chal[0], air.lu.compression_coefficients(chal)))
    assert air.public_sum(chal) == Ext.from_mont(ref)


def test_tables_from_the_plain_checks_classification_are_the_same():
    """verify_batch hands check_public's classification to the AIR."""
    book = Book(32)
    bp, _, _ = prove_batch(book, ob.random_ops(60, 6, 32), ob.OPTS)
    shared = bp.public.air(check_public(bp.public)).tables
    for a, b in zip(shared, bp.public.air().tables):
        assert np.array_equal(a, b)


# ------------------------------------------------------------- FRI --

def _reference_fold_queries(leaves, leaf_idx, log_m, shift, beta, factor):
    """Reference: fri.fold_queries before the per-leaf points."""
    vals, b, width = leaves, beta, factor
    while width > 1:
        k = vals.shape[0]
        pairs = vals.reshape(k, width // 2, 2, 4)
        a = np.ascontiguousarray(pairs[:, :, 0]).reshape(-1, 4)
        c = np.ascontiguousarray(pairs[:, :, 1]).reshape(-1, 4)
        pos = (leaf_idx[:, None] * width + 2 * np.arange(width // 2)[None, :]).ravel()
        x = fri.points(log_m, shift, pos)
        inv_2x = F.inv(F.add(x, x))
        even = F.mul_scalar(F.add(a, c), fri.INV2)
        odd = E.mul_scalar(E.mul_base(F.sub(a, c), inv_2x), b)
        vals = F.add(even, odd).reshape(k, width // 2, 4)
        b = E.mul(b.reshape(1, 4), b.reshape(1, 4))[0]
        shift, log_m, width = shift * shift % P, log_m - 1, width // 2
    return vals.reshape(-1, 4)


@pytest.mark.parametrize("factor", [2, 4, 8, 16])
@pytest.mark.parametrize("log_m", [5, 12, 18])
def test_fold_queries_equals_the_reference(factor, log_m):
    rng = np.random.default_rng(factor * 100 + log_m)
    idx = np.unique(rng.integers(0, 1 << (log_m - factor.bit_length() + 1), 30))
    leaves = F.encode(rng.integers(0, P, (idx.size, factor, 4)).astype(np.uint32))
    beta = F.encode(rng.integers(0, P, 4).astype(np.uint32))
    for shift in (31, 7):
        assert np.array_equal(fri.fold_queries(leaves, idx, log_m, shift, beta, factor),
                              _reference_fold_queries(leaves, idx, log_m, shift, beta, factor))


@pytest.mark.parametrize("log_m", [0, 1, 4, 7, 8, 9, 16, 18, 24, 27])
def test_query_points_equal_points(log_m):
    pos = np.unique(np.random.default_rng(log_m).integers(0, 1 << log_m, 50))
    for shift in (1, 31, 123456):
        assert np.array_equal(fri.query_points(log_m, shift, pos), fri.points(log_m, shift, pos))


# ---------------------------------------------------------- Merkle --

def _groups(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: for sorted distinct indices of one level, the position of
    the first node of each parent group, and whether that group has both
    children."""
    n = idx.size
    pair_next = np.zeros(n, dtype=bool)
    if n > 1:
        pair_next[:-1] = ((idx[:-1] & 1) == 0) & (idx[1:] == idx[:-1] + 1)
    starts = np.ones(n, dtype=bool)
    starts[1:] = ~pair_next[:-1]
    first = np.flatnonzero(starts)
    return first, pair_next[first]


def _reference_sibling_positions(rows: int, indices) -> np.ndarray:
    """Reference: merkle_batch.sibling_positions walked level by level."""
    idx = np.asarray(indices, dtype=np.int64)
    out = []
    for level in range(rows.bit_length() - 1):
        first, paired = _groups(idx)
        out.append((rows >> level) + (idx[first[~paired]] ^ 1))
        idx = idx[first] >> 1
    return np.concatenate(out) if out else np.empty(0, np.int64)


@settings(max_examples=200, deadline=None)
@given(depth=st.integers(0, 10), data=st.data())
def test_sibling_positions_agree_with_the_level_walk(depth, data):
    rows = 1 << depth
    idx = sorted(data.draw(st.sets(st.integers(0, rows - 1), max_size=rows)))
    got = sibling_positions(rows, np.array(idx, dtype=np.int64))
    want = _reference_sibling_positions(rows, idx)
    assert got.dtype == want.dtype and np.array_equal(got, want)


def _reference_verify_batch(root, depth, indices, leaves, proof) -> bool:
    """Reference: merkle_batch.verify_batch before the slot placement."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0 or idx.size != len(leaves):
        return False
    if (np.diff(idx) <= 0).any() or idx[0] < 0 or idx[-1] >= 1 << depth:
        return False
    nodes = np.ascontiguousarray(leaves, dtype=np.uint8)
    used = 0
    for _ in range(depth):
        first, paired = _groups(idx)
        lone = first[~paired]
        if used + lone.size > len(proof):
            return False
        pairs = np.empty((first.size, 2, 32), dtype=np.uint8)
        both = first[paired]
        pairs[paired, 0] = nodes[both]
        pairs[paired, 1] = nodes[both + 1]
        sib = proof[used: used + lone.size]
        used += lone.size
        is_left = (idx[lone] & 1) == 0
        single = np.flatnonzero(~paired)
        pairs[single[is_left], 0] = nodes[lone[is_left]]
        pairs[single[is_left], 1] = sib[is_left]
        pairs[single[~is_left], 0] = sib[~is_left]
        pairs[single[~is_left], 1] = nodes[lone[~is_left]]
        nodes = compress_pairs(pairs.reshape(first.size, 64))
        idx = idx[first] >> 1
    return used == len(proof) and nodes.shape[0] == 1 and nodes[0].tobytes() == root


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(0, 7), data=st.data())
def test_batch_merkle_walk_agrees_with_the_reference(depth, data):
    rows = 1 << depth
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    tree = MerkleTree(F.encode(rng.integers(0, P, (rows, 3)).astype(np.uint32)))
    idx = np.array(sorted(data.draw(st.sets(st.integers(0, rows - 1), min_size=1))), dtype=np.int64)
    leaves = tree.nodes[rows + idx].copy()
    proof = open_batch(tree, idx)
    cases = [(idx, leaves, proof)]
    if len(proof):
        bad = proof.copy()
        bad[data.draw(st.integers(0, len(proof) - 1)), 0] ^= 1
        cases += [(idx, leaves, bad), (idx, leaves, proof[:-1]),
                  (idx, leaves, np.concatenate([proof, proof[:1]]))]
    bad_leaves = leaves.copy()
    bad_leaves[0, 5] ^= 0x80
    cases.append((idx, bad_leaves, proof))
    if idx.size > 1:
        cases.append((idx[::-1].copy(), leaves, proof))
    for i, lv, pf in cases:
        assert verify_batch(tree.root, depth, i, lv, pf) == _reference_verify_batch(tree.root, depth, i, lv, pf)
    assert verify_batch(tree.root, depth, idx, leaves, proof)


# ------------------------------------------- one extension element --

@settings(max_examples=200, deadline=None)
@given(a=elements, b=elements)
def test_python_extension_arithmetic_matches_the_kernels(a, b):
    x, y = Ext(*a), Ext(*b)
    am, bm = E.encode(np.array([a], dtype=np.uint32)), E.encode(np.array([b], dtype=np.uint32))
    assert (x * y).to_mont().tolist() == E.mul(am, bm)[0].tolist()
    assert (x + y).to_mont().tolist() == E.add(am, bm)[0].tolist()
    assert (x - y).to_mont().tolist() == E.sub(am, bm)[0].tolist()
    assert x.to_mont().tolist() == am[0].tolist()
    assert Ext.from_mont(am[0]) == x
    assert list(Ext.from_mont(am[0]).c) == F.decode(am[0]).tolist()

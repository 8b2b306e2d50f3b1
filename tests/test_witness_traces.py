"""Witness.traces() (prover/orderbook/witness.py): the exec matrix is every
column reduced mod p and encoded, whatever an edit left in the columns
(negative values, values >= p, another dtype, a strided view), and the
thread's scratch stack does not leak one call's values into the next."""
from __future__ import annotations

import numpy as np

from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.proof_table import proof_table
from zksidecar.prover import field as F
from zksidecar.prover.orderbook import witness as W
from zksidecar.prover.orderbook.air import exec_columns

P = F.P


def small_witness(seed: int = 3) -> W.Witness:
    book = Book(32)
    ops = flow.generate(60, seed=seed, capacity=32, params=flow.FlowParams(depth=16))
    after = Book.restore(book.snapshot())
    _, steps = after.process_traced(ops.copy())
    t = W.rows_for(int(W.fold(steps).sum()), book.capacity)
    return W.build(proof_table(book.cells), proof_table(after.cells), ops, steps, t, book.capacity)


def expected_exec(w: W.Witness) -> np.ndarray:
    """The definition: each column mod p, as uint32, encoded, row-major."""
    stack = np.stack([np.asarray(w.columns[name], dtype=np.int64) % P
                      for name in exec_columns(w.trace_length)], axis=1)
    return F.encode(stack.astype(np.uint32))


def test_exec_matrix_is_the_encoded_columns():
    w = small_witness()
    assert np.array_equal(w.traces()["exec"], expected_exec(w))


def test_out_of_range_and_foreign_columns_are_reduced():
    w = small_witness()
    n = w.trace_length
    names = exec_columns(n)
    rng = np.random.default_rng(5)
    w.columns[names[0]] = -rng.integers(1, 1 << 40, n)                        # negative
    w.columns[names[1]] = rng.integers(P, 1 << 62, n)                         # >= p
    w.columns[names[2]] = rng.integers(0, P, n).astype(np.int32)              # another dtype
    w.columns[names[3]] = rng.integers(-P, 2 * P, 2 * n)[::2]                 # a strided view
    w.columns[names[4]] = np.full(n, P - 1, dtype=np.int64)                   # the largest canonical
    got = w.traces()["exec"]
    assert np.array_equal(got, expected_exec(w))


def test_scratch_stack_holds_nothing_over_from_the_last_call():
    big, small = small_witness(3), small_witness(4)
    big.columns[exec_columns(big.trace_length)[0]][:] = P - 1
    big.traces()
    assert np.array_equal(small.traces()["exec"], expected_exec(small))
    first = big.traces()["exec"]
    big.traces()                        # a later call does not change an earlier result
    assert np.array_equal(first, expected_exec(big))


def test_step_fields_are_the_records_fields():
    book = Book(32)
    ops = flow.generate(60, seed=9, capacity=32, params=flow.FlowParams(depth=16))
    _, steps = Book.restore(book.snapshot()).process_traced(ops.copy())
    addr, old, new = W._step_fields(steps)
    assert np.array_equal(addr, steps["addr"].T)
    assert np.array_equal(old, steps["old_word"].transpose(1, 2, 0))
    assert np.array_equal(new, steps["new_word"].transpose(1, 2, 0))
    a0, o0, n0 = W._step_fields(steps[:0])
    assert a0.shape == (4, 0) and o0.shape[-1] == 0 and n0.shape[-1] == 0

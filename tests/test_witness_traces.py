"""Witness.traces() (prover/orderbook/witness.py): the exec matrix is every
column reduced mod p and encoded, whether it comes from the C builder's rows
or from columns an edit left out of range (negative values, values >= p,
another dtype, a strided view); and the C builder's own contract (names,
refusals)."""
from __future__ import annotations

import numpy as np
import pytest

from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.proof_table import proof_table
from zksidecar.engine.trace import check_steps
from zksidecar.prover import field as F
from zksidecar.prover.orderbook import witness as W
from zksidecar.prover.orderbook.air import book_length, exec_columns

P = F.P


def small_witness(seed: int = 3) -> W.Witness:
    book = Book(32)
    ops = flow.generate(60, seed=seed, capacity=32, params=flow.FlowParams(depth=16))
    after = Book.restore(book.snapshot())
    _, steps = after.process_traced(ops.copy())
    t = W.rows_for(int(W.fold(steps).sum()))
    return W.build(proof_table(book.cells), ops, steps, t, book.capacity)


def expected_exec(w: W.Witness) -> np.ndarray:
    """The definition: each column mod p, as uint32, encoded, row-major."""
    stack = np.stack([np.asarray(w.columns[name], dtype=np.int64) % P
                      for name in exec_columns(w.trace_length)], axis=1)
    return F.encode(stack.astype(np.uint32))


def test_exec_matrix_is_the_encoded_columns():
    w = small_witness()
    assert np.array_equal(w.traces()["ops.exec"], expected_exec(w))


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
    got = w.traces()["ops.exec"]
    assert np.array_equal(got, expected_exec(w))


def test_built_rows_encode_as_their_columns_do():
    """build's row-major matrix (encoded as is) and the columns made from
    it (the path an edited witness takes) give the same exec matrix."""
    w = small_witness(5)
    direct = w.traces()["ops.exec"]
    assert np.array_equal(direct, expected_exec(w))       # w.columns made here, from the rows
    assert np.array_equal(w.traces()["ops.exec"], direct)


def test_the_c_builder_names_every_exec_column_and_only_spare_limbs_besides():
    from zksidecar.prover.native import ffi, lib
    from zksidecar.prover.orderbook.air import limbs_for
    c_names = [ffi.string(lib.zk_witness_column_name(i)).decode()
               for i in range(lib.zk_witness_column_count())]
    assert len(set(c_names)) == len(c_names)
    assert lib.zk_witness_column_name(lib.zk_witness_column_count()) == ffi.NULL
    for log_t in range(4, 23):
        names = exec_columns(1 << log_t)
        _, k = limbs_for(1 << log_t)
        assert set(names) <= set(c_names)
        assert set(c_names) - set(names) == {f"c{m}_{i}" for m in (1, 2) for i in range(k, 8)}


def _run(seed=9, capacity=32):
    book = Book(capacity)
    ops = flow.generate(60, seed=seed, capacity=capacity, params=flow.FlowParams(depth=capacity // 2))
    after = Book.restore(book.snapshot())
    _, steps = after.process_traced(ops.copy())
    return book, after, ops, steps


def test_the_c_builder_refuses_what_it_cannot_index_by_step():
    """Whatever trace.check_steps refuses, the builder refuses at the same
    step (prepare_run runs check_steps only then, to name the fault)."""
    book, after, ops, steps = _run()
    t = W.rows_for(int(W.fold(steps).sum()))
    args = (proof_table(book.cells),)
    inner = int(np.flatnonzero(steps["mask"] & 2)[3])          # a step reading access A
    assert 0 < steps["op"][inner] and book_length(book.capacity) == book.capacity < t
    edits = {"an address past the ops trace": ("addr", (inner, 1), t),
             "an address past the book (its S rows)": ("addr", (inner, 1), book.capacity),
             "an address past the book in an access not made": ("addr", (inner, 3), book.capacity),
             "a header access elsewhere": ("addr", (inner, 0), 1),
             "an operation index out of range": ("op", inner, len(ops)),
             "an operation index going back": ("op", inner, 0),
             "a kind that is not a step kind": ("kind", inner, 9),
             "kind 0": ("kind", inner, 0),
             "a mask over four bits": ("mask", inner, 16),
             "a reserved field": ("reserved", inner, 1)}
    for what, (field, at, value) in edits.items():
        bad = steps.copy()
        bad[field][at] = value
        with pytest.raises(ValueError, match=f"step {inner} of {len(steps)}"):
            check_steps(bad, len(ops), book.capacity)
        with pytest.raises(ValueError, match=f"refused step {inner} of {len(steps)}"):
            W.build(*args, ops, bad, t, book.capacity)
    with pytest.raises(ValueError, match="do not fit a trace"):
        W.build(*args, ops, steps, W.MIN_TRACE_LENGTH, book.capacity)


def test_the_c_builder_refuses_an_address_past_a_small_book_inside_its_s_rows():
    """A book smaller than the `book` domain's least height (S > capacity):
    an address between the two is no slot of the book, and the builder
    refuses it as check_steps does, though `pts` has a row for it."""
    book, _, ops, steps = _run(capacity=4)
    assert book.capacity < book_length(book.capacity)
    t = W.rows_for(int(W.fold(steps).sum()))
    inner = int(np.flatnonzero(steps["mask"] & 2)[0])
    bad = steps.copy()
    bad["addr"][inner, 1] = book.capacity
    with pytest.raises(ValueError, match=f"step {inner} of {len(steps)}"):
        check_steps(bad, len(ops), book.capacity)
    with pytest.raises(ValueError, match=f"refused step {inner} of {len(steps)}"):
        W.build(proof_table(book.cells), ops, bad, t, book.capacity)


def test_one_column_decoded_alone_is_the_columns_one():
    """Witness.column: a committed column decoded from the builder's rows
    without the others, and a linear one (no column of its own) from them,
    each equal to what columns gives; the rows are left as they were."""
    names = ("sZ", "row", "qty", "sN", "k_z")
    alone = [small_witness().column(n) for n in names]
    w = small_witness()
    assert all(np.array_equal(a, w.columns[n]) and a.dtype == w.columns[n].dtype for a, n in zip(alone, names))

"""The Poseidon2 block's constraints kernel (csrc/stark/poseidon2_constraints.c,
poseidon2_air.Poseidon2Block): its weighted sums are the block evaluator's
for the compiled expressions, word for word, on every ISA path; the
quotient plans of the AIRs that hold the block use it; a run the kernel
cannot take is compiled as before; and a register broken in the witness
still breaks the quotient the kernel helps compute."""
from __future__ import annotations

import numpy as np
import pytest

from zksidecar.prover import field as F
from zksidecar.prover import params
from zksidecar.prover import prove as prove_module
from zksidecar.prover.air import Frame
from zksidecar.prover.constraint_program import Output, Program, matrix_columns
from zksidecar.prover.examples.lane_probe import lane_probe_instance
from zksidecar.prover.expr import TRACE
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.orderbook.zk_air import shape_statement
from zksidecar.prover.poseidon2_air import BLOCK_COLUMNS, COLUMNS, Poseidon2Block, Poseidon2Columns
from zksidecar.prover.prove import ConstraintError, prove
from zksidecar.prover.verify import VerificationError, verify
from test_zk_mode import ZK1
from zk_modes import KEY

P = F.P
ROWS = 1000          # a short last block and a short last group on every path
N = 64


@pytest.fixture(scope="module")
def probe():
    return lane_probe_instance(N, seed=5)


def no_constants(key):
    return Ext(0)


def programs(cons, weights, base_inputs, n_acc=1, first=None):
    """(with the kernel, compiled) programs of the constraints `cons` with
    `weights`, every output into accumulator 0 (`first`: an extra output
    into accumulator 1 before them, which the kernel leaves alone)."""
    extra = [] if first is None else [Output(1, first, Ext(7, 1, 2, 3))]
    native = extra + [Output(0, c.expr, w, c.native) for c, w in zip(cons, weights)]
    compiled = extra + [Output(0, c.expr, w) for c, w in zip(cons, weights)]
    return (Program(native, no_constants, base_inputs, {}, n_acc),
            Program(compiled, no_constants, base_inputs, {}, n_acc))


def random_weights(rng, k):
    return [Ext(*(int(v) for v in rng.integers(0, P, 4))) for _ in range(k)]


def test_the_kernel_is_the_evaluator_on_every_isa(probe, each_isa):
    """The block's columns scattered over a wider row-major matrix (inputs
    apart from the registers and out of order, so runs and single columns
    are both gathered), random canonical words with 0 and p - 1 among
    them, random weights; a constraint outside the block in its own
    accumulator alongside."""
    air, _ = probe
    cons = [c for c in air.transition_constraints if c.native is not None]
    assert len(cons) == COLUMNS
    rng = np.random.default_rng(21)
    width = 340
    mat = F.encode(rng.integers(0, P, (ROWS, width)))
    mat[::7, 30:60] = 0
    mat[3::11, 100:200] = F.encode(np.full(1, P - 1))[0]
    # probe columns: row, x0..x15, the registers; placed in `mat`
    where = {0: 3}
    where.update({1 + i: 300 + 2 * (15 - i) for i in range(16)})       # inputs: reversed, strided
    where.update({17 + j: 20 + j for j in range(COLUMNS)})             # registers: side by side
    base_inputs = {(TRACE, c): c for c in range(1 + 16 + COLUMNS)}
    addr, stride = matrix_columns(mat)
    order = np.array([where[c] for c in range(1 + 16 + COLUMNS)])
    first = Frame(air).cur("row") * Frame(air).cur("x3")
    native, compiled = programs(cons, random_weights(rng, COLUMNS), base_inputs, 2, first)
    assert native.native_blocks and not compiled.native_blocks
    assert len(native.code) < len(compiled.code) // 20
    empty = np.zeros(0, dtype=np.uintp)
    got = native.run_at(addr[order], stride[order], empty, empty, ROWS, 1, mat)
    want = compiled.run_at(addr[order], stride[order], empty, empty, ROWS, 1, mat)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)
    # and through run(): columns given as views of a C-contiguous matrix
    views = [mat[:, where[c]] for c in range(1 + 16 + COLUMNS)]
    assert np.array_equal(native.run(views, [], ROWS, 1)[0], want[0])


def test_the_kernel_adds_into_the_accumulator(each_isa):
    rng = np.random.default_rng(4)
    rows = 77
    mat = F.encode(rng.integers(0, P, (rows, BLOCK_COLUMNS)))
    weights = F.encode(rng.integers(0, P, (COLUMNS, 4)))
    addr, stride = matrix_columns(mat)
    block = Poseidon2Block((), ())
    once = np.zeros((rows, 4), dtype=np.uint32)
    block.accumulate(addr, stride, weights, once, rows)
    start = F.encode(rng.integers(0, P, (rows, 4)))
    acc = start.copy()
    block.accumulate(addr, stride, weights, acc, rows)
    assert np.array_equal(acc, F.add(start, once))


def test_the_quotient_plans_of_the_block_use_the_kernel(probe):
    """The lane probe's and zk mode's `ops` domain's quotient programs leave
    the block to the kernel, with the weights the block's constraints have
    in the AIR's order."""
    air, traces = probe
    ldes = [np.zeros((1, traces["lane"].shape[1]), dtype=np.uint32), np.zeros((1, 4 * len(air.aux_columns)),
                                                                            dtype=np.uint32)]
    plan = prove_module._compile_quotient(air, ldes)
    assert len(plan.program.native_blocks) == 1
    block = plan.program.native_blocks[0]
    cons = air.transition_constraints
    first = next(i for i, c in enumerate(cons) if c.native is block)
    assert [c.expr for c in cons[first: first + COLUMNS]] == list(block.exprs)
    assert plan.program._native[0].first == first       # the weights alpha^first ...
    ops = shape_statement(10, 1 << 6).ops
    widths = [len(seg.columns) for seg in ops.main_segments] + [4 * len(ops.aux_columns)]
    ops_plan = prove_module._compile_quotient(ops, [np.zeros((1, w), dtype=np.uint32) for w in widths])
    assert len(ops_plan.program.native_blocks) == 1


def test_a_run_the_kernel_cannot_take_is_compiled(probe):
    """A block's run cut short, or with inputs that are no columns, is
    compiled as any other constraints: the same sums."""
    air, traces = probe
    cons = [c for c in air.transition_constraints if c.native is not None]
    rng = np.random.default_rng(8)
    mat = F.encode(rng.integers(0, P, (ROWS, traces["lane"].shape[1])))
    base_inputs = {(TRACE, c): c for c in range(mat.shape[1])}
    weights = random_weights(rng, COLUMNS)
    short, compiled = programs(cons[:-1], weights[:-1], base_inputs)
    assert not short.native_blocks
    cols = [mat[:, j] for j in range(mat.shape[1])]
    assert np.array_equal(short.run(cols, [], ROWS, 1)[0], compiled.run(cols, [], ROWS, 1)[0])
    f = Frame(air)
    mixed = Poseidon2Columns("p2").transitions(f, [f.cur("x0") + f.cur("x1")] + [f.cur(f"x{i}") for i in range(1, 16)])
    assert all(c.native is None for c in mixed)


def test_the_kernel_refuses_malformed_arguments():
    block = Poseidon2Block((), ())
    mat = np.zeros((8, BLOCK_COLUMNS), dtype=np.uint32)
    addr, stride = matrix_columns(mat)
    w = np.zeros((COLUMNS, 4), dtype=np.uint32)
    acc = np.zeros((8, 4), dtype=np.uint32)
    with pytest.raises(ValueError, match="reads 290 columns, got 289"):
        block.accumulate(addr[:-1], stride[:-1], w, acc, 8)
    with pytest.raises(ValueError, match="weights"):
        block.accumulate(addr, stride, w[:-1], acc, 8)
    with pytest.raises(ValueError, match="accumulator"):
        block.accumulate(addr, stride, w, acc[:-1], 8)


def test_a_program_with_the_kernel_does_not_run_at_a_point(probe):
    air, _ = probe
    cons = [c for c in air.transition_constraints if c.native is not None]
    native, _ = programs(cons, [Ext(1)] * COLUMNS, {(TRACE, c): c for c in range(1 + 16 + COLUMNS)})
    with pytest.raises(ValueError, match="native blocks"):
        native.run_matrix(np.zeros((1, 4, 4), dtype=np.uint32), 0)


def test_an_edited_register_breaks_the_quotient(monkeypatch):
    """With the row-by-row check skipped, a register edited in the witness
    reaches the quotient through the kernel alone (nothing else reads
    it): in zk mode (the quotient on D and D'') its coefficients do not
    stop at the degree bound, which debug mode names; and a transparent
    proof made of it does not verify."""
    air, traces = lane_probe_instance(256, seed=5)
    bad = traces["lane"].copy()
    j = air.column_index("p2.f5.a9")
    bad[33, j] = F.add(bad[33:34, j], F.encode(np.array([1])))[0]
    monkeypatch.setattr(prove_module, "check_constraints", lambda *a: None)
    honest = prove(air, traces, ZK1, zk_key=KEY, debug=True).proof
    verify(air, honest, min_security=0)
    with pytest.raises(ConstraintError, match="the quotient has degree >= its bound"):
        prove(air, {"lane": bad}, ZK1, zk_key=KEY, debug=True)
    proof = prove(air, {"lane": bad}, params.TESTING).proof
    with pytest.raises(VerificationError):
        verify(air, proof, min_security=0)

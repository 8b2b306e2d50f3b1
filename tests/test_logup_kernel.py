"""csrc/stark/logup.c (LogUp.build) against the numpy builder (LogUp.build_numpy),
word for word, on every ISA path: random traces that need not close, tuples
mixing columns, constants, expressions and periodic columns, multiplicities
given as columns, constants and expressions, one group and many, row counts
below, at and above the kernel's block; the order-book sum on a real batch;
and a vanishing denominator named by row and fraction."""
import numpy as np
import pytest

from zksidecar.prover import field as F
from zksidecar.prover import logup
from zksidecar.prover.air import Air, Frame, MainColumns, Segment
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.expr import TRACE, const, var

P = F.P


class MixedAir(Air):
    """A test AIR whose one LogUp sum uses every kind of tuple entry and
    multiplicity the builder accepts (base-valued)."""

    num_challenges = 9      # alpha and one compression challenge per entry after the first

    def __init__(self, n, group_size=2, fractions=None):
        self.main_segments = (Segment("main", ("a", "b", "c", "m")),)
        self.periodic_columns = logup.with_next_rows({"t": [3, 1, 4, 1, 5, 9, 2, 6]})
        self.argument = logup.LogUp("x", fractions or [
            logup.supply([1, "a", "b", lambda f: f.cur("c") - 2 * f.cur("a")], "m"),
            logup.consume([1, "b", 0, "c"]),
            logup.consume([2, lambda f: f.periodic("t")], 3),
            logup.supply([2, "a"], lambda f: f.cur("b") * f.cur("c") + 1),
            logup.consume(["a", "b", "c", "m", "a", "b", 7, "c", "m"], "c"),
        ], group_size=group_size)
        self.aux_columns = logup.aux_columns(self.argument)
        super().__init__(n)

    def transitions(self, f):
        return self.argument.transitions(f)

    def boundaries(self, f):
        return self.argument.boundaries(f)

    def build_aux(self, main, challenges):
        return logup.build_aux(self, [self.argument], main, challenges)


def inputs(n, seed):
    rng = np.random.default_rng(seed)
    main = {c: F.encode(rng.integers(0, P, n)) for c in ("a", "b", "c", "m")}
    challenges = F.encode(rng.integers(0, P, (MixedAir.num_challenges, 4)))
    return main, challenges


@pytest.mark.parametrize("n,group_size", [(16, 2), (128, 2), (256, 3), (512, 1), (1024, 5)])
def test_kernel_matches_numpy(each_isa, n, group_size):
    air = MixedAir(n, group_size)
    for seed in range(3):
        main, challenges = inputs(n, seed)
        want = air.argument.build_numpy(air, main, challenges)
        got = air.argument.build(air, main, challenges)
        assert got.shape == want.shape == (n, len(air.argument.columns), 4)
        assert np.array_equal(got, want)


def test_kernel_reads_trace_columns_in_place(each_isa):
    """As the prover calls it: MainColumns over a row-major trace matrix, the
    bare columns (and multiplicities) read strided, the columns inside
    expressions gathered in one pass (zk_gather_columns): none copied out
    one by one."""
    n = 256
    air = MixedAir(n)
    main, challenges = inputs(n, 12)
    trace = np.ascontiguousarray(np.stack([main[c] for c in ("a", "b", "c", "m")], axis=1))
    cols = MainColumns(air, {"main": trace})
    assert not cols.view("b").flags.c_contiguous
    got = air.argument.build(air, cols, challenges)
    assert np.array_equal(got, air.argument.build_numpy(air, main, challenges))
    assert not cols._copies


@pytest.mark.parametrize("group_size", [1, 2, 5])
def test_one_rows_term_from_the_kernel_is_the_numpy_definitions(each_isa, group_size):
    """row_term (the kernel on one row, the running sum after it: how a
    shared argument's claim is read) against group_sums' value at that
    row, at the first, a middle and the last row, the trace given as
    columns and as a row-major matrix read in place (periodic entries at
    their row)."""
    n = 64
    air = MixedAir(n, group_size)
    main, challenges = inputs(n, 21)
    trace = np.ascontiguousarray(np.stack([main[c] for c in ("a", "b", "c", "m")], axis=1))
    sums = air.argument.group_sums(air, main, challenges)
    for row in (0, 29, n - 1):
        want = Ext(0)
        for g in sums:
            want = want + Ext.from_mont(g[row])
        assert air.argument.row_term(air, main, challenges, row) == want
        assert air.argument.row_term(air, MainColumns(air, {"main": trace}), challenges, row) == want


def test_kernel_writes_into_a_view(each_isa):
    air = MixedAir(64)
    main, challenges = inputs(64, 7)
    whole = np.full((64, 2 + len(air.argument.columns), 4), 0xFFFFFFFF, dtype=np.uint32)
    view = whole[:, 1: 1 + len(air.argument.columns)]
    air.argument.build(air, main, challenges, view)
    assert np.array_equal(view, air.argument.build_numpy(air, main, challenges))
    assert (whole[:, 0] == 0xFFFFFFFF).all() and (whole[:, -1] == 0xFFFFFFFF).all()
    with pytest.raises(ValueError, match="out must be"):
        air.argument.build(air, main, challenges, whole)


def test_order_book_sum_matches_numpy(each_isa):
    from zksidecar.engine import flow
    from zksidecar.engine.book import Book
    from zksidecar.prover.orderbook import batch
    from zksidecar.prover.params import TESTING

    ops = flow.generate(150, seed=11, capacity=64, params=flow.FlowParams(depth=30), prefill=30)
    book = Book(64)
    book.process(ops[:30].copy())
    prep = batch.prepare_batch(book, ops[30:], TESTING)
    st = prep.public.statement()
    traces = prep.witness.traces()
    rng = np.random.default_rng(5)
    challenges = F.encode(rng.integers(0, P, (st.ops.num_challenges, 4)))
    totals = []
    for name, dom in (("book", st.book), ("ops", st.ops)):
        mats = {s.name: traces[f"{name}.{s.name}"] for s in dom.main_segments}
        main = {c: np.ascontiguousarray(mats[s.name][:, j])
                for s in dom.main_segments for j, c in enumerate(s.columns)}
        groups = dom.lu.group_sums(dom, main, challenges)
        assert len(groups) == len(dom.lu.columns)        # the last group has no column
        total = sum((Ext.from_mont((g.astype(np.uint64).sum(axis=0) % P).astype(np.uint32))
                     for g in groups), Ext(0))
        totals.append(total)
        # each domain's cyclic sum closes on its claim, its rows' total:
        # S[N-1] + term(N-1) - t/N = S[0] = 0
        air = dom.with_claimed_sum(total)
        got = air.lu.build(air, MainColumns(air, mats), challenges)
        assert np.array_equal(got, air.lu.build_numpy(air, main, challenges))
        term = sum((Ext.from_mont(g[-1]) for g in groups), Ext(0))
        shift = total * pow(air.trace_length, P - 2, P)
        assert Ext.from_mont(got[0, 0]) == Ext(0)
        assert Ext.from_mont(got[-1, 0]) + term - shift == Ext(0)
        # closing a sum built on a claim of 0 on its total (in place, the
        # column read where it lies in the auxiliary matrix) gives the same
        zero = dom.with_claimed_sum(Ext(0))
        aux = zero.build_aux(MainColumns(zero, mats), challenges)
        assert zero.lu.close_on_total(zero, MainColumns(zero, mats), challenges, aux) == total
        assert np.array_equal(aux, air.build_aux(MainColumns(air, mats), challenges))
    # the trace is honest: the two claims total the verifier's public side
    assert totals[0] + totals[1] == st.target(challenges)


def test_a_vanishing_denominator_names_row_and_fraction(each_isa):
    n = 256
    air = MixedAir(n)
    main, challenges = inputs(n, 3)
    # fraction 1 is 1/(alpha - (1 + beta_1*b + beta_3*c)): choose alpha to vanish at row 200
    alpha = Ext.from_mont(challenges[0])
    beta_1, beta_3 = Ext.from_mont(challenges[1]), Ext.from_mont(challenges[3])
    b, c = (int(F.decode(main[k][200:201])[0]) for k in ("b", "c"))
    challenges = challenges.copy()
    challenges[0] = (Ext(1) + beta_1 * Ext(b) + beta_3 * Ext(c)).to_mont()
    assert alpha != Ext.from_mont(challenges[0])
    with pytest.raises(ZeroDivisionError, match="fraction 1 vanishes at row 200"):
        air.argument.build(air, main, challenges)
    with pytest.raises(ZeroDivisionError):
        air.argument.build_numpy(air, main, challenges)


def test_a_fraction_listed_twice_counts_twice(each_isa):
    n = 64
    twice = logup.consume(["a", "b"])
    air = MixedAir(n, group_size=2, fractions=[logup.supply(["c"], "m"), twice, twice, twice])
    main, challenges = inputs(n, 4)
    assert np.array_equal(air.argument.build(air, main, challenges),
                          air.argument.build_numpy(air, main, challenges))


def test_extension_valued_multiplicities_take_the_numpy_path(each_isa):
    n = 32
    air = MixedAir(n, fractions=[logup.supply([0, "a"], lambda f: f.challenge(0) * f.cur("b")),
                                 logup.consume(["c"])])
    main, challenges = inputs(n, 9)
    assert air.argument._plan(air) is None
    assert np.array_equal(air.argument.build(air, main, challenges),
                          air.argument.build_numpy(air, main, challenges))


def test_linear_entries_are_split_into_columns(each_isa):
    """A tuple entry that is a short sum of main columns plus a constant
    (a range lookup's piece + shift, a sum of row types) is not evaluated
    as a column: its columns become entries of their own, coefficient a *
    beta_j, its constant joins the tuple's constant part; the words are the
    numpy builder's.  A product, a periodic column or more than
    LINEAR_TERMS columns is still evaluated; so is a multiplicity."""
    n = 256
    wide = lambda f: sum((f.cur(c) * (k + 2) for k, c in enumerate("abcm" * 5)), f.cur("a"))  # noqa: E731
    linear = [
        lambda f: f.cur("a") + 32512,
        lambda f: 3 * f.cur("b") - f.cur("c") + (P - 7),
        lambda f: f.cur("a") - f.cur("a") + 5,                  # no column left: a constant
        lambda f: -(f.cur("m") + f.cur("b")) + f.cur("b") * 2,
    ]
    evaluated = [lambda f: f.cur("a") * f.cur("b"), lambda f: f.cur("c") + f.periodic("t")]
    air = MixedAir(n, fractions=[logup.consume([1, linear[0], linear[1]], "m"),
                                 logup.supply([2, linear[2], "c", linear[3]]),
                                 logup.consume([3, evaluated[0], evaluated[1]]),
                                 logup.supply([4, "b"], lambda f: f.cur("a") + f.cur("c"))])
    plan = air.argument._plan(air)
    assert len(plan.exprs) == 3          # the product, the periodic sum, the multiplicity
    # repeated columns merge (a: 1 + 2 + 6 + 10 + 14 + 18); past LINEAR_TERMS distinct ones, evaluated
    assert logup._linear(wide(Frame(air))) == ({0: 51, 1: 55, 2: 60, 3: 65}, 0)
    many = sum((var(TRACE, k, False) for k in range(logup.LINEAR_TERMS + 1)), const(1))
    assert logup._linear(many) is None and logup._linear(many - var(TRACE, 0, False)) is not None
    assert logup._linear(var(TRACE, 0, True) + 1) is None       # a next-row read is no entry
    main, challenges = inputs(n, 31)
    trace = np.ascontiguousarray(np.stack([main[c] for c in ("a", "b", "c", "m")], axis=1))
    want = air.argument.build_numpy(air, main, challenges)
    assert np.array_equal(air.argument.build(air, main, challenges), want)
    assert np.array_equal(air.argument.build(air, MainColumns(air, {"main": trace}), challenges), want)
    sums = air.argument.group_sums(air, main, challenges)
    assert air.argument.row_term(air, main, challenges, n - 1) == \
        sum((Ext.from_mont(g[n - 1]) for g in sums), Ext(0))


def test_the_plan_is_kept_per_shape_and_rebound_per_proof(each_isa):
    """The order book's AIRs of one trace length share their constraints, so
    their LogUp argument's plan is worked out once; binding it to another
    batch's trace and challenges still gives the numpy builder's words."""
    from zksidecar.engine import flow
    from zksidecar.engine.book import Book
    from zksidecar.prover.orderbook import batch
    from zksidecar.prover.params import TESTING

    ops = flow.generate(120, seed=3, capacity=64, params=flow.FlowParams(depth=20), prefill=20)
    book = Book(64)
    book.process(ops[:20].copy())
    first = batch.prepare_batch(book, ops[20:70], TESTING, ops_length=512)
    second = batch.prepare_batch(Book.from_cells(first.post_cells), ops[70:], TESTING, ops_length=512)
    airs = [p.public.air().with_claimed_sum(Ext(0)) for p in (first, second)]
    assert airs[0].lu is not airs[1].lu
    assert airs[0].lu._plan(airs[0]) is airs[1].lu._plan(airs[1]) is not None
    rng = np.random.default_rng(8)
    for air, prep in zip(airs, (first, second)):
        traces = {"exec": prep.witness.traces()["ops.exec"]}
        main = {c: np.ascontiguousarray(traces[s.name][:, j])
                for s in air.main_segments for j, c in enumerate(s.columns)}
        challenges = F.encode(rng.integers(0, P, (air.num_challenges, 4)))
        assert np.array_equal(air.lu.build(air, MainColumns(air, traces), challenges),
                              air.lu.build_numpy(air, main, challenges))


def test_kernel_reads_a_column_major_trace(each_isa):
    """Addresses come from each segment matrix's own strides, whatever its
    order (the expression columns are gathered by them too)."""
    n = 128
    air = MixedAir(n)
    main, challenges = inputs(n, 21)
    trace = np.asfortranarray(np.stack([main[c] for c in ("a", "b", "c", "m")], axis=1))
    assert np.array_equal(air.argument.build(air, MainColumns(air, {"main": trace}), challenges),
                          air.argument.build_numpy(air, main, challenges))


@pytest.mark.parametrize("rows,k", [(1, 1), (511, 16), (512, 17), (513, 40), (1500, 3)])
def test_gather_columns_kernel(rows, k):
    """zk_gather_columns (csrc/field/matrix.c), across its 512-row, 16-column
    tiles: chosen columns of a row-major and of a column-major matrix, each
    to a contiguous row, as numpy indexing gives them."""
    from zksidecar.prover.native import ffi, lib
    rng = np.random.default_rng(rows + k)
    width = k + 7
    for mat in (rng.integers(0, 2**32, (rows, width), dtype=np.uint32),
                np.asfortranarray(rng.integers(0, 2**32, (rows, width), dtype=np.uint32))):
        places = rng.permutation(width)[:k].astype(np.uintp)
        offsets = (places * (mat.strides[1] // 4)).astype(np.uintp)
        out = np.empty((k, rows + 5), dtype=np.uint32)
        lib.zk_gather_columns(ffi.cast("uint32_t *", out.ctypes.data), rows + 5,
                              ffi.cast("uint32_t *", mat.ctypes.data), mat.strides[0] // 4, rows,
                              ffi.cast("size_t *", offsets.ctypes.data), k)
        assert np.array_equal(out[:, :rows], mat[:, places.astype(np.int64)].T)

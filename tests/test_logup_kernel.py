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
from zksidecar.prover.air import Air, MainColumns, Segment
from zksidecar.prover.ext_scalar import Ext

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
    bare columns (and multiplicities) read strided, only the columns inside
    expressions copied out."""
    n = 256
    air = MixedAir(n)
    main, challenges = inputs(n, 12)
    trace = np.ascontiguousarray(np.stack([main[c] for c in ("a", "b", "c", "m")], axis=1))
    cols = MainColumns(air, {"main": trace})
    assert not cols.view("b").flags.c_contiguous
    got = air.argument.build(air, cols, challenges)
    assert np.array_equal(got, air.argument.build_numpy(air, main, challenges))
    assert set(cols._copies) == {"a", "b", "c"}     # "m" is only a bare multiplicity


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
    """Addresses come from each segment matrix's own strides, whatever its order."""
    n = 128
    air = MixedAir(n)
    main, challenges = inputs(n, 21)
    trace = np.asfortranarray(np.stack([main[c] for c in ("a", "b", "c", "m")], axis=1))
    assert np.array_equal(air.argument.build(air, MainColumns(air, {"main": trace}), challenges),
                          air.argument.build_numpy(air, main, challenges))

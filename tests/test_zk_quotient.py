"""zk mode's quotient from D and the small coset D'' (prove.quotient_coefficients,
docs/ZK.md 5.3) against the path it replaced, kept here only as the
yardstick: every committed polynomial extended to the 4N points of
g <w_4N> and the constraint program run on all of them (`quotient_on_4n`,
a test double).  The two give the same coefficients, so the same proof
bytes: on the example AIRs (Fibonacci's boundaries; the range check's
periodic columns, LogUp's every-row and boundary constraints; two domains
with a chained state), with D'' smaller than, as large as and larger than
the trace, and on a small zk order-book batch.  A trace that breaks a
constraint leaves coefficients above the quotient's degree bound, which
debug mode refuses even without its row-by-row check."""
from __future__ import annotations

import pytest

from zksidecar.engine.book import Book
from zksidecar.prover import ntt
from zksidecar.prover.field import P
from zksidecar.prover import prove as prove_module
from zksidecar.prover.examples import memory
from zksidecar.prover.examples import memory_domains as md
from zksidecar.prover.examples.range_check import range_check_instance
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.orderbook.batch import prove_batch
from zksidecar.prover.proof import mask_degree, quotient_log_blowup
from zksidecar.prover.prove import COSET_SHIFT, ConstraintError, prove, quotient_on_lde
from test_zk_batch import ZK, chain, stream
from test_zk_mode import REF_ZK, ZK1
from zk_modes import KEY, prove_in


def quotient_on_4n(air, coms, challenges, alpha, log_blowup, zk=False):
    """Test double: Q's coefficients as prove() computed them before D''
    (its own 2^e N points, e = quotient_log_blowup: 4N at degree 3 and
    blowup 2), each committed polynomial extended there from its LDE's
    coefficients."""
    qlb = quotient_log_blowup(air, zk)
    ldes = [c.lde for c in coms]
    if qlb > log_blowup:
        ldes = [ntt.extend(ntt.coset_intt(lde, COSET_SHIFT), qlb - log_blowup, COSET_SHIFT) for lde in ldes]
        log_blowup = qlb
    q = quotient_on_lde(air, ldes, challenges, alpha, log_blowup, qlb)
    return ntt.coset_intt(q, COSET_SHIFT, out=q)


@pytest.fixture
def tops(monkeypatch) -> list:
    """Each D'' the prover evaluates on, as (N, m'')."""
    seen, real = [], prove_module._quotient_top

    def spy(air, coms, challenges, alpha, r, log_blowup, log_top):
        seen.append((air.trace_length, 1 << log_top))
        return real(air, coms, challenges, alpha, r, log_blowup, log_top)
    monkeypatch.setattr(prove_module, "_quotient_top", spy)
    return seen


def with_4n(monkeypatch, run):
    """`run()` with the quotient on 4N points (the double), then restored."""
    with monkeypatch.context() as m:
        m.setattr(prove_module, "quotient_coefficients", quotient_on_4n)
        return run()


# D'' has m'' = 128 points at 8 queries (h = 36, Q_top of degree < 3h - 1 =
# 107) and at 4 (h = 28: < 83): as many as the trace's rows, half, and an
# eighth (the coefficients folded in one, two and eight blocks and a short
# one); the range check has periodic columns and LogUp's every-row and
# boundary constraints, and is of degree 3 (Fibonacci, of degree 1, has
# its quotient on D alone)
CASES = [((1 << 7, 4, 1), REF_ZK), ((1 << 8, 8, 2), ZK1), ((1 << 10, 4, 1), ZK1)]


@pytest.mark.parametrize("args, opts", CASES, ids=["2^7", "2^8", "2^10"])
def test_the_quotient_from_d_and_d2_is_the_4n_one(monkeypatch, tops, args, opts):
    air, traces = range_check_instance(*args, seed=5)
    new = prove(air, traces, opts, zk_key=KEY, debug=True).proof.to_bytes(air)
    h = mask_degree(air, opts)
    assert tops == [(args[0], 128)] and 3 * h - 1 <= 128 < 2 * (3 * h - 1)
    assert with_4n(monkeypatch, lambda: prove(air, traces, opts, zk_key=KEY).proof.to_bytes(air)) == new


def test_two_domains_and_a_chained_state(monkeypatch, tops):
    """The memory statement: its cells domain's state exported masked, its
    steps domain read on the next row, each domain its own D''."""
    st = md.memory_statement(128, 256)
    run = md.run([0] * 128, memory.random_ops(128, 250, seed=3), 256)
    init = memory.known_table_commitment(run.traces["cells.init"], REF_ZK.log_blowup, True)

    def proof() -> bytes:
        return prove_in(st, run.traces, REF_ZK, external={"cells.init": (init, None)}).proof.to_bytes(st)
    new = proof()
    assert sorted(tops) == [(128, 128), (256, 128)]
    assert with_4n(monkeypatch, proof) == new


def test_a_zk_order_book_batch(monkeypatch, tops):
    """tests/test_zk_batch.py's shape (a book of 128 slots, 256 ops rows):
    both domains' quotients from D and D'', the batch file the same bytes."""
    ops = stream()[:40]

    def batch() -> bytes:
        return proof_file.encode(prove_batch(Book(128), ops, ZK, zk=chain())[0])
    new = batch()
    assert sorted(tops) == [(128, 128), (256, 128)]
    assert with_4n(monkeypatch, batch) == new


def test_a_broken_trace_leaves_coefficients_above_the_bound(monkeypatch, tops):
    """Without debug mode's row-by-row check, the quotient of a trace that
    breaks a transition is no polynomial: the coefficients interpolated
    from D and D'' do not stop at its degree bound, and debug mode's
    degree check names it."""
    air, traces = range_check_instance(1 << 8, 8, 1, seed=5)
    traces = {"main": traces["main"].copy()}
    traces["main"][40, 0] = (int(traces["main"][40, 0]) + 1) % P
    monkeypatch.setattr(prove_module, "check_constraints", lambda *a: None)
    with pytest.raises(ConstraintError, match="the quotient has degree >= its bound"):
        prove(air, traces, ZK1, zk_key=KEY, debug=True)
    assert tops == [(1 << 8, 128)]

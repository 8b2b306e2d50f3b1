"""The offline memory-checking AIR: completeness, chains of proofs root to
root, and that wrong reads, wrong final tables, changed cells, time travel and
wrong roots or links all fail."""
import dataclasses

import numpy as np
import pytest

from zksidecar.prover.domain import Link
from zksidecar.prover.ext_scalar import Ext

from zksidecar.prover import field as F
from zksidecar.prover import params
from zksidecar.prover.examples.memory import (OPS_COLUMNS, MemoryAir, known_table_commitment,
                                              known_table_root, random_ops, run, state_table)
from zksidecar.prover.proof import Proof
from zksidecar.prover.prove import ConstraintError, SegmentCommitment, prove
from zksidecar.prover.verify import VerificationError, verify
from zk_modes import prove_in, zk

FAST = dataclasses.replace(params.TESTING, log_blowup=2)
#: the tamper tests run in both modes (zk mode: tests/zk_modes.py), zk at
#: 2^7 rows, the shortest its masks fit at degree 3 and 4 queries
ZK = zk(FAST)
MODES = [pytest.param(FAST, 5, id="transparent"), pytest.param(ZK, 7, id="zk")]
COL = {c: i for i, c in enumerate(OPS_COLUMNS)}


def roundtrip(air, proof):
    return Proof.from_bytes(proof.to_bytes(air), air)


def _bump(cell):
    return F.add(np.array([cell], dtype=np.uint32), F.encode([1]))[0]


def first_proof_externals(init_values, opts=FAST):
    """The known pre-state: both sides commit it themselves; Link None (in
    zk mode with zero salts and no mask, masking.Mask.public)."""
    table = state_table(init_values)
    com = known_table_commitment(table, opts.log_blowup, opts.zk)
    assert known_table_root(table, opts.log_blowup, opts.zk) == com.root
    return {"init": (com, None)}, {"init": (com.root, None)}


def instance(log_n, seed=0, count=None, cells=None, init=None):
    n = 1 << log_n
    init = np.zeros(n, dtype=np.int64) if init is None else init
    count = n - 1 if count is None else count
    r = run(init, random_ops(n, count, seed=seed, cells=cells or max(2, n // 4)))
    return MemoryAir(n), r, init


def assert_rejected(air, traces, init_values, opts=FAST):
    ext_p, ext_v = first_proof_externals(init_values, opts)
    with pytest.raises(ConstraintError):
        prove_in(air, traces, opts, external=ext_p, debug=True)
    proof = prove_in(air, traces, opts, external=ext_p).proof
    with pytest.raises(VerificationError):
        verify(air, roundtrip(air, proof), external=ext_v, min_security=0)


# ------------------------------------------------------------ completeness --

def test_run_is_a_memory():
    r = run(np.zeros(8, dtype=np.int64), [(3, 7), (3, None), (5, 9), (3, 1), (3, None), (5, None)])
    assert r.reads == [0, 7, 0, 7, 1, 9]
    assert list(r.final_values) == [0, 0, 0, 1, 0, 9, 0, 0]


@pytest.mark.parametrize("log_n,count", [(3, 8), (3, 0), (4, 5), (6, 64), (8, 200), (10, 1024)])
def test_proves_and_verifies(log_n, count):
    air, r, init = instance(log_n, seed=log_n, count=count)
    ext_p, ext_v = first_proof_externals(init)
    proof = prove(air, r.traces, FAST, external=ext_p, debug=True).proof
    assert verify(air, roundtrip(air, proof), external=ext_v, min_security=0).security_bits \
        == FAST.conjectured_security(1 << log_n, air.algebraic_degree(1 << log_n))


def test_nonzero_known_initial_state():
    n = 1 << 5
    init = np.random.default_rng(3).integers(0, F.P, n)
    air, r, _ = instance(5, seed=3, init=init, cells=n)
    ext_p, ext_v = first_proof_externals(init)
    verify(air, prove(air, r.traces, FAST, external=ext_p, debug=True).proof,
           external=ext_v, min_security=0)


@pytest.mark.parametrize("opts", [
    params.ProofOptions(log_blowup=2, num_queries=30, grinding_bits=0, fri_folding_factor=2,
                        fri_max_final_degree=1),
    params.ProofOptions(log_blowup=3, num_queries=12, grinding_bits=4, fri_folding_factor=16,
                        fri_max_final_degree=8),
    params.ProofOptions.for_security(100, log_blowup=2),
])
def test_parameter_sets(opts):
    air, r, init = instance(7, seed=11)
    ext_p, ext_v = first_proof_externals(init, opts)
    proof = prove(air, r.traces, opts, external=ext_p).proof
    verify(air, roundtrip(air, proof), external=ext_v,
           min_security=100 if opts.num_queries > 40 else 0)


# ------------------------------------------------------------------ chains --

def prove_chain(log_n, length, opts=FAST):
    """`length` proofs, each one's final table the next one's init."""
    n = 1 << log_n
    air = MemoryAir(n)
    values = np.zeros(n, dtype=np.int64)
    ext_p, ext_v = first_proof_externals(values, opts)
    steps = []
    for k in range(length):
        r = run(values, random_ops(n, n - k, seed=100 + k, cells=n // 2))
        res = prove_in(air, r.traces, opts, external=ext_p, debug=True)
        steps.append((res, ext_v, r))
        ext_p = {"init": (res.commitments["final"], res.links["final"])}
        ext_v = {"init": (res.proof.roots["final"], res.links["final"])}
        values = r.final_values
    return air, steps


def test_chain_of_three_verifies_root_to_root():
    """A chain verifier needs nothing from the prover but the proofs: each
    verified proof hands the next its final table's root and link."""
    air, steps = prove_chain(6, 3)
    ext_v = steps[0][1]                 # the known first table: root computed here, no link
    for res, _, _ in steps:
        done = verify(air, roundtrip(air, res.proof), external=ext_v, min_security=0)
        assert done.links["final"] == res.links["final"]   # the verifier derives the prover's link
        ext_v = {"init": (done.roots["final"], done.links["final"])}
    assert "init" not in steps[1][0].proof.roots    # external roots are not carried


@pytest.mark.parametrize("opts,log_n", MODES)
def test_chain_with_wrong_root_or_link_fails(opts, log_n):
    air, steps = prove_chain(log_n, 3, opts)
    res1, ext1, _ = steps[1]
    res2, ext2, _ = steps[2]
    root, link = ext2["init"]
    other_root, other_link = ext1["init"]           # proof 0's final root and link
    for bad in [
        (other_root, link),                          # wrong root
        (root, other_link),                          # right root, wrong link
        (root, None),                                # link missing
        (other_root, other_link),                    # both from another proof
        (res2.proof.roots["final"], res2.links["final"]),   # own post-state as pre-state
        (root, Link(link.z, [link.values[0] + Ext(1), *link.values[1:]])),  # one value off
    ]:
        with pytest.raises(VerificationError):
            verify(air, res2.proof, external={"init": bad}, min_security=0)
    with pytest.raises(VerificationError, match="needs its root"):
        verify(air, res2.proof, external={}, min_security=0)
    verify(air, res2.proof, external=ext2, min_security=0)   # and the right ones pass


@pytest.mark.parametrize("opts,log_n", MODES)
def test_first_proof_with_a_wrong_known_table_fails(opts, log_n):
    air, r, init = instance(log_n, seed=4)
    ext_p, _ = first_proof_externals(init, opts)
    proof = prove_in(air, r.traces, opts, external=ext_p).proof
    other = init.copy()
    other[3] = 1
    _, ext_v = first_proof_externals(other, opts)
    with pytest.raises(VerificationError):
        verify(air, proof, external=ext_v, min_security=0)


@pytest.mark.parametrize("opts,log_n", MODES)
def test_prover_pretending_another_pre_state_fails(opts, log_n):
    """A prover that starts from a pre-state other than the agreed one must
    commit that table itself; its root is not the one the verifier holds."""
    air, r, init = instance(log_n, seed=5)
    forged = init.copy()
    forged[2] = 42
    r2 = run(forged, [(2, None)])
    ext_p, _ = first_proof_externals(forged, opts)
    proof = prove_in(air, r2.traces, opts, external=ext_p, debug=True).proof
    _, ext_v = first_proof_externals(init, opts)
    with pytest.raises(VerificationError):
        verify(air, proof, external=ext_v, min_security=0)


def test_external_commitment_must_be_of_the_trace():
    air, r, init = instance(4, seed=6)
    _, ext_v = first_proof_externals(init)
    wrong = SegmentCommitment.commit(state_table(np.ones(16, dtype=np.int64)), FAST.log_blowup)
    with pytest.raises(ValueError, match="not of this trace"):
        prove(air, r.traces, FAST, external={"init": (wrong, None)})


# --------------------------------------------------------------- soundness --

@pytest.mark.parametrize("opts,n", [pytest.param(FAST, 16, id="transparent"),
                                    pytest.param(ZK, 128, id="zk")])
def test_read_of_a_value_never_written_fails(opts, n):
    init = np.zeros(n, dtype=np.int64)
    r = run(init, [(3, 7), (3, None), (4, None)])
    ops = F.decode(r.traces["ops"]).astype(np.int64)
    assert ops[1, COL["read_val"]] == 7
    ops[1, COL["read_val"]] = ops[1, COL["write_val"]] = 8    # a consistent-looking read of 8
    assert_rejected(MemoryAir(n), dict(r.traces, ops=F.encode(ops)), init, opts)


@pytest.mark.parametrize("opts,n", [pytest.param(FAST, 16, id="transparent"),
                                    pytest.param(ZK, 128, id="zk")])
def test_read_of_an_older_write_fails(opts, n):
    """Reading the value before the last write (with that write's timestamp)."""
    init = np.zeros(n, dtype=np.int64)
    r = run(init, [(3, 7), (3, 8), (3, None)])
    ops = F.decode(r.traces["ops"]).astype(np.int64)
    ops[2, COL["read_val"]], ops[2, COL["read_ts"]] = 7, 1
    ops[2, COL["write_val"]] = 7
    ops[:, COL["range_m"]] = np.bincount(ops[:, 0] - ops[:, COL["read_ts"]], minlength=n)
    assert_rejected(MemoryAir(n), dict(r.traces, ops=F.encode(ops)), init, opts)


@pytest.mark.parametrize("opts,n", [pytest.param(FAST, 8, id="transparent"),
                                    pytest.param(ZK, 128, id="zk")])
def test_reading_from_the_future_fails_by_the_range_check(opts, n):
    """A time-travel trace whose memory multiset balances: step 0 reads what
    step 1 writes, and the final table claims the initial value.  Only the
    timestamp range check stops it."""
    init = np.zeros(n, dtype=np.int64)
    r = run(init, [(1, None), (1, 5)])
    ops = F.decode(r.traces["ops"]).astype(np.int64)
    fin = F.decode(r.traces["final"]).astype(np.int64)
    ops[0, 2:5] = (5, 2, 5)                  # read (1, 5, ts 2), write back (1, 5, ts 1)
    ops[1, 2:5] = (5, 1, 5)                  # read (1, 5, ts 1), write (1, 5, ts 2)
    fin[1, 1], ops[1, COL["final_ts"]] = 0, 0     # final reads (1, 0, ts 0)
    d = ops[:, 0] - ops[:, COL["read_ts"]]
    ops[:, COL["range_m"]] = np.bincount(d[d >= 0], minlength=n)
    air = MemoryAir(n)
    traces = dict(r.traces, ops=F.encode(ops), final=F.encode(fin))
    main = {c: np.ascontiguousarray(traces[s.name][:, j])
            for s in air.main_segments for j, c in enumerate(s.columns)}
    challenges = F.encode(np.random.default_rng(0).integers(0, F.P, (air.num_challenges, 4)))
    mem_sum = air.memory.total(air, main, challenges)
    ts_sum = air.timestamps.total(air, main, challenges)
    assert mem_sum == Ext(0) and ts_sum != Ext(0)     # memory closes, range check does not
    assert_rejected(air, traces, init, opts)


@pytest.mark.parametrize("opts,log_n", [pytest.param(FAST, 6, id="transparent"),
                                        pytest.param(ZK, 7, id="zk")])
def test_final_table_not_matching_the_run_fails(opts, log_n):
    air, r, init = instance(log_n, seed=7)
    written = int(np.flatnonzero(r.final_values)[0])
    for change in ("value", "swap", "ts"):
        fin = F.decode(r.traces["final"]).astype(np.int64)
        ops = F.decode(r.traces["ops"]).astype(np.int64)
        if change == "value":
            fin[written, 1] = (fin[written, 1] + 1) % F.P
        elif change == "swap":
            other = (written + 1) % (1 << log_n)
            fin[[written, other], 1] = fin[[other, written], 1]
        else:
            ops[written, COL["final_ts"]] += 1
        assert_rejected(air, dict(r.traces, final=F.encode(fin), ops=F.encode(ops)), init, opts)


@pytest.mark.parametrize("opts,log_n", MODES)
def test_final_table_of_the_initial_state_fails(opts, log_n):
    """Claiming nothing changed."""
    air, r, init = instance(log_n, seed=8)
    ops = F.decode(r.traces["ops"]).astype(np.int64)
    ops[:, COL["final_ts"]] = 0
    assert_rejected(air, dict(r.traces, final=state_table(init), ops=F.encode(ops)), init, opts)


def _cells():
    """Sampled (segment, row, column) cells, every column of every committed
    segment, in either mode's trace (row -1: the last)."""
    rng = np.random.default_rng(12)
    out = []
    for seg, width in (("final", 2), ("ops", len(OPS_COLUMNS))):
        for col in range(width):
            for row in (0, -1, int(rng.integers(1, 31))):
                out.append((seg, row, col))
    return out


@pytest.mark.parametrize("opts,log_n", MODES)
@pytest.mark.parametrize("seg,row,col", _cells())
def test_any_changed_cell_fails(seg, row, col, opts, log_n):
    air, r, init = instance(log_n, seed=9, cells=32)
    bad = r.traces[seg].copy()
    bad[row, col] = _bump(bad[row, col])
    assert_rejected(air, dict(r.traces, **{seg: bad}), init, opts)


@pytest.mark.parametrize("opts,log_n", MODES)
@pytest.mark.parametrize("row,col", [(0, 0), (0, 1), (9, 0), (9, 1), (31, 0), (31, 1)])
def test_changed_init_cell_fails(row, col, opts, log_n):
    """The init segment is external: a changed cell means another table, whose
    commitment is not the root the verifier holds."""
    air, r, init = instance(log_n, seed=10)
    bad = r.traces["init"].copy()
    bad[row, col] = _bump(bad[row, col])
    com = known_table_commitment(bad, opts.log_blowup, opts.zk)
    traces = dict(r.traces, init=bad)
    with pytest.raises(ConstraintError):
        prove_in(air, traces, opts, external={"init": (com, None)}, debug=True)
    proof = prove_in(air, traces, opts, external={"init": (com, None)}).proof
    _, ext_v = first_proof_externals(init, opts)
    with pytest.raises(VerificationError):
        verify(air, proof, external=ext_v, min_security=0)


@pytest.mark.parametrize("opts,log_n", [pytest.param(FAST, 4, id="transparent"),
                                        pytest.param(ZK, 7, id="zk")])
def test_link_at_another_point_is_refused(opts, log_n):
    """A link is at the point its root selects, nowhere else (a point of the
    prover's choosing, or one in the base field, would void the argument)."""
    air, steps = prove_chain(log_n, 2, opts)
    res1, ext_v, _ = steps[1]
    root, link = ext_v["init"]
    for point in (Ext(5), link.z + Ext(0, 1)):
        with pytest.raises(VerificationError, match="not at the point its root selects"):
            verify(air, res1.proof, external={"init": (root, Link(point, link.values))}, min_security=0)


def test_a_link_is_a_function_of_the_table_alone():
    """The next proof need not wait for the one that commits its pre-state:
    committing the same table again gives the root and Link the earlier
    proof exports and its verifier derives."""
    air, steps = prove_chain(5, 2)
    res0, _, r0 = steps[0]
    again = SegmentCommitment.commit(res0.commitments["final"].trace, FAST.log_blowup)
    assert again.root == res0.proof.roots["final"]
    assert again.link() == res0.links["final"]
    done = verify(air, res0.proof, external=steps[0][1], min_security=0)
    assert done.links["final"] == again.link()

"""zk mode's batch proofs (docs/ZK.md 3.4, 5.7, 7): honest engine/flow.py
batches prove and verify in zk mode and chain from the empty book; a
changed, swapped or tampered leaf, a flipped `resumed`, a batch of the
other mode in a chain are refused; the zk batch file (version 8)
round-trips and refuses truncated and oversized claims; proving twice
under one store key gives the same bytes.  (That the file carries no
record is hiding test (c), tests/test_zk_hiding.py.)

Small shapes with insecure parameters (8 queries, no grinding): a book of
128 slots (S = 128, the smallest at which the masks of 8 queries fit a
degree-3 domain) and ops domains of 256 rows."""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import struct

import numpy as np
import pytest

from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.records import OP_DTYPE, Kind
from zksidecar.prover import poseidon2, zk_keys
from zksidecar.prover import field as F
from zksidecar.prover.orderbook import air, proof_file, verify_report, zk_air, zk_lane
from zksidecar.prover.orderbook.batch import (BookState, prepare_batch, prove_batch, prove_prepared,
                                              verify_batch, verify_chain, verify_history)
from zksidecar.prover.orderbook.params import check_zk_ops_length, zk_proof_options
from zksidecar.prover.orderbook.zk_chain import ZK_FILE_VERSION, ZkChain
from zksidecar.prover.orderbook.zk_encoding import DATA_ELEMENTS
from zksidecar.prover.params import ParameterError, ProofOptions
from zksidecar.prover.proof import ProofFormatError
from zksidecar.prover.prove import ConstraintError
from zksidecar.prover.verify import VerificationError

ZK = ProofOptions(log_blowup=1, num_queries=8, grinding_bits=0, fri_folding_factor=4, fri_max_final_degree=4,
                  zk=True)
TRANSPARENT = dataclasses.replace(ZK, zk=False)
CAP, LOG_CAP, T = 128, 7, 256
KEY = hashlib.sha256(b"tests/test_zk_batch.py store key").digest()


def chain(key: bytes = KEY) -> ZkChain:
    return ZkChain(key, 0, LOG_CAP, T, ZK)


def stream(n: int = 90, seed: int = 3) -> np.ndarray:
    return flow.generate(n, seed, CAP, params=flow.FlowParams(depth=40, take=0.4))


def prove_stream(ops: np.ndarray, cuts=(0, 30, 60, 90), key: bytes = KEY, debug: bool = False):
    """The stream proven as batches 0, 1, ... cut at `cuts`: (proofs, post state)."""
    c, state, out = chain(key), Book(CAP), []
    for b, (lo, hi) in enumerate(zip(cuts, cuts[1:])):
        bp, state, _ = prove_batch(state, ops[lo:hi], ZK, batch_id=b, zk=c, debug=debug)
        out.append(bp)
    return out, state


@pytest.fixture(scope="module")
def proven():
    """Three honest zk batches of one stream, and the engine's own run of it."""
    ops = stream()
    proofs, state = prove_stream(ops, debug=True)
    book = Book(CAP)
    book.process(ops.copy())
    return ops, proofs, state, book


# ------------------------------------------------------------- completeness --

def test_honest_batches_prove_verify_and_chain(proven):
    ops, proofs, state, book = proven
    assert sum(bp.public.n_ops for bp in proofs) == len(ops)
    assert {bp.public.ops_length for bp in proofs} == {T}
    assert all(bp.public.ops is None and bp.public.trades is None for bp in proofs)
    done = verify_chain(proofs, min_security=0)
    assert done.roots["book.post"] == state.root and np.array_equal(state.cells, book.cells)
    assert state.last_ts == int(ops["ts_ns"][-1])
    # the first batch starts from the public empty book: no link
    assert proofs[0].public.pre_link is None and proofs[1].public.pre_link is not None
    # the post-state carries the digest its proof worked out (the next batch's
    # content digest reads it): the digest of the table it committed
    assert state.known_digest == zk_keys.table_digest(state.commitment.trace)


def test_the_lane_holds_operations_then_trades_and_dummies(proven):
    """Rows 0 .. ops - 1 are the operation leaves; the trade and dummy
    leaves follow in the order the batch key draws; the published leaves
    are the lane's Poseidon2 leaves; the trades are the MATCH rows'."""
    ops = proven[0][:30]
    c = chain()
    prep = prepare_batch(Book(CAP), ops, ZK, batch_id=0, zk=c)
    lane, n = prep.zk.lane, len(ops)
    at = {name: j for j, name in enumerate(zk_air.LANE_COLUMNS)}
    types = F.decode(np.ascontiguousarray(lane.matrix[:, [at["lo"], at["lt"], at["ld"]]]))
    assert types[:n, 0].all() and not types[n:, 0].any() and not types[-1].any()
    m = len(prep.trades)
    assert types[:, 1].sum() == m and types[n:-1, 1:].sum(axis=1).all()
    x = np.ascontiguousarray(lane.matrix[:T - 1, at["s0"]: at["s0"] + 16])
    assert np.array_equal(lane.leaves, F.decode(poseidon2.leaf(x)))
    fields = zk_lane.trade_fields(ops, prep.trades, CAP, 1)
    data = F.decode(np.ascontiguousarray(lane.matrix[:, at["e0"]: at["e0"] + 6]))
    assert sorted(map(tuple, data[types[:, 1] == 1])) == sorted(map(tuple, fields))
    # another batch key, another order of the same trades
    again = prepare_batch(Book(CAP), ops, ZK, batch_id=1, zk=c).zk.lane
    assert not np.array_equal(again.leaves, lane.leaves)


def numpy_lane_columns(data, types, salts, blinding, exec_rows):
    """The lane's own columns (LANE_COLUMNS) and its leaves as the numpy
    definition the C builder (csrc/orderbook/lane.c) replaced writes them,
    one column at a time: the builder's oracle."""
    t = len(data)
    at = {c: j for j, c in enumerate(zk_air.LANE_COLUMNS)}
    out = np.zeros((t, len(zk_air.LANE_COLUMNS)), dtype=np.uint32)
    x = F.encode(np.concatenate([salts, data], axis=1))
    out[:, at["s0"]: at["s0"] + 16] = x
    for k, name in enumerate(zk_air.TYPES):
        out[:, at[name]] = F.encode(types[:, k])
    out[0, at["bm"]: at["bm"] + 9] = F.encode(blinding)
    p2 = at[zk_air.P2.names[0]]
    poseidon2.air_registers(x, out=out[:, p2: p2 + poseidon2.AIR_COLUMNS])
    names = air.exec_columns(t)
    fl, sm = exec_rows[:, names.index("fl")], exec_rows[:, names.index("sM")]
    match = np.flatnonzero((sm != 0) & (fl != 0))
    out[match, at["fli"]] = F.inv(np.ascontiguousarray(fl[match]))
    leaf_cols = [at[c] for c in zk_air.P2.output]
    return out, F.decode(F.add(np.ascontiguousarray(out[:t - 1, leaf_cols]), np.ascontiguousarray(x[:t - 1, :8])))


@pytest.mark.parametrize("t", [16, 256])
def test_the_lane_builder_is_the_numpy_definition(t):
    """The lane's own columns and leaves (zk_lane.lane_matrix: the C
    builder and the register kernel) against the numpy definition, on
    random inputs, in a matrix wider than the lane's own columns (the
    record-check block's, not touched); a salt or element that is no field
    element is refused by name."""
    rng = np.random.default_rng(t)
    data = rng.integers(0, 1 << 30, (t, 12), dtype=np.uint32)
    salts = rng.integers(0, F.P, (t, 4), dtype=np.uint32)
    types = rng.integers(0, 2, (t, 3), dtype=np.uint32)
    blinding = rng.integers(0, F.P, 9, dtype=np.uint32)
    width = len(air.exec_columns(t))
    exec_rows = F.encode(rng.integers(0, F.P, (t, width)) * (rng.random((t, width)) < 0.6))
    want, want_leaves = numpy_lane_columns(data, types, salts, blinding, exec_rows)
    matrix = np.full((t, zk_lane.BLOCK + 5), 7, dtype=np.uint32)
    leaves = zk_lane.lane_matrix(matrix, data, types, salts, blinding, exec_rows)
    assert np.array_equal(matrix[:, :zk_lane.BLOCK], want)
    assert (matrix[:, zk_lane.BLOCK:] == 7).all()
    assert np.array_equal(leaves, want_leaves)
    bad = salts.copy()
    bad[t // 2, 3] = F.P
    with pytest.raises(ValueError, match=rf"salts: {F.P} at \({t // 2}, 3\) is not a field element"):
        zk_lane.lane_matrix(matrix, data, types, bad, blinding, exec_rows)
    with pytest.raises(ValueError, match=r"data elements: -1 at \(0, 0\)"):
        zk_lane.lane_matrix(matrix, np.where(np.arange(12) == 0, -1, data.astype(np.int64)), types, salts,
                            blinding, exec_rows)
    for place in (matrix[::-1], matrix[:, ::-1], matrix[:, :zk_lane.BLOCK - 1],    # rows backwards, ...
                  np.lib.stride_tricks.as_strided(matrix, matrix.shape, (4, 4))):  # rows overlapping
        with pytest.raises(ValueError, match="a lane matrix is a writeable uint32 matrix"):
            zk_lane.lane_matrix(place, data, types, salts, blinding, exec_rows)


def test_the_trade_order_is_the_stable_sort_of_its_keys():
    """stable_order is np.argsort's stable sort: on distinct random keys
    (the unstable sort, checked) and on keys with ties (equal keys keep
    their slots' order, docs/ZK_KEYS.md)."""
    rng = np.random.default_rng(5)
    for keys in (rng.integers(0, 1 << 64, 5000, dtype=np.uint64),
                 rng.integers(0, 40, 5000, dtype=np.uint64), np.zeros(7, np.uint64), np.zeros(0, np.uint64),
                 np.r_[rng.integers(0, 1 << 64, 3000, dtype=np.uint64), np.uint64(17), np.uint64(17)]):
        assert np.array_equal(zk_lane.stable_order(keys), np.argsort(keys, kind="stable"))


def test_a_rebuilt_post_state_is_the_proven_one_and_hashes_its_table_once(proven, monkeypatch):
    """BookState.zk_after (the daemon's pre-state of a job) commits the
    post-state the last batch's proof committed: the same root, link and
    table digest, its table hashed once (the digest derives the state key,
    labels the mask and is kept for the next batch's content digest)."""
    ops, proofs, state, book = proven
    hashed = []
    real = zk_keys.table_digest
    monkeypatch.setattr(zk_keys, "table_digest", lambda table: hashed.append(table.shape) or real(table))
    again = BookState.zk_after(chain(), book.cells, int(ops["ts_ns"][-1]), len(proofs) - 1)
    assert again.root == state.root and again.link == state.link
    assert hashed == [state.commitment.trace.shape]
    assert again.table_digest() == state.known_digest and hashed == [state.commitment.trace.shape]


def test_proving_twice_gives_the_same_bytes():
    ops = stream(30, seed=5)
    one = proof_file.encode(prove_batch(Book(CAP), ops, ZK, zk=chain())[0])
    assert proof_file.encode(prove_batch(Book(CAP), ops, ZK, zk=chain())[0]) == one
    other = proof_file.encode(prove_batch(Book(CAP), ops, ZK, zk=chain(bytes(32)))[0])
    assert other != one          # (its length may differ: distinct query rows, docs/ZK.md 12.b)


#: sha256 of the proof file test_a_small_zk_batch_has_its_pinned_bytes_on_every_isa
#: proves, computed from the code (last changed by the Merkle node, one
#: SHA-256 compression, docs/MERKLE.md "Nodes": every root and path moved,
#: with proof format 9 and the zk batch file version 10; before that by zk
#: AIR version 4, the record checks in the book domain, docs/ZK.md 4.1).
#: Pinned so that
#: "the proof bytes are unchanged" is tested rather than claimed: a change
#: of speed or of a kernel (LDE, folds, lane, record block, constraint VM,
#: Merkle) must leave it alone, and a change to it is a change of the
#: statement, the transcript, the proof format or the key expansion, made
#: deliberately and said so in its commit.
PINNED_BATCH_SHA256 = "f40771a9cb1d11c555dfc5fef728d62691d05852035ea2e6a41b14c00ad4ba87"


def test_a_small_zk_batch_has_its_pinned_bytes_on_every_isa(each_isa):
    """The smallest shape zk mode reaches 100 bits at (capacity 2^10, 2^11
    ops rows: production parameters, 149 queries, 11 grinding bits, h =
    318), 1,000 operations from the empty book: the same proof bytes on
    every ISA path, and the pinned ones (PINNED_BATCH_SHA256)."""
    log_cap, rows = 10, 2048
    opts = zk_proof_options(100, log_cap, rows)
    ops = flow.generate(1000, 11, 1 << log_cap, params=flow.FlowParams(depth=40, take=0.4))
    bp = prove_batch(Book(1 << log_cap), ops, opts, zk=ZkChain(KEY, 0, log_cap, rows, opts))[0]
    assert bp.public.n_ops == 1000
    verify_batch(bp)
    assert hashlib.sha256(proof_file.encode(bp)).hexdigest() == PINNED_BATCH_SHA256


# ---------------------------------------------------------------- refusals --

def _refused(bp, match: str):
    with pytest.raises(VerificationError, match=match):
        verify_batch(bp, min_security=0)


def test_a_changed_or_swapped_leaf_is_refused(proven):
    bp = proven[1][1]
    n = bp.public.n_ops
    for edit in (lambda z: z.leaves.__setitem__((3, 2), z.leaves[3, 2] ^ 1),           # an operation leaf
                 lambda z: z.leaves.__setitem__((n + 5, 0), (z.leaves[n + 5, 0] + 1) % F.P),  # a trade slot
                 lambda z: z.leaves.__setitem__([1, 2], z.leaves[[2, 1]]),                  # two swapped
                 lambda z: z.leaves.__setitem__([n - 1, n], z.leaves[[n, n - 1]])):         # op <-> trade
        forged = copy.deepcopy(bp)
        edit(forged.public.zk)
        _refused(forged, "claimed sums do not add up")
    forged = copy.deepcopy(bp)
    forged.public.zk.side_root = bytes(32)
    _refused(forged, "claimed sums do not add up")         # the transcript binds the side root


def test_a_tampered_trade_leaf_in_the_lane_is_refused():
    """A lying prover changes one trade's price in the lane and publishes
    the leaves it then hashes: the lane's trade tuple no longer meets the
    MATCH row that made the trade, and the sum does not close."""
    ops = stream(30, seed=5)
    prep = prepare_batch(Book(CAP), ops, ZK, zk=chain())
    lane, n = prep.zk.lane, len(ops)
    at = {name: j for j, name in enumerate(zk_air.LANE_COLUMNS)}
    row = n + int(np.flatnonzero(F.decode(np.ascontiguousarray(lane.matrix[n:, at["lt"]])))[0])
    price = at["e4"]
    lane.matrix[row, price] = F.encode_int(F.decode_int(int(lane.matrix[row, price])) + 1)
    x = np.ascontiguousarray(lane.matrix[:, at["s0"]: at["s0"] + 16])
    poseidon2.air_registers(x, out=lane.matrix[:, at[zk_air.P2.names[0]]: at[zk_air.P2.names[0]] + 274])
    lane.leaves[:] = F.decode(poseidon2.leaf(x))[:T - 1]
    with pytest.raises(ConstraintError, match="claimed sums do not add up"):
        prove_prepared(prep, ZK, debug=True)
    bp, _, _ = prove_prepared(prep, ZK)
    _refused(bp, "claimed sums do not add up")


def test_resumed(proven):
    """`resumed` is public and proven: flipped in a file, the proof does not
    verify; a batch whose first timestamp is before the pre-state's last is
    proven only as resumed, and then starts a new segment of the chain."""
    ops, proofs = proven[0], proven[1]
    forged = copy.deepcopy(proofs[1])
    forged.public.zk.resumed = True
    _refused(forged, "claimed sums do not add up")
    c = chain()
    bp0, state, _ = prove_batch(Book(CAP), ops[:30], ZK, zk=c)
    late = ops[30:60].copy()
    late["ts_ns"] = late["ts_ns"] - late["ts_ns"][0] + 1      # the clock went back: the engine resumes
    book = Book.from_cells(state.cells.copy())
    book.resume(31, 1)
    state = dataclasses.replace(state, cells=book.cells)       # the proven state (its timestamp) is kept
    with pytest.raises(ValueError, match="before the pre-state's last.*resumed=True"):
        prove_batch(state, late, ZK, batch_id=1, zk=c)
    bp1, _, _ = prove_batch(state, late, ZK, batch_id=1, zk=c, resumed=True)
    assert bp1.public.zk.resumed
    # the AIR binds the bit: a witness made for a resumed batch, proven as
    # continuing, compares its first timestamp with nothing the state holds;
    # a post-state whose last timestamp is not the batch's is no proof either
    prep = prepare_batch(state, late, ZK, batch_id=1, zk=c, resumed=True)
    prep.public.zk.resumed = False
    with pytest.raises(ConstraintError, match="row 0's lpts. is the pre-state's cell"):
        prove_prepared(prep, ZK, debug=True)
    prep = prepare_batch(state, late, ZK, batch_id=1, zk=c, resumed=True)
    prep.zk.post_table[0, -1] += 1
    with pytest.raises(ConstraintError, match="lts4 is the post-state's cell"):
        prove_prepared(prep, ZK, debug=True)
    segments = verify_history([bp0, bp1], min_security=0)
    assert [(s.first_batch, s.last_batch) for s in segments] == [(0, 0), (1, 1)]
    with pytest.raises(VerificationError, match="batch 1: the stream does not continue"):
        verify_chain([bp0, bp1], min_security=0)


def test_a_chain_is_all_one_mode_and_one_height(proven):
    ops, proofs = proven[0], proven[1]
    transparent, _, _ = prove_batch(Book(CAP), ops[:30], TRANSPARENT, batch_id=0)
    _, tstate, _ = prove_batch(Book(CAP), ops[:30], TRANSPARENT, batch_id=0)
    t1, _, _ = prove_batch(tstate, ops[30:60], TRANSPARENT, batch_id=1)
    with pytest.raises(VerificationError, match="batch 1 is a transparent proof in a zk chain: a chain is all one mode"):
        verify_history([proofs[0], t1], min_security=0)
    with pytest.raises(VerificationError, match="batch 1 is a zk proof in a transparent chain"):
        verify_history([transparent, proofs[1]], min_security=0)
    # a zk proof for transparent public inputs, and the reverse
    mixed = dataclasses.replace(proofs[1], public=transparent.public)
    with pytest.raises(VerificationError, match="a zk proof for transparent public inputs"):
        verify_batch(mixed, min_security=0)
    # another ops height in the chain
    with pytest.raises(ValueError, match="one ops height per chain"):
        prove_batch(Book(CAP), ops[:30], ZK, ops_length=2 * T, zk=chain())
    bp0, state, _ = prove_batch(Book(CAP), ops[:30], ZK, zk=chain())
    bp1, _, _ = prove_batch(state, ops[30:60], ZK, batch_id=1, zk=ZkChain(KEY, 0, LOG_CAP, 2 * T, ZK))
    verify_batch(bp1, min_security=0)
    with pytest.raises(VerificationError, match="batch 1 has an ops domain of 512 rows: zk mode keeps one ops "
                                                "height per chain, this chain's is 256"):
        verify_history([bp0, bp1], min_security=0)


def test_a_zk_chain_keeps_one_set_of_proof_options(proven):
    """Batch 1 proven under another FRI plan and grinding (its own proof
    verifies alone): the chain verifier refuses the change, naming the
    batch and what changed (docs/ZK.md section 4, row 22)."""
    ops, proofs = proven[0], proven[1]
    other = dataclasses.replace(ZK, fri_folding_factor=8, grinding_bits=2)
    _, state, _ = prove_batch(Book(CAP), ops[:30], ZK, zk=chain())
    bp1, _, _ = prove_batch(state, ops[30:60], other, batch_id=1, zk=ZkChain(KEY, 0, LOG_CAP, T, other))
    verify_batch(bp1, min_security=0)
    with pytest.raises(VerificationError, match=r"batch 1: a zk chain keeps one set of proof options .*: "
                                                r"grinding_bits 2 \(the chain's 0\), fri_folding_factor 8 "
                                                r"\(the chain's 4\)$"):
        verify_history([proofs[0], bp1], min_security=0)
    verify_history(proofs[:2], min_security=0)


def test_a_zk_chain_starts_from_the_empty_book():
    book = Book(CAP)
    book.process(stream(10).copy())
    with pytest.raises(ValueError, match="starts from the empty book"):
        prove_batch(book, stream(40)[10:20], ZK, zk=chain())
    with pytest.raises(ValueError, match="zk mode proves with its chain"):
        prove_batch(Book(CAP), stream(10), ZK)


def _one_maker_and_takers(n: int) -> np.ndarray:
    """A resting order of 1,000 lots, then n - 1 IOCs taking one lot each:
    every IOC is one execution row (a taker filled by one MATCH is that row
    alone) and two lane rows (its leaf and its trade's)."""
    ops = np.zeros(n, dtype=OP_DTYPE)
    ops["seq"], ops["ts_ns"], ops["account"] = np.arange(1, n + 1), np.arange(n), 5
    ops["kind"], ops["side"], ops["price"], ops["qty"] = Kind.IOC, 1, 100, 1
    ops[0]["kind"], ops[0]["side"], ops[0]["qty"] = Kind.LIMIT, 2, 1000
    return ops


def test_a_lane_that_cannot_hold_the_trades_is_refused():
    """ops + trades + 1 <= T, refused by the lane's builder, which says by
    how much.  A batch reaches it before the S-operation limit or a full
    trace only when its takers sweep many makers that rested before it (a
    batch's own makers take execution rows of their own), as the daemon's
    cuts allow for; here the builder is given the elements directly."""
    ops = np.zeros((41, DATA_ELEMENTS), dtype=np.uint32)
    trades = np.zeros((40, DATA_ELEMENTS), dtype=np.uint32)
    with pytest.raises(zk_lane.LaneFull, match="41 operations and 40 trades do not fit a lane of 64 rows "
                                              r"\(ops \+ trades \+ 1 <= 64: 18 too many\)"):
        zk_lane.place_elements(ops, trades, np.arange(64 - 1 - 41), 64)


def test_a_batch_of_more_operations_than_book_rows_is_refused():
    """A zk batch holds at most S operations (the book domain's rows: its
    record checks take one operation a row): 171 operations on a chain whose
    book domain has 128 rows are refused, naming the excess, though their
    172 execution rows fit the 256-row trace."""
    with pytest.raises(zk_lane.LaneFull, match="171 operations do not fit a zk batch whose book domain has 128 "
                                              "rows .one operation a row: 43 too many."):
        prove_batch(Book(CAP), _one_maker_and_takers(171), ZK, zk=chain())


def test_zk_mode_is_capped_at_2_15_ops_rows():
    with pytest.raises(ParameterError, match=r"at most 2\^15 rows.*at 2\^16 .* at most \d+ bits"):
        check_zk_ops_length(1 << 16, 14)
    # the bits are the statement's at that height (Statement.algebraic_degree's
    # count, both domains' fractions): under the requirement, the message
    # says so; where they would reach it, the cap is the height zk mode is
    # built and tested to
    with pytest.raises(ParameterError, match=r"at 2\^16 its LogUp sum leaves at most 99 bits of conjectured "
                                             r"security, under the 100 required"):
        check_zk_ops_length(1 << 16, 14)
    with pytest.raises(ParameterError, match=r"at 2\^17 its LogUp sum leaves at most 98 bits"):
        check_zk_ops_length(1 << 17, 14)
    with pytest.raises(ParameterError, match=r"the height it is built and tested to, not 65536 \(at 2\^16 its "
                                             r"LogUp sum leaves at most 100 bits"):
        check_zk_ops_length(1 << 16, 12)
    with pytest.raises(ParameterError, match="cannot hold one operation"):
        check_zk_ops_length(1 << 8, 10)
    with pytest.raises(ParameterError, match=r"at most 2\^15 rows"):
        ZkChain(KEY, 0, 14, 1 << 16, ZK)
    opts = zk_proof_options(100, 14, 1 << 15)
    # two domains fold 10 bits (a remainder layer of 2, the book's injection,
    # three of 8): final degree 33, D_F = 33,792, 90 queries for 100 bits
    assert (opts.num_queries, opts.grinding_bits, opts.fri_max_final_degree) == (90, 15, 256)


# -------------------------------------------------------------- the file --

def test_the_zk_batch_file_round_trips(proven):
    for bp in proven[1]:
        raw = proof_file.encode(bp)
        assert proof_file.file_version(raw) == ZK_FILE_VERSION == 10
        back = proof_file.decode(raw)
        assert proof_file.encode(back) == raw
        assert np.array_equal(back.public.zk.leaves, bp.public.zk.leaves)
        assert proof_file.statement_digest(back) == proof_file.statement_digest(bp)
        verify_batch(back, min_security=0)


def test_the_zk_batch_file_refuses_truncated_and_oversized_claims(proven):
    raw = proof_file.encode(proven[1][1])
    head = 4 + 2 + struct.calcsize("<QIBBBQ")
    for cut in list(range(0, head + 80)) + [len(raw) // 3, len(raw) - 1]:
        with pytest.raises(ProofFormatError):
            proof_file.decode(raw[:cut])
    with pytest.raises(ProofFormatError, match="unexpected bytes"):
        proof_file.decode(raw + b"\0")

    def patched(offset: int, fmt: str, value) -> bytes:
        b = bytearray(raw)
        struct.pack_into("<" + fmt, b, offset, value)
        return bytes(b)

    log_t = 4 + 2 + 8 + 4 + 1 + 1
    n_ops = head
    for data, match in ((patched(log_t, "B", 16), r"at most 2\^15"),
                        (patched(log_t, "B", 21), "ops domain of 2"),
                        (patched(n_ops, "I", T), "256 operations in 256 ops rows and 128 book rows .1 to 128"),
                        (patched(n_ops, "I", CAP + 1), "129 operations in 256 ops rows and 128 book rows"),
                        (patched(n_ops, "I", 0), "0 operations"),
                        (patched(n_ops + 4, "B", 2), "flags are bits"),
                        (patched(n_ops + 5, "B", 7), "flags are bits")):
        with pytest.raises(ProofFormatError, match=match):
            proof_file.decode(data)


# --------------------------------------------------------------- the CLI --

def test_zksidecar_prove_zk_and_verify(tmp_path, capsys):
    """`zksidecar prove --zk --key FILE [--new-key]` and `zksidecar verify`
    on zk batch files; the key file's and the out directory's refusals.
    5 bits: at a book of 128 slots no more fit zk mode's masks."""
    import os

    from test_orderbook_cli import CSV
    from zksidecar.tools import proofs
    from zksidecar.tools.cli import main

    src, key = tmp_path / "ops.csv", tmp_path / "store.key"
    src.write_text(CSV)
    args = ["prove", str(src), "--capacity", "128", "--batch-size", "4", "--security", "5", "--zk",
            "--key", str(key)]
    assert main(args + ["--out", str(tmp_path / "a")]) == 2
    assert "No such file" in capsys.readouterr().err
    assert main(args + ["--out", str(tmp_path / "a"), "--new-key"]) == 0
    assert len(key.read_bytes()) == 32 and key.stat().st_mode & 0o777 == 0o600
    files = sorted(str(p) for p in (tmp_path / "a").glob("batch-*.zkb"))
    assert len(files) == 3 and all(proof_file.file_version(open(f, "rb").read()) == ZK_FILE_VERSION for f in files)
    assert main(["verify", "--min-security", "5", *files]) == 0
    # a batch size the book domain cannot hold, the trace sized for it: refused, naming the most
    big = ["prove", str(src), "--capacity", "128", "--batch-size", "200", "--security", "5", "--zk",
           "--key", str(key), "--out", str(tmp_path / "big")]
    assert main(big) == 2
    assert "zk mode proves at most 128 operations a batch with a book of 128 slots" in capsys.readouterr().err
    out = io.StringIO()
    assert proofs.verify_main(files, 5, out=out) == 0
    assert "verified 3 zk batches (10 operations)" in out.getvalue()
    assert main(["verify", *files]) == 1                       # 5 bits, under the default 100
    assert "under the required 100" in capsys.readouterr().err
    # a verification report of a zk chain, continued; refused by a chain of the other mode
    rep, whole = str(tmp_path / "r.json"), str(tmp_path / "whole.json")
    assert proofs.verify_main(files[:2], 5, report=rep, out=io.StringIO()) == 0
    doc = json.loads(open(rep).read())
    assert doc["version"] == 4 and doc["symbols"][0]["mode"] == "zk" and doc["symbols"][0]["last_ts"] == 0
    assert doc["symbols"][0]["zk_chain"]["ops_length"] == 256
    assert verify_report.read(rep).symbols[0].point.options == proof_file.decode(open(files[0], "rb").read()).proof.options
    out = io.StringIO()
    assert proofs.verify_main(files[2:], 5, since=rep, report=str(tmp_path / "r2.json"), out=out) == 0, \
        capsys.readouterr().err
    assert "3 batches, 10 operations verified from the empty book: batches 0..1 by the report" in out.getvalue()
    assert proofs.verify_main(files, 5, report=whole, out=io.StringIO()) == 0
    assert json.loads(open(whole).read()) == json.loads(open(tmp_path / "r2.json").read())
    assert main(args[:-3] + ["--out", str(tmp_path / "t")]) == 0            # the same file, transparent
    plain = sorted(str(p) for p in (tmp_path / "t").glob("batch-*.zkb"))
    assert proofs.verify_main(plain[:2], 5, report=str(tmp_path / "t.json"), out=io.StringIO()) == 0
    capsys.readouterr()
    assert proofs.verify_main(files[2:], 5, since=str(tmp_path / "t.json"), out=io.StringIO()) == 2
    assert f"symbol 0 is a transparent chain in the report, and {files[2]} is a zk proof: a chain is all one " \
           "mode" in capsys.readouterr().err
    assert proofs.verify_main(plain[2:], 5, since=rep, out=io.StringIO()) == 2
    assert "is a zk chain in the report, and" in capsys.readouterr().err
    # the same file, the same key: the same proofs; never over existing files
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    assert [open(f, "rb").read() for f in files] == \
        [open(f, "rb").read() for f in sorted(str(p) for p in (tmp_path / "b").glob("batch-*.zkb"))]
    assert main(args + ["--out", str(tmp_path / "b")]) == 2
    assert "never proves a batch twice" in capsys.readouterr().err
    fresh = tmp_path / "fresh.key"          # refused before a new key is made
    other_key = [str(fresh) if a == str(key) else a for a in args]
    assert main(other_key + ["--out", str(tmp_path / "b"), "--new-key"]) == 2
    assert "never proves a batch twice" in capsys.readouterr().err and not fresh.exists()
    assert main(args + ["--out", str(tmp_path / "c"), "--new-key"]) == 2
    assert "exists" in capsys.readouterr().err
    os.chmod(key, 0o640)
    assert main(args + ["--out", str(tmp_path / "c")]) == 2
    assert "readable by others (mode 640)" in capsys.readouterr().err
    key.write_bytes(b"short")
    os.chmod(key, 0o600)
    assert main(args + ["--out", str(tmp_path / "c")]) == 2
    assert "not a store key (5 bytes" in capsys.readouterr().err
    assert main(["prove", str(src), "--key", str(key)]) == 2
    assert "zk mode's: give --zk" in capsys.readouterr().err

"""Hiding tests on the order book's zk batch proofs (docs/ZK.md section 12;
issue 14's "done when" (a), (b), (c)), each shown failing on transparent
proofs of the same batches, so that a test a leaking implementation passes
would show here.

The candidates are two batches with the same public statement: batch 0
of a chain from the empty book (capacity 128, 256 ops rows), 60
operations from sequence number 1, not resumed; their private operations
differ (engine/flow.py streams of other seeds and parameters: other
prices, quantities, accounts, kinds and trade counts).  Each is proven
many times, under store keys from a fixed master seed (tests only), so
the statistics are deterministic.  Insecure parameters (8 queries) are
fine for hiding: the masks are sized from the queries, and what is
revealed is uniform whatever their number."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from book_modes import OPTS, ZK_OPTS
from hiding import distinguished_kinds, ks_two_sample, layout_counts, revealed_kinds
from test_orderbook_air import random_ops
from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.invariants import COLUMNS, HEADER
from zksidecar.engine.records import Kind
from zksidecar.prover import field as F
from zksidecar.prover.air import Air
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.orderbook import proof_file, zk_lane
from zksidecar.prover.orderbook.batch import BookState, prepare_batch, prove_batch, prove_prepared, verify_batch
from zksidecar.prover.orderbook.zk_air import BLIND_COLUMNS, ZkBookAir
from zksidecar.prover.orderbook.zk_chain import ZkChain
from zksidecar.prover.transcript import Transcript

CAP, LOG_CAP, T, N_OPS = 128, 7, 256, 60
#: proofs per candidate: some 5,000 revealed values of the lane alone each
PROOFS = 40
MASTER = b"tests/test_zk_hiding.py master seed"
TRANSPARENT = dataclasses.replace(ZK_OPTS, zk=False)


def key(i: int) -> bytes:
    """The i-th test store key, from the master seed."""
    return hashlib.sha256(MASTER + i.to_bytes(8, "little")).digest()


def chain(i: int, ops_length: int = T) -> ZkChain:
    return ZkChain(key(i), 0, LOG_CAP, ops_length, ZK_OPTS)


@pytest.fixture(scope="module")
def candidates() -> list[np.ndarray]:
    """Two streams of N_OPS operations (one public statement as batch 0),
    their private fields apart: a quiet book at 100,000 ticks, and a busy
    one at 300,000 with more takers (so more trades), other sizes and
    accounts."""
    a = flow.generate(N_OPS, 21, CAP, params=flow.FlowParams(depth=40, take=0.15, accounts=50))
    b = flow.generate(N_OPS, 22, CAP, params=flow.FlowParams(mid=300_000, depth=30, take=0.6, size_scale=40,
                                                           accounts=5000))
    trades = [len(Book(CAP).process(ops.copy())) for ops in (a, b)]
    assert trades[0] != trades[1] and not np.array_equal(a["price"], b["price"])
    return [a, b]


def zk_samples(bp) -> dict[str, np.ndarray]:
    """Every kind of value a zk batch proof and its file reveal, as v / p
    (bytes as v / 256): the proof's (hiding.revealed_kinds), the operation
    leaves, the trade and dummy leaves, the side root."""
    z = bp.public.zk
    return {**revealed_kinds(bp.proof), "operation leaves": z.leaves[:z.n_ops].ravel() / F.P,
            "trade and dummy leaves": z.leaves[z.n_ops:].ravel() / F.P,
            "side root": np.frombuffer(z.side_root, dtype=np.uint8) / 256.0}


@pytest.fixture(scope="module")
def zk_proofs(candidates):
    """Each candidate proven PROOFS times, proof i under store key i (the
    same keys for both: the statistics see the batches, not the keys)."""
    return [[prove_batch(Book(CAP), ops, ZK_OPTS, zk=chain(i))[0] for i in range(PROOFS)] for ops in candidates]


# ------------------------------------------------------------------- (a) --

def test_a_revealed_values_agree_in_zk_mode_and_not_in_transparent(candidates, zk_proofs):
    """(a): every kind of revealed element (each matrix's values at z and
    w z, its opened rows, the post-state's values at the link point, the
    claimed sums, every FRI layer, the final polynomial, the salts, the
    leaves, the side root) compared between the two candidates by KS and
    a 64-bin chi-square at family-wise alpha = 0.001: indistinguishable in
    zk mode; the same test tells them apart in transparent mode (a batch's
    transparent proofs are identical: two point masses)."""
    for bp in (zk_proofs[0][0], zk_proofs[1][0]):
        verify_batch(bp, min_security=0)
    samples = [[zk_samples(bp) for bp in runs] for runs in zk_proofs]
    assert len(samples[0][0]) >= 20
    assert distinguished_kinds(*samples) == []
    transparent = [[revealed_kinds(prove_batch(Book(CAP), ops, TRANSPARENT, ops_length=T)[0].proof)
                    for _ in range(4)] for ops in candidates]
    told = distinguished_kinds(*transparent)
    assert len(told) >= len(transparent[0][0]) // 2, told


def book_claim(prep, challenges: np.ndarray) -> Ext:
    """The `book` domain's LogUp total of a prepared zk batch's witness (its
    pre- and post-state tables, their write times, the timestamp cells, the
    records segment: its range lookups, op, outcome and link tuples) at
    `challenges`, as a distinguisher holding the batch but not its batch
    key computes it: without the blinding tuple (its columns 0)."""
    tr = prep.zk.traces(prep.witness, prep.pre)
    book = ZkBookAir(prep.public.book_length, prep.public.zk.resumed, prep.public.ops_length,
                     prep.public.log2_capacity)
    main = {c: np.ascontiguousarray(tr["book." + s.name][:, j])
            for s in book.main_segments for j, c in enumerate(s.columns)}
    for c in BLIND_COLUMNS:
        main[c] = np.zeros_like(main[c])
    terms = book.lu.group_sums(book, main, challenges[:book.num_challenges])
    return sum((Ext.from_mont((t.astype(np.uint64).sum(axis=0) % F.P).astype(np.uint32)) for t in terms), Ext(0))


def claim_matches(candidates, monkeypatch) -> np.ndarray:
    """(a2), candidate matching on the claimed sums: each candidate proven
    under three keys; the distinguisher holds both candidate batches,
    reads the challenges from the transcript (here from the prover, which
    draws the same), computes each candidate's `book` domain sum
    (book_claim) and compares it with the proof's claimed sum.  Returns
    matches[proven, candidate]."""
    drawn = {}
    real = Air.claim_shared_sum

    def spy(self, main, challenges, aux):
        if isinstance(self, ZkBookAir):
            drawn["challenges"] = challenges.copy()
        return real(self, main, challenges, aux)

    monkeypatch.setattr(Air, "claim_shared_sum", spy)
    matches = np.zeros((2, 2), dtype=int)
    for i in range(3):
        preps = [prepare_batch(Book(CAP), ops, ZK_OPTS, zk=chain(i)) for ops in candidates]
        for truth, prep in enumerate(preps):
            claim = Ext(*(int(c) for c in prove_prepared(prep, ZK_OPTS)[0].proof.claimed_sums["book"]))
            for c, other in enumerate(preps):
                matches[truth, c] += book_claim(other, drawn["challenges"]) == claim
    return matches


def test_a_claimed_sums_match_no_candidate(candidates, monkeypatch):
    """Hiding needs the `book` domain's claimed sum to match neither
    candidate's (chance: 2^-124): the blinding tuple (zk_air.py) offsets it
    by rho / (alpha - compress(<8, x>)), uniform without the batch key."""
    matches = claim_matches(candidates, monkeypatch)
    assert not matches.any(), f"the claimed sum matches a candidate: {matches.tolist()}"


def test_a_claimed_sums_match_the_proven_candidate_unblinded(candidates, monkeypatch):
    """The test above can fail: with rho = 0 (the blinding tuple's fractions
    vanish, the proofs still verify) the claimed sum is the proven
    candidate's, every time (docs/ZK.md section 10, the leak as found)."""
    real = zk_lane.blinding
    monkeypatch.setattr(zk_lane, "blinding", lambda key: np.concatenate([[0], real(key)[1:]]).astype(np.uint32))
    verify_batch(prove_batch(Book(CAP), candidates[0], ZK_OPTS, zk=chain(0))[0], min_security=0)
    matches = claim_matches(candidates, monkeypatch)
    assert matches.tolist() == [[3, 0], [0, 3]], matches.tolist()


def test_the_blinding_values_come_from_the_batch_key(monkeypatch):
    """zk_lane.blinding: a function of the batch key (the same values
    again, others under another key), rho nonzero; where the stream's
    element 8 is 0, rho is the next nonzero element (docs/ZK_KEYS.md)."""
    a, b = (zk_lane.blinding(hashlib.sha256(bytes([i])).digest()) for i in (1, 2))
    assert np.array_equal(a, zk_lane.blinding(hashlib.sha256(bytes([1])).digest()))
    assert a.shape == (len(BLIND_COLUMNS),) and a[0] != 0 and not np.array_equal(a, b)
    stream = np.array([5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 42, 43], dtype=np.uint32)
    monkeypatch.setattr(zk_lane.zk_keys, "field_elements", lambda key, fields, count: stream[:count].copy())
    assert zk_lane.blinding(bytes(32)).tolist() == [42, 5, 6, 7, 8, 9, 10, 11, 12]


# ------------------------------------------------------------------- (b) --

def test_b_size_and_layout_depend_on_the_statement_only(candidates, zk_proofs, monkeypatch):
    """(b): the two candidates' proofs and batch files have equal lengths
    wherever the counts that follow the query positions agree
    (hiding.layout_counts), and those counts agree in distribution; with
    the query positions fixed by a test hook the files are equal to the
    byte in length and layout.  Transparent files of the same batches
    differ (their lengths follow the trade count), and another statement
    (an ops domain of 512 rows) changes the zk length: the comparison can
    fail."""
    by_counts: dict[tuple, set] = {}
    for runs in zk_proofs:
        for bp in runs:
            by_counts.setdefault(layout_counts(bp.proof), set()).add(len(proof_file.encode(bp)))
    assert all(len(lengths) == 1 for lengths in by_counts.values())
    rows = [np.array([sum(layout_counts(bp.proof)[0]) for bp in runs], dtype=float) for runs in zk_proofs]
    assert ks_two_sample(rows[0], rows[1]) > 0.001

    fixed = list(range(0, 2 * T, 2 * T // ZK_OPTS.num_queries))
    monkeypatch.setattr(Transcript, "challenge_indices", lambda self, count, size: fixed[:count])
    files = [proof_file.encode(prove_batch(Book(CAP), ops, ZK_OPTS, zk=chain(7))[0]) for ops in candidates]
    assert len(files[0]) == len(files[1]) and files[0] != files[1]
    layouts = [layout_counts(proof_file.decode(f).proof) for f in files]
    assert layouts[0] == layouts[1]
    transparent = [len(proof_file.encode(prove_batch(Book(CAP), ops, TRANSPARENT, ops_length=T)[0]))
                   for ops in candidates]
    assert transparent[0] != transparent[1]
    taller = proof_file.encode(prove_batch(Book(CAP), candidates[0], ZK_OPTS, zk=chain(7, 2 * T))[0])
    assert len(taller) != len(files[0])


# ------------------------------------------------------------------- (c) --

def distinctive_batch() -> tuple[Book, np.ndarray]:
    """A book whose slots carry generations from 2^29 (every handle of the
    batch is then a distinctive 8-byte value) and 60 operations of every
    kind against it, their fields moved where no count or small value of
    the file can take them by chance: timestamps from 0x0123_4567_89AB_0000,
    client ids above 2^56, prices from 0x2345_0000, new orders'
    quantities from 0x2A5A_0000 (so fills are that large too), accounts
    from 2^30."""
    book = Book(CAP)
    cells = book.cells.copy()
    gen = HEADER + COLUMNS.index("gen") * CAP
    cells[gen + 1: gen + CAP] = (1 << 29) + 7919 * np.arange(1, CAP, dtype=np.uint32)   # slot 0 is null
    book = Book.from_cells(cells)
    ops = random_ops(N_OPS, 5, CAP, book=book)
    ops["ts_ns"] += np.uint64(0x0123_4567_89AB_0000)
    ops["client_id"] = np.random.default_rng(5).integers(1 << 56, 1 << 63, N_OPS, dtype=np.uint64)
    ops["price"] += np.uint32(0x2345_0000)
    new = (ops["kind"] != Kind.CANCEL) & (ops["kind"] != Kind.REDUCE)
    ops["qty"][new] += np.uint32(0x2A5A_0000)
    ops["account"] = 0x4000_0000 + 7919 * ops["account"]
    return book, ops


def test_c_no_record_bytes_in_the_zk_batch_file():
    """(c): no field of any private record, little-endian, appears in the
    zk batch file; the transparent file of the same batch holds every one
    (so the search finds what is there).  Searched: the operations'
    ts_ns, client_id and handle (8 bytes: every handle carries a
    generation of 2^29 or more), price, qty, account and filled (4 bytes),
    the trades' maker and taker handles (8), price, qty, maker and taker
    accounts (4), each at a value of 2^24 or more: a file of L bytes holds
    a given 4-byte value by chance with probability about L / 2^32 (some
    10^-4 here, 10^-2 over all the needles), an 8-byte one never.  (Not
    2^16 + a few: little-endian, that is two small 16-bit numbers, which
    the proof's own counts and options are; 2^24 and more has a high
    byte no count of this file reaches.)  Not searched: kind, side, flags,
    status, reason and taker_side (one or two bytes: any such value is in
    a file this size by chance), trade counts and fills below 2^24 (small
    numbers likewise), seq and taker_seq
    (first_seq plus a row: the statement's sequence range is public),
    symbol (public), reserved (zero)."""
    book, ops = distinctive_batch()
    zk_chain = ZkChain(key(0), 0, LOG_CAP, T, ZK_OPTS)
    prep = prepare_batch(BookState.zk_after(zk_chain, book.cells, 0, 0), ops, ZK_OPTS, batch_id=1, zk=zk_chain)
    records, trades = prep.zk.ops, prep.trades
    zk_bp = prove_prepared(prep, ZK_OPTS)[0]
    verify_batch(zk_bp, min_security=0)
    t_bp = prove_batch(book, ops, OPTS)[0]
    assert len(trades) >= 10 and (records["handle"] != 0).sum() >= 10
    wide = [int(v) for v in np.r_[records["ts_ns"], records["client_id"], trades["maker_handle"]]]
    wide += [int(h) for h in np.r_[records["handle"], trades["taker_handle"]] if h]
    narrow = [int(v) for v in np.r_[records["price"], records["qty"], records["account"], records["filled"],
                                    trades["price"], trades["qty"], trades["maker_account"],
                                    trades["taker_account"]] if v >= 1 << 24]
    assert all(h >> 32 >= 1 << 29 for h in wide[3 * N_OPS:])
    needles = [v.to_bytes(8, "little") for v in wide] + [v.to_bytes(4, "little") for v in narrow]
    assert len(needles) > 400
    zk_raw, t_raw = proof_file.encode(zk_bp), proof_file.encode(t_bp)
    missing = [n.hex() for n in needles if n not in t_raw]
    assert missing == [], missing
    assert [n.hex() for n in needles if n in zk_raw] == []

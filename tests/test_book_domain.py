"""The order book on two domains (docs/STATEMENT.md, "Two domains";
docs/STATE_DOMAIN.md step 5): chains whose batches have different `ops`
heights, the soundness review's regression tests for the families that
moved (the memory argument across domains, the LogUp split) in both proof
modes, and the refusal of version-3 chains (docs/PROOF_FORMAT.md,
"Migration")."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import test_orderbook_air as base
from zksidecar.engine.book import Book
from zksidecar.engine.records import Kind, Side
from zksidecar.prover import field as F
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.orderbook import prove_batch, proof_file, verify_batch, verify_chain
from zksidecar.prover.orderbook import verify_report
from zksidecar.engine.records import OP_DTYPE, TRADE_DTYPE
from zksidecar.prover.orderbook.air import BookAir, OrderBookAir, book_length
from zksidecar.prover.proof import ProofFormatError
from zksidecar.prover.prove import ConstraintError, prove
from zksidecar.prover.verify import VerificationError

OPTS = base.OPTS


def test_a_chain_of_batches_of_different_ops_heights():
    """The state lives on the book domain (S = the capacity): batches of 16,
    64 and 256 ops rows chain root to root, and the chain's post-state is
    the engine's."""
    cap, book, state, chain = 32, Book(32), Book(32), []
    seq = ts = 0
    for b, n in enumerate((1, 25, 100)):
        ops = base.random_ops(n, 10 + b, cap, first_seq=seq + 1, book=book, ts=ts)
        bp, state, _ = prove_batch(state, ops, OPTS, batch_id=b)
        book.process(ops.copy())
        chain.append(bp)
        seq, ts = seq + n, ts + n
    assert len({bp.public.ops_length for bp in chain}) == 3
    assert {bp.public.book_length for bp in chain} == {cap}
    done = verify_chain(chain, min_security=0)
    assert done.roots["book.post"] == state.root
    assert np.array_equal(state.cells, book.cells)


def test_capacity_below_16_pads_the_book_domain():
    bp, _, _ = prove_batch(Book(8), base.make_ops([(Kind.LIMIT, Side.BUY, 5, 2)]), OPTS, debug=True)
    assert (bp.public.book_length, book_length(8)) == (16, 16)
    verify_batch(bp, min_security=0)


def test_fields_no_tuple_reads_are_bound_by_the_transcript(book_mode):
    """client_id and reserved bytes enter no LogUp tuple: only the ops
    domain's public bytes, absorbed into the transcript, bind them (and the
    batch id and symbol likewise).  Each one changed after proving: the
    proof no longer verifies.  In zk mode the records are not public:
    client_id and reserved are in the side leaves, whose root the public
    bytes bind (a receipt checks its record's side leaf against it)."""
    book = Book(book_mode.capacity(16))
    ops = base.random_ops(6, 3, book.capacity, first_seq=1, book=book)
    bp = base.prove_lie(book_mode, book, ops, base.honest)
    verify_batch(bp, min_security=0)

    def flip_client_id(p):
        if p.zk is None:
            p.ops["client_id"][0] ^= 1
        else:
            p.zk.side_root = bytes([p.zk.side_root[0] ^ 1]) + p.zk.side_root[1:]

    edits = [("client_id", flip_client_id),
             ("batch id", lambda p: setattr(p, "batch_id", p.batch_id + 1)),
             ("symbol", lambda p: setattr(p, "symbol", p.symbol + 1))]
    for what, edit in edits:
        forged = proof_file.decode(proof_file.encode(bp))
        edit(forged.public)
        with pytest.raises(VerificationError):
            verify_batch(forged, min_security=0)


# ------------------------------------------- the memory argument across domains --

def test_a_post_word_at_a_late_timestamp_is_refused(book_mode):
    """`pts` (the book domain) must be the time of the address's last write
    in `ops`: a post word consumed at another time matches no supply."""
    def tamper(w, ops_, trades):
        w.pts[3] += 1                       # the bid's slot, never written: pts 0 -> 1
    base.assert_lie(book_mode, base.batch((Kind.IOC, Side.BUY, 100, 3)), tamper, base.SUM)


def _rest_past_the_book(mode, debug: bool):
    """A lying engine rests an order at address S, one past the book domain
    (docs/STATEMENT.md, "Every address below S is a word"; the two-domain
    review's L1): its pre-state's free head points there, and the REST, the
    header's best bid and the old best bid's link say S.  Every step rule
    holds; only the memory argument can refuse it (no `book` row supplies
    address S's word, nor consumes what the REST writes there)."""
    import test_orderbook_review as review
    from zksidecar.engine.proof_table import proof_table
    from zksidecar.prover.orderbook.batch import BookState, state_table
    from zksidecar.prover.orderbook.zk_chain import zk_state_table
    book, ops = base.mode_book(mode), base.batch((Kind.LIMIT, Side.BUY, 96, 2))
    prep = mode.prepare(book, ops)
    w, c = prep.witness, prep.witness.columns
    S = len(w.pre)
    cells = book.cells.copy()
    cells[4] = S                                       # ZK_HDR_FREE_HEAD: past the table
    if mode.zk:                                        # the state batch 0 of the chain left, as it is
        table = F.encode(zk_state_table(state_table(cells, S), 0))
        com = prep.zk.chain.commit_state(table, prep.zk.chain.state_key(0, table))
        prep.pre = BookState(cells, com, com.link(), 0)
    else:
        prep.pre = BookState.commit(cells, OPTS.log_blowup)
    prep.public.pre_root, prep.public.pre_link = prep.pre.root, prep.pre.link
    w.pre = proof_table(cells)
    r = base.first(c, "sR")
    c["aA"][r] = c["os"][r] = S                        # the REST's address and the handle it reports
    for col in ("nH0", "nC5"):                         # best bid; the old best bid's link to it
        c[col][r] = S
    review._rethread_reads(w)
    c["nH4"][r] = c["oA6"][r]                          # the free head moves on to the word's next-free cell
    review._rethread_reads(w)
    records, trades = mode.records(prep)
    records = records.copy()
    records["handle"][0] = S
    mode.commit(prep, records, trades)
    return mode.prove(prep, debug)


def test_an_access_past_the_book_domain_is_refused(book_mode, monkeypatch):
    """The lie passes every step rule (debug names no constraint but the
    sum) and does not verify; with the verifier's bound on handles (slot <
    capacity) in place it is refused before any proof is read.  zk mode has
    no such bound in plain code (check 15 of docs/ZK.md section 4 pins a
    live new order's handle to 30-bit parts, which S is): the sum alone
    refuses it there, as it does here without the bound."""
    from zksidecar.prover.orderbook import air as air_mod, batch as batch_mod
    from zksidecar.prover.orderbook.batch import BatchRejected
    with monkeypatch.context() as m:
        for mod in (air_mod, batch_mod):            # zk mode has nothing in plain code to patch
            m.setattr(mod, "noncanonical", lambda *a: None)
        with pytest.raises(ConstraintError, match=base.SUM):
            _rest_past_the_book(book_mode, debug=True)
        bp = _rest_past_the_book(book_mode, debug=False)
        with pytest.raises(VerificationError):
            verify_batch(bp, min_security=0)
    if not book_mode.zk:
        with pytest.raises(BatchRejected, match="not canonical"):
            verify_batch(bp, min_security=0)


# ------------------------------------------------------------- the LogUp split --

def _claims_shifted(mode, delta: Ext):
    """A batch proven with the book domain's claim +delta and the ops
    domain's -delta (their total still the target): the test double moves
    each domain's claim after the prover computed it."""
    prep = mode.prepare(base.mode_book(mode), base.batch((Kind.IOC, Side.BUY, 100, 3)))
    from zksidecar.prover.air import Air
    real = Air.claim_shared_sum

    def shifted(self, main, challenges, aux):
        t = real(self, main, challenges, aux)
        return t + delta if isinstance(self, BookAir) else t - delta
    return prep, shifted


def test_claims_shifted_between_domains_are_refused(book_mode, monkeypatch):
    """Sum of claims = target, but each domain's running sum closes on its
    own rows' total: a claim moved by +d on `book` and -d on `ops` breaks
    both relations at the wrap (debug names the book's)."""
    prep, shifted = _claims_shifted(book_mode, Ext(5, 1, 0, 0))
    from zksidecar.prover.air import Air
    monkeypatch.setattr(Air, "claim_shared_sum", shifted)
    with pytest.raises(ConstraintError, match=r"lu: sum' - sum = term - target/N"):
        book_mode.prove(prep, debug=True)
    bp = book_mode.prove(prep)
    monkeypatch.undo()
    with pytest.raises(VerificationError, match="out-of-domain"):
        verify_batch(bp, min_security=0)


def test_a_claim_off_the_target_is_refused_at_once(book_mode):
    """Claims that do not add up to -public_sum: the verifier refuses the
    proof on the sums, before the constraint check.  The target moves with
    a public trade (transparent mode) or a published leaf (zk mode: the
    leaf table is the target)."""
    prep = book_mode.prepare(base.mode_book(book_mode), base.batch((Kind.IOC, Side.BUY, 100, 3)))
    if book_mode.zk:
        leaves = prep.public.zk.leaves.copy()
        leaves[0, 0] = (leaves[0, 0] + 1) % F.P
        prep.public.zk.leaves = leaves
    else:
        trades = prep.public.trades.copy()
        trades["price"][0] = 101                  # the public trade table moves the target
        prep.public.trades = trades
    bp = book_mode.prove(prep)
    with pytest.raises(VerificationError, match="claimed sums"):
        verify_batch(bp, min_security=0)


# -------------------------------------------------------------- migration --

def _v3_header() -> bytes:
    return proof_file.MAGIC + struct.pack("<HQIBIQ", 3, 0, 0, 4, 64, 1) + bytes(64)


def test_a_version_3_proof_file_is_refused_naming_its_version(tmp_path, capsys):
    with pytest.raises(ProofFormatError, match="batch proof version 3 is not supported: this build "
                                               "reads version 9"):
        proof_file.decode(_v3_header())
    assert proof_file.file_version(_v3_header()) == 3
    f = tmp_path / "batch-000000.zkb"
    f.write_bytes(_v3_header())
    from zksidecar.tools.cli import main
    assert main(["verify", str(f)]) == 2
    assert "version 3 is not supported" in capsys.readouterr().err


def test_a_version_1_verification_report_is_refused(tmp_path):
    f = tmp_path / "report.json"
    f.write_text(json.dumps({"format": verify_report.FORMAT, "version": 1}))
    with pytest.raises(verify_report.ReportError, match="version 1 is not supported"):
        verify_report.read(str(f))


def test_a_daemon_store_holding_a_version_3_chain_is_refused(tmp_path):
    from zksidecar.daemon.journal import ReplayMismatch
    from zksidecar.daemon.recovery import refuse_old_chains
    from zksidecar.daemon.store import ProofStore
    with ProofStore(str(tmp_path / "store"), fsync=False) as store:
        bp, _, _ = prove_batch(Book(16), base.make_ops([(Kind.LIMIT, Side.BUY, 5, 1)]), OPTS)
        store.put(1, 0, proof_file.encode(bp))
        refuse_old_chains(store)                       # a version-6 chain: nothing to say
        store.put(2, 0, _v3_header())
        with pytest.raises(ReplayMismatch, match="holds a version-3 chain \\(symbol 2, batch 0\\).*"
                                                 "new store") as refused:
            refuse_old_chains(store)
        assert refused.value.unusable           # this release cannot continue it: the daemon exits 2


def test_a_comparisons_top_limb_is_bounded_at_every_allowed_ops_height():
    """The two lookups of a comparison's top limb (itself in [0, T') and,
    scaled by 2^s, in [0, T') again) admit exactly the tops below
    2^(30 - (k-1)L) at every ops height the AIR accepts: the scaling never
    wraps mod p there.  From 2^21 rows on it would (thousands of large
    tops pass), which is why the AIR refuses those heights."""
    from zksidecar.prover.field import P
    from zksidecar.prover.orderbook.air import MAX_LOG_OPS, limbs_for

    for log_t in range(4, MAX_LOG_OPS + 2):
        L, k = limbs_for(1 << log_t)
        s = k * L - 30
        tops = np.arange(1 << L, dtype=np.int64)
        passing = tops[(tops << s) % P < (1 << L)]
        exact = np.array_equal(passing, np.arange(1 << (30 - (k - 1) * L)))
        assert exact == (log_t <= MAX_LOG_OPS), log_t


def test_an_ops_height_past_the_limbs_bound_is_refused_everywhere():
    from zksidecar.prover.orderbook.air import MAX_LOG_OPS
    from zksidecar.prover.orderbook.witness import check_trace_length

    too_tall = 1 << (MAX_LOG_OPS + 1)
    with pytest.raises(ValueError, match="comparisons' limbs"):
        OrderBookAir(too_tall, 4, np.zeros(0, OP_DTYPE), np.zeros(0, TRADE_DTYPE), 1)
    with pytest.raises(ValueError, match=f"up to 2\\^{MAX_LOG_OPS}"):
        check_trace_length(too_tall, 16)


def test_a_zero_knowledge_proof_in_a_transparent_batch_file_is_refused():
    """A zk (format 7) proof of the transparent batch statement, wrapped in
    a transparent (version 6) batch proof file, is refused by the decoder
    (it would be checked against the transparent statement's figures and
    anchors; zk batches have a file version of their own,
    tests/test_zk_batch.py).  The zk proof is a test double built the way
    the zk-mode review built it."""
    import dataclasses

    from zksidecar.engine import flow
    from zksidecar.prover import params, zk_keys
    from zksidecar.prover.masking import Mask, StateKey
    from zksidecar.prover.orderbook import batch as B
    from zksidecar.prover.proof import mask_degree
    from zksidecar.prover.prove import SegmentCommitment

    zk = params.ProofOptions(log_blowup=2, num_queries=4, grinding_bits=1, fri_folding_factor=4,
                             fri_max_final_degree=4, zk=True)
    ops = flow.generate(20, seed=5, capacity=128, params=flow.FlowParams(depth=8))
    prep = B.prepare_batch(Book(128), ops, dataclasses.replace(zk, zk=False), ops_length=128, batch_id=0)
    st = prep.public.statement(prep.public.air(prep.classified))
    pre = prep.pre.commitment.trace
    mask = Mask.for_state(StateKey.of(zk_keys.derive(bytes(32), ("s",)), pre), pre.shape[1], mask_degree(st, zk),
                          pre.shape[0].bit_length() - 1 + zk.log_blowup)
    com = SegmentCommitment.commit(pre, zk.log_blowup, mask)
    traces = prep.witness.traces()
    res = prove(st, traces, zk, external={"book.pre": (com, com.link())}, zk_key=bytes(range(32)),
                state_keys={"book.post": StateKey.of(zk_keys.derive(bytes(32), ("p",)), traces["book.post"])})
    public = dataclasses.replace(prep.public, pre_root=com.root, pre_link=com.link())
    raw = proof_file.encode(B.BatchProof(res.proof, public))
    with pytest.raises(ProofFormatError, match=r"a zk \(format 9\) proof in a transparent batch proof file"):
        proof_file.decode(raw)

"""daemon/recovery.py: the journal replayed and reconciled with the proof
store, whose proofs are authoritative.  Each case is a way the two disagree
after a crash or damage: a journal tail lost after its batch's proof was
stored, a damaged stored proof, a stored proof of other operations, a
journal corrupt in the middle.  After recovery the chain of proofs is whole
and verifies (tools' verify_store), with every operation proven once."""
from __future__ import annotations

import io
import os
import zlib

import numpy as np
import pytest

from zksidecar.daemon.batches import BatchPolicy, CloseReason
from zksidecar.daemon.jobs import ProofJob, prove_job
from zksidecar.daemon.journal import (BatchMark, Journal, JournalCorrupt, JournalError, ReplayMismatch,
                                      set_aside_corruption)
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.recovery import recover
from zksidecar.daemon.sequencer import Sequencer
from zksidecar.daemon.store import ProofStore
from zksidecar.engine.flow import FlowParams, generate
from zksidecar.prover.orderbook import proof_file
from zksidecar.tools.proofs import verify_store

CAP, T, BITS = 16, 128, 20
POLICY = BatchPolicy(24, 1.0)


def flow(n):
    return generate(n, seed=11, capacity=CAP, params=FlowParams(depth=8))


def sequencer(journal=None) -> Sequencer:
    return Sequencer(CAP, T, POLICY, Metrics(), journal=journal)


def prove_into(store: ProofStore, batches) -> None:
    for b in batches:
        proof = prove_job(ProofJob.of(b, BITS))
        store.put(b.symbol, b.batch_id, proof_file.encode(proof), replace=True)


def run_live(tmp_path, ops, chunk=10):
    """The live path: records journaled then sequenced, every closed batch
    proven and stored.  Returns the journal segment's size after each
    chunk (where a power loss could cut it)."""
    sizes = []
    with Journal(str(tmp_path / "journal"), fsync="never") as journal, \
            ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        seq = sequencer(journal)
        for i in range(0, len(ops), chunk):
            recs = ops[i:i + chunk]
            journal.append_ops(recs, i)
            prove_into(store, seq.feed(recs, np.zeros(len(recs), np.int64), 0.0))
            sizes.append(os.path.getsize(tmp_path / "journal" / "journal-000000.zkj"))
    return sizes


def proven_in_small_segments(tmp_path, ops) -> int:
    """`ops` journaled, sequenced and every batch proven into a store of one
    proof a segment (for retention to remove some); returns the proofs."""
    with Journal(str(tmp_path / "journal"), fsync="never") as journal, \
            ProofStore(str(tmp_path / "proofs"), fsync=False, segment_bytes=256) as store:
        seq = sequencer(journal)
        journal.append_ops(ops, 0)
        prove_into(store, seq.feed(ops, np.zeros(len(ops), np.int64), 0.0))
        prove_into(store, seq.close_all(CloseReason.SHUTDOWN))
        return len(store)


def restart(tmp_path, more=None):
    """A restart: recovery, its batches proven, then `more` records fed live
    and everything still open closed and proven.  Returns Recovered."""
    with Journal(str(tmp_path / "journal"), fsync="never") as journal, \
            ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        seq = sequencer(journal)
        got = recover(journal, store, seq, tail_records=64)
        prove_into(store, got.todo)
        if more is not None:
            journal.append_ops(more, 0)
            prove_into(store, seq.feed(more, np.zeros(len(more), np.int64), 0.0))
        prove_into(store, seq.close_all(CloseReason.SHUTDOWN))
    return got


def check_chain(tmp_path, n_ops):
    out = io.StringIO()
    assert verify_store(str(tmp_path / "proofs"), BITS, out=out) == 0, out.getvalue()
    assert f"{n_ops:,} operations verified" in out.getvalue()


def test_a_journal_tail_lost_after_its_proof_was_stored_is_rebuilt_from_the_store(tmp_path):
    """The operator's case: the journal (fsync interval or never) loses its
    tail in a power failure, after the last batch's proof reached the
    store.  Recovery must not re-cut that batch with later operations; it
    rebuilds it from the proof and writes it back to the journal, and the
    engine's next operations continue the chain with no hole."""
    ops = flow(120)
    sizes = run_live(tmp_path, ops[:60])            # batches 0 (1..24) and 1 (25..48) proven
    path = tmp_path / "journal" / "journal-000000.zkj"
    with open(path, "r+b") as f:
        f.truncate(sizes[3])                      # the records from 41 on and batch 1's mark: lost
    got = restart(tmp_path)
    assert got.repaired == 1 and [b.batch_id for b in got.todo] == []
    with Journal(str(tmp_path / "journal")) as journal:
        marks = [e for e in journal.replay() if isinstance(e, BatchMark)]
    assert [(m.batch_id, m.first_seq, m.last_seq) for m in marks] == [(0, 1, 24), (1, 25, 48)]
    # the engine goes on from 49 (49..60 were lost with the tail: they re-arrive, as on the ring)
    restart(tmp_path, more=ops[48:120])
    check_chain(tmp_path, 120)
    # and a restart after that changes nothing
    again = restart(tmp_path)
    assert again.todo == [] and again.repaired == 0 and again.stored == 5


@pytest.mark.parametrize("damage", ["proof bytes", "proof bytes, index lost", "entry header"])
def test_a_damaged_stored_proof_is_proven_again_and_superseded(tmp_path, damage):
    """A flipped bit in the middle of the store (the proof's bytes, or its
    entry's header; with the index or without it): the store still opens,
    says which proof is damaged, and recovery proves that batch again from
    the journal, superseding it."""
    ops = flow(72)
    run_live(tmp_path, ops)                       # batches 0, 1, 2
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        proof = store.get(0, 1)
    data = tmp_path / "proofs" / "store-000000.zkd"
    raw = bytearray(data.read_bytes())
    at = raw.find(proof)
    raw[at + 1000 if damage.startswith("proof") else at - 20] ^= 0x40   # its checksums catch it
    data.write_bytes(bytes(raw))
    if damage.endswith("index lost"):
        os.remove(tmp_path / "proofs" / "index.zki")
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        assert "checksum" in store.check(0, 1) or "damaged" in store.check(0, 1)
    got = restart(tmp_path)
    assert got.damaged == 1 and [b.batch_id for b in got.todo] == [1]
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        assert store.check(0, 1) is None and len(store) == 3
        with pytest.raises(Exception, match="already stored"):
            store.put(0, 1, b"x" * 64, replace=True)      # a sound proof is never replaced
    check_chain(tmp_path, 72)


def test_a_stored_proof_of_other_operations_stops_the_start(tmp_path):
    """The store's batch 1 covers other operations than the journal's mark
    says: nothing is re-cut against what was proven; start-up stops."""
    ops = flow(48)
    run_live(tmp_path, ops)
    with Journal(str(tmp_path / "journal"), fsync="never") as journal:
        entries = list(journal.replay())
    # rewrite the journal: the same records, batch 1's mark one record short
    os.rename(tmp_path / "journal", tmp_path / "old")
    with Journal(str(tmp_path / "journal"), fsync="never") as journal:
        for e in entries:
            if isinstance(e, BatchMark):
                if e.batch_id == 1:
                    e = BatchMark(e.symbol, 1, e.first_seq, e.last_seq - 1, e.priority)
                journal.append_batch(e)
            else:
                journal.append_ops(e.records, e.seen_ns)
    with pytest.raises(ReplayMismatch, match="batch 1 is operations 25..47 in the journal, but its "
                                             "stored proof covers 25..48") as refused:
        restart(tmp_path)
    assert not refused.value.unusable       # the state contradicts itself: not a configuration's misfit


def test_a_stored_proof_from_another_book_stops_the_start(tmp_path):
    """The journal lost batch 1's records and mark, and the store's batch 1
    does not start from the book the journal gives: refused, not rebuilt."""
    sizes = run_live(tmp_path, flow(48))
    other = tmp_path / "other"
    run_live(other, generate(48, seed=99, capacity=CAP))       # another stream's batch 1
    with ProofStore(str(other / "proofs"), fsync=False) as foreign:
        raw = foreign.get(0, 1)
    # a store holding our batch 0 and the other stream's batch 1
    os.rename(tmp_path / "proofs", tmp_path / "old-proofs")
    with ProofStore(str(tmp_path / "old-proofs"), fsync=False) as old, \
            ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        store.put(0, 0, old.get(0, 0))
        store.put(0, 1, raw)
    with open(tmp_path / "journal" / "journal-000000.zkj", "r+b") as f:
        f.truncate(sizes[2])                      # batch 1's mark lost
    with pytest.raises(ReplayMismatch, match="batch 1: its stored proof starts from another book"):
        restart(tmp_path)


def test_a_journal_corrupt_in_the_middle_is_set_aside_then_rebuilt(tmp_path):
    """A damaged entry in the middle of the journal stops a start with its
    file and byte; `zksidecar journal repair` sets aside everything from
    there (renamed, nothing deleted), and recovery rebuilds what the store
    proves."""
    ops = flow(72)
    sizes = run_live(tmp_path, ops)
    path = tmp_path / "journal" / "journal-000000.zkj"
    raw = bytearray(path.read_bytes())
    raw[sizes[1] + 40] ^= 0xFF                     # inside the third entry's payload
    path.write_bytes(bytes(raw))
    with pytest.raises(JournalCorrupt, match=f"corrupt journal entry at byte {sizes[1]}"):
        restart(tmp_path)
    notes = set_aside_corruption(str(tmp_path / "journal"))
    assert len(notes) == 1 and "set aside" in notes[0]
    assert os.path.getsize(path) == sizes[1]
    assert [p for p in os.listdir(tmp_path / "journal") if ".corrupt-" in p]
    got = restart(tmp_path)
    assert got.repaired == 3 and got.todo == []
    check_chain(tmp_path, 72)


def test_a_stream_that_resumed_past_a_gap_verifies_in_segments(tmp_path):
    """Operations 41..60 never reach the sidecar: the stream resumes at 61
    (a break), every batch is proven, and `zksidecar verify --store` reports
    the chain BROKEN in two segments that each verify (exit status 3) —
    never as whole, and a proof of the second segment that does not verify
    still fails it."""
    ops = flow(120)
    stream = np.concatenate([ops[:40], ops[60:]])
    with Journal(str(tmp_path / "journal"), fsync="never") as journal, \
            ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        seq = Sequencer(CAP, T, POLICY, Metrics(), journal=journal, resync_after=4)
        for i in range(0, len(stream), 10):
            recs = stream[i:i + 10]
            journal.append_ops(recs, i)
            prove_into(store, seq.feed(recs, np.zeros(len(recs), np.int64), 0.0))
        prove_into(store, seq.close_all(CloseReason.SHUTDOWN))
        assert seq.breaks == 1
        ids = store.batches(0)
    out = io.StringIO()
    assert verify_store(str(tmp_path / "proofs"), BITS, out=out) == 3
    text = out.getvalue()
    assert "BROKEN" in text and "resumed at 61 (operations 41..60 never reached the sidecar)" in text
    assert "100 operations verified root to root in 2 segments" in text
    # the second segment's last proof, damaged: a failure, not a break
    data = tmp_path / "proofs" / "store-000000.zkd"
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        raw = bytearray(store.get(0, ids[-1]))
    raw[len(raw) - 200] ^= 0x01
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        store.put(0, ids[-1] + 1, bytes(raw))        # a forged extra batch at the end
    assert verify_store(str(tmp_path / "proofs"), BITS, out=io.StringIO()) == 1
    assert data.exists()


def test_a_break_cannot_hide_a_changed_book(tmp_path):
    """A forger keeps the honest batch 0, then proves a 'batch 1' whose
    sequence numbers jump (as after a break) but which starts from the empty
    book instead of batch 0's: every proof verifies on its own, and the
    history is refused, not reported as a break."""
    from zksidecar.engine.book import Book
    from zksidecar.prover.orderbook import prove_batch
    from zksidecar.prover.orderbook.params import proof_options

    ops = flow(60)
    run_live(tmp_path, ops[:24])                  # honest batch 0: operations 1..24
    forged = Book(CAP)
    forged.resume(30, int(ops["ts_ns"][29]))      # the empty book, as if 1..29 never happened
    work = ops[29:50].copy()
    proof, _, _ = prove_batch(forged, work, proof_options(BITS, 16, T), ops_length=T, batch_id=1)
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        store.put(0, 1, proof_file.encode(proof))
    out = io.StringIO()
    assert verify_store(str(tmp_path / "proofs"), BITS, out=out) == 1
    assert "batch 1: its pre-state is not the previous post-state" in out.getvalue()


def test_journal_repair_sets_aside_after_a_missing_segment_and_refuses_another_version(tmp_path):
    jdir = tmp_path / "journal"
    with Journal(str(jdir), segment_bytes=4096, fsync="never") as journal:
        for i in range(0, 240, 10):
            journal.append_ops(flow(240)[i:i + 10], i)
    names = sorted(p.name for p in jdir.glob("journal-*.zkj"))
    assert len(names) >= 4
    os.remove(jdir / names[1])                        # a segment lost in the middle
    with pytest.raises(JournalCorrupt, match="a segment file is missing"):
        list(Journal(str(jdir)).replay())
    notes = set_aside_corruption(str(jdir))
    assert len(notes) == len(names) - 2 and all("after a missing segment" in n for n in notes)
    with Journal(str(jdir)) as journal:
        assert sum(len(e.records) for e in journal.replay()) > 0
    # a journal of another format version is not damaged: refused, nothing changed
    seg = jdir / names[0]
    raw = bytearray(seg.read_bytes())
    raw[4] = 9                                        # the first entry's version byte ...
    raw[28:32] = zlib.crc32(bytes(raw[:28])).to_bytes(4, "little")   # ... its header sealed again
    seg.write_bytes(bytes(raw))
    before = sorted(p.name for p in jdir.iterdir())
    with pytest.raises(Exception, match="another version of zksidecar"):
        set_aside_corruption(str(jdir))
    assert sorted(p.name for p in jdir.iterdir()) == before


def test_journal_repair_of_a_directory_with_no_journal_changes_nothing(tmp_path):
    """`zksidecar journal repair` of an empty directory (a wrong path) is
    refused naming it, and leaves no LOCK file behind."""
    with pytest.raises(JournalError, match="no journal segments"):
        set_aside_corruption(str(tmp_path))
    assert list(tmp_path.iterdir()) == []

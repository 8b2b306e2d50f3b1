"""The proof backlog within a memory budget (daemon/backlog.py) and batches
rebuilt from the journal (daemon/rebuild.py): under a budget too small for
any batch every batch waits as its journal mark, and is still proven, in
priority order, with proofs that verify; a rebuilt batch is the batch the
live path closed (the same job, the same proof bytes), whichever snapshot
it starts from; a daemon restarted on an unproven backlog is READY before
the backlog is rebuilt, then proves all of it."""
from __future__ import annotations

import io
import threading

import numpy as np
import pytest

from daemon_helpers import Daemon
from test_recovery import BITS, CAP, POLICY, T, prove_into
from test_snapshots import live, sequence_live, sequencer, two_symbols
from zksidecar.daemon.backlog import Backlog, mark_of, witness_bytes
from zksidecar.daemon.batches import Batch, CloseReason
from zksidecar.daemon.jobs import ProofJob, prove_job
from zksidecar.daemon.journal import BatchMark, Journal, ReplayMismatch
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.priority import ProofPriority
from zksidecar.daemon.rebuild import Rebuilder
from zksidecar.daemon.recovery import recover
from zksidecar.daemon.sequencer import Inbox, Sequencer
from zksidecar.daemon.store import ProofStore
from zksidecar.daemon.workers import WorkerPool
from zksidecar.prover.orderbook import proof_file
from zksidecar.tools.proofs import verify_store


def closed_live(tmp_path, chunks, every_ops=100):
    """The live path (journal, sequencer thread, checkpoints); the batches it
    closed, in order, with the journal left open for rebuilding."""
    journal = Journal(str(tmp_path / "journal"), fsync="never")
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        closed, _ = sequence_live(journal, store, chunks, every_ops)
    return journal, closed


def same_job(a: Batch, b: Batch) -> bool:
    x, y = ProofJob.of(a, BITS), ProofJob.of(b, BITS)
    return (x.symbol, x.batch_id, x.trace_length) == (y.symbol, y.batch_id, y.trace_length) and all(
        np.array_equal(getattr(x, f), getattr(y, f)) for f in ("pre_cells", "ops", "steps", "trades"))


def test_a_rebuilt_batch_is_the_live_one_with_the_same_proof(tmp_path):
    """Every batch of two symbols, asked for in an order that sends the
    cursors back to snapshots (the last first, then from the start), is
    rebuilt to the live batch; one proof of each is byte for byte the
    same."""
    journal, closed = closed_live(tmp_path, two_symbols(300))
    try:
        rebuild = Rebuilder(journal, sequencer, max_cursors=2)
        order = closed[-1:] + closed[:-1]
        for b in order:
            got = rebuild.batch(mark_of(b))
            assert same_job(got, b), (b.symbol, b.batch_id)
            assert got.priority == b.priority and np.array_equal(got.seen_ns, b.seen_ns)
        assert rebuild.cursors_started >= 3          # the jump back started cursors at snapshots
        assert rebuild.replayed_ops < 3 * 600        # each operation replayed about once
        b = closed[len(closed) // 2]
        assert proof_file.encode(prove_job(ProofJob.of(rebuild.batch(mark_of(b)), BITS))) == \
            proof_file.encode(prove_job(ProofJob.of(b, BITS)))
        # a mark the journal does not hold is refused with its name
        bad = BatchMark(0, 10_000, 1, 2, 2)
        with pytest.raises(ReplayMismatch, match="batch 10000"):
            rebuild.batch(bad)
    finally:
        journal.close()


def test_a_rebuild_holds_one_batch_of_records_when_the_marks_lag_far_behind(tmp_path):
    """A sequencer that lags ingest (overload) writes each mark long after
    its batch's records: here every record is journaled before the first
    mark.  Rebuilding the batches (a later one first: its cursor passes
    batches it does not keep, whose marks it looks ahead for) holds at most
    a batch and a journal entry of the symbol's records at a time (not
    every record read before the mark), and gives the live batches."""
    chunks = two_symbols(400)
    with Journal(str(tmp_path / "journal"), fsync="never") as journal:
        for recs in chunks:
            journal.append_ops(recs, 0)
        seq = sequencer()                       # the live path's batches, marked after all records
        closed = [b for recs in chunks for b in seq.feed(recs, np.zeros(len(recs), np.int64), 0.0)]
        closed += seq.close_all(CloseReason.SHUTDOWN)
        for b in closed:
            journal.append_batch(mark_of(b))
        rebuild = Rebuilder(journal, sequencer)
        most = 0
        for b in closed[8:9] + closed:
            assert same_job(rebuild.batch(mark_of(b)), b), (b.symbol, b.batch_id)
            most = max(most, max(sum(len(r) for r in h.recs)
                                 for c in rebuild._cursors for h in c.held.values()))
        assert most <= POLICY.max_batch_size + max(len(c) for c in chunks)
        assert rebuild.cursors_started == 3       # the jump back started one more
        assert rebuild.replayed_ops < 2 * sum(len(c) for c in chunks)


class _HeldSpy(Sequencer):
    """Test double: a sequencer that records the most records handed to it
    at once (recovery's replay hands it what it held for a symbol)."""

    most = 0

    def replay(self, mark, recs, seen_ns, now):
        self.most = max(self.most, len(recs))
        return super().replay(mark, recs, seen_ns, now)

    def feed(self, recs, seen_ns, now, **kw):
        self.most = max(self.most, len(recs))
        return super().feed(recs, seen_ns, now, **kw)


def test_recovery_holds_one_batch_of_records_when_the_marks_lag_far_behind(tmp_path):
    """A daemon killed while its sequencer lagged far behind ingest: every
    record journaled, then the marks of the first half of the batches.
    Recovery closes each marked batch at its last record and feeds the
    records no mark follows as it reads them: it never holds more than a
    batch and a journal entry of a symbol, and recovers every operation
    (the marked batches as the live path closed them)."""
    chunks = two_symbols(400)
    with Journal(str(tmp_path / "journal"), fsync="never") as journal, \
            ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        for recs in chunks:
            journal.append_ops(recs, 0)
        seq = sequencer()
        closed = [b for recs in chunks for b in seq.feed(recs, np.zeros(len(recs), np.int64), 0.0)]
        marked = closed[:len(closed) // 2]
        for b in marked:
            journal.append_batch(mark_of(b))
        spy = _HeldSpy(CAP, T, POLICY, Metrics(), journal=journal)
        got = recover(journal, store, spy, tail_records=64)
        assert spy.most <= POLICY.max_batch_size + max(len(c) for c in chunks)
        open_ops = sum(s.open_count for s in spy.shadows.values())    # the live path's open batches
        assert got.unproven_ops + open_ops == sum(len(c) for c in chunks)
        by_id = {(b.symbol, b.batch_id): b for b in got.todo}
        assert all(same_job(by_id[b.symbol, b.batch_id], b) for b in marked)


def test_a_backlog_over_its_budget_keeps_marks_and_proves_all_in_priority_order(tmp_path):
    """A budget that holds no batch: every batch queued as its mark, none
    dropped; with one worker and no aging the pool takes them strictly by
    priority (FIFO within a level), each rebuilt, and the store's chains
    verify with every operation proven once."""
    journal, closed = closed_live(tmp_path, two_symbols(150))
    levels = list(ProofPriority.__members__.values())[:4]
    for k, b in enumerate(closed):
        b.priority = levels[(k * 7) % 4]
    keep = witness_bytes(closed[0])           # the first fits; every later one waits as its mark
    done: list[tuple[Batch, object]] = []
    finished = threading.Event()
    backlog = Backlog(keep, Rebuilder(journal, sequencer), BITS, age_step=None)
    for b in closed:
        backlog.add(b)
    st = backlog.status()
    assert (st["queued_in_memory"], st["queued_on_disk"]) == (1, len(closed) - 1)
    assert st["memory_bytes"] <= keep and backlog.ops == sum(len(b.ops) for b in closed)

    def on_done(batch, future):
        done.append((batch, future))
        if len(done) == len(closed):
            finished.set()

    try:
        with WorkerPool(1) as pool, ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
            backlog.start(pool, on_done, lambda: 1)
            assert finished.wait(120), backlog.status()
            for batch, future in done:
                res = future.result()
                assert res.ok, res.error
                store.put(batch.symbol, batch.batch_id, res.proof)
        backlog.close()
    finally:
        journal.close()
    assert backlog.status()["rebuilt"] == len(closed) - 1 and backlog.pending == 0
    want = sorted(closed, key=lambda b: (int(b.priority), closed.index(b)))
    assert [(b.symbol, b.batch_id) for b, _ in done] == [(b.symbol, b.batch_id) for b in want]
    out = io.StringIO()
    assert verify_store(str(tmp_path / "proofs"), BITS, out=out) == 0, out.getvalue()
    assert "300 operations" in out.getvalue()


def test_a_restart_is_ready_before_its_backlog_is_rebuilt_then_proves_it(tmp_path):
    """A journal of two symbols with a third of its batches proven: the
    daemon answers with most of the backlog still marks on disk (the
    recovery rebuilt none of them), then proves every batch."""
    live(tmp_path, two_symbols(300), every_ops=100, prove=6)
    d = Daemon(tmp_path, capacity=CAP, batch=POLICY.max_batch_size,
               settings={"book": {"trace_length": T}, "workers": {"security_bits": 80},
                         "limits": {"memory_mib": 64}})
    try:
        st = d.start().status()
        waiting = st["backlog"]
        assert st["counts"]["recovered_batches"] == 30
        assert waiting["queued_on_disk"] + waiting["in_pool"] + waiting["queued_in_memory"] \
            + st["counts"]["proven"] == 30
        assert waiting["queued_on_disk"] >= 10          # READY came before they were rebuilt
        st = d.wait_for(lambda s: s["counts"]["proven"] == 30, timeout=120, what="the backlog proven")
        assert st["backlog"]["rebuilt"] >= 10 and st["backlog"]["rebuild_failed"] == 0
        assert d.stop() == 0
    finally:
        d.cleanup()
    out = io.StringIO()
    assert verify_store(str(tmp_path / "proofs"), BITS, out=out) == 0, out.getvalue()
    assert "verified 2 symbols, 36 batches, 600 operations" in out.getvalue()


def test_an_inbox_past_its_limit_reads_its_records_back_from_the_journal(tmp_path):
    """Ingest's items beyond the inbox's limit keep only their journal
    place; the sequencer gets the same records, in order."""
    chunks = two_symbols(60)
    with Journal(str(tmp_path / "journal"), segment_bytes=4096, fsync="never") as journal:
        inbox = Inbox(journal, limit=25)
        for k, recs in enumerate(chunks):
            inbox.put((recs, k, journal.append_ops(recs, k)))
        assert inbox.spilled == len(chunks) - 2 and inbox.held == 20
        for k, recs in enumerate(chunks):
            got, seen, _ = inbox.get(timeout=1)
            assert seen == k and got.tobytes() == recs.tobytes()
        assert inbox.held == 0 and inbox.empty()


class DonePool:
    """Test double for the proof pool: every job's future is done when it
    is submitted (with an error: the batch below is not a provable one)."""

    def submit(self, job, priority):
        from concurrent.futures import Future

        f = Future()
        f.set_running_or_notify_cancel()
        f.set_exception(RuntimeError("a test double's job"))
        return f


def test_a_batch_is_handed_on_before_it_leaves_the_backlogs_count():
    """A batch whose proof is done is handed to the finisher while the
    backlog still counts it, so the daemon's proofs_in_flight (the backlog's
    count, then the finisher's) never reads 0 for a proof not stored."""
    from test_finisher import batch as test_batch
    from test_workers import wait_until

    seen = []
    backlog = Backlog(1 << 30, None, BITS)
    backlog.start(DonePool(), lambda b, f: seen.append(backlog.pending), lambda: 1)
    try:
        backlog.add(test_batch(0))
        wait_until(lambda: seen, "the batch handed on")
        assert seen == [1]
        wait_until(lambda: backlog.pending == 0, "the batch out of the backlog's count")
    finally:
        backlog.close()

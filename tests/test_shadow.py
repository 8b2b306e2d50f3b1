"""The shadow book (daemon/shadow.py): batch cuts, divergences, refused
records, batches its owner closes, and a journal replay that reproduces the
live cuts exactly (daemon/sequencer.py, daemon/recovery.py)."""
from __future__ import annotations


import numpy as np
import pytest

from zksidecar.daemon.batches import BatchPolicy, CloseReason
from zksidecar.daemon.journal import BatchMark, Journal, ReplayMismatch
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.priority import ProofPriority
from zksidecar.daemon.recovery import recover
from zksidecar.daemon.sequencer import Sequencer
from zksidecar.daemon.shadow import BatchOverflow, ShadowBook
from zksidecar.daemon.store import ProofStore
from zksidecar.engine.book import Book, StreamError
from zksidecar.prover.orderbook.witness import fold, max_rows, trace_length_for
from zksidecar.engine.flow import FlowParams, generate
from zksidecar.engine.records import FLAG_CLAIMED, FLAG_CRITICAL, Status

CAP = 64


def flow(n=600, seed=3, **kw):
    return generate(n, seed, CAP, params=FlowParams(depth=30, **kw))


def feed(shadow, ops, chunks, policy, now=0.0):
    """Apply `ops` in the given chunk sizes; returns every closed batch and
    the Applied results."""
    closed, results, i = [], [], 0
    for size in chunks:
        a = shadow.apply(ops[i:i + size], np.arange(i, i + size, dtype=np.int64)[:len(ops[i:i + size])],
                         now, policy)
        closed += a.closed
        results.append(a)
        i += size
        if i >= len(ops):
            break
    return closed, results


def check_batches(batches, ops):
    """Batches are consecutive, each one's pre-cells run to the next one's,
    each carries the engine's traced run of its operations from its cells
    (outcomes, trades, steps: the witness), and together they are the
    engine's run of `ops`."""
    book = Book(CAP)
    expected = ops.copy()
    book.process(expected)
    seq = 1
    for k, b in enumerate(batches):
        assert b.first_seq == seq
        again = Book.from_cells(b.pre_cells)
        work = b.ops.copy()
        trades, steps = again.process_traced(work)
        assert (work == b.ops).all()
        assert trades.tobytes() == b.trades.tobytes() and steps.tobytes() == b.steps.tobytes()
        assert fold(steps).sum() <= b.trace_length - 1
        if k + 1 < len(batches):
            assert (again.cells == batches[k + 1].pre_cells).all()
        seq = b.last_seq + 1
    done = np.concatenate([b.ops for b in batches])
    assert (done == expected[:len(done)]).all()


def policy(size=100, timeout=1.0, critical_qty=0):
    return BatchPolicy(size, timeout, critical_qty)


def shadow_for(size=100, trace=None):
    return ShadowBook(0, CAP, trace or trace_length_for(CAP, size))


def test_batches_close_at_max_size_whatever_the_chunks():
    ops = flow()
    for chunks in ([600], [1] * 600, [7, 250, 3, 340], [99, 1, 100, 400]):
        shadow = shadow_for(100)
        closed, _ = feed(shadow, ops, chunks, policy(100))
        assert [len(b.ops) for b in closed] == [100] * 6
        assert [b.batch_id for b in closed] == list(range(6))
        assert all(b.reason == "size" and b.priority == ProofPriority.NORMAL for b in closed)
        check_batches(closed, ops)
        assert (closed[2].seen_ns == np.arange(200, 300)).all()


def test_a_critical_operation_closes_its_batch_at_once():
    ops = flow()
    ops["flags"][130] |= FLAG_CRITICAL
    ops["qty"][[10, 20]] = [5000, 4999]
    shadow = shadow_for(100)
    closed, _ = feed(shadow, ops, [50, 550], policy(100, critical_qty=5000))
    assert [(b.first_seq, b.last_seq, b.reason) for b in closed[:3]] == \
        [(1, 11, "critical"), (12, 111, "size"), (112, 131, "critical")]
    assert [b.priority for b in closed[:3]] == [ProofPriority.CRITICAL, ProofPriority.NORMAL,
                                                ProofPriority.CRITICAL]
    check_batches(closed, ops)


def test_timeout_closes_an_open_batch():
    ops = flow(60)
    shadow, p = shadow_for(100), policy(100, timeout=0.5)
    assert shadow.apply(ops[:40], np.zeros(40, np.int64), 10.0, p).closed == []
    assert shadow.tick(10.4, p) is None
    shadow.apply(ops[40:], np.zeros(20, np.int64), 10.45, p)     # the age counts from the first op
    b = shadow.tick(10.5, p)
    assert (b.reason, len(b.ops)) == ("timeout", 60)
    assert shadow.tick(20.0, p) is None and shadow.close(CloseReason.SHUTDOWN) is None


def test_a_batch_never_takes_more_rows_than_its_trace_holds():
    ops = flow(800, take=0.6)
    t = trace_length_for(CAP, 1)             # room for one worst-case operation, not 100 typical ones
    shadow = shadow_for(trace=t)
    closed, _ = feed(shadow, ops, [33] * 40, policy(100))
    closed.append(shadow.close(CloseReason.SHUTDOWN))
    assert any(b.reason == "steps" for b in closed)
    for b in closed:
        _, steps = Book.from_cells(b.pre_cells).process_traced(b.ops.copy())
        assert fold(steps).sum() <= t - 1
    check_batches(closed, ops)


def test_a_run_that_fills_the_trace_is_split_not_run_again(monkeypatch):
    """Runs that overflow the open batch's trace are cut there: the first
    part closes it (STEPS), the rest opens the next batch from the cells
    between them (the first part's post-state); the engine runs each
    operation once, however the records arrive."""
    ops = flow(800, take=0.6)
    t = trace_length_for(CAP, 1)
    for chunks in ([800], [33] * 25, [250, 1, 549]):
        ran = []
        real = Book.process_traced
        monkeypatch.setattr(Book, "process_traced", lambda book, o: ran.append(len(o)) or real(book, o))
        monkeypatch.setattr(Book, "process", lambda *a: pytest.fail("an untraced run"))
        shadow = shadow_for(trace=t)
        closed, _ = feed(shadow, ops, chunks, policy(100))
        closed.append(shadow.close(CloseReason.SHUTDOWN))
        monkeypatch.undo()
        assert sum(ran) == len(ops)
        steps_closes = sum(b.reason == "steps" for b in closed)
        assert steps_closes >= (2 if len(chunks) == 1 else 1)     # one run split more than once
        check_batches(closed, ops)


def test_a_trace_too_short_for_one_operation_is_refused():
    with pytest.raises(ValueError, match="cannot hold one operation"):
        ShadowBook(0, CAP, 64)                 # a power of two under max_rows(CAP) + 1 = 127
    assert max_rows(CAP) + 1 > 64
    ShadowBook(0, CAP, 128)


def test_divergent_claims_are_reported_and_the_batch_holds_the_rules_outcome():
    ops = flow(200)
    truth = ops.copy()
    Book(CAP).process(truth)
    claimed = truth.copy()
    claimed["flags"] |= FLAG_CLAIMED
    claimed["filled"][17] += 1                          # the engine lies twice
    claimed["status"][150] = Status.CANCELLED if truth["status"][150] != Status.CANCELLED else Status.RESTED
    shadow = shadow_for(100)
    closed, results = feed(shadow, claimed, [200], policy(100))
    divs = [d for r in results for d in r.divergences]
    assert [d.seq for d in divs] == [18, 151]
    assert divs[0].claimed["filled"] == divs[0].computed["filled"] + 1
    assert [b.divergent for b in closed] == [[18], [151]]
    assert all(b.priority == ProofPriority.HIGH for b in closed)
    assert (closed[0].ops["filled"] == truth["filled"][:100]).all()


def test_a_record_that_breaks_the_stream_is_refused_and_the_rest_goes_on():
    ops = flow(120)
    bad = np.concatenate([ops[:50], ops[49:50], ops[50:]])            # seq 50 again
    bad["ts_ns"][0] = bad["ts_ns"][0]
    shadow = shadow_for(100)
    closed, results = feed(shadow, bad, [121], policy(100))
    refused = [r for a in results for r in a.refused]
    assert [(r.seq, r.reason, "the stream is at 51" in r.why) for r in refused] == \
        [(50, "replayed", True)]
    closed.append(shadow.close(CloseReason.SHUTDOWN))
    check_batches(closed, ops)


def test_a_batch_its_owner_closes_is_never_cut_and_overflows_whole():
    """Without a policy (an API request, a replay) nothing cuts the records;
    records that overflow the trace change nothing at all."""
    ops = flow(300)
    shadow = shadow_for(trace=256)
    a = shadow.apply(ops[:40], np.zeros(40, np.int64), 0.0, None)
    assert a.closed == [] and shadow.open_count == 40 and a.taken == 40
    cells, count = shadow.book.cells.copy(), shadow.open_count
    with pytest.raises(BatchOverflow, match="trace rows; its 256-row trace holds 255"):
        shadow.apply(ops[40:], np.zeros(260, np.int64), 0.0, None)
    assert (shadow.book.cells == cells).all() and shadow.open_count == count
    b = shadow.close(CloseReason.FLUSH)
    assert (b.first_seq, b.last_seq, b.reason) == (1, 40, "flush")
    check_batches([b], ops)


def test_a_critical_request_and_the_stream_check():
    ops = flow(20)
    shadow = shadow_for(100)
    a = shadow.apply(ops[:5], np.zeros(5, np.int64), 0.0, policy(100))
    b = shadow.apply(ops[5:6], np.zeros(1, np.int64), 0.0, policy(100), priority=ProofPriority.CRITICAL)
    assert a.closed == [] and [(x.last_seq, x.reason, x.priority) for x in b.closed] == \
        [(6, "critical", ProofPriority.CRITICAL)]
    with pytest.raises(StreamError, match="sequence number 9, expected 8"):
        shadow.check_stream(np.concatenate([ops[6:7], ops[8:9]]))
    assert shadow.book.next_seq == 7


def live_journal(tmp_path, ops, p):
    """The daemon's live path into a real journal: ingest's entries, then
    the sequencer's marks as it closes batches.  Returns the live sequencer."""
    rng = np.random.default_rng(5)
    journal = Journal(str(tmp_path / "journal"))
    live = Sequencer(CAP, trace_length_for(CAP, p.max_batch_size), p, Metrics(), journal=journal)
    i, now = 0, 0.0
    while i < len(ops):
        chunk = ops[i:i + int(rng.integers(1, 90))]
        journal.append_ops(chunk, i)
        live.feed(chunk, np.full(len(chunk), i, np.int64), now)
        now += 0.1
        live.tick(now)
        i += len(chunk)
    journal.close()
    return live


def test_replay_reproduces_the_live_cuts(tmp_path):
    """The journal holds the records as ingest saw them and a mark per closed
    batch; a fresh sequencer replaying it closes exactly the same batches,
    and what follows the last mark continues as the open batch."""
    ops = flow(700)
    ops["flags"][300] |= FLAG_CRITICAL
    p = policy(128, timeout=0.5)
    live = live_journal(tmp_path, ops, p)
    with Journal(str(tmp_path / "journal")) as journal:
        marks = [e for e in journal.replay() if isinstance(e, BatchMark)]
    assert len(marks) == live.shadows[0].next_batch_id >= 5
    again = Sequencer(CAP, trace_length_for(CAP, 128), p, Metrics())
    with Journal(str(tmp_path / "journal")) as journal, ProofStore(str(tmp_path / "proofs")) as store:
        got = recover(journal, store, again, tail_records=256)
    assert [(b.batch_id, b.first_seq, b.last_seq) for b in got.todo] == \
        [(m.batch_id, m.first_seq, m.last_seq) for m in marks]     # none proven yet: all again
    assert {b.reason for b in got.todo} == {"replay"}
    assert got.replayed_ops == 700 and len(got.tail) >= 256
    assert again.shadows[0].open_count == live.shadows[0].open_count
    assert (again.shadows[0].book.cells == live.shadows[0].book.cells).all()
    check_batches(got.todo, ops)


def test_a_journal_that_contradicts_itself_is_refused(tmp_path):
    ops = flow(300)
    live_journal(tmp_path, ops, policy(128))          # 256-row traces
    with Journal(str(tmp_path / "journal")) as journal, ProofStore(str(tmp_path / "proofs")) as store:
        small = Sequencer(CAP, 128, policy(128), Metrics())
        with pytest.raises(ReplayMismatch, match=r"cut under another configuration: a larger cap .*"
                           r"\[book\] trace_length.*never shrink") as misfit:
            recover(journal, store, small, tail_records=16)
        assert misfit.value.unusable        # the configuration is what the journal does not fit: exit 2
        skipped = Sequencer(CAP, 256, policy(128), Metrics())
        skipped.shadow(0).next_batch_id = 1
        with pytest.raises(ReplayMismatch, match="marks batch 0, expected 1") as contradiction:
            recover(journal, store, skipped, tail_records=16)
        assert not contradiction.value.unusable


def test_an_apply_that_raises_changes_nothing():
    """The engine failing part way through a call (here a test double that
    raises on the third chunk the policy cuts) leaves the shadow book, its
    open batch and its batch ids as they were: nothing half applied."""
    ops = flow(40)
    shadow = shadow_for(100)
    shadow.apply(ops[:5], np.zeros(5, np.int64), 0.0, policy(10))
    cells, count, next_id = shadow.book.cells.copy(), shadow.open_count, shadow.next_batch_id
    real, calls = shadow.book.process_traced, []

    def failing(work):
        calls.append(len(work))
        if len(calls) == 3:
            raise MemoryError("test double: the engine ran out of memory")
        return real(work)

    shadow.book.process_traced = failing
    with pytest.raises(MemoryError):
        shadow.apply(ops[5:], np.zeros(35, np.int64), 0.0, policy(10))
    assert len(calls) == 3                      # two batches had closed before it failed
    assert (shadow.book.cells == cells).all() and shadow.open_count == count
    assert shadow.next_batch_id == next_id
    closed = shadow.apply(ops[5:], np.zeros(35, np.int64), 0.0, policy(10)).closed
    assert [b.first_seq for b in closed] == [1, 11, 21, 31]
    check_batches(closed, ops)


# ------------------------------------------------------- bad streams --

def test_one_stray_record_past_a_gap_never_stops_the_stream():
    """A record with a sequence number far ahead is held, then refused when
    the stream goes on; every record after it is applied."""
    ops = flow(100)
    stray = ops[40:41].copy()
    stray["seq"] = 1_000_000
    bad = np.concatenate([ops[:40], stray, ops[40:]])
    shadow = shadow_for(100)
    closed, results = feed(shadow, bad, [7] * 20, policy(100))
    refused = [r for a in results for r in a.refused]
    assert [(r.seq, r.reason, r.count) for r in refused] == [(1_000_000, "unconfirmed", 1)]
    assert not any(a.breaks for a in results) and shadow.book.next_seq == 101
    assert [len(b.ops) for b in closed] == [100]
    check_batches(closed, ops)


def test_a_stream_that_lost_operations_resumes_with_a_recorded_break():
    """Operations 31..60 never arrive: after `resync_after` records that
    continue each other from 61, the open batch closes (break), the book
    skips to 61 and the stream goes on; before that many, they are held."""
    ops = flow(120)
    lost = np.concatenate([ops[:30], ops[60:]])
    shadow = ShadowBook(0, CAP, trace_length_for(CAP, 100), resync_after=4)
    p = policy(100)
    a = shadow.apply(lost[:33], np.zeros(33, np.int64), 0.0, p)       # 61, 62, 63 held
    assert a.breaks == [] and a.closed == [] and shadow.book.next_seq == 31
    b = shadow.apply(lost[33:], np.zeros(len(lost) - 33, np.int64), 0.0, p)
    assert [(x.symbol, x.expected, x.resumed) for x in b.breaks] == [(0, 31, 61)]
    assert [(x.first_seq, x.last_seq, x.reason) for x in b.closed] == [(1, 30, "break")]
    after = shadow.close(CloseReason.SHUTDOWN)
    assert (after.first_seq, after.last_seq) == (61, 120)
    # the batch after the break runs from the book before it, seq skipped: its own ops by the rules
    again = Book.from_cells(after.pre_cells)
    assert again.next_seq == 61
    work = after.ops.copy()
    again.process(work)
    assert (work == after.ops).all()


def test_replay_makes_the_same_stream_decisions(tmp_path):
    """Strays, a lost run and a replayed duplicate, through the live path
    into a journal; recovery from it gives the same batches and state."""
    ops = flow(400)
    stray = ops[50:51].copy()
    stray["seq"] = 9_999
    dup = ops[99:100].copy()
    stream = np.concatenate([ops[:50], stray, ops[50:100], dup, ops[100:200], ops[230:]])
    p = policy(64, timeout=0.5)
    live = live_journal(tmp_path, stream, p)
    assert live.breaks == 1 and live.refused == 2
    again = Sequencer(CAP, trace_length_for(CAP, 64), p, Metrics())
    with Journal(str(tmp_path / "journal")) as journal, ProofStore(str(tmp_path / "proofs")) as store:
        got = recover(journal, store, again, tail_records=64)
    assert again.breaks == 1 and again.refused == 2
    assert (again.shadows[0].book.cells == live.shadows[0].book.cells).all()
    assert again.shadows[0].open_count == live.shadows[0].open_count
    firsts = [b.first_seq for b in got.todo]
    assert 231 in firsts and all(not (200 < f < 231) for f in firsts)


def test_critical_closes_are_rate_limited():
    ops = flow(200)
    ops["flags"] |= FLAG_CRITICAL                # garbage flags: every operation Critical
    shadow = shadow_for(100)
    a = shadow.apply(ops, np.zeros(200, np.int64), 0.0, BatchPolicy(100, 1.0, critical_per_s=5))
    reasons = [b.reason for b in a.closed]
    assert reasons.count("critical") == 5 and reasons.count("size") >= 1
    # past the rate a Critical operation is an ordinary one: it raises no priority either
    assert all((b.priority == ProofPriority.CRITICAL) == (b.reason == "critical") for b in a.closed)
    later = flow(260)[200:]                     # a second later the bucket holds 5 again
    later["flags"] |= FLAG_CRITICAL
    b = shadow.apply(later, np.zeros(60, np.int64), 1.0, BatchPolicy(100, 1.0, critical_per_s=5))
    assert [x.reason for x in b.closed].count("critical") == 5


def test_garbage_symbols_take_no_slot():
    """Records of unknown symbols start a shadow book only at sequence
    number 1: random symbols and sequence numbers are refused, counted,
    and a clean symbol that comes later is still taken."""
    rng = np.random.default_rng(7)
    junk = flow(2000)
    junk["symbol"] = rng.integers(1, 1 << 31, 2000)
    junk["seq"] = rng.integers(2, 1 << 62, 2000)
    seq = Sequencer(CAP, trace_length_for(CAP, 100), policy(100), Metrics(), max_symbols=4)
    seq.feed(junk, np.zeros(2000, np.int64), 0.0)
    assert seq.shadows == {} and seq.refused + seq.unstarted == 2000 and seq.unstarted <= 64
    clean = flow(50)
    clean["symbol"] = 3
    seq.feed(clean, np.zeros(50, np.int64), 0.0)
    assert list(seq.shadows) == [3] and seq.shadows[3].book.next_seq == 51


def test_a_timestamp_far_ahead_does_not_stop_the_stream():
    """One record with the next sequence number and a timestamp far in the
    future is applied (the rules allow it); the records after it, earlier
    in time, are held and, `resync_after` of them later, resume the stream
    with its time set back (a break), instead of being refused for ever."""
    ops = flow(80)
    bad = ops.copy()
    bad["ts_ns"][30] = bad["ts_ns"][30] | (1 << 62)
    shadow = ShadowBook(0, CAP, trace_length_for(CAP, 100), resync_after=4)
    a = shadow.apply(bad, np.zeros(80, np.int64), 0.0, policy(100))
    assert [(x.expected, x.resumed) for x in a.breaks] == [(32, 32)]
    assert shadow.book.next_seq == 81 and not a.refused
    assert [b.reason for b in a.closed] == ["break"] and a.closed[0].last_seq == 31


def test_batches_freed_by_a_resume_replay_to_the_same_state(tmp_path):
    """A resume frees more records than a batch holds: the live path cuts
    them into several batches; a replay of the journal, whose last mark
    falls among them, ends in the same state (what no mark covers is
    applied after the marks)."""
    ops = flow(120)
    stream = np.concatenate([ops[:20], ops[40:]])
    p = policy(8, timeout=0.5)
    journal = Journal(str(tmp_path / "journal"))
    live = Sequencer(CAP, trace_length_for(CAP, 8), p, Metrics(), journal=journal, resync_after=20)
    journal.append_ops(stream[:20], 0)
    live.feed(stream[:20], np.zeros(20, np.int64), 0.0)
    for k in range(20, 44, 4):
        journal.append_ops(stream[k:k + 4], k)
        live.feed(stream[k:k + 4], np.zeros(4, np.int64), 0.0)
    journal.close()
    assert live.breaks == 1
    again = Sequencer(CAP, trace_length_for(CAP, 8), p, Metrics(), resync_after=20)
    with Journal(str(tmp_path / "journal")) as j, ProofStore(str(tmp_path / "proofs")) as store:
        recover(j, store, again, tail_records=16)
    assert (again.shadows[0].book.cells == live.shadows[0].book.cells).all()
    assert again.shadows[0].open_count == live.shadows[0].open_count
    assert again.shadows[0].held == live.shadows[0].held == 0


def test_marks_a_full_disk_refuses_wait_and_go_out_in_order(tmp_path):
    """Closing a batch writes its mark to the journal first; a full disk
    (JournalFull, here from a test double of the journal) holds the batches
    back, `blocked` says why, and the next call marks them in order: only
    marked batches are handed on to be proven."""
    from zksidecar.daemon.journal import JournalFull

    class FullJournal:
        """Test double: refuses marks while `full`."""

        def __init__(self):
            self.full, self.marks = True, []

        def append_batch(self, mark):
            if self.full:
                raise JournalFull(28, "test double: no space left")
            self.marks.append(mark)

    journal = FullJournal()
    seq = Sequencer(CAP, trace_length_for(CAP, 10), policy(10), Metrics(), journal=journal)
    assert seq.feed(flow(35), np.zeros(35, np.int64), 0.0) == []
    assert "journal full" in seq.blocked and journal.marks == []
    assert seq.unmarked == 3            # counted in the daemon's proofs_in_flight meanwhile
    journal.full = False
    marked = seq.retry_marks()
    assert [b.batch_id for b in marked] == [0, 1, 2] and seq.blocked is None and seq.unmarked == 0
    assert [m.batch_id for m in journal.marks] == [0, 1, 2]


def test_a_reader_holding_the_step_lock_sees_no_step_half_done():
    """The sequencer thread steps (records fed, batches cut, marked and
    submitted) only under its step_lock: while a reader (Service.status)
    holds it, every operation is in an open batch or in a submitted one,
    never cut and not yet handed on."""
    from test_workers import wait_until
    from zksidecar.daemon.sequencer import SequencerThread

    submitted = []
    seq = Sequencer(CAP, trace_length_for(CAP, 10), policy(10), Metrics())
    thread = SequencerThread(seq, submitted.append)
    thread.start()
    try:
        recs = flow(35)
        with thread.step_lock:
            thread.inbox.put((recs, 0, None))
            wait_until(thread.inbox.empty, "the thread took the item")   # and waits for the lock
            assert submitted == [] and seq.shadows == {}
        wait_until(lambda: len(submitted) == 3, "three batches of ten submitted")
        with thread.step_lock:
            open_ops = sum(s.open_count for s in seq.shadows.values())
            assert open_ops + sum(len(b.ops) for b in submitted) == 35
    finally:
        thread.stop()
        thread.join(30)
    assert thread.error is None

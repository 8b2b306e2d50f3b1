"""The shadow book (daemon/shadow.py): batch cuts, divergences, refused
records, and a journal replay that reproduces the live cuts exactly."""
from __future__ import annotations

import numpy as np
import pytest

from zksidecar.daemon.priority import ProofPriority
from zksidecar.daemon.shadow import (STEPS_FIXED, STEPS_PER_RESTING, BatchPolicy, ShadowBook,
                                     trace_length_for)
from zksidecar.engine.book import Book
from zksidecar.engine.flow import FlowParams, generate
from zksidecar.engine.records import FLAG_CLAIMED, FLAG_CRITICAL, Status

CAP = 64


def flow(n=600, seed=3, **kw):
    return generate(n, seed, CAP, params=FlowParams(depth=30, **kw))


def feed(shadow, ops, chunks, now=0.0):
    """Apply `ops` in the given chunk sizes; returns every closed batch and
    the Applied results."""
    closed, results, i = [], [], 0
    for size in chunks:
        a = shadow.apply(ops[i:i + size], np.arange(i, i + size, dtype=np.int64)[:len(ops[i:i + size])], now)
        closed += a.closed
        results.append(a)
        i += size
        if i >= len(ops):
            break
    return closed, results


def check_batches(batches, ops):
    """Batches are consecutive, each one's pre-cells run to the next one's,
    and together they are the engine's run of `ops`."""
    book = Book(CAP)
    expected = ops.copy()
    book.process(expected)
    seq = 1
    for b in batches:
        assert b.first_seq == seq
        again = Book.from_cells(b.pre_cells)
        work = b.ops.copy()
        again.process(work)
        assert (work == b.ops).all()
        seq = b.last_seq + 1
    done = np.concatenate([b.ops for b in batches])
    assert (done == expected[:len(done)]).all()


def policy(size=100, timeout=1.0, trace=None, critical_qty=0):
    return BatchPolicy(size, timeout, trace or trace_length_for(CAP, size), critical_qty)


def test_batches_close_at_max_size_whatever_the_chunks():
    ops = flow()
    for chunks in ([600], [1] * 600, [7, 250, 3, 340], [99, 1, 100, 400]):
        shadow = ShadowBook(0, CAP, policy(100))
        closed, _ = feed(shadow, ops, chunks)
        assert [len(b.ops) for b in closed] == [100] * 6
        assert [b.batch_id for b in closed] == list(range(6))
        assert all(b.reason == "size" and b.priority == ProofPriority.NORMAL for b in closed)
        check_batches(closed, ops)
        assert (closed[2].seen_ns == np.arange(200, 300)).all()


def test_a_critical_operation_closes_its_batch_at_once():
    ops = flow()
    ops["flags"][130] |= FLAG_CRITICAL
    ops["qty"][[10, 20]] = [5000, 4999]
    shadow = ShadowBook(0, CAP, policy(100, critical_qty=5000))
    closed, _ = feed(shadow, ops, [50, 550])
    assert [(b.first_seq, b.last_seq, b.reason) for b in closed[:3]] == \
        [(1, 11, "critical"), (12, 111, "size"), (112, 131, "critical")]
    assert [b.priority for b in closed[:3]] == [ProofPriority.CRITICAL, ProofPriority.NORMAL,
                                                ProofPriority.CRITICAL]
    check_batches(closed, ops)


def test_timeout_closes_an_open_batch():
    ops = flow(60)
    shadow = ShadowBook(0, CAP, policy(100, timeout=0.5))
    assert shadow.apply(ops[:40], np.zeros(40, np.int64), now=10.0).closed == []
    assert shadow.tick(10.4) is None
    shadow.apply(ops[40:], np.zeros(20, np.int64), now=10.45)     # the age counts from the first op
    b = shadow.tick(10.5)
    assert (b.reason, len(b.ops)) == ("timeout", 60)
    assert shadow.tick(20.0) is None and shadow.close("shutdown") is None


def test_a_batch_never_takes_more_steps_than_its_trace_holds():
    ops = flow(800, take=0.6)
    t = trace_length_for(CAP, 1)             # room for one worst-case operation, not 100 typical ones
    shadow = ShadowBook(0, CAP, policy(100, trace=t))
    closed, _ = feed(shadow, ops, [33] * 40)
    closed.append(shadow.close("shutdown"))
    assert any(b.reason == "steps" for b in closed)
    for b in closed:
        _, steps = Book.from_cells(b.pre_cells).process_traced(b.ops.copy())
        assert len(steps) <= t - 1
    check_batches(closed, ops)


def test_a_trace_too_short_for_one_operation_is_refused():
    with pytest.raises(ValueError, match="cannot hold one operation"):
        ShadowBook(0, CAP, policy(10, trace=STEPS_FIXED + STEPS_PER_RESTING * CAP))


def test_divergent_claims_are_reported_and_the_batch_holds_the_rules_outcome():
    ops = flow(200)
    truth = ops.copy()
    Book(CAP).process(truth)
    claimed = truth.copy()
    claimed["flags"] |= FLAG_CLAIMED
    claimed["filled"][17] += 1                          # the engine lies twice
    claimed["status"][150] = Status.CANCELLED if truth["status"][150] != Status.CANCELLED else Status.RESTED
    shadow = ShadowBook(0, CAP, policy(100))
    closed, results = feed(shadow, claimed, [200])
    divs = [d for r in results for d in r.divergences]
    assert [d.seq for d in divs] == [18, 151]
    assert divs[0].claimed["filled"] == divs[0].computed["filled"] + 1
    assert [b.divergences for b in closed] == [1, 1]
    assert all(b.priority == ProofPriority.HIGH for b in closed)
    assert (closed[0].ops["filled"] == truth["filled"][:100]).all()


def test_a_record_that_breaks_the_stream_is_refused_and_the_rest_goes_on():
    ops = flow(120)
    bad = np.concatenate([ops[:50], ops[49:50], ops[50:]])            # seq 50 again
    bad["ts_ns"][0] = bad["ts_ns"][0]
    shadow = ShadowBook(0, CAP, policy(100))
    closed, results = feed(shadow, bad, [121])
    rejected = [r for a in results for r in a.rejected]
    assert [(r.seq, "expected 51" in r.why) for r in rejected] == [(50, True)]
    closed.append(shadow.close("shutdown"))
    check_batches(closed, ops)


def test_replay_reproduces_the_live_cuts():
    """The journal holds the records as ingest saw them and a mark per closed
    batch; a fresh shadow replaying it closes exactly the same batches, and
    what follows the last mark continues as the open batch."""
    ops = flow(700)
    ops["flags"][300] |= FLAG_CRITICAL
    live = ShadowBook(0, CAP, policy(128, timeout=0.5))
    journal, i, now = [], 0, 0.0
    rng = np.random.default_rng(5)
    while i < len(ops):
        size = int(rng.integers(1, 90))
        chunk = ops[i:i + size]
        journal.append(("ops", chunk))
        a = live.apply(chunk, np.full(len(chunk), i, np.int64), now)
        for b in a.closed:
            journal.append(("mark", b))
        now += 0.1
        b = live.tick(now)
        if b is not None:
            journal.append(("mark", b))
        i += size
    marks = [b for kind, b in journal if kind == "mark"]
    assert {b.reason for b in marks} >= {"size", "critical", "timeout"}
    again = ShadowBook(0, CAP, policy(128, timeout=0.5))
    for kind, item in journal:
        if kind == "ops":
            again.replay_ops(item, np.zeros(len(item), np.int64))
        else:
            b, _ = again.replay_mark(item.batch_id, item.last_seq)
            assert (b.ops == item.ops).all() and (b.pre_cells == item.pre_cells).all()
    again.release_held(now)
    assert again.open_count == live.open_count
    assert (again.book.cells == live.book.cells).all()
    with pytest.raises(ValueError, match="expected"):
        again.replay_mark(0, 5)

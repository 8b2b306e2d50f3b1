"""daemon/finisher.py: each finished batch stored once and completed on the
completion ring, failures completed as FAILED, the metrics balanced whatever
the outcome, and completions an engine does not read held (bounded)."""
from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np

from zksidecar.daemon.batches import Batch, CloseReason
from zksidecar.daemon.finisher import Finisher
from zksidecar.daemon.jobs import ProofResult
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.priority import ProofPriority
from zksidecar.daemon.store import ProofStore
from zksidecar.daemon.workers import PoolClosed, WorkerCrashed
from zksidecar.engine.records import CompletionStatus, operation


class RingDouble:
    """Test double for the completion ring's producer: keeps what it is
    given, or refuses everything while `full`."""

    def __init__(self):
        self.records, self.full = [], False

    def publish(self, rec) -> bool:
        if self.full:
            return False
        self.records.append(rec.copy())
        return True


def batch(batch_id: int, divergent=()) -> Batch:
    ops = operation(seq=batch_id + 1)
    return Batch(0, batch_id, ops, np.zeros(0), np.zeros(0), np.zeros(1, np.uint32), 64,
                 np.zeros(1, np.int64), ProofPriority.NORMAL, CloseReason.SIZE, list(divergent))


def done(value) -> Future:
    f = Future()
    f.set_running_or_notify_cancel()
    f.set_exception(value) if isinstance(value, BaseException) else f.set_result(value)
    return f


def test_every_outcome_is_completed_and_the_metrics_balance(tmp_path):
    metrics, ring = Metrics(), RingDouble()
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        fin = Finisher(store, ring, metrics)
        outcomes = [ProofResult(0, 0, b"proof-0", b"\1" * 32, prove_s=0.5, queue_wait_s=0.1),
                    ProofResult(0, 1, error="ValueError: bad", queue_wait_s=0.2),
                    WorkerCrashed("worker 0 died"),
                    ProofResult(0, 3, b"proof-3", b"\3" * 32, prove_s=0.5),
                    ProofResult(0, 0, b"again", b"\1" * 32, prove_s=0.5),    # batch 0 twice: refused
                    PoolClosed("closed")]                                   # left for the next start
        for k, value in enumerate(outcomes):
            metrics.batch_queued("normal")
            fin.finished(batch(k if k != 4 else 0, divergent=[4] if k == 3 else ()), done(value))
        fin.stop()
        fin.run()                                  # in this thread: the queue is already whole
        assert store.batches(0) == [0, 3]
    statuses = [int(r["status"][0]) for r in ring.records]
    assert statuses == [CompletionStatus.PROVEN, CompletionStatus.FAILED, CompletionStatus.FAILED,
                        CompletionStatus.DISAGREES, CompletionStatus.FAILED]
    assert (fin.proven, fin.failed) == (2, 3)
    b = metrics.status()["batches"]
    assert b["proven"] == 2 and b["failed"] == 3
    assert b["pending"]["normal"] == 1 and b["proving"] == 0     # the one left for the next start


def test_completions_wait_while_the_ring_is_full(tmp_path):
    from test_workers import wait_until

    ring = RingDouble()
    ring.full = True
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        fin = Finisher(store, ring, Metrics())
        fin.start()
        for k in range(3):
            fin.finished(batch(k), done(ProofResult(0, k, b"p", b"\0" * 32)))
        wait_until(lambda: fin.completions_waiting == 3, "three completions held")
        assert ring.records == []
        ring.full = False                          # the engine reads again: they go out, in order
        wait_until(lambda: fin.completions_waiting == 0, "the held completions published")
        fin.stop()
        fin.join()
    assert [int(r["batch_id"][0]) for r in ring.records] == [0, 1, 2]


def test_a_completion_names_its_symbol_and_layout(tmp_path):
    """The record the engine gets: its symbol (batch ids and seqs start
    again per symbol), the batch's seqs as first and count, the layout."""
    from zksidecar.engine.records import VERSION, check_completions, completion_last_seq, ops

    ring = RingDouble()
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        fin = Finisher(store, ring, Metrics())
        for symbol in (9, 4_000_000_000):
            recs = ops(3)
            recs["seq"], recs["symbol"] = [5, 6, 7], symbol
            b = Batch(symbol, 2, recs, np.zeros(0), np.zeros(0), np.zeros(1, np.uint32), 64,
                      np.zeros(3, np.int64), ProofPriority.NORMAL, CloseReason.SIZE, [])
            fin.finished(b, done(ProofResult(symbol, 2, b"proof", bytes(range(32)), prove_s=0.1)))
        fin.stop()
        fin.run()
        c = check_completions(np.concatenate(ring.records))
        assert c["symbol"].tolist() == [9, 4_000_000_000]
        assert c["batch_id"].tolist() == [2, 2] and c["first_seq"].tolist() == [5, 5]
        assert c["op_count"].tolist() == [3, 3] and completion_last_seq(c).tolist() == [7, 7]
        assert (c["version"] == VERSION).all() and (c["reserved"] == 0).all()
        assert (c["status"] == CompletionStatus.PROVEN).all()
        assert [store.proof_index(int(s), 2) for s in c["symbol"]] == c["proof_index"].tolist()
        assert bytes(c["post_state_root"][0]) == bytes(range(32))


class GatedStore:
    """Test double around a real ProofStore: put() waits until `gate` is
    set (a slow disk), so the moment between a proof's end and its storing
    can be looked at."""

    def __init__(self, store: ProofStore):
        self.store, self.gate, self.entered = store, threading.Event(), threading.Event()

    def put(self, *args, **kwargs):
        self.entered.set()
        assert self.gate.wait(30)
        return self.store.put(*args, **kwargs)


def test_a_proof_is_unfinished_until_it_is_stored(tmp_path):
    """From the moment a proof is handed over until the store has it, the
    finisher counts it as unfinished (the daemon's proofs_in_flight: a
    caller that waits for 0 then finds every proof in the store)."""
    from test_workers import wait_until

    with ProofStore(str(tmp_path / "proofs"), fsync=False) as real:
        store = GatedStore(real)
        fin = Finisher(store, RingDouble(), Metrics())
        fin.start()
        try:
            assert fin.unfinished == 0
            fin.finished(batch(0), done(ProofResult(0, 0, b"proof-0", b"\1" * 32, prove_s=0.5)))
            assert fin.unfinished == 1                 # on the queue
            assert store.entered.wait(30)
            assert fin.unfinished == 1 and real.batches(0) == []     # being stored
            store.gate.set()
            wait_until(lambda: fin.unfinished == 0, "the proof stored")
            assert real.batches(0) == [0] and fin.proven == 1
        finally:
            store.gate.set()
            fin.stop()
            fin.join(30)

"""prover/array_pool.py: a buffer is handed out again only once nothing
refers to it (no array or view of it alive, nor a result a caller kept),
the pool never holds more than its arrays took at once, small arrays are
numpy's own; and proofs made from reused buffers, which hold the previous
proof's bytes, are the bytes of fresh ones: the pinned zk batch twice in
one thread with its buffers filled with junk before each, and a chained
proof whose external commitment (an earlier result) came from the pool."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from test_zk_batch import KEY, PINNED_BATCH_SHA256

from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.prover import array_pool, params
from zksidecar.prover.array_pool import ArrayPool
from zksidecar.prover.examples import memory
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.orderbook.batch import prove_batch, verify_batch
from zksidecar.prover.orderbook.params import zk_proof_options
from zksidecar.prover.orderbook.zk_chain import ZkChain
from zksidecar.prover.prove import SegmentCommitment, prove

KIB = 1 << 10


def test_a_buffer_is_handed_out_again_once_nothing_refers_to_it():
    pool = ArrayPool(min_bytes=64 * KIB)
    a = pool.empty((128, 256), np.uint32)
    assert a.shape == (128, 256) and a.dtype == np.uint32 and a.flags.c_contiguous and a.flags.writeable
    at = a.__array_interface__["data"][0]
    del a
    b = pool.empty((128, 256), np.uint32)
    assert b.__array_interface__["data"][0] == at
    assert pool.held_bytes == b.nbytes


@pytest.mark.parametrize("keep", ["array", "rows", "column", "bytes", "memoryview", "list"])
def test_a_buffer_anything_still_refers_to_is_not_handed_out(keep):
    pool = ArrayPool(min_bytes=64 * KIB)
    a = pool.empty((128, 256), np.uint32)
    a[:] = np.arange(a.size, dtype=np.uint32).reshape(a.shape)
    held = {"array": lambda: a, "rows": lambda: a[10:20], "column": lambda: a[:, 3],
            "bytes": lambda: a.reshape(-1)[5:].view(np.uint8), "memoryview": lambda: memoryview(a),
            "list": lambda: [a]}[keep]()
    seen = np.asarray(held[0] if keep == "list" else held)
    before = seen.copy()
    del a, seen
    b = pool.empty((128, 256), np.uint32)
    b[:] = 9
    seen = np.asarray(held[0] if keep == "list" else held)
    assert not np.shares_memory(b, seen) and np.array_equal(seen, before)
    assert pool.held_bytes == 2 * b.nbytes
    del held, seen
    c = pool.empty((128, 256), np.uint32)            # the first buffer, free again
    assert not np.shares_memory(b, c) and pool.held_bytes == 2 * b.nbytes


def test_small_arrays_are_numpys_own():
    pool = ArrayPool(min_bytes=64 * KIB)
    a = pool.empty((16, 1023), np.uint32)              # 4 bytes short of the pool's size
    assert a.flags.owndata and pool.held_bytes == 0


def test_the_pool_holds_at_most_what_its_arrays_took_at_once():
    pool = ArrayPool(min_bytes=64 * KIB)
    a, b = pool.empty((100 * KIB,), np.uint8), pool.empty((100 * KIB,), np.uint8)
    del a, b
    assert pool.held_bytes == 200 * KIB
    big = pool.empty((300 * KIB,), np.uint8)          # no buffer of its size: both free ones go
    assert pool.held_bytes == 300 * KIB
    small = pool.empty((100 * KIB,), np.uint8)        # 400 KiB in use at once
    assert pool.held_bytes == 400 * KIB
    del big, small
    c = pool.empty((200 * KIB,), np.uint8)            # the oldest free one (300) goes
    assert pool.held_bytes == 300 * KIB
    del c
    # any run of requests and releases: never more than the most in use at once
    rng = np.random.default_rng(5)
    live, most = [], 400 * KIB
    for _ in range(300):
        if live and rng.random() < 0.5:
            live.pop(int(rng.integers(len(live))))
        else:
            live.append(pool.empty((int(rng.choice([64, 96, 128, 256])) * KIB,), np.uint8))
        most = max(most, sum(x.nbytes for x in live))
        assert pool.held_bytes <= most
        assert all(not np.shares_memory(x, y) for i, x in enumerate(live) for y in live[:i])


def test_threads_never_share_a_live_buffer():
    pool = ArrayPool(min_bytes=64 * KIB)
    start, errors = threading.Barrier(4), []

    def work(tag: int) -> None:
        start.wait()
        for _ in range(50):
            a = pool.empty((64, 1024), np.uint32)
            a[:] = tag
            time.sleep(0)                               # let the others take theirs meanwhile
            if not (a == tag).all():
                errors.append(tag)
            del a                                       # (else held while the next is asked for)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert 0 < pool.held_bytes <= 4 * 64 * 1024 * 4


def test_a_proving_process_pools_and_the_daemon_does_not():
    """The process's pool is off until malloc.keep_proof_buffers (a worker,
    prover-server, the bench) and off again with return_freed_memory (the
    daemon); a forked child pools even if the parent's lock was held.  In
    a process of its own: the two set malloc's thresholds for good."""
    code = textwrap.dedent("""
        import os
        import numpy as np
        from zksidecar.daemon import malloc
        from zksidecar.prover import array_pool as P
        n = P.MIN_BYTES
        assert P.empty((n,), np.uint8).flags.owndata and P.POOL.held_bytes == 0
        malloc.keep_proof_buffers()
        a = P.empty((n // 4,), np.uint32)
        assert not a.flags.owndata and P.POOL.held_bytes == n
        del a
        b = P.empty((n,), np.uint8)
        assert P.POOL.held_bytes == n
        with P.POOL._lock:
            pid = os.fork()
            if pid == 0:
                os._exit(0 if P.POOL.held_bytes == n and not P.empty((n,), np.uint8).flags.owndata else 3)
        assert os.waitpid(pid, 0)[1] == 0
        malloc.return_freed_memory()
        assert P.POOL.held_bytes == 0 and P.empty((n,), np.uint8).flags.owndata
        b[:] = 1
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "ok\n", out.stderr


@pytest.fixture
def tiny_pool(monkeypatch):
    """The process's pool, swapped for one that takes every array of 1 KiB
    or more: at these test shapes each LDE and the lane's matrix."""
    pool = ArrayPool(min_bytes=KIB)
    monkeypatch.setattr(array_pool, "POOL", pool)
    return pool


def _fill_free(pool: ArrayPool, byte: int) -> None:
    """Junk in every buffer nothing refers to: what a proof finds in a
    reused buffer is the previous proof's, never zeros."""
    for i in range(len(pool._bufs)):
        if array_pool._refs(pool._bufs, i) == pool._alone:
            pool._bufs[i].fill(byte)


def test_the_pinned_zk_batch_from_reused_buffers(tiny_pool):
    log_cap, rows = 10, 2048
    opts = zk_proof_options(100, log_cap, rows)
    ops = flow.generate(1000, 11, 1 << log_cap, params=flow.FlowParams(depth=40, take=0.4))
    held = []
    for byte in (0xFF, 0xA5):
        _fill_free(tiny_pool, byte)
        bp = prove_batch(Book(1 << log_cap), ops, opts, zk=ZkChain(KEY, 0, log_cap, rows, opts))[0]
        assert hashlib.sha256(proof_file.encode(bp)).hexdigest() == PINNED_BATCH_SHA256
        held.append(tiny_pool.held_bytes)
    verify_batch(bp)
    assert held[0] > 0 and held[1] == held[0]        # the second proof took the first's buffers


def test_a_kept_result_is_not_overwritten_by_the_next_proof(tiny_pool):
    """The memory AIR's chained proofs (their bytes pinned in
    test_statement_domains.py): the first proof's exported commitment is
    kept and is the second's external segment; the second proof and a
    third, from buffers the pool hands out again, leave its LDE alone."""
    n, opts = 64, params.TESTING
    air = memory.MemoryAir(n)
    run = memory.run([0] * n, memory.random_ops(n, 40, seed=1))
    init = SegmentCommitment.commit(run.traces["init"], 1)
    first = prove(air, run.traces, opts, external={"init": (init, None)})
    fin = first.commitments["final"]
    lde, kept = fin.lde.copy(), {name: c.lde.copy() for name, c in first.commitments.items()}
    assert tiny_pool.held_bytes > 0
    run2 = memory.run(run.final_values, memory.random_ops(n, 50, seed=2))
    for _ in range(2):
        _fill_free(tiny_pool, 0x5A)
        linked = prove(air, run2.traces, opts, external={"init": (fin, fin.link())})
        assert hashlib.sha256(linked.proof.to_bytes(air)).hexdigest() == \
            "82c680fb50a497cae4053cd74379eb26116d7ed90bd8497926fbeb020a7c2669"
        assert np.array_equal(fin.lde, lde)
        assert all(np.array_equal(c.lde, kept[name]) for name, c in first.commitments.items())
        assert not any(np.shares_memory(c.lde, mine.lde) for c in first.commitments.values()
                       for mine in linked.commitments.values() if mine is not c)   # (fin is linked's init)

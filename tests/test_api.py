"""daemon/api.py: the SPEC's API over the worker pool.  Every proof returned
is a real batch proof; every symbol's batches verify as one chain from the
empty book (verify_chain)."""
from __future__ import annotations

import asyncio
import os
import sys

import numpy as np
import pytest

from zksidecar.daemon.api import (AsyncProofGenerator, BatchConfig, BatchProofProcessor,
                                  EngineDisagrees, ProofFailed, TradingZkVMManager,
                                  ZkProvableCLOBEngine, cancel, order)
from zksidecar.daemon.backends import ProcessBackend
from zksidecar.daemon.priority import ProofPriority
from zksidecar.engine import flow
from zksidecar.engine.book import StreamError
from zksidecar.engine.records import FLAG_CLAIMED, Kind, Side, Status

BITS, CAP, T = 20, 16, 128
CONFIG = BatchConfig(max_batch_size=8, batch_timeout=0.05, max_concurrent_batches=2)


@pytest.fixture(scope="module")
def manager():
    m = TradingZkVMManager(CONFIG, num_workers=2, capacity=CAP, security_bits=BITS, trace_length=T)
    yield m
    m.close()


def run(coro):
    return asyncio.run(coro)


def test_the_spec_walkthrough(manager):
    sym = 1

    async def main():
        placed = await manager.prove_order_placement(
            order(Kind.LIMIT, Side.SELL, 101, 5, account=7, symbol=sym))
        assert placed.batch_id == 0 and placed.ops["status"][0] == Status.RESTED
        maker = int(placed.ops["handle"][0])
        matched = await manager.prove_order_matching(
            order(Kind.IOC, Side.BUY, 101, 3, account=8, symbol=sym), maker_orders=[maker])
        assert matched.trades["qty"].tolist() == [3] and matched.trades["maker_handle"][0] == maker
        gone = await manager.prove_order_cancellation(cancel(maker, symbol=sym))
        assert gone.ops["status"][0] == Status.CANCELLED
        ops = np.concatenate([order(Kind.LIMIT, Side.BUY, 99 - i, 2, symbol=sym) for i in range(5)])
        batch = await manager.prove_batch_operations(ops, batch_id=3)
        assert (batch.first_seq, batch.last_seq) == (4, 8)
        receiver = await manager.prove_operation_async(
            order(Kind.MARKET, Side.SELL, 0, 4, symbol=sym), ProofPriority.Critical)
        critical = await receiver
        assert critical.priority is ProofPriority.CRITICAL and len(critical.trades) == 2
        for p in (placed, matched, gone, batch, critical):
            p.verify(min_security=BITS)
        assert [p.batch_id for p in manager.proofs(sym)] == [0, 1, 2, 3, 4]
        await manager.verify_chain(sym)
        assert placed.post_root == matched.pre_root

    run(main())
    stats = manager.get_stats()
    assert stats.successful_proofs >= 5 and stats.failed_proofs == 0 and stats.pending == 0
    assert stats.total_proofs_generated == stats.successful_proofs
    assert stats.avg_generation_time_ms > 0


def test_claims_that_break_the_rules_are_refused_and_change_nothing(manager):
    sym = 2

    async def main():
        placed = await manager.prove_order_placement(order(Kind.LIMIT, Side.SELL, 50, 5, symbol=sym))
        seq = manager.book(sym).next_seq
        with pytest.raises(EngineDisagrees, match="makers"):
            await manager.prove_order_matching(order(Kind.IOC, Side.BUY, 50, 1, symbol=sym),
                                               maker_orders=[int(placed.ops["handle"][0]) + 1])
        with pytest.raises(ValueError, match="next is 1, not 5"):
            await manager.prove_batch_operations(order(Kind.LIMIT, Side.BUY, 1, 1, symbol=sym), 5)
        with pytest.raises(ValueError, match="one new-order record"):
            await manager.prove_order_placement(cancel(1, symbol=sym))
        with pytest.raises(ValueError, match="trace rows"):       # 100 orders: over 127 rows
            await manager.prove_batch_operations(
                np.concatenate([order(Kind.LIMIT, Side.BUY, 10, 1, symbol=sym)] * 100))
        stale = order(Kind.LIMIT, Side.BUY, 10, 1, symbol=sym)
        stale["seq"] = 1
        with pytest.raises(StreamError, match="sequence number 1"):
            await manager.prove_batch_operations(stale)
        with pytest.raises(TypeError):
            await manager.prove_batch_operations([1, 2, 3])
        assert manager.book(sym).next_seq == seq
        # an engine claim that differs is proven by the rules and reported
        lie = order(Kind.IOC, Side.BUY, 50, 2, symbol=sym)
        lie["flags"], lie["filled"], lie["status"] = FLAG_CLAIMED, 1, Status.EXPIRED
        told = await manager.prove_batch_operations(lie)
        assert told.divergent == [told.first_seq] and told.ops["filled"][0] == 2
        await manager.verify_chain(sym)

    before = manager.get_stats().divergences
    run(main())
    assert manager.get_stats().divergences == before + 1


def test_engine_answers_at_once_and_proves_after(manager):
    sym = 3

    async def main():
        engine = ZkProvableCLOBEngine(sym, manager)
        out, proof = await engine.submit_order_with_proof(Kind.LIMIT, Side.BUY, 100, 4, account=1)
        assert out.status == Status.RESTED and out.seq == 1 and not proof.done()
        out2, proof2 = await engine.submit_order_with_proof(Kind.LIMIT, Side.SELL, 100, 6, account=2)
        assert out2.status == Status.RESTED and out2.filled == 4 and len(out2.trades) == 1
        out3, proof3 = await engine.submit_order_with_proof(Kind.CANCEL, handle=out2.handle)
        assert out3.status == Status.CANCELLED
        for p in (await proof, await proof2, await proof3):
            assert p.divergent == []
        sync = ZkProvableCLOBEngine(sym, manager, async_proofs=False)
        out4, done = await sync.submit_order_with_proof(Kind.FOK, Side.SELL, 90, 1)
        assert done.done() and (await done).ops["status"][0] == out4.status
        off = ZkProvableCLOBEngine(sym + 100, manager, enable_proof_generation=False)
        assert (await off.submit_order_with_proof(Kind.LIMIT, Side.BUY, 1, 1))[1] is None
        await manager.verify_chain(sym)

    run(main())


def test_batch_processor_closes_by_size_timeout_and_critical(manager):
    sym = 4
    ops = flow.generate(21, seed=11, capacity=CAP, symbol=sym, params=flow.FlowParams(depth=6))
    ops["seq"] = 0   # numbered by the manager as they are batched

    async def main():
        proc = BatchProofProcessor(CONFIG, manager)
        futures = [await proc.add_operation(ops[i]) for i in range(18)]
        crit = await proc.add_operation(ops[18], ProofPriority.Critical)   # closes 16..18 at once
        rest = [await proc.add_operation(ops[i]) for i in (19, 20)]        # closed by the timeout
        proofs = [await f for f in futures + [crit] + rest]
        await proc.flush()
        assert [p.batch_id for p in proofs[:8]] == [0] * 8 and proofs[8].batch_id == 1
        assert proofs[18].batch_id == 2 and proofs[18].priority is ProofPriority.CRITICAL
        assert proofs[20].batch_id == 3 and len(proofs[20].ops) == 2
        stats = proc.get_stats()
        assert {k: n for k, n in stats.closed_by.items() if n} == {"size": 2, "timeout": 1,
                                                                    "critical": 1}
        assert stats.total_batches_processed == 4 and stats.avg_batch_size == 21 / 4
        assert stats.avg_batch_processing_time_ms > 0 and stats.pending_operations == 0
        chain = await manager.chain(sym)
        assert sum(len(b.public.ops) for b in chain) == 21
        await manager.verify_chain(sym)

    run(main())


def test_engine_through_a_serial_batch_processor(manager):
    sym = 5
    serial = BatchConfig(max_batch_size=3, batch_timeout=0.05, enable_parallel_processing=False)

    async def main():
        proc = BatchProofProcessor(serial, manager)
        engine = ZkProvableCLOBEngine(sym, manager, processor=proc)
        pending = [(await engine.submit_order_with_proof(Kind.LIMIT, Side.BUY, 100 + i, 1))[1]
                   for i in range(7)]
        proofs = [await p for p in pending]
        assert [p.batch_id for p in proofs] == [0, 0, 0, 1, 1, 1, 2]
        await proc.close()
        await manager.verify_chain(sym)

    run(main())


def test_async_generator_priorities_and_stats(manager):
    sym = 6

    async def main():
        gen = AsyncProofGenerator(manager, num_workers=2)
        prios = ["low", "normal", "high", "critical", "normal", "low"]
        futures = [await gen.submit_request(order(Kind.LIMIT, Side.BUY, 10 + i, 1, symbol=sym), p)
                   for i, p in enumerate(prios)]
        proofs = [await f for f in futures]
        assert [p.batch_id for p in proofs] == list(range(6))
        assert [p.priority.label for p in proofs] == prios
        await gen.close()
        s = gen.get_stats()
        assert (s.total_requests, s.completed_requests, s.failed_requests) == (6, 6, 0)
        assert (s.critical_priority_requests, s.high_priority_requests, s.normal_priority_requests,
                s.low_priority_requests) == (1, 1, 2, 2)
        assert s.avg_processing_time_ms > 0 and s.avg_queue_wait_time_ms >= 0
        await manager.verify_chain(sym)

    run(main())


def test_bad_manager_arguments():
    with pytest.raises(ValueError, match="127 bits of conjectured security are out of reach"):
        TradingZkVMManager(CONFIG, capacity=CAP, security_bits=127, trace_length=1 << 20)
    with pytest.raises(ValueError, match="capacity"):
        TradingZkVMManager(CONFIG, capacity=12)
    with pytest.raises(ValueError, match="an ops trace of 32 rows cannot hold one operation at capacity 64"):
        TradingZkVMManager(CONFIG, capacity=64, trace_length=32)
    with pytest.raises(ValueError, match="a power of two"):
        TradingZkVMManager(CONFIG, capacity=64, trace_length=1000)
    with pytest.raises(ValueError, match="max_batch_size"):
        BatchConfig(max_batch_size=0)


def test_a_failed_batch_is_reported_and_leaves_a_gap():
    crash = [sys.executable, os.path.join(os.path.dirname(__file__), "prover_doubles.py"), "crash"]

    async def main():
        async with TradingZkVMManager(CONFIG, 1, ProcessBackend(crash), capacity=CAP,
                                      security_bits=BITS, trace_length=T) as m:
            with pytest.raises(ProofFailed, match="symbol 0 batch 0: BackendError: .*code 3"):
                await m.prove_order_placement(order(Kind.LIMIT, Side.BUY, 5, 5))
            with pytest.raises(ProofFailed, match="the chain has a gap"):
                await m.chain(0)
            s = m.get_stats()
            assert (s.total_proofs_generated, s.failed_proofs, s.successful_proofs) == (1, 1, 0)

    run(main())


# ------------------------------------------------ the review's findings --

def test_a_broken_pool_fails_every_awaitable_and_nothing_hangs():
    """Workers that die at start-up: the pool is broken and refuses jobs at
    submit.  Every path still ends in ProofFailed, the metrics balance, and
    closing a generator returns."""
    from test_workers import DiesOnArrival, wait_until

    async def main():
        m = TradingZkVMManager(CONFIG, 1, DiesOnArrival(), capacity=CAP, security_bits=BITS,
                               trace_length=T)
        try:
            with pytest.raises(ProofFailed, match="symbol 0 batch 0: WorkerCrashed"):
                await m.prove_order_placement(order(Kind.LIMIT, Side.BUY, 5, 5))
            await asyncio.to_thread(wait_until, lambda: m.pool.broken, "a broken pool")
            with pytest.raises(ProofFailed, match="died at start-up 3 times"):
                await m.prove_order_placement(order(Kind.LIMIT, Side.BUY, 6, 5))
            proc = BatchProofProcessor(BatchConfig(max_batch_size=2, batch_timeout=0.05), m)
            futs = [await proc.add_operation(order(Kind.LIMIT, Side.BUY, 7 + i, 1)) for i in range(2)]
            await proc.flush()
            assert all(isinstance(f.exception(), ProofFailed) for f in futs)
            assert proc.get_stats().failed_batches == 1 and proc.get_stats().pending_operations == 0
            gen = AsyncProofGenerator(m, num_workers=1)
            fut = await gen.submit_request(order(Kind.LIMIT, Side.BUY, 9, 1), "high")
            await asyncio.wait_for(gen.close(), 30)
            assert isinstance(fut.exception(), ProofFailed)
            await asyncio.wait_for(m.drain(), 30)
            b = m.metrics.status()["batches"]
            assert sum(b["pending"].values()) == 0 and b["proving"] == 0 and b["failed"] == 4
        finally:
            await asyncio.to_thread(m.pool.close)

    run(main())


def test_feeders_with_different_policies_share_one_open_batch(manager):
    """A processor of batches of 8 leaves 6 operations open; one of batches
    of 4 then adds to the same open batch: it closes at once (it already
    holds its size) and the chain stays whole."""
    sym = 7

    async def main():
        big = BatchProofProcessor(BatchConfig(max_batch_size=8, batch_timeout=5.0), manager)
        small = BatchProofProcessor(BatchConfig(max_batch_size=4, batch_timeout=5.0), manager)
        futs = [await big.add_operation(order(Kind.LIMIT, Side.BUY, 10 + i, 1, symbol=sym))
                for i in range(6)]
        futs.append(await small.add_operation(order(Kind.LIMIT, Side.BUY, 20, 1, symbol=sym)))
        await big.flush()
        await small.flush()
        proofs = [await f for f in futs]
        assert [p.batch_id for p in proofs] == [0] * 6 + [1]
        assert small.get_stats().closed_by["size"] == 1
        await manager.verify_chain(sym)

    run(main())


def test_drain_waits_for_batches_a_processor_still_holds(manager):
    """With one batch proving at a time, closed batches wait behind the
    processor's limit; chain() (which drains) still returns all of them."""
    sym = 8

    async def main():
        proc = BatchProofProcessor(BatchConfig(max_batch_size=4, batch_timeout=5.0,
                                               max_concurrent_batches=1), manager)
        for i in range(12):
            await proc.add_operation(order(Kind.LIMIT, Side.BUY, 10 + i, 1, symbol=sym))
        chain = await manager.chain(sym)
        assert [len(b.public.ops) for b in chain] == [4, 4, 4]
        await manager.verify_chain(sym)
        await proc.close()

    run(main())


def test_a_request_is_a_batch_of_its_own_beside_a_processor(manager):
    """A processor's open batch is closed (and proven) before a request, so
    the request's proof covers it alone, and a request that fits a trace on
    its own is never refused for what the processor had open."""
    sym = 9

    async def main():
        proc = BatchProofProcessor(BatchConfig(max_batch_size=100, batch_timeout=5.0), manager)
        futs = []
        for i in range(40):          # ~4 steps each: most of the 127 a trace holds
            futs.append(await proc.add_operation(order(Kind.LIMIT, Side.SELL, 200 + i, 1, symbol=sym)))
        own = await manager.prove_order_placement(order(Kind.IOC, Side.BUY, 300, 2, symbol=sym))
        assert len(own.ops) == 1 and len(own.trades) == 2
        assert max([(await f).batch_id for f in futs]) < own.batch_id
        assert len(manager.proofs(sym)) >= 2
        await proc.close()
        await manager.verify_chain(sym)

    run(main())

"""daemon/priority.py: priority order, FIFO within a level, and aging that
keeps Low from starving, checked with an injected clock (no sleeps)."""
from __future__ import annotations

import threading
from queue import Empty

import pytest

from zksidecar.daemon.priority import (LEVELS, PriorityQueue, ProofPriority, QueueClosed)


class Clock:
    """A test clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def drain(q):
    return [q.get_nowait()[0] for _ in range(len(q))]


def test_spec_spellings_are_aliases():
    assert ProofPriority.Critical is ProofPriority.CRITICAL
    assert ProofPriority.Low is ProofPriority.LOW
    assert [p.label for p in LEVELS] == ["critical", "high", "normal", "low"]
    assert ProofPriority.parse("High") is ProofPriority.HIGH
    assert ProofPriority.parse(3) is ProofPriority.LOW
    with pytest.raises(ValueError, match="unknown priority"):
        ProofPriority.parse("urgent")
    with pytest.raises(ValueError, match="unknown priority"):
        ProofPriority.parse(7)


def test_priority_order_and_fifo_within_a_level():
    q = PriorityQueue(age_step=None, clock=Clock())
    for i, p in enumerate([3, 2, 1, 0, 3, 2, 1, 0]):
        q.put((p, i), p)
    assert drain(q) == [(0, 3), (0, 7), (1, 2), (1, 6), (2, 1), (2, 5), (3, 0), (3, 4)]


def test_get_reports_priority_and_wait():
    clock = Clock()
    q = PriorityQueue(clock=clock)
    q.put("a", ProofPriority.High)
    clock.now += 0.25
    item, prio, waited = q.get_nowait()
    assert (item, prio, waited) == ("a", ProofPriority.HIGH, 0.25)


def test_strict_priority_starves_low_but_aging_does_not():
    """A steady stream of Critical work, one item served per tick: without
    aging the Low item never runs; with aging it runs once it has waited
    3 age steps (at the third get) and the Criticals queued before it (five)
    have been served."""
    for age_step, served_by in [(None, None), (1.0, 5)]:
        clock = Clock()
        q = PriorityQueue(age_step=age_step, clock=clock)
        for i in range(5):
            q.put(f"backlog{i}", ProofPriority.CRITICAL)
        q.put("low", ProofPriority.LOW)
        served_at = None
        for tick in range(50):
            q.put(f"crit{tick}", ProofPriority.CRITICAL)
            clock.now += 1.0
            if q.get_nowait()[0] == "low":
                served_at = tick
                break
        assert served_at == served_by


def test_aging_moves_one_level_per_step():
    clock = Clock()
    q = PriorityQueue(age_step=2.0, clock=clock)
    q.put("normal", ProofPriority.NORMAL)
    clock.now += 1.9
    q.put("high", ProofPriority.HIGH)
    # normal has not yet aged a level: high first
    assert q.get_nowait()[0] == "high"
    q.put("high2", ProofPriority.HIGH)
    clock.now += 0.1           # normal has waited 2.0 s: level 1, and it came first
    assert q.get_nowait()[0] == "normal"
    assert q.get_nowait()[0] == "high2"


def test_aged_item_never_overtakes_older_equal():
    """Aging raises an item to a level, never ahead of items that waited longer there."""
    clock = Clock()
    q = PriorityQueue(age_step=1.0, clock=clock)
    q.put("crit-old", ProofPriority.CRITICAL)
    clock.now += 0.5
    q.put("low", ProofPriority.LOW)
    clock.now += 10
    q.put("crit-new", ProofPriority.CRITICAL)
    assert drain(q) == ["crit-old", "low", "crit-new"]


def test_requeue_keeps_arrival_order():
    clock = Clock()
    q = PriorityQueue(age_step=None, clock=clock)
    q.put("first", 2)
    t_first = clock.now
    clock.now += 1
    q.put("second", 2)
    item, prio, waited = q.get_nowait()
    q.put(item, prio, put_at=clock.now - waited)
    assert item == "first" and clock.now - waited == t_first
    assert drain(q) == ["first", "second"]


def test_timeout_close_and_drain():
    q = PriorityQueue()
    with pytest.raises(Empty):
        q.get(timeout=0)
    q.put("x", 1)
    q.put("y", 0)
    assert q.counts() == {"critical": 1, "high": 1, "normal": 0, "low": 0}
    q.close()
    with pytest.raises(QueueClosed):
        q.put("z", 0)
    assert q.drain() == [("y", ProofPriority.CRITICAL), ("x", ProofPriority.HIGH)]
    with pytest.raises(QueueClosed):
        q.get()
    with pytest.raises(ValueError, match="age_step"):
        PriorityQueue(age_step=0)


def test_blocked_getter_wakes_on_put_and_close():
    q = PriorityQueue()
    got = []

    def getter():
        try:
            while True:
                got.append(q.get()[0])
        except QueueClosed:
            got.append("closed")

    t = threading.Thread(target=getter)
    t.start()
    q.put("a", 0)
    q.put("b", 3)
    q.close()
    t.join(10)
    assert not t.is_alive()
    assert got == ["a", "b", "closed"]


def test_threads_lose_nothing():
    q = PriorityQueue()
    n, producers = 2000, 4
    out, lock = [], threading.Lock()

    def produce(k):
        for i in range(n):
            q.put((k, i), (k + i) % 4)

    def consume():
        try:
            while True:
                item = q.get()[0]
                with lock:
                    out.append(item)
        except QueueClosed:
            pass

    consumers = [threading.Thread(target=consume) for _ in range(3)]
    for c in consumers:
        c.start()
    ps = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    q.close()
    for c in consumers:
        c.join(30)
    assert sorted(out) == sorted((k, i) for k in range(producers) for i in range(n))

"""Proof priorities and the thread-safe priority queue that orders proof jobs.

Four levels, Critical > High > Normal > Low, first-in-first-out within a
level.  Strict priority would let a steady stream of Critical work starve Low
for ever, so the queue ages waiting work (docs/API.md, "Priorities"):

    effective level = max(0, level - floor(waited / age_step))

An item rises one level for every `age_step` seconds it has waited.  `get`
takes the item with the lowest effective level; among equals, the one that
was put first.  Only the head of each level can win (it has waited longest
there), so a get looks at four items whatever the queue holds.

What this promises: an item of level L that has waited L * age_step seconds
competes as Critical, and from then on only items put before it can go
first, so its wait is bounded by L * age_step plus the time to serve the work
that was already queued ahead of it.  Fresh Critical work still overtakes any
item younger than that.  `age_step=None` turns aging off (strict priority).

The clock is injectable so that tests check the policy without sleeping.
"""
from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum
from queue import Empty
from typing import Any

DEFAULT_AGE_STEP = 1.0   # seconds per level: Low competes as Critical after 3 s


class ProofPriority(IntEnum):
    """A proof's urgency; lower values go first.  The API's CamelCase
    spellings (ProofPriority.Critical ...) are aliases of the same members."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3
    Critical = 0
    High = 1
    Normal = 2
    Low = 3

    @property
    def label(self) -> str:
        """The metrics label: "critical", "high", "normal", "low"."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: "ProofPriority | int | str") -> "ProofPriority":
        """A priority from a member, its value or its name in any case."""
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise ValueError(f"unknown priority {value!r}: one of critical, high, normal, low") \
                    from None
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown priority {value!r}: 0 (critical) to 3 (low)") from None


LEVELS = tuple(ProofPriority.__members__[n] for n in ("CRITICAL", "HIGH", "NORMAL", "LOW"))


class QueueClosed(Exception):
    """put on a closed queue, or get on a closed queue that is empty."""


class PriorityQueue:
    """Items by ProofPriority with aging (module docstring).  Thread-safe;
    `get` blocks until an item is there, the timeout passes (queue.Empty) or
    the queue is closed and empty (QueueClosed)."""

    def __init__(self, age_step: float | None = DEFAULT_AGE_STEP,
                 clock: Callable[[], float] = time.monotonic):
        if age_step is not None and not age_step > 0:
            raise ValueError(f"age_step must be a positive number of seconds or None, not {age_step}")
        self.age_step = age_step
        self._clock = clock
        self._levels: list[deque] = [deque() for _ in LEVELS]   # (put_at, order, item)
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: Any, priority: ProofPriority | int | str = ProofPriority.NORMAL,
            put_at: float | None = None) -> None:
        """Queue `item`.  `put_at` (a time of this queue's clock) re-queues an
        item that was taken but could not be served with the wait it had
        already done; it then goes back in arrival order."""
        level = ProofPriority.parse(priority)
        with self._cond:
            if self._closed:
                raise QueueClosed("the queue is closed")
            entry = (self._clock() if put_at is None else put_at, next(self._order), item)
            queue = self._levels[level]
            if put_at is not None and queue and queue[-1][:2] > entry[:2]:
                # back in its place by arrival (rare: only after a failed hand-off)
                queue.append(entry)
                ordered = sorted(queue, key=lambda e: e[:2])
                queue.clear()
                queue.extend(ordered)
            else:
                queue.append(entry)
            self._cond.notify()

    def _effective(self, level: int, put_at: float, now: float) -> int:
        return self.effective(level, now - put_at)

    def effective(self, level: int, waited: float) -> ProofPriority:
        """The level an item of `level` competes at after waiting `waited`
        seconds (the module docstring's rule)."""
        if self.age_step is None:
            return LEVELS[level]
        return LEVELS[max(0, level - math.floor(max(0.0, waited) / self.age_step))]

    def _pop(self) -> tuple[Any, ProofPriority, float] | None:
        now = self._clock()
        best = None
        for level, queue in enumerate(self._levels):
            if queue:
                put_at, order, _ = queue[0]
                key = (self._effective(level, put_at, now), put_at, order)
                if best is None or key < best[0]:
                    best = (key, level)
        if best is None:
            return None
        level = best[1]
        put_at, _, item = self._levels[level].popleft()
        return item, LEVELS[level], max(0.0, now - put_at)

    def now(self) -> float:
        """This queue's clock (put's `put_at` is a time of it)."""
        return self._clock()

    def get(self, timeout: float | None = None) -> tuple[Any, ProofPriority, float]:
        """(item, its priority, seconds it waited).  Blocks up to `timeout`
        seconds (None: for ever); queue.Empty when it passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                got = self._pop()
                if got is not None:
                    return got
                if self._closed:
                    raise QueueClosed("the queue is closed and empty")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise Empty
                self._cond.wait(left)

    def get_nowait(self) -> tuple[Any, ProofPriority, float]:
        return self.get(timeout=0)

    def close(self) -> None:
        """Refuse new items; getters drain what is queued, then see QueueClosed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def drain(self) -> list[tuple[Any, ProofPriority]]:
        """Take every queued item out, in the order get would have served them
        at this moment."""
        out = []
        with self._cond:
            while (got := self._pop()) is not None:
                out.append(got[:2])
        return out

    def counts(self) -> dict[str, int]:
        """Items queued per priority label."""
        with self._cond:
            return {p.label: len(q) for p, q in zip(LEVELS, self._levels)}

    def __len__(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._levels)

"""Shape caches: what a prover computes once per shape of proof and keeps.

Much of a proof depends on the AIR's shape alone (its constraints, columns
and trace length), not on the trace or the challenges: the compiled
constraint program, the quotient's and the LogUp argument's plans.  A
ShapeCache keeps the most recent few, each under a key its maker chooses
and beside `keep`, an object whose identity the key relies on (typically
the AIR's transition-constraint list, which the order book shares per trace
length): holding it keeps its id from being reused while the entry lives,
and a hit must find the very same object.  Thread-safe: a worker's threads
may prove at once (a value may then be built twice; one is kept).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class ShapeCache(Generic[V]):
    """The `size` most recently used values, by key."""

    def __init__(self, size: int):
        self._size = size
        self._entries: "OrderedDict[Hashable, tuple[object, V]]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, keep: object, build: Callable[[], V]) -> V:
        """The value kept under `key` for `keep`, or build() kept now."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] is keep:
                self._entries.move_to_end(key)
                return hit[1]
        value = build()
        with self._lock:
            self._entries[key] = (keep, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[V]:
        """The values kept, least recently used first."""
        with self._lock:
            return [v for _, v in self._entries.values()]

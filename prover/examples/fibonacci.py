"""Fibonacci: `pairs` independent sequences, two columns each.

    a' = b,   b' = a + b         (degree 1, every row but the last)
    a[0], b[0] = the public start values;  b[N-1] = the public result

With 16 pairs this is the "Fibonacci-like AIR, 32 columns" of the STARK
benchmark.
"""
from __future__ import annotations

import numpy as np

from .. import field as F
from ..air import Air, BoundaryConstraint, Frame, Segment, TransitionConstraint


class FibonacciAir(Air):
    def __init__(self, trace_length: int, starts: list[tuple[int, int]], results: list[int]):
        self.pairs = len(starts)
        self.main_segments = (Segment("main", tuple(c for i in range(self.pairs)
                                                    for c in (f"a{i}", f"b{i}"))),)
        public = {}
        for i, ((a, b), r) in enumerate(zip(starts, results)):
            public.update({f"a{i}": a, f"b{i}": b, f"result{i}": r})
        super().__init__(trace_length, public)

    def transitions(self, f: Frame) -> list[TransitionConstraint]:
        out = []
        for i in range(self.pairs):
            a, b = f.cur(f"a{i}"), f.cur(f"b{i}")
            out.append(TransitionConstraint(f"a{i}' = b{i}", f.next(f"a{i}") - b, 1))
            out.append(TransitionConstraint(f"b{i}' = a{i} + b{i}", f.next(f"b{i}") - (a + b), 1))
        return out

    def boundaries(self, f: Frame) -> list[BoundaryConstraint]:
        out = []
        for i in range(self.pairs):
            out.append(BoundaryConstraint(f"a{i} start", f"a{i}", 0, f.public(f"a{i}")))
            out.append(BoundaryConstraint(f"b{i} start", f"b{i}", 0, f.public(f"b{i}")))
            out.append(BoundaryConstraint(f"result{i}", f"b{i}", -1, f.public(f"result{i}")))
        return out


def fibonacci_trace(trace_length: int, starts: list[tuple[int, int]]) -> np.ndarray:
    """(N, 2 * pairs) Montgomery trace: all pairs advance together, one numpy
    step per row."""
    pairs = len(starts)
    out = np.empty((trace_length, 2 * pairs), dtype=np.int64)
    a = np.array([s[0] for s in starts], dtype=np.int64)
    b = np.array([s[1] for s in starts], dtype=np.int64)
    for row in range(trace_length):
        out[row, 0::2], out[row, 1::2] = a, b
        a, b = b, (a + b) % F.P
    return F.encode(out)


def fibonacci_instance(trace_length: int, pairs: int = 1, seed: int = 0):
    """An AIR and a valid trace for it."""
    rng = np.random.default_rng(seed)
    starts = [(int(x), int(y)) for x, y in rng.integers(0, F.P, (pairs, 2))]
    trace = fibonacci_trace(trace_length, starts)
    results = [int(v) for v in F.decode(np.ascontiguousarray(trace[-1, 1::2]))]
    return FibonacciAir(trace_length, starts, results), {"main": trace}

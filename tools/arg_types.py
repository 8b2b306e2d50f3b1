"""The command line's argument types: each parses one kind of value or
raises argparse.ArgumentTypeError saying what it must be, which argparse
prints as a usage error (exit 2) naming the option.  Every `zksidecar`
command takes its numbers through these, so NaN, infinities, negative
counts and meaningless thresholds stop at the parser, not in the code they
would reach."""
from __future__ import annotations

import argparse
import math


def _int(text: str, base: int = 10) -> int | None:
    try:
        return int(text, base)
    except ValueError:
        return None


def _float(text: str) -> float | None:
    """A finite float, or None (NaN and the infinities are no amounts)."""
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _type(convert, accept, what: str):
    """The argparse type taking the values `convert` parses (None: it
    cannot) that `accept`; ArgumentTypeError "'TEXT' is not WHAT" else."""
    def parse(text: str):
        v = convert(text)
        if v is None or not accept(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return v
    return parse


#: a count (at least 1) and a seed (0 or more)
positive = _type(_int, lambda n: n >= 1, "a positive whole number")
nonnegative = _type(_int, lambda n: n >= 0, "a whole number >= 0")
#: a duration, a rate in operations per second: finite, above 0 or at least 0
positive_seconds = _type(_float, lambda v: v > 0, "a positive number of seconds")
nonnegative_seconds = _type(_float, lambda v: v >= 0, "a number of seconds >= 0")
positive_rate = _type(_float, lambda v: v > 0, "a positive number of operations per second")
nonnegative_rate = _type(_float, lambda v: v >= 0, "a number of operations per second >= 0")


def security_bits(text: str) -> int:
    """A security threshold: 0 (any proof: toy parameters, tests) to
    params.MAX_SECURITY_BITS bits, the most any proof's conjectured
    security reaches (a higher one would refuse every proof)."""
    from zksidecar.prover.params import MAX_SECURITY_BITS

    n = _int(text)
    if n is None or not 0 <= n <= MAX_SECURITY_BITS:
        raise argparse.ArgumentTypeError(f"a security threshold is 0 to {MAX_SECURITY_BITS} bits (no proof's "
                                         f"conjectured security exceeds {MAX_SECURITY_BITS}), not {text!r}")
    return n


def trace_length(text: str) -> int:
    """A power of two from 16 to 2^params.MAX_LOG_TRACE (0x... allowed)."""
    from zksidecar.prover.params import MAX_LOG_TRACE

    n = _int(text, 0)
    if n is None or n < 16 or n & (n - 1) or n > 1 << MAX_LOG_TRACE:
        raise argparse.ArgumentTypeError(f"a trace length is a power of two from 16 to "
                                         f"2^{MAX_LOG_TRACE}, not {text!r}")
    return n


def capacity(lo: int, hi: int):
    """The type of a book capacity: a power of two from lo to hi."""
    def parse(text: str) -> int:
        from zksidecar.engine.replay import check_capacity

        n = _int(text, 0)
        if n is None:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
        problem = check_capacity(n, lo, hi)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return n
    return parse

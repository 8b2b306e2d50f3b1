"""The proof parameters of order-book batch proofs, defined once.

A batch proves two domains (air.py): `book`, S rows, and `ops`, T' rows;
the parameters are chosen for the pair (S, T').

Every producer of a batch proof (the daemon's workers, the external-prover
server, the Python API, `zksidecar prove`, the benchmarks) takes its
ProofOptions from `proof_options`, so a chain's proofs agree and a change of
parameters is made here and nowhere else.
"""
from __future__ import annotations

import functools

from ..params import DEFAULT_MIN_SECURITY, ParameterError, ProofOptions, algebraic_bits
from .air import algebraic_degree

#: OrderBookAir's constraints have degree 3, so its quotient has degree below
#: 2N and is evaluated on a domain of 2N points (proof.quotient_log_blowup):
#: the LDE must hold that domain, and 2^1 is the smallest blowup that does.
#: The smallest is the fastest to prove (every commitment is half the rows
#: of blowup 4) at the price of twice the queries (one bit each, so ~86 for
#: 100 bits): a larger proof and more hashing for the verifier.  Tests check
#: it against the AIR's declared degree.
LOG_BLOWUP = 1
#: the most proof-of-work bits bought before the queries (see grinding_bits)
GRINDING_BITS = 16
#: the tallest domain a verifier accepts unless told otherwise, `ops` (T')
#: and `book` (S, so the capacity) alike: the longest at which these
#: parameters reach DEFAULT_MIN_SECURITY with both domains that tall, set by
#: the LogUp sum's algebraic degree (air.algebraic_degree; docs/SECURITY.md).
#: A proof's claimed heights size what a verifier allocates (a chain
#: verifier commits the empty book at the first proof's S), so this bounds
#: what a file of a few kilobytes can make it spend.
MAX_TRACE_LENGTH = 1 << ProofOptions.for_security(
    DEFAULT_MIN_SECURITY, log_blowup=LOG_BLOWUP,
    grinding_bits=GRINDING_BITS).max_log_trace(DEFAULT_MIN_SECURITY,
                                               lambda n: algebraic_degree(n, n, LOG_BLOWUP))


def grinding_bits(security_bits: int, book_length: int, ops_length: int) -> int:
    """Proof-of-work bits for a batch of these heights: log2 of the taller,
    at most GRINDING_BITS (and no more than the target).

    Grinding costs 2^g hashes whatever the trace; a query costs a few rows
    and Merkle paths to open, the same at any length.  Capping 2^g at the
    tall domain's rows keeps the search under one hash per row, a small
    fraction of the tens of compressions per row its Merkle trees cost, so
    on a short proof (a one-operation proof at capacity 2^10: 2^10 `book`
    rows, where 16 bits would cost a tenth of the proof) a few more queries
    buy the same security, and from 2^16 rows on the parameters are those
    of a long trace (16 bits, the fewest queries)."""
    tall = max(book_length, ops_length)
    return min(GRINDING_BITS, security_bits, max(tall.bit_length() - 1, 0))


@functools.lru_cache(maxsize=256)
def proof_options(security_bits: int, book_length: int, ops_length: int,
                  log_blowup: int = LOG_BLOWUP) -> ProofOptions:
    """The fewest queries giving `security_bits` of conjectured security to
    a batch of `book_length` (S) and `ops_length` (T') rows at this blowup,
    with grinding_bits(...) of grinding; ParameterError if no number of
    queries reaches it there.  Cached: a worker asks once per batch, and
    the search walks every query count and trace length."""
    tall = max(book_length, ops_length)
    degree = algebraic_degree(book_length, ops_length, log_blowup)
    grind = grinding_bits(security_bits, book_length, ops_length)
    try:
        return ProofOptions.for_security(security_bits, tall, lambda _n: degree,
                                         log_blowup=log_blowup, grinding_bits=grind)
    except ParameterError:
        # queries can buy the bits, these heights cannot: say so (the generic
        # message would blame every trace length, the degree being fixed here)
        ProofOptions.for_security(security_bits, log_blowup=log_blowup, grinding_bits=grind)
        raise ParameterError(
            f"{security_bits} bits of conjectured security are out of reach for a batch of "
            f"{book_length} book rows and {ops_length} ops rows at blowup 2^{log_blowup}: the "
            f"LogUp sum's algebraic degree there ({degree}) leaves "
            f"{algebraic_bits(tall << log_blowup, degree) - 1} bits (docs/SECURITY.md); "
            "shorter domains reach it") from None


def conjectured_security(options: ProofOptions, book_length: int, ops_length: int) -> int:
    """The bits `options` give a batch proof of these heights."""
    return options.conjectured_security(max(book_length, ops_length),
                                        algebraic_degree(book_length, ops_length,
                                                         options.log_blowup))

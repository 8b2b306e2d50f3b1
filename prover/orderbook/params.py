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
from ..proof import check_zk_degrees, fri_degree_bound, fri_schedule, mask_degree, zk_degree_growth
from .air import MIN_ROWS, algebraic_degree, book_length, fractions_for
from .witness import check_trace_length
from .zk_air import ZK_MAX_LOG_OPS, lane_fractions, shape_statement, zk_book_fractions
from .zk_record_checks import RecordChecks

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
        # the shortest domains leave the most: do even they reach it?
        best = algebraic_bits(MIN_ROWS << log_blowup, algebraic_degree(MIN_ROWS, MIN_ROWS, log_blowup)) - 1
        raise ParameterError(
            f"{security_bits} bits of conjectured security are out of reach for a batch of "
            f"{book_length} book rows and {ops_length} ops rows at blowup 2^{log_blowup}: the "
            f"LogUp sum's algebraic degree there ({degree}) leaves "
            f"{algebraic_bits(tall << log_blowup, degree) - 1} bits (docs/SECURITY.md); "
            + ("shorter domains reach it" if best >= security_bits else
               f"no heights reach it (the shortest leave {best})")) from None


def conjectured_security(options: ProofOptions, book_length: int, ops_length: int) -> int:
    """The bits `options` give a batch proof of these heights."""
    return options.conjectured_security(max(book_length, ops_length),
                                        algebraic_degree(book_length, ops_length,
                                                         options.log_blowup))


# ------------------------------------------------------------- zk mode --
#: zk mode's FRI: fold by 8 down to a final degree of at most 256, the
#: smallest final * 8^folds holding N + h (docs/ZK.md 5.2's table)
ZK_FRI_FOLDING = 8
ZK_FRI_MAX_FINAL_DEGREE = 256


def zk_security(options: ProofOptions, statement) -> int:
    """The bits `options` (zk mode) give a proof of this zk statement
    (zk_air.ZkBatchStatement), as verify() computes them: the query term at
    FRI's degree bound D_F, the algebraic term with the statement's degree
    plus what D_F adds to the identity (proof.zk_degree_growth); 0 when
    the masks do not fit the trace (proof.check_zk_degrees)."""
    h = mask_degree(statement, options)
    try:
        for dom in statement.domains:
            check_zk_degrees(dom.air, options, h)
    except ParameterError:
        return 0
    schedule = fri_schedule(statement, options)
    degree = statement.algebraic_degree(options.log_blowup) + zk_degree_growth(statement, schedule)
    tall = statement.domains[statement.tall].air.trace_length
    return options.conjectured_security(tall, degree, fri_degree_bound(schedule))


def check_zk_ops_length(ops_length: int, log2_capacity: int, security_bits: int = DEFAULT_MIN_SECURITY) -> int:
    """`ops_length` if zk mode proves `ops` domains of that height on a book
    of 2^log2_capacity slots; ParameterError naming why not: over 2^15 rows
    (docs/ZK.md section 14: the LogUp sum's algebraic degree caps zk mode's
    security there, named in bits), or too short for one operation."""
    if isinstance(ops_length, bool) or not isinstance(ops_length, int) or ops_length < 1 \
            or ops_length & (ops_length - 1):
        raise ParameterError(f"a zk ops height is a power of two, not {ops_length!r}")
    if ops_length > 1 << ZK_MAX_LOG_OPS:
        # the statement's LogUp fractions at this height (both domains' a
        # row, and the leaf table's T - 1), as Statement.algebraic_degree
        # counts them with the second domain's DEEP and injection terms; the
        # security formula's term is one bit under algebraic_bits
        s = min(book_length(1 << log2_capacity), ops_length)
        checks = RecordChecks(ops_length, min(log2_capacity, ZK_MAX_LOG_OPS), rows=s)
        ops_fractions = len(fractions_for(ops_length, trade_accounts=False)) + len(lane_fractions())
        fractions = ops_fractions * ops_length + len(zk_book_fractions(checks)) * s + ops_length - 1
        lde = ops_length << LOG_BLOWUP
        bits = algebraic_bits(lde, 3 * fractions + 2 * lde) - 1
        at = f"at 2^{ops_length.bit_length() - 1} its LogUp sum leaves at most {bits} bits of conjectured security"
        if bits < security_bits:
            raise ParameterError(f"zk mode proves ops domains of at most 2^{ZK_MAX_LOG_OPS} rows, not "
                                 f"{ops_length}: {at}, under the {security_bits} required (docs/ZK.md section 14)")
        raise ParameterError(f"zk mode proves ops domains of at most 2^{ZK_MAX_LOG_OPS} rows, the height it is "
                             f"built and tested to, not {ops_length} ({at}; docs/ZK.md section 14)")
    try:
        check_trace_length(ops_length, 1 << log2_capacity)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    return ops_length


def check_zk_batch_size(batch_size: int, capacity: int) -> int:
    """`batch_size` if zk batches of that many operations fit a book of
    `capacity` slots: its `book` domain checks one operation a row, so at
    most book_length(capacity) (docs/ZK.md section 14 (9)).  ParameterError
    naming the most otherwise."""
    s = book_length(capacity)
    if batch_size > s:
        raise ParameterError(f"zk mode proves at most {s} operations a batch with a book of {capacity} slots "
                             f"(its book domain checks one operation a row, docs/ZK.md section 14), not "
                             f"{batch_size}")
    return batch_size


@functools.lru_cache(maxsize=64)
def zk_proof_options(security_bits: int, log2_capacity: int, ops_length: int,
                     log_blowup: int = LOG_BLOWUP) -> ProofOptions:
    """zk mode's parameters for a chain of books of 2^log2_capacity slots
    and `ops` domains of `ops_length` rows: the fewest queries giving
    `security_bits` (zk_security), with grinding_bits(...) of grinding and
    zk mode's FRI plan.  ParameterError if none does (check_zk_ops_length
    names the cap)."""
    check_zk_ops_length(ops_length, log2_capacity, security_bits)
    st = shape_statement(log2_capacity, ops_length)
    grind = grinding_bits(security_bits, book_length(1 << log2_capacity), ops_length)
    best = 0
    for queries in range(1, 256):
        options = ProofOptions(log_blowup=log_blowup, num_queries=queries, grinding_bits=grind,
                               fri_folding_factor=ZK_FRI_FOLDING, fri_max_final_degree=ZK_FRI_MAX_FINAL_DEGREE,
                               zk=True)
        bits = zk_security(options, st)
        if bits >= security_bits:
            return options
        if bits == 0 and queries > 1 and best > 0:
            break               # the masks no longer fit: more queries only make it worse
        best = max(best, bits)
    raise ParameterError(f"{security_bits} bits of conjectured security are out of reach in zk mode for "
                         f"{ops_length} ops rows at capacity 2^{log2_capacity} (at most {best}): each domain "
                         "must be about 3 (2q + 20) rows for q queries' masks to fit it (docs/ZK.md 5.3), so a "
                         "larger capacity and ops height buy more (100 bits from capacity 2^10 and 2^11 ops rows; "
                         "at most 2^15 ops rows)")

"""The security formula (prover/params.py, docs/SECURITY.md) and the
parameters chosen from a target and a trace length."""
import pytest

import dataclasses
import math

from zksidecar.prover import params
from zksidecar.prover.examples.fibonacci import FibonacciAir, fibonacci_instance
from zksidecar.prover.field import P
from zksidecar.prover.orderbook.air import algebraic_degree, fractions_for
from zksidecar.prover.orderbook.params import (LOG_BLOWUP, MAX_TRACE_LENGTH, conjectured_security,
                                               proof_options)
from zksidecar.prover.params import ParameterError, ProofOptions
from zksidecar.prover.proof import Proof, ProofFormatError
from zksidecar.prover.prove import prove
from zksidecar.prover.verify import VerificationError, verify


def degree_3(trace_length: int) -> int:
    """The algebraic degree of an AIR of degree-3 constraints and no LogUp."""
    return 3 * trace_length


def test_grinding_counts_only_above_the_floor():
    """Winterfell's rule: proof of work adds to the query term only when the
    queries alone give at least 80 bits."""
    weak = ProofOptions(log_blowup=2, num_queries=39, grinding_bits=16)       # 78 query bits
    strong = ProofOptions(log_blowup=2, num_queries=40, grinding_bits=16)     # 80 query bits
    assert weak.conjectured_security(1 << 10, 3 << 10) == 77
    assert strong.conjectured_security(1 << 10, 3 << 10) == 95
    assert ProofOptions(log_blowup=2, num_queries=39,
                        grinding_bits=0).conjectured_security(1 << 10, 3 << 10) == 77


def by_hand(queries: int, log_blowup: int, grinding: int, lde_size: int, degree: int) -> int:
    """docs/SECURITY.md's formula, written out."""
    query = queries * log_blowup + (grinding if queries * log_blowup >= 80 else 0)
    algebraic = math.floor(4 * math.log2(P) - math.log2(max(lde_size, degree)))
    return min(query, algebraic, 128) - 1


@pytest.mark.parametrize("log_n,log_blowup,queries,grinding,degree,bits", [
    # the order book at S = T' = 2^15 and 2^20 rows: 2 LogUp fractions a
    # book row, 20 and 22 an ops row, 3T' public ones, D = 3F (75 N and 81 N),
    # + 2 M = 4 N for the book's DEEP and FRI injection: 79 N and 85 N
    (15, 1, 86, 15, 79 << 15, 100),     # queries bind: 101 - 1 (algebraic: 102)
    (20, 1, 85, 16, 85 << 20, 96),      # LogUp binds: floor(123.63 - 26.41) - 1
    # degree 3 without LogUp: d*N = 1.5 M at blowup 2 is counted, and the
    # floor of log2 |F_ext| (123.63, not 123) leaves 2^21 rows at 100 bits
    (21, 1, 85, 16, 3 << 21, 100),
    (22, 1, 85, 16, 3 << 22, 99),
    (20, 2, 50, 16, 3 << 20, 100),      # blowup 4: M = 2^22 binds
    (10, 2, 39, 16, 3 << 10, 77),       # under the grinding floor
])
def test_claimed_bits_follow_the_formula(log_n, log_blowup, queries, grinding, degree, bits):
    options = ProofOptions(log_blowup=log_blowup, num_queries=queries, grinding_bits=grinding)
    n = 1 << log_n
    assert by_hand(queries, log_blowup, grinding, n << log_blowup, degree) == bits
    assert options.conjectured_security(n, degree) == bits
    if degree in (79 << 15, 85 << 20):      # the order book's own degree at that length
        assert algebraic_degree(n, n, log_blowup) == degree
        assert conjectured_security(options, n, n) == bits


def test_order_book_degree_counts_every_fraction():
    """3 (2 S + (fractions an ops row + 3 public) T'): the limbs of the
    range checks make the count depend on T' (k = ceil(30 / log2 T') limbs,
    one more scaled lookup when the top limb is short); the statement's own
    figure (Statement.algebraic_degree) is the same."""
    assert [len(fractions_for(1 << k)) for k in (4, 6, 15, 16, 20)] == [34, 26, 20, 22, 22]
    for s, t in ((16, 16), (1 << 10, 16), (1 << 14, 1 << 15), (1 << 6, 1 << 16), (1 << 20, 1 << 4)):
        assert algebraic_degree(s, t, 1) == 3 * (2 * s + (len(fractions_for(t)) + 3) * t) \
            + 2 * (max(s, t) << 1)
    from zksidecar.engine.book import Book
    from zksidecar.engine.records import Kind, Side
    from zksidecar.prover.orderbook.batch import prepare_batch
    from test_orderbook_air import make_ops
    pub = prepare_batch(Book(1 << 10), make_ops([(Kind.LIMIT, Side.BUY, 5, 1)]), params.TESTING).public
    assert (pub.book_length, pub.ops_length) == (1 << 10, 16)
    for lb in (1, 2):
        assert pub.statement().algebraic_degree(lb) == algebraic_degree(1 << 10, 16, lb)


def test_the_algebraic_degree_caps_the_trace():
    """The order book's LogUp sum, not its LDE, caps its domains at 2^16
    rows for 100 bits; an AIR of degree 3 without LogUp reaches 2^21."""
    options = proof_options(100, 1 << 10, 1 << 10)
    assert options.max_log_trace(100, lambda n: algebraic_degree(n, n, 1)) == 16
    assert conjectured_security(options, 1 << 16, 1 << 16) == 100
    assert conjectured_security(options, 1 << 16, 1 << 17) == 99
    assert MAX_TRACE_LENGTH == 1 << 16
    assert options.max_log_trace(100, degree_3) == 21


def test_default_holds_what_its_table_says():
    """params.DEFAULT: at least 100 bits up to 2^21 rows for constraints of
    degree 3 without LogUp (docs/SECURITY.md)."""
    assert params.DEFAULT.conjectured_security(1 << 21, 3 << 21) >= 100
    assert params.DEFAULT.conjectured_security(1 << 22, 3 << 22) < 100
    assert params.DEFAULT.max_log_trace(100, degree_3) == 21


@pytest.mark.parametrize("bits", [1, 8, 20, 64, 80, 100, 110])
def test_fewest_queries_for_a_target(bits):
    options = proof_options(bits, 16, 16)
    assert conjectured_security(options, 16, 16) >= bits
    fewer = ProofOptions(log_blowup=LOG_BLOWUP, num_queries=options.num_queries - 1,
                         grinding_bits=options.grinding_bits)
    assert options.num_queries == 1 or conjectured_security(fewer, 16, 16) < bits


def test_parameters_from_target_and_trace_length():
    degree = algebraic_degree(1 << 16, 1 << 16, 1)
    assert proof_options(100, 1 << 16, 1 << 16).check_security(1 << 16, lambda _n: degree) >= 100
    with pytest.raises(ParameterError, match="out of reach"):       # 99 bits at T' = 2^17
        proof_options(100, 1 << 10, 1 << 17)
    with pytest.raises(ParameterError, match="out of reach at blowup 2\\^1 at any trace length"):
        proof_options(128, 16, 16)
    with pytest.raises(ParameterError, match="out of reach"):
        proof_options(110, 1 << 10, 1 << 10)


def test_too_few_queries_say_so():
    with pytest.raises(ParameterError, match="raise num_queries"):
        ProofOptions(log_blowup=2, num_queries=20).check_security(1 << 10, degree_3, 100)


def test_short_traces_grind_less_and_query_more():
    """The order book grinds log2 N bits below 2^16 rows (grinding costs
    2^g hashes whatever the trace) and makes it up in queries: >= 100 bits
    at every length, with a query term that lets the grinding count."""
    from zksidecar.prover.orderbook.params import GRINDING_BITS, grinding_bits
    for log_t in range(4, 17):
        t = 1 << log_t
        for s in (16, t):
            options = proof_options(100, s, t)
            assert options.grinding_bits == grinding_bits(100, s, t) == min(log_t, GRINDING_BITS)
            assert conjectured_security(options, s, t) >= 100
            assert options.num_queries * options.log_blowup >= params.GRINDING_CONTRIBUTION_FLOOR
    # the grinding follows the taller domain: a one-operation proof at capacity 2^10
    one = proof_options(100, 1 << 10, 16)
    assert (one.num_queries, one.grinding_bits) == (91, 10)
    big = proof_options(100, 1 << 14, 1 << 16)
    assert (big.num_queries, big.grinding_bits) == (85, 16)

def test_the_final_degree_is_capped_so_the_verifiers_table_is_bounded():
    ProofOptions(fri_max_final_degree=1 << 10).validate()
    with pytest.raises(ParameterError, match="power of two in 1..2\\^10, got 2048"):
        ProofOptions(fri_max_final_degree=1 << 11).validate()
    assert params.MAX_FINAL_DEGREE * params.MAX_QUERIES * 4 <= 2 << 20   # bytes of powers


def test_an_lde_beyond_the_fields_two_adicity_is_refused():
    ProofOptions(log_blowup=3).check_trace_length(1 << 24)               # 2^27 points
    with pytest.raises(ParameterError, match="2\\^24 rows at blowup 16 need 2\\^28 points, over "
                                             "BabyBear's 2\\^27"):
        ProofOptions(log_blowup=4).check_security(1 << 24, degree_3, 0)


def test_the_verifier_and_the_decoder_answer_an_lde_beyond_the_field_with_their_errors():
    """A 2^24-row statement at blowup 16 (reachable with a lowered
    min_security): VerificationError and ProofFormatError, not the field's
    bare ValueError."""
    air, traces = fibonacci_instance(16, seed=1)
    proof = prove(air, traces, params.TESTING).proof
    raw = bytearray(proof.to_bytes(air))
    big = FibonacciAir(1 << 24, [(1, 1)], [0])
    wide = dataclasses.replace(proof, log_lengths=(24,),
                               options=dataclasses.replace(proof.options, log_blowup=4))
    with pytest.raises(VerificationError, match="over BabyBear's 2\\^27"):
        verify(big, wide, min_security=0)
    raw[6], raw[7] = 24, 4                    # the height, then the blowup
    with pytest.raises(ProofFormatError, match="bad proof options: .*over BabyBear's 2\\^27"):
        Proof.from_bytes(bytes(raw), big)

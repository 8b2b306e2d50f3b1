"""The security formula (prover/params.py, docs/SECURITY.md) and the
parameters chosen from a target and a trace length."""
import pytest

from zksidecar.prover import params
from zksidecar.prover.orderbook.params import LOG_BLOWUP, MAX_TRACE_LENGTH, proof_options
from zksidecar.prover.params import ParameterError, ProofOptions


def test_grinding_counts_only_above_the_floor():
    """Winterfell's rule: proof of work adds to the query term only when the
    queries alone give at least 80 bits."""
    weak = ProofOptions(log_blowup=2, num_queries=39, grinding_bits=16)       # 78 query bits
    strong = ProofOptions(log_blowup=2, num_queries=40, grinding_bits=16)     # 80 query bits
    assert weak.conjectured_security(1 << 10) == 77
    assert strong.conjectured_security(1 << 10) == 95
    assert ProofOptions(log_blowup=2, num_queries=39, grinding_bits=0).conjectured_security(1 << 10) == 77


def test_the_extension_field_caps_the_domain():
    options = proof_options(100, 1 << 10)
    assert options.max_log_trace(100) == 21
    assert options.conjectured_security(1 << 21) == 100
    assert options.conjectured_security(1 << 22) == 99
    assert MAX_TRACE_LENGTH == 1 << 21


def test_default_holds_what_its_table_says():
    """params.DEFAULT: at least 100 bits up to 2^21 rows (docs/SECURITY.md)."""
    assert params.DEFAULT.conjectured_security(1 << 21) >= 100
    assert params.DEFAULT.conjectured_security(1 << 22) < 100
    assert params.DEFAULT.max_log_trace(100) == 21


@pytest.mark.parametrize("bits", [1, 8, 20, 64, 80, 100, 110, 116])
def test_fewest_queries_for_a_target(bits):
    options = proof_options(bits, 16)
    assert options.conjectured_security(16) >= bits
    fewer = ProofOptions(log_blowup=LOG_BLOWUP, num_queries=options.num_queries - 1,
                         grinding_bits=options.grinding_bits)
    assert options.num_queries == 1 or fewer.conjectured_security(16) < bits


def test_parameters_from_target_and_trace_length():
    assert proof_options(100, 1 << 21).check_security(1 << 21) >= 100
    with pytest.raises(ParameterError, match=r"99 bits .* at 4194304 rows, under the required 100 "
                                             r"\(.*no trace longer than 2\^21 rows reaches it\)"):
        proof_options(100, 1 << 22)
    with pytest.raises(ParameterError, match="out of reach at blowup 2\\^1 at any trace length"):
        proof_options(125, 16)


def test_too_few_queries_say_so():
    with pytest.raises(ParameterError, match="raise num_queries"):
        ProofOptions(log_blowup=2, num_queries=20).check_security(1 << 10, 100)


def test_short_traces_grind_less_and_query_more():
    """The order book grinds log2 N bits below 2^16 rows (grinding costs
    2^g hashes whatever the trace) and makes it up in queries: >= 100 bits
    at every length, with a query term that lets the grinding count."""
    from zksidecar.prover.orderbook.params import GRINDING_BITS, grinding_bits
    for log_t in range(4, 21):
        t = 1 << log_t
        options = proof_options(100, t)
        assert options.grinding_bits == grinding_bits(100, t) == min(log_t, GRINDING_BITS)
        assert options.conjectured_security(t) >= 100
        assert options.num_queries * options.log_blowup >= params.GRINDING_CONTRIBUTION_FLOOR
    assert (proof_options(100, 1 << 10).num_queries, proof_options(100, 1 << 10).grinding_bits) == (91, 10)
    assert (proof_options(100, 1 << 16).num_queries, proof_options(100, 1 << 16).grinding_bits) == (85, 16)

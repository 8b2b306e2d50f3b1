"""The batch proof file: round trip, chains from files alone, and malformed
bytes give ProofFormatError (or, if they parse, fail verification)."""
import functools

import numpy as np
import pytest

from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.prover import params
from zksidecar.prover.orderbook import prove_batch, verify_batch, verify_chain
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.proof import ProofFormatError
from zksidecar.prover.verify import VerificationError

OPTS = params.ProofOptions(log_blowup=2, num_queries=12, grinding_bits=1, fri_folding_factor=4,
                           fri_max_final_degree=4)


@functools.lru_cache(maxsize=1)
def chain():
    ops = flow.generate(60, seed=5, capacity=16, params=flow.FlowParams(depth=8))
    state, out = Book(16), []
    for b in range(3):
        bp, state, _ = prove_batch(state, ops[20 * b: 20 * (b + 1)], OPTS, ops_length=128,
                                   batch_id=10 + b)
        out.append(proof_file.encode(bp))
    return tuple(out)


def test_round_trip_and_chain_from_files_alone():
    batches = [proof_file.decode(raw) for raw in chain()]
    assert [b.public.batch_id for b in batches] == [10, 11, 12]
    assert [proof_file.encode(b) for b in batches] == list(chain())
    verify_chain(batches, min_security=0)
    batches[1].public.batch_id = 12       # a gap in the ids
    with pytest.raises(VerificationError, match="batch 12 follows batch 10: batches are missing"):
        verify_chain(batches, min_security=0)


def test_the_batch_id_is_bound_to_the_proof():
    bp = proof_file.decode(chain()[1])
    bp.public.batch_id += 1
    with pytest.raises(VerificationError):
        verify_batch(bp, min_security=0)


def test_truncations_and_trailing_bytes():
    raw = chain()[0]
    for cut in range(0, len(raw), 97):
        with pytest.raises(ProofFormatError):
            proof_file.decode(raw[:cut])
    with pytest.raises(ProofFormatError, match="unexpected bytes"):
        proof_file.decode(raw + b"\0")
    with pytest.raises(ProofFormatError, match="bad magic"):
        proof_file.decode(b"ZKSP" + raw[4:])
    with pytest.raises(ProofFormatError, match="bytes"):
        proof_file.decode(None)


READS = r"this build reads version 9 \(and 10, zk mode's\)"


def test_another_version_is_refused_saying_which():
    raw = bytearray(chain()[0])
    raw[4:6] = (2).to_bytes(2, "little")     # a proof of the trace layout before the folded one
    with pytest.raises(ProofFormatError, match=rf"version 2 is not supported: {READS} \(proven against the "
                                               r"trace layout"):
        proof_file.decode(bytes(raw))
    for old, mode in ((4, "transparent"), (5, "zk")):     # whole matrices opened at w*z
        raw[4:6] = old.to_bytes(2, "little")
        with pytest.raises(ProofFormatError, match=rf"version {old} is not supported: {READS} \(a {mode} batch "
                                                   rf"whose proof, format {old}, opens whole matrices at w\*z\)"):
            proof_file.decode(bytes(raw))
    raw[4:6] = (7).to_bytes(2, "little")     # a zk batch whose statement this build no longer checks
    with pytest.raises(ProofFormatError, match=rf"version 7 is not supported: {READS} \(a zk batch of zk AIR "
                                               r"version 3, its records checked beside the lane"):
        proof_file.decode(bytes(raw))
    # the files of the node SHA-256(left || right): their roots are not this build's
    for old, mode, fmt in ((6, "transparent", 6), (8, "zk", 7)):
        raw[4:6] = old.to_bytes(2, "little")
        with pytest.raises(ProofFormatError, match=rf"version {old} is not supported: {READS} \(a {mode} batch "
                                                   rf"whose proof, format {fmt}, has Merkle nodes SHA-256"):
            proof_file.decode(bytes(raw))
    raw[4:6] = (11).to_bytes(2, "little")
    with pytest.raises(ProofFormatError, match=rf"version 11 is not supported: {READS}; "):
        proof_file.decode(bytes(raw))


def test_flipped_bytes_never_verify():
    raw = chain()[1]
    rng = np.random.default_rng(3)
    for at in rng.choice(len(raw), 120, replace=False):
        flipped = bytearray(raw)
        flipped[at] ^= 1 << int(rng.integers(8))
        try:
            bp = proof_file.decode(bytes(flipped))
        except ProofFormatError:
            continue
        with pytest.raises(VerificationError):
            verify_batch(bp, min_security=0)


def test_the_blowup_is_the_smallest_the_air_allows():
    """prover/orderbook/params.py: the LDE must hold the quotient's domain
    (2N points at degree 3), and a larger one would cost every proof for
    nothing."""
    from zksidecar.engine import flow
    from zksidecar.engine.book import Book
    from zksidecar.prover.orderbook.batch import prepare_batch
    from zksidecar.prover.orderbook.params import LOG_BLOWUP, proof_options
    from zksidecar.prover.proof import quotient_log_blowup

    ops = flow.generate(4, seed=1, capacity=16)
    prep = prepare_batch(Book(16), ops, proof_options(20, 16, 64))
    air = prep.public.air()
    assert air.max_degree == 3 and quotient_log_blowup(air) == LOG_BLOWUP == 1

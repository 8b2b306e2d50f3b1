"""The proof parameters of order-book batch proofs, defined once.

Every producer of a batch proof (the daemon's workers, the external-prover
server, the Python API, `zksidecar prove`, the benchmarks) takes its
ProofOptions from `proof_options`, so a chain's proofs agree and a change of
parameters is made here and nowhere else.
"""
from __future__ import annotations

from ..params import DEFAULT_MIN_SECURITY, ProofOptions

#: OrderBookAir's constraints have degree 3 and the prover needs a blowup of
#: at least the degree: 2^2 is the smallest that holds (tests check it
#: against the AIR's declared degree)
LOG_BLOWUP = 2
#: proof-of-work bits bought before the queries; a target under 16 bits (tests
#: only) grinds no more than its own size
GRINDING_BITS = 16


def proof_options(security_bits: int = DEFAULT_MIN_SECURITY,
                  log_blowup: int = LOG_BLOWUP) -> ProofOptions:
    """The fewest queries reaching `security_bits` of conjectured security
    at this blowup, with GRINDING_BITS of grinding."""
    return ProofOptions.for_security(security_bits, log_blowup=log_blowup,
                                     grinding_bits=min(GRINDING_BITS, security_bits))

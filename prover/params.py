"""Proof parameters and the security they buy (docs/SECURITY.md derives it).

Conjectured security, in bits (the ethSTARK / Winterfell convention):

    min( queries * log2(blowup) + grinding,        # query phase
         extension field bits - log2(LDE size),    # algebraic steps (DEEP, FRI folding)
         128 )                                     # SHA-256 collision resistance
    - 1

where grinding counts only if the queries alone give at least
GRINDING_CONTRIBUTION_FLOOR bits: proof of work multiplies the cost of each
attempt, it does not stand in for queries that were never strong.

Every proof carries its parameters and this figure; the verifier recomputes
the figure from the parameters (never trusts the stored one) and refuses
proofs under its threshold, 100 bits unless told otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .field import P

EXT_FIELD_BITS = math.floor(4 * math.log2(P))   # 123
HASH_COLLISION_BITS = 128
DEFAULT_MIN_SECURITY = 100

MAX_LOG_BLOWUP = 4
FOLDING_FACTORS = (2, 4, 8, 16)
MAX_QUERIES = 512
MAX_GRINDING_BITS = 32
MAX_LOG_TRACE = 24
#: grinding adds to the query term only when that term alone reaches this
GRINDING_CONTRIBUTION_FLOOR = 80


class ParameterError(ValueError):
    """A parameter set that is malformed, or too weak for the verifier."""


@dataclass(frozen=True)
class ProofOptions:
    log_blowup: int = 1             # LDE domain = trace length * 2^log_blowup
    num_queries: int = 86
    grinding_bits: int = 16
    fri_folding_factor: int = 8
    fri_max_final_degree: int = 64  # FRI stops folding at or below this degree

    def validate(self) -> None:
        if not 1 <= self.log_blowup <= MAX_LOG_BLOWUP:
            raise ParameterError(f"log_blowup must be in 1..{MAX_LOG_BLOWUP}, got {self.log_blowup}")
        if not 1 <= self.num_queries <= MAX_QUERIES:
            raise ParameterError(f"num_queries must be in 1..{MAX_QUERIES}, got {self.num_queries}")
        if not 0 <= self.grinding_bits <= MAX_GRINDING_BITS:
            raise ParameterError(f"grinding_bits must be in 0..{MAX_GRINDING_BITS}, "
                                 f"got {self.grinding_bits}")
        if self.fri_folding_factor not in FOLDING_FACTORS:
            raise ParameterError(f"fri_folding_factor must be one of {FOLDING_FACTORS}, "
                                 f"got {self.fri_folding_factor}")
        d = self.fri_max_final_degree
        if d < 1 or d & (d - 1) or d > 1 << 16:
            raise ParameterError(f"fri_max_final_degree must be a power of two in 1..2^16, got {d}")

    def conjectured_security(self, trace_length: int) -> int:
        lde_bits = trace_length.bit_length() - 1 + self.log_blowup
        return max(0, min(self._query_bits(), EXT_FIELD_BITS - lde_bits, HASH_COLLISION_BITS) - 1)

    def _query_bits(self) -> int:
        query = self.num_queries * self.log_blowup
        return query + self.grinding_bits if query >= GRINDING_CONTRIBUTION_FLOOR else query

    def max_log_trace(self, bits: int) -> int:
        """log2 of the longest trace at which these parameters give `bits`
        of conjectured security, or -1 if none does (the extension field
        caps the LDE size, queries cannot buy it back)."""
        if min(self._query_bits(), HASH_COLLISION_BITS) - 1 < bits:
            return -1
        longest = min(MAX_LOG_TRACE, EXT_FIELD_BITS - 1 - bits - self.log_blowup)
        return longest if longest >= 0 else -1

    def check_security(self, trace_length: int, min_bits: int = DEFAULT_MIN_SECURITY) -> int:
        self.validate()
        bits = self.conjectured_security(trace_length)
        if bits < min_bits:
            longest = self.max_log_trace(min_bits)
            if longest >= 0:
                fix = (f"the extension field caps the domain: at blowup 2^{self.log_blowup} no "
                       f"trace longer than 2^{longest} rows reaches it")
            else:
                fix = "raise num_queries, grinding_bits or log_blowup, or lower the requirement"
            raise ParameterError(f"these parameters give {bits} bits of conjectured security at "
                                 f"{trace_length} rows, under the required {min_bits} ({fix})")
        return bits

    @classmethod
    def for_security(cls, bits: int = DEFAULT_MIN_SECURITY, trace_length: int | None = None,
                     log_blowup: int = 1, grinding_bits: int = 16, **fri) -> "ProofOptions":
        """The fewest queries giving `bits` of conjectured security at this
        blowup and grinding, for traces of `trace_length` rows (checked: a
        ParameterError if no number of queries reaches it) or, if None, for
        any trace short enough."""
        for queries in range(1, MAX_QUERIES + 1):
            options = cls(log_blowup=log_blowup, num_queries=queries, grinding_bits=grinding_bits,
                          **fri)
            if options.max_log_trace(bits) >= 0:
                break
        else:
            raise ParameterError(f"{bits} bits of conjectured security are out of reach at blowup "
                                 f"2^{log_blowup} at any trace length (the extension field and "
                                 f"SHA-256 cap what queries buy)")
        if trace_length is not None:
            options.check_security(trace_length, bits)
        return options


#: ≥ 100 bits conjectured for traces up to 2^21 rows (blowup 2, 85 queries)
DEFAULT = ProofOptions.for_security(100)
#: fast, insecure: for tests of completeness and soundness logic only
TESTING = ProofOptions(log_blowup=1, num_queries=20, grinding_bits=2, fri_folding_factor=4,
                       fri_max_final_degree=4)

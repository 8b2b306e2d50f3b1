"""Proof parameters and the security they buy (docs/SECURITY.md derives it).

Conjectured security, in bits (the ethSTARK / Winterfell convention):

    min( queries * log2(blowup) + grinding,          # query phase
         floor(log2 |F_ext| - log2 max(M, D)),       # algebraic steps
         128 )                                       # SHA-256 collision resistance
    - 1

where grinding counts only if the queries alone give at least
GRINDING_CONTRIBUTION_FLOOR bits: proof of work multiplies the cost of each
attempt, it does not stand in for queries that were never strong.  M is the
LDE size (DEEP and FRI batching, FRI folding); D is the AIR's algebraic
degree (Air.algebraic_degree): the largest degree of a polynomial identity
a challenge must not be a root of, at least d*N for the identity checked at
the out-of-domain point (d the constraint degree: 1.5 M at degree 3 and
blowup 2) and the LogUp sums' Schwartz-Zippel degree.  No default: a
figure is only ever computed for an AIR.

Every proof carries its parameters and this figure; the verifier recomputes
the figure from the parameters (never trusts the stored one) and refuses
proofs under its threshold, 100 bits unless told otherwise.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .field import P, TWO_ADICITY

#: log2 |F_p^4| = 123.63
EXT_FIELD_LOG2 = 4 * math.log2(P)
HASH_COLLISION_BITS = 128
DEFAULT_MIN_SECURITY = 100
#: a bound on the bits conjectured_security gives any proof: the hash's
#: collision term and the extension field's size (the algebraic term is below
#: log2 |F_p^4|) cap every figure, less the bit it takes off.  A threshold
#: above it would refuse every proof, and a figure above it is not one
MAX_SECURITY_BITS = math.floor(min(HASH_COLLISION_BITS, EXT_FIELD_LOG2)) - 1

MAX_LOG_BLOWUP = 4
FOLDING_FACTORS = (2, 4, 8, 16)
MAX_QUERIES = 512
MAX_GRINDING_BITS = 32
MAX_LOG_TRACE = 24
#: the final polynomial's largest degree bound: the verifier evaluates it at
#: every remaining query point from a table of (queries x degree) powers, at
#: most 512 x 2^10 words (2 MiB), whatever a proof claims
MAX_FINAL_DEGREE = 1 << 10
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
    #: zero-knowledge mode (docs/ZK.md): every committed polynomial masked,
    #: every tree salted, the quotient in masked chunks, R~ in DEEP/FRI
    zk: bool = False

    def mask_degree(self, state_read_at_next: bool = False) -> int:
        """h: the degree bound of each committed trace column's mask r
        (f = t + Z_H r) in zk mode; 0 in transparent mode.  One proof
        reveals of a column z (4 functionals) and a row per query, and of a
        matrix read on the next row w z (4) and, inside the quotient, a
        next row per query: 2q + 8.  A chained state is opened by two
        proofs and at its link point (4): 2q + 20 when no constraint reads
        it on the next row (docs/ZK.md 5.2), 4q + 20 when one does
        (`state_read_at_next`; proof.mask_degree decides from the AIR)."""
        if not self.zk:
            return 0
        return (4 if state_read_at_next else 2) * self.num_queries + 20

    @property
    def chunk_mask_degree(self) -> int:
        """h_q: the degree bound of the quotient chunks' masks s_i in zk
        mode, q + 4 (docs/ZK.md 5.4: z's 4 functionals and one per query
        row, per base coordinate); 0 in transparent mode."""
        return self.num_queries + 4 if self.zk else 0

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
        if d < 1 or d & (d - 1) or d > MAX_FINAL_DEGREE:
            raise ParameterError(f"fri_max_final_degree must be a power of two in "
                                 f"1..2^{MAX_FINAL_DEGREE.bit_length() - 1}, got {d}")

    def check_trace_length(self, trace_length: int) -> None:
        """ParameterError unless the LDE of `trace_length` rows (a power of
        two) fits in BabyBear's subgroup of order 2^TWO_ADICITY, where the
        domains and FRI's points live."""
        log_n = trace_length.bit_length() - 1
        if log_n + self.log_blowup > TWO_ADICITY:
            raise ParameterError(f"2^{log_n} rows at blowup {1 << self.log_blowup} need "
                                 f"2^{log_n + self.log_blowup} points, over BabyBear's 2^{TWO_ADICITY}")

    def conjectured_security(self, trace_length: int, algebraic_degree: int,
                             fri_degree_bound: int | None = None) -> int:
        """The figure at `trace_length` rows for an AIR whose algebraic
        degree there is `algebraic_degree` (Air.algebraic_degree).  FRI
        tests degree < `fri_degree_bound` (D_F; the trace length, the
        default, in transparent mode) on M = N 2^log_blowup points: each
        query buys log2(M / D_F) bits, log_blowup in transparent mode and
        a little less in zk mode, where D_F is above N (docs/ZK.md 5.2)."""
        m = trace_length << self.log_blowup
        return max(0, math.floor(min(self._query_bits(m, fri_degree_bound or trace_length),
                                     algebraic_bits(m, algebraic_degree), HASH_COLLISION_BITS)) - 1)

    def _query_bits(self, lde_size: int | None = None, fri_degree_bound: int | None = None) -> float:
        """q log2(M / D_F), plus the grinding bits once that reaches the
        floor; log_blowup per query when D_F = N (or not given)."""
        if fri_degree_bound is None or lde_size == fri_degree_bound << self.log_blowup:
            query = float(self.num_queries * self.log_blowup)
        else:
            query = self.num_queries * math.log2(lde_size / fri_degree_bound)
        return query + self.grinding_bits if query >= GRINDING_CONTRIBUTION_FLOOR else query

    def max_log_trace(self, bits: int, algebraic_degree: Callable[[int], int]) -> int:
        """log2 of the longest trace at which these parameters give `bits`
        of conjectured security to an AIR of algebraic degree
        `algebraic_degree(trace_length)`, or -1 if none does (the extension
        field caps the degree, queries cannot buy it back)."""
        longest = -1
        for log_n in range(1, MAX_LOG_TRACE + 1):
            if self.conjectured_security(1 << log_n, algebraic_degree(1 << log_n)) >= bits:
                longest = log_n
        return longest

    def check_security(self, trace_length: int, algebraic_degree: Callable[[int], int],
                       min_bits: int = DEFAULT_MIN_SECURITY, fri_degree_bound: int | None = None) -> int:
        """The figure at `trace_length` rows (algebraic_degree as for
        max_log_trace; fri_degree_bound as for conjectured_security), or
        ParameterError if it is under `min_bits`."""
        self.validate()
        self.check_trace_length(trace_length)
        bits = self.conjectured_security(trace_length, algebraic_degree(trace_length), fri_degree_bound)
        if bits < min_bits:
            longest = self.max_log_trace(min_bits, algebraic_degree)
            if self.zk:
                fix = ("zk mode: raise num_queries or grinding_bits, or lower the requirement; each query "
                       f"buys log2(M / D_F) bits, D_F = {fri_degree_bound} on {trace_length << self.log_blowup} points")
            elif longest >= 0:
                fix = (f"the extension field caps the algebraic degree: at blowup 2^{self.log_blowup} "
                       f"no trace longer than 2^{longest} rows reaches it")
            elif min(self._query_bits(), HASH_COLLISION_BITS) - 1 >= min_bits:
                fix = "the extension field caps the algebraic degree: no trace length reaches it"
            else:
                fix = "raise num_queries, grinding_bits or log_blowup, or lower the requirement"
            raise ParameterError(f"these parameters give {bits} bits of conjectured security at "
                                 f"{trace_length} rows, under the required {min_bits} ({fix})")
        return bits

    @classmethod
    def for_security(cls, bits: int = DEFAULT_MIN_SECURITY, trace_length: int | None = None,
                     algebraic_degree: Callable[[int], int] | None = None,
                     log_blowup: int = 1, grinding_bits: int = 16, **fri) -> "ProofOptions":
        """The fewest queries giving `bits` from the query phase at this
        blowup and grinding; with a `trace_length`, checked there for an AIR
        of that `algebraic_degree` (a ParameterError if no number of queries
        reaches it)."""
        for queries in range(1, MAX_QUERIES + 1):
            options = cls(log_blowup=log_blowup, num_queries=queries, grinding_bits=grinding_bits,
                          **fri)
            if min(options._query_bits(), HASH_COLLISION_BITS) - 1 >= bits:
                break
        else:
            options = None
        if options is None or (algebraic_degree is not None
                               and options.max_log_trace(bits, algebraic_degree) < 0):
            raise ParameterError(f"{bits} bits of conjectured security are out of reach at blowup "
                                 f"2^{log_blowup} at any trace length (the extension field and "
                                 f"SHA-256 cap what queries buy)")
        if trace_length is not None:
            if algebraic_degree is None:
                raise TypeError("for_security at a trace length needs the AIR's algebraic_degree")
            options.check_security(trace_length, algebraic_degree, bits)
        return options


def algebraic_bits(lde_size: int, algebraic_degree: int) -> int:
    """floor(log2 |F_ext| - log2 max(M, D)): a challenge drawn uniformly
    from the extension field is a root of a nonzero polynomial of degree at
    most max(M, D) with probability at most max(M, D) / |F_ext|."""
    return math.floor(EXT_FIELD_LOG2 - math.log2(max(lde_size, algebraic_degree)))


#: ≥ 100 bits from the queries (blowup 2, 85 queries); what an AIR gets
#: also depends on its algebraic degree (2^21 rows for constraints of degree
#: up to 3 without LogUp, tests/test_params.py)
DEFAULT = ProofOptions.for_security(100)
#: fast, insecure: for tests of completeness and soundness logic only
TESTING = ProofOptions(log_blowup=1, num_queries=20, grinding_bits=2, fri_folding_factor=4,
                       fri_max_final_degree=4)

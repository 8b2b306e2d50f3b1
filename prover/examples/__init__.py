"""Example AIRs: small, complete computations the STARK proves (used by the
tests, the benchmarks and as models for new AIRs)."""

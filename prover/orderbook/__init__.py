"""The order-book AIR of docs/STATEMENT.md (issue 6): a batch of operations,
matched by the engine's rules, proven against chained state roots.

    air.py      the batch statement: BookAir (the state tables, S rows) and OrderBookAir
                (the steps, T' rows), one tagged LogUp sum split between them
    witness.py  the trace columns from the engine's tracing mode
    batch.py    prove_batch / verify_batch / verify_chain / verify_history, the public inputs;
                check_alone (one batch, alone) and ChainCheck (the links, in order)
    verify_report.py  the verification report `zksidecar verify --report` writes
"""
from .air import OrderBookAir, public_tables, classify
from .batch import (BatchProof, BatchPublic, BookState, BatchRejected, ChainCheck, ChainPoint,
                    ChainSegment, Checked, check_alone, check_claims, empty_state, prove_batch,
                    verify_batch, verify_chain, verify_history)

__all__ = ["OrderBookAir", "public_tables", "classify", "BatchProof", "BatchPublic", "BookState",
           "BatchRejected", "ChainCheck", "ChainPoint", "ChainSegment", "Checked", "check_alone",
           "check_claims", "empty_state", "prove_batch", "verify_batch", "verify_chain",
           "verify_history"]

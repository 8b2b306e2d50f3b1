"""The order-book AIR of docs/STATEMENT.md (issue 6): a batch of operations,
matched by the engine's rules, proven against chained state roots.

    air.py      OrderBookAir: state tables, step trace, one tagged LogUp sum
    witness.py  the trace columns from the engine's tracing mode
    batch.py    prove_batch / verify_batch / verify_chain and the public inputs
"""
from .air import OrderBookAir, public_tables, classify
from .batch import (BatchProof, BatchPublic, BookState, BatchRejected, empty_state,
                    prove_batch, verify_batch, verify_chain)

__all__ = ["OrderBookAir", "public_tables", "classify", "BatchProof", "BatchPublic", "BookState",
           "BatchRejected", "empty_state", "prove_batch", "verify_batch", "verify_chain"]

"""The proof state table of docs/STATEMENT.md ("The state table"): the book as
N words of 8 BabyBear field elements, one word per address.

    address 0      header: best_bid, worst_bid, best_ask, worst_ask, free_head, live, 0, 0
    address s >= 1 slot s: price, qty, side, account_lo16, account_hi16, prev, next, gen

It is `Book.cells` rearranged: the header's pointer cells move into the null
slot's row (which the engine keeps all zero), the stream cells (sequence
number, timestamp, symbol, capacity) leave because the verifier checks them
on the public records, and the 32-bit account splits into 16-bit limbs so
that every cell is a canonical field element.  The engine's tracing mode
(engine/trace.py) reports every step's memory accesses in this layout.

No import of the prover: the engine is embedded on its own, so the field's
modulus is restated here and tests/test_engine_trace.py checks it against
zksidecar.prover.field.P.
"""
from __future__ import annotations

import numpy as np

from .invariants import COLUMNS, HEADER
from .native import lib

P = 15 * (1 << 27) + 1  # BabyBear
WORD = 8                # cells per word
HEADER_CELLS = 6        # best_bid .. live: the proven part of the engine's header
WORD_FIELDS = ("price", "qty", "side", "account_lo", "account_hi", "prev", "next", "gen")
HEADER_FIELDS = ("best_bid", "worst_bid", "best_ask", "worst_ask", "free_head", "live")

_COL = {name: i for i, name in enumerate(COLUMNS)}


def proof_table(cells: np.ndarray) -> np.ndarray:
    """The (N, 8) uint32 table of `cells` (a Book.cells array), every value
    a canonical BabyBear element; ValueError if one is not (only a corrupt
    table can hold such a value: the engine's prices, quantities and
    generations are below 2^30, its links below 2^24)."""
    cap = 1 << int(cells[lib.ZK_HDR_LOG2_CAPACITY])
    if len(cells) != HEADER + len(COLUMNS) * cap:
        raise ValueError(f"{len(cells)} cells do not match a capacity of {cap}")
    col = np.asarray(cells[HEADER:], dtype=np.uint32).reshape(len(COLUMNS), cap)
    account = col[_COL["account"]]
    table = np.stack([col[_COL["price"]], col[_COL["qty"]], col[_COL["side"]],
                      account & np.uint32(0xFFFF), account >> np.uint32(16),
                      col[_COL["prev"]], col[_COL["next"]], col[_COL["gen"]]], axis=1)
    table[0, :HEADER_CELLS] = cells[:HEADER_CELLS]
    table[0, HEADER_CELLS:] = 0
    if (table >= P).any():
        addr, cell = (int(i[0]) for i in np.nonzero(table >= P))
        raise ValueError(f"word {addr} cell {cell} holds {int(table[addr, cell])}, not below p = {P}")
    return table


def with_table(cells: np.ndarray, table: np.ndarray) -> np.ndarray:
    """A copy of `cells` holding `table`: the inverse of proof_table for what
    a table holds (every column of every slot, and the header's best_bid ..
    live); the stream cells (sequence number, timestamp, symbol, capacity)
    stay those of `cells`.  `table` must be `cells`' capacity long."""
    cap = len(table)
    out = np.array(cells, dtype=np.uint32)
    if len(out) != HEADER + len(COLUMNS) * cap:
        raise ValueError(f"{len(out)} cells do not match a table of {cap} words")
    col = out[HEADER:].reshape(len(COLUMNS), cap)
    for i, name in enumerate(WORD_FIELDS):
        if name in _COL:
            col[_COL[name]] = table[:, i]
    col[_COL["account"]] = table[:, WORD_FIELDS.index("account_lo")] \
        | table[:, WORD_FIELDS.index("account_hi")] << np.uint32(16)
    col[:, 0] = 0                   # the null slot: the table's word 0 is the header's
    out[:HEADER_CELLS] = table[0, :HEADER_CELLS]
    return out

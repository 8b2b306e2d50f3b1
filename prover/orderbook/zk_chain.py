"""A zk chain: its fixed parameters, its keys and its state tables
(docs/ZK.md, sections 5.7 and 6; docs/ZK_KEYS.md).

A chain of zk batch proofs is fixed by its symbol, its book's capacity, its
`ops` height T (one height per chain in zk mode: a height sized per batch
would publish the rows each batch took, docs/ZK.md section 14) and its
proof options; with the store key K those give every key of its batches:

    Delta      ZkChain.digest: zk_keys.chain_digest of the parameters
    kappa_b    ZkChain.batch_key(b, content): record and side salts, the
               trade rows' order (zk_lane.py), the parent of the proof key
    sigma_b    ZkChain.state_key(b, table): the mask and salts of the state
               after batch b, derived alike by batch b (its post-state) and
               batch b + 1 (its pre-state), from the table itself

The state table of zk mode has 13 columns: the 8 of air.py's and the five
timestamp cells of zk_air.py (row 0: the last operation's timestamp,
zk_record_checks.timestamp_pieces).  The chain's first state, the empty book with timestamp
0, is public: committed with no mask and zero salts (masking.Mask.public),
so the verifier commits it itself and no link is carried.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from ...engine import invariants
from ...engine.book import Book
from ...engine.proof_table import proof_table
from .. import field as F
from .. import zk_keys
from ..masking import Mask
from ..params import ProofOptions
from ..proof import ZK_VERSION, fri_schedule, mask_degree
from ..prove import SegmentCommitment
from .air import WORD, book_length
from .params import check_zk_ops_length
from .zk_air import TS_CELLS, ZK_AIR_VERSION, shape_statement
from .zk_record_checks import timestamp_pieces

#: the batch proof file version of zk batches (prover/orderbook/proof_file.py
#: writes it; docs/PROOF_FORMAT.md, "zk batch proof file")
ZK_FILE_VERSION = 5
#: the zk state table's columns: the book's words, then the timestamp cells
STATE_COLUMNS = WORD + TS_CELLS


def zk_state_table(table: np.ndarray, last_ts: int) -> np.ndarray:
    """The zk state table, ``(S, 13)`` int64 canonical: a book's proof table
    padded to S rows (``(S, 8)``, as batch.state_table gives it), and the
    pieces of `last_ts` on row 0 (the other rows' timestamp cells 0)."""
    out = np.zeros((table.shape[0], STATE_COLUMNS), dtype=np.int64)
    out[:, :WORD] = table
    out[0, WORD:] = timestamp_pieces(last_ts)
    return out


def padded_table(cells: np.ndarray) -> np.ndarray:
    """A book's proof table padded to its `book` domain's S rows, ``(S, 8)``
    int64 canonical (batch.state_table's rule)."""
    table = proof_table(cells).astype(np.int64)
    out = np.zeros((book_length(invariants.check_shape(cells)), WORD), dtype=np.int64)
    out[:len(table)] = table
    return out


@dataclass(frozen=True)
class ZkChain:
    """A zk chain's fixed parameters and its store key K (32 bytes; keep
    it as secret as the journal, docs/ZK.md section 6).  `options` must be
    zk mode's (zk_proof_options gives them for a security target)."""

    store_key: bytes
    symbol: int
    log2_capacity: int
    ops_length: int
    options: ProofOptions

    def __post_init__(self):
        if not isinstance(self.store_key, bytes) or len(self.store_key) != zk_keys.KEY_BYTES:
            raise ValueError(f"a store key is {zk_keys.KEY_BYTES} bytes")
        if not self.options.zk:
            raise ValueError("a zk chain's proof options must be zk mode's (ProofOptions.zk)")
        check_zk_ops_length(self.ops_length, self.log2_capacity)

    @property
    def capacity(self) -> int:
        return 1 << self.log2_capacity

    @property
    def book_length(self) -> int:
        return book_length(self.capacity)

    @functools.cached_property
    def mask_degree(self) -> int:
        """h of every trace column, the chained state's included."""
        return mask_degree(shape_statement(self.log2_capacity, self.ops_length), self.options)

    @functools.cached_property
    def digest(self) -> bytes:
        """Delta: the chain's parameters as zk_keys.chain_digest takes them
        (docs/ZK_KEYS.md), the FRI plan the proofs' own."""
        st = shape_statement(self.log2_capacity, self.ops_length)
        o = self.options
        schedule = fri_schedule(st, o)
        return zk_keys.chain_digest(
            mode="zk", ops_rows=self.ops_length, capacity=self.capacity, log_blowup=o.log_blowup,
            queries=o.num_queries, h=mask_degree(st, o), h_q=o.chunk_mask_degree,
            fri_folds=[1 << a for a in schedule.log_arities], fri_final_degree=schedule.final_degree,
            grinding_bits=o.grinding_bits, proof_version=ZK_VERSION, batch_file_version=ZK_FILE_VERSION,
            air_version=ZK_AIR_VERSION)

    def batch_key(self, batch_id: int, content: bytes) -> bytes:
        """kappa_b for batch `batch_id` of this content digest (content_digest)."""
        return zk_keys.batch_key(self.store_key, self.digest, str(self.symbol), batch_id, content)

    def state_key(self, batch_id: int, table: np.ndarray) -> bytes:
        """sigma_b: the key of the state after batch `batch_id`, the zk state
        table `table` (``(S, 13)`` Montgomery, as committed)."""
        return zk_keys.state_key(self.store_key, self.digest, str(self.symbol), batch_id,
                                 zk_keys.table_digest(table))

    def commit_state(self, table: np.ndarray, batch_id: int | None) -> SegmentCommitment:
        """The commitment of a zk state table (``(S, 13)`` int64 canonical):
        masked under the state key of the batch that left it, or, for the
        chain's first state (`batch_id` None), public (no mask, zero salts)."""
        enc = F.encode(table)
        log_m = (enc.shape[0] << self.options.log_blowup).bit_length() - 1
        mask = Mask.public(enc.shape[1], log_m) if batch_id is None else \
            Mask.for_state(self.state_key(batch_id, enc), enc, self.mask_degree, log_m)
        return SegmentCommitment.commit(enc, self.options.log_blowup, mask)

    def genesis_table(self) -> np.ndarray:
        """The chain's first state: the empty book, last timestamp 0."""
        return zk_state_table(padded_table(Book(self.capacity, self.symbol).cells), 0)


def genesis_commitment(log2_capacity: int, symbol: int, log_blowup: int) -> SegmentCommitment:
    """The empty book's zk state commitment, public: what a verifier
    commits itself for the first batch of a zk chain (no key needed)."""
    table = F.encode(zk_state_table(padded_table(Book(1 << log2_capacity, symbol).cells), 0))
    log_m = (table.shape[0] << log_blowup).bit_length() - 1
    return SegmentCommitment.commit(table, log_blowup, Mask.public(table.shape[1], log_m))


def content_digest(pre_table: np.ndarray, ops: np.ndarray, trades: np.ndarray, resumed: bool) -> bytes:
    """SHA-256 of a batch's content (the batch key's input, docs/ZK_KEYS.md):
    the zk state table before it (cells and last timestamp), its records
    with their outcomes, its trades, and `resumed`."""
    h = hashlib.sha256(zk_keys.label(["zk-batch-content", zk_keys.table_digest(F.encode(pre_table)),
                                      len(ops), len(trades), int(bool(resumed))]))
    h.update(np.ascontiguousarray(ops).view(np.uint8))
    h.update(np.ascontiguousarray(trades).view(np.uint8))
    return h.digest()

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

A prover needs no more than one batch's three keys (kappa_b, sigma_(b-1),
sigma_b): `ZkChain.batch_keys` derives them where K is (the daemon, at the
cut: docs/ZK.md section 9), and `ZkChain.for_batch` is a chain that holds
only those, for a worker or a prover host, which then never sees K.  It
answers for the one content and the two tables the keys were derived
for, and refuses anything else by name (a run that is not the one cut).

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
from ..masking import Mask, StateKey
from ..params import ProofOptions
from ..proof import ZK_VERSION, fri_schedule, mask_degree
from ..prove import SegmentCommitment
from .air import WORD, book_length
from .params import check_zk_ops_length
from .zk_air import TS_CELLS, ZK_AIR_VERSION, shape_statement
from .zk_record_checks import timestamp_pieces

#: the batch proof file version of zk batches (prover/orderbook/proof_file.py
#: writes it; docs/PROOF_FORMAT.md, "zk batch proof file"): 10, holding a
#: proof of format 9 (a Merkle node one SHA-256 compression, docs/MERKLE.md)
#: of zk AIR version 4 (the record checks in the book domain); 8 held format
#: 7's (nodes SHA-256(left || right); values at w*z for the columns read on
#: the next row only), 7 the same format's proofs of AIR version 3, 5 format
#: 5's.  The file's version moves with the statement its proof is checked
#: against, so a file this build cannot verify is refused by name, not as a
#: bad proof
ZK_FILE_VERSION = 10
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


class ChainKeyError(ValueError):
    """A key asked of a chain that cannot give it: a chain holding one
    batch's keys (ZkChain.for_batch) asked for another batch's, or for the
    same batch with other content than its keys were derived for."""


@dataclass(frozen=True)
class BatchKeys:
    """The keys one batch's proof needs, each with the input it was derived
    for (ZkChain.batch_keys): kappa_b of the batch's content digest,
    sigma_(b-1) of its pre-state table's digest (None for batch 0, whose
    pre-state is the public empty book) and sigma_b of its post-state
    table's.  As secret as the batch's records, and no more: K is not
    among them."""

    batch_id: int
    content: bytes
    batch_key: bytes
    pre_table: bytes | None
    pre_key: bytes | None
    post_table: bytes
    post_key: bytes

    def __post_init__(self):
        if isinstance(self.batch_id, bool) or not isinstance(self.batch_id, int) or self.batch_id < 0:
            raise ValueError(f"a batch id is an integer >= 0, not {self.batch_id!r}")
        if (self.pre_key is None) != (self.pre_table is None) or (self.pre_key is None) != (self.batch_id == 0):
            raise ValueError("a batch's pre-state key is given with its table digest, for every batch but 0")
        for name in ("content", "batch_key", "pre_table", "pre_key", "post_table", "post_key"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, bytes) or len(v) != zk_keys.DIGEST_BYTES):
                raise ValueError(f"batch keys: {name} is {zk_keys.DIGEST_BYTES} bytes")


@dataclass(frozen=True)
class ZkChain:
    """A zk chain's fixed parameters and its store key K (32 bytes; keep
    it as secret as the journal, docs/ZK.md section 6).  `options` must be
    zk mode's (zk_proof_options gives them for a security target).  A chain
    made by `for_batch` holds no K (`store_key` None), only `keys`."""

    store_key: bytes | None
    symbol: int
    log2_capacity: int
    ops_length: int
    options: ProofOptions
    keys: BatchKeys | None = None

    def __post_init__(self):
        if self.store_key is None:
            if not isinstance(self.keys, BatchKeys):
                raise ValueError("a zk chain holds its store key, or one batch's keys (ZkChain.for_batch)")
        elif not isinstance(self.store_key, bytes) or len(self.store_key) != zk_keys.KEY_BYTES:
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
    def parameters(self) -> dict:
        """The chain's fixed parameters, named as zk_keys.chain_digest takes
        them (docs/ZK_KEYS.md), the FRI plan the proofs' own: what Delta is
        the digest of, and what a store records beside it so that a change
        can be named (daemon/zk_store.py)."""
        st = shape_statement(self.log2_capacity, self.ops_length)
        o = self.options
        schedule = fri_schedule(st, o)
        return dict(mode="zk", ops_rows=self.ops_length, capacity=self.capacity, log_blowup=o.log_blowup,
                    queries=o.num_queries, h=mask_degree(st, o), h_q=o.chunk_mask_degree,
                    fri_folds=[1 << a for a in schedule.log_arities], fri_final_degree=schedule.final_degree,
                    grinding_bits=o.grinding_bits, proof_version=ZK_VERSION, batch_file_version=ZK_FILE_VERSION,
                    air_version=ZK_AIR_VERSION, key_stream_version=zk_keys.KEY_STREAM_VERSION)

    @functools.cached_property
    def digest(self) -> bytes:
        """Delta: zk_keys.chain_digest of `parameters`."""
        return zk_keys.chain_digest(**self.parameters)

    def batch_key(self, batch_id: int, content: bytes) -> bytes:
        """kappa_b for batch `batch_id` of this content digest (content_digest)."""
        if self.store_key is None:
            k = self.keys
            if (batch_id, content) != (k.batch_id, k.content):
                raise ChainKeyError(f"symbol {self.symbol}: this prover holds the keys of batch {k.batch_id} as it "
                                    f"was cut, not of batch {batch_id}" if batch_id != k.batch_id else
                                    f"symbol {self.symbol} batch {batch_id}: its run is not the one its keys were "
                                    "derived for (other records, trades or pre-state)")
            return k.batch_key
        return zk_keys.batch_key(self.store_key, self.digest, str(self.symbol), batch_id, content)

    def state_key(self, batch_id: int, table: np.ndarray) -> StateKey:
        """sigma_b, the key of the state after batch `batch_id`, the zk state
        table `table` (``(S, 13)`` Montgomery, as committed), with the
        table's digest it is derived from (masking.StateKey: the mask's
        label holds it too, and the table is hashed once)."""
        digest = zk_keys.table_digest(table)
        return StateKey(self.state_key_of(batch_id, digest), digest)

    def state_key_of(self, batch_id: int, digest: bytes) -> bytes:
        """:meth:`state_key` from the table's digest (zk_keys.table_digest)."""
        if self.store_key is None:
            k = self.keys
            known = {k.batch_id: (k.post_table, k.post_key)}
            if k.pre_key is not None:
                known[k.batch_id - 1] = (k.pre_table, k.pre_key)
            if batch_id not in known or known[batch_id][0] != digest:
                raise ChainKeyError(f"symbol {self.symbol}: the state after batch {batch_id} is not one this "
                                    f"prover holds the key of (batch {k.batch_id}'s pre- and post-state as cut)")
            return known[batch_id][1]
        return zk_keys.state_key(self.store_key, self.digest, str(self.symbol), batch_id, digest)

    def batch_keys(self, batch_id: int, pre_cells: np.ndarray, pre_ts: int, ops: np.ndarray,
                   trades: np.ndarray, post_cells: np.ndarray, resumed: bool) -> BatchKeys:
        """The three keys of batch `batch_id` (BatchKeys), from its run: the
        engine cells before it and its zk state's last timestamp `pre_ts`
        (0 at the chain's start), its records with outcomes, its trades, the
        cells after it, `resumed`.  Needs K."""
        if self.store_key is None:
            raise ChainKeyError("batch keys are derived where the store key is")
        pre = F.encode(zk_state_table(padded_table(pre_cells), pre_ts))
        post = F.encode(zk_state_table(padded_table(post_cells), int(ops["ts_ns"][-1])))
        pre_digest, post_digest = zk_keys.table_digest(pre), zk_keys.table_digest(post)   # each table once
        content = content_digest_of(pre_digest, ops, trades, bool(resumed))
        return BatchKeys(batch_id, content, self.batch_key(batch_id, content),
                         pre_digest if batch_id else None,
                         self.state_key_of(batch_id - 1, pre_digest) if batch_id else None,
                         post_digest, self.state_key_of(batch_id, post_digest))

    def pre_state_digest(self, pre_cells: np.ndarray, pre_ts: int) -> bytes:
        """The digest of a batch's zk pre-state table (its engine cells
        before it, the last timestamp before it): a private file's
        `pre_state`, content_digest_of's input."""
        return zk_keys.table_digest(F.encode(zk_state_table(padded_table(pre_cells), pre_ts)))

    def for_batch(self, keys: BatchKeys) -> "ZkChain":
        """This chain holding only `keys` (no K): what a prover of that one
        batch is given."""
        return ZkChain(None, self.symbol, self.log2_capacity, self.ops_length, self.options, keys)

    def commit_state(self, table: np.ndarray, state: StateKey | None) -> SegmentCommitment:
        """The commitment of a zk state table (``(S, 13)`` Montgomery): masked
        under `state`, the state key of the batch that left it
        (:meth:`state_key` of this table), or, for the chain's first state
        (`state` None), public (no mask, zero salts)."""
        log_m = (table.shape[0] << self.options.log_blowup).bit_length() - 1
        mask = Mask.public(table.shape[1], log_m) if state is None else \
            Mask.for_state(state, table.shape[1], self.mask_degree, log_m)
        return SegmentCommitment.commit(table, self.options.log_blowup, mask)

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
    the zk state table before it (cells and last timestamp; ``(S, 13)``
    Montgomery, as its commitment holds it: zk_keys.table_digest is of the
    values), its records with their outcomes, its trades, and `resumed`."""
    return content_digest_of(zk_keys.table_digest(pre_table), ops, trades, resumed)


def content_digest_of(pre_state: bytes, ops: np.ndarray, trades: np.ndarray, resumed: bool) -> bytes:
    """content_digest from the pre-state table's digest (zk_keys.table_digest
    of it, Montgomery): what a batch's private file keeps in place of the
    table (daemon/private_file.py)."""
    h = hashlib.sha256(zk_keys.label(["zk-batch-content", pre_state, len(ops), len(trades), int(bool(resumed))]))
    h.update(np.ascontiguousarray(ops).view(np.uint8))
    h.update(np.ascontiguousarray(trades).view(np.uint8))
    return h.digest()

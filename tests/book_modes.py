"""The order book's two proof modes, for the malicious-engine suite
(docs/ZK.md section 11): tests/test_orderbook_air.py,
tests/test_orderbook_review.py and tests/test_book_domain.py take the
`book_mode` fixture (tests/conftest.py) and run each lie in both.

A lie edits the honest run's witness and its records the way a dishonest
engine running its own prover would.  In transparent mode the records are
public and the verifier reads them; in zk mode they are committed: the
lying prover's lane (`lying_lane`) encodes the edited records into its data
elements, hashes them into the leaves it publishes, fills the record-check
block from them (`RecordChecks.columns_of`: the witness an honest prover
would build, without `fill`'s refusals) and counts the block's lookups that
the range table can answer, so a lie about public records becomes a lie
about committed ones.

zk mode needs room for its masks (h = 2q + 20 at degree 3: about a third of
a domain's rows), so its books have at least 128 slots (`Zk.capacity`) and
its `ops` domains at least 256 rows; a batch is proven as batch 1 of a
chain whose batch 0 left the book it starts from (BookState.zk_after, as a
daemon's recovery rebuilds a state).  The keys are test keys."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from zksidecar.engine.book import Book
from zksidecar.prover import field as F
from zksidecar.prover import params
from zksidecar.prover.orderbook import witness as W
from zksidecar.prover.orderbook.air import trade_table
from zksidecar.prover.orderbook.batch import BookState, PreparedBatch, prepare_batch, prove_prepared
from zksidecar.prover.orderbook.zk_air import RECORD_INPUTS
from zksidecar.prover.orderbook.zk_chain import ZkChain, zk_state_table
from zksidecar.prover.orderbook.zk_encoding import DATA_ELEMENTS, TRADE_ELEMENTS, encode_operations, side_leaves
from zksidecar.prover.orderbook.zk_lane import (BLOCK, Lane, LaneRandomness, lane_matrix, place_elements,
                                                records_matrix)
from zksidecar.prover.orderbook.zk_lists import root_of
from zksidecar.prover.orderbook.zk_record_checks import RecordChecks

#: the shipping blowup (orderbook/params.py LOG_BLOWUP), few queries: the
#: lies are caught by the out-of-domain check, not by luck in FRI
OPTS = params.ProofOptions(log_blowup=1, num_queries=24, grinding_bits=0, fri_folding_factor=4,
                           fri_max_final_degree=4)
#: zk mode at the smallest shape its masks fit (8 queries: h = 36 on a book
#: domain of 128 rows), no grinding
ZK_OPTS = dataclasses.replace(OPTS, num_queries=8, zk=True)
#: the test store key of the suite's zk chains
KEY = hashlib.sha256(b"tests/book_modes.py store key").digest()
ZK_MIN_CAPACITY, ZK_MIN_OPS_ROWS = 128, 256


class LaneWitness(W.Witness):
    """zk mode's execution witness as its (lying) prover keeps it: the
    range table's multiplicities count the lane's lookups too, so
    recounting them (finish, rethread) adds `lane_counts` back."""

    lane_counts: np.ndarray

    @classmethod
    def of(cls, w: W.Witness, lane_counts: np.ndarray) -> "LaneWitness":
        out = cls(w.pre, w.post, w.pts, w.trace_length, exec_rows=w.traces()["ops.exec"],
                  post_written=w.post_written)
        out.lane_counts = lane_counts
        return out

    def finish(self) -> None:
        super().finish()
        self.columns["rm"] = self.columns["rm"] + self.lane_counts


class Transparent:
    """Transparent mode: the records are the batch's public inputs."""

    name, zk, options = "transparent", False, OPTS

    def capacity(self, capacity: int) -> int:
        return capacity

    def prepare(self, book: Book, ops: np.ndarray, ops_length: int | None = None) -> PreparedBatch:
        return prepare_batch(book, ops, OPTS, ops_length)

    def records(self, prep: PreparedBatch) -> tuple[np.ndarray, np.ndarray]:
        """The records a lying engine edits: the public lists."""
        return prep.public.ops, prep.public.trades

    def commit(self, prep: PreparedBatch, ops: np.ndarray, trades: np.ndarray) -> None:
        """Publish the (edited) records."""
        prep.public.ops, prep.public.trades = ops, trades
        prep.classified = None        # the public records may be edited: the AIR classifies them anew

    def prove(self, prep: PreparedBatch, debug: bool = False):
        return prove_prepared(prep, OPTS, debug)[0]

    def __repr__(self) -> str:
        return self.name


class Zk(Transparent):
    """zk mode: the records are committed in the lane (module docstring)."""

    name, zk, options = "zk", True, ZK_OPTS

    def capacity(self, capacity: int) -> int:
        return max(capacity, ZK_MIN_CAPACITY)

    def chain(self, book: Book, ops_length: int | None = None) -> ZkChain:
        t = max(ops_length or 0, ZK_MIN_OPS_ROWS, W.trace_length_for(book.capacity))
        return ZkChain(KEY, int(book.symbol), book.capacity.bit_length() - 1, t, ZK_OPTS)

    def pre_state(self, chain: ZkChain, book: Book, last_ts: int = 0) -> BookState:
        """`book` as the state batch 0 of `chain` left, its last timestamp
        `last_ts`."""
        return BookState.zk_after(chain, book.cells, last_ts, 0)

    def prepare(self, book: Book, ops: np.ndarray, ops_length: int | None = None, *, last_ts: int = 0,
                resumed: bool = False) -> PreparedBatch:
        """Batch 1 of a chain from `book` (its last proven timestamp
        `last_ts`), the execution witness a LaneWitness."""
        if book.capacity < ZK_MIN_CAPACITY:
            raise ValueError(f"a zk test book has at least {ZK_MIN_CAPACITY} slots (Zk.capacity), not "
                             f"{book.capacity}")
        chain = self.chain(book, ops_length)
        prep = prepare_batch(self.pre_state(chain, book, last_ts), ops, ZK_OPTS, batch_id=1, zk=chain,
                             resumed=resumed)
        prep.witness = LaneWitness.of(prep.witness, prep.zk.lane.range_counts)
        return prep

    def records(self, prep: PreparedBatch) -> tuple[np.ndarray, np.ndarray]:
        """The records a lying engine edits: the ones the lane commits."""
        return prep.zk.ops, prep.trades

    def commit(self, prep: PreparedBatch, ops: np.ndarray, trades: np.ndarray) -> None:
        """Commit the (edited) records: the lying prover's lane."""
        lying_lane(prep, ops, trades)

    def prove(self, prep: PreparedBatch, debug: bool = False):
        return prove_prepared(prep, ZK_OPTS, debug)[0]


TRANSPARENT, ZK = Transparent(), Zk()
MODES = {"transparent": TRANSPARENT, "zk": ZK}


def trade_elements(trades: np.ndarray, first_seq: int) -> np.ndarray:
    """A trade list's leaf elements as a lying prover writes them: the six
    fields (air.trade_table's i, tn, maker slot and generation, price,
    qty), each reduced mod p (no domain check), then zeros: ``(m, 12)``
    uint32."""
    out = np.zeros((len(trades), DATA_ELEMENTS), dtype=np.uint32)
    out[:, :TRADE_ELEMENTS] = trade_table(trades, first_seq)[:, 1:1 + TRADE_ELEMENTS].astype(np.int64) % F.P
    return out


def lying_lane(prep: PreparedBatch, ops: np.ndarray, trades: np.ndarray) -> None:
    """Rebuild `prep`'s zk parts from the (edited) witness and records, as a
    lying prover would: the lane (records encoded and hashed, trades and
    dummies in the batch key's slots, the block's columns as columns_of
    gives them, fli from the execution rows), the published leaves and side
    root, the range table's multiplicities (the execution's lookups
    recounted, Witness.finish, and the block's that the table can answer),
    the post-state's timestamp cells (the last record's).  The honest
    records give back the honest lane."""
    z, w, pub = prep.zk, prep.witness, prep.public
    t = z.chain.ops_length
    checks = RecordChecks(t, pub.log2_capacity, rows=pub.book_length)
    block, _ = checks.columns_of(ops, 0 if pub.zk.resumed else prep.pre.last_ts)
    rand = LaneRandomness.derive(z.batch_key, len(ops), t)
    data, types = place_elements(encode_operations(ops), trade_elements(trades, pub.first_seq), rand.order, t)
    looked = checks.range_values(block, len(ops))
    counts = np.bincount(looked[(looked >= 0) & (looked < t)], minlength=t).astype(np.int64)
    w.lane_counts = counts
    w.finish()
    records = records_matrix(data[:len(ops)], checks.rows, len(checks.columns))
    records[:, len(RECORD_INPUTS):] = F.encode(
        np.column_stack([np.asarray(block[c], dtype=np.int64) % F.P for c in checks.columns]))
    matrix = np.empty((t, BLOCK), dtype=np.uint32)
    leaves = lane_matrix(matrix, data, types, rand.salts, rand.blinding, w.traces()["ops.exec"])
    side = side_leaves(ops, rand.side_salts)
    z.ops, z.lane = ops, Lane(matrix, records, leaves, side, root_of(side), counts, rand.blinding)
    z.last_ts = int(ops["ts_ns"][-1])
    z.post_table = zk_state_table(w.post, z.last_ts)
    pub.zk = dataclasses.replace(pub.zk, n_ops=len(ops), leaves=leaves, side_root=z.lane.side_root)

"""Receipts of a zk batch proof file (docs/ZK.md, sections 8 and 9): the glue
between the batch file (batch.py, proof_file.py), a batch's private data
(its records with outcomes, its trades, its pre-state digest: what the
daemon's private file keeps) and the receipt API (receipt.py), which takes
plain inputs.

    statement_of      the BatchStatement a receipt names, from a batch file
    private_of        the PrivateBatch and the published leaves, from the
                      private data and the batch key kappa_b (salts and the
                      trade slots re-derived, zk_lane.LaneRandomness), after
                      checking that the records are the ones the batch
                      committed: every derived leaf equals the published one
    make_batch_receipt  a receipt for some sequence numbers or an account,
                      the batch key derived from the chain's store key
                      (batch_key_of), or given (receipt_with_key: an
                      archive keeps each batch's key, not the store's)

The daemon's admin socket and `zksidecar receipt` call make_batch_receipt;
`zksidecar verify-receipt` calls verify_batch, then statement_of and
receipt.check_receipt.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .batch import BatchProof
from .proof_file import list_trees, statement_digest
from .receipt import BatchLists, BatchStatement, PrivateBatch, ReceiptRequestError, make_receipt
from .zk_chain import ZkChain, content_digest_of
from .zk_encoding import EncodingError
from .zk_lane import published_leaves
from .zk_lists import ListTree


def statement_of(bp: BatchProof, trees: tuple[ListTree, ListTree] | None = None) -> BatchStatement:
    """The public statement of zk batch `bp` as a receipt names it.
    `trees`: the batch's list trees, proof_file.list_trees(bp.public), when
    the caller has built them (a receipt's maker needs their paths too);
    else they are built here, once."""
    pub = bp.public
    if pub.zk is None:
        raise ValueError(f"batch {pub.batch_id} is a transparent proof: receipts are zk mode's (a transparent "
                         "proof publishes its records)")
    ops_tree, trades_tree = list_trees(pub) if trees is None else trees
    return BatchStatement(statement_digest(bp, (ops_tree, trades_tree)), pub.batch_id, pub.symbol, pub.first_seq,
                          pub.zk.n_ops, pub.ops_length, ops_tree.root, pub.zk.side_root, trades_tree.root)


def private_of(bp: BatchProof, batch_key: bytes, ops: np.ndarray,
               trades: np.ndarray) -> tuple[PrivateBatch, np.ndarray, np.ndarray]:
    """(PrivateBatch, operation leaves, trade leaves) of zk batch `bp` from
    its records with outcomes `ops`, its trades and kappa_b;
    ReceiptRequestError naming the batch if they are not what it committed
    (the records, the trades or the key differ: every leaf is compared)."""
    pub = bp.public
    n, t = pub.zk.n_ops, pub.ops_length
    where = f"symbol {pub.symbol} batch {pub.batch_id}"
    if len(ops) != n or (len(ops) and int(ops["seq"][0]) != pub.first_seq):
        raise ReceiptRequestError(f"{where}: the private records are {len(ops)} from seq "
                                  f"{int(ops['seq'][0]) if len(ops) else '-'}, the batch is {n} from {pub.first_seq}")
    try:
        rand, fields, leaves = published_leaves(ops, trades, batch_key, 1 << pub.log2_capacity,
                                                pub.first_seq, t)
    except (ValueError, EncodingError) as exc:
        raise ReceiptRequestError(f"{where}: the private records are not the batch's: {exc}") from None
    if not np.array_equal(leaves, pub.zk.leaves):
        raise ReceiptRequestError(f"{where}: the private records, trades or key are not the ones the batch "
                                  "committed (their leaves differ from the proof's)")
    m = len(fields)
    real = np.flatnonzero(rand.order < m)             # slot j holds trade order[j]
    slots = np.empty(m, dtype=np.uint32)
    slots[rand.order[real]] = real
    private = PrivateBatch(ops, rand.salts[:n].astype(np.uint32), rand.side_salts, fields, slots,
                           rand.salts[n + slots.astype(np.int64)].astype(np.uint32), traded_resting(trades))
    return private, pub.zk.leaves[:n], pub.zk.leaves[n:]


#: PrivateBatch.resting's fields
RESTING_DTYPE = np.dtype([("handle", "<u8"), ("account", "<u4")])


def traded_resting(trades: np.ndarray) -> np.ndarray:
    """The orders of the pre-state book a receipt can name: those that
    traded in the batch as makers, with their accounts, from the engine's
    own trade records (RESTING_DTYPE).  An order resting before the batch
    that did not trade adds nothing to a receipt (make_receipt names only
    the resting handles its trades are against), so this is all of
    PrivateBatch.resting a receipt reads; the handles of orders placed in
    the batch are among them too, and make_receipt sets those apart."""
    out = np.empty(len(trades), RESTING_DTYPE)
    out["handle"], out["account"] = trades["maker_handle"], trades["maker_account"]
    out = out[np.lexsort((out["account"], out["handle"]))]      # by handle, then account
    distinct = np.ones(len(out), dtype=bool)
    distinct[1:] = (out["handle"][1:] != out["handle"][:-1]) | (out["account"][1:] != out["account"][:-1])
    return out[distinct]


def batch_key_of(chain: ZkChain, pub, pre_state: bytes, ops: np.ndarray, trades: np.ndarray) -> bytes:
    """kappa_b of zk batch `pub` (its BatchPublic) of `chain` (holding the
    store key), from the batch's private data: its content digest is of the
    pre-state table digest, the records with outcomes, the trades and the
    public `resumed` bit.  ReceiptRequestError if the batch is not of this
    chain.  What `zksidecar store archive` keeps beside an archived batch's
    private file, in place of the store key (daemon/zk_archive.py)."""
    if pub.zk is None:
        raise ReceiptRequestError(f"batch {pub.batch_id} is a transparent proof: receipts are zk mode's")
    if (pub.symbol, pub.ops_length, 1 << pub.log2_capacity) != (chain.symbol, chain.ops_length, chain.capacity):
        raise ReceiptRequestError(f"batch {pub.batch_id} of symbol {pub.symbol} is not of this chain "
                                  f"(symbol {chain.symbol}, {chain.ops_length} ops rows, capacity {chain.capacity})")
    return chain.batch_key(pub.batch_id, content_digest_of(pre_state, ops, trades, pub.zk.resumed))


def receipt_with_key(bp: BatchProof, batch_key: bytes, ops: np.ndarray, trades: np.ndarray, *,
                     seqs: Iterable[int] | None = None, account: int | None = None) -> bytes:
    """A receipt of zk batch `bp` for `seqs` or `account`
    (receipt.make_receipt) from its records with outcomes, its trades and
    its batch key kappa_b; ReceiptRequestError if they are not what the
    batch committed (private_of compares every leaf)."""
    if bp.public.zk is None:
        raise ReceiptRequestError(f"batch {bp.public.batch_id} is a transparent proof: receipts are zk mode's")
    private, _, _ = private_of(bp, batch_key, ops, trades)
    trees = list_trees(bp.public)           # once: the statement's roots and the receipt's paths
    return make_receipt(statement_of(bp, trees), private, BatchLists.of_trees(private, *trees), seqs=seqs,
                        account=account)


def make_batch_receipt(chain: ZkChain, bp: BatchProof, pre_state: bytes, ops: np.ndarray, trades: np.ndarray, *,
                       seqs: Iterable[int] | None = None, account: int | None = None) -> bytes:
    """A receipt of zk batch `bp` of `chain` (holding the store key) for
    `seqs` or `account` (receipt.make_receipt), from the batch's private
    data: its records with outcomes, trades and pre-state table digest, the
    batch key derived from them (batch_key_of).  A by-account receipt also
    names the account's orders resting before the batch that traded in it
    (traded_resting: the trades' maker accounts say which)."""
    return receipt_with_key(bp, batch_key_of(chain, bp.public, pre_state, ops, trades), ops, trades, seqs=seqs,
                            account=account)

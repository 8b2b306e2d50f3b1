"""The order-book AIR (prover/orderbook, docs/STATEMENT.md): completeness on
random flows of every kind, a chain of batches root to root from the empty
book, and a lying engine's traces, each rejected by the verifier and named by
debug mode with the constraint family that catches it."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.records import OP_DTYPE, Kind, Reason, Side, Status
from zksidecar.prover import params
from zksidecar.prover.orderbook import (BatchRejected, prove_batch, verify_batch, verify_chain)
from zksidecar.prover.orderbook.batch import BatchPublic
from zksidecar.prover.prove import ConstraintError
from zksidecar.prover.verify import VerificationError

OPTS = params.ProofOptions(log_blowup=2, num_queries=16, grinding_bits=0, fri_folding_factor=4,
                           fri_max_final_degree=4)


# ------------------------------------------------------------ op streams --

def random_ops(n: int, seed: int, capacity: int, first_seq: int = 1, book: Book | None = None,
               ts: int = 0) -> np.ndarray:
    """n records of every kind, drawn against a shadow book so that cancels
    and reduces name live (and sometimes stale or unknown) handles; outcome
    fields cleared.  Prices cluster so takers cross and FOKs go both ways."""
    rng = np.random.default_rng(seed)
    shadow = Book(capacity) if book is None else Book.restore(book.snapshot())
    out = np.zeros(n, dtype=OP_DTYPE)
    dead: list[int] = []
    for i in range(n):
        op = out[i: i + 1]
        op["seq"], op["ts_ns"] = first_seq + i, ts + i
        op["account"] = rng.integers(1, 70000)
        u = rng.random()
        live = np.flatnonzero(shadow.qty)
        if u < 0.2 and len(live):
            s = int(rng.choice(live))
            h = int(shadow.gen[s]) << 32 | s
            if rng.random() < 0.15 and dead:
                h = dead[int(rng.integers(len(dead)))]
            kind = Kind.REDUCE if rng.random() < 0.4 else Kind.CANCEL
            op["kind"], op["handle"] = kind, h
            op["qty"] = int(rng.integers(1, 8)) if kind == Kind.REDUCE else 0
            if kind == Kind.CANCEL or int(op["qty"][0]) >= int(shadow.qty[s]):
                dead.append(h)
        elif u < 0.23:   # malformed
            op["kind"], op["side"], op["price"], op["qty"] = rng.choice([1, 9]), 3, 100, 1
            if rng.random() < 0.3:
                op["kind"], op["handle"] = Kind.CANCEL, capacity + 5
        else:
            kind = rng.choice([Kind.LIMIT, Kind.LIMIT, Kind.IOC, Kind.MARKET, Kind.FOK,
                               Kind.POST_ONLY])
            side = int(rng.integers(1, 3))
            op["kind"], op["side"] = kind, side
            op["price"] = 100 + int(rng.integers(-4, 5))
            op["qty"] = int(rng.integers(1, 12))
        shadow.process(op)
    for name in ("filled", "trades", "status", "reason"):
        out[name] = 0
    new = (out["kind"] != Kind.CANCEL) & (out["kind"] != Kind.REDUCE)
    out["handle"][new] = 0
    return out


def make_ops(rows, first_seq: int = 1) -> np.ndarray:
    """Records from (kind, side, price, qty[, handle]) tuples."""
    out = np.zeros(len(rows), dtype=OP_DTYPE)
    for i, r in enumerate(rows):
        kind, side, price, qty, *h = r
        out[i]["seq"], out[i]["ts_ns"], out[i]["account"] = first_seq + i, i, 7 + i
        out[i]["kind"], out[i]["side"], out[i]["price"], out[i]["qty"] = kind, side, price, qty
        out[i]["handle"] = h[0] if h else 0
    return out


def outcomes(bp) -> Counter:
    o = bp.public.ops
    return Counter(zip(o["kind"].tolist(), o["status"].tolist(), o["reason"].tolist()))


# ------------------------------------------------------------ completeness --

@pytest.mark.parametrize("log_cap,n,seed", [(4, 40, 1), (4, 60, 2), (5, 80, 3), (6, 120, 4)])
def test_random_flows_prove_and_verify(log_cap, n, seed):
    cap = 1 << log_cap
    book = Book(cap)
    ops = random_ops(n, seed, cap)
    bp, post, trades = prove_batch(book, ops, OPTS, debug=True)
    assert 64 <= bp.public.trace_length <= 512
    verify_batch(bp, min_security=0)
    ref = Book(cap)
    ref_ops = ops.copy()
    assert np.array_equal(ref.process(ref_ops), trades)
    assert np.array_equal(ref.cells, post.cells)


def test_every_outcome_is_proven():
    """Across a few flows every status and every reason the trace proves
    shows up (field rejections are the verifier's plain checks)."""
    seen = Counter()
    for seed in range(4):
        cap = 16
        ops = random_ops(70, 100 + seed, cap)
        bp, _, _ = prove_batch(Book(cap), ops, OPTS, debug=True)
        verify_batch(bp, min_security=0)
        seen += outcomes(bp)
    full = [(Kind.LIMIT, Side.BUY, 50 + i % 5, 1) for i in range(15)]
    full += [(Kind.LIMIT, Side.SELL, 60, 2), (Kind.POST_ONLY, Side.SELL, 70, 2),
             (Kind.LIMIT, Side.BUY, 49, 1), (Kind.IOC, Side.SELL, 52, 20)]
    bp, _, _ = prove_batch(Book(16), make_ops(full), OPTS, debug=True)
    verify_batch(bp, min_security=0)
    seen += outcomes(bp)
    statuses = {s for _, s, _ in seen}
    reasons = {r for _, _, r in seen}
    assert statuses >= {Status.RESTED, Status.FILLED, Status.EXPIRED, Status.CANCELLED,
                        Status.REDUCED, Status.REJECTED}
    assert reasons >= {Reason.STALE_HANDLE, Reason.WOULD_CROSS, Reason.FOK_UNFILLABLE,
                       Reason.BOOK_FULL, Reason.UNKNOWN_HANDLE, Reason.BAD_SIDE}
    kinds = {k for k, s, _ in seen if s != Status.REJECTED}
    assert kinds >= {Kind.LIMIT, Kind.IOC, Kind.MARKET, Kind.FOK, Kind.POST_ONLY, Kind.CANCEL,
                     Kind.REDUCE}


def test_synthetic_flow_batch():
    ops = flow.generate(48, seed=7, capacity=32, params=flow.FlowParams(depth=10, invalid=0.05,
                                                                         take=0.4, post_only=0.2))
    bp, _, _ = prove_batch(Book(32), ops, OPTS, debug=True)
    verify_batch(bp, min_security=0)


# ------------------------------------------------------------------ chains --

def prove_chain(k=3, cap=32, n=40, t=512, seed=0):
    state, out = Book(cap), []
    seq, ts = 1, 0
    book = Book(cap)
    for b in range(k):
        ops = random_ops(n, seed + b, cap, first_seq=seq, book=book, ts=ts)
        bp, state, _ = prove_batch(state, ops, OPTS, trace_length=t)
        book.process(ops.copy())
        out.append(bp)
        seq, ts = seq + n, ts + n
    return out, state


def test_chain_of_three_verifies_root_to_root():
    chain, last = prove_chain()
    done = verify_chain(chain, min_security=0)
    assert done.roots["post"] == last.root
    assert chain[1].public.pre_root == chain[0].post_root


def test_pre_state_that_is_not_the_previous_post_state_fails():
    chain, _ = prove_chain()
    # batch 2 proven from another book (batch 1's post-state with one more order)
    cap, t = 32, 512
    b1_post = Book(cap)
    for bp in chain[:2]:
        b1_post.process(bp.public.ops.copy())
    forged = Book.restore(b1_post.snapshot())
    forged.submit(Kind.LIMIT, Side.BUY, 1, 1)
    ops = chain[2].public.ops.copy()
    for name in ("filled", "trades", "status", "reason"):
        ops[name] = 0
    ops["seq"] += 1
    fake, _, _ = prove_batch(forged, ops, OPTS, trace_length=t)
    with pytest.raises(VerificationError):
        verify_chain(chain[:2] + [fake], min_security=0)
    # and verified against the real previous post root and link
    prev = verify_batch(chain[1], min_security=0)
    pub = fake.public
    real = BatchPublic(pub.log2_capacity, pub.trace_length, pub.symbol, pub.first_seq, pub.ops,
                       pub.trades, prev.roots["post"], prev.links["post"])
    with pytest.raises(VerificationError):
        verify_batch(fake.proof, real, min_security=0)

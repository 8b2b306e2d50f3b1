"""The `prover` benchmark suite (`zksidecar bench prover`): order-book batch
proofs on the synthetic flow, at >= 100 bits of conjectured security, one core.

The baseline beside the figures is the engine itself on the same operations
(how much slower proving is than matching), measured in the same run.

``--mode zk`` (docs/ZK.md, section 13) proves the measured batch in
zk mode as well, in the same process on the same core, the two modes'
proofs of it alternated, and adds zk mode's figures beside the transparent
ones: its rate and the ratio of the two rates, its proof and batch file,
its security, and a receipt for one operation (its size, the daemon's
making of it, a trader's check of it with and without the batch proof's
verification).  Method: docs/BENCHMARKS.md.
"""
from __future__ import annotations

import hashlib
import io
import os
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from zksidecar.daemon import private_file
from zksidecar.daemon.malloc import keep_proof_buffers
from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.orderbook.air import book_length, exec_columns
from zksidecar.prover.orderbook.batch import (BatchProof, BookState, PreparedBatch, prepare_batch, prove_batch,
                                              prove_prepared, verify_batch)
from zksidecar.prover.orderbook.batch_receipts import make_batch_receipt, private_of, statement_of
from zksidecar.prover.orderbook.params import (LOG_BLOWUP, conjectured_security, proof_options, zk_proof_options,
                                               zk_security)
from zksidecar.prover.orderbook.receipt import BatchLists, check_receipt, decode_receipt, make_receipt, render
from zksidecar.prover.orderbook.witness import ops_length_for, trace_length_for
from zksidecar.prover.orderbook.zk_chain import ZkChain, content_digest_of
from zksidecar.prover.proof import Proof

from ..receipts import verify_receipt_main
from .runner import MODES

BATCH = 1 << 14
CAPACITY = 1 << 14
#: resting orders the flow builds the book with before the batches
PREFILL = 4_000
SECURITY_BITS = 100
SINGLE_CAPACITY = 1 << 10
#: the engine's baseline (see prover()): unmeasured runs, then measured ones
ENGINE_WARM_UP = 10
ENGINE_RUNS = 9
#: --mode zk: measured proofs of the batch in each mode, alternated
PAIRS = 5
#: --mode zk: the chain's store key.  Not a secret: the bench's batches are
#: synthetic, and a fixed key makes its zk proofs the same bytes every run
STORE_KEY = hashlib.sha256(b"zksidecar bench prover: the zk chain's store key").digest()


@dataclass
class Measured:
    """One measured proof of the batch: its seconds (preparation: engine
    run and witness, and in zk mode the lane, keys and leaves; then
    prove()), prove()'s own phases, and the proof."""

    prepare_s: float
    total_s: float
    timings: dict
    proof: BatchProof
    #: the batch's trace rows that are not padding
    rows: int


def prover(sw, mode: str = "transparent", *, batch_ops: int = BATCH, capacity: int = CAPACITY,
           prefill: int = PREFILL, security_bits: int = SECURITY_BITS, pairs: int = PAIRS) -> dict:
    """The suite's figures in `mode` (MODES); the keyword arguments size a
    test's tiny run (the defaults are the figures of record's)."""
    if mode not in MODES:
        raise ValueError(f"bench prover: the mode is {' or '.join(MODES)}, not {mode!r}")
    zk = mode == "zk"
    load_before = os.getloadavg()[0]
    # the daemon's ops cap for this batch size: each batch is proven at the
    # rows it takes (rows_for), at most this; a zk chain proves all of its
    # batches at this one height (docs/ZK.md section 14 (3))
    cap = trace_length_for(capacity, batch_ops)
    # malloc as a daemon's proof worker runs it (a proof's arrays kept for
    # the next), and for the engine's baseline runs as well: each of them
    # then reuses the pages the one before it freed, as a long-lived
    # process's would
    keep_proof_buffers()
    s = book_length(capacity)
    sw.step(f"synthetic flow: a book of ~{prefill:,} orders, then batches of {batch_ops} operations")
    ops = flow.generate(prefill + 2 * batch_ops, seed=2026, capacity=capacity,
                        params=flow.FlowParams(depth=prefill), prefill=prefill)
    book = Book(capacity)
    book.process(ops[:prefill].copy())
    # the baseline: the engine's traced run of the batch (what the witness is
    # built from), on a copy of the book made before the clock starts, at
    # its steady speed: the median of ENGINE_RUNS runs after ENGINE_WARM_UP
    # unmeasured ones, with malloc keeping freed buffers (set at the top).
    # The first runs of a process fault in fresh pages and take up to three
    # times as long; a median that reaches into them flatters the ratio
    engine_runs = []
    for i in range(ENGINE_WARM_UP + ENGINE_RUNS):
        again, work = Book.from_cells(book.cells), ops[prefill:prefill + batch_ops].copy()
        t0 = time.perf_counter()
        _, steps = again.process_traced(work)
        if i >= ENGINE_WARM_UP:
            engine_runs.append(time.perf_counter() - t0)
    engine_s = statistics.median(engine_runs)
    trace_length = ops_length_for(steps)                 # the first batch's T'
    assert trace_length <= cap
    options = proof_options(security_bits, s, trace_length)

    sw.step("proving batch 1 (warm-up)" + (" in both modes" if zk else ""))
    first, second = ops[prefill:prefill + batch_ops], ops[prefill + batch_ops:]
    state: BookState = BookState.of(book, options.log_blowup)
    zk_run = _zk_warm_up(book, ops, prefill, first, cap, security_bits) if zk else None
    _, state, _ = prove_batch(state, first, options)

    def transparent() -> Measured:
        nonlocal options
        t0 = time.perf_counter()
        prep = prepare_batch(state, second, options)
        prepare_s = time.perf_counter() - t0
        heights = (prep.public.book_length, prep.public.ops_length)
        if heights != (s, trace_length):       # the parameters of the batch's own heights
            options = proof_options(security_bits, *heights)
        bp, _, _ = prove_prepared(prep, options)
        return Measured(prepare_s, time.perf_counter() - t0, bp.timings, bp, _rows(prep))

    runs: dict[str, list[Measured]] = {"transparent": [], "zk": []}
    if not zk:
        sw.step("proving batch 2 (measured)")
        runs["transparent"].append(transparent())
    else:
        for i in range(pairs):
            # the order alternates too, so neither mode always runs first
            order = ("transparent", "zk") if i % 2 == 0 else ("zk", "transparent")
            sw.step(f"proving batch 2 in both modes, pair {i + 1} of {pairs} ({order[0]} first)")
            for m in order:
                runs[m].append(transparent() if m == "transparent" else zk_run.measure(second))
    measured = runs["transparent"][-1].proof
    prove_s = statistics.median(r.total_s for r in runs["transparent"])
    trace_length = measured.public.ops_length
    statement = measured.public.statement()
    raw = measured.proof.to_bytes(statement)
    sw.step("verifying batch 2")
    verify_s = sw.per_call(lambda: verify_batch(Proof.from_bytes(raw, statement), measured.public,
                                                min_security=security_bits), samples=3)

    sw.step(f"a batch of one operation, capacity {SINGLE_CAPACITY}")
    small = Book(SINGLE_CAPACITY)
    small_ops = flow.generate(201, seed=7, capacity=SINGLE_CAPACITY,
                              params=flow.FlowParams(depth=200), prefill=200)
    small.process(small_ops[:200].copy())
    # the `ops` domain sized to the one operation (T' = rows_for of its
    # rows), the `book` domain to the capacity, as a daemon proves it
    _, one = Book.from_cells(small.cells).process_traced(small_ops[200:].copy())
    single_t = ops_length_for(one)
    single_options = proof_options(security_bits, book_length(SINGLE_CAPACITY), single_t)
    single_state = BookState.of(small, LOG_BLOWUP)
    single_s = sw.per_call(lambda: prove_batch(single_state, small_ops[200:], single_options),
                           samples=3)

    figures = {
        "batch_ops": batch_ops,
        "capacity": capacity,
        "trace_length": trace_length,           # the batch's ops rows, T'
        "book_length": s,
        "ops_per_s": batch_ops / prove_s,
        "prove_s": prove_s,
        "engine_ops_per_s": batch_ops / engine_s,
        "proving_vs_matching": prove_s / engine_s,
        "single_op_ms": single_s * 1e3,
        "single_op_trace_length": single_t,     # its ops rows (the book domain: 2^10)
        "proof_kib": len(raw) / 1024,
        "verify_ms": verify_s * 1e3,
        "rows_per_op": runs["transparent"][-1].rows / batch_ops,
        "columns": len(exec_columns(trace_length)),    # ops; the book domain has 18 more
        "security_bits": conjectured_security(options, s, trace_length),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "phases": _median_phases(runs["transparent"]),
    }
    if zk:
        figures.update(zk_run.figures(sw, runs, figures, measured, second))
        figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        figures["load_1m_before"] = round(load_before, 2)
        figures["load_1m_after"] = round(os.getloadavg()[0], 2)
    return figures


def _rows(prep: PreparedBatch) -> int:
    """The prepared batch's trace rows that are not padding."""
    return int((prep.witness.column("sZ") == 0).sum())


def _median_phases(runs: list[Measured]) -> dict:
    return {k: round(statistics.median(r.timings[k] for r in runs), 4) for k in runs[0].timings}


def _zk_warm_up(book: Book, ops: np.ndarray, prefill: int, first: np.ndarray, cap: int,
                security_bits: int) -> "ZkRun":
    """zk mode's chain at the batch's shape, and its batch 1 proven (the
    warm-up, as transparent mode's).  The book the flow built (batch 0,
    the prefill) is taken as that batch's post-state (BookState.zk_after:
    committed under its state key as its proof would have), not proven."""
    log2_capacity = book.capacity.bit_length() - 1
    chain = ZkChain(STORE_KEY, 0, log2_capacity, cap, zk_proof_options(security_bits, log2_capacity, cap))
    state = BookState.zk_after(chain, book.cells, int(ops["ts_ns"][prefill - 1]), 0)
    _, state, _ = prove_batch(state, first, chain.options, batch_id=1, zk=chain)
    return ZkRun(chain, state, security_bits)


@dataclass
class ZkRun:
    """zk mode's side of the suite: its chain, and the state batch 2 (the
    measured batch) starts from."""

    chain: ZkChain
    pre: BookState
    security_bits: int
    batch_id: int = 2

    def measure(self, batch: np.ndarray) -> Measured:
        t0 = time.perf_counter()
        prep = prepare_batch(self.pre, batch, self.chain.options, batch_id=self.batch_id, zk=self.chain)
        prepare_s = time.perf_counter() - t0
        bp, _, _ = prove_prepared(prep, self.chain.options)
        return Measured(prepare_s, time.perf_counter() - t0, bp.timings, bp, _rows(prep))

    def figures(self, sw, runs: dict[str, list[Measured]], transparent: dict, measured: BatchProof,
                batch: np.ndarray) -> dict:
        """zk mode's figures, beside `transparent`'s (this run's)."""
        zk_runs, t_runs = runs["zk"], runs["transparent"]
        bp = zk_runs[-1].proof
        zk_s = statistics.median(r.total_s for r in zk_runs)
        statement = bp.public.statement()
        raw_proof = bp.proof.to_bytes(statement)
        raw_file = proof_file.encode(bp)
        sw.step("verifying batch 2's zk proof")
        verify_s = sw.per_call(lambda: verify_batch(Proof.from_bytes(raw_proof, statement), bp.public,
                                                    min_security=self.security_bits), samples=3)
        zk_kib = len(raw_proof) / 1024
        return {
            "pairs": len(zk_runs),
            "prepare_s": statistics.median(r.prepare_s for r in t_runs),
            "zk_ops_per_s": transparent["batch_ops"] / zk_s,
            "zk_prove_s": zk_s,
            "zk_prepare_s": statistics.median(r.prepare_s for r in zk_runs),
            "zk_vs_transparent": transparent["prove_s"] / zk_s,
            "zk_pair_ratios": [round(t.total_s / z.total_s, 3) for t, z in zip(t_runs, zk_runs)],
            "zk_trace_length": self.chain.ops_length,
            "zk_proof_kib": zk_kib,
            "zk_proof_ratio": zk_kib / transparent["proof_kib"],
            "zk_batch_file_kib": len(raw_file) / 1024,
            "batch_file_kib": len(proof_file.encode(measured)) / 1024,
            "zk_verify_ms": verify_s * 1e3,
            "zk_security_bits": zk_security(self.chain.options, statement),
            "zk_parameters": self.chain.parameters,
            "zk_phases": _median_phases(zk_runs),
            **self.receipt_figures(sw, bp, raw_file, batch),
        }

    def receipt_figures(self, sw, bp: BatchProof, raw_file: bytes, batch: np.ndarray) -> dict:
        """A receipt for the batch's first operation with a trade: its size,
        its making from what the daemon holds (the batch file as stored,
        the batch's private file; daemon/zk_store.ZkStore.receipt without
        the disk), its check by a trader (`zksidecar verify-receipt`) and
        the receipt's own check against an already verified batch."""
        chain, pub = self.chain, bp.public
        # the daemon's private data of the batch: its shadow book's run
        # (records with outcomes, trades) and the pre-state's digest
        records = np.array(batch, copy=True)
        trades, _ = Book.from_cells(self.pre.cells).process_traced(records)
        traded = np.flatnonzero(records["trades"] > 0)
        if len(traded) == 0:
            raise RuntimeError("bench prover: no operation of the measured batch traded (the flow's "
                               "parameters make trades at any batch size; a receipt needs one)")
        row = int(traded[0])
        seq = int(records["seq"][row])
        pre_state = chain.pre_state_digest(self.pre.cells, self.pre.last_ts)
        private = private_file.encode(private_file.PrivateBatchFile(pub.symbol, pub.batch_id, pub.first_seq,
                                                                    pre_state, records, trades))

        def make() -> bytes:
            stored = proof_file.decode(raw_file)
            p = private_file.decode(private, "the bench's private file")
            return make_batch_receipt(chain, stored, p.pre_state, p.ops, p.trades, seqs=[seq])

        sw.step(f"a receipt for seq {seq} (the batch's first operation with a trade): making it")
        receipt = make()
        make_s = sw.per_call(make, samples=5)
        decode_s = sw.per_call(lambda: proof_file.decode(raw_file), samples=5)
        # the parts, each as make_batch_receipt calls it
        key = chain.batch_key(pub.batch_id, content_digest_of(pre_state, records, trades, pub.zk.resumed))
        private_s = sw.per_call(lambda: private_of(bp, key, records, trades), samples=5)
        priv, _, _ = private_of(bp, key, records, trades)

        def batch_lists() -> tuple[BatchLists, tuple]:
            trees = proof_file.list_trees(pub)
            return BatchLists.of_trees(priv, *trees), trees

        lists_s = sw.per_call(batch_lists, samples=5)
        lists, trees = batch_lists()
        statement_s = sw.per_call(lambda: statement_of(bp, trees), samples=5)
        statement = statement_of(bp, trees)
        alone_s = sw.per_call(lambda: make_receipt(statement, priv, lists, seqs=[seq]), samples=5)

        sw.step("the receipt checked as `zksidecar verify-receipt` checks it, and on its own")
        with tempfile.TemporaryDirectory(prefix="zksidecar-bench-") as d:
            receipt_path, proof_path = os.path.join(d, "receipt.zkr"), os.path.join(d, "batch.zkb")
            with open(receipt_path, "wb") as f:
                f.write(receipt)
            with open(proof_path, "wb") as f:
                f.write(raw_file)

            def verify_receipt() -> None:
                out = io.StringIO()
                if verify_receipt_main(receipt_path, proof_path, None, self.security_bits, out=out) != 0:
                    raise RuntimeError(f"bench prover: the receipt did not check:\n{out.getvalue()}")

            verify_s = sw.per_call(verify_receipt, samples=3)
        verified = proof_file.decode(raw_file)
        verify_batch(verified, min_security=self.security_bits)
        n = verified.public.zk.n_ops
        leaves = verified.public.zk.leaves

        def check() -> str:
            report = check_receipt(decode_receipt(receipt), statement_of(verified), leaves[:n], leaves[n:])
            return render(report, proof_verified=True)

        check_s = sw.per_call(check, samples=5)
        return {
            "receipt_seq": seq,
            "receipt_trades": int(records["trades"][row]),
            "receipt_kib": len(receipt) / 1024,
            "receipt_ms": make_s * 1e3,
            "receipt_verify_ms": verify_s * 1e3,
            "receipt_check_ms": check_s * 1e3,
            # receipt_ms's parts: the batch file's decoding; the private data
            # checked against the published leaves (every leaf derived
            # again), the three list trees and the statement (its digest,
            # from the trees' roots), each once per batch; the receipt made
            # from those.  The rest: the private file's decoding, the batch key
            "receipt_parts_ms": {"decode_batch_file": round(decode_s * 1e3, 3),
                                 "private_data": round(private_s * 1e3, 3),
                                 "batch_lists": round(lists_s * 1e3, 3),
                                 "statement": round(statement_s * 1e3, 3),
                                 "make_receipt": round(alone_s * 1e3, 3)},
        }

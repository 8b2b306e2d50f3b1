"""A reference engine process: what a venue's matching engine does with the
sidecar attached, for the demo, the end-to-end tests and `bench e2e`.

It matches a synthetic flow (engine/flow.py) with the engine, and after each
chunk publishes the chunk's records — with the engine's outcome as its claim
(FLAG_CLAIMED) — to the ops ring, at a chosen rate; it reads completions as
they come back.  The publish never waits: a full ring is counted, the records
that did not fit are retried on the next chunk (a real engine would do the
same from its outbound queue), and matching goes on.

`zksidecar loadgen` runs it from the command line (run_args); `run()` is the
library form, returning what it saw.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from zksidecar import ringbuf
from zksidecar.engine.book import Book
from zksidecar.engine.flow import FlowParams, generate
from zksidecar.engine.records import COMPLETION_DTYPE, FLAG_CLAIMED, CompletionStatus, check_completions

from . import arg_types

CHUNK = 64


@dataclass
class LoadReport:
    published: int = 0
    full_events: int = 0
    seconds: float = 0.0
    completions: list = field(default_factory=list)      # COMPLETION_DTYPE arrays

    @property
    def completed(self) -> np.ndarray:
        return np.concatenate(self.completions) if self.completions else np.zeros(0, COMPLETION_DTYPE)

    def proven_ops(self) -> int:
        c = self.completed
        ok = np.isin(c["status"], [CompletionStatus.PROVEN, CompletionStatus.DISAGREES])
        return int(c["op_count"][ok].sum())


def flow(n: int, seed: int, capacity: int, symbol: int = 0) -> np.ndarray:
    """The synthetic flow, as records ready for the engine (outcomes empty)."""
    return generate(n, seed, capacity, symbol, FlowParams(depth=max(8, capacity // 4)))


def run(ops_ring: str, completions_ring: str | None, ops: np.ndarray, capacity: int,
        rate: float | None = None, lie_at: set[int] | None = None, wait_s: float = 0.0,
        progress=None, book: Book | None = None, group: str | int | None = None) -> LoadReport:
    """Match and publish `ops` (one symbol) at `rate` operations/s (None: as
    fast as the engine goes).  `lie_at`: indices whose claimed `filled` is
    off by one (a dishonest engine, for divergence tests).  After the last
    publish, keep reading completions for up to `wait_s` seconds, until
    every operation is covered.  `progress(report)` is called about 4 times
    a second.  `book`: the engine's state to continue from (default: empty).
    `group`: the daemon's ring.group, when its rings are made for one (the
    rings must then be that group's, mode 0660; otherwise ours, 0600)."""
    book = book if book is not None else Book(capacity, int(ops["symbol"][0]))
    rep = LoadReport()
    out = np.zeros(256, COMPLETION_DTYPE)
    producer = ringbuf.Producer(ops_ring, group=group)
    consumer = (ringbuf.Consumer(completions_ring, takeover=True, group=group)
                if completions_ring else None)
    backlog = ops[:0]
    t0 = time.monotonic()
    next_report = t0
    try:
        for start in range(0, len(ops), CHUNK):
            chunk = ops[start:start + CHUNK].copy()
            book.process(chunk)                          # the engine's matching
            chunk["flags"] |= FLAG_CLAIMED
            if lie_at:
                for i in range(start, start + len(chunk)):
                    if i in lie_at:
                        chunk["filled"][i - start] += 1
            backlog = np.concatenate([backlog, chunk]) if len(backlog) else chunk
            sent = producer.publish(backlog)             # never waits
            rep.published += sent
            backlog = backlog[sent:]
            if rate:
                ahead = (start + len(chunk)) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
            if consumer is not None:
                _read(consumer, out, rep)
            if progress and time.monotonic() >= next_report:
                progress(rep)
                next_report = time.monotonic() + 0.25
        while len(backlog):                              # what the ring refused, in order
            sent = producer.publish(backlog)
            rep.published += sent
            backlog = backlog[sent:]
            if not sent:
                time.sleep(0.001)
        rep.seconds = time.monotonic() - t0
        rep.full_events = producer.full_events
        deadline = time.monotonic() + wait_s
        while consumer is not None and time.monotonic() < deadline and rep.proven_ops() < len(ops):
            if not _read(consumer, out, rep):
                time.sleep(0.01)
            if progress and time.monotonic() >= next_report:
                progress(rep)
                next_report = time.monotonic() + 0.25
    finally:
        producer.close()
        if consumer is not None:
            consumer.close()
    return rep


def _read(consumer, out, rep: LoadReport) -> int:
    n = consumer.drain(out)
    if n:
        rep.completions.append(check_completions(out[:n].copy()))
    return n


def add_arguments(p) -> None:
    p.add_argument("--config", default=None, metavar="FILE",
                   help="the daemon's configuration, for its ring names (default: built-in defaults)")
    p.add_argument("--ops", type=arg_types.positive, default=10_000, help="operations to publish")
    p.add_argument("--rate", type=arg_types.nonnegative_rate, default=2_000,
                   help="operations per second (0: flat out)")
    p.add_argument("--seed", type=arg_types.nonnegative, default=1, help="the synthetic flow's random seed")
    p.add_argument("--wait", type=arg_types.nonnegative_seconds, default=30.0,
                   help="seconds to wait for completions")
    p.add_argument("--json-progress", action="store_true",
                   help="progress as JSON lines on stdout (for a supervising process, e.g. the demo)")


def run_args(args) -> int:
    """`zksidecar loadgen`."""
    from zksidecar.daemon.config import ConfigError, load

    try:
        # the engine's side: only the names matter, and this process runs as
        # the engine (its cores, its user), not as the daemon the machine's rules are about
        cfg = load(args.config, machine=False)
    except ConfigError as exc:
        print(f"zksidecar loadgen: {exc}", file=sys.stderr)
        return 2
    ops = flow(args.ops, args.seed, cfg.book.capacity)

    def show(rep: LoadReport) -> None:
        print(f"\r published {rep.published:>9,}  proven {rep.proven_ops():>9,}  "
              f"batches {len(rep.completed):>6,}", end="", file=sys.stderr, flush=True)

    def report(rep: LoadReport, done: bool = False) -> None:
        print(json.dumps({"published": rep.published, "proven": rep.proven_ops(),
                          "completions": len(rep.completed), "full_events": rep.full_events,
                          "seconds": rep.seconds, "done": done}), flush=True)

    progress = report if args.json_progress else show if os.isatty(2) else None
    try:
        rep = run(cfg.ring.ops, cfg.ring.completions, ops, cfg.book.capacity, args.rate or None,
                  wait_s=args.wait, progress=progress, group=cfg.ring.group or None)
    except ringbuf.RingError as exc:
        print(f"zksidecar loadgen: {exc} (is `zksidecar daemon` running with this configuration?)",
              file=sys.stderr)
        return 2
    if args.json_progress:
        report(rep, done=True)
    print(f"\npublished {rep.published:,} operations in {rep.seconds:.1f} s "
          f"({rep.published / max(rep.seconds, 1e-9):,.0f}/s), {rep.full_events} full events; "
          f"{len(rep.completed):,} completions covering {rep.proven_ops():,} operations",
          file=sys.stderr if args.json_progress else sys.stdout)
    return 0 if rep.proven_ops() == len(ops) else 1

"""The sidecar daemon: every stage built and wired together (docs/DAEMON.md).

The data path, and the thread or process each stage runs on:

    ingest      (thread, pinned)   ops ring -> journal -> sequencer inbox     daemon/ingest.py
    sequencer   (thread)           shadow books, batch cuts, journal marks,   daemon/sequencer.py
                                   snapshots, journal retention               daemon/checkpoint.py
    workers     (processes,        proof jobs by priority -> batch proofs     daemon/pools.py,
                 pinned; or a Dask                                            daemon/workers.py,
                 cluster's)                                                   daemon/cluster.py
    finisher    (thread)           proofs -> store -> completion ring         daemon/finisher.py
    event loop  (main thread,      admin endpoint, sd_notify READY/STATUS/    daemon/admin.py,
                 uvloop)           WATCHDOG, signals                          daemon/notify.py

Constructing a Service binds the admin endpoint (first: a second daemon on
its socket or port stops there), opens the journal and the store, replays
the journal (daemon/recovery.py) and opens the rings; start() starts the threads and
the proofs recovery left to make; serve() runs the event loop until SIGTERM.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time

import psutil

from .. import ringbuf
from ..engine.records import OP_DTYPE
from ..ringbuf.ring import IdleStrategy
from . import perms
from .admin import AdminEndpoint, AdminError, serve_admin
from .backlog import Backlog, op_count
from .batches import Batch, BatchPolicy
from .checkpoint import Checkpoints
from .config import BACKLOG_SHARE, MIB, Config, RingConfig, socket_dir_is_state
from .finisher import Finisher
from .ingest import Ingest, Resync
from .jobs import warm_up_job
from .journal import BatchMark, Journal, JournalCorrupt
from .metrics import Metrics, pool_status
from .notify import Notifier, watchdog_loop
from .priority import ProofPriority
from .rebuild import Rebuilder, sequencer_of
from .recovery import recover
from .refusal import NEEDS_OPERATOR, needs_operator
from .sequencer import Sequencer, SequencerThread
from .store import ProofStore
from .pools import open_pool
from .zk_store import ZkStoreError, open_store_mode

log = logging.getLogger("zksidecar.daemon")

#: while the journal replays, systemd's start timeout is extended by this much at every report
EXTEND_START_S = 30


class Service:
    """The daemon.  `serve()` runs until stop() (or SIGTERM / SIGINT); a
    daemon that stopped on a fatal error says why in `failure`."""

    def __init__(self, config: Config, metrics: Metrics | None = None,
                 notifier: Notifier | None = None):
        c = config
        self.config = c
        self.metrics = metrics or Metrics()
        self.notifier = notifier or Notifier.from_env()
        self.failure: str | None = None
        self.started_at = time.time()
        self.trace_length = c.trace_length
        self.policy = BatchPolicy(c.batch.max_batch_size, c.batch.batch_timeout_ms / 1000,
                                  c.batch.critical_qty, c.batch.critical_per_s)
        zk = c.proofs.mode == "zk"
        with contextlib.ExitStack() as opened:       # closed again if anything below fails
            self.admin = _bind_admin(c)
            opened.callback(self.admin.close)
            self.journal = opened.enter_context(
                Journal(c.journal.dir, c.journal.segment_mib << 20, c.journal.fsync,
                        c.journal.fsync_interval_ms / 1000, group=c.state.group or None, zk=zk))
            for repair in self.journal.repairs:
                log.warning("journal: %s", repair)
            self.store = opened.enter_context(
                ProofStore(c.store.dir, c.store.fsync, group=c.state.group or None))
            # the store's mode and the journal's (from what they hold), before anything is
            # appended (the journal stays of one mode) or made; then the key and the chain's
            # parameters, before recovery reads a proof or queues the journal's batches
            self.zk = open_store_mode(self.store, zk, security_bits=c.workers.security_bits,
                                      capacity=c.book.capacity, ops_length=self.trace_length,
                                      fsync=c.store.fsync, journal_dir=c.journal.dir)
            self.sequencer = Sequencer(c.book.capacity, self.trace_length, self.policy, self.metrics,
                                       max_symbols=c.book.max_symbols, journal=self.journal,
                                       resync_after=c.book.resync_after, zk=zk)
            self.backlog = Backlog(c.limits.memory_mib * MIB // BACKLOG_SHARE,
                                   Rebuilder(self.journal, self._side_sequencer),
                                   c.workers.security_bits, chains=self.zk.chain if zk else None)
            self.recovered = recover(self.journal, self.store, self.sequencer, c.ring.capacity,
                                     self._replaying, todo=self._queue, private=self.zk)
            self.checkpoints = Checkpoints(self.journal, self.store, c.book.capacity,
                                           self.trace_length, c.journal.snapshot_every_ops,
                                           c.journal.snapshot_every_s, c.journal.retain_s,
                                           group=c.state.group or None,
                                           store_retain_s=c.store.retain_s)
            self.checkpoints.prune()
            self.consumer, self.completions = _open_rings(c.ring)
            opened.callback(self.consumer.close)
            opened.callback(self.completions.close)
            self.pool = open_pool(c.workers, warm_up_job(c.book.capacity, self.trace_length,
                                                         c.workers.security_bits, zk=zk))
            self._closing = opened.pop_all()
        self.finisher = Finisher(self.store, self.completions, self.metrics, private=self.zk)
        self.sequencer_thread = SequencerThread(
            self.sequencer, self._submit, self.checkpoints if self.checkpoints.enabled else None,
            inbox_limit=c.limits.memory_mib * MIB // BACKLOG_SHARE // OP_DTYPE.itemsize)
        self.ingest = Ingest(self.consumer, self.journal.append_ops, self.sequencer_thread.inbox,
                             self.metrics, c.ingest.core, Resync(self.recovered.tail),
                             producer_stale_s=c.ingest.producer_stale_s)
        self._threads = (self.ingest, self.sequencer_thread, self.finisher, self.backlog)
        self._stop_requested = False
        self._process = psutil.Process()
        self.metrics.attach(self.live)

    # -------------------------------------------------------------- run --
    def start(self) -> None:
        """Start every thread, and the proofs recovery left to make."""
        self.finisher.start()
        w = self.config.workers
        floor = w.max_in_flight if w.backend == "dask" else 0
        # the recovered backlog is already queued: the pool takes it as workers free up
        self.backlog.start(self.pool, self.finisher.finished,
                           lambda: max(2, 2 * self.pool.ready, floor))
        self.sequencer_thread.start()
        self.ingest.start()
        c = self.config
        provers = (f"{c.workers.count} worker(s)" if c.workers.backend == "local"
                   else f"proofs on the Dask cluster at {c.workers.scheduler}")
        log.info("serving: ops ring %s, completions %s, trace %d rows, batches of up to %d, %s",
                 c.ring.ops, c.ring.completions, self.trace_length, self.policy.max_batch_size,
                 provers)

    def _replaying(self, replayed: int) -> None:
        """A long journal replay goes on: tell systemd (so its start timeout
        does not kill it) and the log."""
        self.notifier.extend_timeout(EXTEND_START_S)
        self.notifier.status(f"replaying the journal: {replayed:,} operations")
        log.info("recovery: %d operations replayed so far", replayed)

    def _side_sequencer(self) -> Sequencer:
        """A sequencer of this configuration with no journal or metrics of
        its own: the books a rebuild replays on (daemon/rebuild.py)."""
        return sequencer_of(self.config)

    def _queue(self, item: Batch | BatchMark) -> None:
        self.metrics.batch_queued(ProofPriority(item.priority).label)
        self.backlog.add(item)

    def _submit(self, batch: Batch) -> None:
        self._queue(batch)

    def shutdown(self, grace_s: float | None = None) -> None:
        """Stop ingest, close the open batches, wait (up to grace_s, default
        workers.stop_grace_s) for the proofs in flight, and close everything.
        Unproven batches stay marked in the journal and are proven on the
        next start (one log line says how many)."""
        grace_s = self.config.workers.stop_grace_s if grace_s is None else grace_s
        if self.ingest.is_alive():
            self.ingest.stop()
            self.ingest.join()
        if self.sequencer_thread.is_alive():
            self.sequencer_thread.stop()
            self.sequencer_thread.join()
        queued = self.backlog.close()          # marked in the journal: the next start proves them
        deadline = time.monotonic() + grace_s
        while self.pool.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        # close() joins the pool's threads, which run every future's callback:
        # each finished job is on the finisher's queue before its stop mark
        self.pool.close(wait=False, cancel_pending=True)
        if self.finisher.is_alive():
            self.finisher.stop()
            self.finisher.join()
        self._closing.close()
        if self.failure is None:         # a thread that failed during the stop fails it too
            self.failure = next((self._fault() for t in self._threads if t.error is not None), None)
        left = self.finisher.left + queued
        if self.failure is not None:
            log.error("stopped after a failure (%s): %d batches left unproven; the journal keeps "
                      "every record for the next start", self.failure, len(left))
        elif left:
            log.info("stopped: %d batches (%d operations) left unproven, marked in the journal: "
                     "the next start proves them", len(left), sum(op_count(b) for b in left))
        else:
            log.info("stopped: every closed batch is proven")

    def stop(self) -> None:
        """Ask serve() to return (from any thread)."""
        self._stop_requested = True

    # ----------------------------------------------------------- status --
    def live(self) -> dict:
        """The figures read from the stages themselves at the moment of
        asking: /status shows them (status()) and /metrics presents them
        (Metrics.attach), so both read one source.  Keys in docs/ADMIN.md."""
        seq, fin = self.sequencer, self.finisher
        with self.sequencer_thread.step_lock:
            # between the sequencer's steps: every operation is in an open batch
            # or a closed one, and a closed batch waits for its journal mark, is
            # in the backlog (queued, proving) or is the finisher's (proven, not
            # stored yet), counted until stored: the finisher's read last, as a
            # batch moves there, each stage handing it on before it lets it go
            symbols = {str(s): {"next_batch_id": b.next_batch_id, "open_ops": b.open_count,
                                "held_ops": b.held, "next_seq": b.book.next_seq, "resting": len(b.book)}
                       for s, b in sorted(seq.shadows.items())}
            open_ops = sum(v["open_ops"] for v in symbols.values())
            unstarted = seq.unstarted          # walks a dict the sequencer changes
            closed_ops = self.backlog.ops
            pending = seq.unmarked + self.backlog.pending + fin.unfinished
        c = self.config
        return {
            "symbols": symbols,
            "unstarted_ops": unstarted,
            "proofs_in_flight": pending,
            "max_pending": c.batch.max_pending,
            "behind": pending > c.batch.max_pending,
            "completions_waiting": fin.completions_waiting,
            "completions_dropped": fin.completions_dropped,
            "ingest_healthy": self.ingest.healthy(),
            "blocked": {"ingest": self.ingest.blocked, "sequencer": seq.blocked,
                        "finisher": fin.blocked},
            "disk": {"journal": disk_figures(c.journal.dir), "store": disk_figures(c.store.dir)},
            "backlog": {"closed_ops": closed_ops, "open_ops": open_ops,
                        "ops": closed_ops + open_ops,
                        "seconds": self.metrics.backlog_seconds(closed_ops + open_ops),
                        **self.backlog.status()},
            "tree_resident_bytes": tree_resident_bytes(self._process),
            "snapshots": self.checkpoints.status(),
            "pool": self.pool.status(),
        }

    def status(self) -> dict:
        live = self.live()
        seq, fin = self.sequencer, self.finisher
        return {
            "trace_length": self.trace_length,
            "batch_policy": {"max_batch_size": self.policy.max_batch_size,
                             "timeout_s": self.policy.timeout_s},
            "symbols": live["symbols"],
            "unstarted_ops": live["unstarted_ops"],
            "proofs_in_flight": live["proofs_in_flight"],
            "behind": live["behind"],
            "store": {"proofs": len(self.store), "archived": self.store.archived_count()},
            "completions_waiting": live["completions_waiting"],
            "ingest_healthy": live["ingest_healthy"],
            "blocked": [why for why in live["blocked"].values() if why],
            "disk": live["disk"],
            "backlog": live["backlog"],
            "memory": {"tree_resident_bytes": live["tree_resident_bytes"],
                       "inbox_records_in_memory": self.sequencer_thread.inbox.held,
                       "inbox_items_read_back": self.sequencer_thread.inbox.spilled},
            "snapshots": live["snapshots"],
            "pool": pool_status(live["pool"]),
            "counts": {"divergences": seq.divergences, "rejected": seq.refused,
                       "breaks": seq.breaks, "proven": fin.proven, "failed": fin.failed,
                       "completions_dropped": live["completions_dropped"],
                       "recovered_batches": self.recovered.unproven},
        }

    def receipt(self, query: dict[str, list[str]]) -> bytes:
        """GET /receipt (zk mode, the Unix socket only: docs/ADMIN.md): a
        receipt of `symbol` for one or more `seq`, or for `account` in
        `batch`.  ReceiptError (its message for the client) otherwise."""
        from .zk_store import BadReceiptRequest, NotProven

        def one(name: str) -> int | None:
            values = query.get(name, [])
            if len(values) > 1:
                raise BadReceiptRequest(f"{name} given {len(values)} times")
            return _integer(name, values[0]) if values else None

        symbol, account, batch = one("symbol"), one("account"), one("batch")
        seqs = [_integer("seq", v) for v in query.get("seq", [])]
        unknown = set(query) - {"symbol", "seq", "account", "batch"}
        if unknown:
            raise BadReceiptRequest(f"unknown parameter {sorted(unknown)[0]!r} (symbol, seq, account, batch)")
        if symbol is None or (not seqs) == (account is None) or (account is None) != (batch is None):
            raise BadReceiptRequest("ask for symbol=S and seq=N (one or more), or symbol=S, account=A and batch=B")
        try:
            return self.zk.receipt(self.store, symbol, seqs=seqs or None, account=account, batch_id=batch)
        except NotProven as exc:
            shadow = self.sequencer.shadows.get(symbol)
            seen = shadow is not None and (all(s < shadow.book.next_seq for s in seqs) if seqs
                                           else batch < shadow.next_batch_id)
            raise NotProven(f"{exc}: it is not proven yet (its batch waits for its proof); ask again after "
                            "its completion" if seen else f"{exc}: the daemon has not had it", seen) from None

    def healthy(self) -> bool:
        return self.ingest.healthy() and all(t.is_alive() for t in self._threads)

    def _fault(self) -> str:
        """Why the daemon is not healthy, in one line."""
        for t in self._threads:
            if t.error is not None:
                return f"the {t.name} thread stopped: {type(t.error).__name__}: {t.error}"
            if not t.is_alive():
                return f"the {t.name} thread is not running"
        return "the ingest loop stopped turning"

    def _status_line(self) -> str:
        ops = sum(b.book.next_seq - 1 for b in list(self.sequencer.shadows.values()))
        return (f"{ops:,} ops, {self.finisher.proven:,} proofs, {self.backlog.pending} waiting, "
                f"{self.sequencer.divergences} divergences")

    # ----------------------------------------------------------- serve --
    async def serve(self) -> None:
        """start(), then run until stop(): the admin endpoint, sd_notify, signals."""
        notifier = self.notifier
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stopped.set)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        self.start()
        try:
            async with await serve_admin(self.metrics, self.status, self.admin,
                                         receipts=self.receipt if self.zk is not None else None):
                watchdog = asyncio.ensure_future(watchdog_loop(notifier, self.healthy))
                notifier.ready(f"serving {self.config.ring.ops}")
                try:
                    while not stopped.is_set() and not self._stop_requested:
                        if not self.healthy():
                            self.failure = self._fault()
                            log.error("fatal: %s; stopping with exit status 1", self.failure)
                            break
                        notifier.status(self._status_line())
                        try:
                            await asyncio.wait_for(stopped.wait(), 1.0)
                        except asyncio.TimeoutError:
                            pass
                finally:
                    notifier.stopping("closing batches and waiting for proofs in flight")
                    watchdog.cancel()
        finally:
            await loop.run_in_executor(None, self.shutdown)


def _integer(name: str, text: str) -> int:
    from .zk_store import BadReceiptRequest

    if not text.isdigit() or len(text) > 20 or int(text) >= 1 << 64:
        raise BadReceiptRequest(f"{name} must be a whole number below 2^64, got {text[:40]!r}")
    return int(text)


def disk_figures(directory: str) -> dict:
    """The bytes the files under `directory` occupy on disk (allocated
    blocks), and its filesystem's size, used and free bytes (statvfs; free:
    what an unprivileged writer may still use, f_bavail).  A figure that
    cannot be read is None (the reason is not the metrics' to raise)."""
    out = {"path": os.path.abspath(directory), "bytes": None, "fs_size_bytes": None,
           "fs_used_bytes": None, "fs_free_bytes": None}
    try:
        st = os.statvfs(directory)
        out["fs_size_bytes"] = st.f_blocks * st.f_frsize
        out["fs_used_bytes"] = (st.f_blocks - st.f_bfree) * st.f_frsize
        out["fs_free_bytes"] = st.f_bavail * st.f_frsize
    except OSError:
        pass
    total = 0
    try:
        stack = [directory]
        while stack:
            with os.scandir(stack.pop()) as entries:
                for e in entries:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        else:
                            total += e.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:     # a file removed while we looked
                        pass
        out["bytes"] = total
    except OSError:
        pass
    return out


def tree_resident_bytes(process: psutil.Process) -> int | None:
    """Resident memory of `process` and all its descendants (the proof
    workers), in bytes; shared pages count once per process, so this is an
    upper bound.  None if it cannot be read."""
    try:
        total = process.memory_info().rss
        children = process.children(recursive=True)
    except psutil.Error:
        return None
    for child in children:
        try:
            total += child.memory_info().rss
        except psutil.Error:        # it ended while we looked
            pass
    return total


def _bind_admin(c: Config) -> AdminEndpoint:
    """The admin endpoint, bound first: a second daemon on this socket or
    port stops here (AdminError naming the key), before it creates a ring
    or opens a journal.  Its directory is made if it is one the journal's or
    the store's creation would make anyway (the default ./var)."""
    group = c.state.group or None
    if socket_dir_is_state(c):
        try:
            perms.make_dirs(os.path.dirname(os.path.abspath(c.admin.socket)), group)
        except OSError as exc:
            raise AdminError(exc.errno, f"cannot create the admin socket's directory "
                             f"{exc.filename}: {exc.strerror}") from exc
    return AdminEndpoint(c.admin.socket, c.admin.tcp_port or None, group=group)


def _open_rings(rc: RingConfig):
    """The ops ring's consumer and the completion ring's producer, creating
    the rings first if asked to and they do not exist.

    Neither is taken over from a live process: a second daemon on the same
    rings (another state directory, say) is refused with RingBusy naming the
    first one's pid, and a dead daemon's roles are taken.  Both opens require
    the segment to be ours (owned by this user, mode within 0600) or, with
    ring.group, that group's (mode within 0660): a ring someone else created
    is refused with RingForeign, never adopted (docs/RING.md)."""
    access = {"group": rc.group or None}
    for name in (rc.ops, rc.completions):
        if rc.create and not os.path.exists("/dev/shm/" + name.lstrip("/")):
            ringbuf.create(name, rc.capacity, group=access["group"])
            log.info("created ring %s (%d records)", name, rc.capacity)
    consumer = ringbuf.Consumer(rc.ops, idle=IdleStrategy.named(rc.idle), defer_release=True,
                                **access)
    try:
        completions = ringbuf.Producer(rc.completions, **access)
    except BaseException:
        consumer.close()
        raise
    return consumer, completions


def _what_failed(exc: Exception) -> str:
    """A start-up failure in one line: the configuration key for the admin
    endpoint's (its socket or port is taken), else the exception's type; a
    ring's as a command-line user reads it (RingError.for_cli)."""
    if isinstance(exc, AdminError):
        section, _, name = exc.key.partition(".")
        return f"[{section}] {name}: {exc.strerror}"
    if isinstance(exc, ringbuf.RingError):
        return f"{type(exc).__name__}: {exc.for_cli}"
    return f"{type(exc).__name__}: {exc}"


def main(config_path: str | None) -> int:
    """`zksidecar daemon --config FILE`: 0 after a clean stop, 1 after a
    fatal error (one log line says which), 2 (NEEDS_OPERATOR) for a bad
    configuration or state on disk it cannot use (daemon/refusal.py)."""
    from .config import ConfigError, load
    from .malloc import return_freed_memory

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return_freed_memory()        # limits.memory_mib holds whatever the last minute held
    try:
        cfg = load(config_path)
    except ConfigError as exc:
        log.error("cannot start: configuration: %s", exc)
        return NEEDS_OPERATOR
    try:
        import uvloop
        run = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency; asyncio works the same
        run = asyncio.run
    try:
        service = Service(cfg)
    except Exception as exc:     # a journal, store, ring or replay that cannot be used
        damaged = isinstance(exc, JournalCorrupt) and not exc.unusable
        hint = (f"; `zksidecar journal repair {cfg.journal.dir}` sets aside the journal from there "
                "on (docs/DAEMON.md)" if damaged else "")
        log.error("cannot start: %s%s", _what_failed(exc), hint)
        log.debug("cannot start", exc_info=True)
        return NEEDS_OPERATOR if needs_operator(exc) else 1
    try:
        run(service.serve())
    except Exception as exc:
        log.error("fatal: %s: %s", type(exc).__name__, exc)
        log.debug("fatal", exc_info=True)
        return 1
    return 1 if service.failure else 0

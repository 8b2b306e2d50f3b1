"""The daemon's configuration: a TOML file in which every key has a default.

No file is needed on a developer machine: rings under /dev/shm named for the
user, state under ./var.  A file overrides what it names; a key this module
does not know, or a value of the wrong type or range, is an error naming the
key (a typo must not silently fall back to a default).  docs/DEPLOY.md lists
every key and every rule below; systemd/zksidecar.toml.example is a
commented copy.

`load()` checks everything before the daemon opens or replays anything, so a
configuration that cannot work fails at once with one line naming the key
(`[section] key: why, got X`) instead of a traceback after the whole journal
has been replayed.  Two kinds of rule:

* the file's own: each value's type and range, and how the values fit
  together (the trace holds the book, the security is reachable at that
  trace, the two rings are two rings, the state directories differ);
* the machine's, checked against a `Host` (by default this process on this
  machine): the cores exist and this process may use them, the groups exist
  and this process may hand files to them, the rings fit in /dev/shm and
  their names are shm_open names, the workers fit the cores and the memory,
  the state paths can be created and are not open to other users, the admin
  socket's path fits a socket address, the admin port may be bound.

Tools that only read a daemon's configuration for its names (the load
generator, which runs as the engine on the engine's cores) load it with
`machine=False`.
"""
from __future__ import annotations

import dataclasses
import getpass
import grp
import math
import os
import stat
import struct
import sys
import tomllib
from dataclasses import dataclass, field
from typing import Callable

from ..prover import input_file
from ..prover.orderbook.air import MAX_LOG_OPS, book_length
from ..prover.orderbook.params import check_zk_batch_size, proof_options, zk_proof_options
from ..prover.orderbook.zk_air import ZK_MAX_LOG_OPS
from ..prover.orderbook.witness import (MIN_TRACE_LENGTH, ROWS_PER_OP, check_trace_length,
                                       trace_length_for)
from ..prover.params import MAX_SECURITY_BITS, ParameterError
from ..ringbuf import layout
from ..ringbuf.ring import IDLE_STRATEGIES, RingError
from ..ringbuf.ring import check_access as check_ring_access
from . import perms, snapshot, state_dirs
from .admin import socket_in_use, socket_path_problem, tcp_port_problem
from .journal import FSYNC_POLICIES
from .journal import PREFIX as JOURNAL_PREFIX
from .journal import SUFFIX as JOURNAL_SUFFIX
from .journal import mode_problem as journal_mode_problem
from .shadow import MIN_RESYNC_AFTER
from .store import COPY_NAME, INDEX_NAME
from .store import PREFIX as STORE_PREFIX
from .store import SUFFIX as STORE_SUFFIX
from .zk_store import check_store_mode


class ConfigError(ValueError):
    """A configuration that cannot be used as it is.  `problems` lists every
    rule it breaks, one line each; str() is all of them on one line."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


def user_name() -> str:
    """The login name that default ring names carry (the uid where there is no
    passwd entry, as in some containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass(frozen=True)
class RingConfig:
    ops: str = field(default_factory=lambda: f"/zksidecar-{user_name()}-ops")
    completions: str = field(default_factory=lambda: f"/zksidecar-{user_name()}-completions")
    capacity: int = 1 << 16          # records; a power of two
    idle: str = "spin_then_park"     # what ingest does while the ring is empty
    create: bool = True              # create the rings if they do not exist
    group: str = ""                  # rings created 0660 owned by this group (the engine's); "": 0600


@dataclass(frozen=True)
class IngestConfig:
    core: int = -1                   # core the ingest thread is pinned to; -1: not pinned
    producer_stale_s: float = 5.0    # an engine that has not heartbeaten for this long is "stale"


@dataclass(frozen=True)
class JournalConfig:
    dir: str = "./var/journal"
    segment_mib: int = 64
    fsync: str = "batch"             # always | batch | interval | never
    fsync_interval_ms: int = 10
    snapshot_every_ops: int = 100_000   # a snapshot after this many operations...; 0: none
    snapshot_every_s: float = 60.0      # ...or this long after the last, with any operations
    retain: str = "7d"                  # proven segments older than this are removed; "forever"

    @property
    def retain_s(self) -> float:
        """journal.retain in seconds (inf: "forever")."""
        return parse_duration(self.retain)


#: units of a duration ("90s", "15m", "12h", "7d")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds of a duration: a whole number and a unit (s, m, h, d), or
    "forever" (inf); ValueError naming what is wrong otherwise."""
    t = text.strip().lower() if isinstance(text, str) else text
    if t == "forever":
        return float("inf")
    if not isinstance(t, str) or len(t) < 2 or t[-1] not in DURATION_UNITS or not t[:-1].isdigit():
        raise ValueError(f"{text!r} is not a duration (a whole number and s, m, h or d, such as "
                         "\"30d\"; or \"forever\")")
    return float(int(t[:-1]) * DURATION_UNITS[t[-1]])


@dataclass(frozen=True)
class BookConfig:
    capacity: int = 1024             # order slots per symbol; a power of two >= 16
    trace_length: int = 0            # cap on a batch proof's ops rows; 0: sized for max_batch_size
    max_symbols: int = 256           # shadow books at most; records of further symbols are refused
    resync_after: int = 16           # records in a row past a gap that make a stream resume there


@dataclass(frozen=True)
class BatchConfig:
    max_batch_size: int = 1024       # operations (with book.capacity 1024: a 2048-row ops cap, ~full)
    batch_timeout_ms: int = 100      # an open batch older than this closes
    critical_qty: int = 0            # an operation of at least this quantity is Critical; 0: off
    max_pending: int = 64            # batches waiting for proofs above which /status says "behind"
    critical_per_s: float = 10.0     # Critical operations a second that close their batch; 0: all


@dataclass(frozen=True)
class WorkersConfig:
    backend: str = "local"           # "local": worker processes here; "dask": a Dask cluster
    count: int = 1                   # backend "local": worker processes
    cores: tuple[int, ...] = ()      # backend "local": cores the workers are pinned to, cycled
    security_bits: int = 100
    stop_grace_s: float = 5.0        # a clean stop waits this long for proofs in flight
    # backend "dask" (daemon/cluster.py): the scheduler, and TLS as Dask offers it
    scheduler: str = ""              # tcp://host:port or tls://host:port
    max_in_flight: int = 0           # jobs in the cluster at once; 0: 2 per worker thread
    tls_ca_file: str = ""            # the cluster's CA (tls:// needs it)
    tls_client_cert: str = ""        # this daemon's certificate (and key, if tls_client_key is "")
    tls_client_key: str = ""
    require_encryption: bool = False  # refuse any connection that is not TLS


#: workers.backend: where proofs are made
BACKENDS = ("local", "dask")
#: the keys only backend "dask" reads
DASK_KEYS = ("scheduler", "max_in_flight", "tls_ca_file", "tls_client_cert", "tls_client_key",
             "require_encryption")


@dataclass(frozen=True)
class ProofsConfig:
    mode: str = "transparent"        # "zk": zero-knowledge batch proofs (docs/ZK.md); per store, fixed


#: proofs.mode: a store, and so a chain, is all one mode
PROOF_MODES = ("transparent", "zk")


@dataclass(frozen=True)
class StoreConfig:
    dir: str = "./var/proofs"
    fsync: bool = True
    retain: str = "forever"             # segments whose proofs are all older are removed at checkpoints

    @property
    def retain_s(self) -> float:
        """store.retain in seconds (inf: "forever")."""
        return parse_duration(self.retain)


@dataclass(frozen=True)
class AdminConfig:
    socket: str = "./var/admin.sock"    # daemon/admin.py DEFAULT_SOCKET
    tcp_port: int = 0                # 0: off; otherwise 127.0.0.1 only, unauthenticated


@dataclass(frozen=True)
class LimitsConfig:
    memory_mib: int = 512            # the daemon tree's memory budget; a share holds the proof backlog


#: the share of limits.memory_mib the proof backlog keeps batches in (1/8):
#: beyond it a batch waits as its journal mark and is rebuilt when proven
#: (daemon/backlog.py); the rest is the daemon's, its workers' and its books'
BACKLOG_SHARE = 8
MEMORY_MIB_MIN = 64


@dataclass(frozen=True)
class StateConfig:
    group: str = ""                  # operators' group: state 0750/0640, admin socket 0660; "": owner only


# ---- the limits the rules enforce, and where each comes from ----

#: ring capacity: the ring's own bounds (csrc/ring/zkring.h ZKRING_MAX_CAPACITY,
#: ringbuf/layout.py MAX_CAPACITY); 16 is this daemon's floor
RING_MIN_CAPACITY, RING_MAX_CAPACITY = 16, layout.MAX_CAPACITY
#: a ring name's bytes after its optional leading "/": zkring.h builds "/name"
#: and its NUL in a 256-byte buffer (zkring__shm_name), one under NAME_MAX (255)
RING_NAME_MAX = 254
#: book.capacity: the largest book whose longest operation (a FOK sweeping a
#: full side, 2(N - 1) rows, and the PAD row) fits the ops domain's 2^MAX_LOG_OPS
BOOK_MIN_CAPACITY, BOOK_MAX_CAPACITY = 16, 1 << (MAX_LOG_OPS - 1)
U32 = (1 << 32) - 1                  # symbols and quantities are u32 in the records
#: the counts and periods below have no natural ceiling, so each is given one
#: far past any useful setting: a typo (an extra zero or five) is refused at
#: --check-config instead of a daemon that waits for years or overflows the
#: u64/i64 it keeps the value in.  batch.batch_timeout_ms: a batch open an
#: hour is no longer a slice of a live stream (max_batch_size closes busy ones)
BATCH_TIMEOUT_MS_MAX = 3_600_000
#: batch.max_pending: an alert threshold on batches waiting for proofs
#: (/status "behind"); a million is days of backlog at any rate measured
MAX_PENDING_MAX = 1_000_000
#: book.resync_after: records in a row held in memory, per symbol, before a
#: stream resumes past a gap; its floor is the shadow book's (fewer would let
#: one or two stray records move a stream)
RESYNC_AFTER_MIN, RESYNC_AFTER_MAX = MIN_RESYNC_AFTER, 65_536
#: journal.fsync_interval_ms: a minute; a longer period is fsync = "never" in
#: all but name
FSYNC_INTERVAL_MS_MAX = 60_000
#: journal.snapshot_every_ops: 0 (none) to 2^32 - 1 operations between
#: checkpoints (a restart replays at most that many)
SNAPSHOT_EVERY_OPS_MAX = U32
#: the most bytes a configuration file may have (prover/input_file.py): a
#: full one, every key set and commented, is a few kilobytes
MAX_FILE_BYTES = 1 << 20
#: workers.security_bits: from 80 to the most any proof reaches (a higher
#: target is one no parameters meet)
SECURITY_MIN, SECURITY_MAX = 80, MAX_SECURITY_BITS
#: journal.segment_mib: 64 GiB, past any segment a journal rotates usefully
SEGMENT_MIB_MAX = 65_536
#: workers.max_in_flight: jobs held by a cluster at once, each a batch
MAX_IN_FLIGHT_MAX = 65_536
#: ingest.core and workers.cores: Linux numbers CPUs below its NR_CPUS
#: (8,192 at most in distribution kernels); a larger one is a typo
CORE_MAX = 65_535
#: A worker proves one batch at a time on one core (single-threaded), so one
#: worker per usable core is the throughput ceiling.  Twice that still lets a
#: configuration written for a slightly bigger box run (the extra workers
#: time-share, covering a worker's time outside the prover: receiving its job,
#: returning its proof), while an order-of-magnitude mistake (200 workers on
#: 16 cores: 200 peak-memory processes, every proof 12x slower) is refused.
WORKERS_PER_CORE = 2
#: Memory estimate, from the measurements in docs/DEPLOY.md ("Sizing"): one
#: proving worker peaks at about 40 MiB + 8.5 KiB per trace row (counted as
#: 45 MiB + 11 KiB: a margin for the job it holds besides); the daemon
#: process (interpreter, queues, metrics) at about 300 MiB; a shadow book at
#: 160 bytes per slot (Book() allocates 128, measured with tracemalloc, and
#: the open batch keeps a 28-byte-per-slot copy of the cells), and its open
#: batch at 840 bytes per trace row it fills (the engine's step records,
#: engine/trace.py STEP_DTYPE, 280 bytes each: the witness the batch carries
#: to its worker; a row holds up to three, an operation's BEGIN and END
#: folding into its one row); opening and replaying the journal reads one
#: whole segment into memory.
#:
#: A zk worker (proofs.mode = "zk") peaks far higher: every committed
#: polynomial is masked (its mask of degree h ~ 2q + 20 beside each column),
#: every tree salted, the record lane and the quotient's masked chunks come
#: on top, and every batch is proven at the chain's one height, never at the
#: rows it takes.  Measured by benchmarks/worker_memory.py (a spawned
#: process per point, malloc set for proving, a warm-up proof, then one job
#: proven and encoded as a worker does; 80 bits, capacity half the height,
#: the batch as full as the height holds; peak RSS, the interpreter's 49 MiB
#: included), 2026-12-07 on the 2-core dev box:
#:
#:     ops rows          2^11  2^12  2^13  2^14  2^15
#:     transparent MiB     64    72    90   124   189   (~56 MiB + 4.2 KiB/row)
#:     zk MiB              95   117   162   239   401   (~75 MiB + 10.2 KiB/row)
#:
#: so a zk worker is counted as 90 MiB + 16 KiB per row (602 MiB at 2^15
#: against 401 measured, 122 at 2^11 against 95: the transparent rule's kind
#: of margin for the job a worker holds besides, and for a capacity below
#: half the height costing less, never more).  Each worker is counted at its
#: peak for as long as it runs, which is what it holds between proofs too:
#: its largest arrays kept for the next proof (prover/array_pool.py;
#: `worker_memory.py --long`).
MIB = 1 << 20
WORKER_BASE_BYTES = 45 * MIB
WORKER_BYTES_PER_ROW = 11 << 10
ZK_WORKER_BASE_BYTES = 90 * MIB
ZK_WORKER_BYTES_PER_ROW = 16 << 10
DAEMON_BYTES = 300 * MIB
SHADOW_BYTES_PER_SLOT = 160
OPEN_BATCH_BYTES_PER_ROW = 3 * 280
SHM_DIR = "/dev/shm"


# ---- the machine, as the rules see it (tests substitute their own) ----

def _cgroup_memory_limit() -> int | None:
    """The tightest memory limit of this process's cgroup and its ancestors
    (v2 memory.max, v1 memory.limit_in_bytes); None if there is none."""
    limits = []
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hid == "0" and controllers == "":
            root, name = "/sys/fs/cgroup", "memory.max"
        elif "memory" in controllers.split(","):
            root, name = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
        else:
            continue
        # walk from the process's cgroup up to the root of the mounted
        # hierarchy (inside a container the path may not exist under the mount)
        parts = [p for p in path.split("/") if p]
        for i in range(len(parts), -1, -1):
            try:
                with open(os.path.join(root, *parts[:i], name)) as f:
                    text = f.read().strip()
            except OSError:
                continue
            if text.isdigit():
                limits.append(int(text))
    return min(limits) if limits else None


def _memory_limit() -> tuple[int, str]:
    """(bytes, what they are): the memory this process can ever have, the
    physical memory or the cgroup's limit (systemd's MemoryMax=), the less."""
    import psutil

    total = psutil.virtual_memory().total
    cgroup = _cgroup_memory_limit()
    if cgroup is not None and cgroup < total:
        return cgroup, "its cgroup's memory limit (MemoryMax=)"
    return total, "physical memory"


def _unprivileged_port_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def _process_groups() -> set[int]:
    return {os.getegid(), *os.getgroups()}


@dataclass(frozen=True)
class Host:
    """What the machine's rules ask of the machine, one function each, so a
    test can describe another machine (dataclasses.replace) instead of
    filling /dev/shm or owning 200 cores."""

    cpus: Callable[[], set[int]] = lambda: set(os.sched_getaffinity(0))
    statvfs: Callable[[str], os.statvfs_result] = os.statvfs
    memory: Callable[[], tuple[int, str]] = _memory_limit
    getgrnam: Callable[[str], grp.struct_group] = grp.getgrnam
    groups: Callable[[], set[int]] = _process_groups
    euid: Callable[[], int] = os.geteuid
    unprivileged_port_start: Callable[[], int] = _unprivileged_port_start
    #: why the admin endpoint could not listen on 127.0.0.1:port now (the bind it makes)
    tcp_port_problem: Callable[[int], str | None] = tcp_port_problem
    shm_dir: str = SHM_DIR
    #: where the state paths are looked up: "/", or a scratch root standing
    #: for another machine's file system (as systemd-tmpfiles --root)
    root: str = "/"

    def at(self, path: str) -> str:
        """`path` (relative: to the current directory) as found on this host."""
        full = os.path.abspath(path)
        return full if self.root == "/" else os.path.join(self.root, full.lstrip("/"))


# ---- the configuration ----

@dataclass(frozen=True)
class Config:
    ring: RingConfig = field(default_factory=RingConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    book: BookConfig = field(default_factory=BookConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    proofs: ProofsConfig = field(default_factory=ProofsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    state: StateConfig = field(default_factory=StateConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)

    @property
    def trace_length(self) -> int:
        """The cap on a batch proof's `ops` rows (each batch is proven at
        the rows it takes, up to this): book.trace_length, or sized for the
        book and batch.max_batch_size (what the daemon uses,
        daemon/service.py)."""
        return self.book.trace_length or trace_length_for(self.book.capacity,
                                                          self.batch.max_batch_size)

    def validate(self, host: Host | None = None) -> Config:
        """Every rule, the machine's against `host` (None: this process on
        this machine); raises ConfigError listing each one broken.  The
        machine's rules are checked once every key is in its range (they
        read the values: a core number, a capacity)."""
        problems = self._key_problems()
        if not problems:
            fit = self._fit_problems()
            problems = fit + _machine_problems(self, host or Host(), memory=not fit)
        if problems:
            raise ConfigError(problems)
        return self

    def validate_file(self) -> Config:
        """The file's own rules only (no look at the machine)."""
        problems = self.file_problems()
        if problems:
            raise ConfigError(problems)
        return self

    def file_problems(self) -> list[str]:
        """Each of the file's own rules this configuration breaks: every
        key's range first, then (only if those hold) how keys fit together."""
        return self._key_problems() or self._fit_problems()

    def _key_problems(self) -> list[str]:
        """Each key's own type and range."""
        p: list[str] = []

        def need(ok: bool, key: str, why: str, got) -> None:
            if not ok:
                p.append(_msg(key, why, got))

        r, b, w = self.ring, self.book, self.workers
        for key in ("ops", "completions"):
            name = getattr(r, key)
            need((why := _shm_name_problem(name)) is None, f"ring.{key}", why or "", name)
        need(_pow2(r.capacity) and RING_MIN_CAPACITY <= r.capacity <= RING_MAX_CAPACITY,
             "ring.capacity", f"must be a power of two from {RING_MIN_CAPACITY} to "
             f"2^{RING_MAX_CAPACITY.bit_length() - 1} (the ring's limit, csrc/ring/zkring.h)",
             r.capacity)
        need(r.idle in IDLE_STRATEGIES, "ring.idle", f"must be one of {', '.join(IDLE_STRATEGIES)}",
             r.idle)
        need(-1 <= self.ingest.core <= CORE_MAX, "ingest.core",
             f"must be a core number (at most {CORE_MAX:,}) or -1 (not pinned)", self.ingest.core)
        need(0.5 <= self.ingest.producer_stale_s <= 3600, "ingest.producer_stale_s",
             "must be from 0.5 to 3600 seconds (the ingest looks every 0.25 s)",
             self.ingest.producer_stale_s)
        for section in ("journal", "store"):
            value = getattr(self, section).dir
            need((why := _path_problem(value)) is None, f"{section}.dir", why or "", value)
        need(self.journal.fsync in FSYNC_POLICIES, "journal.fsync",
             f"must be one of {', '.join(FSYNC_POLICIES)}", self.journal.fsync)
        need(1 <= self.journal.segment_mib <= SEGMENT_MIB_MAX, "journal.segment_mib",
             f"must be from 1 to {SEGMENT_MIB_MAX:,} (64 GiB)", self.journal.segment_mib)
        need(1 <= self.journal.fsync_interval_ms <= FSYNC_INTERVAL_MS_MAX, "journal.fsync_interval_ms",
             f"must be from 1 to {FSYNC_INTERVAL_MS_MAX:,} (a minute)", self.journal.fsync_interval_ms)
        need(0 <= self.journal.snapshot_every_ops <= SNAPSHOT_EVERY_OPS_MAX, "journal.snapshot_every_ops",
             "must be from 0 (no snapshots) to 2^32 - 1", self.journal.snapshot_every_ops)
        need(math.isfinite(self.journal.snapshot_every_s) and self.journal.snapshot_every_s >= 1,
             "journal.snapshot_every_s", "must be at least 1 second", self.journal.snapshot_every_s)
        try:
            parse_duration(self.journal.retain)
        except ValueError as exc:
            p.append(_msg("journal.retain", str(exc), self.journal.retain))
        try:
            parse_duration(self.store.retain)
        except ValueError as exc:
            p.append(_msg("store.retain", str(exc), self.store.retain))
        need(_pow2(b.capacity) and BOOK_MIN_CAPACITY <= b.capacity <= BOOK_MAX_CAPACITY,
             "book.capacity", f"must be a power of two from {BOOK_MIN_CAPACITY} to "
             f"2^{BOOK_MAX_CAPACITY.bit_length() - 1}", b.capacity)
        need(b.trace_length == 0 or (_pow2(b.trace_length) and b.trace_length <= 1 << MAX_LOG_OPS),
             "book.trace_length", f"must be 0 (automatic) or a power of two up to 2^{MAX_LOG_OPS} "
             "(the order book's ops domain at most)", b.trace_length)
        need(1 <= b.max_symbols <= U32 + 1, "book.max_symbols",
             "must be from 1 to 2^32 (symbols are u32)", b.max_symbols)
        need(RESYNC_AFTER_MIN <= b.resync_after <= RESYNC_AFTER_MAX, "book.resync_after",
             f"must be from {RESYNC_AFTER_MIN} to {RESYNC_AFTER_MAX:,}", b.resync_after)
        need(0 <= self.batch.critical_per_s < float("inf"), "batch.critical_per_s",
             "must be a number >= 0 (0: no limit)", self.batch.critical_per_s)
        need(0 <= w.stop_grace_s <= 3600, "workers.stop_grace_s", "must be from 0 to 3600 seconds",
             w.stop_grace_s)
        need(self.batch.max_batch_size >= 1, "batch.max_batch_size", "must be at least 1",
             self.batch.max_batch_size)
        need(1 <= self.batch.batch_timeout_ms <= BATCH_TIMEOUT_MS_MAX, "batch.batch_timeout_ms",
             f"must be from 1 to {BATCH_TIMEOUT_MS_MAX:,} (an hour)", self.batch.batch_timeout_ms)
        need(0 <= self.batch.critical_qty <= U32, "batch.critical_qty",
             "must be from 0 (off) to 2^32-1 (quantities are u32: a larger one is never reached)",
             self.batch.critical_qty)
        need(1 <= self.batch.max_pending <= MAX_PENDING_MAX, "batch.max_pending",
             f"must be from 1 to {MAX_PENDING_MAX:,}", self.batch.max_pending)
        need(w.count >= 1, "workers.count", "must be at least 1", w.count)
        need(w.backend in BACKENDS, "workers.backend", f"must be one of {', '.join(BACKENDS)}",
             w.backend)
        need(0 <= w.max_in_flight <= MAX_IN_FLIGHT_MAX, "workers.max_in_flight",
             f"must be 0 (two per worker thread of the cluster) to {MAX_IN_FLIGHT_MAX:,}", w.max_in_flight)
        for key in ("tls_ca_file", "tls_client_cert", "tls_client_key"):
            need(not getattr(w, key) or _path_problem(getattr(w, key)) is None, f"workers.{key}",
                 _path_problem(getattr(w, key)) or "", getattr(w, key))
        need(all(0 <= c <= CORE_MAX for c in w.cores), "workers.cores", f"cores are numbers from 0 to {CORE_MAX:,}",
             list(w.cores))
        need(self.proofs.mode in PROOF_MODES, "proofs.mode", f"must be one of {', '.join(PROOF_MODES)}",
             self.proofs.mode)
        need(SECURITY_MIN <= w.security_bits <= SECURITY_MAX, "workers.security_bits",
             f"must be from {SECURITY_MIN} to {SECURITY_MAX}", w.security_bits)
        need(MEMORY_MIB_MIN <= self.limits.memory_mib <= 1 << 30, "limits.memory_mib",
             f"must be from {MEMORY_MIB_MIN} MiB (the daemon itself needs that much) to 2^30",
             self.limits.memory_mib)
        need((why := _path_problem(self.admin.socket)) is None, "admin.socket", why or "",
             self.admin.socket)
        for key, name in (("ring.group", r.group), ("state.group", self.state.group)):
            need("\0" not in name, key, "a group name has no NUL byte", name)
        need(0 <= self.admin.tcp_port < 65536, "admin.tcp_port", "must be 0 (off) or a port",
             self.admin.tcp_port)
        return p

    def _fit_problems(self) -> list[str]:
        """How the keys fit together (each is in its range)."""
        p: list[str] = []
        r, b, w = self.ring, self.book, self.workers
        if _bare(r.ops) == _bare(r.completions):
            p.append(_msg("ring.completions", f"must name another ring than [ring] ops (both "
                          f"are /dev/shm/{_bare(r.ops)})", r.completions))
        t = self.trace_length
        try:
            check_trace_length(t, b.capacity)
        except ValueError as exc:
            if b.trace_length:
                p.append(_msg("book.trace_length", str(exc), b.trace_length))
            else:   # the automatic length outgrew the prover: the batch size did it
                p.append(_msg("batch.max_batch_size",
                              f"{self.batch.max_batch_size} operations need a trace of {t} rows "
                              f"({ROWS_PER_OP} per operation), over the ops domain's "
                              f"2^{MAX_LOG_OPS}; lower it or set [book] trace_length "
                              "(batches then close when the trace is full)",
                              self.batch.max_batch_size))
        else:
            shorter = ("a shorter [book] trace_length" if b.trace_length
                       else "a smaller [book] capacity or [batch] max_batch_size")
            why = _security_problem(w.security_bits, b.capacity, t, shorter)
            if why:
                p.append(_msg("workers.security_bits", why, w.security_bits))
            elif self.proofs.mode == "zk":
                p += _zk_problems(w.security_bits, b.capacity, t, bool(b.trace_length),
                                  self.batch.max_batch_size)
        if r.idle == "busy_spin":
            if self.ingest.core < 0:
                p.append(_msg("ring.idle", '"busy_spin" needs [ingest] core: an unpinned '
                              "spinning thread burns whichever core the scheduler gives it "
                              "(the engine's too)", r.idle))
            elif self.ingest.core in w.cores:
                p.append(_msg("ring.idle", f'"busy_spin" spins the ingest thread on core '
                              f"{self.ingest.core}, which [workers] cores also gives a worker: "
                              "the worker would get no time there", r.idle))
        p += _backend_problems(w)
        if os.path.abspath(self.journal.dir) == os.path.abspath(self.store.dir):
            p.append(_msg("store.dir", "must differ from [journal] dir (each holds a LOCK file "
                          "of its own)", self.store.dir))
        return p


def _backend_problems(w: WorkersConfig) -> list[str]:
    """How [workers] backend fits the keys that go with it."""
    p: list[str] = []
    defaults = WorkersConfig()
    if w.backend != "dask":
        for key in DASK_KEYS:
            if getattr(w, key) != getattr(defaults, key):
                p.append(_msg(f"workers.{key}", 'is read only with backend = "dask" (the Dask '
                              f'cluster), and backend is "{w.backend}"', getattr(w, key)))
        return p
    for key in ("count", "cores"):
        if getattr(w, key) != getattr(defaults, key):
            p.append(_msg(f"workers.{key}", 'is read only with backend = "local" (worker '
                          'processes of the daemon): a Dask cluster\'s workers are its own',
                          list(w.cores) if key == "cores" else w.count))
    if not w.scheduler:
        p.append(_msg("workers.scheduler", 'backend = "dask" needs the scheduler\'s address, '
                      '"tcp://host:8786" or "tls://host:8786"', w.scheduler))
        return p
    why = scheduler_address_problem(w.scheduler)
    if why:
        p.append(_msg("workers.scheduler", why, w.scheduler))
        return p
    tls = w.scheduler.startswith("tls://")
    if w.tls_client_key and not w.tls_client_cert:
        p.append(_msg("workers.tls_client_key", "goes with tls_client_cert (the certificate "
                      "whose key it is)", w.tls_client_key))
    if tls and not w.tls_ca_file:
        p.append(_msg("workers.tls_ca_file", "a tls:// scheduler needs the CA that signed the "
                      "cluster's certificates", w.tls_ca_file))
    if not tls:
        for key in ("tls_ca_file", "tls_client_cert", "tls_client_key", "require_encryption"):
            if getattr(w, key):
                p.append(_msg(f"workers.{key}", f"TLS needs a tls:// scheduler, and it is "
                              f"{w.scheduler}", getattr(w, key)))
    return p


def scheduler_address_problem(address: str) -> str | None:
    """Why `address` is not a Dask scheduler's address as the daemon takes
    it: tcp:// or tls://, a host and a port (None if it is)."""
    from urllib.parse import urlsplit

    scheme, sep, _ = address.partition("://")
    if not sep or scheme not in ("tcp", "tls"):
        return 'must be "tcp://host:port" or "tls://host:port"'
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError as exc:
        return f"not an address: {exc}"
    if not parts.hostname:
        return "names no host"
    if port is None:
        return "names no port (a Dask scheduler listens on 8786 unless told otherwise)"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "must be only scheme://host:port"
    return None


def _msg(key: str, why: str, got) -> str:
    section, _, name = key.partition(".")
    return f"[{section}] {name}: {why}, got {_show(got)}"


def _show(v) -> str:
    if isinstance(v, bool) or not isinstance(v, int):
        return repr(v)
    if v >= 1024 and _pow2(v):
        return f"{v} (2^{v.bit_length() - 1})"
    return str(v)


def _pow2(v: int) -> bool:
    return v > 0 and v & (v - 1) == 0


def _bare(name: str) -> str:
    """A ring name as shm_open takes it: one leading "/" is optional."""
    return name[1:] if name.startswith("/") else name


def _shm_name_problem(name: str) -> str | None:
    """Why `name` is not a ring name: a POSIX shared-memory name is one
    optional "/" and then a file name in /dev/shm."""
    bare = _bare(name)
    if "\0" in name:
        return "must not contain a NUL character"
    if not bare:
        return 'must be a name: one optional leading "/" and at least one more character'
    if "/" in bare:
        return 'may have one leading "/" and no other (a shared-memory name is one file in /dev/shm)'
    if bare in (".", ".."):
        return f'"{bare}" is a directory, not a name'
    n = len(bare.encode())
    if n > RING_NAME_MAX:
        return (f"is {n} bytes after its leading \"/\", over the {RING_NAME_MAX} the ring takes "
                "(NAME_MAX is 255, and csrc/ring/zkring.h adds the \"/\" and the NUL)")
    return None


def _path_problem(path: str) -> str | None:
    if not path:
        return "must be a path"
    if "\0" in path:
        return "must not contain a NUL character"
    return None


def _security_problem(bits: int, capacity: int, trace_length: int, shorter: str) -> str | None:
    """Why `bits` of conjectured security cannot be had for batches of up
    to `trace_length` ops rows on a book of `capacity` slots with the order
    book's proof parameters (None if they can); `shorter` says which keys
    shorten the trace."""
    try:
        proof_options(bits, book_length(capacity), trace_length)
        return None
    except ParameterError as exc:
        why = f"out of reach: {exc}"
    try:
        # the smallest proof there is (a smaller capacity shortens the book
        # domain, a smaller batch the ops domain)
        proof_options(bits, MIN_TRACE_LENGTH, MIN_TRACE_LENGTH)
    except ParameterError:
        return why                  # at any trace length
    return f"{why}; {shorter} makes the trace shorter"


def _zk_problems(bits: int, capacity: int, trace_length: int, explicit: bool, max_batch_size: int) -> list[str]:
    """How zk mode fits the trace and the security: one ops height per
    chain, at most 2^ZK_MAX_LOG_OPS rows, its masks and queries fitting
    (params.zk_proof_options); with the trace sized for the batch size, a
    batch size the book domain holds (one operation a row: docs/ZK.md
    section 14)."""
    key = "book.trace_length" if explicit else "batch.max_batch_size"
    if not explicit:
        try:
            check_zk_batch_size(max_batch_size, capacity)
        except ParameterError as exc:
            return [_msg(key, f"{exc}: the trace sized for it would size every proof for batches it never "
                         f"holds; lower it to {book_length(capacity)} or raise [book] capacity", max_batch_size)]
    if trace_length > 1 << ZK_MAX_LOG_OPS:
        return [_msg(key, f"zk mode proves every batch in an ops trace of {trace_length} rows here, over its "
                     f"2^{ZK_MAX_LOG_OPS} (docs/ZK.md section 14); set [book] trace_length to at most "
                     f"{1 << ZK_MAX_LOG_OPS}", trace_length if explicit else 0)]
    try:
        zk_proof_options(bits, capacity.bit_length() - 1, trace_length)
    except ParameterError as exc:
        return [_msg("proofs.mode", f"\"zk\" cannot reach [workers] security_bits = {bits} with a book of "
                     f"{capacity} slots and {trace_length}-row ops traces: {exc}", "zk")]
    return []


def _gib(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n / 1024:.0f} KiB"


def _cpu_list(cpus: set[int]) -> str:
    out, run = [], []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out) or "none"


# ---- the machine's rules ----

def worker_bytes(mode: str) -> tuple[int, int]:
    """(base, bytes per `ops` row) of one proving worker's peak in proofs
    mode `mode` (the constants above, measured)."""
    if mode == "zk":
        return ZK_WORKER_BASE_BYTES, ZK_WORKER_BYTES_PER_ROW
    return WORKER_BASE_BYTES, WORKER_BYTES_PER_ROW


def memory_estimate(cfg: Config) -> dict[str, int]:
    """Peak bytes of the daemon at this configuration, by where they go (the
    key that sizes each): see the constants above."""
    local = cfg.workers.backend == "local"      # a cluster's workers are on its own hosts
    base, per_row = worker_bytes(cfg.proofs.mode)
    return {
        "workers.count": local * cfg.workers.count * (base + per_row * cfg.trace_length),
        "book.max_symbols": cfg.book.max_symbols * (cfg.book.capacity * SHADOW_BYTES_PER_SLOT
                                                     + cfg.trace_length * OPEN_BATCH_BYTES_PER_ROW),
        "journal.segment_mib": cfg.journal.segment_mib * MIB,
        "limits.memory_mib": cfg.limits.memory_mib * MIB // BACKLOG_SHARE,
        "daemon": DAEMON_BYTES,
    }


def _machine_problems(cfg: Config, host: Host, memory: bool = True) -> list[str]:
    """The machine's rules (`memory=False` leaves out the memory estimate,
    meaningless when the trace length is already wrong)."""
    p: list[str] = []
    _check_cores(cfg, host, p)
    if cfg.workers.backend == "dask":
        _check_dask(cfg, host, p)
    _check_groups(cfg, host, p)
    _check_rings(cfg, host, p)
    if memory:
        _check_memory(cfg, host, p)
    gid = None
    if cfg.state.group:
        try:
            gid = host.getgrnam(cfg.state.group).gr_gid
        except KeyError:
            pass                         # reported by _check_groups
    for key, path in (("journal.dir", cfg.journal.dir), ("store.dir", cfg.store.dir)):
        _check_state_dir(key, path, host.at(path), gid, p)
    _check_state_kinds(cfg, host, p)
    _check_chain_settings(cfg, host, p)
    _check_socket(cfg, host, p)
    return p


def _check_state_kinds(cfg: Config, host: Host, p: list[str]) -> None:
    """Neither state directory holds the other's files, nor an exported
    chain (daemon/state_dirs.py): the daemon would start an empty journal
    or store beside them.  Directories given the wrong way round are named
    as a swap."""
    dirs = {state_dirs.JOURNAL: ("journal.dir", cfg.journal.dir), state_dirs.STORE: ("store.dir", cfg.store.dir)}
    found = {role: state_dirs.foreign(role, host.at(path)) for role, (_, path) in dirs.items()}
    j_files = found[state_dirs.JOURNAL].get(state_dirs.STORE)
    s_files = found[state_dirs.STORE].get(state_dirs.JOURNAL)
    if j_files and s_files:
        p.append(_msg("journal.dir", f"{host.at(cfg.journal.dir)} holds a proof store's files "
                      f"({state_dirs.named(j_files)}) and the [store] dir {host.at(cfg.store.dir)} a journal's "
                      f"({state_dirs.named(s_files)}): [journal] dir and [store] dir look swapped",
                      cfg.journal.dir))
        del found[state_dirs.JOURNAL][state_dirs.STORE], found[state_dirs.STORE][state_dirs.JOURNAL]
    for role, (key, path) in dirs.items():
        for kind, names in found[role].items():
            p.append(_msg(key, f"{host.at(path)} holds {kind}'s files ({state_dirs.named(names)}), not "
                          f"{role}'s: {_WRONG_KIND_HINT[role, kind]}", path))


#: what a state directory holding another kind's files most likely is
_WRONG_KIND_HINT = {
    (state_dirs.JOURNAL, state_dirs.STORE): "is it the [store] dir? the daemon would start a new, empty "
                                             "journal there and replay nothing",
    (state_dirs.STORE, state_dirs.JOURNAL): "is it the [journal] dir? the daemon would start a new, empty "
                                            "store there and not find the proofs it made",
    (state_dirs.JOURNAL, state_dirs.CHAIN): "a chain `zksidecar export` or `store archive` wrote is not a "
                                            "state directory: give the journal's own directory",
    (state_dirs.STORE, state_dirs.CHAIN): "a chain `zksidecar export` or `store archive` wrote is not a "
                                          "state directory (the daemon's store is segments and an index): "
                                          "give the store's own directory",
}


def _check_chain_settings(cfg: Config, host: Host, p: list[str]) -> None:
    """The settings the journal's chain fixes, as its snapshots record them
    (daemon/snapshot.py unfit: the book capacity; the ops-row cap, which may
    only grow; book.max_symbols, at least their books): one line a key, naming the value recorded.  Recovery
    refuses the same at start; this says it before anything is opened, and
    another release's snapshot (snapshot.another_release), which the start
    refuses too.  A snapshot whose header is damaged is recovery's to set
    aside."""
    directory = host.at(cfg.journal.dir)
    try:
        listed = snapshot.listed(directory)
    except OSError:
        return                            # no journal yet (or _check_state_dir said why)
    trace_key = "book.trace_length" if cfg.book.trace_length else "batch.max_batch_size"
    said = set()
    for _, _, path in reversed(listed):
        try:
            snap = snapshot.read_header(path)
        except snapshot.SnapshotCorrupt as exc:
            why = snapshot.another_release(exc)
            if why is not None:
                p.append(_msg("journal.dir", why, cfg.journal.dir))
            continue
        except snapshot.SnapshotError:
            continue
        unfit = snapshot.unfit(snap, cfg.book.capacity, cfg.trace_length, cfg.book.max_symbols,
                               cfg.proofs.mode == "zk", trace_key)
        if unfit is not None and unfit[0] not in said:
            said.add(unfit[0])
            section, _, name = unfit[0].partition(".")
            p.append(_msg(unfit[0], unfit[1], getattr(getattr(cfg, section), name)))


def _check_cores(cfg: Config, host: Host, p: list[str]) -> None:
    try:
        usable = host.cpus()
    except OSError as exc:
        p.append(_msg("ingest.core", f"cannot read this process's CPU affinity ({exc})",
                      cfg.ingest.core))
        return
    where = f"this process's CPU affinity is {_cpu_list(usable)}"
    if cfg.ingest.core >= 0 and cfg.ingest.core not in usable:
        p.append(_msg("ingest.core", f"core {cfg.ingest.core} is not one this process may run "
                      f"on ({where})", cfg.ingest.core))
    if cfg.workers.backend != "local":
        return                          # the workers are the cluster's, on its hosts
    outside = sorted(set(cfg.workers.cores) - usable)
    if outside:
        p.append(_msg("workers.cores", f"{_cpu_list(set(outside))} not among the cores this "
                      f"process may run on ({where})", list(cfg.workers.cores)))
    if outside:
        return                          # the bound below counts usable cores: fix those first
    cores = set(cfg.workers.cores) or usable
    top = WORKERS_PER_CORE * max(1, len(cores))
    if cfg.workers.count > top:
        whose = "[workers] cores names" if cfg.workers.cores else "this process may run on"
        p.append(_msg("workers.count", f"must be at most {top}, {WORKERS_PER_CORE} per core the "
                      f"workers may use ({whose} {len(cores)}): a worker proves on one core, so "
                      "more workers only time-share, each at its peak memory", cfg.workers.count))


def _check_dask(cfg: Config, host: Host, p: list[str]) -> None:
    """The Dask client is installed; the TLS files can be read."""
    w = cfg.workers
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        p.append(_msg("workers.backend", f'"dask" needs the distributed package, which is not '
                      f"installed ({exc}): pip install 'zksidecar[cluster]'", w.backend))
    for key in ("tls_ca_file", "tls_client_cert", "tls_client_key"):
        path = getattr(w, key)
        if path and not os.access(host.at(path), os.R_OK):
            why = "does not exist" if not os.path.lexists(host.at(path)) else "cannot be read"
            p.append(_msg(f"workers.{key}", f"{os.path.abspath(path)} {why} (by this process)",
                          path))


def _check_groups(cfg: Config, host: Host, p: list[str]) -> None:
    mine = host.groups()
    for key, name, needed, what in (
            ("ring.group", cfg.ring.group, cfg.ring.create, "hand the rings it creates to it"),
            ("state.group", cfg.state.group, True, "hand its state files to it")):
        if not name:
            continue
        try:
            gid = host.getgrnam(name).gr_gid
        except KeyError:
            p.append(_msg(key, "no such group", name))
            continue
        if needed and gid not in mine and host.euid() != 0:
            p.append(_msg(key, f"this process is not a member of group {name} (gid {gid}), so "
                          f"it cannot {what} (fchown fails with EPERM); under systemd add it to "
                          "SupplementaryGroups=", name))


def _check_rings(cfg: Config, host: Host, p: list[str]) -> None:
    r = cfg.ring
    to_create = []
    for key in ("ops", "completions"):
        name = getattr(r, key)
        path = os.path.join(host.shm_dir, _bare(name))
        if not os.path.lexists(path):
            if not r.create:
                p.append(_msg(f"ring.{key}", f"{path} does not exist and [ring] create is false "
                              "(the engine must create it before the daemon starts)", name))
            to_create.append(name)
            continue
        why = _existing_ring_problem(path, r.capacity) or _ring_access_problem(path, cfg, host)
        if why:
            p.append(_msg(f"ring.{key}", why, name))
    if not to_create or not r.create:
        return
    size = layout.segment_size(r.capacity)
    need = size * len(to_create)
    try:
        vfs = host.statvfs(host.shm_dir)
    except OSError as exc:
        p.append(_msg("ring.capacity", f"cannot see the free space of {host.shm_dir} "
                      f"({exc.strerror or exc}), where the rings are created", r.capacity))
        return
    free = vfs.f_bavail * vfs.f_frsize
    if need > free:
        p.append(_msg("ring.capacity", f"the {len(to_create)} ring(s) to create need "
                      f"{_gib(need)} ({_gib(size)} each: {layout.RECORDS_OFFSET} header bytes + "
                      f"capacity x {layout.RECORD_SIZE}) and {host.shm_dir} has {_gib(free)} free",
                      r.capacity))


def _existing_ring_problem(path: str, capacity: int) -> str | None:
    """Why the daemon cannot use the existing segment at `path` as a ring of
    `capacity` records (None if it can).  The daemon never re-creates an
    existing ring, and recovery keeps as many journal records for resync as
    the configured capacity, so a bigger existing ops ring could replay
    records recovery no longer recognises."""
    size = layout.FIELDS["segment_size"][0] + 8
    try:
        with open(path, "rb") as f:
            head = f.read(size)
    except OSError as exc:
        return f"the existing {path} cannot be read ({exc.strerror or exc})"
    if len(head) < size:
        return f"the existing {path} is not a ring (too short)"
    def field_(name: str) -> int:
        offset, fmt = layout.FIELDS[name]
        return struct.unpack_from(fmt, head, offset)[0]

    if field_("magic") != layout.MAGIC:
        return f"the existing {path} is not a ring (no ring magic)"
    if field_("version") != layout.VERSION or field_("record_size") != layout.RECORD_SIZE:
        return (f"the existing {path} is a ring of another layout (version {field_('version')}, "
                f"{field_('record_size')}-byte records; this build uses version {layout.VERSION}, "
                f"{layout.RECORD_SIZE}-byte records): stop the engines using it and remove it, "
                f"the daemon creates it again (engines must be rebuilt against this version)")
    if field_("capacity") != capacity:
        return (f"the existing {path} holds {field_('capacity')} records, not [ring] capacity "
                f"{capacity}: set capacity to match, or remove the ring while nothing uses it")
    return None


def _ring_access_problem(path: str, cfg: Config, host: Host) -> str | None:
    """Why the daemon's open would refuse the existing segment at `path` as
    someone else's (RingForeign: owner, group or mode), by the open's own
    check (ringbuf.check_access); None if it would not, or if [ring] group
    names no group (reported by _check_groups)."""
    group = None
    if cfg.ring.group:
        try:
            group = host.getgrnam(cfg.ring.group).gr_gid
        except KeyError:
            return None
    try:
        check_ring_access(path, owner=None if group is not None else host.euid(), group=group)
    except RingError as exc:
        return str(exc)
    return None


def _check_memory(cfg: Config, host: Host, p: list[str]) -> None:
    try:
        limit, source = host.memory()
    except Exception as exc:          # psutil or /proc unreadable: say so, never a traceback
        p.append(_msg("workers.count", f"cannot read this machine's memory ({exc})",
                      cfg.workers.count))
        return
    parts = memory_estimate(cfg)
    total = sum(parts.values())
    if total <= limit:
        return
    base, per_row = worker_bytes(cfg.proofs.mode)
    key = max((k for k in parts if k != "daemon"), key=parts.get)
    got = {"workers.count": cfg.workers.count, "book.max_symbols": cfg.book.max_symbols,
           "journal.segment_mib": cfg.journal.segment_mib,
           "limits.memory_mib": cfg.limits.memory_mib}[key]
    p.append(_msg(key, f"the daemon would need about {_gib(total)} at peak, over the "
                  f"{_gib(limit)} of {source}: {cfg.workers.count} {cfg.proofs.mode} worker(s) x "
                  f"({base >> 20} MiB + {per_row >> 10} KiB x {cfg.trace_length} trace rows) = "
                  f"{_gib(parts['workers.count'])}, "
                  f"{cfg.book.max_symbols} shadow books of {cfg.book.capacity} slots with open "
                  f"batches of up to {cfg.trace_length} steps = "
                  f"{_gib(parts['book.max_symbols'])}, a journal segment = "
                  f"{_gib(parts['journal.segment_mib'])}, the proof backlog's share of "
                  f"limits.memory_mib = {_gib(parts['limits.memory_mib'])}, the daemon itself 300 MiB "
                  "(docs/DEPLOY.md, \"Sizing\")", got))


def _creatable(path: str) -> str | None:
    """Why directory `path` (missing) could not be created by this process."""
    p = os.path.abspath(path)
    while not os.path.lexists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    if not os.path.isdir(p):
        return f"cannot be created: {p} is not a directory"
    if not os.access(p, os.W_OK | os.X_OK):
        return f"cannot be created: this process may not create entries in {p}"
    return None


def _check_state_dir(key: str, path: str, full: str, gid: int | None, p: list[str]) -> None:
    """The state directory `path` (found at `full`): creatable if missing; if
    it exists, a directory this process can write, and neither it nor the
    daemon's files in it more open than the state's permissions
    (daemon/perms.py)."""
    try:
        st = os.stat(full)
    except (FileNotFoundError, NotADirectoryError):
        why = _creatable(full)
        if why:
            p.append(_msg(key, why, path))
        return
    except OSError as exc:
        p.append(_msg(key, f"cannot be inspected ({exc.strerror or exc})", path))
        return
    if not stat.S_ISDIR(st.st_mode):
        p.append(_msg(key, f"{full} exists and is not a directory", path))
        return
    if not os.access(full, os.W_OK | os.X_OK):
        p.append(_msg(key, f"this process may not write in {full}", path))
        return
    why = perms.mode_problem(st, gid)
    if why:
        p.append(_msg(key, f"{full}: {why}; the daemon changes no mode it did not set: "
                      f"`{perms.fix_command(full, True, gid)}`", path))
        return
    ours = (lambda n: n in ("LOCK", INDEX_NAME, COPY_NAME)
            or (n.startswith(JOURNAL_PREFIX + "-") and n.endswith(JOURNAL_SUFFIX))
            or (n.startswith(STORE_PREFIX + "-") and n.endswith(STORE_SUFFIX)))
    try:
        names = sorted(n for n in os.listdir(full) if ours(n))
    except OSError as exc:
        p.append(_msg(key, f"cannot list {full} ({exc.strerror or exc})", path))
        return
    for name in names:
        f = os.path.join(full, name)
        try:
            fst = os.lstat(f)
        except OSError:
            continue
        why = perms.mode_problem(fst, gid)
        if why:
            p.append(_msg(key, f"{f}: {why}; the daemon changes no mode it did not set: "
                          f"`{perms.fix_command(full, True, gid)}`", path))
            return


def _check_socket(cfg: Config, host: Host, p: list[str]) -> None:
    sock = cfg.admin.socket
    full = os.path.abspath(sock)
    why = socket_path_problem(full)
    if why:
        p.append(_msg("admin.socket", why, sock))
    directory = os.path.dirname(full)
    found = host.at(directory)
    try:
        st = os.stat(found)
    except (FileNotFoundError, NotADirectoryError):
        if not socket_dir_is_state(cfg):
            p.append(_msg("admin.socket", f"its directory {directory} does not exist (the daemon "
                          "creates only [journal] dir, [store] dir and their parents)", sock))
    except OSError as exc:
        p.append(_msg("admin.socket", f"its directory {directory} cannot be inspected "
                      f"({exc.strerror or exc})", sock))
    else:
        if not stat.S_ISDIR(st.st_mode):
            p.append(_msg("admin.socket", f"{directory} is not a directory", sock))
        elif not os.access(found, os.W_OK | os.X_OK):
            p.append(_msg("admin.socket", f"this process may not create the socket in {directory}",
                          sock))
        elif st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            # another user could rename their own socket over ours
            p.append(_msg("admin.socket", f"its directory {directory} is mode "
                          f"{stat.S_IMODE(st.st_mode):04o}: writable by other users without the "
                          "sticky bit, so they could replace the socket", sock))
        else:
            try:
                sst = os.lstat(host.at(full))
            except OSError:
                pass
            else:
                if not stat.S_ISSOCK(sst.st_mode):
                    p.append(_msg("admin.socket", f"{full} exists and is not a socket", sock))
    port = cfg.admin.tcp_port
    if port and port < host.unprivileged_port_start() and host.euid() != 0:
        p.append(_msg("admin.tcp_port", f"ports below {host.unprivileged_port_start()} "
                      "(net.ipv4.ip_unprivileged_port_start) need a privilege this process does "
                      "not have", port))


def endpoint_problems(cfg: Config, host: Host | None = None) -> list[str]:
    """What stands in the admin endpoint's way at this moment: a live
    listener on its socket (another daemon), its TCP port taken.  These are
    not rules of the configuration (they pass once the other process is
    gone): the daemon meets them at its first step, binding the endpoint
    (daemon/service.py), and stops with `cannot start:` and exit 1, which
    systemd retries.  --check-config reports them too, by the bind's own
    checks (daemon/admin.py socket_in_use, tcp_port_problem)."""
    host = host or Host()
    p = []
    why = socket_in_use(host.at(cfg.admin.socket))
    if why:
        p.append(_msg("admin.socket", why, cfg.admin.socket))
    if cfg.admin.tcp_port:
        why = host.tcp_port_problem(cfg.admin.tcp_port)
        if why:
            p.append(_msg("admin.tcp_port", why, cfg.admin.tcp_port))
    return p


def socket_dir_is_state(cfg: Config) -> bool:
    """Whether the admin socket's directory is [journal] dir, [store] dir or
    a parent of one, which the daemon makes when missing.  It makes no other
    (a runtime directory is systemd's to make)."""
    directory = os.path.dirname(os.path.abspath(cfg.admin.socket))
    made = [os.path.abspath(d) for d in (cfg.journal.dir, cfg.store.dir)]
    return any(d == directory or d.startswith(directory + os.sep) for d in made)


# ---- reading a file ----

def load(path: str | None = None, overrides: dict | None = None, *, host: Host | None = None,
         machine: bool = True) -> Config:
    """The configuration of file `path` (None: the defaults), with
    `overrides` ({"section": {"key": value}}) applied on top, checked by
    every rule: the machine's against `host` (None: this process on this
    machine), or none of them with `machine=False`."""
    data: dict = {}
    if path is not None:
        data = _read_toml(path)
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    sections = {f.name: f for f in dataclasses.fields(Config)}
    built = {}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"unknown section [{name}] (known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"[{name}]: must be a table, got {type(values).__name__} {values!r}")
        built[name] = _section(name, sections[name].default_factory, values)
    cfg = Config(**built)
    return cfg.validate(host) if machine else cfg.validate_file()


def _read_toml(path: str) -> dict:
    """The TOML document of file `path` (at most MAX_FILE_BYTES, a regular
    file: prover/input_file.py), or ConfigError naming it and saying why not."""
    try:
        raw = input_file.read(path, MAX_FILE_BYTES, "configuration file")
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                          f"offset {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML this reader follows (arrays or tables nested "
                          "deeper than Python's recursion limit)") from None


def _section(name: str, cls, values: dict):
    known = {f.name: f for f in dataclasses.fields(cls)}
    defaults = cls()
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"[{name}] {key}: unknown key (known: {', '.join(known)})")
        default = getattr(defaults, key)
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(type(v) is int for v in value):
                raise ConfigError(f"[{name}] {key}: must be a list of integers, got {value!r}")
            value = tuple(value)
        elif type(default) is float and type(value) is int:
            value = float(value)                 # `5` for a number of seconds
        elif type(value) is not type(default):
            raise ConfigError(f"[{name}] {key}: must be {type(default).__name__}, "
                              f"got {type(value).__name__} {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def _mode_problem(cfg: Config, at: Callable[[str], str]) -> str | None:
    """What `daemon --check-config` says of the store's and the journal's
    mode against [proofs] mode (the start's judgments), or of the one it
    cannot read for it; None if the daemon may take both.  `at`: Host.at."""
    zk = cfg.proofs.mode == "zk"
    try:
        why = check_store_mode(at(cfg.store.dir), zk)
    except OSError as exc:              # a StoreError, or the directory unreadable
        return _msg("store.dir", f"the proof store cannot be opened: {exc}", cfg.store.dir)
    try:
        why = why or journal_mode_problem(at(cfg.journal.dir), zk)
    except OSError as exc:              # a JournalError: a segment it cannot read
        return _msg("journal.dir", str(exc), cfg.journal.dir)
    return why and _msg("proofs.mode", why, cfg.proofs.mode)


def check_main(path: str | None, host: Host | None = None, out=None) -> int:
    """`zksidecar daemon --check-config`: every rule, as the daemon would
    check them at start, then the mode of the journal and the store it
    would open (the start's own judgments, daemon/journal.py mode_problem
    and daemon/zk_store.py store_mode_problem); 0 and a
    summary if the configuration is usable, 2 and one line per problem (on
    stderr) if not.  Nothing is created."""
    out = out or sys.stdout
    try:
        cfg = load(path, host=host)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"zksidecar: configuration: {problem}", file=sys.stderr)
        return 2
    taken = endpoint_problems(cfg, host)
    for problem in taken:
        print(f"zksidecar: cannot start now: {problem}", file=sys.stderr)
    problem = _mode_problem(cfg, (host or Host()).at)
    if problem:
        print(f"zksidecar: configuration: {problem}", file=sys.stderr)
    if taken or problem:
        return 2
    est = sum(memory_estimate(cfg).values())
    ring = layout.segment_size(cfg.ring.capacity)
    print(f"configuration OK: {path or '(defaults)'}\n"
          f"  rings {cfg.ring.ops} and {cfg.ring.completions}: {cfg.ring.capacity} records "
          f"({_gib(ring)} each)\n"
          f"  ops rows at most {cfg.trace_length} a batch, {cfg.workers.security_bits}-bit {cfg.proofs.mode} proofs, "
          + (f"{cfg.workers.count} worker(s)" if cfg.workers.backend == "local" else
             f"proofs on the Dask cluster at {cfg.workers.scheduler}")
          + f"; peak memory estimate {_gib(est)}\n"
          f"  journal {os.path.abspath(cfg.journal.dir)}, store {os.path.abspath(cfg.store.dir)}, "
          f"admin socket {os.path.abspath(cfg.admin.socket)}"
          + (f", state group {cfg.state.group}" if cfg.state.group else ", state owner-only"),
          file=out)
    return 0

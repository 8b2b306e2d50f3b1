"""The daemon's configuration: a TOML file in which every key has a default.

No file is needed on a developer machine: rings under /dev/shm named for the
user, state under ./var.  A file overrides what it names; a key this module
does not know, or a value of the wrong type or range, is an error naming the
key (a typo must not silently fall back to a default).  docs/DEPLOY.md lists
every key; systemd/zksidecar.toml.example is a commented copy.
"""
from __future__ import annotations

import dataclasses
import getpass
import os
import tomllib
from dataclasses import dataclass, field

from ..ringbuf.ring import IDLE_STRATEGIES
from .journal import FSYNC_POLICIES


class ConfigError(ValueError):
    """A configuration file that cannot be used as it is."""


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


@dataclass(frozen=True)
class JournalConfig:
    dir: str = "./var/journal"
    segment_mib: int = 64
    fsync: str = "batch"             # always | batch | interval | never
    fsync_interval_ms: int = 10


@dataclass(frozen=True)
class BookConfig:
    capacity: int = 1024             # order slots per symbol; a power of two >= 16
    trace_length: int = 0            # rows per proof; 0: sized for max_batch_size
    max_symbols: int = 256           # shadow books at most; records of further symbols are refused
    resync_after: int = 16           # records in a row past a gap that make a stream resume there


@dataclass(frozen=True)
class BatchConfig:
    max_batch_size: int = 1024       # operations (with book.capacity 1024: a 4096-row trace, ~full)
    batch_timeout_ms: int = 100      # an open batch older than this closes
    critical_qty: int = 0            # an operation of at least this quantity is Critical; 0: off
    max_pending: int = 64            # batches waiting for proofs above which /status says "behind"
    critical_per_s: float = 10.0     # Critical operations a second that close their batch; 0: all


@dataclass(frozen=True)
class WorkersConfig:
    count: int = 1
    cores: tuple[int, ...] = ()      # cores the workers are pinned to, cycled; (): not pinned
    security_bits: int = 100
    stop_grace_s: float = 5.0        # a clean stop waits this long for proofs in flight


@dataclass(frozen=True)
class StoreConfig:
    dir: str = "./var/proofs"
    fsync: bool = True


@dataclass(frozen=True)
class AdminConfig:
    socket: str = "./var/admin.sock"    # daemon/admin.py DEFAULT_SOCKET
    tcp_port: int = 0                # 0: off; otherwise 127.0.0.1 only


@dataclass(frozen=True)
class Config:
    ring: RingConfig = field(default_factory=RingConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    book: BookConfig = field(default_factory=BookConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)

    def validate(self) -> "Config":
        def need(ok: bool, key: str, why: str) -> None:
            if not ok:
                raise ConfigError(f"{key}: {why}")

        pow2 = lambda v: v > 0 and v & (v - 1) == 0  # noqa: E731
        need(pow2(self.ring.capacity) and self.ring.capacity >= 16, "ring.capacity",
             f"must be a power of two >= 16, got {self.ring.capacity}")
        need(self.ring.idle in IDLE_STRATEGIES, "ring.idle",
             f"must be one of {', '.join(IDLE_STRATEGIES)}, got {self.ring.idle!r}")
        need(self.ring.ops != self.ring.completions, "ring.completions", "must differ from ring.ops")
        need(self.journal.fsync in FSYNC_POLICIES, "journal.fsync",
             f"must be one of {', '.join(FSYNC_POLICIES)}, got {self.journal.fsync!r}")
        need(self.journal.segment_mib >= 1, "journal.segment_mib", "must be at least 1")
        need(self.journal.fsync_interval_ms >= 1, "journal.fsync_interval_ms", "must be at least 1")
        need(pow2(self.book.capacity) and 16 <= self.book.capacity <= 1 << 20, "book.capacity",
             f"must be a power of two from 16 to 2^20, got {self.book.capacity}")
        t = self.book.trace_length
        need(t == 0 or (pow2(t) and t >= self.book.capacity and t <= 1 << 24), "book.trace_length",
             f"must be 0 (auto) or a power of two from book.capacity to 2^24, got {t}")
        need(self.book.max_symbols >= 1, "book.max_symbols", "must be at least 1")
        need(self.book.resync_after >= 1, "book.resync_after", "must be at least 1")
        need(0 <= self.batch.critical_per_s < float("inf"), "batch.critical_per_s",
             f"must be a number >= 0 (0: no limit), got {self.batch.critical_per_s}")
        need(0 <= self.workers.stop_grace_s <= 3600, "workers.stop_grace_s",
             f"must be from 0 to 3600 seconds, got {self.workers.stop_grace_s}")
        need(self.batch.max_batch_size >= 1, "batch.max_batch_size", "must be at least 1")
        need(self.batch.batch_timeout_ms >= 1, "batch.batch_timeout_ms", "must be at least 1")
        need(self.batch.critical_qty >= 0, "batch.critical_qty", "must be >= 0 (0: off)")
        need(self.batch.max_pending >= 1, "batch.max_pending", "must be at least 1")
        need(self.workers.count >= 1, "workers.count", "must be at least 1")
        need(all(c >= 0 for c in self.workers.cores), "workers.cores", "cores are >= 0")
        need(self.ingest.core >= -1, "ingest.core", "must be a core id or -1")
        need(80 <= self.workers.security_bits <= 128, "workers.security_bits",
             f"must be from 80 to 128, got {self.workers.security_bits}")
        need(0 <= self.admin.tcp_port < 65536, "admin.tcp_port", "must be 0 (off) or a port")
        return self


def load(path: str | None = None, overrides: dict | None = None) -> Config:
    """The configuration of file `path` (None: the defaults), with
    `overrides` ({"section": {"key": value}}) applied on top."""
    data: dict = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    sections = {f.name: f for f in dataclasses.fields(Config)}
    built = {}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"unknown section [{name}] (known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{name}: must be a table ([{name}])")
        built[name] = _section(name, sections[name].default_factory, values)
    return Config(**built).validate()


def _section(name: str, cls, values: dict):
    known = {f.name: f for f in dataclasses.fields(cls)}
    defaults = cls()
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown key (known: {', '.join(known)})")
        default = getattr(defaults, key)
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(type(v) is int for v in value):
                raise ConfigError(f"{name}.{key}: must be a list of integers")
            value = tuple(value)
        elif type(default) is float and type(value) is int:
            value = float(value)                 # `5` for a number of seconds
        elif type(value) is not type(default):
            raise ConfigError(f"{name}.{key}: must be {type(default).__name__}, "
                              f"got {type(value).__name__} {value!r}")
        kwargs[key] = value
    return cls(**kwargs)

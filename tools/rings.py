"""`zksidecar rings list|clean [NAME...]`: ring segments left in /dev/shm.

A daemon that crashes at start, or is killed, leaves its rings behind (the
rings outlive their processes on purpose: an engine keeps publishing across
a daemon restart).  `list` shows each one as its header records it: size,
mode and capacity, the consumer's pid and whether it is alive, the
producers registered.  `clean` removes those no process uses any more and
that hold no record still to be read.

Which segments: the names given, or else every segment in /dev/shm named as
the daemon names its rings by default (`zksidecar-<user>-ops`,
`zksidecar-<user>-completions`: daemon/config.py RingConfig), i.e. starting
with "zksidecar-".  A file there that is not a ring is never touched; named
explicitly, it is refused (exit 2).

Liveness is zkring.h's own judgement of the identity words in the header
(zkring__ident_status, through ringbuf.inspect): a pid that exists with
the recorded start time is alive, and a pid recorded in another pid
namespace counts as alive here (it cannot be checked).  `clean` removes a
ring only if its consumer is not alive, no registered producer is alive,
no process maps it (/proc/*/maps, where this user can read them) and taking the consumer role itself
succeeds (the C's compare-and-swap refuses while a live consumer holds it:
a daemon starting meanwhile keeps its ring).

A ring holding records nobody has read yet is data, not litter: in an ops
ring they are operations an engine published while the daemon was down
(the next daemon journals and proves them), in a completion ring the
proofs' completions the engine has not read.  `clean` keeps such a ring,
names it with its count, and exits 1, unless `--discard-records` says to
throw them away.  The count is read again once `clean` holds the consumer
role, so a record published after the first look is not lost either.
"""
from __future__ import annotations

import os
import sys

from zksidecar.ringbuf import ring as R

SHM_DIR = "/dev/shm"
#: the prefix of the daemon's default ring names (daemon/config.py RingConfig)
PREFIX = "zksidecar-"


def _names(given: list[str]) -> tuple[list[str], bool]:
    if given:
        return [n[len(SHM_DIR) + 1:] if n.startswith(SHM_DIR + "/") else n.lstrip("/")
                for n in given], True
    try:
        found = sorted(n for n in os.listdir(SHM_DIR) if n.startswith(PREFIX))
    except OSError:
        found = []
    return found, False


def mapped_by(path: str, exclude: int | None = None) -> tuple[list[int], list[int]]:
    """Processes that map `path` (pids), and those of this user whose maps
    cannot be read (a note only: every process that uses a ring through
    zkring.h holds a role or a registry entry, which clean checks first)."""
    uid = os.geteuid()
    maps, unknown = [], []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == exclude:
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{entry}/maps", "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue                        # exited meanwhile
        except OSError:
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    unknown.append(pid)
            except OSError:
                pass
            continue
        needle = path.encode()
        for line in data.splitlines():
            if line.endswith(needle) or line.endswith(needle + b" (deleted)"):
                maps.append(pid)
                break
    return maps, unknown


def _holder(pid: int, status: str) -> str:
    return "none" if status == "none" else f"{pid} {status}"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _inspect(name: str, explicit: bool, command: str):
    """(RingInfo, None), or (None, exit status) after saying why there is none."""
    try:
        return R.inspect(name), None
    except R.NotARing as exc:
        if explicit:
            print(f"zksidecar rings {command}: {exc}; left alone", file=sys.stderr)
            return None, 2
        return None, 0                      # a file with our prefix that is not a ring: not ours
    except R.RingMissing:
        if explicit:
            print(f"zksidecar rings {command}: {R._path(name)} does not exist", file=sys.stderr)
            return None, 2
        return None, 0
    except R.RingError as exc:
        print(f"zksidecar rings {command}: {exc.for_cli}", file=sys.stderr)
        return None, 2 if explicit else 1


def list_main(names: list[str], out=None) -> int:
    out = out or sys.stdout
    names, explicit = _names(names)
    rows, status = [], 0
    for name in names:
        info, rc = _inspect(name, explicit, "list")
        status = max(status, rc or 0)
        if info is None:
            continue
        users, _ = mapped_by(info.path)
        producers = ", ".join(_holder(p, s) for p, s in info.producers) or "none"
        rows.append((info.name, _size(info.file_size), f"{info.ring_mode} {info.capacity}",
                     str(info.depth), _holder(info.consumer_pid, info.consumer), producers,
                     " ".join(map(str, users)) or "none"))
    if not rows:
        if status == 0:
            print(f"no zksidecar rings in {SHM_DIR}" if not explicit else "no rings", file=out)
        return status
    head = ("name", "size", "mode capacity", "waiting", "consumer", "producers", "mapped by")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)
    return status


def _why_kept(info: R.RingInfo) -> str | None:
    if info.consumer in ("alive", "foreign"):
        return f"its consumer, pid {info.consumer_pid}, is {info.consumer}" + \
            (" (another pid namespace: cannot tell if it lives)" if info.consumer == "foreign" else "")
    live = [p for p, s in info.producers if s in ("alive", "foreign")]
    if live:
        return f"producer pid {', '.join(map(str, live))} is alive"
    users, _ = mapped_by(info.path)
    if users:
        return f"mapped by pid {', '.join(map(str, users))}"
    return None


class _HoldsRecords(Exception):
    """A ring kept because it holds `count` records no consumer has read."""

    def __init__(self, count: int):
        super().__init__(count)
        self.count = count


def _unread(info: R.RingInfo, count: int) -> str:
    return (f"{count} records no consumer has read (in an ops ring, operations a daemon has "
            "still to journal and prove; in a completion ring, completions an engine has still "
            f"to read): `zksidecar rings clean --discard-records {info.name}` throws them away")


def clean_main(names: list[str], out=None, discard_records: bool = False) -> int:
    """0 if every ring was removed or is kept because something uses it; 1
    if one is kept because it holds unread records (without
    `discard_records`); 2 for a name given that is not a ring."""
    out = out or sys.stdout
    names, explicit = _names(names)
    status = removed = kept = 0
    for name in names:
        info, rc = _inspect(name, explicit, "clean")
        status = max(status, rc or 0)
        if info is None:
            continue
        why, discarded, holds = _clean_one(info, discard_records)
        if holds:
            status = max(status, 1)
        if why is None:
            removed += 1
            print(f"removed {info.path} ({info.ring_mode} {info.capacity}, "
                  + (f"{discarded} unread records discarded)" if discarded else "empty)"),
                  file=out)
        else:
            kept += 1
            print(f"kept {info.path}: {why}", file=out)
    if not removed and not kept and status == 0:
        print(f"no zksidecar rings in {SHM_DIR}", file=out)
    return status


def _clean_one(info: R.RingInfo, discard_records: bool) -> tuple[str | None, int, bool]:
    """Remove one ring if nothing uses it and it is empty (or
    `discard_records`): (why it is kept or None, records discarded, whether
    it is kept for its unread records)."""
    why = _why_kept(info)
    if why is not None:
        return why, 0, False
    try:
        if info.depth and not discard_records:
            raise _HoldsRecords(info.depth)
        why, discarded = _claim_and_unlink(info, discard_records)
        return why, discarded, False
    except _HoldsRecords as held:
        return _unread(info, held.count), 0, True


def _claim_and_unlink(info: R.RingInfo, discard_records: bool) -> tuple[str | None, int]:
    """Take the consumer role (refused while a live consumer holds it, by
    the C's compare-and-swap), count the unread records and check the maps
    once more, unlink, let go.  (None, records discarded) if removed, else
    (why not, 0); _HoldsRecords if records wait and `discard_records` is
    false."""
    group = info.gid if info.mode & 0o070 else None
    try:
        consumer = R.Consumer(info.name, info.record_size, unblock_after=None, group=group)
    except R.RingBusy as exc:
        return f"a live consumer holds it (pid {exc.pid})", 0
    except R.RingError as exc:
        return exc.for_cli, 0
    try:
        unread = consumer.depth
        if unread and not discard_records:
            raise _HoldsRecords(unread)
        users, _ = mapped_by(info.path, exclude=os.getpid())
        if users:
            return f"mapped by pid {', '.join(map(str, users))}", 0
        try:
            R.unlink(info.name)
        except R.RingError as exc:
            return str(exc), 0
        return None, unread
    finally:
        consumer.close()

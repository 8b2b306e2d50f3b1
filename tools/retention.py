"""`zksidecar store prune|archive`: remove a proof store's old segments, or
move their proofs out first (docs/ADMIN.md, "Retention of proofs").

The store decides what may go (ProofStore.plan_retention: whole segments,
never a symbol's newest batch, never a proof after one that stays) and
removes it (remove_segments: the index marks them archived, then the files
go).  `archive --to DIR` first copies every proof that goes into
DIR/symbol-S as `zksidecar export` writes a chain (tools/proofs.copy_chain,
prover/orderbook/manifest.py), extending the chain an earlier archive left
there, so `zksidecar verify DIR/symbol-S` verifies the archived batches from
the empty book.  What it makes (directories, proofs, the manifest, the
store's new index) is shared as the store directory is, whatever the umask
(daemon/perms.py, group_of_dir); a directory that holds no store is refused,
never made one.  Only with the store's LOCK: never beside a running daemon
(which prunes by itself with `store.retain`).

A zk store's batches have private files (daemon/zk_store.py): `prune`
removes them with their proofs; `archive` moves them, each with its batch
key, into DIR/symbol-S/private before the proofs' manifest is written
(daemon/zk_archive.py), so `zksidecar receipt --store DIR ...` makes their
receipts.  The order makes a run safe to stop anywhere: the archive's
files (synced), then its manifest, then the store's index, its segments,
its private files.  A second run completes a stopped one: it removes the
store's private files of batches already archived, and takes over an
archive directory the stopped run left (its files without a manifest yet,
or a manifest listing batches the store has not archived yet, which must
be byte for byte the store's).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import sys
import time

from zksidecar.daemon import perms
from zksidecar.daemon.config import parse_duration
from zksidecar.daemon.store import ProofStore, RetentionPlan, StoreError, not_a_store
from zksidecar.daemon.zk_archive import archive_private, symbol_dir
from zksidecar.daemon.zk_store import (CHAIN_NAME, ZkStoreError, holds_zk, is_zk_store, open_for_receipts,
                                      prune_private)
from zksidecar.prover.orderbook import manifest
from zksidecar.prover.proof import ProofFormatError

from .proofs import copy_chain


class _Usage(Exception):
    """Bad flags, a store in use, an archive that does not continue: exit 2."""


def _in_use(directory: str) -> bool:
    """Is the store's LOCK held (a daemon, or another prune)?"""
    try:
        fd = os.open(os.path.join(directory, "LOCK"), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


IN_USE = ("is in use: its LOCK is held (a running daemon?). Stop the daemon first, or let it "
          "prune by itself at its checkpoints with [store] retain")


def _describe(plan: RetentionPlan, verb: str) -> list[str]:
    lines = [f"symbol {s}: batches {a}..{b} ({n} proofs) {verb}"
             for s, (a, b, n) in sorted(plan.batches.items())]
    segs = plan.segments
    lines.append(f"{len(segs)} segment(s) ({', '.join(map(str, segs[:8]))}"
                 f"{' …' if len(segs) > 8 else ''}), {plan.proofs} proofs, "
                 f"{plan.bytes / (1 << 20):,.1f} MiB")
    return lines


#: what an archive directory holds before its first manifest: a stopped run's files
#: (and the temporary names copy_chain writes them under; manifest.json.tmpPID
#: is an earlier release's)
_ARCHIVE_FILES = re.compile(r"batch-\d+\.zkb|\.batch-\d+\.zkb\.tmp|private|\.manifest\.json\.tmp|"
                            r"manifest\.json\.tmp\d+")


def _archive_dirs(to: str, plan: RetentionPlan,
                  store: ProofStore) -> dict[int, tuple[str, list[manifest.Entry]]]:
    """Per symbol the directory its proofs go to and the entries its
    manifest keeps (those before the plan's first batch); _Usage if one
    holds a chain they do not continue.  A directory a stopped run left is
    taken over: files without a manifest, or a manifest whose batches from
    the plan's first on are the store's own proofs (SHA-256), written again."""
    out = {}
    for symbol, (first, last, _) in sorted(plan.batches.items()):
        d = symbol_dir(to, symbol)
        entries: list[manifest.Entry] = []
        names = os.listdir(d) if os.path.isdir(d) else []
        if names:
            try:
                m = manifest.read(d)
            except FileNotFoundError:
                stray = [n for n in names if not _ARCHIVE_FILES.fullmatch(n)]
                if stray:
                    raise _Usage(f"{d} is not an archive this command wrote (no {manifest.NAME}, and "
                                 f"{stray[0]} in it): give another --to") from None
                out[symbol] = (d, entries)      # a first archive stopped before its manifest
                continue
            except (OSError, manifest.ManifestError) as exc:
                raise _Usage(f"{d} is not an archive this command wrote ({exc}): give another "
                             "--to") from None
            entries = [e for e in m.batches if e.batch_id < first]
            again = [e for e in m.batches if e.batch_id >= first]
            ids = [e.batch_id for e in m.batches]
            if m.symbol != symbol or (entries and entries[-1].batch_id + 1 != first) \
                    or ids[len(entries):] != list(range(first, first + len(again))) \
                    or (again and again[-1].batch_id > last) \
                    or any(_stored_sha(store, symbol, e.batch_id) != e.sha256 for e in again):
                raise _Usage(f"{d} holds symbol {m.symbol} batches {m.batches[0].batch_id}.."
                             f"{m.batches[-1].batch_id}; these proofs start at batch {first}: "
                             "give a new --to, or the directory of the archive they continue")
        out[symbol] = (d, entries)
    return out


def _damaged(store: ProofStore, plan: RetentionPlan) -> list[str]:
    """Each proof `plan` removes that fails its checksums (ProofStore.check),
    one line each: every one is read."""
    found = []
    for s, (a, b, _) in sorted(plan.batches.items()):
        for bid in store.batches(s):
            if a <= bid <= b and (problem := store.check(s, bid)):
                found.append(f"symbol {s} batch {bid}: {problem}")
    return found


def _stored_sha(store: ProofStore, symbol: int, batch_id: int) -> str | None:
    try:
        return hashlib.sha256(store.get(symbol, batch_id)).hexdigest()
    except (StoreError, KeyError):
        return None


class _Progress:
    """`archiving: k/n proofs` on stderr, redrawn at most four times a second."""

    def __init__(self, total: int, show: bool):
        self.total, self.done, self.show, self.drawn = total, 0, show, 0.0

    def __call__(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.show and (now - self.drawn >= 0.25 or self.done == self.total):
            self.drawn = now
            sys.stderr.write(f"\rarchiving: {self.done:,}/{self.total:,} proofs ")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def main(action: str, store_dir: str, older_than: str | None, keep: int | None,
         symbol: int | None, dry_run: bool, to: str | None = None,
         progress: bool | None = None, out=None) -> int:
    """`zksidecar store prune|archive`: 0 done (or nothing to do, said so),
    1 a proof that could not be archived (nothing removed) or a damaged
    proof pruned (said; the rest as for 0), 2 bad usage or a store that
    cannot be opened, or is in use."""
    cmd = f"zksidecar store {action}"
    out = out or sys.stdout
    try:
        return _run(action, store_dir, older_than, keep, symbol, dry_run, to, progress, out)
    except _Usage as exc:
        print(f"{cmd}: {exc}", file=sys.stderr)
        return 2


def _run(action, store_dir, older_than, keep, symbol, dry_run, to, progress, out) -> int:
    if (older_than is None) == (keep is None):
        raise _Usage("give --older-than AGE or --keep N (one of them)")
    age = None
    if older_than is not None:
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise _Usage(f"--older-than: {exc}") from None
        if age == float("inf"):
            raise _Usage("--older-than forever removes nothing: give an age such as 30d")
    if keep is not None and keep < 1:
        raise _Usage(f"--keep {keep}: a symbol's newest batch always stays; give at least 1")
    if (action == "archive") != (to is not None):
        raise _Usage("archive needs --to DIR" if to is None else "--to goes with archive")
    problem = not_a_store(store_dir)        # before its LOCK is looked for (or made)
    if problem:
        raise _Usage(f"{store_dir}: {problem}")
    if _in_use(store_dir):
        raise _Usage(f"proof store {store_dir} {IN_USE}")
    # what this command writes (the store's new index, the archive) is shared as the store is
    group = perms.group_of_dir(store_dir)
    try:
        store = ProofStore(store_dir, readonly=dry_run, group=group, drop_torn_tail=False,  # the daemon's to drop
                           create=False)
    except (StoreError, OSError) as exc:
        if getattr(exc, "errno", None) == errno.EBUSY:      # taken since the check above
            raise _Usage(f"proof store {store_dir} {IN_USE}") from None
        raise _Usage(f"{store_dir}: {exc}") from None
    zk = None
    with store:
        for line in store.damage:
            print(f"zksidecar store {action}: {line}", file=sys.stderr)
        for line in store.repairs:
            print(f"zksidecar store {action}: repaired: {line}", file=out)
        if store.torn_tail:
            print(f"{store.torn_tail}: left in place (a put a crash cut short; the daemon drops it "
                  "when it next opens the store)", file=out)
        held_zk = holds_zk(store)       # by its proofs too: its zk-chain.json may be lost
        if held_zk:
            if action == "archive" and not is_zk_store(store_dir):
                # its private files would stay behind, and the next prune remove them
                raise _Usage(f"{store_dir} holds zk proofs and its {CHAIN_NAME} is missing: restore it from "
                             "the store's backup (docs/DEPLOY.md, \"Backing up a zk store\"); an archive "
                             "without it would leave the archived batches' private files out; nothing was "
                             "removed")
            try:        # a zk archive writes each batch's key: the store's key first
                zk = open_for_receipts(store_dir) if action == "archive" else None
            except ZkStoreError as exc:
                raise _Usage(f"{store_dir}: {exc}: a zk store's archive writes each batch's key from the "
                             "store key (restore it from the store's backup; `store prune` needs no key)") from None
            if not dry_run:         # a run that stopped after the index: its private files go now
                gone = prune_private(store_dir, store)
                if gone:
                    print(f"{store_dir}: removed {gone} private file(s) of proofs archived by a run that "
                          "stopped before removing them", file=out)
        if symbol is not None and store.no_symbol(symbol):
            raise _Usage(store.no_symbol(symbol))
        plan = store.plan_retention(age, keep, None if symbol is None else {symbol})
        # each proof prune removes is read first: bit rot is said, never passed
        # over (archive reads, so checks, each proof it copies, and refuses a damaged one)
        damaged = _damaged(store, plan) if to is None else []
        for line in damaged:
            print(f"zksidecar store {action}: {line}: damaged at rest (its checksums are of the bytes "
                  f"stored); {'would be' if dry_run else 'is'} removed with its segment, its batch "
                  "archived as the others (docs/STORE.md, \"Retention of a damaged proof\"): check the disk",
                  file=sys.stderr)
        if not plan.segments:
            print(f"{store_dir}: nothing to {action}: every segment holds a proof that stays "
                  "(one within the limit, a symbol's newest batch or one after it, or the "
                  f"segment being written); {len(store)} proofs, {store.archived_count()} of them "
                  "archived already", file=out)
            return 0
        verb = ("would be " if dry_run else "") + ("archived" if action == "archive" else "removed")
        dirs = _archive_dirs(to, plan, store) if to is not None else {}
        for line in _describe(plan, verb + (f" to {to}" if to else "")):
            print(line, file=out)
        if dry_run:
            print("dry run: nothing changed", file=out)
            return 1 if damaged else 0
        if to is not None:
            show = sys.stderr.isatty() if progress is None else progress
            advance = _Progress(plan.proofs, show)
            for s, (a, b, _) in sorted(plan.batches.items()):
                d, entries = dirs[s]
                ids = [bid for bid in store.batches(s) if a <= bid <= b]
                try:
                    perms.make_dirs(d, group)       # an existing --to keeps the operator's mode
                    if zk is not None:      # before the manifest: what it lists has its private data
                        for note in archive_private(zk, store, s, ids, d):
                            print(f"zksidecar store archive: {note}", file=sys.stderr)
                    copy_chain(store, s, ids, d, entries, advance, group)
                except (StoreError, ProofFormatError) as exc:
                    print(f"zksidecar store archive: symbol {s}: {exc}; nothing was removed",
                          file=sys.stderr)
                    return 1
                except ZkStoreError as exc:
                    raise _Usage(f"{exc}; nothing was removed") from None
                except OSError as exc:
                    raise _Usage(f"{d}: {exc.strerror or exc}; nothing was removed") from None
        try:
            store.remove_segments(plan)
        except StoreError as exc:
            print(f"zksidecar store {action}: {exc}", file=sys.stderr)
            return 1
        if held_zk:
            gone = prune_private(store_dir, store)
            print(f"{gone} private file(s) " + (f"moved to {to}" if to else "removed with their proofs"),
                  file=out)
    print(f"done: {plan.proofs} proofs {'archived' if to else 'removed'}; "
          + (f"check the archive with `zksidecar verify {os.path.join(to, 'symbol-S')}`; "
             if to else "")
          + (f"receipts of archived batches: `zksidecar receipt --store {to} ...`; " if to and zk else "")
          + f"`zksidecar verify --store {store_dir}` verifies each symbol from its first kept batch",
          file=out)
    return 1 if damaged else 0

"""`zksidecar store prune|archive`: remove a proof store's old segments, or
move their proofs out first (docs/ADMIN.md, "Retention of proofs").

The store decides what may go (ProofStore.plan_retention: whole segments,
never a symbol's newest batch, never a proof after one that stays) and
removes it (remove_segments: the index marks them archived, then the files
go).  `archive --to DIR` first copies every proof that goes into
DIR/symbol-S as `zksidecar export` writes a chain (tools/proofs.copy_chain,
prover/orderbook/manifest.py), extending the chain an earlier archive left
there, so `zksidecar verify DIR/symbol-S` verifies the archived batches from
the empty book.  Only with the store's LOCK: never beside a running daemon
(which prunes by itself with `store.retain`).
"""
from __future__ import annotations

import errno
import fcntl
import os
import sys
import time

from zksidecar.daemon.config import parse_duration
from zksidecar.daemon.store import ProofStore, RetentionPlan, StoreError
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


def _archive_dirs(to: str, plan: RetentionPlan) -> dict[int, tuple[str, list[manifest.Entry]]]:
    """Per symbol the directory its proofs go to and the entries its
    manifest holds already; _Usage if one holds a chain they do not continue."""
    out = {}
    for symbol, (first, _, _) in sorted(plan.batches.items()):
        d = os.path.join(to, f"symbol-{symbol}")
        entries: list[manifest.Entry] = []
        if os.path.isdir(d) and os.listdir(d):
            try:
                m = manifest.read(d)
            except (OSError, manifest.ManifestError) as exc:
                raise _Usage(f"{d} is not an archive this command wrote ({exc}): give another "
                             "--to") from None
            if m.symbol != symbol or m.batches[-1].batch_id + 1 != first:
                raise _Usage(f"{d} holds symbol {m.symbol} batches {m.batches[0].batch_id}.."
                             f"{m.batches[-1].batch_id}; these proofs start at batch {first}: "
                             "give a new --to, or the directory of the archive they continue")
            entries = list(m.batches)
        out[symbol] = (d, entries)
    return out


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
    1 a proof that could not be archived (nothing removed), 2 bad usage or a
    store that cannot be opened, or is in use."""
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
    if not os.path.isdir(store_dir):
        raise _Usage(f"{store_dir}: no such proof store directory")
    if _in_use(store_dir):
        raise _Usage(f"proof store {store_dir} {IN_USE}")
    try:
        store = ProofStore(store_dir, readonly=dry_run)
    except (StoreError, OSError) as exc:
        if getattr(exc, "errno", None) == errno.EBUSY:      # taken since the check above
            raise _Usage(f"proof store {store_dir} {IN_USE}") from None
        raise _Usage(f"{store_dir}: {exc}") from None
    with store:
        if symbol is not None and symbol not in store.symbols():
            held = ", ".join(map(str, store.symbols())) or "none"
            raise _Usage(f"{store_dir} holds no proofs of symbol {symbol} (symbols stored: {held})")
        plan = store.plan_retention(age, keep, None if symbol is None else {symbol})
        if not plan.segments:
            print(f"{store_dir}: nothing to {action}: every segment holds a proof that stays "
                  "(one within the limit, a symbol's newest batch or one after it, or the "
                  f"segment being written); {len(store)} proofs, {store.archived_count()} of them "
                  "archived already", file=out)
            return 0
        verb = ("would be " if dry_run else "") + ("archived" if action == "archive" else "removed")
        dirs = _archive_dirs(to, plan) if to is not None else {}
        for line in _describe(plan, verb + (f" to {to}" if to else "")):
            print(line, file=out)
        if dry_run:
            print("dry run: nothing changed", file=out)
            return 0
        if to is not None:
            show = sys.stderr.isatty() if progress is None else progress
            advance = _Progress(plan.proofs, show)
            for s, (a, b, _) in sorted(plan.batches.items()):
                d, entries = dirs[s]
                ids = [bid for bid in store.batches(s) if a <= bid <= b]
                try:
                    os.makedirs(d, exist_ok=True)
                    copy_chain(store, s, ids, d, entries, advance)
                except (StoreError, ProofFormatError) as exc:
                    print(f"zksidecar store archive: symbol {s}: {exc}; nothing was removed",
                          file=sys.stderr)
                    return 1
                except OSError as exc:
                    raise _Usage(f"{d}: {exc.strerror or exc}; nothing was removed") from None
        try:
            store.remove_segments(plan)
        except StoreError as exc:
            print(f"zksidecar store {action}: {exc}", file=sys.stderr)
            return 1
    print(f"done: {plan.proofs} proofs {'archived' if to else 'removed'}; "
          + (f"check the archive with `zksidecar verify {os.path.join(to, 'symbol-S')}`; "
             if to else "")
          + f"`zksidecar verify --store {store_dir}` verifies each symbol from its first kept batch",
          file=out)
    return 0

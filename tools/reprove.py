"""`zksidecar reprove --config FILE [--symbol S]`: the stored proofs whose
bytes fail their checksums, proven again from the journal.

The daemon's recovery proves again a damaged proof of a batch it replays
(those after the newest snapshot, and the unproven ones before it); a
proof damaged at rest further back is found only by a reader (`zksidecar
verify --store`, `export`), and nothing replays its batch.  This command
does, with the daemon stopped (it takes the journal's and the store's
LOCK): every stored proof of the symbols asked for is checked
(ProofStore.check), and each damaged one whose batch mark the journal still
holds is rebuilt as the backlog rebuilds a batch (daemon/rebuild.py: from
the newest snapshot that does not count it yet, replaying forward), proven
at [workers] security_bits, checked to prove exactly that batch
(jobs.accept_proof), checked to link with the stored chain's neighbours
(its pre-state the post-state of the batch before it, or the empty book for
batch 0; its post-state the pre-state of the batch after it: ChainCheck),
and stored superseding the damaged bytes (ProofStore.put(replace=True)).
In zk mode the batch is proven as the daemon proves it: its keys derived
from the store key by the symbol's chain (ProofJob.of with the ZkStore's
chains), and its private file written again before the proof is stored, as
the finisher writes it; both are functions of the batch and the store key,
so the new proof and private file are the bytes the daemon wrote.

A batch the journal no longer holds (journal.retain removed its segments,
or no snapshot before it is kept) cannot be proven again from anything the
daemon has: the message says so, and what is left to the operator (a
backup's copy of the store segment).

The store and the journal are checked for their mode as the daemon's
start checks them (zk_store.open_store_mode, which the start runs): a zk
store or a zk chain's journal under a transparent configuration is
refused, or its batches would be proven, and stored, in the clear; a zk
store's key and chain record must be there and of this configuration.  The
journal is only read (a torn tail at its end is named and left for the
daemon's next start to drop); the journal and the store are opened, never
made (a configuration naming other directories makes nothing, nor does a zk
configuration a zk chain where the store holds none), and what is written
is shared with [state] group as the daemon's files are.

Exit status: 0 when every damaged proof was proven again (or there was
none), 1 if one could not be, 2 for bad usage (a configuration, a journal
or store that cannot be opened or is not there, a --symbol the store holds
no proof of, a store of the other mode, its key missing, a running daemon).
"""
from __future__ import annotations

import errno
import os
import sys

from zksidecar.daemon.config import Config, ConfigError, load
from zksidecar.daemon.jobs import ProofJob, ProofRejected, accept_proof, prove_job
from zksidecar.daemon.journal import BatchMark, Journal, JournalError, ReplayMismatch
from zksidecar.daemon.rebuild import Rebuilder, sequencer_of
from zksidecar.daemon.store import ProofStore, StoreArchived, StoreCorrupt, StoreError
from zksidecar.daemon.zk_store import NoZkChain, ZkStore, ZkStoreError, open_store_mode
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.orderbook.batch import ChainCheck, Checked, check_alone
from zksidecar.prover.proof import ProofFormatError
from zksidecar.prover.verify import VerificationError

#: what a held LOCK most likely means
BUSY = " (is the daemon running? stop it first)"


def main(config_path: str | None, symbol: int | None = None, out=None) -> int:
    out = out or sys.stdout
    try:
        cfg = load(config_path, machine=False)
    except ConfigError as exc:
        return _usage(f"configuration: {exc}")
    zk = cfg.proofs.mode == "zk"
    group = cfg.state.group or None      # what it writes is shared as the daemon's state is
    if not os.path.isdir(cfg.journal.dir):  # opened, never made (as the store below)
        return _usage(f"journal {cfg.journal.dir}: no such directory")
    other = _not_the_owner(cfg.journal.dir, cfg.store.dir)
    if other:
        return _usage(other)
    try:
        store = ProofStore(cfg.store.dir, cfg.store.fsync, group=group, create=False)
    except (StoreError, OSError) as exc:
        return _refused(exc)
    with store:
        # the start's own checks (open_store_mode, as the daemon runs them): a transparent
        # re-proof of a zk chain's batch would store its records in the clear.  In zk mode a
        # store holding no zk chain is refused, not made one (make=False)
        try:
            zk_store = open_store_mode(store, zk, security_bits=cfg.workers.security_bits,
                                       capacity=cfg.book.capacity, ops_length=cfg.trace_length,
                                       fsync=cfg.store.fsync, journal_dir=cfg.journal.dir, make=False)
        except NoZkChain as exc:
            return _usage(f"{exc}: nothing of a zk chain to prove again")
        except (ZkStoreError, OSError) as exc:     # OSError: a JournalError, a segment it cannot read
            return _usage(str(exc))
        try:
            journal = Journal(cfg.journal.dir, cfg.journal.segment_mib << 20, cfg.journal.fsync, group=group,
                              zk=zk, reader=True)
        except (JournalError, OSError) as exc:
            return _refused(exc)
        if journal.torn_tail:
            print(f"zksidecar reprove: note: {journal.torn_tail}: a write a crash cut short, left in place "
                  "(the daemon drops it when it next starts); the batches it held are not read",
                  file=sys.stderr)
        try:
            with journal:
                return reprove_all(cfg, journal, store, symbol, out, zk_store)
        except (StoreError, OSError) as exc:
            return _refused(exc)


def _not_the_owner(*directories: str) -> str | None:
    """Why this process must not write the daemon's state in `directories`
    (None: it owns each that exists): what it writes (a store segment, a
    zk batch's private file, 0600, a journal LOCK) would be another user's
    than the daemon's, which could then not read it, nor start."""
    me = os.geteuid()
    for d in directories:
        try:
            owner = os.stat(d).st_uid
        except OSError:
            continue                    # said where it is opened
        if owner != me:
            return (f"{d} is {_user_name(owner)}'s and this is {_user_name(me)}: what reprove writes "
                    f"(proofs, a zk batch's private file, 0600) must be the daemon's; run it as "
                    f"{_user_name(owner)} (e.g. sudo -u {_user_name(owner)} zksidecar reprove ...)")
    return None


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _refused(exc: OSError) -> int:
    """_usage of an error opening or writing the state, a held LOCK said
    to be most likely a running daemon."""
    return _usage(f"{exc}" + (BUSY if getattr(exc, "errno", None) == errno.EBUSY else ""))


def _usage(message: str) -> int:
    print(f"zksidecar reprove: {message}", file=sys.stderr)
    return 2


def reprove_all(cfg: Config, journal: Journal, store: ProofStore, symbol: int | None = None,
                out=None, zk_store: ZkStore | None = None) -> int:
    """The command's work on an open journal and store (module docstring),
    and in zk mode the store's ZkStore (open_store_mode): its exit status;
    what it did on `out`, what it could not on stderr."""
    out = out or sys.stdout
    if symbol is not None and store.no_symbol(symbol):
        return _usage(store.no_symbol(symbol))
    damaged = _damaged(store, symbol)
    if not damaged:
        print(f"no damaged proof in {store.directory}", file=out)
        return 0
    marks = _marks(journal, damaged)
    rebuild = Rebuilder(journal, lambda: sequencer_of(cfg))
    failed = 0
    for key in damaged:
        problem = _reprove(cfg, store, zk_store, rebuild, key, marks.get(key), out)
        if problem:
            failed += 1
            print(f"zksidecar reprove: symbol {key[0]} batch {key[1]}: {problem}", file=sys.stderr)
    print(f"{len(damaged) - failed} of {len(damaged)} damaged proofs proven again", file=out)
    return 1 if failed else 0


def _damaged(store: ProofStore, symbol: int | None) -> list[tuple[int, int]]:
    """(symbol, batch) of every stored proof whose bytes fail their checksums."""
    symbols = store.symbols() if symbol is None else [symbol]
    return [(s, b) for s in symbols for b in store.batches(s) if store.check(s, b) is not None]


def _marks(journal: Journal, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], BatchMark]:
    """The journal's marks of the batches `wanted` (those it still holds)."""
    keys = set(wanted)
    return {(e.symbol, e.batch_id): e for e in journal.replay()
            if isinstance(e, BatchMark) and (e.symbol, e.batch_id) in keys}


def _reprove(cfg: Config, store: ProofStore, zk_store: ZkStore | None, rebuild: Rebuilder,
             key: tuple[int, int], mark: BatchMark | None, out) -> str | None:
    """Prove one damaged batch again and store it (in zk mode its private
    file first, as the finisher does); None, or why it was not."""
    symbol, batch_id = key
    if mark is None:
        return _lost(store, symbol, batch_id, "the journal no longer holds its mark and records")
    bits, cap = cfg.workers.security_bits, cfg.trace_length
    try:
        batch = rebuild.batch(mark)
        job = ProofJob.of(batch, bits, zk_store.chain if zk_store else None)
        data = proof_file.encode(prove_job(job))
        new = check_alone(accept_proof(job, data), bits, cap)
        sides = _check_links(store, symbol, batch_id, new, bits, cap)
    except ReplayMismatch as exc:
        return _lost(store, symbol, batch_id, f"its records cannot be replayed: {exc}")
    except (JournalError, ProofRejected, VerificationError, ValueError) as exc:
        return f"not proven again: {exc}"
    if zk_store is not None:
        zk_store.write_private(batch)
    store.put(symbol, batch_id, data, replace=True)
    print(f"symbol {symbol} batch {batch_id}: proven again from the journal (operations "
          f"{mark.first_seq}..{mark.last_seq}); it links to "
          f"{' and '.join(sides) if sides else 'no neighbour (none is readable)'}", file=out)
    return None


def _lost(store: ProofStore, symbol: int, batch_id: int, why: str) -> str:
    return (f"cannot be proven again: {why}. Put back a backup's copy of the store segment "
            f"holding it (the segments in {store.directory} are only appended to, so a copy "
            "taken after the proof was stored holds its bytes); until then `zksidecar verify "
            "--store` verifies the batches before it and reports this one, and `zksidecar "
            "export` refuses the symbol (docs/STORE.md, \"Proving a damaged proof again\")")


def _check_links(store: ProofStore, symbol: int, batch_id: int, new: Checked, bits: int,
                 cap: int) -> list[str]:
    """Check that the new proof links into the stored chain: its pre-state
    is the post-state of batch_id - 1 (the empty book for batch 0), and
    batch_id + 1's pre-state is its post-state, for each neighbour that is
    stored and readable.  Returns the neighbours checked;
    VerificationError if a link fails."""
    sides = []
    if batch_id == 0:
        ChainCheck(bits, symbol, cap).add(new)
        sides.append("the empty book")
    else:
        before = _neighbour(store, symbol, batch_id - 1, bits, cap)
        if before is not None:
            ChainCheck(bits, symbol, cap, start=before).add(new)
            sides.append(f"batch {batch_id - 1}")
    after = _neighbour(store, symbol, batch_id + 1, bits, cap)
    if after is not None:
        ChainCheck(bits, symbol, cap, start=new).add(after)
        sides.append(f"batch {batch_id + 1}")
    return sides


def _neighbour(store: ProofStore, symbol: int, batch_id: int, bits: int, cap: int) -> Checked | None:
    """A stored batch verified alone, or None if it is not stored, archived or damaged."""
    if not store.has(symbol, batch_id):
        return None
    try:
        return check_alone(proof_file.decode(store.get(symbol, batch_id)), bits, cap)
    except (StoreCorrupt, StoreArchived, ProofFormatError):
        return None

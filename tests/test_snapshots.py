"""Snapshots of the shadow books (daemon/snapshot.py, daemon/checkpoint.py)
and what recovery does with them (daemon/recovery.py): the format against
csrc/formats/zk_store.h, a round trip, every damage named; a restart from a
snapshot reaching exactly the state a replay of the whole journal reaches
(the same books, the same batches left to prove, a chain of proofs that
verifies once they are proven), with unproven batches before the snapshot
rebuilt; a damaged, truncated or impossible snapshot set aside for the one
before it; a snapshot the configuration does not fit (another capacity, a
smaller ops-row cap, fewer symbols) refused by key and left in place, a
larger cap resumed from; a snapshot a full disk refuses; journal
retention."""
from __future__ import annotations

import errno
import io
import logging
import os
import re
import shutil

import numpy as np
import pytest

from format_docs import STORE_MD, check_byte_table, check_layout
from test_recovery import BITS, CAP, POLICY, T, flow, prove_into
from zksidecar.daemon import formats as fm
from zksidecar.daemon import snapshot
from zksidecar.daemon.batches import CloseReason
from zksidecar.daemon.checkpoint import Checkpoints
from zksidecar.daemon.journal import BatchMark, Journal, ReplayMismatch, mode_problem
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.rebuild import Rebuilder
from zksidecar.daemon.recovery import recover
from zksidecar.daemon.sequencer import Sequencer, SequencerThread
from zksidecar.daemon.store import ProofStore
from zksidecar.engine.native import ffi, lib
from zksidecar.tools.proofs import verify_store


def two_symbols(n: int) -> list[np.ndarray]:
    """Chunks of two symbols' interleaved streams, 10 records a chunk."""
    a = flow(n)
    b = flow(n)
    b["symbol"] = 1
    chunks = []
    for i in range(0, n, 10):
        chunks += [a[i:i + 10], b[i:i + 10]]
    return chunks


def sequencer(journal=None, capacity=CAP, trace_length=T, max_symbols=None) -> Sequencer:
    return Sequencer(capacity, trace_length, POLICY, Metrics(), journal=journal, max_symbols=max_symbols)


def sequence_live(journal, store, chunks, every_ops=100, retain_s=float("inf")):
    """The daemon's live path on its own sequencer thread: each chunk
    journaled, then sequenced with its journal position; checkpoints every
    `every_ops` operations.  Returns the batches closed, in order, and the
    Checkpoints."""
    closed: list = []
    cp = Checkpoints(journal, store, CAP, T, every_ops, 3600.0, retain_s)
    thread = SequencerThread(sequencer(journal), closed.append, cp)
    thread.start()
    for recs in chunks:
        thread.inbox.put((recs, 0, journal.append_ops(recs, 0)))
    thread.stop()
    thread.join()
    assert thread.error is None
    return closed, cp


def live(tmp_path, chunks, every_ops=100, prove=None, segment_bytes=64 << 20, retain_s=float("inf")):
    """`sequence_live` on a fresh journal and store; the first `prove`
    batches closed are proven (all: None).  Returns the Checkpoints
    (closed)."""
    with Journal(str(tmp_path / "journal"), segment_bytes, fsync="never") as journal, \
            ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        closed, cp = sequence_live(journal, store, chunks, every_ops, retain_s)
        prove_into(store, closed[:prove])
        cp.prune()
    return cp


def recovered(tmp_path, capacity=CAP, trace_length=T, max_symbols=None):
    """Recovery under a configuration of `capacity`-slot books, an ops-row cap of
    `trace_length` and `max_symbols`: the books, the batches to prove (compared by
    content), Recovered."""
    with Journal(str(tmp_path / "journal"), fsync="never") as journal, \
            ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        seq = sequencer(journal, capacity, trace_length, max_symbols)
        got = recover(journal, store, seq, tail_records=64)
        # the batches before the newest snapshot come as their marks: rebuilt from the journal
        rebuild = Rebuilder(journal, lambda: sequencer(None, capacity, trace_length))
        got.todo = [rebuild.batch(b) if isinstance(b, BatchMark) else b for b in got.todo]
    books = {s: (b.book.cells.tobytes(), b.next_batch_id, b.held) for s, b in seq.shadows.items()}
    todo = sorted((b.symbol, b.batch_id, b.first_seq, b.last_seq, b.pre_cells.tobytes(),
                   b.ops.tobytes(), b.trades.tobytes(), b.steps.tobytes(), int(b.priority))
                  for b in got.todo)
    return books, todo, got


def without_snapshots(tmp_path, dst):
    """A copy of the state with no snapshot: recovery replays the whole journal."""
    shutil.copytree(tmp_path / "journal", dst / "journal")
    shutil.copytree(tmp_path / "proofs", dst / "proofs")
    for _, _, path in snapshot.listed(str(dst / "journal")):
        os.unlink(path)
    return dst


# ------------------------------------------------------------- format --

PAIRS = [("zk_snapshot_header", fm.SNAPSHOT_HEADER_DTYPE), ("zk_snapshot_book", fm.SNAPSHOT_BOOK_DTYPE),
         ("zk_snapshot_unstarted", fm.SNAPSHOT_UNSTARTED_DTYPE)]


@pytest.mark.parametrize("ctype, dtype", PAIRS)
def test_layouts_agree_with_the_header(ctype, dtype):
    check_layout(ctype, dtype)
    assert lib.ZK_SNAPSHOT_MAGIC == fm.SNAPSHOT_MAGIC and \
        fm.SNAPSHOT_MAGIC.to_bytes(4, "little") == b"ZKSN"
    assert lib.ZK_SNAPSHOT_RESUMED == fm.SNAPSHOT_RESUMED
    assert (lib.ZK_SNAPSHOT_VERSION, lib.ZK_SNAPSHOT_ZK) == (fm.SNAPSHOT_VERSION, fm.SNAPSHOT_ZK) == (2, 1)
    assert lib.ZK_STORE_VERSION == fm.VERSION and fm.SNAPSHOT_VERSION_BEFORE_MODE == 1   # the store's version then
    # a book's cells in a snapshot are the engine's state table (zk_engine.h)
    assert lib.ZK_BOOK_HEADER == 16


@pytest.mark.parametrize("title, dtype", [
    ("### Header (`zk_snapshot_header`)", fm.SNAPSHOT_HEADER_DTYPE),
    ("### Book section (`zk_snapshot_book`)", fm.SNAPSHOT_BOOK_DTYPE)])
def test_store_md_tables_agree_with_the_layouts(title, dtype):
    check_byte_table(title, dtype, STORE_MD)


@pytest.mark.parametrize("zk", [True, False])
def test_a_header_written_by_python_reads_in_c(zk):
    raw = bytearray(snapshot.encode(snapshot.Snapshot(3, 64, CAP, T, zk=zk), created_ns=1))
    h = ffi.cast("zk_snapshot_header *", ffi.from_buffer(raw))
    assert (h.magic, h.version, h.flags, h.segment, h.offset, h.capacity, h.trace_length) == \
        (lib.ZK_SNAPSHOT_MAGIC, lib.ZK_SNAPSHOT_VERSION, lib.ZK_SNAPSHOT_ZK if zk else 0, 3, 64, CAP, T)
    assert raw[5] == h.flags                                   # byte 5


def sealed(data: bytes, at: int, value: int) -> bytes:
    """`data` with header byte `at` set to `value` and the header's checksum
    made again: a sound header saying something else."""
    raw = bytearray(data)
    raw[at] = value
    at_crc = snapshot.HEADER_CRC_AT
    raw[at_crc:snapshot.HEADER.size] = fm.crc32(bytes(raw[:at_crc])).to_bytes(4, "little")
    return bytes(raw)


def test_a_snapshot_says_its_mode_and_a_version_1_snapshot_does_not(tmp_path):
    """Version 2 says the mode of the daemon that wrote it (a transparent
    daemon's checkpoints write 0); version 1, an earlier release's, is
    read as before with its mode unknown, its byte 5 required zero as it
    was reserved; another version or a flag this build does not know is
    another release's snapshot, named."""
    live(tmp_path, two_symbols(120), every_ops=50)
    written = snapshot.listed(str(tmp_path / "journal"))
    assert written and {snapshot.read(path).zk for _, _, path in written} == {False}
    data = snapshot.encode(snapshot.Snapshot(0, 0, CAP, T, zk=True), created_ns=1)
    assert snapshot.decode(data, "x").zk is True
    old = sealed(data, 4, 1)                                    # version 1: byte 5 set is not one
    with pytest.raises(snapshot.SnapshotCorrupt, match="x: corrupt snapshot at byte 5: reserved bytes are not zero"):
        snapshot.decode(old, "x")
    assert snapshot.decode(sealed(old, 5, 0), "x").zk is None
    with pytest.raises(snapshot.SnapshotCorrupt, match=r"byte 4: format version 3 \(this build reads 2, and 1 "):
        snapshot.decode(sealed(data, 4, 3), "x")
    with pytest.raises(snapshot.SnapshotCorrupt, match=r"byte 5: unknown flags 0x2 \(this build knows 0x1, "
                                                       r"ZK_SNAPSHOT_ZK\)"):
        snapshot.decode(sealed(data, 5, 3), "x")
    with pytest.raises(ValueError, match="unknown mode"):
        snapshot.encode(snapshot.decode(sealed(old, 5, 0), "x"))


@pytest.mark.parametrize("zk", [True, False])
def test_the_journals_mode_is_judged_by_its_snapshots_too(tmp_path, zk):
    """journal.mode_problem (the start's and `daemon --check-config`'s):
    a snapshot of the other mode is refused naming the file, one of the
    start's mode or of version 1 (mode unknown) says nothing, nor does one
    whose header is damaged (recovery's to set aside)."""
    directory = str(tmp_path)
    assert mode_problem(directory, zk) is None
    path = snapshot.write(directory, snapshot.Snapshot(0, 0, CAP, T, zk=not zk))
    why = mode_problem(directory, zk)
    assert why.startswith(f"{path} is a {'transparent' if zk else 'zk'} chain's snapshot")
    assert f'set [proofs] mode = "{"transparent" if zk else "zk"}"' in why
    data = open(path, "rb").read()
    open(path, "wb").write(sealed(sealed(data, 5, 0), 4, 1))   # as an earlier release wrote it
    assert mode_problem(directory, zk) is None and mode_problem(directory, not zk) is None
    open(path, "wb").write(data[:20] + bytes([data[20] ^ 1]) + data[21:])
    assert mode_problem(directory, zk) is None
    os.unlink(path)
    snapshot.write(directory, snapshot.Snapshot(0, 64, CAP, T, zk=zk))
    assert mode_problem(directory, zk) is None


def sample(tmp_path) -> snapshot.Snapshot:
    live(tmp_path, two_symbols(120), every_ops=1000)
    return snapshot.read(snapshot.listed(str(tmp_path / "journal"))[-1][2])


def test_a_snapshot_round_trips_and_every_damage_is_named(tmp_path):
    snap = sample(tmp_path)
    assert sorted(snap.next_batch_ids()) == [0, 1]
    data = snapshot.encode(snap, created_ns=1)
    again = snapshot.decode(data, "x")
    assert snapshot.encode(again, created_ns=1) == data
    assert [(b.symbol, b.next_batch_id, b.cells.tobytes()) for b in again.books] == \
        [(b.symbol, b.next_batch_id, b.cells.tobytes()) for b in snap.books]
    for at in (0, 8, 20, 60, 64, 100, len(data) // 2, len(data) - 1):
        bad = bytearray(data)
        bad[at] ^= 0x40
        with pytest.raises(snapshot.SnapshotCorrupt, match=r"x: corrupt snapshot at byte \d+"):
            snapshot.decode(bytes(bad), "x")
    for cut in (10, 64, len(data) - 1):
        with pytest.raises(snapshot.SnapshotCorrupt):
            snapshot.decode(data[:cut], "x")


# ------------------------------------------------------------ restart --

def test_a_restart_from_snapshots_equals_a_replay_of_the_whole_journal(tmp_path):
    """Two symbols, checkpoints every 100 operations, the first third of the
    batches proven: the newest snapshot has unproven batches before it.
    Recovery from it gives the same books and the same batches to prove as
    a replay of the whole journal, and once they are proven every chain
    verifies with every operation proven once."""
    live(tmp_path, two_symbols(300), every_ops=100, prove=6)
    kept = snapshot.listed(str(tmp_path / "journal"))
    assert len(kept) >= 3                       # the frontier, the one before it, and newer ones
    full = recovered(without_snapshots(tmp_path, tmp_path / "full"))
    books, todo, got = recovered(tmp_path)
    assert (books, todo) == full[:2]
    assert todo and got.replayed_ops < full[2].replayed_ops
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        prove_into(store, got.todo)
    out = io.StringIO()
    assert verify_store(str(tmp_path / "proofs"), BITS, out=out) == 0, out.getvalue()
    assert "verified 2 symbols, 36 batches, 600 operations" in out.getvalue()
    # everything proven: a restart replays only what follows the newest snapshot
    assert recovered(tmp_path)[1] == []


@pytest.mark.parametrize("damage", ["a flipped byte", "cut short", "beyond the journal"])
def test_an_unusable_snapshot_is_set_aside_and_the_one_before_used(tmp_path, damage, caplog):
    live(tmp_path, two_symbols(200), every_ops=100)
    full = recovered(without_snapshots(tmp_path, tmp_path / "full"))
    newest = snapshot.listed(str(tmp_path / "journal"))[-1][2]
    data = open(newest, "rb").read()
    if damage == "a flipped byte":
        data = data[:200] + bytes([data[200] ^ 1]) + data[201:]
        open(newest, "wb").write(data)
    elif damage == "cut short":
        open(newest, "wb").write(data[:len(data) // 2])
    else:     # a snapshot that names a journal position the journal does not reach
        snap = snapshot.decode(data, newest)
        snap.offset += 1 << 30
        os.unlink(newest)
        newest = snapshot.write(str(tmp_path / "journal"), snap)
    with caplog.at_level(logging.WARNING, "zksidecar.snapshot"):
        books, todo, _ = recovered(tmp_path)
    assert (books, todo) == full[:2]
    assert os.path.exists(newest + ".corrupt-0") and not os.path.exists(newest)
    assert f"snapshot {newest} cannot be used" in caplog.text


def test_a_larger_ops_cap_resumes_from_the_snapshots_as_the_whole_journal_would(tmp_path):
    """The ops-row cap grown between runs (batch.max_batch_size raised): the
    snapshots are used as they are (a snapshot's books hold no open batch),
    the batches already cut are the same, and once proven every chain
    verifies."""
    live(tmp_path, two_symbols(200), every_ops=100, prove=4)
    kept = sorted(os.listdir(tmp_path / "journal"))
    full = recovered(without_snapshots(tmp_path, tmp_path / "full"))
    books, todo, got = recovered(tmp_path, trace_length=2 * T)
    assert (books, todo) == full[:2] and todo
    assert got.replayed_ops < full[2].replayed_ops          # from the newest snapshot
    assert sorted(os.listdir(tmp_path / "journal")) == kept  # nothing set aside
    assert all(b.trace_length == 2 * T for b in got.todo)
    with ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        prove_into(store, got.todo)
    out = io.StringIO()
    assert verify_store(str(tmp_path / "proofs"), BITS, out=out) == 0, out.getvalue()
    assert "400 operations" in out.getvalue()


@pytest.mark.parametrize("capacity, trace_length, max_symbols, key", [
    (2 * CAP, T, None, r"\[book\] capacity: this journal's books have 16 slots .* cannot change"),
    (CAP, T // 2, None,
     r"\[book\] trace_length: .*cap on a batch's ops rows 64, below the 128 .* never shrink"),
    (CAP, T, 1, r"\[book\] max_symbols: this journal has 2 symbols' books"),
])
def test_a_configuration_the_chain_does_not_fit_stops_the_start_and_touches_nothing(
        tmp_path, capacity, trace_length, max_symbols, key):
    """A whole snapshot of another book capacity, of a larger ops-row cap, or
    of more books than book.max_symbols is not damage: recovery names the key
    and its recorded value, renames nothing, and the configuration reverted
    starts as before."""
    live(tmp_path, two_symbols(200), every_ops=100, prove=4)
    kept = sorted(os.listdir(tmp_path / "journal"))
    full = recovered(without_snapshots(tmp_path, tmp_path / "full"))
    with pytest.raises(ReplayMismatch, match=key) as refused:
        recovered(tmp_path, capacity, trace_length, max_symbols)
    assert refused.value.unusable           # no retry fits it: the daemon exits 2
    assert sorted(os.listdir(tmp_path / "journal")) == kept
    assert recovered(tmp_path)[:2] == full[:2]


def test_unfit_names_the_key_a_chain_fixes():
    snap = snapshot.Snapshot(0, 0, CAP, T, path="s", zk=False)
    assert snapshot.unfit(snap, CAP, T) is None and snapshot.unfit(snap, CAP, 2 * T) is None
    assert snapshot.unfit(snap, 2 * CAP, T)[0] == "book.capacity"
    snap.books = [None, None]               # two books: a bound of one is too few
    assert snapshot.unfit(snap, CAP, T, max_symbols=2) is None
    assert snapshot.unfit(snap, CAP, T, max_symbols=1)[0] == "book.max_symbols"
    assert snapshot.unfit(snap, CAP, T // 2, trace_key="batch.max_batch_size")[0] == \
        "batch.max_batch_size"
    # a zk chain proves every batch in a trace of exactly the cap: it cannot grow either
    assert snapshot.unfit(snap, CAP, T, zk=True) is None
    key, why = snapshot.unfit(snap, CAP, 2 * T, zk=True)
    assert key == "book.trace_length" and "zk chain proves every batch in 128" in why


def test_every_snapshot_damaged_past_a_removed_journal_start_says_how_to_recover(tmp_path):
    live(tmp_path, two_symbols(300), every_ops=100, segment_bytes=4096, retain_s=0.0)
    assert not os.path.exists(tmp_path / "journal" / "journal-000000.zkj")
    for _, _, path in snapshot.listed(str(tmp_path / "journal")):
        open(path, "r+b").write(b"garbage!")
    with pytest.raises(ReplayMismatch, match=r"were damaged and set aside: .*\.corrupt-0 \(.*"
                                             r"put a sound copy of one of them"):
        recovered(tmp_path)


@pytest.mark.parametrize("at, value, reason", [
    (4, 3, r"format version 3 \(this build reads 2, and 1 without its mode\)"),
    (5, fm.SNAPSHOT_ZK | 0x2, r"unknown flags 0x2 \(this build knows 0x1, ZK_SNAPSHOT_ZK\)")])
def test_another_releases_snapshot_stops_the_start_and_is_left_as_it_is(tmp_path, at, value, reason):
    """A snapshot whose sound header says another format version or a flag
    this build does not know is another release's (a newer one's, after a
    downgrade), not damage: the start is refused naming it (exit 2, as
    another release's journal entry is), and nothing is renamed.  Set
    aside as damaged, the books it holds were lost to this start (whose
    journal's first segments retention removed) and to the release that
    wrote it, which no longer finds it under its name."""
    live(tmp_path, two_symbols(300), every_ops=100, segment_bytes=4096, retain_s=0.0)
    assert not os.path.exists(tmp_path / "journal" / "journal-000000.zkj")
    full = recovered(tmp_path)
    newest = snapshot.listed(str(tmp_path / "journal"))[-1][2]
    data = open(newest, "rb").read()
    open(newest, "wb").write(sealed(data, at, value))
    kept = sorted(os.listdir(tmp_path / "journal"))
    with pytest.raises(ReplayMismatch, match=f"{re.escape(newest)}: corrupt snapshot at byte {at}: {reason}: "
                                             "a snapshot another release of zksidecar wrote") as refused:
        recovered(tmp_path)
    assert refused.value.unusable           # no retry reads it: the daemon exits 2
    assert sorted(os.listdir(tmp_path / "journal")) == kept
    open(newest, "wb").write(data)          # the release that wrote it reads it
    assert recovered(tmp_path)[:2] == full[:2]


def test_every_snapshot_damaged_falls_back_to_the_whole_journal(tmp_path):
    live(tmp_path, two_symbols(150), every_ops=100)
    full = recovered(without_snapshots(tmp_path, tmp_path / "full"))
    for _, _, path in snapshot.listed(str(tmp_path / "journal")):
        open(path, "r+b").write(b"garbage!")
    assert recovered(tmp_path)[:2] == full[:2]
    assert snapshot.listed(str(tmp_path / "journal")) == []


def test_a_snapshot_a_full_disk_refuses_is_tried_again_later(tmp_path, monkeypatch):
    """A double of the snapshot's write (it raises ENOSPC, as a full disk
    would): no file is left, the status says why, the daemon's state is
    unchanged, and the next checkpoint writes one."""
    real = fm.append_at

    def full_disk(fd, at, parts, path, full, other):      # test double: the disk is full
        if ".zks" in path:
            raise full(errno.ENOSPC, f"{path}: disk full (test double)")
        return real(fd, at, parts, path, full, other)

    with Journal(str(tmp_path / "journal"), fsync="never") as journal, \
            ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        cp = Checkpoints(journal, store, CAP, T, 10, 3600.0)
        seq = sequencer(journal)
        recs = flow(30)
        pos = journal.append_ops(recs, 0)
        seq.feed(recs, np.zeros(30, np.int64), 0.0)
        seq.close_all(CloseReason.SNAPSHOT)
        monkeypatch.setattr(fm, "append_at", full_disk)
        assert not cp.take(seq, pos)
        assert cp.status()["failed"] == 1 and "disk full" in cp.status()["error"]
        assert os.listdir(tmp_path / "journal") == ["LOCK", "journal-000000.zkj"] or \
            sorted(os.listdir(tmp_path / "journal")) == ["LOCK", "journal-000000.zkj"]
        monkeypatch.setattr(fm, "append_at", real)
        assert cp.take(seq, pos) and cp.status()["error"] is None
    assert len(snapshot.listed(str(tmp_path / "journal"))) == 1


# ---------------------------------------------------------- retention --

def test_retention_removes_only_proven_segments_before_the_snapshots_kept(tmp_path):
    """Small segments, retention 0 s: segments wholly before the oldest
    snapshot kept go once their batches are proven, never one an unproven
    batch needs; a restart afterwards reaches the same state as the whole
    journal did."""
    chunks = two_symbols(300)
    live(tmp_path / "a", chunks, every_ops=100, prove=4, segment_bytes=4096, retain_s=0.0)
    segments = sorted(os.listdir(tmp_path / "a" / "journal"))
    assert "journal-000000.zkj" in segments           # unproven batches need the first segments
    full = recovered(without_snapshots(tmp_path / "a", tmp_path / "full"))
    live(tmp_path / "b", chunks, every_ops=100, prove=None, segment_bytes=4096, retain_s=0.0)
    left = sorted(n for n in os.listdir(tmp_path / "b" / "journal") if n.endswith(".zkj"))
    assert left[0] != "journal-000000.zkj"            # everything proven: the early ones went
    kept = snapshot.listed(str(tmp_path / "b" / "journal"))
    assert int(left[0][8:14]) <= kept[0][0]           # none at or after the oldest snapshot kept
    books, todo, _ = recovered(tmp_path / "b")
    assert books == full[0] and todo == []
    # without the snapshots, the journal that is left cannot be replayed: said so, not guessed
    for _, _, path in kept:
        os.unlink(path)
    with pytest.raises(ReplayMismatch, match="segments before it were removed"):
        recovered(tmp_path / "b")

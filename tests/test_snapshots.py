"""Snapshots of the shadow books (daemon/snapshot.py, daemon/checkpoint.py)
and what recovery does with them (daemon/recovery.py): the format against
csrc/formats/zk_store.h, a round trip, every damage named; a restart from a
snapshot reaching exactly the state a replay of the whole journal reaches
(the same books, the same batches left to prove, a chain of proofs that
verifies once they are proven), with unproven batches before the snapshot
rebuilt; a damaged, truncated or impossible snapshot set aside for the one
before it; a snapshot a full disk refuses; journal retention."""
from __future__ import annotations

import errno
import io
import logging
import os
import shutil

import numpy as np
import pytest

from format_docs import check_layout
from test_recovery import BITS, CAP, POLICY, T, flow, prove_into
from zksidecar.daemon import formats as fm
from zksidecar.daemon import snapshot
from zksidecar.daemon.batches import CloseReason
from zksidecar.daemon.checkpoint import Checkpoints
from zksidecar.daemon.journal import BatchMark, Journal, ReplayMismatch
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.rebuild import Rebuilder
from zksidecar.daemon.recovery import recover
from zksidecar.daemon.sequencer import Sequencer, SequencerThread
from zksidecar.daemon.store import ProofStore
from zksidecar.engine.native import lib
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


def sequencer(journal=None) -> Sequencer:
    return Sequencer(CAP, T, POLICY, Metrics(), journal=journal)


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


def recovered(tmp_path):
    with Journal(str(tmp_path / "journal"), fsync="never") as journal, \
            ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        seq = sequencer(journal)
        got = recover(journal, store, seq, tail_records=64)
        # the batches before the newest snapshot come as their marks: rebuilt from the journal
        rebuild = Rebuilder(journal, sequencer)
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
    # a book's cells in a snapshot are the engine's state table (zk_engine.h)
    assert lib.ZK_BOOK_HEADER == 16


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

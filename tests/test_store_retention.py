"""Proof store retention (daemon/store.py plan_retention / remove_segments,
`zksidecar store prune|archive`, tools/retention.py): what goes and what
stays, the index's ARCHIVED entries across a reopen and an interrupted
prune, archives that verify, `verify --store` on a pruned store, refusal
beside a daemon's LOCK, and recovery not proving archived batches again."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
import time

import pytest

from zksidecar.daemon import formats as fm
from zksidecar.daemon.store import ProofStore, StoreArchived, StoreChanged, StoreCorrupt
from zksidecar.tools import cli
from zksidecar.tools.proofs import verify_store

from test_store import chain, proof, run

SEG = 600   # bytes: with 200-byte stand-in proofs, two proofs a segment


def stand_in(d, n_per_symbol: dict[int, int], interleave: bool = True) -> ProofStore:
    """A store of stand-in proofs, batches 0.. of each symbol, written
    round-robin across symbols (or one symbol after another)."""
    s = ProofStore(str(d), fsync=False, segment_bytes=SEG)
    order = []
    if interleave:
        for b in range(max(n_per_symbol.values())):
            order += [(sym, b) for sym, n in n_per_symbol.items() if b < n]
    else:
        order = [(sym, b) for sym, n in n_per_symbol.items() for b in range(n)]
    for sym, b in order:
        s.put(sym, b, proof(sym, b))
    return s


def segments(d) -> list[int]:
    return [n for n, _ in fm.segment_files(str(d), "store", ".zkd")]


def test_keep_n_keeps_the_newest_batches_and_a_whole_run(tmp_path):
    s = stand_in(tmp_path, {1: 8, 2: 8})
    before = segments(tmp_path)
    plan = s.plan_retention(keep=3)
    assert plan.batches == {1: (0, 4, 5), 2: (0, 4, 5)}
    s.remove_segments(plan)
    assert segments(tmp_path) == [n for n in before if n not in plan.segments]
    for sym in (1, 2):
        assert s.batches(sym) == list(range(8))            # every batch still proven
        assert s.first_kept(sym) == 5 and s.proven_through(sym, 8)
        assert s.archived(sym, 0) and not s.archived(sym, 5)
        with pytest.raises(StoreArchived, match="archived"):
            s.get(sym, 0)
        assert s.get(sym, 7) == proof(sym, 7)
    n = s.put(1, 8, proof(1, 8))                           # writing goes on, numbers too
    s.close()
    with ProofStore(str(tmp_path), fsync=False, segment_bytes=SEG) as again:   # reopened
        assert again.repairs == [] and again.first_kept(1) == 5
        assert again.proof_index(1, 8) == n and again.get(1, 8) == proof(1, 8)
        with pytest.raises(OSError, match="already stored"):
            again.put(2, 0, proof(2, 0))                   # archived: proven, never again
        # the newest batch always stays, whatever the flags
        assert again.plan_retention(keep=1, older_than_s=0).batches[2] == (5, 6, 2)
    with ProofStore(str(tmp_path), readonly=True) as ro:
        assert ro.first_kept(2) == 5


def test_a_batch_stored_late_keeps_the_batches_after_it(tmp_path):
    # symbol 1's batch 1 is stored after batch 2 (workers finish out of order)
    s = ProofStore(str(tmp_path), fsync=False, segment_bytes=SEG)
    for sym, b in [(1, 0), (1, 2), (2, 0), (1, 1), (1, 3), (2, 1), (1, 4)]:
        s.put(sym, b, proof(sym, b))
    plan = s.plan_retention(keep=2)      # symbol 1 could lose 0..2, symbol 2 nothing
    s.remove_segments(plan)
    for sym in (1, 2):                   # archived batches are a prefix of each chain
        ids = s.batches(sym)
        flags = [s.archived(sym, b) for b in ids]
        assert flags == sorted(flags, reverse=True) and not flags[-1]
    assert not s.archived(2, 0)
    s.close()


@pytest.mark.parametrize("rule", ["age", "keep"])
def test_retention_never_archives_past_a_batch_not_yet_stored(tmp_path, rule):
    # symbol 1's batch 2 is still being proven when retention runs (workers
    # finish out of order): batch 3, stored, must not be archived ahead of it,
    # or the put of batch 2 leaves an index no open accepts ("archived out
    # of order") and the chain from the first kept batch has a hole
    s = ProofStore(str(tmp_path), fsync=False, segment_bytes=SEG)
    for sym, b in [(1, 0), (1, 1), (1, 3), (2, 0), (2, 1), (1, 4)]:
        s.put(sym, b, proof(sym, b))
    plan = (s.plan_retention(older_than_s=0, now=time.time() + 60) if rule == "age"
            else s.plan_retention(keep=1))
    assert plan.batches[1] == (0, 1, 2)          # up to the batch not stored, no further
    s.remove_segments(plan)
    assert not s.archived(1, 3)
    s.put(1, 2, proof(1, 2))
    s.close()
    with ProofStore(str(tmp_path), fsync=False, segment_bytes=SEG) as again:
        assert again.proven_through(1, 5) and again.first_kept(1) == 2
        assert [again.get(1, b) for b in (2, 3, 4)] == [proof(1, b) for b in (2, 3, 4)]


def test_age_and_symbol_and_dry_run(tmp_path):
    s = stand_in(tmp_path, {1: 6, 2: 6}, interleave=False)
    old = time.time() - 40 * 86400
    for n in segments(tmp_path)[:3]:
        os.utime(fm.segment_name(str(tmp_path), "store", ".zkd", n), (old, old))
    plan = s.plan_retention(older_than_s=30 * 86400)
    assert plan.batches == {1: (0, 3, 4)}       # batch 5, the newest, keeps its segment
    assert s.plan_retention(older_than_s=30 * 86400, symbols={2}).segments == ()
    s.close()
    listing = sorted(os.listdir(tmp_path))
    index = (tmp_path / "index.zki").read_bytes()
    out = io.StringIO()
    from zksidecar.tools import retention
    assert retention.main("prune", str(tmp_path), "30d", None, None, True, out=out) == 0
    assert "would be removed" in out.getvalue() and "dry run: nothing changed" in out.getvalue()
    assert sorted(os.listdir(tmp_path)) == listing and (tmp_path / "index.zki").read_bytes() == index
    assert cli.main(["store", "prune", str(tmp_path), "--older-than", "30d"]) == 0
    assert len(segments(tmp_path)) < len(listing) - 2
    out = io.StringIO()                  # again: nothing to do, said so
    assert retention.main("prune", str(tmp_path), "30d", None, None, False, out=out) == 0
    assert "nothing to prune" in out.getvalue()


def test_usage_errors_exit_2(tmp_path, capsys):
    stand_in(tmp_path, {1: 4}).close()
    d = str(tmp_path)
    for argv in (["store", "prune", d], ["store", "prune", d, "--keep", "0"],
                 ["store", "prune", d, "--keep", "2", "--older-than", "1d"],
                 ["store", "prune", d, "--older-than", "soon"],
                 ["store", "prune", d, "--older-than", "forever"],
                 ["store", "prune", d, "--keep", "1", "--symbol", "9"],
                 ["store", "prune", str(tmp_path / "nope"), "--keep", "1"],
                 ["store", "archive", d, "--keep", "1"]):
        assert _code(argv) == 2, argv
    err = capsys.readouterr().err
    assert "Traceback" not in err and "symbols stored: 1" in err and f"{tmp_path / 'nope'}: no such directory" in err


def _code(argv) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:       # argparse's own usage errors
        return exc.code


def test_refused_while_a_daemon_holds_the_store(tmp_path, capsys):
    stand_in(tmp_path, {1: 6}).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from zksidecar.daemon.store import ProofStore
        s = ProofStore({str(tmp_path)!r}, segment_bytes={SEG})
        print("held", flush=True)
        sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        index = (tmp_path / "index.zki").read_bytes()
        assert cli.main(["store", "prune", str(tmp_path), "--keep", "1"]) == 2
        assert "is in use" in capsys.readouterr().err
        assert (tmp_path / "index.zki").read_bytes() == index
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert cli.main(["store", "prune", str(tmp_path), "--keep", "1"]) == 0


def test_an_interrupted_prune_is_finished_and_a_lost_segment_is_not_archived(tmp_path):
    s = stand_in(tmp_path, {1: 8})
    plan = s.plan_retention(keep=2)
    s.remove_segments(plan)
    s.close()
    # as if the prune stopped after its index: one of its segments back on disk
    gone = fm.segment_name(str(tmp_path), "store", ".zkd", plan.segments[0])
    with open(gone, "wb") as f:
        f.write(b"\0" * 100)
    with ProofStore(str(tmp_path), segment_bytes=SEG) as again:
        assert not os.path.exists(gone) and "interrupted" in again.repairs[0]
        assert again.first_kept(1) == plan.batches[1][1] + 1
    # a kept segment lost: corruption named, never an archive
    kept = fm.segment_name(str(tmp_path), "store", ".zkd", segments(tmp_path)[0])
    os.rename(kept, kept + ".lost")
    with pytest.raises(StoreCorrupt, match="missing|does not follow"):
        ProofStore(str(tmp_path), readonly=True)
    os.rename(kept + ".lost", kept)
    os.unlink(tmp_path / "index.zki")      # the only record of what was archived
    with pytest.raises(StoreCorrupt, match="index.zki was lost after a prune"):
        ProofStore(str(tmp_path), readonly=True)


def test_archive_moves_proofs_that_verify_and_the_store_verifies_from_its_first_kept(
        tmp_path, capsys):
    store, arch = tmp_path / "store", tmp_path / "archive"
    a = chain(0, 5)
    with ProofStore(str(store), segment_bytes=len(a[0]) + 64) as s:     # one proof a segment
        for b, raw in enumerate(a):
            s.put(0, b, raw)
    assert cli.main(["verify", "--store", str(store), "--min-security", "0",
                     "--report", str(tmp_path / "r.json")]) == 0
    assert cli.main(["store", "archive", str(store), "--keep", "3", "--to", str(arch)]) == 0
    text = capsys.readouterr().out
    assert "batches 0..1 (2 proofs) archived" in text and "private file" not in text
    assert sorted(os.listdir(arch / "symbol-0")) == ["batch-000000.zkb", "batch-000001.zkb", "manifest.json"]
    assert cli.main(["verify", str(arch / "symbol-0"), "--min-security", "0"]) == 0
    status, text = run(store)
    assert status == 0 and "symbol 0: 3 batches" in text and "UNANCHORED" in text, text
    # a report from before the archive anchors what is left
    out = io.StringIO()
    assert verify_store(str(store), 0, out=out, since=str(tmp_path / "r.json")) == 0, out.getvalue()
    assert "UNANCHORED" not in out.getvalue()
    # and so does a report of the archive, as the UNANCHORED line says
    assert "--since a report of their archive" in text
    assert cli.main(["verify", str(arch / "symbol-0"), "--min-security", "0",
                     "--report", str(tmp_path / "arch.json")]) == 0
    out = io.StringIO()
    assert verify_store(str(store), 0, out=out, since=str(tmp_path / "arch.json"),
                        report=str(tmp_path / "whole.json")) == 0, out.getvalue()
    assert "symbol 0: 5 batches" in out.getvalue() and "batches 0..1 by the report" in out.getvalue() \
        and "from the empty book" in out.getvalue() and "UNANCHORED" not in out.getvalue(), out.getvalue()
    # export says where the archived batches went and how to anchor the rest
    assert cli.main(["export", "--store", str(store), "--symbol", "0", "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "batches 0..1 are archived" in err and f"verify --store {store} --since R" in err, err
    assert not (tmp_path / "x").exists()
    # whose continuation is a store's report; proof files do not continue a store's
    capsys.readouterr()
    assert cli.main(["verify", str(arch / "symbol-0" / "batch-000001.zkb"), "--min-security", "0",
                     "--since", str(tmp_path / "whole.json")]) == 2
    assert "is a report on a proof store: give --store DIR" in capsys.readouterr().err
    # a second archive to the same place extends the chain there
    assert cli.main(["store", "archive", str(store), "--keep", "1", "--to", str(arch)]) == 0
    assert cli.main(["verify", str(arch / "symbol-0"), "--min-security", "0"]) == 0
    capsys.readouterr()
    assert cli.main(["verify", "--store", str(store), "--min-security", "0"]) == 0
    assert "from batch 4's stated pre-state" in capsys.readouterr().out


def test_recovery_after_a_prune_does_not_prove_archived_batches_again(tmp_path):
    import test_recovery as tr

    ops = tr.flow(120)
    n = tr.proven_in_small_segments(tmp_path, ops)
    assert n >= 4
    assert cli.main(["store", "prune", str(tmp_path / "proofs"), "--keep", "1"]) == 0
    got = tr.restart(tmp_path)               # the journal still marks every batch
    assert got.todo == [] and got.stored == n and got.damaged == 0
    status, text = run(tmp_path / "proofs")
    assert status == 0 and f"from batch {n - 1}'s stated pre-state" in text, text


def test_the_daemons_checkpoints_apply_store_retain(tmp_path):
    from zksidecar.daemon.checkpoint import Checkpoints
    from zksidecar.daemon.journal import Journal

    s = stand_in(tmp_path / "proofs", {1: 6, 2: 6})
    with Journal(str(tmp_path / "journal"), fsync="never") as journal:
        forever = Checkpoints(journal, s, 16, 64, 0, 60.0)
        assert forever.prune_store() == [] and s.archived_count() == 0
        removed = Checkpoints(journal, s, 16, 64, 0, 60.0, store_retain_s=0).prune_store()
    assert removed and not any(os.path.exists(p) for p in removed)
    assert s.first_kept(1) == 5 and s.first_kept(2) == 5 and s.archived_count() == 10
    s.close()


def test_prune_leaves_a_torn_tail_for_the_daemon(tmp_path):
    """A put a crash cut short (data without its index entry, short of its
    length) in the segment being written: `store prune` removes what it
    should and nothing else and says the tail is there;
    the next writer's open (the daemon's) drops it."""
    stand_in(tmp_path, {1: 6}).close()
    last = fm.segment_name(str(tmp_path), "store", ".zkd", segments(tmp_path)[-1])
    with open(last, "ab") as f:
        f.write(fm.store_header(1, 6, 200, 0) + b"cut short")
    size = os.path.getsize(last)
    from zksidecar.tools import retention
    out = io.StringIO()
    assert retention.main("prune", str(tmp_path), None, 2, None, False, out=out) == 0
    assert f"{last}: a torn tail of 41 bytes at byte {size - 41} (a short payload" in out.getvalue()
    assert "left in place" in out.getvalue() and "4 proofs removed" in out.getvalue()
    assert os.path.getsize(last) == size
    with ProofStore(str(tmp_path), segment_bytes=SEG) as s:
        assert s.first_kept(1) == 4 and "dropped a torn tail of 41 bytes" in s.repairs[0]
    assert os.path.getsize(last) == size - 41


def test_prune_names_each_damaged_proof_it_removes(tmp_path):
    """A proof damaged at rest goes with its segment like any other (its
    batch stays archived: it was whole when stored), but
    `store prune` reads every proof it removes and names the damaged one,
    exit status 1, in a dry run too; nothing else changes (docs/STORE.md,
    "Retention of a damaged proof")."""
    s = stand_in(tmp_path, {1: 8})
    loc = s._entries[s.proof_index(1, 2)]
    path = s.segment_path(loc.segment)
    s.close()
    raw = bytearray(open(path, "rb").read())
    raw[loc.offset + fm.HEADER_SIZE + 50] ^= 0x01            # batch 2's proof bytes
    open(path, "wb").write(bytes(raw))
    from zksidecar.tools import retention
    for dry_run in (True, False):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err):
            assert retention.main("prune", str(tmp_path), None, 1, None, dry_run, out=out) == 1
        assert "symbol 1 batch 2: its proof bytes fail their checksum: damaged at rest" in err.getvalue()
        assert err.getvalue().count("damaged at rest") == 1
    with ProofStore(str(tmp_path), fsync=False, segment_bytes=SEG) as s:
        assert s.archived(1, 2) and s.first_kept(1) == 6


def test_a_reader_beside_a_writer_that_rolls_to_a_new_segment_is_not_refused(tmp_path, monkeypatch):
    """`verify --store` (or `export`) beside the daemon: the writer rolls to
    a new segment between the reader's listing of the segments and its read
    of index.zki, so the index names a segment the listing did not have.  In
    a pruned store a segment missing with archived entries before it is
    corruption, and the reader was refused, though a retry opened it.  A
    test double on the listing drives the writer there every time.  The
    reader lists again and sees every proof the index names; a segment the
    index names that really is gone is still refused, by the reader and the
    writer."""
    writer = stand_in(tmp_path, {1: 6, 2: 6})
    writer.remove_segments(writer.plan_retention(keep=3))
    rolled: list[int] = []
    listing = ProofStore._list_segments

    def listing_then_roll(self):       # the test double: the writer rolls right after a reader lists
        out = listing(self)
        if self.readonly and not rolled:
            before = segments(tmp_path)
            while segments(tmp_path) == before:
                b = len(writer.batches(1))
                writer.put(1, b, proof(1, b))
                rolled.append(b)
        return out

    monkeypatch.setattr(ProofStore, "_list_segments", listing_then_roll)
    with ProofStore(str(tmp_path), readonly=True) as ro:
        assert rolled and ro.batches(1) == writer.batches(1) and ro.first_kept(1) == 3
        assert [ro.get(1, b) for b in rolled] == [proof(1, b) for b in rolled]
    writer.close()
    newest = fm.segment_name(str(tmp_path), "store", ".zkd", segments(tmp_path)[-1])
    os.unlink(newest)                   # the segment the index names, lost
    for kw in ({"readonly": True}, {"fsync": False, "segment_bytes": SEG}):
        with pytest.raises(StoreCorrupt, match="this segment is missing"):
            ProofStore(str(tmp_path), **kw)


def test_a_reader_beside_a_writers_retention_is_not_refused(tmp_path, monkeypatch):
    """`verify --store` beside the daemon's retention: the writer prunes
    (index.zki rewritten with the old batches archived, their segments
    unlinked) between the reader's listing of the segments and its read of
    the index, so the listing holds segments that are gone by the read
    (test doubles on the listing, and on os.path.getsize for a segment
    unlinked between the listing's names and their sizes, which raised
    FileNotFoundError).  The reader opens and sees the store as retention
    left it."""
    writer = stand_in(tmp_path, {1: 6, 2: 6})
    listing = ProofStore._list_segments
    pruned: list = []

    def listing_then_prune(self):       # the test double: retention runs right after a reader lists
        out = listing(self)
        if self.readonly and not pruned:
            plan = writer.plan_retention(keep=3)
            writer.remove_segments(plan)
            pruned.append(plan)
        return out

    monkeypatch.setattr(ProofStore, "_list_segments", listing_then_prune)
    with ProofStore(str(tmp_path), readonly=True) as ro:
        assert pruned and pruned[0].segments
        assert ro.batches(1) == writer.batches(1) and ro.first_kept(1) == writer.first_kept(1) == 3
        assert ro.get(1, 5) == proof(1, 5)
    monkeypatch.setattr(ProofStore, "_list_segments", listing)
    gone = fm.segment_files(str(tmp_path), "store", ".zkd")[0][1]
    real_getsize = os.path.getsize

    def getsize_after_unlink(path):     # the test double: the segment goes between listdir and stat
        if path.endswith(gone) and len(pruned) == 1:
            pruned.append(None)
            writer.remove_segments(writer.plan_retention(keep=2))
        return real_getsize(path)

    monkeypatch.setattr(os.path, "getsize", getsize_after_unlink)
    with ProofStore(str(tmp_path), readonly=True) as ro:
        assert ro.batches(1) == writer.batches(1) and ro.first_kept(1) == 4
    writer.close()


def test_a_proof_pruned_after_a_reader_opened_the_store_is_named_not_a_traceback(tmp_path, monkeypatch):
    """A reader sees the store as it was at its open: a running daemon's
    retention may remove a segment it still lists.  Reading a proof there
    is StoreChanged, saying to open the store again (it raised
    FileNotFoundError, and `verify --store` ended in a traceback); the
    writer, whose lock keeps retention its own, meets a segment missing
    under it as corruption."""
    writer = stand_in(tmp_path, {1: 6, 2: 6})
    with ProofStore(str(tmp_path), readonly=True) as ro:
        writer.remove_segments(writer.plan_retention(keep=3))
        with pytest.raises(StoreChanged, match=r"symbol 1 batch 0: segment 0 was removed after this reader "
                                               r"opened the store .*: open it again"):
            ro.get(1, 0)
        assert ro.get(1, 5) == proof(1, 5)
    with ProofStore(str(tmp_path), readonly=True) as ro:        # opened again: archived, as retention left it
        with pytest.raises(StoreArchived):
            ro.get(1, 0)
    os.unlink(fm.segment_name(str(tmp_path), "store", ".zkd", segments(tmp_path)[-1]))   # batch 5's
    with pytest.raises(StoreCorrupt, match="its segment is missing"):
        writer.get(1, 5)
    writer.close()


def test_a_check_of_a_proof_pruned_after_a_reader_opened_the_store_is_store_changed(tmp_path):
    """check() reads a proof's segment as get() does: on a reader, a
    segment a running daemon's retention removed since the open is
    StoreChanged, the same words (it raised FileNotFoundError); on the
    writer a segment missing under its lock is StoreCorrupt, as get()."""
    writer = stand_in(tmp_path, {1: 6, 2: 6})
    with ProofStore(str(tmp_path), readonly=True) as ro:
        writer.remove_segments(writer.plan_retention(keep=3))
        with pytest.raises(StoreChanged) as by_get:
            ro.get(1, 0)
        with pytest.raises(StoreChanged) as by_check:
            ro.check(1, 0)
        assert str(by_check.value) == str(by_get.value)
        assert ro.check(1, 5) is None
    os.unlink(fm.segment_name(str(tmp_path), "store", ".zkd", segments(tmp_path)[-1]))   # batch 5's
    with pytest.raises(StoreCorrupt, match="symbol 1 batch 5: its segment is missing"):
        writer.check(1, 5)
    writer.close()


def test_verify_store_names_a_proof_pruned_beside_it(tmp_path, monkeypatch):
    """`verify --store` beside a running daemon whose retention removes a
    segment after the verify opened the store (a test double on get() moves
    the segment away before the first read): the batch is reported
    unreadable with the reason, exit 1, no traceback."""
    from test_recovery import flow, run_live
    run_live(tmp_path, flow(72))
    get = ProofStore.get

    def get_after_prune(self, symbol, batch_id):
        path = self.segment_path(0)
        if self.readonly and os.path.exists(path):
            os.rename(path, path + ".elsewhere")
        return get(self, symbol, batch_id)

    monkeypatch.setattr(ProofStore, "get", get_after_prune)
    out = io.StringIO()
    assert verify_store(str(tmp_path / "proofs"), min_security=20, out=out) == 1
    assert "batch 0 unreadable: proof store" in out.getvalue()
    assert "segment 0 was removed after this reader opened the store" in out.getvalue()


def test_a_receipts_batch_search_meets_a_segment_pruned_since_its_open_as_such(tmp_path):
    """ZkStore.batch_of beside a running daemon's retention: a proof it
    reads for its public header (its private file gone) whose segment was
    removed after the reader opened the store is StoreChanged, said as it
    is (open again), not "seq N is in no proven batch"."""
    from zksidecar.daemon import zk_store as ZS
    from zksidecar.daemon.store import StoreChanged

    class Pruned:                           # the reader's view: batch 0 stored, its segment gone
        def batches(self, symbol):
            return [0]

        def get(self, symbol, batch_id):
            raise StoreChanged(2, "segment 0 was removed after this reader opened the store")

    zs = ZS.ZkStore(str(tmp_path), bytes(32), 4, 16, None, fsync=False)
    with pytest.raises(ZS.ReceiptUnavailable, match="removed after this reader opened") as raised:
        zs.batch_of(0, 5, Pruned())
    assert not isinstance(raised.value, ZS.NotProven)

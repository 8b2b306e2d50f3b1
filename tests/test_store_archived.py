"""The proof store's archived index entries survive damage (daemon/store.py,
archived.zka; docs/STORE.md "The second copy of the archived entries"):
every bit of an archived entry (and of a live one before it) flipped in
turn, every bit of the copy, both copies damaged (a lost entry: named,
nothing renumbered, the batch still proven), a store archived before the
copy existed, and a retention stopped at every step of its writes."""
from __future__ import annotations

import os
import shutil

import pytest

from zksidecar.daemon import formats as fm
from zksidecar.daemon.store import ProofStore, StoreArchived, StoreCorrupt, StoreError
from zksidecar.tools import cli

from test_store import chain, proof, run
from test_store_retention import SEG, segments, stand_in

INDEX, COPY = "index.zki", "archived.zka"


def pruned(d) -> dict[tuple[int, int], int]:
    """A store whose middle is archived and whose ends are live: symbol 1's
    batches 0..3 (proofs 0..3, segments 0 and 1) kept, symbol 2's batches 0
    and 1 (proofs 4, 5, segment 2) archived, its 2 and 3 (segment 3) kept.
    Returns (symbol, batch) -> proof_index as written."""
    s = stand_in(d, {1: 4, 2: 4}, interleave=False)
    s.remove_segments(s.plan_retention(keep=1, symbols={2}))
    numbers = {(sym, b): s.proof_index(sym, b) for sym in (1, 2) for b in s.batches(sym)}
    s.close()
    assert [s_ for s_ in range(4) if s_ not in segments(d)] == [2]
    return numbers


ARCHIVED = (4, 5)           # entries of pruned()'s store whose segment is gone (0..3 are live)


def served(s: ProofStore, numbers) -> None:
    """`s` answers as pruned()'s store: every proof at its number, the
    live ones byte for byte, the archived ones archived."""
    assert len(s) == len(numbers)
    for (sym, b), k in numbers.items():
        assert s.has(sym, b) and s.proof_index(sym, b) == k
        if k in ARCHIVED:
            assert s.archived(sym, b)
            with pytest.raises(StoreArchived):
                s.get(sym, b)
        else:
            assert s.get(sym, b) == proof(sym, b)
    assert s.first_kept(1) == 0 and s.first_kept(2) == 2 and s.proven_through(2, 4)


@pytest.fixture(scope="module")
def orig(tmp_path_factory):
    d = tmp_path_factory.mktemp("orig")
    numbers = pruned(d)
    return d, numbers, (d / INDEX).read_bytes(), (d / COPY).read_bytes()


def _work(orig, tmp_path):
    d = tmp_path / "work"
    shutil.copytree(orig[0], d)
    os.remove(d / "LOCK")
    return d


def _flip(raw: bytes, bit: int) -> bytes:
    out = bytearray(raw)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.mark.parametrize("k", [*ARCHIVED, 1], ids=["archived 4", "archived 5", "live 1"])
def test_every_bit_of_an_entry_before_the_last_archived_one_is_restored(orig, tmp_path, k):
    """One flipped bit anywhere in entry k (its state word included): every
    open serves every proof at its number and names the entry, a writer
    writes index.zki back byte for byte.  Before archived.zka, each was
    StoreCorrupt: the daemon would not start."""
    _, numbers, index, copy = orig
    d = _work(orig, tmp_path)
    for bit in range(k * 320, (k + 1) * 320):
        (d / INDEX).write_bytes(_flip(index, bit))
        (d / COPY).write_bytes(copy)
        with ProofStore(str(d), readonly=True) as ro:
            served(ro, numbers)
            assert any(f"entry {k} " in line for line in ro.damage), (bit, ro.damage)
        with ProofStore(str(d), segment_bytes=SEG) as s:
            served(s, numbers)
            assert any("written back" in line for line in s.repairs), (bit, s.repairs)
        assert (d / INDEX).read_bytes() == index and (d / COPY).read_bytes() == copy, bit


def test_a_live_entry_before_an_archived_one_is_rebuilt_from_the_data_without_the_copy(
        orig, tmp_path):
    """Without archived.zka (a store archived before it existed), a live
    entry before an archived one comes back from the data, and an archived
    one with only its state word damaged from its own checksummed fields."""
    _, numbers, index, copy = orig
    d = _work(orig, tmp_path)
    for bit in [*range(1 * 320, 2 * 320, 7), *range(4 * 320 + 288, 4 * 320 + 320)]:
        (d / INDEX).write_bytes(_flip(index, bit))
        os.remove(d / COPY)
        with ProofStore(str(d), readonly=True) as ro:
            served(ro, numbers)
            assert ro.damage, bit
        with ProofStore(str(d), segment_bytes=SEG) as s:
            served(s, numbers)
            assert any(f"{COPY}: written" in line for line in s.repairs), s.repairs
        assert (d / INDEX).read_bytes() == index and (d / COPY).read_bytes() == copy, bit


def test_a_damaged_live_entry_after_the_archived_ones_is_rebuilt_from_the_data(orig, tmp_path):
    """Entry 6 (symbol 2's batch 2, its first kept) follows the archived
    span: one flipped bit drops the index from it, and until the data scan
    gives it back symbol 2 seems to have only archived batches.  Before the
    archived-order check waited for the scan, every open refused the store
    ("archived out of order"), the daemon's too."""
    _, numbers, index, _ = orig
    d = _work(orig, tmp_path)
    for bit in range(6 * 320, 7 * 320, 5):
        (d / INDEX).write_bytes(_flip(index, bit))
        with ProofStore(str(d), readonly=True) as ro:
            served(ro, numbers)
        with ProofStore(str(d), segment_bytes=SEG) as s:
            served(s, numbers)
            assert any("rebuilt from the data" in line for line in s.repairs), (bit, s.repairs)
        assert (d / INDEX).read_bytes() == index, bit


@pytest.mark.parametrize("k", [6, 7])
def test_a_live_entry_whose_garbage_state_word_reads_archived_keeps_its_number(orig, tmp_path, k):
    """Live entry k (after the archived ones) overwritten with bytes whose
    state word lies nearer ARCHIVED than 0 (garbage: a crash can leave an
    append unsynced on disk so): its data entry, which no sound index entry
    claims, says which proof it was.  Before, entry 7 became a lost archived
    entry and its proof was indexed again as number 8 (renumbered: the
    completion record's proof_index named nothing), and entry 6 refused the store."""
    _, numbers, index, _ = orig
    d = _work(orig, tmp_path)
    garbage = bytes(range(36)) + (0x56C35A41).to_bytes(4, "little")   # 3 bits from "ARCV"
    (d / INDEX).write_bytes(index[:k * 40] + garbage + index[(k + 1) * 40:])
    with ProofStore(str(d), readonly=True) as ro:
        served(ro, numbers)
    with ProofStore(str(d), segment_bytes=SEG) as s:
        served(s, numbers)
    assert (d / INDEX).read_bytes() == index


@pytest.mark.parametrize("readonly", [True, False])
def test_a_live_entrys_state_word_reading_archived_never_removes_its_segment(tmp_path, readonly):
    """Symbol 1's batch 2, live and alone in segment 2, its state word
    damaged to a word nearer ARCHIVED (its fields sound): its segment is
    present, so it is live.  Before, it was restored as ARCHIVED and the
    writer's open removed segment 2 as an interrupted prune's: the proof was
    deleted by the store's own repair."""
    s = ProofStore(str(tmp_path), fsync=False, segment_bytes=300)     # one proof a segment
    for b in range(4):
        s.put(1, b, proof(1, b))
    s.remove_segments(s.plan_retention(keep=2))
    s.close()
    index = (tmp_path / INDEX).read_bytes()
    word = (fm.STORE_ARCHIVED ^ 0x70000000).to_bytes(4, "little")      # 3 bits from "ARCV"
    (tmp_path / INDEX).write_bytes(index[:2 * 40 + 36] + word + index[3 * 40:])
    with ProofStore(str(tmp_path), readonly=readonly, segment_bytes=300) as again:
        assert not again.archived(1, 2) and again.get(1, 2) == proof(1, 2)
        assert any("entry 2 " in line and "a live proof" in line for line in again.damage)
    assert segments(tmp_path) == [2, 3]
    if not readonly:
        assert (tmp_path / INDEX).read_bytes() == index


def test_a_garbage_last_archived_entry_without_a_copy_renumbers_nothing(orig, tmp_path):
    """Entry 5, the last archived one, overwritten with garbage whose state
    word lies nearer 0, and no archived.zka: nothing says it was archived,
    so the index is cut there, and the data (its segment gone) cannot give
    it back.  Rebuilt from the data, every later proof came back one number
    lower (completion records naming other proofs) and symbol 2's batch 1
    was forgotten; now every open refuses, naming the entry it would renumber."""
    _, _, index, _ = orig
    d = _work(orig, tmp_path)
    garbage = bytes(range(100, 136)) + (0x00010203).to_bytes(4, "little")
    (d / INDEX).write_bytes(index[:5 * 40] + garbage + index[6 * 40:])
    os.remove(d / COPY)
    for readonly in (True, False):
        with pytest.raises(StoreCorrupt, match="would renumber it 5"):
            ProofStore(str(d), readonly=readonly, segment_bytes=SEG)
    assert (d / INDEX).read_bytes()[6 * 40:] == index[6 * 40:]


def test_a_lost_entry_never_takes_a_batch_still_being_proven(tmp_path):
    """Symbol 2's batch 2 is still being proven when retention archives
    batches 0 and 1 of symbols 1 and 2; then symbol 1's batch 0 is lost in
    both copies.  The lost entry is that gap below symbol 1's archived
    batch 1, so symbol 2's batch 2 stays unproven: its proof is taken when
    it comes.  Before, it was taken as archived too: recovery never proved
    it, proven_through() let its journal go, and its put was refused."""
    s = ProofStore(str(tmp_path), fsync=False, segment_bytes=SEG)
    for sym, b in [(1, 0), (1, 1), (2, 0), (2, 1), (2, 3), (1, 2), (1, 3)]:
        s.put(sym, b, proof(sym, b))
    s.remove_segments(s.plan_retention(keep=1))
    assert s.archived(2, 1) and not s.archived(2, 3) and s.proof_index(1, 0) == 0
    s.close()
    index, copy = (tmp_path / INDEX).read_bytes(), (tmp_path / COPY).read_bytes()
    (tmp_path / INDEX).write_bytes(_flip(index, 70))           # entry 0's batch id
    (tmp_path / COPY).write_bytes(_flip(copy, 24 * 8 + 70))    # and its record
    for readonly in (True, False):
        with ProofStore(str(tmp_path), readonly=readonly, segment_bytes=SEG) as s:
            assert s.archived(1, 0) and s.proven_through(1, 4)
            assert not s.has(2, 2) and not s.proven_through(2, 4)
            if not readonly:
                assert s.put(2, 2, proof(2, 2)) == 7
    with ProofStore(str(tmp_path), readonly=True) as s:
        assert s.get(2, 2) == proof(2, 2) and s.proven_through(2, 4) and s.archived(1, 0)


def test_every_bit_of_the_copy_is_named_and_the_copy_rewritten(orig, tmp_path):
    _, numbers, index, copy = orig
    d = _work(orig, tmp_path)
    for bit in range(len(copy) * 8):
        (d / INDEX).write_bytes(index)
        (d / COPY).write_bytes(_flip(copy, bit))
        with ProofStore(str(d), readonly=True) as ro:
            served(ro, numbers)
            assert any(COPY in line for line in ro.damage), bit
        with ProofStore(str(d), segment_bytes=SEG) as s:
            served(s, numbers)
            assert any(f"{COPY}: rewritten" in line for line in s.repairs), (bit, s.repairs)
        assert (d / INDEX).read_bytes() == index and (d / COPY).read_bytes() == copy, bit


def _lose(d, index: bytes, copy: bytes, ks) -> None:
    """Entries `ks` damaged in both copies (their fields in index.zki,
    their records in archived.zka)."""
    for k in ks:
        index = _flip(index, k * 320 + 70)
        copy = _flip(copy, (24 + 48 * ARCHIVED.index(k)) * 8 + 3)
    (d / INDEX).write_bytes(index)
    (d / COPY).write_bytes(copy)


@pytest.mark.parametrize("ks", [(4,), (5,), (4, 5)])
def test_an_archived_entry_lost_in_both_copies_is_named_and_nothing_renumbered(orig, tmp_path, ks):
    _, numbers, index, copy = orig
    d = _work(orig, tmp_path)
    _lose(d, index, copy, ks)
    for readonly in (True, False):
        with ProofStore(str(d), readonly=readonly, segment_bytes=SEG) as s:
            served(s, numbers)         # the lost ones taken as the batches no entry lists
            assert any("lost archived entr" in line and "symbol 2 batch" in line for line in s.damage)
            lost = [b for b in (0, 1) if numbers[2, b] in ks]
            for b in lost:
                with pytest.raises(StoreArchived, match="its index entry is lost"):
                    s.get(2, b)
            if not readonly:
                with pytest.raises(StoreError, match="already stored"):
                    s.put(2, lost[0], proof(2, lost[0]))
                assert s.put(2, 4, proof(2, 4)) == len(numbers)    # numbering goes on
    with ProofStore(str(d), segment_bytes=SEG) as s:      # stable across opens; retention goes on
        assert s.proof_index(2, 4) == len(numbers) and s.proof_index(1, 3) == numbers[1, 3]
        s.remove_segments(s.plan_retention(keep=1))
        assert s.archived(1, 0) and s.get(2, 4) == proof(2, 4)
    with ProofStore(str(d), readonly=True) as s:
        assert s.proof_index(1, 3) == numbers[1, 3] and s.proven_through(2, 5)
        assert len(s.damage) == len(ks) + 1    # each entry, and what was taken as archived


def test_a_damaged_last_archived_entry_without_a_copy_keeps_its_place(orig, tmp_path):
    """The last archived entry damaged in its fields, no copy (a store
    archived before archived.zka): its state word still says ARCHIVED, so
    it is kept in place as a lost entry and the proofs after it keep their
    numbers (the old open refused the store)."""
    _, numbers, index, _ = orig
    d = _work(orig, tmp_path)
    (d / INDEX).write_bytes(_flip(index, 5 * 320 + 3))
    os.remove(d / COPY)
    with ProofStore(str(d), readonly=True) as s:
        served(s, numbers)
        assert any("entry 5 " in line and "lost" in line for line in s.damage)


def test_a_damaged_entry_where_unindexed_data_lies_is_refused(orig, tmp_path):
    """A live entry damaged in the index whose data header is damaged too:
    neither gives it back, and archived entries after it forbid a truncation."""
    _, _, index, _ = orig
    d = _work(orig, tmp_path)
    (d / INDEX).write_bytes(_flip(index, 1 * 320 + 70))
    seg0 = bytearray((d / "store-000000.zkd").read_bytes())
    seg0[232 + 9] ^= 1                  # proof 1's data entry header (proof 0 is 32 + 200 bytes)
    (d / "store-000000.zkd").write_bytes(bytes(seg0))
    with pytest.raises(StoreCorrupt, match="entry 1 fails its checksum, archived entries follow"):
        ProofStore(str(d), readonly=True)


class _Crash(Exception):
    pass


def _crashing_at(n: int, monkeypatch) -> list[int]:
    """From now on, the n-th call of a step of a crash-safe write (a data
    write, fsync, rename, unlink) raises _Crash instead of happening."""
    calls = [0]

    def step(real):
        def call(*a, **kw):
            calls[0] += 1
            if calls[0] == n:
                raise _Crash
            return real(*a, **kw)
        return call
    for mod, name in ((os, "rename"), (os, "unlink"), (os, "fsync"), (fm, "append_at"),
                      (fm, "fsync_directory")):
        monkeypatch.setattr(mod, name, step(getattr(mod, name)))
    return calls


def test_a_retention_stopped_at_every_step_opens(tmp_path, monkeypatch):
    """A retention stopped at each step of its writes (index.zki.new,
    archived.zka.new, renames, unlinks): the store opens, every proof at
    its number, archived or still there, and the next writer's open leaves
    index and copy agreeing."""
    base = tmp_path / "base"
    s = stand_in(base, {1: 4, 2: 4}, interleave=False)
    numbers = {(sym, b): s.proof_index(sym, b) for sym in (1, 2) for b in s.batches(sym)}
    s.close()
    n = 1
    while True:
        d = tmp_path / f"crash-{n}"
        shutil.copytree(base, d)
        os.remove(d / "LOCK")
        s = ProofStore(str(d), fsync=True, segment_bytes=SEG)
        plan = s.plan_retention(keep=1, symbols={2})
        with monkeypatch.context() as m:
            _crashing_at(n, m)
            try:
                s.remove_segments(plan)
                done = True
            except _Crash:
                done = False
        s._close_fds()                  # the process died: nothing closed cleanly
        for readonly in (True, False):
            with ProofStore(str(d), readonly=readonly, segment_bytes=SEG) as again:
                assert len(again) == len(numbers), n
                for (sym, b), k in numbers.items():
                    assert again.proof_index(sym, b) == k
                    if not again.archived(sym, b):
                        assert again.get(sym, b) == proof(sym, b)
        with ProofStore(str(d), readonly=True) as after:
            assert after.damage == [] and after.repairs == []
            archived = {key for key in numbers if after.archived(*key)}
            assert archived in (set(), {(2, 0), (2, 1)}), n
        assert os.path.exists(d / COPY) == bool(archived), n
        if done:
            break
        n += 1
    assert n > 8                      # every step was stopped at once


def test_prune_and_verify_name_the_damage(tmp_path, capsys):
    """The commands open such a store and say what they found."""
    a = chain(0, 4)
    with ProofStore(str(tmp_path), segment_bytes=len(a[0]) + 64) as s:     # one proof a segment
        for b, raw in enumerate(a):
            s.put(0, b, raw)
    assert cli.main(["store", "prune", str(tmp_path), "--keep", "2"]) == 0
    index = (tmp_path / INDEX).read_bytes()
    (tmp_path / INDEX).write_bytes(_flip(index, 1 * 320 + 100))
    capsys.readouterr()
    status, text = run(tmp_path)
    assert status == 0 and "UNANCHORED" in text and "symbol 0: 2 batches" in text, text
    assert f"zksidecar verify: {tmp_path / INDEX}: entry 1 " in capsys.readouterr().err
    assert cli.main(["store", "prune", str(tmp_path), "--keep", "1"]) == 0
    out = capsys.readouterr()
    assert "entry 1 " in out.err and "repaired:" in out.out and "written back" in out.out
    assert (tmp_path / INDEX).read_bytes()[:80] == index[:80]
    # lost in both copies: still verified from the first kept batch, UNANCHORED
    os.remove(tmp_path / COPY)
    (tmp_path / INDEX).write_bytes(_flip((tmp_path / INDEX).read_bytes(), 0 * 320 + 100))
    capsys.readouterr()
    status, text = run(tmp_path)
    assert status == 0 and "UNANCHORED: batches 0..2 are archived" in text, text
    assert "taken as archived: symbol 0 batch " in capsys.readouterr().err


def test_recovery_never_proves_a_lost_archived_batch_again(tmp_path):
    import test_recovery as tr

    ops = tr.flow(120)
    n = tr.proven_in_small_segments(tmp_path, ops)
    assert cli.main(["store", "prune", str(tmp_path / "proofs"), "--keep", "1"]) == 0
    proofs = tmp_path / "proofs"
    os.remove(proofs / COPY)
    index = (proofs / INDEX).read_bytes()
    (proofs / INDEX).write_bytes(_flip(index, 1 * 320 + 100))     # entry 1: lost
    got = tr.restart(tmp_path)               # the journal still marks every batch
    assert got.todo == [] and got.stored == n and got.damaged == 0
    with ProofStore(str(proofs), readonly=True) as s:
        assert len(s) == n and any("lost archived entry" in line for line in s.damage)


def test_a_copy_never_archives_a_proof_whose_own_entry_is_sound(orig, tmp_path):
    """archived.zka only fills in entries that fail their check: a copy
    claiming live proof 1 archived (every checksum right) changes nothing
    but itself, rewritten by the next writer; with entry 1 damaged too, the
    claim breaks retention's rules (symbol 1's batch 0 live before it, its
    segment holding live proofs) and the store is refused, changing nothing."""
    _, numbers, index, copy = orig
    d = _work(orig, tmp_path)
    e = fm.STORE_INDEX.unpack(index[40:80])
    forged = fm.archived_copy(6, [(1, fm.index_entry(e.symbol, e.segment, e.batch_id, e.offset,
                                                     e.length, e.data_crc, fm.STORE_ARCHIVED)),
                                  (4, index[160:200]), (5, index[200:240])])
    (d / COPY).write_bytes(forged)
    with ProofStore(str(d), readonly=True) as s:
        served(s, numbers)
    (d / INDEX).write_bytes(_flip(index, 1 * 320 + 70))
    with pytest.raises(StoreCorrupt, match="archived out of order|holds archived and live"):
        ProofStore(str(d), segment_bytes=SEG)
    assert (d / INDEX).read_bytes() == _flip(index, 1 * 320 + 70) and (d / COPY).read_bytes() == forged
    (d / INDEX).write_bytes(index)
    with ProofStore(str(d), segment_bytes=SEG) as s:
        served(s, numbers)
        assert any("rewritten" in line for line in s.repairs)
    assert (d / COPY).read_bytes() == copy


def test_a_damaged_copy_never_crashes_a_reader_nor_is_changed(orig, tmp_path):
    """archived.zka cut, forged (checksums right, numbers and states wrong),
    or a directory: every reading command answers or refuses by name, and
    none changes the store."""
    from test_bad_input_audit import _copy_with, cli, tree_digest
    _, _, index, copy = orig
    rec = copy[24:72]
    wild = fm.archived_copy(1 << 31, [(1 << 30, rec[:40]), (3, fm.index_entry(9, 9, 9, 9, 9, 9, 7))])
    cases = {f"cut to {n}": copy[:n] for n in (0, 1, 23, 24, 25, 71, len(copy) - 1)}
    cases.update({"numbers and states wrong": wild, "a directory": None,
                  "twice as long": copy + copy[24:], "index damaged too": copy})
    for name, data in cases.items():
        d = _copy_with(str(orig[0]), str(tmp_path / "s"), COPY, data)
        if name == "index damaged too":
            (tmp_path / "s" / INDEX).write_bytes(_flip(index, 4 * 320 + 70))
        before = tree_digest(d)
        for argv in (["verify", "--store", d, "--jobs", "1"],
                     ["store", "prune", d, "--keep", "1", "--dry-run"]):
            r = cli(*argv)
            assert r.traceback is None, (name, argv[0], r.traceback)
            assert tree_digest(d) == before, (name, argv[0])


def test_a_copy_of_another_version_is_named_not_used_and_written_again(orig, tmp_path):
    _, numbers, index, copy = orig
    d = _work(orig, tmp_path)
    other = bytearray(copy)
    other[4] = 2
    other[20:24] = fm.crc32(bytes(other[:20])).to_bytes(4, "little")
    (d / COPY).write_bytes(bytes(other))
    (d / INDEX).write_bytes(_flip(index, 4 * 320 + 70))       # its records would restore it
    with ProofStore(str(d), readonly=True) as s:
        served(s, numbers)
        assert any("format version 2 (this build reads 1); not used" in line for line in s.damage)
        assert any("lost" in line for line in s.damage)
    with ProofStore(str(d), segment_bytes=SEG) as s:
        assert any(f"{COPY}: rewritten" in line for line in s.repairs)
    assert fm.read_archived_copy((d / COPY).read_bytes()).records.keys() == {5}


def test_a_copy_header_with_reserved_bytes_set_is_named_and_its_span_not_used(orig):
    _, _, _, copy = orig
    bad = bytearray(copy)
    bad[16] = 1                                               # reserved2
    bad[20:24] = fm.crc32(bytes(bad[:20])).to_bytes(4, "little")
    got = fm.read_archived_copy(bytes(bad))
    assert got.entries is None and got.problems == ("its header's reserved bytes are not zero",)
    assert got.records == fm.read_archived_copy(copy).records     # each record stands alone

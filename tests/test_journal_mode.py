"""The journal says its mode (daemon/journal.py; docs/STORE.md, "The
journal's mode"): every entry a zk daemon writes carries ZK_JOURNAL_ENTRY_ZK,
the start's judgment (mode_problem) refuses a journal of the other mode,
replay refuses an entry of the other mode it meets, a zk journal an earlier
release wrote (unflagged entries and its zk-journal mark) goes on in zk
mode; a damaged flag is refused as any damaged header, and flags this
build does not know are another release's entry."""
from __future__ import annotations

import os

import pytest

from journal_files import as_written_before_flags, entry_offsets, set_flags, set_mark_fields, set_mark_flags
from test_journal import records, same, segments, workload, write
from zksidecar.daemon import formats as fm
from zksidecar.daemon.journal import (ZK_MARK_NAME, BatchMark, Journal, JournalCorrupt, JournalError,
                                      JournalModeError, OpsEntry, mode_problem, set_aside_corruption)

SEGMENT = "journal-000000.zkj"


def headers(directory) -> list[tuple[int, int]]:
    """(type, flags) of every entry of every segment, read from the bytes."""
    out = []
    for name in segments(directory):
        path = os.path.join(directory, name)
        raw = open(path, "rb").read()
        for at in entry_offsets(path):
            h = fm.JOURNAL_HEADER.unpack(raw[at:at + fm.HEADER_SIZE])
            assert raw[at + 6:at + 8] == h.flags.to_bytes(2, "little")     # bytes 6-7, little-endian
            out.append((h.type, h.flags))
    return out


@pytest.mark.parametrize("zk, flags", [(True, fm.JOURNAL_ENTRY_ZK), (False, 0)])
def test_every_entry_says_the_mode_of_the_daemon_that_wrote_it(tmp_path, zk, flags):
    with Journal(str(tmp_path), segment_bytes=512, zk=zk) as j:
        write(j, workload(20))
    got = headers(tmp_path)
    assert len(segments(tmp_path)) > 1
    assert {kind for kind, _ in got} == {fm.JOURNAL_OPS, fm.JOURNAL_BATCH}
    assert {f for _, f in got} == {flags}
    assert not (tmp_path / ZK_MARK_NAME).exists()           # a zk journal needs no file beside it


def test_flagged_entries_read_back_as_any_other(tmp_path):
    entries = workload(20)
    with Journal(str(tmp_path), segment_bytes=512, zk=True) as j:
        write(j, entries)
        assert same(list(j.replay()), entries)
        positions = [after for _, after in j.entries()]
        assert positions[-1] == j.position
        assert same([e for e, _ in j.entries(positions[3])], entries[4:])
    with Journal(str(tmp_path), segment_bytes=512, zk=True) as j:   # the open's walk of the last segment
        assert j.repairs == []
        write(j, [OpsEntry(records(2, 99), 7)])
        assert same(list(j.replay()), entries + [OpsEntry(records(2, 99), 7)])
    assert set_aside_corruption(str(tmp_path)) == []       # `zksidecar journal repair`: intact


def test_the_start_refuses_a_journal_of_the_other_mode(tmp_path):
    zk_dir, plain_dir = tmp_path / "zk", tmp_path / "plain"
    with Journal(str(zk_dir), zk=True) as j:
        write(j, workload())
    with Journal(str(plain_dir)) as j:
        write(j, workload())
    assert mode_problem(str(zk_dir), zk=True) is None and mode_problem(str(plain_dir), zk=False) is None
    why = mode_problem(str(zk_dir), zk=False)
    assert f"{zk_dir} is a zk chain's journal ({SEGMENT}'s entries are flagged zk): a transparent daemon " \
           "would prove its unproven batches as transparent proofs" in why
    why = mode_problem(str(plain_dir), zk=True)
    assert f"{plain_dir} is a transparent chain's journal ({SEGMENT}'s entries are not flagged zk, and there " \
           f"is no {ZK_MARK_NAME} mark" in why
    # a zk chain's journal from before flags and marks: the refusal says what restores it
    assert f"if this is one, put the empty file {plain_dir / ZK_MARK_NAME} beside it" in why
    for new in (tmp_path / "missing", tmp_path / "new"):        # no journal yet: either mode makes one
        assert mode_problem(str(new), zk=True) is None and mode_problem(str(new), zk=False) is None
        with Journal(str(new)):
            pass


def test_every_segment_is_read_not_only_the_first(tmp_path):
    """A zk journal with its first segments' entries unflagged and no mark
    (not a journal any release writes): refused by a zk start, for that
    segment, and by a transparent one, for the flagged segments."""
    with Journal(str(tmp_path), segment_bytes=512, zk=True) as j:
        write(j, workload(20))
    names = segments(tmp_path)
    for at in entry_offsets(tmp_path / names[0]):
        set_flags(tmp_path / names[0], at, 0)
    assert f"({names[0]}'s entries are not flagged zk" in mode_problem(str(tmp_path), zk=True)
    assert f"({names[1]}'s entries are flagged zk)" in mode_problem(str(tmp_path), zk=False)


def test_replay_refuses_an_entry_of_the_other_mode(tmp_path):
    with Journal(str(tmp_path), zk=True) as j:
        write(j, workload())
    with Journal(str(tmp_path)) as j:               # past the start's check: replay still refuses
        with pytest.raises(JournalModeError, match=f"{SEGMENT}: the journal entry at byte 0 was written by a zk "
                           "daemon, and this one reads it in transparent mode") as err:
            list(j.replay())
        assert (err.value.path, err.value.offset) == (str(tmp_path / SEGMENT), 0)
        write(j, [OpsEntry(records(1, 3), 1)])      # what a transparent daemon would add
        end = [at for at in entry_offsets(tmp_path / SEGMENT)][-1]
    with Journal(str(tmp_path), zk=True) as j:
        with pytest.raises(JournalModeError, match=f"entry at byte {end} was written by a transparent daemon, "
                           "and this one reads it in zk mode"):
            list(j.replay())


def test_a_zk_journal_an_earlier_release_wrote_goes_on_in_zk_mode(tmp_path):
    old = workload(20)
    with Journal(str(tmp_path), segment_bytes=512, zk=True) as j:
        write(j, old)
    as_written_before_flags(tmp_path)
    assert {f for _, f in headers(tmp_path)} == {0}
    assert mode_problem(str(tmp_path), zk=True) is None
    assert f"is a zk chain's journal (its {ZK_MARK_NAME} mark, which a zk daemon of an earlier release made)" \
        in mode_problem(str(tmp_path), zk=False)
    new = [OpsEntry(records(3, 5), 9), BatchMark(symbol=1, batch_id=7, first_seq=1, last_seq=3, priority=1)]
    with Journal(str(tmp_path), segment_bytes=512, zk=True) as j:
        write(j, new)
        assert same(list(j.replay()), old + new)    # unflagged, then flagged
    assert [f for _, f in headers(tmp_path)][-2:] == [fm.JOURNAL_ENTRY_ZK] * 2
    assert mode_problem(str(tmp_path), zk=True) is None
    assert mode_problem(str(tmp_path), zk=False) is not None
    os.unlink(tmp_path / ZK_MARK_NAME)              # the mark lost: its flagged segments still refuse
    assert "entries are flagged zk" in mode_problem(str(tmp_path), zk=False)


def test_a_flipped_flag_bit_fails_the_header_checksum(tmp_path):
    entries = workload(6)
    with Journal(str(tmp_path), zk=True) as j:
        write(j, entries)
    path = tmp_path / SEGMENT
    offsets = entry_offsets(path)
    good = path.read_bytes()
    for at in (offsets[2], offsets[0]):
        bad = bytearray(good)
        bad[at + 6] ^= fm.JOURNAL_ENTRY_ZK          # zk -> transparent, the checksum not made again
        path.write_bytes(bytes(bad))
        with pytest.raises(JournalCorrupt, match=f"corrupt journal entry at byte {at}: header checksum fails"):
            Journal(str(tmp_path), zk=True)
    # a damaged first header says nothing of the mode: the open refuses the damage
    assert mode_problem(str(tmp_path), zk=False) is None
    bad = bytearray(good)
    bad[offsets[-1] + 6] ^= fm.JOURNAL_ENTRY_ZK     # on the last entry: a torn tail, repaired as one
    path.write_bytes(bytes(bad))
    with Journal(str(tmp_path), zk=True) as j:
        assert "header checksum fails" in j.repairs[0]
        assert same(list(j.replay()), entries[:-1])


@pytest.mark.parametrize("flags, unknown", [(2, "0x2"), (fm.JOURNAL_ENTRY_ZK | 0x8000, "0x8000")])
def test_unknown_flag_bits_are_another_releases_entry_refused_by_name_and_not_repaired(tmp_path, flags, unknown):
    with Journal(str(tmp_path), zk=True) as j:
        write(j, workload(6))
    path = tmp_path / SEGMENT
    at = entry_offsets(path)[2]
    set_flags(path, at, flags)                      # a sound header with a bit this build does not know
    why = f"corrupt journal entry at byte {at}: unknown flags {unknown} \\(this build knows 0x1, ZK_JOURNAL_ENTRY_ZK\\)"
    with pytest.raises(JournalCorrupt, match=why) as refused:
        Journal(str(tmp_path), zk=True)
    # its checksum holds: another release wrote it, which no retry or repair changes
    assert refused.value.unusable
    data = path.read_bytes()
    with pytest.raises(JournalError, match="a journal of another version of zksidecar, not a damaged one; "
                                           "not repaired"):
        set_aside_corruption(str(tmp_path))
    assert path.read_bytes() == data and sorted(os.listdir(tmp_path)) == ["LOCK", SEGMENT]


def first_mark_at(directory) -> int:
    """Where the journal's first batch mark starts (in its first segment)."""
    with Journal(str(directory), zk=True) as j:
        first_mark = [isinstance(e, BatchMark) for e in j.replay()].index(True)
    return entry_offsets(directory / SEGMENT)[first_mark]


def test_a_batch_marks_unknown_flags_are_another_releases_entry_and_not_repaired(tmp_path):
    """A batch mark whose payload flags hold a bit this build does not know
    (ZK_MARK_RESUMED is the one it knows), its checksums sound: another
    release's mark, as unknown header flags are: unusable (the start exits
    2), named; `journal repair` reads the marks with the daemon's decoder
    and leaves it as it is, refused by name (it said "intact")."""
    with Journal(str(tmp_path), zk=True) as j:
        write(j, workload(6))
    path = tmp_path / SEGMENT
    at = first_mark_at(tmp_path)
    set_mark_flags(path, at, fm.MARK_RESUMED | 0x4)
    why = f"corrupt journal entry at byte {at}: unknown flags 0x4 in a batch mark \\(this build knows 0x1, " \
          "ZK_MARK_RESUMED\\)"
    with Journal(str(tmp_path), zk=True) as j:
        with pytest.raises(JournalCorrupt, match=why) as refused:
            list(j.replay())
    assert refused.value.unusable
    data = path.read_bytes()
    with pytest.raises(JournalError, match=f"{path}: unknown flags 0x4 in a batch mark .*: a journal of another "
                                           "version of zksidecar, not a damaged one; not repaired"):
        set_aside_corruption(str(tmp_path))
    assert path.read_bytes() == data and sorted(os.listdir(tmp_path)) == ["LOCK", SEGMENT]


@pytest.mark.parametrize("fields, reason", [
    ({"reserved": 0x100}, "a batch mark's reserved bytes are not zero \\(0x100\\)"),
    ({"priority": 7}, "batch mark priority 7 is not an integer in 0..3"),
    ({"first_seq": 2 ** 40}, "batch mark: first_seq 1099511627776 after last_seq"),
])
def test_a_batch_mark_the_daemon_calls_damaged_is_set_aside_by_journal_repair(tmp_path, fields, reason):
    """A batch mark whose checksums hold and whose fields no release writes
    (reserved bytes not zero: a release that gives them a meaning says so
    by a flag, which this build refuses as unknown first; a priority past
    3; first_seq after last_seq) is damage to the daemon: its start names
    it and says to run `journal repair` (exit 1).  Repair agrees, with the
    daemon's own decoder: it sets the journal aside from that mark (it said
    "intact", and the start went on refusing), and what is left replays."""
    with Journal(str(tmp_path), zk=True) as j:
        write(j, workload(6))
    path = tmp_path / SEGMENT
    at = first_mark_at(tmp_path)
    set_mark_fields(path, at, **fields)
    with Journal(str(tmp_path), zk=True) as j:
        with pytest.raises(JournalCorrupt, match=f"corrupt journal entry at byte {at}: {reason}") as refused:
            list(j.replay())
    assert not refused.value.unusable               # the start's hint: `journal repair`
    data = path.read_bytes()
    notes = set_aside_corruption(str(tmp_path))
    assert len(notes) == 1 and f"{len(data) - at} bytes from byte {at} set aside" in notes[0], notes
    assert (tmp_path / f"{SEGMENT}.corrupt-0").read_bytes() == data[at:]
    assert path.read_bytes() == data[:at]
    with Journal(str(tmp_path), zk=True) as j:
        assert all(isinstance(e, OpsEntry) for e in j.replay())
    assert set_aside_corruption(str(tmp_path)) == []


def test_a_zk_journal_whose_mark_was_lost_is_named_so_by_a_zk_start(tmp_path):
    """A zk journal an earlier release wrote (unflagged entries, its mark)
    that a zk daemon of this release went on with (flagged entries, in a
    segment of their own), its mark then lost: a transparent start refuses
    it for its flagged entries and says to run in zk mode; the zk start must
    not send the operator back to transparent mode, but say the mark was
    lost and how to put it back (with it, the journal goes on in zk mode)."""
    old = workload(6)
    with Journal(str(tmp_path), segment_bytes=512, zk=True) as j:
        write(j, old)
    as_written_before_flags(tmp_path)
    with Journal(str(tmp_path), segment_bytes=512, zk=True) as j:
        write(j, workload(20))
    names = segments(tmp_path)
    assert {f for _, f in headers(tmp_path)} == {0, fm.JOURNAL_ENTRY_ZK} and len(names) > 1
    os.unlink(tmp_path / ZK_MARK_NAME)
    assert "set [proofs] mode = \"zk\"" in mode_problem(str(tmp_path), zk=False)
    why = mode_problem(str(tmp_path), zk=True)
    zk_from = next(n for n in names if fm.JOURNAL_HEADER.unpack((tmp_path / n).read_bytes()[:fm.HEADER_SIZE]).flags)
    assert f"{tmp_path} is a zk chain's journal whose {ZK_MARK_NAME} mark was lost ({names[0]}'s entries are " \
           f"not flagged zk, {zk_from}'s are" in why, why
    assert f"put back the empty file {tmp_path / ZK_MARK_NAME}" in why and "mode = \"transparent\"" not in why
    open(tmp_path / ZK_MARK_NAME, "wb").close()
    assert mode_problem(str(tmp_path), zk=True) is None


def test_first_entries_damaged_or_gone_give_a_transparent_reader_no_zk_entry(tmp_path):
    """Every segment's first entry unreadable (a header damaged, the last
    segment emptied as a torn tail is): the start's check finds nothing to
    judge, so the reader's own check is what keeps a zk chain's records
    from a transparent daemon.  A replay from the start stops at the damage
    (JournalCorrupt), one from a later position (a snapshot's) at the first
    flagged entry (JournalModeError): no entry is yielded either way."""
    with Journal(str(tmp_path), segment_bytes=512, zk=True) as j:
        write(j, workload(20))
    names = segments(tmp_path)
    assert len(names) >= 3
    for name in names[:-1]:
        raw = bytearray((tmp_path / name).read_bytes())
        raw[17] ^= 0xFF                             # seen_ns: the header checksum fails
        (tmp_path / name).write_bytes(bytes(raw))
    (tmp_path / names[-1]).write_bytes(b"")
    assert mode_problem(str(tmp_path), zk=False) is None
    second = second_entry_at(tmp_path / names[0])
    with Journal(str(tmp_path), segment_bytes=512) as j:
        with pytest.raises(JournalCorrupt, match=f"{names[0]}: corrupt journal entry at byte 0: header checksum"):
            next(j.replay())
        with pytest.raises(JournalModeError, match=f"{names[0]}: the journal entry at byte {second} was written "
                           "by a zk daemon"):
            next(j.replay((0, second)))


def second_entry_at(path) -> int:
    """Where the second entry of the segment at `path` starts, read past a
    damaged first header by its length field."""
    h = fm.JOURNAL_HEADER.unpack(open(path, "rb").read(fm.HEADER_SIZE))
    return fm.HEADER_SIZE + h.length

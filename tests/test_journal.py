"""The journal (daemon/journal.py): round trips, segment rolls, fsync
policies, repair of a torn tail at every byte, corruption in the middle
named by file and offset, and a full disk (a real EFBIG from RLIMIT_FSIZE)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zksidecar.daemon import formats as fm
from zksidecar.daemon.journal import (MIN_SEGMENT_BYTES, BatchMark, Journal, JournalCorrupt, JournalError,
                                      JournalFull, OpsEntry)
from zksidecar.engine.records import OP_DTYPE


def records(n: int, seed: int) -> np.ndarray:
    """n records of random bytes: the journal must carry every byte as is."""
    raw = np.random.default_rng(seed).integers(0, 256, (n, 64), dtype=np.uint8)
    return raw.view(OP_DTYPE).reshape(n)


def workload(k: int = 6) -> list:
    out = []
    for i in range(k):
        out.append(OpsEntry(records(1 + i % 3, i), 1_000 + i))
        if i % 2:
            out.append(BatchMark(symbol=i, batch_id=i // 2, first_seq=i, last_seq=i + 2, priority=i % 4))
    return out


def write(j: Journal, entries: list) -> None:
    for e in entries:
        if isinstance(e, BatchMark):
            j.append_batch(e)
        else:
            j.append_ops(e.records, e.seen_ns)


def same(got: list, want: list) -> bool:
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if type(g) is not type(w):
            return False
        if isinstance(w, BatchMark):
            if g != w:
                return False
        elif g.seen_ns != w.seen_ns or g.records.tobytes() != w.records.tobytes() \
                or g.records.dtype != OP_DTYPE:
            return False
    return True


def segments(d) -> list[str]:
    return sorted(p for p in os.listdir(d) if p.endswith(".zkj"))


def test_round_trip_open_and_reopened(tmp_path):
    entries = workload()
    with Journal(str(tmp_path)) as j:
        write(j, entries)
        assert same(list(j.replay()), entries)
    with Journal(str(tmp_path)) as j:
        assert same(list(j.replay()), entries)
        assert j.repairs == []
        more = workload(3)
        write(j, more)
        assert same(list(j.replay()), entries + more)


def test_an_append_is_one_entry_holding_the_array_bytes(tmp_path):
    recs = records(5, 1)[::-1]               # not contiguous: stored in this order all the same
    with Journal(str(tmp_path)) as j:
        j.append_ops(recs, 42)
    raw = (tmp_path / "journal-000000.zkj").read_bytes()
    head = np.frombuffer(raw[:32], dtype=fm.JOURNAL_ENTRY_DTYPE)[0]
    assert (head["magic"], head["version"], head["type"]) == (fm.JOURNAL_MAGIC, 1, fm.JOURNAL_OPS)
    assert (head["length"], head["count"], head["seen_ns"]) == (5 * 64, 5, 42)
    assert raw[32:] == recs.tobytes() and len(raw) == 32 + 5 * 64
    assert head["payload_crc"] == fm.crc32(raw[32:]) and head["header_crc"] == fm.crc32(raw[:28])


def test_segments_roll_and_replay_in_order(tmp_path):
    entries = workload(40)
    with Journal(str(tmp_path), segment_bytes=512) as j:
        write(j, entries)
    names = segments(tmp_path)
    assert len(names) > 5 and names[0] == "journal-000000.zkj"
    assert all(os.path.getsize(tmp_path / n) <= 512 for n in names)
    with Journal(str(tmp_path), segment_bytes=512) as j:
        assert same(list(j.replay()), entries)
    # an entry bigger than a segment gets one to itself
    with Journal(str(tmp_path), segment_bytes=512) as j:
        j.append_ops(records(20, 9), 7)
        assert same(list(j.replay())[-1:], [OpsEntry(records(20, 9), 7)])
    assert os.path.getsize(tmp_path / segments(tmp_path)[-1]) == 32 + 20 * 64


@pytest.mark.parametrize("policy, expected", [("always", 9 + 1), ("batch", 3 + 1), ("interval", 9 + 1),
                                              ("never", 0)])
def test_fsync_policies(tmp_path, monkeypatch, policy, expected):
    calls = []
    real = os.fdatasync

    def counting_fdatasync(fd):   # test double: counts the journal's syncs, then really syncs
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting_fdatasync)
    entries = workload(6)                       # 6 ops entries and 3 marks: 9 appends
    with Journal(str(tmp_path), fsync=policy, fsync_interval=0) as j:
        write(j, entries)
    assert len(calls) == expected
    with Journal(str(tmp_path), fsync=policy) as j:
        assert same(list(j.replay()), entries)


def test_interval_policy_waits_for_the_interval(tmp_path, monkeypatch):
    calls = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd)))  # test double
    with Journal(str(tmp_path), fsync="interval", fsync_interval=3600) as j:
        write(j, workload(6))
        assert calls == []
        j.sync()
        assert len(calls) == 1


@pytest.mark.parametrize("bad", ["sometimes", "", None, "ALWAYS"])
def test_a_bad_fsync_policy_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="fsync policy .* is not one of always, batch, interval, never"):
        Journal(str(tmp_path), fsync=bad)
    assert not segments(tmp_path)


def test_bad_arguments(tmp_path):
    with Journal(str(tmp_path)) as j:
        with pytest.raises(TypeError, match="record"):
            j.append_ops(np.zeros(3, dtype=np.uint64), 1)
        with pytest.raises(ValueError, match="no records"):
            j.append_ops(records(0, 1), 1)
        with pytest.raises(TypeError):
            j.append_batch((1, 2, 3, 4, 0))
        with pytest.raises(JournalError, match="another writer"):
            Journal(str(tmp_path))
    with pytest.raises(JournalError, match="closed"):
        j.append_ops(records(1, 1), 1)
    with pytest.raises(ValueError, match="first_seq"):
        BatchMark(1, 0, 5, 4, 0)
    with pytest.raises(ValueError, match="priority"):
        BatchMark(1, 0, 1, 4, 4)
    with pytest.raises(ValueError, match="segment_bytes"):
        Journal(str(tmp_path), segment_bytes=100)


def _journal_with_last_entry(tmp_path, last) -> tuple[bytes, int, list]:
    """A one-segment journal of workload() then `last`: (file bytes, offset
    of the last entry, the entries before it)."""
    before = workload(5)
    d = tmp_path / "orig"
    with Journal(str(d)) as j:
        write(j, before)
        start = os.path.getsize(d / "journal-000000.zkj")
        write(j, [last])
    return (d / "journal-000000.zkj").read_bytes(), start, before


def _reopen(tmp_path, raw: bytes, fsync="batch"):
    d = tmp_path / "copy"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    (d / "journal-000000.zkj").write_bytes(raw)
    return d, Journal(str(d), fsync=fsync)


@pytest.mark.parametrize("last", [OpsEntry(records(3, 77), 5),
                                  BatchMark(symbol=3, batch_id=9, first_seq=1, last_seq=8, priority=0)])
def test_a_torn_tail_at_every_byte_is_repaired(tmp_path, last):
    raw, start, before = _journal_with_last_entry(tmp_path, last)
    for cut in range(start, len(raw)):
        d, j = _reopen(tmp_path, raw[:cut], fsync="never")      # the same repair, without the wait
        with j:
            assert same(list(j.replay()), before), cut
            assert os.path.getsize(d / "journal-000000.zkj") == start
            assert (j.repairs != []) == (cut > start)
            if cut > start:
                assert f"at byte {start}" in j.repairs[0]
            write(j, [last])                     # appends go on from the repaired end
            assert same(list(j.replay()), before + [last])


def test_a_failing_checksum_or_zeros_on_the_last_entry_is_a_torn_tail(tmp_path):
    raw, start, before = _journal_with_last_entry(tmp_path, OpsEntry(records(2, 5), 6))
    for at, why in [(start + 40, "payload checksum"), (start + 17, "header checksum"),
                    (start, "bad magic")]:
        bad = bytearray(raw)
        bad[at] ^= 0x10
        _, j = _reopen(tmp_path, bytes(bad))
        with j:
            assert same(list(j.replay()), before)
            assert why in j.repairs[0]
    _, j = _reopen(tmp_path, raw + bytes(3000))      # blocks a power loss left zero
    with j:
        assert same(list(j.replay()), before + [OpsEntry(records(2, 5), 6)])
        assert "zero-filled" in j.repairs[0]


def test_corruption_in_the_middle_is_an_error_naming_file_and_offset(tmp_path):
    raw, start, before = _journal_with_last_entry(tmp_path, OpsEntry(records(2, 5), 6))
    second = 32 + 64 * len(before[0].records)           # offset of the second entry
    fds = len(os.listdir("/proc/self/fd"))
    for at in (second + 40, second + 9, second + 1):  # payload, length, magic
        bad = bytearray(raw)
        bad[at] ^= 0x01
        with pytest.raises(JournalCorrupt, match=f"journal-000000.zkj: corrupt journal entry at byte {second}") \
                as err:
            _reopen(tmp_path, bytes(bad))
        assert err.value.offset == second
    assert len(os.listdir("/proc/self/fd")) == fds     # the refused opens closed what they opened


def test_corruption_in_an_earlier_segment_is_found_by_replay(tmp_path):
    entries = workload(40)
    with Journal(str(tmp_path), segment_bytes=512) as j:
        write(j, entries)
    names = segments(tmp_path)
    first = tmp_path / names[1]
    raw = bytearray(first.read_bytes())
    raw[-1] ^= 0xFF                          # the last byte of a finished segment
    first.write_bytes(bytes(raw))
    with Journal(str(tmp_path), segment_bytes=512) as j:   # only the last segment is repaired
        with pytest.raises(JournalCorrupt, match=names[1]):
            list(j.replay())
    first.write_bytes(bytes(raw[:-1]))       # a finished segment cut short is corruption too
    with Journal(str(tmp_path), segment_bytes=512) as j:
        with pytest.raises(JournalCorrupt, match="short payload"):
            list(j.replay())
    os.remove(first)                         # and so is a missing segment
    with pytest.raises(JournalCorrupt, match="segment file is missing"):
        Journal(str(tmp_path))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 6), min_size=1, max_size=25), segment_bytes=st.integers(256, 2048),
       cut=st.floats(0, 1))
def test_any_cut_of_the_last_segment_replays_a_prefix(tmp_path_factory, sizes, segment_bytes, cut):
    """Any workload, any segment size, the last segment cut anywhere: what
    replays is exactly the entries that were whole, in order."""
    d = tmp_path_factory.mktemp("j")
    entries = [OpsEntry(records(n, k), k) if n else
               BatchMark(symbol=k, batch_id=k, first_seq=k, last_seq=k + 1, priority=k % 4)
               for k, n in enumerate(sizes)]
    with Journal(str(d), segment_bytes=segment_bytes, fsync="never") as j:
        write(j, entries)
    last = d / segments(d)[-1]
    raw = last.read_bytes()
    keep = int(cut * len(raw))
    last.write_bytes(raw[:keep])
    walk = fm.EntryWalk(lambda o, n: raw[o:o + n], len(raw), fm.JOURNAL_LAYOUT, str(last), True,
                        JournalCorrupt)
    ends = [at + 32 + len(payload) for at, _, payload in walk]    # the last segment's entries
    expected = len(entries) - len(ends) + sum(end <= keep for end in ends)
    with Journal(str(d), segment_bytes=segment_bytes, fsync="never") as j:
        got = list(j.replay())
    assert len(got) == expected and same(got, entries[:expected])
    write_more = OpsEntry(records(1, 99), 99)
    with Journal(str(d), segment_bytes=segment_bytes, fsync="never") as j:
        write(j, [write_more])
        assert same(list(j.replay()), got + [write_more])


FULL_CHILD = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    from zksidecar.daemon.journal import Journal, JournalFull, BatchMark
    from zksidecar.engine.records import OP_DTYPE
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # write() fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (5000, 5000))
    j = Journal(sys.argv[1], fsync="always")
    done = 0
    try:
        while True:
            recs = np.full(7, done % 256, dtype=np.uint8).repeat(64).view(OP_DTYPE)
            j.append_ops(recs, done)
            done += 1
    except JournalFull as exc:
        print(done)
        print(exc)
    j.close()
""")


def test_a_full_disk_is_reported_and_loses_nothing(tmp_path):
    out = subprocess.run([sys.executable, "-c", FULL_CHILD, str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    done, message = out.stdout.splitlines()[:2]
    assert issubclass(JournalFull, JournalError) and issubclass(JournalError, OSError)
    assert "disk full or file size limit" in message and "nothing was written" in message
    assert "File too large" in message
    with Journal(str(tmp_path)) as j:
        got = list(j.replay())
        assert j.repairs == []
        assert [e.seen_ns for e in got] == list(range(int(done)))
        assert all((e.records.view(np.uint8) == e.seen_ns % 256).all() for e in got)
        assert os.path.getsize(tmp_path / "journal-000000.zkj") == int(done) * (32 + 7 * 64)
        j.append_ops(records(1, 0), 99)          # room again: appends go on
    with Journal(str(tmp_path)) as j:
        assert len(list(j.replay())) == int(done) + 1


def test_a_reader_leaves_a_torn_tail_in_place_and_writes_nothing(tmp_path):
    """Journal(reader=True), what `zksidecar reprove` opens: a torn tail is
    named (torn_tail) and left, replay ends before it, no append is taken;
    a directory without segments gets none.  The writer's open drops it."""
    d = str(tmp_path / "j")
    with Journal(d, fsync="never") as j:
        j.append_ops(records(5, 1), 1)
        j.append_ops(records(7, 2), 2)
    seg = os.path.join(d, "journal-000000.zkj")
    cut = open(seg, "rb").read()[:-10]
    open(seg, "wb").write(cut)
    with Journal(d, fsync="never", reader=True) as r:
        assert r.torn_tail is not None and "journal-000000.zkj" in r.torn_tail
        assert [len(e.records) for e in r.replay()] == [5]
        with pytest.raises(JournalError, match="reader"):
            r.append_ops(records(1, 3), 3)
    assert open(seg, "rb").read() == cut
    with Journal(d, fsync="never") as w:
        assert w.repairs and w.torn_tail is None
    assert len(open(seg, "rb").read()) < len(cut)
    empty = str(tmp_path / "empty")
    os.mkdir(empty)
    with Journal(empty, fsync="never", reader=True) as r:
        assert list(r.replay()) == []
    assert os.listdir(empty) == ["LOCK"]


def test_a_reader_removes_no_segment(tmp_path):
    """A reader writes nothing: retention's remove_before is refused, the
    segments it would have removed kept."""
    d = str(tmp_path / "j")
    with Journal(d, fsync="never", segment_bytes=MIN_SEGMENT_BYTES) as j:
        while j.position[0] < 2:
            j.append_ops(records(50, 1), 1)
    before = sorted(os.listdir(d))
    with Journal(d, fsync="never", reader=True) as r:
        with pytest.raises(JournalError, match="reader"):
            r.remove_before(2, 0)
        assert r.first == 0
    assert sorted(os.listdir(d)) == before and "journal-000000.zkj" in before

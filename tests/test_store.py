"""The proof store (daemon/store.py) and the on-disk formats of
csrc/formats/zk_store.h: layouts against the compiled header, round trips,
duplicates, index rebuilds, a put killed at every byte, corruption named by
file and offset, a full disk (a real EFBIG from RLIMIT_FSIZE), and
`zksidecar verify --store` on real batch proofs."""
from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from format_docs import STORE_MD, check_byte_table, check_layout
from zksidecar.daemon import formats as fm
from zksidecar.daemon.store import ProofStore, StoreCorrupt, StoreError, StoreFull
from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.native import ffi, lib
from zksidecar.engine.records import struct_of
from zksidecar.prover import params
from zksidecar.prover.orderbook import proof_file, prove_batch
from zksidecar.tools import cli
from zksidecar.tools.proofs import verify_store

# ------------------------------------------------------------- formats --

PAIRS = [("zk_journal_entry", fm.JOURNAL_ENTRY_DTYPE), ("zk_journal_batch", fm.JOURNAL_BATCH_DTYPE),
         ("zk_store_entry", fm.STORE_ENTRY_DTYPE), ("zk_store_index", fm.STORE_INDEX_DTYPE),
         ("zk_store_copy_header", fm.STORE_COPY_HEADER_DTYPE),
         ("zk_store_archived", fm.STORE_ARCHIVED_DTYPE)]


@pytest.mark.parametrize("ctype, dtype", PAIRS)
def test_layouts_agree_with_the_header(ctype, dtype):
    check_layout(ctype, dtype)
    assert struct_of(dtype).size == dtype.itemsize      # packed, no gaps


@pytest.mark.parametrize("title, dtype", [
    ("### Entry header (`zk_journal_entry`)", fm.JOURNAL_ENTRY_DTYPE),
    ("### `BATCH` payload (`zk_journal_batch`)", fm.JOURNAL_BATCH_DTYPE),
    ("### Index entry (`zk_store_index`)", fm.STORE_INDEX_DTYPE),
    ("#### Header (`zk_store_copy_header`)", fm.STORE_COPY_HEADER_DTYPE),
    ("#### Record (`zk_store_archived`)", fm.STORE_ARCHIVED_DTYPE)])
def test_store_md_tables_agree_with_the_layouts(title, dtype):
    check_byte_table(title, dtype, STORE_MD)


def test_constants_agree_with_the_header():
    assert lib.ZK_STORE_VERSION == fm.VERSION
    assert lib.ZK_JOURNAL_MAGIC == fm.JOURNAL_MAGIC and fm.JOURNAL_MAGIC.to_bytes(4, "little") == b"ZKJE"
    assert lib.ZK_STORE_MAGIC == fm.STORE_MAGIC and fm.STORE_MAGIC.to_bytes(4, "little") == b"ZKSE"
    assert lib.ZK_STORE_ARCHIVED == fm.STORE_ARCHIVED and \
        fm.STORE_ARCHIVED.to_bytes(4, "little") == b"ARCV"
    assert lib.ZK_STORE_COPY_MAGIC == fm.STORE_COPY_MAGIC and \
        fm.STORE_COPY_MAGIC.to_bytes(4, "little") == b"ZKSA"
    assert lib.ZK_STORE_COPY_VERSION == fm.STORE_COPY_VERSION
    assert (lib.ZK_JOURNAL_OPS, lib.ZK_JOURNAL_BATCH) == (fm.JOURNAL_OPS, fm.JOURNAL_BATCH)
    assert (lib.ZK_JOURNAL_ENTRY_ZK, lib.ZK_MARK_RESUMED) == (fm.JOURNAL_ENTRY_ZK, fm.MARK_RESUMED)
    assert fm.HEADER_SIZE == ffi.sizeof("zk_journal_entry") == ffi.sizeof("zk_store_entry")


def test_a_header_written_by_python_reads_in_c():
    payload = bytes(range(64))
    raw = fm.journal_header(fm.JOURNAL_OPS, payload, 1, 1 << 40, fm.JOURNAL_ENTRY_ZK)
    buf = bytearray(raw)
    c = ffi.cast("zk_journal_entry *", ffi.from_buffer(buf))
    assert (c.magic, c.version, c.type, c.flags, c.length, c.count, c.seen_ns, c.payload_crc) == \
        (lib.ZK_JOURNAL_MAGIC, 1, lib.ZK_JOURNAL_OPS, lib.ZK_JOURNAL_ENTRY_ZK, 64, 1, 1 << 40, fm.crc32(payload))
    assert c.header_crc == fm.crc32(raw[:28])
    raw = fm.store_header(7, 1 << 40, 1234, 0xDEADBEEF)
    buf = bytearray(raw)                       # kept alive while C reads it
    c = ffi.cast("zk_store_entry *", ffi.from_buffer(buf))
    assert (c.magic, c.version, c.symbol, c.length, c.batch_id, c.data_crc) == \
        (lib.ZK_STORE_MAGIC, 1, 7, 1234, 1 << 40, 0xDEADBEEF)
    assert c.header_crc == fm.crc32(raw[:28])
    raw = fm.index_entry(7, 3, 9, 1 << 33, 55, 66)
    buf = bytearray(raw)
    c = ffi.cast("zk_store_index *", ffi.from_buffer(buf))
    assert (c.symbol, c.segment, c.batch_id, c.offset, c.length, c.data_crc, c.state) == \
        (7, 3, 9, 1 << 33, 55, 66, 0)
    assert c.entry_crc == fm.crc32(raw[:32])
    raw = fm.archived_copy(9, [(7, fm.index_entry(7, 3, 9, 1 << 33, 55, 66, fm.STORE_ARCHIVED))])
    buf = bytearray(raw)
    mem = ffi.from_buffer(buf)
    h = ffi.cast("zk_store_copy_header *", mem)
    assert (h.magic, h.version, h.entries, h.count) == (lib.ZK_STORE_COPY_MAGIC, 1, 9, 1)
    assert h.header_crc == fm.crc32(raw[:20])
    r = ffi.cast("zk_store_archived *", mem + 24)
    assert (r.number, bytes(r.entry)) == (7, raw[24:64]) and r.record_crc == fm.crc32(raw[24:68])
    assert ffi.cast("zk_store_index *", mem + 24).state == lib.ZK_STORE_ARCHIVED


# --------------------------------------------------------------- store --

def proof(symbol: int, batch_id: int, size: int = 200) -> bytes:
    """Stand-in proof bytes (the store does not read them): distinct per key."""
    seed = (symbol * 1000 + batch_id).to_bytes(8, "little")
    return (seed * (size // 8 + 1))[:size]


KEYS = [(1, 0), (1, 1), (5, 0), (1, 2), (5, 2), (5, 1), (0, 7)]


def fill(d, keys=KEYS, **kw) -> ProofStore:
    s = ProofStore(str(d), **kw)
    for k, (sym, bid) in enumerate(keys):
        assert s.put(sym, bid, proof(sym, bid, 100 + 37 * k)) == k
    return s


def check(s: ProofStore, keys=KEYS) -> None:
    assert len(s) == len(keys)
    for k, (sym, bid) in enumerate(keys):
        assert s.has(sym, bid) and s.proof_index(sym, bid) == k
        assert s.get(sym, bid) == proof(sym, bid, 100 + 37 * k)
    assert s.symbols() == sorted({sym for sym, _ in keys})
    for sym in s.symbols():
        assert s.batches(sym) == sorted(bid for owner, bid in keys if owner == sym)


def test_round_trip_and_reopen(tmp_path):
    with fill(tmp_path) as s:
        check(s)
        assert not s.has(1, 3) and s.batches(99) == []
        with pytest.raises(KeyError, match="no proof of symbol 1 batch 3"):
            s.get(1, 3)
    with ProofStore(str(tmp_path)) as s:
        check(s)
        assert s.repairs == []
        assert s.put(1, 3, b"x") == len(KEYS)


def test_a_duplicate_put_is_refused(tmp_path):
    with fill(tmp_path) as s:
        with pytest.raises(StoreError, match="symbol 5 batch 2 is already stored .*proven twice"):
            s.put(5, 2, b"again")
    with ProofStore(str(tmp_path)) as s:
        with pytest.raises(StoreError, match="already stored"):
            s.put(1, 0, b"again")
        check(s)


def test_bad_arguments_and_a_second_writer(tmp_path):
    with fill(tmp_path) as s:
        with pytest.raises(ValueError, match="proof of 0 bytes"):
            s.put(2, 0, b"")
        with pytest.raises(ValueError, match="out of range"):
            s.put(-1, 0, b"x")
        with pytest.raises(StoreError, match="another writer"):
            ProofStore(str(tmp_path))
        with ProofStore(str(tmp_path), readonly=True) as ro:    # a verifier beside the daemon
            check(ro)
            with pytest.raises(StoreError, match="read-only"):
                ro.put(2, 0, b"x")
    with pytest.raises(StoreError, match="closed"):
        s.put(2, 0, b"x")
    with pytest.raises(StoreError, match="no such directory"):
        ProofStore(str(tmp_path / "nowhere"), readonly=True)


def test_segments_roll(tmp_path):
    keys = [(3, b) for b in range(12)]
    with fill(tmp_path, keys, segment_bytes=1024) as s:
        check(s, keys)
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith(".zkd"))
    assert len(names) > 3 and all(os.path.getsize(tmp_path / n) <= 1024 for n in names)
    with ProofStore(str(tmp_path), segment_bytes=1024) as s:
        check(s, keys)
        s.put(3, 99, proof(3, 99, 5000))           # bigger than a segment: one of its own
    assert os.path.getsize(tmp_path / f"store-{len(names):06d}.zkd") == 32 + 5000


def _copy(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    os.remove(dst / "LOCK")


def test_the_index_is_rebuilt_when_deleted_torn_or_damaged(tmp_path):
    orig = tmp_path / "orig"
    fill(orig, segment_bytes=600).close()
    index = (orig / "index.zki").read_bytes()
    assert len(index) == 40 * len(KEYS)
    copy = tmp_path / "copy"
    cases = [b""] + [index[:cut] for cut in range(1, len(index), 7)]
    damaged = bytearray(index)
    damaged[3 * 40 + 17] ^= 4                   # entry 3's offset
    cases.append(bytes(damaged))
    cases.append(index + index[:40])            # an extra entry repeating the first
    for raw in cases:
        _copy(orig, copy)
        (copy / "index.zki").write_bytes(raw)
        with ProofStore(str(copy), segment_bytes=600) as s:
            check(s)
            assert (s.repairs != []) == (raw != index)
        assert (copy / "index.zki").read_bytes() == index
    _copy(orig, copy)
    os.remove(copy / "index.zki")
    with ProofStore(str(copy), readonly=True) as s:       # read-only: found, not written
        check(s)
    assert not (copy / "index.zki").exists()


def test_an_emptied_middle_segment_renumbers_nothing(tmp_path):
    """Segment 1 of 3 emptied (its proofs' data gone): the index is cut at
    its first entry, and the data rebuilt after it held batches 4 and 5 as
    proofs 2 and 3, completion records naming other proofs.  Every open
    refuses instead; the index is left as it is."""
    with ProofStore(str(tmp_path), fsync=False, segment_bytes=600) as s:
        for b in range(6):                          # two proofs a segment
            s.put(1, b, proof(1, b))
    index = (tmp_path / "index.zki").read_bytes()
    os.truncate(tmp_path / "store-000001.zkd", 0)
    for readonly in (True, False):
        with pytest.raises(StoreCorrupt, match="index entry 4 .*would renumber it 2"):
            ProofStore(str(tmp_path), readonly=readonly, segment_bytes=600)
    assert (tmp_path / "index.zki").read_bytes() == index


def test_an_index_of_thousands_is_rebuilt_in_one_write(tmp_path):
    with ProofStore(str(tmp_path), fsync=False) as s:
        for b in range(1500):                      # more entries than one pwritev takes buffers
            s.put(b % 4, b, b"%d" % b)
    os.remove(tmp_path / "index.zki")
    with ProofStore(str(tmp_path), fsync=False) as s:
        assert len(s) == 1500 and s.get(3, 1499) == b"1499" and s.proof_index(2, 6) == 6
    assert os.path.getsize(tmp_path / "index.zki") == 1500 * 40


def test_a_put_killed_at_any_byte_loses_only_that_proof(tmp_path):
    """A kill -9 mid-put leaves a prefix of the data entry and maybe not
    the index entry: every cut of the last data entry, with and without."""
    orig = tmp_path / "orig"
    fill(orig).close()
    data = (orig / "store-000000.zkd").read_bytes()
    index = (orig / "index.zki").read_bytes()
    before, last = KEYS[:-1], KEYS[-1]
    start = len(data) - 32 - (100 + 37 * (len(KEYS) - 1))
    copy = tmp_path / "copy"
    for cut in list(range(start, start + 40)) + list(range(start + 40, len(data), 23)):
        for idx in (index, index[:-40], index[:-13]):
            _copy(orig, copy)
            (copy / "store-000000.zkd").write_bytes(data[:cut])
            (copy / "index.zki").write_bytes(idx)
            with ProofStore(str(copy), fsync=False) as s:
                check(s, before)
                assert os.path.getsize(copy / "store-000000.zkd") == start
                assert s.put(*last, proof(*last, 100 + 37 * (len(KEYS) - 1))) == len(before)
                check(s)
    _copy(orig, copy)                     # the data written, the index entry not: recovered
    (copy / "index.zki").write_bytes(index[:-40])
    with ProofStore(str(copy)) as s:
        check(s)
        assert "does not list" in s.repairs[0]


def test_read_only_sees_whole_proofs_and_changes_nothing(tmp_path):
    with fill(tmp_path) as writer:            # a live writer, mid-put: a torn tail on disk
        seg = tmp_path / "store-000000.zkd"
        with open(seg, "ab") as f:
            f.write(fm.store_header(9, 9, 1000, 0) + b"half")
        before = seg.read_bytes(), (tmp_path / "index.zki").read_bytes()
        with ProofStore(str(tmp_path), readonly=True) as ro:
            check(ro)
            assert ro.repairs == []
        assert (seg.read_bytes(), (tmp_path / "index.zki").read_bytes()) == before
        writer.close()


def _flipped(orig, copy, at: int, index_entries: int = len(KEYS)) -> tuple[bytes, int]:
    """A copy of the store `orig` with one bit of its data flipped at byte
    `at` (negative: from the end) and its index cut to `index_entries`
    entries; returns (the damaged data, its size)."""
    _copy(orig, copy)
    data = bytearray((orig / "store-000000.zkd").read_bytes())
    data[at] ^= 0x40
    (copy / "store-000000.zkd").write_bytes(bytes(data))
    index = (orig / "index.zki").read_bytes()
    (copy / "index.zki").write_bytes(index[:40 * index_entries])
    return bytes(data), len(data)


def _offset(k: int) -> int:
    """Where proof number k of fill()'s store starts (one segment)."""
    return sum(32 + 100 + 37 * j for j in range(k))


@pytest.mark.parametrize("which", [1, len(KEYS) - 1], ids=["middle", "last"])
@pytest.mark.parametrize("part", ["proof bytes", "entry header"])
def test_a_damaged_proof_the_index_vouches_for_is_kept_and_named(tmp_path, which, part):
    """A flipped bit in a proof (or its entry header) whose index entry is
    intact is damage, not a crash-cut write (put writes the index entry
    after the data): nothing is truncated or dropped, by a writer or a
    reader; get() names the file, symbol, batch and byte; put(replace=True)
    supersedes it and the damaged bytes stay where they were."""
    orig, copy = tmp_path / "orig", tmp_path / "copy"
    fill(orig).close()
    at = _offset(which)
    data, size = _flipped(orig, copy, at + (32 + 50 if part == "proof bytes" else 9))
    sym, bid = KEYS[which]
    sound = [k for k in KEYS if k != (sym, bid)]
    for kw in ({"readonly": True}, {}):
        with ProofStore(str(copy), **kw) as s:
            assert s.repairs == [] and len(s) == len(KEYS) and s.proof_index(sym, bid) == which
            with pytest.raises(StoreCorrupt, match=f"store-000000.zkd: corrupt proof store entry at "
                                                   f"byte {at}: symbol {sym} batch {bid}: ") as err:
                s.get(sym, bid)
            assert err.value.offset == at and s.check(sym, bid) is not None
            assert all(s.get(*k) == proof(*k, 100 + 37 * KEYS.index(k)) for k in sound)
        assert (copy / "store-000000.zkd").read_bytes() == data       # not a byte changed
    with ProofStore(str(copy)) as s:
        assert s.put(sym, bid, b"proven again", replace=True) == len(KEYS)
    with ProofStore(str(copy)) as s:
        assert s.get(sym, bid) == b"proven again" and s.check(sym, bid) is None
        assert s.proof_index(sym, bid) == len(KEYS) and len(s) == len(KEYS)
    assert (copy / "store-000000.zkd").read_bytes()[:size] == data     # superseded, kept
    os.remove(copy / "index.zki")
    if part == "entry header":      # without the index, nothing says where that entry ends
        with pytest.raises(StoreCorrupt, match=f"at byte {at}: header checksum"):
            ProofStore(str(copy))
        return
    with ProofStore(str(copy)) as s:    # a damaged payload under a sound header: walked past
        assert s.get(sym, bid) == b"proven again" and s.proof_index(sym, bid) == len(KEYS)


def test_a_damaged_last_proof_no_index_entry_vouches_for_is_a_torn_tail(tmp_path, capsys):
    """The same flipped bit in the last proof, its index entry not written
    (a crash between the data and the index): a torn tail, which the
    writer's open drops; a reader and a writer opened with
    drop_torn_tail=False (`zksidecar store prune`) leave it and say where."""
    orig, copy = tmp_path / "orig", tmp_path / "copy"
    fill(orig).close()
    at = _offset(len(KEYS) - 1)
    data, size = _flipped(orig, copy, -5, index_entries=len(KEYS) - 1)
    tail = f"store-000000.zkd: a torn tail of {size - at} bytes at byte {at} (payload checksum fails)"
    for kw in ({"readonly": True}, {"drop_torn_tail": False}):
        with ProofStore(str(copy), **kw) as s:
            check(s, KEYS[:-1])
            assert s.repairs == [] and s.torn_tail.endswith(tail)
            with pytest.raises(StoreError, match="read-only" if kw.get("readonly")
                               else "torn tail .* takes no puts"):
                s.put(9, 9, b"x")
        assert (copy / "store-000000.zkd").read_bytes() == data
    from zksidecar.tools.proofs import _open_store     # the commands that read a store say so
    _open_store("verify", str(copy)).close()
    assert tail in capsys.readouterr().err
    with ProofStore(str(copy)) as s:
        check(s, KEYS[:-1])
        assert s.torn_tail is None and s.repairs[0].endswith(tail.replace(": a torn", ": dropped a torn"))
        assert s.put(*KEYS[-1], proof(*KEYS[-1], 100 + 37 * (len(KEYS) - 1))) == len(KEYS) - 1
    assert os.path.getsize(copy / "store-000000.zkd") == size


def test_a_damaged_newest_proof_past_a_damaged_index_entry_is_not_dropped(tmp_path):
    """Two faults: a bit flipped in a middle index entry (the index is kept
    up to it, the rest rebuilt from the data) and one in the newest proof's
    payload, which the data scan alone would take for a torn tail.  A later
    index entry, sound itself, vouches for that proof whole within the
    file, so it is damage: every open refuses, naming it (the daemon would
    drop it; prune, a writer too, would rewrite the index without that
    entry, after which the daemon would; a reader would show the store
    without it), and nothing changes (review of the store's damage
    handling)."""
    orig, copy = tmp_path / "orig", tmp_path / "copy"
    fill(orig).close()
    data, _ = _flipped(orig, copy, -5)                     # the newest proof's payload
    index = bytearray((orig / "index.zki").read_bytes())
    index[40 * 1 + 5] ^= 0x01                              # entry 1 fails its checksum
    (copy / "index.zki").write_bytes(bytes(index))
    for kw in ({}, {"drop_torn_tail": False}, {"readonly": True}):    # the daemon, prune, a verifier
        with pytest.raises(StoreCorrupt, match=f"index entry {len(KEYS) - 1}, itself sound, vouches"):
            ProofStore(str(copy), **kw)
        assert (copy / "store-000000.zkd").read_bytes() == data
        assert (copy / "index.zki").read_bytes() == bytes(index)
    from zksidecar.tools import retention       # prune refuses the store, changing nothing
    assert retention.main("prune", str(copy), None, 100, None, False, out=io.StringIO()) == 2
    assert (copy / "store-000000.zkd").read_bytes() == data
    assert (copy / "index.zki").read_bytes() == bytes(index)


def test_a_data_entry_cut_short_under_its_index_entry_is_a_torn_tail(tmp_path):
    """The data ends inside the last entry its index entry describes (a
    power loss under fsync=false wrote back the index and not the data):
    no flipped bit makes a file shorter, so this is a write cut short, and
    the writer drops it as a torn tail."""
    orig, copy = tmp_path / "orig", tmp_path / "copy"
    fill(orig).close()
    _copy(orig, copy)
    at = _offset(len(KEYS) - 1)
    with open(copy / "store-000000.zkd", "r+b") as f:
        f.truncate(at + 40)
    with ProofStore(str(copy)) as s:
        check(s, KEYS[:-1])
        assert [("torn tail of 40 bytes" in r, "does not follow" in r) for r in s.repairs] == \
            [(True, False), (False, True)]
    assert os.path.getsize(copy / "store-000000.zkd") == at


def test_corruption_in_the_middle_is_named(tmp_path):
    orig = tmp_path / "orig"
    fill(orig).close()
    data = (orig / "store-000000.zkd").read_bytes()
    second = 32 + 100                       # offset of proof 1's entry
    copy = tmp_path / "copy"
    bad = bytearray(data)
    bad[second + 40] ^= 1                   # proof 1's bytes
    _copy(orig, copy)
    (copy / "store-000000.zkd").write_bytes(bytes(bad))
    with ProofStore(str(copy)) as s:        # open checks headers; get checks the bytes
        with pytest.raises(StoreCorrupt, match=f"store-000000.zkd: corrupt proof store entry at byte "
                                               f"{second}: symbol 1 batch 1: .*checksum") as err:
            s.get(1, 1)
        assert err.value.offset == second
        assert s.get(1, 2) == proof(1, 2, 100 + 37 * 3)
    bad[second + 9] ^= 1                    # and its header: with no index, open must stop there
    (copy / "store-000000.zkd").write_bytes(bytes(bad))
    os.remove(copy / "index.zki")
    with pytest.raises(StoreCorrupt, match=f"at byte {second}: header checksum"):
        ProofStore(str(copy))
    shutil.copy(orig / "store-000000.zkd", copy / "store-000001.zkd")
    shutil.copy(orig / "store-000000.zkd", copy / "store-000000.zkd")
    with pytest.raises(StoreCorrupt, match="a second proof of symbol 1 batch 0"):
        ProofStore(str(copy))               # the same proofs twice: never silently kept


FULL_CHILD = textwrap.dedent("""
    import resource, signal, sys
    from zksidecar.daemon.store import ProofStore, StoreFull
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # write() fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
    s = ProofStore(sys.argv[1])
    done = 0
    try:
        while True:
            s.put(10 + done % 3, done, bytes([done % 256]) * (700 + 50 * done))
            done += 1
    except StoreFull as exc:
        print(done)
        print(exc)
    s.close()
""")


def test_a_full_disk_is_reported_and_every_earlier_proof_survives(tmp_path):
    fill(tmp_path).close()
    out = subprocess.run([sys.executable, "-c", FULL_CHILD, str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    done, message = out.stdout.splitlines()[:2]
    done = int(done)
    assert issubclass(StoreFull, StoreError) and issubclass(StoreError, OSError)
    assert done > 3 and "disk full or file size limit" in message and "File too large" in message
    with ProofStore(str(tmp_path)) as s:
        assert s.repairs == []
        assert len(s) == len(KEYS) + done
        for k, (sym, bid) in enumerate(KEYS):
            assert s.get(sym, bid) == proof(sym, bid, 100 + 37 * k)
        for b in range(done):
            assert s.get(10 + b % 3, b) == bytes([b % 256]) * (700 + 50 * b)
        assert not s.has(10 + done % 3, done)
        s.put(10 + done % 3, done, b"room again")
    with ProofStore(str(tmp_path)) as s:
        assert s.get(10 + done % 3, done) == b"room again"


# -------------------------------------------------------- verify_store --

OPTS = params.ProofOptions(log_blowup=2, num_queries=12, grinding_bits=1, fri_folding_factor=4,
                           fri_max_final_degree=4)


@functools.lru_cache(maxsize=None)
def chain(symbol: int, n: int) -> tuple[bytes, ...]:
    """n real batch proofs of `symbol`, a chain from the empty book (capacity
    16, 10 operations each, insecure test parameters: verified with
    min_security=0)."""
    ops = flow.generate(10 * n, seed=symbol, capacity=16, symbol=symbol,
                        params=flow.FlowParams(depth=8))
    state, out = Book(16, symbol), []
    for b in range(n):
        bp, state, _ = prove_batch(state, ops[10 * b:10 * (b + 1)], OPTS, ops_length=64, batch_id=b)
        out.append(proof_file.encode(bp))
    return tuple(out)


def store_of(d, chains: dict[int, list[tuple[int, bytes]]]) -> None:
    with ProofStore(str(d)) as s:
        for symbol, items in chains.items():
            for bid, raw in items:
                s.put(symbol, bid, raw)


def run(d) -> tuple[int, str]:
    out = io.StringIO()
    return verify_store(str(d), min_security=0, out=out), out.getvalue()


def test_verify_store_verifies_every_chain(tmp_path, capsys):
    a, b = chain(0, 3), chain(7, 2)
    store_of(tmp_path, {7: [(1, b[1]), (0, b[0])], 0: list(enumerate(a))})   # any put order
    status, text = run(tmp_path)
    assert status == 0, text
    assert "symbol 0: 3 batches, 30 operations verified" in text
    assert "symbol 7: 2 batches, 20 operations verified" in text
    assert "verified 2 symbols, 5 batches, 50 operations" in text
    assert cli.main(["verify", "--store", str(tmp_path), "--min-security", "0"]) == 0
    assert "final state root" in capsys.readouterr().out
    assert cli.main(["verify", "--store", str(tmp_path)]) == 1       # test parameters are weak
    assert cli.main(["verify"]) == 2
    assert cli.main(["verify", "x.zkb", "--store", str(tmp_path)]) == 2


def test_verify_store_reports_a_gap(tmp_path):
    a = chain(0, 3)
    store_of(tmp_path, {0: [(0, a[0]), (2, a[2])]})
    status, text = run(tmp_path)
    assert status == 1 and "symbol 0: FAILED: missing batch 1" in text
    assert "batches 0..0 before it verify" in text


def test_verify_store_rejects_a_tampered_proof(tmp_path):
    a = chain(0, 3)
    bp = proof_file.decode(a[1])
    bp.public.ops["qty"][0] += 1                # a different operation than the one proven
    store_of(tmp_path, {0: [(0, a[0]), (1, proof_file.encode(bp)), (2, a[2])]})
    status, text = run(tmp_path)
    assert status == 1 and "symbol 0: FAILED" in text
    other = tmp_path / "other"
    store_of(other, {0: [(0, a[0]), (1, a[2])]})      # stored under the wrong batch id
    status, text = run(other)
    assert status == 1 and "stored as symbol 0 batch 1, the proof is symbol 0 batch 2" in text


def test_verify_store_rejects_damaged_bytes_and_empty_stores(tmp_path):
    a = chain(0, 3)
    store_of(tmp_path, {0: list(enumerate(a))})
    seg = tmp_path / "store-000000.zkd"
    raw = bytearray(seg.read_bytes())
    raw[32 + len(a[0]) + 32 + 500] ^= 1          # inside batch 1's proof
    seg.write_bytes(bytes(raw))
    status, text = run(tmp_path)
    assert status == 1 and "FAILED: batch 1 unreadable" in text and "checksum" in text
    assert "`zksidecar reprove --config FILE` proves it again" in text     # what to do about it
    assert run(tmp_path / "empty")[0] == 2           # no such store
    ProofStore(str(tmp_path / "empty")).close()
    assert run(tmp_path / "empty") == (1, f"zksidecar verify: {tmp_path / 'empty'}: the store "
                                          "holds no proofs\n")

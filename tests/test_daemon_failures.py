"""The daemon's failure semantics, end to end (docs/DAEMON.md, "When things
go wrong"): a daemon that cannot start exits with one clear line, status 2
when no retry can start it (state its configuration cannot use), else 1; a stop
is bounded and leaves unproven batches in the journal (one summary line); a
full disk holds records in the ring and resumes by itself; a long journal
replay keeps extending systemd's start timeout."""
from __future__ import annotations

import io
import os
import resource
import threading
import zlib

import numpy as np
import pytest

from daemon_helpers import Daemon
from test_notify import Receiver
from test_reprove import counted_mode_reads
from zksidecar import ringbuf
from zksidecar.daemon import recovery
from zksidecar.daemon.config import load
from zksidecar.daemon.notify import Notifier
from zksidecar.daemon.service import Service
from zksidecar.daemon.store import ProofStore
from zksidecar.daemon.zk_store import chain_ends
from zksidecar.tools import loadgen
from zksidecar.tools.proofs import verify_store


def proven_all(d: Daemon, n: int, timeout: float = 180.0) -> dict:
    return d.wait_for(lambda st: st["symbols"].get("0", {}).get("next_seq") == n + 1
                      and st["proofs_in_flight"] == 0 and st["symbols"]["0"]["open_ops"] == 0
                      and not st["blocked"], timeout=timeout, what=f"{n} operations proven")


def check_store(d: Daemon, n: int) -> None:
    out = io.StringIO()
    assert verify_store(str(d.dir / "proofs"), out=out) == 0, out.getvalue()
    assert f"{n:,} operations verified" in out.getvalue()


@pytest.mark.parametrize("snapshots", [True, False])
def test_a_daemon_that_cannot_start_exits_with_one_clear_line(tmp_path, snapshots):
    """Its journal was cut into batches for 256-row traces; restarted with
    128-row traces it cannot replay them.  With snapshots, which record the
    cap, the configuration is refused naming the key and the value recorded;
    without, the replay stops at the first batch that does not fit, naming
    it.  Either way exit status 2 (no retry fits the batch: systemd does not
    restart it), one line, never a traceback, nothing is changed, and the
    configuration put back starts."""
    every = {"journal": {"snapshot_every_ops": 100 if snapshots else 0}}
    d = Daemon(tmp_path, settings=every)
    others = []                    # daemons on d's rings: d.cleanup() removes those
    try:
        d.start()
        loadgen.run(d.ops_ring, None, loadgen.flow(300, seed=21, capacity=d.capacity), d.capacity)
        proven_all(d, 300)
        assert d.stop() == 0
        before = sorted(os.listdir(tmp_path / "journal"))
        assert any(n.endswith(".zks") for n in before) == snapshots
        rings = {"ops": d.ops_ring, "completions": d.completions_ring}
        small = Daemon(tmp_path, settings={"book": {"trace_length": 128}, "ring": rings, **every})
        others.append(small)
        with pytest.raises(RuntimeError, match="exited with 2"):
            small.start()
        log = small.logs()
        if snapshots:
            assert "cannot start: configuration: [book] trace_length: it makes the cap on a " \
                   "batch's ops rows 128, below the 256" in log
        else:
            assert "cannot start: ReplayMismatch: journal replay: batch 0 of symbol 0" in log
            assert "[book] trace_length" in log
        assert "Traceback" not in log
        assert sorted(os.listdir(tmp_path / "journal")) == before
        back = Daemon(tmp_path, settings={"ring": rings, **every})    # the configuration put back
        others.append(back)
        back.start()
        assert back.stop() == 0
    finally:
        for other in others:
            other.cleanup()
        d.cleanup()


def test_a_stop_is_bounded_and_leaves_the_rest_in_the_journal(tmp_path):
    """SIGTERM with a backlog of proofs and no grace: the daemon stops at
    once (exit 0), one line says how many batches it left, none is logged
    one by one, and the next start proves them all."""
    d = Daemon(tmp_path, batch=16, settings={"workers": {"stop_grace_s": 0}})
    try:
        d.start()
        loadgen.run(d.ops_ring, None, loadgen.flow(2000, seed=22, capacity=d.capacity), d.capacity)
        d.wait_for(lambda st: st["ops"]["ingested"] == 2000, what="everything ingested")
        assert d.stop() == 0
        log = d.logs()
        summary = [line for line in log.splitlines() if "stopped:" in line]
        assert len(summary) == 1 and "left unproven, marked in the journal" in summary[0]
        assert "left for the next start" not in log
        d.start()
        proven_all(d, 2000)
        assert d.stop() == 0
        check_store(d, 2000)
    finally:
        d.cleanup()


def test_a_full_disk_holds_records_in_the_ring_and_resumes_by_itself(tmp_path):
    """The daemon's files may grow to 256 KiB only (RLIMIT_FSIZE, a real
    EFBIG): the journal and the store fill, ingest holds what it polled in
    the ring, /status says why, the engine sees a full ring and never
    blocks.  When the limit is lifted the daemon resumes, and every
    operation is proven once."""
    d = Daemon(tmp_path, ring=1024)
    limit = 256 << 10
    try:
        d.start(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                                      (limit, resource.RLIM_INFINITY)))
        ops = loadgen.flow(6000, seed=23, capacity=d.capacity)
        engine = threading.Thread(target=loadgen.run,
                                  args=(d.ops_ring, None, ops, d.capacity), daemon=True)
        engine.start()
        st = d.wait_for(lambda st: st["blocked"], what="the daemon to say its disk is full")
        assert any("full" in why for why in st["blocked"])
        held = d.wait_for(lambda st: st["ring"]["full_events"] > 0, what="the engine to see FULL")
        assert held["ops"]["ingested"] < 6000
        resource.prlimit(d.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        engine.join(120)
        proven_all(d, 6000)
        assert d.stop() == 0
        check_store(d, 6000)
    finally:
        d.cleanup()


def test_a_long_replay_extends_the_start_timeout(tmp_path, monkeypatch):
    """While the journal replays, systemd hears EXTEND_TIMEOUT_USEC (and a
    STATUS saying so) at every progress report, so its start timeout does
    not kill a restart after a long run of flow."""
    d = Daemon(tmp_path)
    try:
        d.start()
        loadgen.run(d.ops_ring, None, loadgen.flow(500, seed=24, capacity=d.capacity), d.capacity)
        proven_all(d, 500)
        assert d.stop() == 0
        monkeypatch.setattr(recovery, "PROGRESS_EVERY_S", 0.0)
        rx = Receiver(str(tmp_path / "notify"))
        svc = Service(load(str(d.config)), notifier=Notifier(str(tmp_path / "notify")))
        try:
            messages = rx.messages()
        finally:
            svc.shutdown()
            rx.close()
        assert any(m.startswith("EXTEND_TIMEOUT_USEC=30000000") for m in messages), messages
        assert any("STATUS=replaying the journal" in m for m in messages)
    finally:
        d.cleanup()
        for name in (d.ops_ring, d.completions_ring):
            ringbuf.unlink(name, missing_ok=True)


def test_a_start_reads_the_stores_mode_once(tmp_path, monkeypatch):
    """The start judges the store's mode, then the journal's, then opens
    the store in its mode (zk_store.open_store_mode): each proof the mode
    is read from (a symbol's first kept and newest) is read for it once."""
    d = Daemon(tmp_path, batch=64)
    try:
        d.start()
        loadgen.run(d.ops_ring, None, loadgen.flow(500, seed=24, capacity=d.capacity), d.capacity)
        proven_all(d, 500)
        assert d.stop() == 0
        with ProofStore(str(tmp_path / "proofs"), fsync=False, readonly=True) as store:
            ends = {key: 1 for key in chain_ends(store)}
        assert len(ends) == 2
        read = counted_mode_reads(monkeypatch)
        Service(load(str(d.config)), notifier=Notifier(str(tmp_path / "notify"))).shutdown()
        assert read == ends
    finally:
        d.cleanup()


def test_a_second_daemon_on_a_taken_admin_endpoint_stops_first(tmp_path):
    """A second daemon (its own state and rings) whose admin socket, or TCP
    port, another daemon holds stops before any other start-up work: one
    `cannot start:` line naming the key, exit 1 (systemd retries: the other
    may be gone by then); no ring made, no journal or store opened."""
    import os
    import socket

    for sub in "abc":
        (tmp_path / sub).mkdir()
    first = Daemon(tmp_path / "a")
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        first.start()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        for d, key, why in (
                (Daemon(tmp_path / "b", settings={"admin": {"socket": first.socket}}),
                 "[admin] socket", f"admin socket {first.socket} is in use"),
                (Daemon(tmp_path / "c", settings={"admin": {"tcp_port": port}}),
                 "[admin] tcp_port", f"cannot listen on 127.0.0.1:{port}: Address already in use")):
            try:
                with pytest.raises(RuntimeError, match="exited with 1"):
                    d.start()
                lines = [ln for ln in d.logs().splitlines() if " ERROR " in ln or " INFO " in ln]
                assert len(lines) == 1 and f"cannot start: {key}: {why}" in lines[0], d.logs()
                assert not (d.dir / "journal").exists() and not (d.dir / "proofs").exists()
                assert not os.path.exists(f"/dev/shm/{d.ops_ring}")
            finally:
                d.cleanup()
        assert first.status()["trace_length"]          # the first one serves on
        assert first.stop() == 0
    finally:
        taken.close()
        first.cleanup()


def test_a_ring_others_may_open_stops_the_daemon_at_its_configuration(tmp_path):
    """An existing ops ring of mode 0666 (anyone could read or inject
    records) is refused by the configuration's check, as --check-config
    refuses it: exit 2, one line naming [ring] ops, nothing opened."""
    import os

    d = Daemon(tmp_path)
    ringbuf.create(d.ops_ring, 4096)
    os.chmod(f"/dev/shm/{d.ops_ring}", 0o666)
    try:
        with pytest.raises(RuntimeError, match="exited with 2"):
            d.start()
        log = d.logs()
        assert "configuration: [ring] ops: ring " in log and "mode 0666" in log, log
        assert not (tmp_path / "journal").exists() and "Traceback" not in log
    finally:
        d.cleanup()


@pytest.mark.parametrize("held", ["journal", "proofs"])
def test_a_journal_or_store_another_process_holds_is_exit_1(tmp_path, held):
    """The journal's or the store's LOCK held by another process (a daemon
    on the same state, `store prune` at work) may be free by the next try:
    one `cannot start:` line naming it and exit 1, so systemd retries; once
    it is released the same daemon starts."""
    from zksidecar.daemon.journal import Journal
    from zksidecar.daemon.store import ProofStore

    d = Daemon(tmp_path)
    try:
        with (Journal if held == "journal" else ProofStore)(str(tmp_path / held)):
            with pytest.raises(RuntimeError, match="exited with 1"):
                d.start()
        lines = [ln for ln in d.logs().splitlines() if "cannot start:" in ln]
        assert len(lines) == 1 and f"{tmp_path / held} is open in another writer (its LOCK file is held)" \
            in lines[0], d.logs()
        d.start()
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_a_journal_of_another_release_is_exit_2(tmp_path):
    """A journal entry whose sound header says another format version is
    another release's journal, not damage: no retry reads it, so exit 2 with
    its one line (and no `journal repair` hint: it is not repaired either)."""
    from zksidecar.daemon.journal import BatchMark, Journal

    d = Daemon(tmp_path)
    with Journal(str(tmp_path / "journal")) as journal:
        journal.append_batch(BatchMark(0, 0, 1, 1, 0, False))
    seg = tmp_path / "journal" / "journal-000000.zkj"
    raw = bytearray(seg.read_bytes())
    raw[4] = 9                                                      # the entry's version byte ...
    raw[28:32] = zlib.crc32(bytes(raw[:28])).to_bytes(4, "little")  # ... its header sealed again
    seg.write_bytes(bytes(raw))
    try:
        with pytest.raises(RuntimeError, match="exited with 2"):
            d.start()
        lines = [ln for ln in d.logs().splitlines() if "cannot start:" in ln]
        assert len(lines) == 1 and "format version 9 (this build reads 1)" in lines[0], d.logs()
        assert "journal repair" not in d.logs() and "Traceback" not in d.logs()
        assert seg.read_bytes() == bytes(raw)
    finally:
        d.cleanup()


def test_a_segment_that_goes_on_in_zk_mode_stops_a_transparent_start(tmp_path):
    """A zk journal an earlier release wrote, unflagged, that a zk daemon of
    this release went on with in the same segment, its zk-journal mark then
    lost: the start's check reads each segment's first entry (unflagged) and
    finds nothing, and a new store holds no proof to refuse.  The replay
    must stop at the first flagged entry before any batch is queued: exit 2,
    one line, and nothing proven in the clear into the new store."""
    from journal_files import entry_offsets, set_flags
    from zksidecar.daemon import formats as fm
    from zksidecar.daemon.store import ProofStore

    d = Daemon(tmp_path)
    try:
        d.start()
        loadgen.run(d.ops_ring, None, loadgen.flow(1200, seed=3, capacity=d.capacity), d.capacity)
        proven_all(d, 1200)
        assert d.stop() == 0
        segment = tmp_path / "journal" / "journal-000000.zkj"
        offsets = entry_offsets(segment)
        assert len(offsets) > 4
        for at in offsets[len(offsets) // 2:]:          # the zk daemon of this release's entries
            set_flags(segment, at, fm.JOURNAL_ENTRY_ZK)
        os.rename(tmp_path / "proofs", tmp_path / "old-proofs")
        with pytest.raises(RuntimeError, match="exited with 2"):
            d.start()
        lines = [ln for ln in d.logs().splitlines() if "cannot start:" in ln]
        assert len(lines) == 1 and "JournalModeError" in lines[0] and \
            f"at byte {offsets[len(offsets) // 2]} was written by a zk daemon" in lines[0], d.logs()
        with ProofStore(str(tmp_path / "proofs"), fsync=False, readonly=True) as store:
            assert len(store) == 0
    finally:
        d.cleanup()

"""End to end: an engine (the reference engine process, tools/loadgen.py)
-> ops ring -> the daemon in its own process -> journal, shadow book,
batches, proof workers -> proof store and completion ring; then the whole
store verified as chains from the empty book.  And the faults: the daemon
killed -9 and restarted, the engine killed, a full ring, a dishonest engine,
a torn journal tail."""
from __future__ import annotations

import io
import multiprocessing
import os
import socket
import time
import urllib.parse

import numpy as np
import pytest

from daemon_helpers import Daemon
from zksidecar.daemon.store import ProofStore
from zksidecar.engine.book import Book
from zksidecar import ringbuf
from zksidecar.engine.records import (COMPLETION_DTYPE, FLAG_CLAIMED, VERSION, CompletionStatus,
                                      check_completions, completion_last_seq)
from zksidecar.prover.orderbook import proof_file
from zksidecar.tools import loadgen
from zksidecar.tools.proofs import verify_store


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path)
    yield d
    d.cleanup()


def proven(st: dict) -> int:
    return st["counts"]["proven"]


def stored_ops(store_dir) -> list[tuple[int, int]]:
    """(first seq, last seq) of every stored proof of symbol 0, by batch id."""
    with ProofStore(str(store_dir), fsync=False) as store:
        out = []
        for b in store.batches(0):
            ops = proof_file.decode(store.get(0, b)).public.ops
            out.append((int(ops["seq"][0]), int(ops["seq"][-1])))
    return out


def check_store(d: Daemon, n_ops: int) -> None:
    """Every operation proven exactly once, in one chain that verifies."""
    ranges = stored_ops(d.dir / "proofs")
    seqs = [s for a, b in ranges for s in range(a, b + 1)]
    assert seqs == list(range(1, n_ops + 1))
    out = io.StringIO()
    assert verify_store(str(d.dir / "proofs"), out=out) == 0, out.getvalue()


def test_engine_to_verified_chain(daemon):
    daemon.start()
    ops = loadgen.flow(1500, seed=1, capacity=daemon.capacity)
    rep = loadgen.run(daemon.ops_ring, daemon.completions_ring, ops, daemon.capacity, wait_s=120)
    assert rep.published == 1500
    done = rep.completed
    assert rep.proven_ops() == 1500
    assert (done["status"] == CompletionStatus.PROVEN).all()
    assert sorted(done["batch_id"]) == list(range(len(done)))
    st = daemon.status()
    assert st["counts"]["divergences"] == 0 and st["ops"]["ingested"] == 1500
    assert st["lag_s"]["p99"] is not None and st["ops"]["proven"] == 1500
    assert daemon.stop() == 0
    check_store(daemon, 1500)
    # a completion names its proof: the store entry it points at is that batch
    with ProofStore(str(daemon.dir / "proofs"), fsync=False) as store:
        for c in done[:3]:
            assert store.proof_index(0, int(c["batch_id"])) == int(c["proof_index"])


def test_killed_mid_batch_and_restarted_loses_and_repeats_nothing(daemon):
    daemon.start()
    ops = loadgen.flow(1200, seed=2, capacity=daemon.capacity)
    engine = Book(daemon.capacity)
    loadgen.run(daemon.ops_ring, None, ops[:700], daemon.capacity, book=engine)
    daemon.wait_for(lambda st: proven(st) >= 2, what="two proofs")
    daemon.kill9()                       # mid-stream: batches open, proofs in flight
    # the engine goes on while the daemon is down: the ring holds its records
    loadgen.run(daemon.ops_ring, None, ops[700:], daemon.capacity, book=engine)
    daemon.start()
    st = daemon.wait_for(lambda st: st["symbols"].get("0", {}).get("next_seq") == 1201
                         and st["proofs_in_flight"] == 0 and st["symbols"]["0"]["open_ops"] == 0,
                         what="every operation proven")
    assert st["counts"]["rejected"] == 0
    assert daemon.stop() == 0
    check_store(daemon, 1200)


def test_a_lying_engine_is_reported_and_the_proof_covers_the_rules(daemon):
    daemon.start()
    ops = loadgen.flow(400, seed=3, capacity=daemon.capacity)
    rep = loadgen.run(daemon.ops_ring, daemon.completions_ring, ops, daemon.capacity,
                      lie_at={50, 300}, wait_s=120)
    done = rep.completed
    bad = done[done["status"] == CompletionStatus.DISAGREES]
    assert len(bad) >= 1
    last = completion_last_seq(bad)
    assert all(any(f <= s <= la for f, la in zip(bad["first_seq"], last)) for s in (51, 301))
    st = daemon.status()
    assert st["counts"]["divergences"] == 2
    assert daemon.stop() == 0
    check_store(daemon, 400)


def test_completions_name_their_symbol(daemon):
    """Two symbols' batches both start at batch 0, seq 1: each completion
    says whose it is, and together they cover each symbol's stream once."""
    daemon.start()
    streams = {0: 700, 7: 500}
    for symbol, n in streams.items():
        ops = loadgen.flow(n, seed=10 + symbol, capacity=daemon.capacity, symbol=symbol)
        assert loadgen.run(daemon.ops_ring, None, ops, daemon.capacity).published == n
    got, out = [], np.zeros(256, COMPLETION_DTYPE)
    with ringbuf.Consumer(daemon.completions_ring, takeover=True) as c:
        deadline = time.monotonic() + 120
        while sum(int(x["op_count"].sum()) for x in got) < sum(streams.values()):
            assert time.monotonic() < deadline, f"completions so far: {got}"
            n = c.drain(out)
            if n:
                got.append(check_completions(out[:n].copy()))
            else:
                time.sleep(0.01)
    done = np.concatenate(got)
    assert (done["version"] == VERSION).all() and (done["reserved"] == 0).all()
    assert (done["status"] == CompletionStatus.PROVEN).all()
    assert sorted(set(done["symbol"].tolist())) == [0, 7]
    for symbol, n in streams.items():
        mine = done[done["symbol"] == symbol]
        mine = mine[np.argsort(mine["batch_id"])]
        assert mine["batch_id"].tolist() == list(range(len(mine)))      # each from batch 0
        seqs = [s for f, la in zip(mine["first_seq"], completion_last_seq(mine))
                for s in range(int(f), int(la) + 1)]
        assert seqs == list(range(1, n + 1))                            # each from seq 1
    assert daemon.stop() == 0
    # the proof a completion names is that symbol's batch
    with ProofStore(str(daemon.dir / "proofs"), fsync=False) as store:
        for c in done:
            assert store.proof_index(int(c["symbol"]), int(c["batch_id"])) == int(c["proof_index"])
            assert proof_file.decode(store.get(int(c["symbol"]), int(c["batch_id"]))).public.symbol \
                == int(c["symbol"])


def _engine_that_dies(ring: str, capacity: int) -> None:
    """Matches and publishes 300 operations, then dies holding the ring."""
    ops = loadgen.flow(300, seed=4, capacity=capacity)
    Book(capacity).process(ops)
    ops["flags"] |= FLAG_CLAIMED
    producer = ringbuf.Producer(ring)        # held open: the ring records our pid
    producer.publish_all(ops, timeout=30)
    os.kill(os.getpid(), 9)


def test_a_dead_engine_is_reported_and_the_daemon_keeps_serving(daemon):
    daemon.start()
    p = multiprocessing.get_context("spawn").Process(target=_engine_that_dies,
                                                     args=(daemon.ops_ring, daemon.capacity))
    p.start()
    p.join(60)
    assert p.exitcode == -9
    st = daemon.wait_for(lambda st: st["ring"]["producer"] == "dead", what="a dead producer")
    assert st["ingest_healthy"]
    daemon.wait_for(lambda st: st["symbols"]["0"]["next_seq"] == 301 and st["proofs_in_flight"] == 0
                    and st["symbols"]["0"]["open_ops"] == 0, what="the dead engine's operations proven")
    assert daemon.stop() == 0
    check_store(daemon, 300)


def test_a_full_ring_is_reported_and_nothing_is_lost(tmp_path):
    d = Daemon(tmp_path, ring=64, batch=256)
    try:
        d.start()
        ops = loadgen.flow(3000, seed=5, capacity=d.capacity)
        rep = loadgen.run(d.ops_ring, d.completions_ring, ops, d.capacity, wait_s=180)
        assert rep.full_events > 0
        assert rep.proven_ops() == 3000
        # the daemon samples the ring's counter on its ingest heartbeat: the
        # last full events may reach /status a beat after the last proof
        d.wait_for(lambda st: st["ring"]["full_events"] == rep.full_events, what="full events")
        assert d.stop() == 0
        check_store(d, 3000)
    finally:
        d.cleanup()


def test_a_torn_journal_tail_is_repaired_on_start(daemon):
    daemon.start()
    ops = loadgen.flow(300, seed=6, capacity=daemon.capacity)
    loadgen.run(daemon.ops_ring, None, ops, daemon.capacity)
    daemon.wait_for(lambda st: st["symbols"].get("0", {}).get("next_seq") == 301, what="ingest")
    daemon.kill9()
    seg = sorted((daemon.dir / "journal").glob("*.zkj"))[-1]
    with open(seg, "ab") as f:
        f.write(b"ZKJ torn half-written entry")
    daemon.start()
    daemon.wait_for(lambda st: st["proofs_in_flight"] == 0 and st["symbols"]["0"]["open_ops"] == 0
                    and st["symbols"]["0"]["next_seq"] == 301, what="recovery")
    assert "journal:" in daemon.logs()
    assert daemon.stop() == 0
    check_store(daemon, 300)
    assert np.all(np.diff([a for a, _ in stored_ops(daemon.dir / "proofs")]) > 0)


def test_sd_notify_and_metrics_scrape(daemon, tmp_path):
    """READY once the daemon serves, STATUS lines while it does, WATCHDOG
    pings when systemd asks for them, STOPPING at the end; and the
    Prometheus endpoint answers on the admin socket."""
    from prometheus_client.parser import text_string_to_metric_families

    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    daemon.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    got = []
    while not any("READY=1" in m for m in got):
        got.append(sock.recv(4096).decode())
    ops = loadgen.flow(200, seed=7, capacity=daemon.capacity)
    loadgen.run(daemon.ops_ring, None, ops, daemon.capacity)
    daemon.wait_for(lambda st: st["ops"]["proven"] == 200, what="200 proven")
    while not any("WATCHDOG=1" in m for m in got) or not any(m.startswith("STATUS=") for m in got):
        got.append(sock.recv(4096).decode())
    raw = _get(daemon.socket, "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(raw)}
    ingested = families["zksidecar_ops_ingested"].samples[0].value
    assert ingested == 200
    assert daemon.stop() == 0
    sock.settimeout(1)
    try:
        while True:
            got.append(sock.recv(4096).decode())
    except TimeoutError:
        pass
    assert any("STOPPING=1" in m for m in got)
    sock.close()


def _get(path: str, url: str) -> str:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(f"GET {urllib.parse.quote(url)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return body.decode()


def test_two_workers_prove_batches_of_one_symbol_in_parallel(tmp_path):
    """Each batch carries the engine's cells before it, so batches of one
    symbol prove out of order on two workers and still form one chain."""
    d = Daemon(tmp_path, workers=2, batch=64)
    try:
        d.start()
        ops = loadgen.flow(1000, seed=8, capacity=d.capacity)
        rep = loadgen.run(d.ops_ring, d.completions_ring, ops, d.capacity, wait_s=180)
        assert rep.proven_ops() == 1000
        assert d.stop() == 0
        check_store(d, 1000)
    finally:
        d.cleanup()


def test_records_of_too_many_symbols_are_refused_not_kept():
    """An engine writing garbage symbols cannot grow the daemon: past
    book.max_symbols its records are refused and counted."""
    from zksidecar.daemon.batches import BatchPolicy
    from zksidecar.daemon.metrics import Metrics
    from zksidecar.daemon.sequencer import Sequencer

    ops = loadgen.flow(40, seed=9, capacity=64)
    ops["symbol"] = np.arange(40) % 5
    ops["seq"] = np.arange(40) // 5 + 1          # each symbol's own stream
    ops["handle"] = 0                             # new orders only: no cancel of another book's order
    ops["kind"] = np.where(ops["kind"] >= 6, 1, ops["kind"])
    seq = Sequencer(64, 256, BatchPolicy(128, 1.0), Metrics(), max_symbols=3)
    seq.feed(ops, np.zeros(40, np.int64), 0.0)
    assert sorted(seq.shadows) == [0, 1, 2]
    assert seq.refused == 16          # the 8 records of symbols 3 and 4 each

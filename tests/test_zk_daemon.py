"""The daemon in zk mode (docs/ZK.md section 9): proofs.mode
and its refusals; the store's key, chain record and private files
(csrc/formats/zk_private.h against daemon/private_file.py); batch keys
derived at the cut and a worker's chain holding only them; the record
lane's cut; zk jobs over the external protocol; a zk daemon end to end,
killed -9 mid-stream and restarted, whose proofs verify as a chain and are
byte for byte what the stream's batches prove to; receipts over the Unix
socket and through the CLI, and their refusals; `zksidecar demo --zk`.

The smallest zk shape that reaches the daemon's 80-bit floor: a book of
1,024 slots and 2,048-row ops traces."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

from daemon_helpers import Daemon
from journal_files import as_written_before_flags
from zksidecar.daemon import frames as FR
from zksidecar.daemon import private_file as pf
from zksidecar.daemon import snapshot
from zksidecar.daemon import zk_store as ZS
from zksidecar.daemon.batches import Batch, BatchPolicy, CloseReason
from zksidecar.daemon.config import ConfigError, load
from zksidecar.daemon.journal import ZK_MARK_NAME
from zksidecar.daemon.jobs import JobInputs, ProofJob, ProofRejected, accept_proof, prove_job, warm_up_job
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.priority import ProofPriority
from zksidecar.daemon.sequencer import Sequencer
from zksidecar.daemon.shadow import BatchOverflow, ShadowBook
from zksidecar.daemon.store import ProofStore
from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.engine.native import ffi, lib
from zksidecar.prover import zk_keys
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.orderbook.batch import verify_history
from zksidecar.prover.orderbook.batch_receipts import statement_of
from zksidecar.prover.orderbook.receipt import check_receipt, decode_receipt
from zksidecar.prover.orderbook.zk_chain import ChainKeyError
from zksidecar.tools import loadgen
from zksidecar.tools.proofs import export_main, prove_ops, verify_store
from zksidecar.tools.receipts import receipt_main, verify_receipt_main
from zksidecar.tools.stats import StatsError, fetch, fetch_receipt

CAP, T, BITS = 1024, 2048, 80
ZK_SETTINGS = {"proofs": {"mode": "zk"}, "book": {"trace_length": T}, "workers": {"security_bits": BITS}}


def open_mode(path, zk: bool, bits: int = BITS, proofs: list[bytes] = ()):
    """open_store_mode on the store at `path`, after `proofs` are put in it
    (symbol 0's next batches, in order)."""
    with ProofStore(str(path), fsync=False) as store:
        for data in proofs:
            store.put(0, len(store), data)
        return ZS.open_store_mode(store, zk, security_bits=bits, capacity=CAP, ops_length=T, journal_dir=None, fsync=False)


def zk_store_at(path, bits: int = BITS):
    return open_mode(path, True, bits)


@pytest.fixture(scope="module")
def proofs(tmp_path_factory) -> dict[str, list[bytes]]:
    """Three batch proofs of one stream in each mode."""
    made = {}
    for mode, key in (("transparent", None), ("zk", bytes(range(32)))):
        chain = tmp_path_factory.mktemp(mode) / "chain"
        assert prove_ops(loadgen.flow(600, seed=4, capacity=CAP), CAP, 250, str(chain), BITS, T, out=io.StringIO(),
                         zk_key=key) == 0
        made[mode] = [f.read_bytes() for f in sorted(chain.glob("batch-*.zkb"))]
    return made


def cut(n: int = 900, seed: int = 5, size: int = 300) -> list[Batch]:
    seq = Sequencer(CAP, T, BatchPolicy(size, 1.0), Metrics(), zk=True)
    ops = flow.generate(n, seed, CAP)
    return seq.feed(ops, np.zeros(n, np.int64), 0.0) + seq.close_all(CloseReason.FLUSH)


# ------------------------------------------------------------ configuration --

def test_config_proofs_mode():
    assert load(None, machine=False).proofs.mode == "transparent"
    assert load(None, {"proofs": {"mode": "zk"}}, machine=False).proofs.mode == "zk"
    with pytest.raises(ConfigError, match=r"\[proofs\] mode: must be one of transparent, zk, got 'zkk'"):
        load(None, {"proofs": {"mode": "zkk"}}, machine=False)
    with pytest.raises(ConfigError, match=r"\[book\] trace_length: zk mode .* over its 2\^15"):
        load(None, {"proofs": {"mode": "zk"}, "book": {"trace_length": 1 << 16}}, machine=False)
    with pytest.raises(ConfigError, match=r"\[proofs\] mode: \"zk\" cannot reach .*security_bits = 80"):
        load(None, {"proofs": {"mode": "zk"}, "book": {"capacity": 256, "trace_length": 512},
                    "workers": {"security_bits": 80}}, machine=False)
    # a batch size the book domain cannot hold: refused, naming the most
    with pytest.raises(ConfigError, match=r"\[batch\] max_batch_size: zk mode proves at most 1024 operations a "
                                          r"batch with a book of 1024 slots .* lower it to 1024"):
        load(None, {"proofs": {"mode": "zk"}, "book": {"capacity": 1024},
                    "batch": {"max_batch_size": 2048}}, machine=False)
    assert load(None, {"proofs": {"mode": "zk"}, "book": {"capacity": 1024}, "batch": {"max_batch_size": 1024}},
                machine=False).proofs.mode == "zk"


# ------------------------------------------------------------ the store --

def test_a_zk_store_is_made_once_and_refused_under_anything_else(tmp_path, proofs):
    zs = zk_store_at(tmp_path)
    private = tmp_path / "private"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(private / "key").st_mode) == 0o600
    record = json.loads((tmp_path / ZS.CHAIN_NAME).read_text())
    assert bytes.fromhex(record["digest"]) == zs.digest and record["parameters"]["ops_rows"] == T
    assert zk_store_at(tmp_path).digest == zs.digest     # opened again: the same chain
    assert ZS.open_for_receipts(str(tmp_path)).digest == zs.digest
    with pytest.raises(ZS.ZkStoreError, match=r"other parameters: queries = \d+, the configuration gives \d+ "
                                              r"\(\[workers\] security_bits\)"):
        zk_store_at(tmp_path, bits=100)
    with pytest.raises(ZS.ZkStoreError, match="is a zk store.*all one mode"):
        open_mode(tmp_path, False)
    os.rename(private / "key", tmp_path / "key.bak")
    with pytest.raises(ZS.ZkStoreError, match=r"private/key is missing: .* cannot be continued without its store key"):
        zk_store_at(tmp_path)
    os.rename(tmp_path / "key.bak", private / "key")
    os.chmod(private / "key", 0o640)
    with pytest.raises(ZS.ZkStoreError, match="readable by others") as exposed:
        zk_store_at(tmp_path)
    assert exposed.value.unusable       # as private/ open to others: the operator's to change, exit 2
    other = tmp_path / "transparent"
    other.mkdir()
    with pytest.raises(ZS.ZkStoreError, match="holds transparent proofs"):
        open_mode(other, True, proofs=proofs["transparent"][:1])
    (tmp_path / ZS.CHAIN_NAME).write_text('{"format": "zksidecar-zk-chain", "version": 1, "digest": "00"}')
    with pytest.raises(ZS.ZkStoreError, match="not a zk chain record"):
        zk_store_at(tmp_path)


def _record_before_key_stream_versions(params: dict) -> dict:
    """The chain record a release before key stream versions wrote for
    these parameters: no key_stream_version, Delta the SHA-256 of the
    label of the others (its masks were HMAC-SHA-256 in counter mode)."""
    p = {k: v for k, v in params.items() if k != "key_stream_version"}
    fields = ["chain", "mode", p["mode"]]
    for name in ("ops_rows", "capacity", "log_blowup", "queries", "h", "h_q"):
        fields += [name, p[name]]
    fields += ["fri_folds", p["fri_folds"]]
    for name in ("fri_final_degree", "grinding_bits", "proof_version", "batch_file_version", "air_version"):
        fields += [name, p[name]]
    return {"format": ZS.CHAIN_FORMAT, "version": ZS.CHAIN_VERSION,
            "digest": hashlib.sha256(zk_keys.label(fields)).hexdigest(), "parameters": p}


def test_a_store_of_another_key_stream_is_refused_by_name(tmp_path):
    """Masks of a chained state expanded another way would not be the
    polynomial its first proof committed: a store made before key stream
    versions (HMAC-SHA-256 in counter mode), or recording another version,
    is refused, naming the cause, by the daemon and by receipts alike, and
    left as it was."""
    zk_store_at(tmp_path)
    path = tmp_path / ZS.CHAIN_NAME
    record = json.loads(path.read_text())
    assert record["parameters"]["key_stream_version"] == zk_keys.KEY_STREAM_VERSION == 2
    path.write_text(json.dumps(_record_before_key_stream_versions(record["parameters"])))
    before = path.read_bytes()
    stale = (r"records a chain made before zk key streams were versioned: .* HMAC-SHA-256 in counter mode, and "
             r"this release expands them with ChaCha20 \(key stream version 2, docs/ZK_KEYS.md\).* cannot be "
             r"continued .*finish it with the release that made it, or give a new \[store\] dir")
    with pytest.raises(ZS.ZkStoreError, match=stale):
        zk_store_at(tmp_path)
    with pytest.raises(ZS.ZkStoreError, match=stale):
        ZS.open_for_receipts(str(tmp_path))
    assert path.read_bytes() == before
    # the same record with its digest changed is damage, not an older release
    old = json.loads(before)
    path.write_text(json.dumps({**old, "digest": hashlib.sha256(b"another").hexdigest()}))
    with pytest.raises(ZS.ZkStoreError, match="not a zk chain record .* whose digest is its parameters'"):
        zk_store_at(tmp_path)
    v1 = {**record["parameters"], "key_stream_version": 1}
    path.write_text(json.dumps({**record, "digest": zk_keys.chain_digest(**v1).hex(), "parameters": v1}))
    with pytest.raises(ZS.ZkStoreError, match=r"other parameters: key_stream_version = 1, this release gives 2\. "
                                              r".*key_stream_version is the release's, so finish the chain with "
                                              r"the release that made it, or give a new \[store\] dir"):
        zk_store_at(tmp_path)


def test_a_store_s_mode_is_read_from_what_it_holds(tmp_path, proofs):
    """A store's mode is its proofs' (their file version), then its zk
    files': a zk store that lost zk-chain.json is refused by a transparent
    daemon (the journal's batches would be proven with their records in the
    clear) and by a zk daemon naming the missing record, which it does not
    make again; a transparent store is refused in zk mode whatever zk files
    were copied into it."""
    zk = tmp_path / "zk"
    zk.mkdir()
    zk_store_at(zk)
    assert open_mode(zk, True, proofs=proofs["zk"]) is not None
    with ProofStore(str(zk), fsync=False, readonly=True) as store:
        assert store.head(0, 2, 6) == proofs["zk"][2][:6]
        assert ZS.proof_mode(store, 0, 1) == "zk"
    clear = r"holds zk proofs \(symbol 0 batch 0 among them\): a transparent daemon would prove .* in the clear"
    with pytest.raises(ZS.ZkStoreError, match=clear + r"; set \[proofs\] mode = \"zk\", or give a new"):
        open_mode(zk, False)
    os.rename(zk / ZS.CHAIN_NAME, tmp_path / "record")
    with pytest.raises(ZS.ZkStoreError, match=clear + r"; set \[proofs\] mode = \"zk\" and restore zk-chain.json"):
        open_mode(zk, False)
    shutil.move(zk / "private", tmp_path / "private")      # every zk file gone: the proofs still say
    with pytest.raises(ZS.ZkStoreError, match=clear):
        open_mode(zk, False)
    shutil.move(tmp_path / "private", zk / "private")
    with pytest.raises(ZS.ZkStoreError, match=r"zk/zk-chain.json is missing and the store holds 3 proofs: .* "
                                              r"restore it from the store's backup"):
        zk_store_at(zk)
    assert not (zk / ZS.CHAIN_NAME).exists()
    os.rename(tmp_path / "record", zk / ZS.CHAIN_NAME)
    assert zk_store_at(zk) is not None
    # a zk store with no proof yet: its files say, each alone
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    zk_store_at(fresh)
    with pytest.raises(ZS.ZkStoreError, match=r"fresh is a zk store \(zk-chain.json, private\)"):
        open_mode(fresh, False)
    key = (fresh / "private" / "key").read_bytes()
    os.unlink(fresh / ZS.CHAIN_NAME)       # as a start that stopped between the key and the record left it
    with pytest.raises(ZS.ZkStoreError, match=r"fresh is a zk store \(private\): a store is all one mode"):
        open_mode(fresh, False)
    assert zk_store_at(fresh) is not None and (fresh / ZS.CHAIN_NAME).exists()     # the record made now
    assert (fresh / "private" / "key").read_bytes() == key
    # a transparent store with a zk store's files copied in: its proofs say
    plain = tmp_path / "plain"
    plain.mkdir()
    assert open_mode(plain, False, proofs=proofs["transparent"]) is None
    shutil.copytree(zk / "private", plain / "private")
    shutil.copy(zk / ZS.CHAIN_NAME, plain)
    with pytest.raises(ZS.ZkStoreError, match=r"holds transparent proofs \(symbol 0 batch 0 among them\): a store "
                                              r"is all one mode"):
        zk_store_at(plain)


def test_a_mixed_store_is_refused_by_every_reader(tmp_path, proofs):
    """What a release that judged a store's mode by zk-chain.json alone let
    happen: a zk chain continued by transparent proofs.  Neither daemon
    takes it; `verify --store` fails it before verifying a proof and
    `export` writes nothing, each reading every proof's mode (a transparent
    proof between zk ones too)."""
    zk, t = proofs["zk"], proofs["transparent"]
    (tmp_path / "tail").mkdir()
    zk_store_at(tmp_path / "tail")
    mixed = (r"holds zk proofs \(symbol 0 batch 0 among them\) and transparent proofs \(symbol 0 batch 2 among "
             r"them\): a store, and so a chain, is all one mode: .* publish their batches' records")
    with pytest.raises(ZS.ZkStoreError, match=mixed):
        open_mode(tmp_path / "tail", True, proofs=zk[:2] + t[2:])
    with pytest.raises(ZS.ZkStoreError, match=mixed):
        open_mode(tmp_path / "tail", False)
    middle = tmp_path / "middle"
    with ProofStore(str(middle), fsync=False) as store:
        for b, data in enumerate([zk[0], t[1], zk[2]]):
            store.put(0, b, data)
    for store_dir in (tmp_path / "tail", middle):
        out = io.StringIO()
        assert verify_store(str(store_dir), min_security=BITS, out=out) == 1
        assert out.getvalue().startswith("zksidecar verify: FAILED: ") and "verified" not in out.getvalue()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert export_main(str(store_dir), 0, str(tmp_path / "chain"), out=io.StringIO()) == 1
        assert err.getvalue().startswith("zksidecar export: symbol 0: ") and "and transparent proofs" in err.getvalue()
        assert not (tmp_path / "chain").exists()


def test_private_file_agrees_with_c_and_refuses_damage():
    assert ffi.sizeof("zk_private_header") == pf.HEADER.size == 80
    fields = ffi.typeof("zk_private_header").fields
    assert [name for name, _ in fields] == list(pf.HEADER_DTYPE.names)
    for name, f in fields:
        assert ffi.offsetof("zk_private_header", name) == pf.HEADER_DTYPE.fields[name][1], name
        assert ffi.sizeof(f.type) == pf.HEADER_DTYPE.fields[name][0].itemsize, name
    assert (lib.ZK_PRIVATE_MAGIC, lib.ZK_PRIVATE_VERSION) == (pf.MAGIC, pf.VERSION)
    b = cut(300)[0]
    p = pf.PrivateBatchFile(0, 0, 1, bytes(range(32)), b.ops, b.trades)
    raw = pf.encode(p)
    assert len(raw) == 80 + 64 * len(b.ops) + 48 * len(b.trades)
    back = pf.decode(raw, "f")
    assert back.ops.tobytes() == b.ops.tobytes() and back.trades.tobytes() == b.trades.tobytes()
    assert back.pre_state == bytes(range(32)) and pf.peek(raw) == (0, 0, 1, len(b.ops))
    for bad, why in [(raw[:79], "shorter than its 80-byte header"), (raw[:-1], "take .* bytes, the file has"),
                     (b"ZKPX" + raw[4:], "bad magic"), (raw[:4] + b"\x02" + raw[5:], "format version 2"),
                     (raw[:-5] + bytes([raw[-5] ^ 1]) + raw[-4:], "fail their checksum"),
                     (raw[:12] + (1 << 30).to_bytes(4, "little") + raw[16:], "take .* bytes")]:
        with pytest.raises(pf.PrivateFileError, match=f"f: not a usable private file: .*{why}"):
            pf.decode(bad, "f")


# ------------------------------------------------------- keys and jobs --

def test_the_lane_cuts_batches_and_workers_hold_only_their_batch_keys(tmp_path):
    # zk mode's cuts: a tall-trade flow in short traces, each batch's
    # operations and trades fit the lane, its operations the book domain's
    # rows (64: one operation a row); without a policy, a run past them is
    # refused, naming the limit
    shadow = ShadowBook(0, 64, 256, zk=True)
    ops = flow.generate(600, 9, 64, params=flow.FlowParams(depth=40, take=0.6))
    closed = shadow.apply(ops, np.zeros(len(ops), np.int64), 0.0, BatchPolicy(10_000, 1.0)).closed
    assert closed and all(len(b.ops) + len(b.trades) + 1 <= 256 and len(b.ops) <= 64 for b in closed)
    assert any(b.reason == CloseReason.STEPS for b in closed)
    with pytest.raises(BatchOverflow, match="would hold 65 operations; a zk batch holds at most 64"):
        ShadowBook(0, 64, 256, zk=True).apply(ops[:65], np.zeros(65, np.int64), 0.0, None)
    assert [b.pre_ts for b in closed[1:]] == [int(b.ops["ts_ns"][-1]) for b in closed[:-1]]
    # the keys: derived where K is; a job's chain holds none of K and answers only for its own run
    zs = zk_store_at(tmp_path)
    batches = cut()
    jobs = [ProofJob.of(b, BITS, zs.chain) for b in batches]
    assert all(zs._key not in pickled for pickled in (FR.encode_request(j) for j in jobs))
    proofs = [accept_proof(j, proof_file.encode(prove_job(j))) for j in jobs]
    assert len(verify_history(proofs, min_security=BITS)) == 1
    other = dataclasses.replace(jobs[1], ops=jobs[1].ops.copy())
    other.ops["qty"][-1] += 1                     # a run that is not the one cut
    with pytest.raises((ChainKeyError, ValueError), match="not the one its keys were derived for|rows"):
        prove_job(other)
    wrong_key = ProofJob.of(batches[1], BITS, lambda s: dataclasses.replace(zs.chain(s), store_key=bytes(32)))
    with pytest.raises(ProofRejected, match="pre-state|leaves"):
        accept_proof(wrong_key, proof_file.encode(proofs[1]))
    # the external protocol carries a zk job's keys, and refuses a malformed block
    back = FR.decode_request(FR.encode_request(jobs[1]))
    assert back.zk == jobs[1].zk
    # and so does a Dask task, which carries the job without its run (JobInputs)
    again = JobInputs.of(jobs[1]).job()
    assert again.zk == jobs[1].zk and again.steps.tobytes() == jobs[1].steps.tobytes()
    raw = FR.encode_request(jobs[0])
    with pytest.raises(FR.FrameError, match="batch 0 has no pre-state key"):
        FR.decode_request(raw[:-224 + 80] + b"\1" + raw[-224 + 81:])
    assert ffi.sizeof("zk_backend_zk") == FR.ZK.size
    assert warm_up_job(CAP, T, BITS, zk=True).zk.keys.batch_id == 0


def test_prove_zk_cuts_and_proves_as_the_daemon(tmp_path):
    # a flow that zk mode cuts before its steps fill the rows (a transparent
    # cut would take 1,291 operations and 800 trades, over the lane's 2,047
    # rows and the book domain's 1,024, one operation a row), and 20
    # operations lost: the stream resumes past them
    params = flow.FlowParams(depth=200, take=0.6, size_alpha=0.8, cancel=0.05, spread=0.5)
    ops = flow.generate(2400, 9, CAP, params=params)
    ops = np.concatenate([ops[:1300], ops[1320:]])
    (tmp_path / "store").mkdir()
    zs = zk_store_at(tmp_path / "store")
    # the daemon's pipeline: its sequencer in zk mode, a job from its store's chain, a worker's proof
    seq = Sequencer(CAP, T, BatchPolicy(4000, 1.0), Metrics(), zk=True)
    batches = seq.feed(ops, np.zeros(len(ops), np.int64), 0.0) + seq.close_all(CloseReason.FLUSH)
    assert [(b.reason, b.resumed) for b in batches] == \
        [(CloseReason.STEPS, False), (CloseReason.BREAK, False), (CloseReason.STEPS, True),
         (CloseReason.FLUSH, False)]
    assert [len(b.ops) for b in batches] == [CAP, 1300 - CAP, CAP, len(ops) - 1300 - CAP]
    assert all(len(b.ops) + len(b.trades) + 1 <= T for b in batches)
    daemon = [proof_file.encode(prove_job(ProofJob.of(b, BITS, zs.chain))) for b in batches]
    # `zksidecar prove --zk` under the store's key, the same stream and batch size
    key = zk_keys.read_key_file(str(tmp_path / "store" / "private" / "key"))
    out = io.StringIO()
    assert prove_ops(ops, CAP, 4000, str(tmp_path / "cli"), BITS, T, out=out, zk_key=key) == 0, out.getvalue()
    files = sorted((tmp_path / "cli").glob("batch-*.zkb"))
    assert [f.read_bytes() for f in files] == daemon
    pubs = [proof_file.decode_public(raw) for raw in daemon]
    assert [p.zk.resumed for p in pubs] == [False, False, True, False] and "(resumed)" in out.getvalue()
    segments = verify_history([proof_file.decode(raw) for raw in daemon], min_security=BITS)
    assert [(s.first_batch, s.last_batch) for s in segments] == [(0, 1), (2, 3)]
    assert segments[1].first_seq == 1321 and segments[1].expected == 1301
    # records past a gap too few to resume the stream at the end are not proven, and said so
    short = np.concatenate([ops[:300], ops[310:320]])
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert prove_ops(short, CAP, 4000, str(tmp_path / "short"), BITS, T, out=io.StringIO(), zk_key=key) == 1
    assert "symbol 0: 10 operations past a gap at seq 301 are not proven" in err.getvalue()


# ------------------------------------------------------ the daemon, end to end --

def receipt_over(sock: str, query: str) -> bytes:
    return fetch_receipt(sock, query, timeout=30)


def reproven(store_dir: str, zs: ZS.ZkStore) -> dict[int, bytes]:
    """Every stored batch of symbol 0 proven again from its private file,
    the stream run from the empty book: {batch: proof file bytes}."""
    book, pre_ts, out = Book(CAP), 0, {}
    with ProofStore(store_dir, fsync=False, readonly=True) as store:
        ids = store.batches(0)
    for b in ids:
        p = zs.read_private(0, b)
        pre, work = book.cells.copy(), p.ops.copy()
        trades, steps = book.process_traced(work)
        assert work.tobytes() == p.ops.tobytes() and trades.tobytes() == p.trades.tobytes()
        batch = Batch(0, b, work, trades, steps, pre, T, np.zeros(len(work), np.int64), ProofPriority.LOW,
                      CloseReason.TIMEOUT, pre_ts=pre_ts)
        out[b] = proof_file.encode(prove_job(ProofJob.of(batch, BITS, zs.chain)))
        pre_ts = int(work["ts_ns"][-1])
    return out


def test_zk_daemon_restarted_mid_proof_receipts_and_refusals(tmp_path):
    d = Daemon(tmp_path, capacity=CAP, batch=250, timeout_ms=200, settings=ZK_SETTINGS)
    store_dir = str(tmp_path / "proofs")
    try:
        d.start()
        ops = loadgen.flow(1600, seed=4, capacity=CAP)
        engine = Book(CAP)
        loadgen.run(d.ops_ring, None, ops[:900], CAP, book=engine)
        d.wait_for(lambda st: st["counts"]["proven"] >= 1, what="a proof")
        d.kill9()                                     # batches open, proofs in flight
        loadgen.run(d.ops_ring, None, ops[900:], CAP, book=engine)
        d.start()
        d.wait_for(lambda st: st["symbols"].get("0", {}).get("next_seq") == 1601 and st["proofs_in_flight"] == 0
                   and st["symbols"]["0"]["open_ops"] == 0, what="every operation proven")
        # a receipt over the Unix socket, by seq and by account, checks against its proof
        with ProofStore(store_dir, fsync=False, readonly=True) as store:
            bps = {b: proof_file.decode(store.get(0, b)) for b in store.batches(0)}
        one = receipt_over(d.socket, "symbol=0&seq=700&seq=701")
        r = decode_receipt(one)
        bp = bps[r.batch_id]
        n = bp.public.zk.n_ops
        report = check_receipt(one, statement_of(bp), bp.public.zk.leaves[:n], bp.public.zk.leaves[n:])
        assert [int(o.record["seq"]) for o in report.operations] == [700, 701]
        account = int(r.operations[0]["record"]["account"])
        by_account = receipt_over(d.socket, f"symbol=0&account={account}&batch={r.batch_id}")
        check_receipt(by_account, statement_of(bp))
        for query, why in [("symbol=0&seq=99999", "404 Not Found: seq 99999 of symbol 0 is in no proven batch: "
                                                  "the daemon has not had it"),
                           ("symbol=0", "400 Bad Request: ask for symbol=S and seq=N"),
                           ("symbol=0&seq=x", "400 Bad Request: seq must be a whole number"),
                           ("symbol=0&seq=1&seq=1600", "400 Bad Request: .* are in batches .*: a receipt is of one "
                                                       "batch")]:
            with pytest.raises(StatsError, match=why):
                receipt_over(d.socket, query)
        private = tmp_path / "proofs" / "private"
        last = max(bps)
        os.rename(private / ZS.private_name(0, last), tmp_path / "moved.zkp")
        with pytest.raises(StatsError, match=f"404 Not Found: the private file .*S0-B{last}.zkp .* is missing"):
            receipt_over(d.socket, "symbol=0&seq=1600")
        os.rename(tmp_path / "moved.zkp", private / ZS.private_name(0, last))
        assert b"404" in fetch(d.socket, "/receipts")
        assert d.stop() == 0
        # a zk daemon's snapshots say its mode (the clean stop wrote one)
        written = snapshot.listed(str(tmp_path / "journal"))
        assert written and {snapshot.read_header(path).zk for _, _, path in written} == {True}
        # the chain verifies; private files 0600 survived the restart; every proof is what its batch proves to
        out = io.StringIO()
        assert verify_store(store_dir, min_security=BITS, out=out) == 0, out.getvalue()
        files = sorted(os.listdir(private))
        assert files == sorted(["key"] + [ZS.private_name(0, b) for b in bps])
        assert all(stat.S_IMODE(os.stat(private / f).st_mode) == 0o600 for f in files)
        zs = ZS.open_for_receipts(store_dir)
        again = reproven(store_dir, zs)
        with ProofStore(store_dir, fsync=False, readonly=True) as store:
            assert all(store.get(0, b) == again[b] for b in again)
        # the CLI: a receipt from the store, checked against the exported chain; and its refusals
        chain = str(tmp_path / "chain")
        assert export_main(store_dir, 0, chain, out=io.StringIO()) == 0
        path = str(tmp_path / "r.zkr")
        assert receipt_main(store_dir, 0, path, seqs=[5], out=io.StringIO()) == 0
        proof = os.path.join(chain, "batch-000000.zkb")
        text = io.StringIO()
        assert verify_receipt_main(path, proof, chain, min_security=BITS, out=text) == 0, text.getvalue()
        assert "seq 5 (row 4)" in text.getvalue() and "OK: the receipt checks" in text.getvalue()
        other = os.path.join(chain, f"batch-{last:06d}.zkb")
        text = io.StringIO()
        assert verify_receipt_main(path, other, None, min_security=BITS, out=text) == 1
        assert "REFUSED" in text.getvalue() and "not for this proof" in text.getvalue()
        raw = bytearray(open(path, "rb").read())
        raw[176 + 8] ^= 1                             # a record's field changed
        bad = str(tmp_path / "bad.zkr")
        open(bad, "wb").write(bytes(raw))
        text = io.StringIO()
        assert verify_receipt_main(bad, proof, None, min_security=BITS, out=text) == 1
        assert "REFUSED" in text.getvalue()
        assert receipt_main(str(tmp_path / "journal"), 0, str(tmp_path / "x.zkr"), seqs=[1]) == 2
        assert receipt_main(store_dir, 0, str(tmp_path / "y.zkr"), seqs=[99999]) == 1
        # the daemon refuses to start without its key, saying so: exit 2, no retry brings it back
        os.rename(private / "key", tmp_path / "key.bak")
        proc = subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", "daemon", "--config", str(d.config)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "private/key is missing" in proc.stdout + proc.stderr
    finally:
        d.cleanup()


def cli(*args) -> subprocess.CompletedProcess:
    """A command that refuses in seconds (a daemon that serves instead is killed at the timeout)."""
    return subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", *args], capture_output=True, text=True,
                          timeout=60)


def refused_by_start_and_check(config: str, why: str) -> None:
    """`daemon --config` exits 2 (no retry can start it: the units'
    RestartPreventExitStatus=2 does not restart it) with one `cannot start:`
    line saying `why`, having served nothing; `daemon --check-config` exits
    2 with the same refusal as its one line."""
    r = cli("daemon", "--config", config)
    said = r.stdout + r.stderr
    lines = [line for line in said.splitlines() if "cannot start:" in line]
    assert r.returncode == 2 and len(lines) == 1, said
    assert "ZkStoreError: " in lines[0] and why in lines[0], lines[0]
    assert "serving" not in said and "Traceback" not in said
    r = cli("daemon", "--check-config", "--config", config)
    assert r.returncode == 2 and r.stdout == "", r.stdout + r.stderr
    assert [line.startswith("zksidecar: configuration: [proofs] mode: ") and why in line
            for line in r.stderr.splitlines()] == [True], r.stderr


def test_a_daemon_of_the_other_mode_refuses_the_store_and_proves_nothing(tmp_path):
    """The operator walkthrough: a zk daemon stopped with batches left in
    its journal, its store's zk-chain.json lost.  A transparent daemon took
    that store and proved the journal's batches with their records in the
    clear, into the zk chain; now it refuses (exit 2, one `cannot start:`
    line), as a zk daemon does naming the missing record, and `daemon
    --check-config` says the same.  The store is unchanged, and with the
    record back the zk daemon proves the backlog into a chain that
    verifies.  The other direction too: a zk daemon refuses a transparent
    daemon's store, for what it holds."""
    grace = {"workers": {"security_bits": BITS, "stop_grace_s": 0}}
    d = Daemon(tmp_path, capacity=CAP, batch=250, timeout_ms=200, settings={**ZK_SETTINGS, **grace})
    zk_config = d.config.read_text()
    rings = {"ring": {"ops": d.ops_ring, "completions": d.completions_ring}}
    transparent = Daemon(tmp_path, capacity=CAP, batch=250, settings={"book": {"trace_length": T}, **rings})
    (tmp_path / "t.toml").write_text(transparent.config.read_text())
    (tmp_path / "zk.toml").write_text(zk_config)
    d.config.write_text(zk_config)
    store_dir = tmp_path / "proofs"
    plain = tmp_path / "plain"
    plain.mkdir()
    other = Daemon(plain, capacity=CAP, batch=250, settings={"book": {"trace_length": T}})
    try:
        d.start()
        loadgen.run(d.ops_ring, None, loadgen.flow(4000, seed=8, capacity=CAP), CAP)
        d.wait_for(lambda st: st["ops"]["ingested"] == 4000 and st["counts"]["proven"] >= 1, what="a proof")
        assert d.stop() == 0
        assert "left unproven, marked in the journal" in d.logs()
        with ProofStore(str(store_dir), fsync=False, readonly=True) as store:
            before = len(store)
        os.rename(store_dir / ZS.CHAIN_NAME, tmp_path / ZS.CHAIN_NAME)
        refused_by_start_and_check(str(tmp_path / "t.toml"), "holds zk proofs (symbol 0 batch 0 among them): a "
                                   "transparent daemon would prove")
        refused_by_start_and_check(str(tmp_path / "zk.toml"), "zk-chain.json is missing and the store holds")
        # the zk chain's journal with a new, empty store: nothing in the store to refuse, but the
        # journal's entries say they are a zk daemon's, with no file beside them (the review: with
        # the zk-journal mark an earlier release made lost, a transparent daemon proved the
        # journal's unproven batches in the clear into the new store)
        assert not (tmp_path / "journal" / ZK_MARK_NAME).exists()
        new_store = (tmp_path / "t.toml").read_text().replace(str(store_dir), str(tmp_path / "new-proofs"))
        assert new_store != (tmp_path / "t.toml").read_text()
        (tmp_path / "t-new-store.toml").write_text(new_store)
        refused_by_start_and_check(str(tmp_path / "t-new-store.toml"), "is a zk chain's journal (journal-000000.zkj's "
                                   "entries are flagged zk): a transparent daemon would prove")
        with ProofStore(str(tmp_path / "new-proofs"), fsync=False, readonly=True) as store:
            assert len(store) == 0                 # opened before the refusal, and nothing proven
        # the journal as a zk daemon of the release before the flags left it: unflagged entries and
        # its mark, which refuses a transparent start, and the zk daemon goes on with it
        old_snapshots = as_written_before_flags(tmp_path / "journal")
        assert old_snapshots and {snapshot.read(path).zk for path in old_snapshots} == {None}
        refused_by_start_and_check(str(tmp_path / "t-new-store.toml"), f"is a zk chain's journal (its "
                                   f"{ZK_MARK_NAME} mark, which a zk daemon of an earlier release made)")
        with ProofStore(str(store_dir), fsync=False, readonly=True) as store:
            assert len(store) == before
            assert set(ZS.proofs_by_mode(store, ZS.every_proof(store, [0]))) == {"zk"}
        os.rename(tmp_path / ZS.CHAIN_NAME, store_dir / ZS.CHAIN_NAME)
        d.start()
        d.wait_for(lambda st: st["symbols"].get("0", {}).get("next_seq") == 4001 and st["proofs_in_flight"] == 0
                   and st["symbols"]["0"]["open_ops"] == 0, what="every operation proven")
        assert d.stop() == 0
        out = io.StringIO()
        assert verify_store(str(store_dir), min_security=BITS, out=out) == 0, out.getvalue()
        assert (tmp_path / "journal" / ZK_MARK_NAME).exists()   # kept: it says its unflagged entries' mode
        # the earlier release's snapshots (version 1, no mode) were used, none set aside
        assert all(os.path.exists(path) for path in old_snapshots)
        assert not [name for name in os.listdir(tmp_path / "journal") if ".corrupt" in name]
        refused_by_start_and_check(str(tmp_path / "t-new-store.toml"), f"its {ZK_MARK_NAME} mark")
        with ProofStore(str(tmp_path / "new-proofs"), fsync=False, readonly=True) as store:
            assert len(store) == 0
        # a transparent daemon's store, under zk mode
        other.start()
        loadgen.run(other.ops_ring, None, loadgen.flow(600, seed=9, capacity=CAP), CAP)
        other.wait_for(lambda st: st["symbols"].get("0", {}).get("next_seq") == 601
                       and st["proofs_in_flight"] == 0, what="every operation proven")
        assert other.stop() == 0
        settings = {**ZK_SETTINGS, "ring": {"ops": other.ops_ring, "completions": other.completions_ring}}
        zk_on_plain = Daemon(plain, capacity=CAP, batch=250, settings=settings)
        refused_by_start_and_check(str(zk_on_plain.config), "holds transparent proofs (symbol 0 batch 0 among "
                                   "them): a store is all one mode")
        assert not (plain / "proofs" / ZS.CHAIN_NAME).exists() and not (plain / "proofs" / "private").exists()
        # and its journal with a new store: a zk daemon refuses a transparent chain's journal
        (plain / "zk-new-store.toml").write_text(zk_on_plain.config.read_text().replace(
            str(plain / "proofs"), str(plain / "zk-proofs")))
        refused_by_start_and_check(str(plain / "zk-new-store.toml"), "is a transparent chain's journal "
                                   "(journal-000000.zkj's entries are not flagged zk")
    finally:
        d.cleanup()
        other.cleanup()


def test_demo_zk(tmp_path):
    from zksidecar.tools import demo

    out = io.StringIO()
    code = demo.run(seconds=1.0, rate=400.0, state_dir=str(tmp_path / "demo"), out=out, tty=False, zk=True)
    text = out.getvalue()
    assert code == 0, text
    assert "zk mode" in text and "receipts served by the daemon and checked against the verified chain" in text


def test_snapshot_keeps_proven_ts():
    from zksidecar.daemon import snapshot

    b = ShadowBook(0, CAP, T, zk=True)
    ops = flow.generate(40, 1, CAP)
    b.apply(ops, np.zeros(40, np.int64), 0.0, BatchPolicy(20, 1.0))
    state = b.between_batches()
    snap = snapshot.Snapshot(0, 0, CAP, T, [state], zk=True)
    back = snapshot.decode(snapshot.encode(snap), "s").books[0]
    assert back.proven_ts == state.proven_ts == int(ops["ts_ns"][39])
    assert ShadowBook.restored(back, CAP, T, zk=True).proven_ts == back.proven_ts


def test_private_file_documented():
    from format_docs import check_byte_table

    check_byte_table("## Private file (zk mode)", pf.HEADER_DTYPE)


@pytest.mark.parametrize("zk", [True, False])
def test_a_snapshot_of_the_other_mode_is_refused_by_name(tmp_path, zk):
    """A snapshot says its mode: a start of the other mode, whose journal's
    entries and store say nothing (none yet: the contrived case, a snapshot
    alone in a new journal), is refused naming the file, exit 2, as
    `daemon --check-config` refuses it, before anything is made; the
    snapshot is left as it is.  A transparent start would go on from a zk
    chain's books and prove in the clear; a zk start refuses a transparent
    chain's as a journal is all one mode."""
    from zksidecar.daemon.journal import Journal

    d = Daemon(tmp_path, capacity=CAP, settings=ZK_SETTINGS if not zk else {"book": {"trace_length": T}})
    with Journal(str(tmp_path / "journal")):
        pass
    path = snapshot.write(str(tmp_path / "journal"), snapshot.Snapshot(0, 0, CAP, T, zk=zk))
    written = open(path, "rb").read()
    try:
        refused_by_start_and_check(str(d.config), f"{path} is a {'zk' if zk else 'transparent'} chain's snapshot "
                                   f"(its header is {'' if zk else 'not '}flagged zk)")
        assert open(path, "rb").read() == written
        assert not {ZS.CHAIN_NAME, "private"} & set(os.listdir(tmp_path / "proofs"))
    finally:
        d.cleanup()


def test_a_refused_zk_start_leaves_a_new_store_as_it_was(tmp_path):
    """A zk start given a transparent chain's journal and a store holding no
    proof is refused for the journal (exit 2) before the store is made a zk
    store: no zk-chain.json, no key.  Made, they would refuse the transparent
    configuration the refusal tells the operator to go back to (the store
    would be a zk store, for its zk files), and `daemon --check-config`,
    which said only the journal's problem, would say another after the start."""
    from test_journal import workload, write
    from zksidecar.daemon.journal import Journal

    d = Daemon(tmp_path, capacity=CAP, settings=ZK_SETTINGS)
    with Journal(str(tmp_path / "journal")) as journal:       # a transparent daemon's entries
        write(journal, workload())
    with ProofStore(str(tmp_path / "proofs"), fsync=False):   # its store, no proof yet
        pass
    before = sorted(os.listdir(tmp_path / "proofs"))
    try:
        refused_by_start_and_check(str(d.config), "is a transparent chain's journal (journal-000000.zkj's "
                                   "entries are not flagged zk")
        assert sorted(os.listdir(tmp_path / "proofs")) == before
        transparent = d.config.read_text().replace('mode = "zk"', 'mode = "transparent"')
        assert transparent != d.config.read_text()
        (tmp_path / "t.toml").write_text(transparent)
        r = cli("daemon", "--check-config", "--config", str(tmp_path / "t.toml"))
        assert r.returncode == 0, r.stderr
    finally:
        d.cleanup()

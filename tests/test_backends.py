"""daemon/backends.py and daemon/frames.py: the process protocol's frames against csrc/formats/zk_backend.h,
ProcessBackend against the real `zksidecar prover-server` (proofs verify as
a chain), and every way a host can fail: malformed frames, a crash, a hang,
a proof of other work, a relabelled or tampered proof."""
from __future__ import annotations

import io
import os
import sys

import pytest

from zksidecar.daemon import frames as B
from zksidecar.daemon.backends import NativeBackend, ProcessBackend
from zksidecar.daemon.frames import FrameError
from zksidecar.daemon.jobs import BackendError, ProofRejected
from zksidecar.daemon.prover_server import serve
from zksidecar.daemon.workers import WorkerPool
from zksidecar.engine.native import ffi, lib
from zksidecar.prover.orderbook import proof_file, verify_chain

from format_docs import check_layout
from test_workers import BITS, chain_jobs

SERVER = [sys.executable, "-m", "zksidecar.tools.cli", "prover-server"]
DOUBLES = os.path.join(os.path.dirname(__file__), "prover_doubles.py")


def double(mode: str, timeout: float | None = 120.0) -> ProcessBackend:
    return ProcessBackend([sys.executable, DOUBLES, mode], timeout=timeout)


@pytest.fixture(scope="module")
def server():
    backend = ProcessBackend(SERVER, timeout=120)
    yield backend
    backend.close()


# ----------------------------------------------------------- the frames --

@pytest.mark.parametrize("ctype, dtype", [("zk_backend_request", B.REQUEST_DTYPE),
                                           ("zk_backend_response", B.RESPONSE_DTYPE),
                                           ("zk_backend_zk", B.ZK_DTYPE)])
def test_headers_agree_with_c(ctype, dtype):
    check_layout(ctype, dtype)
    assert B.REQUEST.size == 48 and B.RESPONSE.size == 32      # packed, no gaps


def test_request_body_records_agree_with_c():
    """What follows a request's header, in the header's count order, each
    record the size of its C struct (the length rule of zk_backend.h)."""
    assert [count for count, _ in B.REQUEST_BODY] == ["n_cells", "n_ops", "n_steps", "n_trades"]
    assert [dtype.itemsize for _, dtype in B.REQUEST_BODY] == \
        [ffi.sizeof("uint32_t"), ffi.sizeof("zk_op"), ffi.sizeof("zk_step"), ffi.sizeof("zk_trade")]
    assert [dtype.itemsize for _, dtype in B.REQUEST_BODY] == [4, 64, 280, 48]   # as the header says


def test_constants_agree_with_c():
    assert lib.ZK_BACKEND_VERSION == B.VERSION
    assert lib.ZK_BACKEND_MAX_FRAME == B.MAX_FRAME
    assert (lib.ZK_BACKEND_OK, lib.ZK_BACKEND_ERROR) == (B.OK, B.ERROR)
    assert (lib.ZK_BACKEND_MODE_TRANSPARENT, lib.ZK_BACKEND_MODE_ZK, lib.ZK_BACKEND_ZK_RESUMED) == \
        (B.MODE_TRANSPARENT, B.MODE_ZK, B.ZK_RESUMED)


def test_request_round_trip_and_refusals():
    job = chain_jobs(2)[1]
    raw = B.encode_request(job)
    back = B.decode_request(raw)
    assert (back.symbol, back.batch_id, back.trace_length, back.security_bits, back.log_blowup) == \
        (job.symbol, job.batch_id, job.trace_length, job.security_bits, job.log_blowup)
    for name in ("pre_cells", "ops", "steps", "trades"):
        assert getattr(back, name).tobytes() == getattr(job, name).tobytes(), name
        assert getattr(back, name).flags.writeable, name
    assert len(raw) == 48 + 4 * len(job.pre_cells) + 64 * len(job.ops) + 280 * len(job.steps) \
        + 48 * len(job.trades)
    with pytest.raises(FrameError, match="shorter than its 48-byte header"):
        B.decode_request(raw[:47])
    with pytest.raises(FrameError, match="magic"):
        B.decode_request(b"ZKPX" + raw[4:])
    with pytest.raises(FrameError, match="version 9"):
        B.decode_request(raw[:4] + b"\x09\x00" + raw[6:])
    with pytest.raises(FrameError, match=r"is \d+ bytes, this one is"):
        B.decode_request(raw[:-1])
    with pytest.raises(FrameError, match="mode 2"):
        B.decode_request(raw[:44] + b"\2\0\0\0" + raw[48:])
    with pytest.raises(FrameError, match=r"is \d+ bytes, this one is"):     # zk mode without its keys
        B.decode_request(raw[:44] + b"\1\0\0\0" + raw[48:])
    with pytest.raises(FrameError, match="not a prover response"):
        B.decode_response(raw)


def test_a_request_whose_counts_lie_is_refused_before_anything_is_read():
    """The counts are untrusted: counts that do not add up to the payload,
    however large (a claim of 2^32 - 1 steps), are refused by length,
    naming every count; nothing is allocated for them."""
    job = chain_jobs(1)[0]
    raw = bytearray(B.encode_request(job))
    for field, records in (("n_cells", job.pre_cells), ("n_ops", job.ops), ("n_steps", job.steps),
                           ("n_trades", job.trades)):
        for claim in (len(records) + 1, 0xFFFFFFFF):
            bad = bytearray(raw)
            at = B.REQUEST_DTYPE.fields[field][1]
            bad[at:at + 4] = claim.to_bytes(4, "little")
            with pytest.raises(FrameError, match=f"a request for .*{claim} {field[2:]}.* bytes, "
                                                 "this one is"):
                B.decode_request(bytes(bad))
    # one step moved into the trades' room: the sizes add up to another length
    moved = bytearray(raw)
    at = B.REQUEST_DTYPE.fields["n_steps"][1]
    moved[at:at + 4] = (len(job.steps) - 1).to_bytes(4, "little")
    with pytest.raises(FrameError, match="this one is"):
        B.decode_request(bytes(moved))


def test_serve_answers_bad_requests_and_stops_on_a_broken_stream():
    good = B.encode_request(chain_jobs(1)[0])
    inp = io.BytesIO(B.frame(b"ZKPQ nonsense") + B.frame(good) + b"\x10\0\0\0abc")
    out = io.BytesIO()
    assert serve(inp, out) == 2
    out.seek(0)
    answers = [B.decode_response(B.read_frame(out)) for _ in range(3)]
    assert B.read_frame(out) is None
    (s1, *_, m1), (s2, *_, proof), (s3, *_, m3) = answers
    assert s1 == B.ERROR and b"shorter than its 48-byte header" in m1
    assert s2 == B.OK and proof_file.decode(proof).public.batch_id == 0
    assert s3 == B.ERROR and b"broken frame stream" in m3


# ------------------------------------------------- against the real host --

def test_process_backend_proves_a_chain_with_the_real_server(server):
    jobs = chain_jobs(3)
    results = [server.prove(j) for j in jobs]
    pid = server.pid
    assert pid is not None and all(r.ok for r in results)
    verify_chain([proof_file.decode(r.proof) for r in results], min_security=BITS)
    assert server.pid == pid            # one host for every job
    native = NativeBackend().prove(jobs[1])
    assert native.post_root == results[1].post_root   # the same prover, the same state


def test_the_real_server_reports_a_bad_request(server):
    status, _, _, _, body = B.decode_response(server.exchange(b"ZKPQ" + bytes(44)))
    assert status == B.ERROR and b"version 0" in body
    job = chain_jobs(1, size=40)[0]
    job.trace_length = 64              # too short for these 40 operations: the prover says why
    with pytest.raises(BackendError, match="could not prove symbol 0 batch 0: ValueError: .*over the chain's cap of 64"):
        server.prove(job)
    assert server.prove(chain_jobs(1)[0]).ok   # and the session goes on


def test_a_job_too_big_for_a_frame_is_refused_before_the_host_sees_it(server, monkeypatch):
    """Steps make jobs large: one over the frame limit is the job's fault,
    said so, and the host (not at fault) keeps running for the next job."""
    job = chain_jobs(1)[0]
    assert server.prove(job).ok
    pid = server.pid
    monkeypatch.setattr(B, "MAX_FRAME", len(B.encode_request(job)) - 1)
    with pytest.raises(FrameError, match="over the .*-byte limit"):
        server.prove(job)
    monkeypatch.undo()
    assert server.pid == pid and server.prove(job).ok


def test_process_backend_in_a_worker_pool():
    with WorkerPool(1, backend=ProcessBackend(SERVER, timeout=120)) as pool:
        results = [f.result(120) for f in [pool.submit(j) for j in chain_jobs(2)]]
    assert all(r.ok for r in results), [r.error for r in results]
    verify_chain([proof_file.decode(r.proof) for r in results], min_security=BITS)


# -------------------------------------------------------- faulty hosts --

def test_a_crashing_host():
    backend = double("crash")
    with pytest.raises(BackendError, match=r"ended its output after 0 bytes.*code 3.*crashing on purpose"):
        backend.prove(chain_jobs(1)[0])
    assert backend.pid is None          # stopped; the next job starts a new host
    with pytest.raises(BackendError, match="code 3"):
        backend.prove(chain_jobs(1)[0])


def test_a_host_that_is_not_a_program():
    backend = ProcessBackend(["/nonexistent/prover-host"])
    with pytest.raises(FileNotFoundError):
        backend.prove(chain_jobs(1)[0])


def test_a_host_answering_garbage():
    with pytest.raises(FrameError, match="malformed response: not a prover response"):
        double("garbage").prove(chain_jobs(1)[0])


def test_a_hanging_host_times_out():
    with pytest.raises(BackendError, match="no response within 0.5 s.*signal SIGKILL"):
        double("hang", timeout=0.5).prove(chain_jobs(1)[0])


@pytest.mark.parametrize("mode, message", [
    ("wrong", "the proof's operations"),
    ("relabel", "the proof's batch id differ"),
    ("tamper", "does not verify|not a batch proof file"),
])
def test_a_proof_of_anything_else_is_rejected(mode, message):
    backend = double(mode)
    try:
        with pytest.raises(ProofRejected, match=message):
            backend.prove(chain_jobs(2)[1])
    finally:
        backend.close()


def test_rejects_bad_commands_and_jobs():
    with pytest.raises(ValueError, match="non-empty list"):
        ProcessBackend("zksidecar prover-server")
    job = chain_jobs(1)[0]
    job.symbol = 5
    with pytest.raises(ValueError, match="symbol 0's book, the job is for 5"):
        NativeBackend().prove(job)
    job = chain_jobs(1)[0]
    job.security_bits = 128                # over the 127 bits SHA-256 collisions allow
    with pytest.raises(ValueError, match="128 bits of conjectured security are out of reach"):
        NativeBackend().prove(job)

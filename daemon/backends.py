"""Proof backends: what turns a ProofJob into a ProofResult.

    NativeBackend    the order-book STARK (prover/orderbook), in this process
    ProcessBackend   an external prover host spoken to over its stdin/stdout
                     with the frames of csrc/formats/zk_backend.h (docs/API.md,
                     "External prover protocol")

The process protocol is how a ZisK or SP1 host would plug in: witness in
(the engine's cells before the batch and its operation records), batch proof
file out.  Nothing here pretends to be such a host; `zksidecar prover-server`
(serve() below) is the native prover behind the protocol, and it is what the
tests run.  An external prover is trusted for nothing: every proof it returns
is decoded, checked against the job (symbol, batch id, chain parameters, the
operations and trades the rules give, the pre-state) and verified with
verify_batch before it is accepted.

The frames are mirrored from the C header by REQUEST and RESPONSE below;
tests/test_backends.py checks them against the compiled header.
"""
from __future__ import annotations

import os
import re
import selectors
import signal
import struct
import subprocess
import tempfile
import threading
import time
from typing import BinaryIO

import numpy as np

from ..engine.book import Book
from ..engine.records import OP_DTYPE
from ..prover.orderbook import batch as B
from ..prover.orderbook import proof_file
from ..prover.params import MAX_LOG_BLOWUP, ProofOptions
from ..prover.proof import ProofFormatError
from ..prover.verify import VerificationError
from .workers import ProofJob, ProofResult

VERSION = 1
MAX_FRAME = 1 << 30
OK, ERROR = 0, 1
REQUEST_MAGIC, RESPONSE_MAGIC = b"ZKPQ", b"ZKPR"
REQUEST_FIELDS = ("magic", "version", "log_blowup", "symbol", "security_bits", "batch_id",
                  "trace_length", "n_cells", "n_ops", "reserved")
REQUEST = struct.Struct("<4sHHIIQIIII")
RESPONSE_FIELDS = ("magic", "version", "status", "symbol", "reserved", "batch_id", "prove_ns")
RESPONSE = struct.Struct("<4sHHIIQQ")
_LENGTH = struct.Struct("<I")
GRINDING_BITS = 16


def field_offsets(layout: struct.Struct) -> list[int]:
    """Byte offset of each field of a packed little-endian header struct."""
    offsets, at = [], 0
    for code in re.findall(r"\d*[a-zA-Z]", layout.format.lstrip("<")):
        offsets.append(at)
        at += struct.calcsize("<" + code)
    return offsets


class BackendError(RuntimeError):
    """A backend could not prove a job (its message says why)."""


class FrameError(BackendError):
    """Bytes that are not a well-formed frame of the process protocol."""


class ProofRejected(BackendError):
    """An external prover returned a proof that does not prove the job."""


# ------------------------------------------------------------ the prover --

def job_options(security_bits: int, log_blowup: int) -> ProofOptions:
    """The proof parameters of a job: the fewest queries reaching
    `security_bits` at this blowup, with 16 bits of grinding (fewer when the
    target itself is lower)."""
    return ProofOptions.for_security(security_bits, log_blowup=log_blowup,
                                     grinding_bits=min(GRINDING_BITS, security_bits))


def prove_job(job: ProofJob) -> tuple[B.BatchProof, np.ndarray, np.ndarray]:
    """Prove `job` with the order-book STARK: (proof, post cells, trades)."""
    pre = check_job(job)
    proof, post, trades = B.prove_batch(pre, job.ops, job_options(job.security_bits, job.log_blowup),
                                        job.trace_length, batch_id=job.batch_id)
    return proof, post.cells, trades


def check_job(job: ProofJob) -> Book:
    """Refuse a malformed job with a clear error before any work; returns
    the book its cells hold (checked once here, for everything after)."""
    if not isinstance(job.ops, np.ndarray) or job.ops.dtype != OP_DTYPE or job.ops.ndim != 1:
        raise ValueError("job.ops must be a one-dimensional array of OP_DTYPE records")
    if len(job.ops) == 0:
        raise ValueError("an empty batch")
    t = job.trace_length
    if t < 16 or t & (t - 1) or t > 1 << 24:
        raise ValueError(f"trace length {t} is not a power of two in 16..2^24")
    if not 1 <= job.log_blowup <= MAX_LOG_BLOWUP:
        raise ValueError(f"log_blowup must be in 1..{MAX_LOG_BLOWUP}, not {job.log_blowup}")
    if not 1 <= job.security_bits <= 128:
        raise ValueError(f"security_bits must be in 1..128, not {job.security_bits}")
    # ParameterError if the target cannot be reached at this size (hash and field bounds)
    job_options(job.security_bits, job.log_blowup).check_security(t, job.security_bits)
    book = Book.from_cells(job.pre_cells)      # CorruptState if these are not a book's cells
    if book.symbol != job.symbol:
        raise ValueError(f"the cells are symbol {book.symbol}'s book, the job is for {job.symbol}")
    return book


def _result(job: ProofJob, bp: B.BatchProof, raw: bytes, n_trades: int, seconds: float) -> ProofResult:
    return ProofResult(job.symbol, job.batch_id, raw, bp.post_root, len(job.ops), n_trades, seconds)


class ProofBackend:
    """The backend protocol: prove(job) -> ProofResult, raising (a
    BackendError or the prover's own error) when it cannot.  A WorkerPool
    pickles its backend to each worker process."""

    name = "backend"

    def prove(self, job: ProofJob) -> ProofResult:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NativeBackend(ProofBackend):
    """The order-book STARK in this process (prove_job)."""

    name = "native"

    def prove(self, job: ProofJob) -> ProofResult:
        t0 = time.perf_counter()
        bp, _, trades = prove_job(job)
        raw = proof_file.encode(bp)
        return _result(job, bp, raw, len(trades), time.perf_counter() - t0)


# ---------------------------------------------------------------- frames --

def encode_request(job: ProofJob) -> bytes:
    cells = np.ascontiguousarray(job.pre_cells, dtype="<u4")
    ops = np.ascontiguousarray(job.ops, dtype=OP_DTYPE)
    head = REQUEST.pack(REQUEST_MAGIC, VERSION, job.log_blowup, job.symbol, job.security_bits,
                        job.batch_id, job.trace_length, len(cells), len(ops), 0)
    return head + cells.tobytes() + ops.tobytes()


def decode_request(payload: bytes) -> ProofJob:
    """A request frame's payload as a ProofJob; FrameError if malformed."""
    if len(payload) < REQUEST.size:
        raise FrameError(f"a request of {len(payload)} bytes is shorter than its "
                         f"{REQUEST.size}-byte header")
    magic, version, log_blowup, symbol, bits, batch_id, t, n_cells, n_ops, reserved = \
        REQUEST.unpack_from(payload)
    if magic != REQUEST_MAGIC:
        raise FrameError(f"not a prover request (magic {magic!r}, expected {REQUEST_MAGIC!r})")
    if version != VERSION:
        raise FrameError(f"request version {version}; this prover speaks version {VERSION}")
    if reserved:
        raise FrameError("the request's reserved field is not zero")
    want = REQUEST.size + 4 * n_cells + OP_DTYPE.itemsize * n_ops
    if len(payload) != want:
        raise FrameError(f"a request for {n_cells} cells and {n_ops} operations is {want} bytes, "
                         f"this one is {len(payload)}")
    cells = np.frombuffer(payload, dtype="<u4", count=n_cells, offset=REQUEST.size).astype(np.uint32)
    ops = np.frombuffer(payload, dtype=OP_DTYPE, count=n_ops, offset=REQUEST.size + 4 * n_cells).copy()
    return ProofJob(symbol, batch_id, cells, ops, t, bits, log_blowup)


def encode_response(status: int, symbol: int, batch_id: int, prove_ns: int, body: bytes) -> bytes:
    return RESPONSE.pack(RESPONSE_MAGIC, VERSION, status, symbol, 0, batch_id, prove_ns) + body


def decode_response(payload: bytes) -> tuple[int, int, int, int, bytes]:
    """(status, symbol, batch_id, prove_ns, body); FrameError if malformed."""
    if len(payload) < RESPONSE.size:
        raise FrameError(f"a response of {len(payload)} bytes is shorter than its "
                         f"{RESPONSE.size}-byte header")
    magic, version, status, symbol, reserved, batch_id, prove_ns = RESPONSE.unpack_from(payload)
    if magic != RESPONSE_MAGIC:
        raise FrameError(f"not a prover response (magic {magic!r}, expected {RESPONSE_MAGIC!r})")
    if version != VERSION:
        raise FrameError(f"response version {version}; the daemon speaks version {VERSION}")
    if status not in (OK, ERROR) or reserved:
        raise FrameError(f"response status {status} (reserved {reserved}) is not defined")
    return status, symbol, batch_id, prove_ns, payload[RESPONSE.size:]


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise FrameError(f"a frame of {len(payload)} bytes is over the {MAX_FRAME}-byte limit")
    return _LENGTH.pack(len(payload)) + payload


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's payload; None at end of input on a frame boundary."""
    head = _read_exactly(stream, _LENGTH.size, at_boundary=True)
    if head is None:
        return None
    (n,) = _LENGTH.unpack(head)
    if n > MAX_FRAME:
        raise FrameError(f"a frame length of {n} bytes is over the {MAX_FRAME}-byte limit "
                         "(a broken stream)")
    return _read_exactly(stream, n)


def _read_exactly(stream: BinaryIO, n: int, at_boundary: bool = False) -> bytes | None:
    parts, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            if at_boundary and got == 0:
                return None
            raise FrameError(f"end of input after {got} of {n} bytes of a frame")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


# ---------------------------------------------------------------- server --

def serve(inp: BinaryIO, out: BinaryIO, backend: ProofBackend | None = None) -> int:
    """The prover side of the protocol: answer each request frame on `inp`
    with a response frame on `out` until end of input (exit status 0).  A
    request that frames correctly but is malformed gets an ERROR response and
    the session goes on; a broken frame stream gets an ERROR response and
    ends the session (status 2), since nothing after it can be trusted."""
    backend = backend or NativeBackend()
    while True:
        try:
            payload = read_frame(inp)
        except FrameError as exc:
            out.write(frame(encode_response(ERROR, 0, 0, 0, f"broken frame stream: {exc}".encode())))
            out.flush()
            return 2
        if payload is None:
            return 0
        symbol = batch_id = 0
        t0 = time.perf_counter_ns()
        try:
            job = decode_request(payload)
            symbol, batch_id = job.symbol, job.batch_id
            bp, _, _ = prove_job(job)
            status, body = OK, proof_file.encode(bp)
        except Exception as exc:
            status, body = ERROR, f"{type(exc).__name__}: {exc}".encode()
        out.write(frame(encode_response(status, symbol, batch_id, time.perf_counter_ns() - t0, body)))
        out.flush()


# --------------------------------------------------------------- client --

class ProcessBackend(ProofBackend):
    """An external prover host: `command` is started on first use and kept
    for the jobs that follow; one request frame in, one response frame out
    (docs/API.md).  Any protocol fault, timeout or death of the host fails
    the job with a BackendError naming the cause (and the host's last stderr
    lines); the host is restarted for the next job.  Every proof is checked
    and verified before it is accepted (ProofRejected otherwise)."""

    name = "process"

    def __init__(self, command: list[str], timeout: float | None = 600.0, env: dict | None = None):
        if isinstance(command, str) or not command:
            raise ValueError("command must be a non-empty list of program and arguments")
        self.command = list(command)
        self.timeout = timeout
        self.env = env
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"command": self.command, "timeout": self.timeout, "env": self.env}

    def __setstate__(self, state):
        self.__init__(**state)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> subprocess.Popen:
        if self._proc is None:
            self._stderr = tempfile.TemporaryFile()
            env = None if self.env is None else {**os.environ, **self.env}
            self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self._stderr, bufsize=0, env=env)
        return self._proc

    def _stderr_tail(self, limit: int = 2000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - limit))
        text = self._stderr.read().decode("utf-8", "replace").strip()
        return f"; its stderr ends: {text}" if text else ""

    def _fail(self, why: str, cls: type = BackendError) -> BackendError:
        """Stop the host (it is in an unknown state) and describe the fault."""
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            code = proc.wait()
        how = ""
        if code is not None:
            how = f" (host exited: {'signal ' + signal.Signals(-code).name if code < 0 else f'code {code}'})"
        err = cls(f"prover host {self.command[0]!r}: {why}{how}{self._stderr_tail()}")
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return err

    def _read(self, proc: subprocess.Popen, n: int, deadline: float | None) -> bytes:
        parts, got = [], 0
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while got < n:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError
                if not sel.select(left):
                    continue
                chunk = os.read(fd, min(n - got, 1 << 20))
                if not chunk:
                    raise EOFError(got)
                parts.append(chunk)
                got += len(chunk)
        return b"".join(parts)

    def exchange(self, request: bytes) -> bytes:
        """Send one request payload, return the response payload (raw)."""
        proc = self._start()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            proc.stdin.write(frame(request))
            proc.stdin.flush()
            (n,) = _LENGTH.unpack(self._read(proc, _LENGTH.size, deadline))
            if n > MAX_FRAME:
                raise self._fail(f"answered with a frame length of {n} bytes (over the "
                                 f"{MAX_FRAME}-byte limit)", FrameError)
            return self._read(proc, n, deadline)
        except (BrokenPipeError, ConnectionResetError):
            raise self._fail("closed its input before taking the request") from None
        except EOFError as exc:
            raise self._fail(f"ended its output after {exc.args[0]} bytes, without a whole "
                             "response") from None
        except TimeoutError:
            raise self._fail(f"no response within {self.timeout} s") from None

    def prove(self, job: ProofJob) -> ProofResult:
        pre = check_job(job)
        t0 = time.perf_counter()
        with self._lock:
            try:
                payload = self.exchange(encode_request(job))
                status, symbol, batch_id, prove_ns, body = decode_response(payload)
            except FrameError as exc:
                if self._proc is not None:
                    raise self._fail(f"sent a malformed response: {exc}", FrameError) from None
                raise
        if (symbol, batch_id) != (job.symbol, job.batch_id):
            raise self._fail(f"answered for symbol {symbol} batch {batch_id}, asked for symbol "
                             f"{job.symbol} batch {job.batch_id}", FrameError)
        if status == ERROR:
            raise BackendError(f"prover host {self.command[0]!r} could not prove symbol {job.symbol} "
                               f"batch {job.batch_id}: {body.decode('utf-8', 'replace')}")
        bp, n_trades = accept_proof(job, body, pre)
        result = _result(job, bp, body, n_trades, time.perf_counter() - t0)
        result.extra["host_prove_s"] = prove_ns / 1e9
        return result

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def accept_proof(job: ProofJob, raw: bytes, pre: Book) -> tuple[B.BatchProof, int]:
    """Check that `raw` is a batch proof file proving exactly `job` (whose
    cells hold the book `pre`, as check_job returned it) and verify it: (the
    decoded proof, its trade count).  ProofRejected otherwise."""
    try:
        bp = proof_file.decode(raw)
    except ProofFormatError as exc:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: not a batch proof "
                            f"file: {exc}") from None
    pub = bp.public
    # what the rules give for these operations from these cells
    ops = np.array(job.ops, dtype=OP_DTYPE, copy=True)
    trades = Book.from_cells(pre.cells, validate=False).process(ops)
    # the pre-state root and Link any proof of `job` must carry: functions of the cells alone
    state = B.BookState.of(pre, job.trace_length, job.log_blowup)
    root, link = state.root, state.link
    wrong = [what for what, bad in [
        ("symbol", pub.symbol != job.symbol),
        ("batch id", pub.batch_id != job.batch_id),
        ("trace length", pub.trace_length != job.trace_length),
        ("blowup", bp.proof.options.log_blowup != job.log_blowup),
        ("operations", pub.ops.tobytes() != ops.tobytes()),
        ("trades", pub.trades.tobytes() != trades.tobytes()),
        ("pre-state", pub.pre_root != root or pub.pre_link != link),
    ] if bad]
    if wrong:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: the proof's "
                            f"{', '.join(wrong)} differ from the job's")
    try:
        B.verify_batch(bp, min_security=job.security_bits)
    except VerificationError as exc:
        raise ProofRejected(f"symbol {job.symbol} batch {job.batch_id}: the proof does not "
                            f"verify: {exc}") from None
    return bp, len(trades)

"""Proof backends: what turns a ProofJob into a ProofResult.

    NativeBackend    the order-book STARK (daemon/jobs.py prove_job), in this process
    ProcessBackend   an external prover host spoken to over its stdin/stdout
                     with the frames of daemon/frames.py (docs/API.md,
                     "External prover protocol")

The process protocol is how a ZisK or SP1 host would plug in: witness in
(the engine's cells before the batch, its operation records with their
outcomes, the engine's steps and trades of them), batch proof file out.  Nothing here pretends to be such a host; `zksidecar prover-server`
(daemon/prover_server.py) is the native prover behind the protocol, and it
is what the tests run.  An external prover is trusted for nothing: every
proof it returns passes jobs.accept_proof (the job's symbol, batch id, chain
parameters, operations, trades and pre-state, then verify_batch) before it is
kept.  Neither backend runs the engine: the job carries the shadow book's
run.
"""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import tempfile
import threading
import time

from ..prover.orderbook import proof_file
from .frames import ERROR, LENGTH_SIZE, FrameError, decode_response, encode_request, frame, read_length
from .jobs import BackendError, ProofJob, ProofResult, accept_proof, check_job, prove_job


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
    """The order-book STARK in this process."""

    name = "native"

    def prove(self, job: ProofJob) -> ProofResult:
        t0 = time.perf_counter()
        proof = prove_job(job)
        raw = proof_file.encode(proof)
        return ProofResult(job.symbol, job.batch_id, raw, proof.post_root, len(job.ops),
                           len(job.trades), time.perf_counter() - t0)


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
        """Send one request payload, return the response payload (raw).  A
        payload too big for a frame is refused (FrameError) before the host
        sees it; any fault of the host stops it."""
        framed = frame(request)
        proc = self._start()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            proc.stdin.write(framed)
            proc.stdin.flush()
            head = self._read(proc, LENGTH_SIZE, deadline)
            try:
                n = read_length(head)
            except FrameError as exc:
                raise self._fail(f"answered with {exc}", FrameError) from None
            return self._read(proc, n, deadline)
        except (BrokenPipeError, ConnectionResetError):
            raise self._fail("closed its input before taking the request") from None
        except EOFError as exc:
            raise self._fail(f"ended its output after {exc.args[0]} bytes, without a whole "
                             "response") from None
        except TimeoutError:
            raise self._fail(f"no response within {self.timeout} s") from None

    def prove(self, job: ProofJob) -> ProofResult:
        check_job(job)
        t0 = time.perf_counter()
        request = encode_request(job)
        with self._lock:
            # a FrameError out of exchange is the job's (too big for a frame:
            # the host is left alone) or a fault exchange stopped the host for
            payload = self.exchange(request)
            try:
                status, symbol, batch_id, prove_ns, body = decode_response(payload)
            except FrameError as exc:
                raise self._fail(f"sent a malformed response: {exc}", FrameError) from None
        if (symbol, batch_id) != (job.symbol, job.batch_id):
            raise self._fail(f"answered for symbol {symbol} batch {batch_id}, asked for symbol "
                             f"{job.symbol} batch {job.batch_id}", FrameError)
        if status == ERROR:
            raise BackendError(f"prover host {self.command[0]!r} could not prove symbol {job.symbol} "
                               f"batch {job.batch_id}: {body.decode('utf-8', 'replace')}")
        proof = accept_proof(job, body)
        result = ProofResult(job.symbol, job.batch_id, body, proof.post_root, len(job.ops),
                             len(job.trades), time.perf_counter() - t0)
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

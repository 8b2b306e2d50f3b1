"""`zksidecar prover-server`: the native prover behind the external-prover
protocol (daemon/frames.py), on stdin and stdout.

It is what a ZisK or SP1 host would be to the daemon's ProcessBackend, and
what the tests run; it proves each job with daemon/jobs.py's prove_job.
"""
from __future__ import annotations

import time
from typing import BinaryIO

from ..prover.orderbook import proof_file
from .frames import ERROR, OK, FrameError, decode_request, encode_response, frame, read_frame
from .jobs import prove_job


def serve(inp: BinaryIO, out: BinaryIO) -> int:
    """Answer each request frame on `inp` with a response frame on `out`
    until end of input (exit status 0).  A request that frames correctly
    but is malformed gets an ERROR response and the session goes on; a
    broken frame stream gets an ERROR response and ends the session (status
    2), since nothing after it can be trusted."""
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
            proof = prove_job(job)
            status, body = OK, proof_file.encode(proof)
        except Exception as exc:
            status, body = ERROR, f"{type(exc).__name__}: {exc}".encode()
        out.write(frame(encode_response(status, symbol, batch_id, time.perf_counter_ns() - t0, body)))
        out.flush()

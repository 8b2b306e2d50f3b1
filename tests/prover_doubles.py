"""Test doubles: misbehaving prover hosts for tests/test_backends.py.

    python tests/prover_doubles.py MODE

Each reads request frames on stdin like `zksidecar prover-server` and then
misbehaves in one way, so the tests can check that ProcessBackend names the
fault and never accepts a bad proof.  None of this is shipped.

    crash     exits with status 3 (after a line on stderr) instead of answering
    garbage   answers with a frame that is not a response
    wrong     proves the job without its last operation (a valid proof of other work)
    relabel   proves the job, then claims the proof is for the next batch id
    tamper    proves the job and flips one byte of the proof
    hang      never answers
"""
from __future__ import annotations

import sys
import time

from zksidecar.daemon import frames as B
from zksidecar.daemon.jobs import prove_job
from zksidecar.engine.trace import StepKind
from zksidecar.prover.orderbook import proof_file


def main(mode: str) -> int:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while (payload := B.read_frame(inp)) is not None:
        job = B.decode_request(payload)
        if mode == "crash":
            print("prover double: crashing on purpose", file=sys.stderr, flush=True)
            return 3
        if mode == "hang":
            time.sleep(3600)
        if mode == "garbage":
            out.write(B.frame(b"this is not a response frame at all, nor near it"))
            out.flush()
            continue
        if mode == "wrong":                  # the run of all but the last operation
            kept = job.steps["op"] < len(job.ops) - 1
            job.ops, job.steps = job.ops[:-1], job.steps[kept]
            job.trades = job.trades[:int((job.steps["kind"] == StepKind.MATCH).sum())]
        bp = prove_job(job)
        if mode == "relabel":
            bp.public.batch_id += 1
        raw = bytearray(proof_file.encode(bp))
        if mode == "tamper":
            raw[len(raw) - 100] ^= 0x10
        out.write(B.frame(B.encode_response(B.OK, job.symbol, job.batch_id, 0, bytes(raw))))
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""The external-prover protocol's frames (csrc/formats/zk_backend.h, docs/API.md,
"External prover protocol").

A frame is a u32 little-endian length then that many bytes of payload.  A
request payload is a 40-byte header (REQUEST), the engine's u32 cells before
the batch and its operation records; a response payload is a 32-byte header
(RESPONSE) then the batch proof file (status OK) or an error text (ERROR).
The header dtypes mirror the C structs; tests/test_backends.py checks every
field's name, offset and size against the compiled header.  Everything read
here is untrusted: sizes are checked before anything is allocated.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

from ..engine.records import OP_DTYPE, Packed, record_dtype
from .jobs import BackendError, ProofJob

VERSION = 1
MAX_FRAME = 1 << 30
OK, ERROR = 0, 1
REQUEST_MAGIC, RESPONSE_MAGIC = b"ZKPQ", b"ZKPR"

REQUEST_DTYPE = record_dtype([
    ("magic", "4u1", 0),
    ("version", "<u2", 4),
    ("log_blowup", "<u2", 6),
    ("symbol", "<u4", 8),
    ("security_bits", "<u4", 12),
    ("batch_id", "<u8", 16),
    ("trace_length", "<u4", 24),
    ("n_cells", "<u4", 28),
    ("n_ops", "<u4", 32),
    ("reserved", "<u4", 36),
], 40)

RESPONSE_DTYPE = record_dtype([
    ("magic", "4u1", 0),
    ("version", "<u2", 4),
    ("status", "<u2", 6),
    ("symbol", "<u4", 8),
    ("reserved", "<u4", 12),
    ("batch_id", "<u8", 16),
    ("prove_ns", "<u8", 24),
], 32)

REQUEST = Packed("ProverRequest", REQUEST_DTYPE)
RESPONSE = Packed("ProverResponse", RESPONSE_DTYPE)
_LENGTH = struct.Struct("<I")
LENGTH_SIZE = _LENGTH.size


class FrameError(BackendError):
    """Bytes that are not a well-formed frame of the process protocol."""


def encode_request(job: ProofJob) -> bytes:
    cells = np.ascontiguousarray(job.pre_cells, dtype="<u4")
    ops = np.ascontiguousarray(job.ops, dtype=OP_DTYPE)
    head = REQUEST.pack(magic=tuple(REQUEST_MAGIC), version=VERSION, log_blowup=job.log_blowup,
                        symbol=job.symbol, security_bits=job.security_bits, batch_id=job.batch_id,
                        trace_length=job.trace_length, n_cells=len(cells), n_ops=len(ops),
                        reserved=0)
    return head + cells.tobytes() + ops.tobytes()


def decode_request(payload: bytes) -> ProofJob:
    """A request frame's payload as a ProofJob; FrameError if malformed."""
    if len(payload) < REQUEST.size:
        raise FrameError(f"a request of {len(payload)} bytes is shorter than its "
                         f"{REQUEST.size}-byte header")
    h = REQUEST.unpack(payload)
    if bytes(h.magic) != REQUEST_MAGIC:
        raise FrameError(f"not a prover request (magic {bytes(h.magic)!r}, expected {REQUEST_MAGIC!r})")
    if h.version != VERSION:
        raise FrameError(f"request version {h.version}; this prover speaks version {VERSION}")
    if h.reserved:
        raise FrameError("the request's reserved field is not zero")
    want = REQUEST.size + 4 * h.n_cells + OP_DTYPE.itemsize * h.n_ops
    if len(payload) != want:
        raise FrameError(f"a request for {h.n_cells} cells and {h.n_ops} operations is {want} "
                         f"bytes, this one is {len(payload)}")
    cells = np.frombuffer(payload, dtype="<u4", count=h.n_cells, offset=REQUEST.size).astype(np.uint32)
    ops = np.frombuffer(payload, dtype=OP_DTYPE, count=h.n_ops,
                        offset=REQUEST.size + 4 * h.n_cells).copy()
    return ProofJob(h.symbol, h.batch_id, cells, ops, h.trace_length, h.security_bits, h.log_blowup)


def encode_response(status: int, symbol: int, batch_id: int, prove_ns: int, body: bytes) -> bytes:
    return RESPONSE.pack(magic=tuple(RESPONSE_MAGIC), version=VERSION, status=status, symbol=symbol,
                         reserved=0, batch_id=batch_id, prove_ns=prove_ns) + body


def decode_response(payload: bytes) -> tuple[int, int, int, int, bytes]:
    """(status, symbol, batch_id, prove_ns, body); FrameError if malformed."""
    if len(payload) < RESPONSE.size:
        raise FrameError(f"a response of {len(payload)} bytes is shorter than its "
                         f"{RESPONSE.size}-byte header")
    h = RESPONSE.unpack(payload)
    if bytes(h.magic) != RESPONSE_MAGIC:
        raise FrameError(f"not a prover response (magic {bytes(h.magic)!r}, expected "
                         f"{RESPONSE_MAGIC!r})")
    if h.version != VERSION:
        raise FrameError(f"response version {h.version}; the daemon speaks version {VERSION}")
    if h.status not in (OK, ERROR) or h.reserved:
        raise FrameError(f"response status {h.status} (reserved {h.reserved}) is not defined")
    return h.status, h.symbol, h.batch_id, h.prove_ns, payload[RESPONSE.size:]


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise FrameError(f"a frame of {len(payload)} bytes is over the {MAX_FRAME}-byte limit")
    return _LENGTH.pack(len(payload)) + payload


def read_length(head: bytes) -> int:
    """The payload length a frame's 4-byte head announces; FrameError over MAX_FRAME."""
    (n,) = _LENGTH.unpack(head)
    if n > MAX_FRAME:
        raise FrameError(f"a frame length of {n} bytes is over the {MAX_FRAME}-byte limit "
                         "(a broken stream)")
    return n


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's payload; None at end of input on a frame boundary."""
    head = _read_exactly(stream, LENGTH_SIZE, at_boundary=True)
    if head is None:
        return None
    return _read_exactly(stream, read_length(head))


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

"""The external-prover protocol's frames (csrc/formats/zk_backend.h, docs/API.md,
"External prover protocol").

A frame is a u32 little-endian length then that many bytes of payload.  A
request payload is a 48-byte header (REQUEST), then the engine's u32 cells
before the batch, its operation records, the engine's step records and
trades of them (the job: daemon/jobs.py), and in zk mode the batch's keys
(ZK, 224 bytes: never the store key); a response payload is a 32-byte
header (RESPONSE) then the batch proof file (status OK) or an error text
(ERROR).  The header dtypes mirror the C structs; tests/test_backends.py
checks every field's name, offset and size, and the record sizes, against
the compiled header.  Everything read here is untrusted: the sizes a header
claims are checked against the payload before anything is read, and the
records' contents by the job's own checks (check_job, prepare_run).
"""
from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

from ..engine.records import OP_DTYPE, TRADE_DTYPE, Packed, record_dtype
from ..engine.trace import STEP_DTYPE
from ..prover.orderbook.zk_chain import BatchKeys
from .jobs import BackendError, ProofJob, ZkJob

VERSION = 3
MAX_FRAME = 1 << 30
OK, ERROR = 0, 1
REQUEST_MAGIC, RESPONSE_MAGIC = b"ZKPQ", b"ZKPR"
MODE_TRANSPARENT, MODE_ZK = 0, 1
ZK_RESUMED = 1

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
    ("n_steps", "<u4", 36),
    ("n_trades", "<u4", 40),
    ("mode", "<u4", 44),
], 48)

ZK_DTYPE = record_dtype([
    ("flags", "<u4", 0),
    ("reserved", "<u4", 4),
    ("pre_ts", "<u8", 8),
    ("content", "32u1", 16),
    ("batch_key", "32u1", 48),
    ("pre_table", "32u1", 80),
    ("pre_key", "32u1", 112),
    ("post_table", "32u1", 144),
    ("post_key", "32u1", 176),
    ("reserved2", "16u1", 208),
], 224)

#: what follows a request's header, in order: (header count field, dtype)
REQUEST_BODY = (("n_cells", np.dtype("<u4")), ("n_ops", OP_DTYPE), ("n_steps", STEP_DTYPE),
                ("n_trades", TRADE_DTYPE))

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
ZK = Packed("ProverZkKeys", ZK_DTYPE)
_NONE = bytes(32)
RESPONSE = Packed("ProverResponse", RESPONSE_DTYPE)
_LENGTH = struct.Struct("<I")
LENGTH_SIZE = _LENGTH.size


class FrameError(BackendError):
    """Bytes that are not a well-formed frame of the process protocol."""


def encode_request(job: ProofJob) -> bytes:
    parts = [np.ascontiguousarray(job.pre_cells, dtype="<u4"), np.ascontiguousarray(job.ops),
             np.ascontiguousarray(job.steps), np.ascontiguousarray(job.trades)]
    for (_, dtype), part in zip(REQUEST_BODY, parts):
        if part.dtype != dtype or part.ndim != 1:
            raise FrameError(f"a job's {part.dtype} array where the request takes {dtype} records")
    head = REQUEST.pack(magic=tuple(REQUEST_MAGIC), version=VERSION, log_blowup=job.log_blowup,
                        symbol=job.symbol, security_bits=job.security_bits, batch_id=job.batch_id,
                        trace_length=job.trace_length,
                        mode=MODE_TRANSPARENT if job.zk is None else MODE_ZK,
                        **{count: len(part) for (count, _), part in zip(REQUEST_BODY, parts)})
    tail = []
    if job.zk is not None:
        z, k = job.zk, job.zk.keys
        tail = [ZK.pack(flags=ZK_RESUMED if z.resumed else 0, reserved=0, pre_ts=z.pre_ts,
                        content=tuple(k.content), batch_key=tuple(k.batch_key),
                        pre_table=tuple(k.pre_table or _NONE), pre_key=tuple(k.pre_key or _NONE),
                        post_table=tuple(k.post_table), post_key=tuple(k.post_key), reserved2=(0,) * 16)]
    return b"".join([head] + [part.tobytes() for part in parts] + tail)


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
    if h.mode not in (MODE_TRANSPARENT, MODE_ZK):
        raise FrameError(f"request mode {h.mode} (bytes 44-47) is not defined (0 transparent, 1 zk)")
    counts = [int(getattr(h, count)) for count, _ in REQUEST_BODY]
    want = REQUEST.size + sum(n * dtype.itemsize for n, (_, dtype) in zip(counts, REQUEST_BODY)) \
        + (ZK.size if h.mode == MODE_ZK else 0)
    if len(payload) != want:
        claim = ", ".join(f"{n} {count[2:]}" for n, (count, _) in zip(counts, REQUEST_BODY))
        raise FrameError(f"a request for {claim} is {want} bytes, this one is {len(payload)}")
    body, at = [], REQUEST.size
    for n, (_, dtype) in zip(counts, REQUEST_BODY):
        # copies: the records are the job's own, writable, and outlive the payload
        body.append(np.frombuffer(payload, dtype=dtype, count=n, offset=at).copy())
        at += n * dtype.itemsize
    cells, ops, steps, trades = body
    zk = _zk_keys(payload[at:], h.batch_id) if h.mode == MODE_ZK else None
    return ProofJob(h.symbol, h.batch_id, cells, ops, steps, trades,
                    h.trace_length, h.security_bits, h.log_blowup, zk)


def _zk_keys(raw: bytes, batch_id: int) -> ZkJob:
    """A zk request's keys block (ZK); FrameError if malformed."""
    z = ZK.unpack(raw)
    if z.flags & ~ZK_RESUMED or z.reserved or any(z.reserved2):
        raise FrameError("the zk keys' unknown flags or reserved bytes are not zero")
    pre_table, pre_key = bytes(z.pre_table), bytes(z.pre_key)
    if batch_id == 0:
        if pre_table != _NONE or pre_key != _NONE:
            raise FrameError("batch 0 has no pre-state key (the public empty book): its fields must be zero")
        pre_table = pre_key = None
    try:
        keys = BatchKeys(batch_id, bytes(z.content), bytes(z.batch_key), pre_table, pre_key,
                         bytes(z.post_table), bytes(z.post_key))
    except ValueError as exc:
        raise FrameError(f"the zk keys: {exc}") from None
    return ZkJob(keys, int(z.pre_ts), bool(z.flags & ZK_RESUMED))


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


#: the most one read asks the stream for: a frame's claimed length is
#: untrusted, and stream.read(n) allocates n bytes before any arrives, so
#: the memory a frame takes grows with the bytes that come, never with the claim
READ_CHUNK = 1 << 20


def _read_exactly(stream: BinaryIO, n: int, at_boundary: bool = False) -> bytes | None:
    parts, got = [], 0
    while got < n:
        chunk = stream.read(min(n - got, READ_CHUNK))
        if not chunk:
            if at_boundary and got == 0:
                return None
            raise FrameError(f"end of input after {got} of {n} bytes of a frame")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)

"""The transcript's squeeze: the blocks hashed in C side by side (a squeeze
of many) are the blocks of the definition, SHA-256(state || 0x02 || k)."""
import hashlib
import struct

import pytest

from zksidecar.prover.transcript import Transcript


def _definition(state: bytes, nbytes: int) -> tuple[bytes, bytes]:
    out = b"".join(hashlib.sha256(state + b"\x02" + struct.pack("<Q", k)).digest()
                   for k in range(-(-nbytes // 32)))
    return out[:nbytes], hashlib.sha256(state + b"\x03").digest()


@pytest.mark.parametrize("nbytes", [1, 32, 33, 15 * 32, 16 * 32, 16 * 32 + 5, 400 * 32])
def test_a_squeeze_is_the_definitions_blocks_at_every_size(each_isa, nbytes):
    tr = Transcript(b"test")
    tr.absorb(b"x", b"some message")
    state = tr._state
    want, next_state = _definition(state, nbytes)
    assert tr._blocks(nbytes) == want
    assert tr._state == next_state

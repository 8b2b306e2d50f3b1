"""Fiat–Shamir transcript over SHA-256.

Prover and verifier feed the same messages in the same order and draw the same
challenges, so the prover cannot choose a challenge after seeing it.  Every
message is framed with a label and its length, so two different message
sequences never hash alike.

    state_0     = SHA-256("zksidecar-transcript-v1" || domain)
    absorb:       state = SHA-256(state || 0x01 || len(label) || label || len(data) || data)
    squeeze k:    block_k = SHA-256(state || 0x02 || k)   (k = 0, 1, ...; the state
                  then becomes SHA-256(state || 0x03) so later draws differ)

Field elements are drawn as 8 little-endian bytes reduced mod p: the most
likely value is at most (1 + p / 2^64) < 1 + 2^-33 times as likely as under
the uniform distribution, so any bad-challenge probability grows by that
factor, no more (a multiplicative, not additive, loss).
"""
from __future__ import annotations

import hashlib
import struct

import numpy as np

from .field import P, encode
from .merkle import sha256_messages

_LEN = struct.Struct("<Q")
#: from this many blocks on a squeeze hashes them in one C call
_MANY_BLOCKS = 16


class Transcript:
    def __init__(self, domain: bytes):
        self._state = hashlib.sha256(b"zksidecar-transcript-v1" + domain).digest()

    def digest(self) -> bytes:
        """The state: a SHA-256 digest of everything absorbed so far (after
        the header, the header digest zk mode's proof key is derived from)."""
        return self._state

    # --------------------------------------------------------------- absorb --

    def absorb(self, label: bytes, data: bytes) -> None:
        h = hashlib.sha256(self._state)
        h.update(b"\x01" + _LEN.pack(len(label)) + label + _LEN.pack(len(data)))
        h.update(data)
        self._state = h.digest()

    def absorb_array(self, label: bytes, a: np.ndarray) -> None:
        """Absorb field elements by their canonical values (Montgomery form is
        an implementation detail that never reaches the transcript)."""
        from .field import decode

        self.absorb(label, decode(np.ascontiguousarray(a)).astype("<u4").tobytes())

    # -------------------------------------------------------------- squeeze --

    def _blocks(self, nbytes: int) -> bytes:
        count = -(-nbytes // 32)
        if count < _MANY_BLOCKS:
            out = b"".join(hashlib.sha256(self._state + b"\x02" + _LEN.pack(k)).digest()
                           for k in range(count))
        else:   # hundreds at once (the DEEP coefficients): the blocks' messages side by side in C
            msgs = np.empty((count, 41), dtype=np.uint8)
            msgs[:, :32] = np.frombuffer(self._state, dtype=np.uint8)
            msgs[:, 32] = 2
            msgs[:, 33:] = np.arange(count, dtype="<u8").view(np.uint8).reshape(count, 8)
            out = sha256_messages(msgs).tobytes()
        self._state = hashlib.sha256(self._state + b"\x03").digest()
        return out[:nbytes]

    def challenge_ints(self, count: int) -> list[int]:
        """`count` canonical base-field integers."""
        raw = self._blocks(8 * count)
        return [int.from_bytes(raw[8 * i: 8 * i + 8], "little") % P for i in range(count)]

    def challenge_ext(self, count: int = 1) -> np.ndarray:
        """`count` extension elements, Montgomery form, shape (count, 4): one
        squeeze of 32 bytes each, reduced as challenge_ints does, in numpy
        (the DEEP coefficients are hundreds at once)."""
        words = np.frombuffer(self._blocks(32 * count), dtype="<u8") % np.uint64(P)
        return encode(words.astype(np.uint32)).reshape(count, 4)

    def challenge_indices(self, count: int, domain_size: int) -> list[int]:
        """`count` positions in [0, domain_size), domain_size a power of two
        (so masking is exact and unbiased), sorted and without repeats."""
        if domain_size & (domain_size - 1) or domain_size <= 0:
            raise ValueError(f"domain size {domain_size} is not a power of two")
        raw = self._blocks(8 * count)
        picks = {int.from_bytes(raw[8 * i: 8 * i + 8], "little") & (domain_size - 1)
                 for i in range(count)}
        return sorted(picks)

    # ---------------------------------------------------------- proof of work --

    def grind(self, bits: int) -> int:
        """Find the least nonce whose hash with the state has `bits` leading
        zero bits (in C: 2^bits SHA-256 compressions expected), and absorb it."""
        from .native import ffi, lib

        nonce = int(lib.zk_grind(ffi.from_buffer(self._state), bits, 0))
        self.absorb(b"pow-nonce", _LEN.pack(nonce))
        return nonce

    def check_grind(self, bits: int, nonce: int) -> bool:
        """Verifier side: is `nonce` a valid proof of work?  Absorbs it."""
        ok = 0 <= nonce < 1 << 64 and self._pow_ok(nonce, bits)
        if ok:
            self.absorb(b"pow-nonce", _LEN.pack(nonce))
        return ok

    def _pow_ok(self, nonce: int, bits: int) -> bool:
        if bits == 0:
            return True
        digest = hashlib.sha256(self._state + b"\x04" + _LEN.pack(nonce)).digest()
        return int.from_bytes(digest[:8], "big") >> (64 - bits) == 0

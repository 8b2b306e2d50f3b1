"""ChaCha20 (RFC 8439): the plain-Python definition
(prover/chacha20_reference.py) and the C kernel (csrc/hash/chacha20.c) on
every ISA path give RFC 8439's test vectors, the block function's and the
keystream's, agree with each other on streams of every length across the
vector paths' 8- and 16-block batches, and refuse a stream that would wrap
the 32-bit block counter."""
from __future__ import annotations

import numpy as np
import pytest

from zksidecar.prover import chacha20_reference as R
from zksidecar.prover import native, zk_keys
from zksidecar.prover.native import lib, u8p

KEY_0_31 = bytes(range(32))
ZERO = bytes(32)
KEY_1 = bytes(31) + b"\x01"
NONCE_2 = bytes(11) + b"\x02"

# RFC 8439: section 2.3.2 (the block function's example) and appendix A.1
# (the block function's test vectors): (key, nonce, counter, the block)
BLOCKS = [
    (KEY_0_31, bytes.fromhex("000000090000004a00000000"), 1,
     "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
     "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"),
    (ZERO, bytes(12), 0,
     "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
     "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"),
    (ZERO, bytes(12), 1,
     "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
     "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f"),
    (KEY_1, bytes(12), 1,
     "3aeb5224ecf849929b9d828db1ced4dd832025e8018b8160b82284f3c949aa5a"
     "8eca00bbb4a73bdad192b5c42f73f2fd4e273644c8b36125a64addeb006c13a0"),
    (b"\x00\xff" + bytes(30), bytes(12), 2,
     "72d54dfbf12ec44b362692df94137f328fea8da73990265ec1bbbea1ae9af0ca"
     "13b25aa26cb4a648cb9b9d1be65b2c0924a66c54d545ec1b7374f4872e99f096"),
    (ZERO, NONCE_2, 0,
     "c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c7"
     "8a970e0e955c14f3a88e741b97c286f75f8fc299e8148362fa198a39531bed6d"),
]

# RFC 8439: section 2.4.2 and appendix A.2 (encryption): (key, nonce, first
# counter, plaintext, ciphertext); the keystream is their exclusive or, and
# runs over 2 to 6 blocks with a partial last one
SUNSCREEN = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
             b"sunscreen would be it.")
IETF = (b"Any submission to the IETF intended by the Contributor for publication as all or part of an IETF "
        b"Internet-Draft or RFC and any statement made within the context of an IETF activity is considered "
        b"an \"IETF Contribution\". Such statements include oral statements in IETF sessions, as well as "
        b"written and electronic communications made at any time or place, which are addressed to")
JABBERWOCKY = (b"'Twas brillig, and the slithy toves\nDid gyre and gimble in the wabe:\nAll mimsy were the "
               b"borogoves,\nAnd the mome raths outgrabe.")
STREAMS = [
    (KEY_0_31, bytes.fromhex("000000000000004a00000000"), 1, SUNSCREEN,
     "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
     "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
     "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
     "5af90bbf74a35be6b40b8eedf2785e42874d"),
    (ZERO, bytes(12), 0, bytes(64),
     "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
     "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"),
    (KEY_1, NONCE_2, 1, IETF,
     "a3fbf07df3fa2fde4f376ca23e82737041605d9f4f4f57bd8cff2c1d4b7955ec"
     "2a97948bd3722915c8f3d337f7d370050e9e96d647b7c39f56e031ca5eb6250d"
     "4042e02785ececfa4b4bb5e8ead0440e20b6e8db09d881a7c6132f420e527950"
     "42bdfa7773d8a9051447b3291ce1411c680465552aa6c405b7764d5e87bea85a"
     "d00f8449ed8f72d0d662ab052691ca66424bc86d2df80ea41f43abf937d3259d"
     "c4b2d0dfb48a6c9139ddd7f76966e928e635553ba76c5c879d7b35d49eb2e62b"
     "0871cdac638939e25e8a1e0ef9d5280fa8ca328b351c3c765989cbcf3daa8b6c"
     "cc3aaf9f3979c92b3720fc88dc95ed84a1be059c6499b9fda236e7e818b04b0b"
     "c39c1e876b193bfe5569753f88128cc08aaa9b63d1a16f80ef2554d7189c411f"
     "5869ca52c5b83fa36ff216b9c1d30062bebcfd2dc5bce0911934fda79a86f6e6"
     "98ced759c3ff9b6477338f3da4f9cd8514ea9982ccafb341b2384dd902f3d1ab"
     "7ac61dd29c6f21ba5b862f3730e37cfdc4fd806c22f221"),
    (bytes.fromhex("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0"), NONCE_2, 42, JABBERWOCKY,
     "62e6347f95ed87a45ffae7426f27a1df5fb69110044c0d73118effa95b01e5cf"
     "166d3df2d721caf9b21e5fb14c616871fd84c54f9d65b283196c7fe4f60553eb"
     "f39c6402c42234e32a356b3e764312a61a5532055716ead6962568f87d3f3f77"
     "04c6a8d1bcd1bf4d50d6154b6da731b187b58dfd728afa36757a797ac188d1"),
]


def c_blocks(key: bytes, nonce: bytes, counter: int, nblocks: int) -> tuple[int, bytes]:
    """(return code, output) of zk_chacha20_blocks, the output prefilled
    with 0xA5 so that a write where none belongs shows."""
    out = np.full(64 * nblocks + 64, 0xA5, dtype=np.uint8)      # one block of slack past the end
    rc = lib.zk_chacha20_blocks(u8p(out), key, nonce, counter, nblocks)
    assert (out[64 * nblocks:] == 0xA5).all(), "written past the last block"
    return rc, out[:64 * nblocks].tobytes()


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


@pytest.mark.parametrize("key, nonce, counter, expected", BLOCKS, ids=lambda v: None)
def test_the_block_function_gives_rfc_8439s_vectors_on_every_path(key, nonce, counter, expected):
    expected = bytes.fromhex(expected)
    assert R.block(key, counter, nonce) == expected
    for isa, got in native.on_each_isa(lambda: c_blocks(key, nonce, counter, 1)).items():
        assert got == (0, expected), f"{isa} path"


@pytest.mark.parametrize("key, nonce, counter, plain, cipher", STREAMS, ids=lambda v: None)
def test_the_keystream_gives_rfc_8439s_encryption_vectors_on_every_path(key, nonce, counter, plain, cipher):
    stream = xor(plain, bytes.fromhex(cipher))
    assert len(stream) == len(plain)
    assert R.keystream(key, nonce, counter, len(plain)) == stream
    blocks = -(-len(plain) // 64)
    for isa, (rc, got) in native.on_each_isa(lambda: c_blocks(key, nonce, counter, blocks)).items():
        assert rc == 0 and got[:len(plain)] == stream, f"{isa} path"


def test_every_path_is_the_definition_across_its_batches():
    """Streams of 1 to 40 blocks from several counters: whole and partial
    batches of 8 (AVX2) and 16 (AVX-512) blocks, and a batch whose unused
    lanes would pass the last counter."""
    key, nonce = bytes(range(100, 132)), bytes(range(12))
    definition = {counter: R.keystream(key, nonce, counter, 64 * 40) for counter in (0, 5, (1 << 32) - 40)}
    for isa, results in native.on_each_isa(
            lambda: {(c, n): c_blocks(key, nonce, c, n) for c in definition for n in range(1, 41)}).items():
        for (c, n), (rc, got) in results.items():
            assert rc == 0 and got == definition[c][:64 * n], f"{isa} path, {n} blocks from {c}"


def test_the_header_and_the_python_sides_agree_on_the_sizes():
    assert (lib.ZK_CHACHA20_KEY_BYTES, lib.ZK_CHACHA20_NONCE_BYTES, lib.ZK_CHACHA20_BLOCK_BYTES) == (32, 12, 64)
    assert R.BLOCK_BYTES == zk_keys.BLOCK_BYTES == lib.ZK_CHACHA20_BLOCK_BYTES
    assert zk_keys.KEY_BYTES == lib.ZK_CHACHA20_KEY_BYTES and zk_keys.MAX_STREAM_BLOCKS == R.MAX_BLOCKS


def test_a_stream_never_wraps_the_block_counter():
    key, nonce, last = KEY_0_31, bytes(12), (1 << 32) - 1
    for isa, r in native.on_each_isa(lambda: [c_blocks(key, nonce, last, 1), c_blocks(key, nonce, last, 2),
                                              c_blocks(key, nonce, 1 << 32, 1), c_blocks(key, nonce, 1 << 32, 0),
                                              c_blocks(key, nonce, 1 << 40, 0)]).items():
        assert r[0] == (0, R.block(key, last, nonce)), f"{isa} path: the last block"
        assert r[1] == (-1, b"\xa5" * 128), f"{isa} path: past it, nothing written"
        assert r[2][0] == -1 and r[3] == (0, b"") and r[4][0] == -1, f"{isa} path"
    with pytest.raises(ValueError, match="past the 32-bit counter"):
        R.keystream(key, nonce, last, 65)
    assert R.keystream(key, nonce, last, 64) == R.block(key, last, nonce)
    with pytest.raises(ValueError, match="32-bit block counter"):
        R.block(key, 1 << 32, nonce)

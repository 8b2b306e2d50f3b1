"""The zk keys (prover/zk_keys.py, docs/ZK_KEYS.md): the label encoding is
injective, derivations are deterministic and depend on every input, the
expansion is the ChaCha20 keystream of HMAC(key, label(["stream", ...]))
byte for byte (hashlib's hmac and chacha20_reference are the reference) on
every ISA path, bounded by the 32-bit block counter, and the rejection
sampling is exact."""
from __future__ import annotations

import hashlib
import hmac
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zksidecar.prover import chacha20_reference, field as F, native, zk_keys
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.field import P

U64 = struct.Struct("<Q")
KEY = bytes(range(32))
CHAIN = dict(mode="zk", ops_rows=1 << 15, capacity=1 << 12, log_blowup=1, queries=88, h=196,
             h_q=92, fri_folds=(8, 8, 4), fri_final_degree=48, grinding_bits=16, proof_version=4,
             batch_file_version=4, air_version=3, key_stream_version=2)


# ---------------------------------------------------------------- labels --

def parse(data: bytes, at: int = 0) -> tuple[list, int]:
    """The test's own decoder of docs/ZK_KEYS.md's label encoding: the list
    a label encodes, and where it ends.  Injectivity follows from
    parse(label(x)) == x."""
    (count,), at = U64.unpack_from(data, at), at + 8
    fields = []
    for _ in range(count):
        tag, at = data[at:at + 1], at + 1
        if tag == b"U":
            fields.append(U64.unpack_from(data, at)[0])
            at += 8
        elif tag in (b"B", b"S"):
            (n,), at = U64.unpack_from(data, at), at + 8
            body, at = data[at:at + n], at + n
            assert len(body) == n, "truncated field"
            fields.append(body if tag == b"B" else body.decode("utf-8"))
        elif tag == b"L":
            inner, at = parse(data, at)
            fields.append(inner)
        else:
            raise ValueError(f"unknown tag {tag!r}")
    return fields, at


def parse_whole(data: bytes) -> list:
    fields, end = parse(data)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the label")
    return fields


def normal(fields) -> list:
    """A field list as the decoder gives it back (tuples as lists)."""
    return [normal(f) if isinstance(f, (list, tuple)) else f for f in fields]


scalars = st.one_of(st.binary(max_size=6), st.text(max_size=4), st.integers(0, 2**64 - 1))
field_lists = st.lists(st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6),
                       max_size=5)


@settings(max_examples=300, deadline=None)
@given(field_lists)
def test_a_label_decodes_to_its_fields(fields):
    assert parse_whole(zk_keys.label(fields)) == normal(fields)


@settings(max_examples=300, deadline=None)
@given(field_lists, field_lists)
def test_different_field_lists_never_encode_alike(a, b):
    if normal(a) != normal(b):
        assert zk_keys.label(a) != zk_keys.label(b)
        # and neither is a prefix of the other: a label never ends early
        la, lb = zk_keys.label(a), zk_keys.label(b)
        assert not la.startswith(lb) and not lb.startswith(la)


@pytest.mark.parametrize("a, b", [
    (["ab", "c"], ["a", "bc"]),                 # the concatenation ambiguity
    (["", "x"], ["x", ""]),
    (["abc"], ["ab", "c"]),
    ([b"ab"], ["ab"]),                          # a field's type is encoded
    ([1], [b"\x01\x00\x00\x00\x00\x00\x00\x00"]),
    ([[1, 2]], [1, 2]),                         # nesting is encoded
    ([[]], []),
    ([["a"], "b"], [["a", "b"]]),
    (["batch", b"\x00" * 32, "BTC", 1], ["batch", b"\x00" * 32, "BTC", [1]]),
])
def test_classic_ambiguities_encode_apart(a, b):
    assert zk_keys.label(a) != zk_keys.label(b)


def test_the_encoding_is_the_documented_bytes():
    assert zk_keys.label(["a", 1, b"\xff", [2]]) == (
        U64.pack(4) + b"S" + U64.pack(1) + b"a" + b"U" + U64.pack(1) + b"B" + U64.pack(1) + b"\xff"
        + b"L" + U64.pack(1) + b"U" + U64.pack(2))
    assert zk_keys.label([]) == U64.pack(0)


def test_a_label_with_a_counter_is_never_a_label():
    """The expansion inputs of key stream version 1 (label || le64(i)) are
    never labels, so never a stream key's input either: a key used under
    both versions gives no stream key equal to an old block."""
    for fields in (["proof", b"\x00" * 32], [], ["x"], [[], []]):
        for counter in (0, 1, 2**40):
            with pytest.raises(ValueError, match="bytes after the label"):
                parse_whole(zk_keys.label(fields) + U64.pack(counter))


@pytest.mark.parametrize("bad, error, message", [
    ([True], TypeError, "field 0 is bool"),
    ([1.5], TypeError, "field 0 is float"),
    (["a", None], TypeError, "field 1 is NoneType"),
    ([{"a": 1}], TypeError, "field 0 is dict"),
    ([np.zeros(2)], TypeError, "field 0 is ndarray"),
    ([-1], ValueError, r"field 0 = -1 is not in \[0, 2\^64\)"),
    ([2**64], ValueError, "is not in"),
    ("batch", TypeError, "list or tuple of fields, got str"),
    (b"batch", TypeError, "got bytes"),
])
def test_bad_fields_are_refused(bad, error, message):
    with pytest.raises(error, match=message):
        zk_keys.label(bad)


# ----------------------------------------------------------- derivation --

def test_derivation_is_hmac_of_the_label():
    assert zk_keys.derive(KEY, ["x", 1]) == hmac.digest(KEY, zk_keys.label(["x", 1]), "sha256")
    delta = zk_keys.chain_digest(**CHAIN)
    content = hashlib.sha256(b"content").digest()
    assert zk_keys.batch_key(KEY, delta, "BTC", 7, content) == hmac.digest(
        KEY, zk_keys.label(["batch", delta, "BTC", 7, content]), "sha256")
    kb = zk_keys.batch_key(KEY, delta, "BTC", 7, content)
    witness = hashlib.sha256(b"traces").digest()
    assert zk_keys.proof_key(kb, content, witness) == hmac.digest(
        kb, zk_keys.label(["proof", content, witness]), "sha256")


def test_stream_keys_are_never_derived_keys():
    """A stream key is HMAC(key, label(["stream", *fields])); derive refuses
    a label starting with "stream", so no derivation under the same key
    shares its input, and the fields are spliced injectively."""
    assert zk_keys.stream_key(KEY, ["mask", "exec"]) == hmac.digest(
        KEY, zk_keys.label(["stream", "mask", "exec"]), "sha256")
    with pytest.raises(ValueError, match="never starts with 'stream'"):
        zk_keys.derive(KEY, ["stream", "mask", "exec"])
    with pytest.raises(ValueError, match="never starts with 'stream'"):
        zk_keys.derive(KEY, ("stream",))
    assert zk_keys.derive(KEY, [b"stream"]) != zk_keys.stream_key(KEY, [])       # a bytes field is another field
    keys = {zk_keys.stream_key(KEY, f) for f in ([], ["a"], ["a", "b"], [["a", "b"]], ["ab"], ["stream"])}
    keys |= {zk_keys.derive(KEY, f) for f in ([], ["a"], ["batch", "a"])}
    assert len(keys) == 9


def test_the_chain_digest_changes_with_every_parameter():
    base = zk_keys.chain_digest(**CHAIN)
    assert base == zk_keys.chain_digest(**dict(CHAIN)) and len(base) == 32
    digests = {base}
    for name, value in CHAIN.items():
        if name == "mode":
            other = "transparent"
        elif name == "fri_folds":
            other = (8, 4, 8)                   # the order of the folds counts
        else:
            other = value + 1
        digests.add(zk_keys.chain_digest(**{**CHAIN, name: other}))
    digests.add(zk_keys.chain_digest(**{**CHAIN, "fri_folds": (8, 8, 4, 2)}))
    assert len(digests) == len(CHAIN) + 2


def _keys_from(store, delta, symbol, b, digest):
    return (zk_keys.batch_key(store, delta, symbol, b, digest),
            zk_keys.state_key(store, delta, symbol, b, digest))


def test_batch_and_state_keys_depend_on_every_input_and_on_their_use():
    delta = zk_keys.chain_digest(**CHAIN)
    digest = hashlib.sha256(b"table").digest()
    base = (KEY, delta, "BTC-USD", 41, digest)
    assert _keys_from(*base) == _keys_from(*base)              # deterministic
    flip = lambda b: bytes([b[0] ^ 1]) + b[1:]                 # noqa: E731
    variants = [(flip(KEY), delta, "BTC-USD", 41, digest), (KEY, flip(delta), "BTC-USD", 41, digest),
                (KEY, delta, "BTC-USE", 41, digest), (KEY, delta, "BTC-USD", 42, digest),
                (KEY, delta, "BTC-USD", 41, flip(digest))]
    keys = [k for args in [base] + variants for k in _keys_from(*args)]
    assert len(set(keys)) == len(keys)                         # batch and state keys never coincide


def test_the_proof_key_depends_on_every_input():
    kb = zk_keys.batch_key(KEY, zk_keys.chain_digest(**CHAIN), "BTC", 0, bytes(32))
    header = hashlib.sha256(b"header").digest()
    witness = hashlib.sha256(b"traces").digest()
    keys = {zk_keys.proof_key(kb, header, witness), zk_keys.proof_key(kb, bytes(32), witness),
            zk_keys.proof_key(bytes(32), header, witness), zk_keys.proof_key(kb, header, bytes(32))}
    assert len(keys) == 4 and zk_keys.proof_key(kb, header, witness) == zk_keys.proof_key(kb, header, witness)


def test_a_table_digest_is_of_values_and_shape():
    """table_digest (a chained state's mask label): SHA-256 of
    label(["table", rows, cols]) and each row's SHA-256 of its canonical
    values, little-endian, whatever the form the prover holds them in.
    One value or the shape changed changes it."""
    canon = np.arange(12, dtype=np.uint32).reshape(4, 3) * 1000003 % 2013265921
    table = F.encode(canon)
    rows = b"".join(hashlib.sha256(row.astype("<u4").tobytes()).digest() for row in canon)
    assert zk_keys.table_digest(table) == hashlib.sha256(zk_keys.label(["table", 4, 3]) + rows).digest()
    changed = canon.copy()
    changed[3, 2] += 1
    digests = {zk_keys.table_digest(table), zk_keys.table_digest(F.encode(changed)),
               zk_keys.table_digest(np.ascontiguousarray(table.reshape(3, 4))),
               zk_keys.table_digest(table.T)}
    assert len(digests) == 4
    with pytest.raises(TypeError, match="a table is a 2-D uint32 matrix"):
        zk_keys.table_digest(canon.astype(np.int64))


def _evaluated(canon: np.ndarray, rho: Ext, tau: Ext) -> list[int]:
    """sum_ij t_ij rho^i tau^j, by its definition (plain Python)."""
    v = Ext(0)
    for i, row in enumerate(canon.tolist()):
        for j, t in enumerate(row):
            v = v + rho ** i * tau ** j * t
    return list(v.c)


def test_the_traces_digest_evaluates_each_table_at_the_batch_keys_witness_points():
    """traces_digest: SHA-256 of label(["traces", [[name, rows, cols, v0..v3],
    ...]]), v each table's canonical values evaluated at rho, tau, the first
    8 field elements of the batch key's ["witness points", header] stream.
    One value, a shape, a name, the order, the key or the header changed
    changes it."""
    kb = zk_keys.batch_key(KEY, zk_keys.chain_digest(**CHAIN), "BTC", 0, bytes(32))
    header = hashlib.sha256(b"header").digest()
    canon = np.arange(12, dtype=np.uint32).reshape(4, 3) * 1000003 % 2013265921
    changed = canon.copy()
    changed[3, 2] += 1
    wide = np.arange(14, dtype=np.uint32).reshape(2, 7) * 7919 % 2013265921
    pair = [("a", F.encode(canon)), ("b", F.encode(changed)), ("c", F.encode(wide))]
    e = [int(x) for x in zk_keys.field_elements(kb, ["witness points", header], 8)]
    rho, tau = Ext(*e[:4]), Ext(*e[4:])
    want = hashlib.sha256(zk_keys.label(["traces", [
        ["a", 4, 3, *_evaluated(canon, rho, tau)], ["b", 4, 3, *_evaluated(changed, rho, tau)],
        ["c", 2, 7, *_evaluated(wide, rho, tau)]]])).digest()
    assert zk_keys.traces_digest(kb, header, pair) == want
    assert len({want, zk_keys.traces_digest(kb, header, pair[::-1]),
                zk_keys.traces_digest(kb, header, [("d", pair[0][1])] + pair[1:]),
                zk_keys.traces_digest(kb, header, [pair[0], ("b", pair[0][1]), pair[2]]),
                zk_keys.traces_digest(kb, header, [(pair[0][0], np.ascontiguousarray(pair[0][1].reshape(3, 4)))]
                                      + pair[1:]),
                zk_keys.traces_digest(bytes(32), header, pair),
                zk_keys.traces_digest(kb, bytes(32), pair)}) == 7
    with pytest.raises(TypeError, match="2-D uint32 matrix"):
        zk_keys.traces_digest(kb, header, [("a", canon.reshape(12))])


def test_bad_derivation_inputs_are_refused_by_name():
    delta = zk_keys.chain_digest(**CHAIN)
    with pytest.raises(ValueError, match="parent key must be 32 bytes, got 31"):
        zk_keys.batch_key(KEY[:31], delta, "BTC", 0, bytes(32))
    with pytest.raises(TypeError, match="parent key must be 32 bytes, got str"):
        zk_keys.state_key("k" * 32, delta, "BTC", 0, bytes(32))
    with pytest.raises(ValueError, match="chain digest must be 32 bytes"):
        zk_keys.batch_key(KEY, delta[:16], "BTC", 0, bytes(32))
    with pytest.raises(ValueError, match="content digest must be 32 bytes, got 33"):
        zk_keys.batch_key(KEY, delta, "BTC", 0, bytes(33))
    with pytest.raises(ValueError, match="post-state digest"):
        zk_keys.state_key(KEY, delta, "BTC", 0, b"")
    with pytest.raises(ValueError, match="batch_id must not be negative"):
        zk_keys.batch_key(KEY, delta, "BTC", -1, bytes(32))
    with pytest.raises(TypeError, match="batch_id must be an integer"):
        zk_keys.batch_key(KEY, delta, "BTC", 1.0, bytes(32))
    with pytest.raises(ValueError, match="symbol must be a non-empty string"):
        zk_keys.state_key(KEY, delta, "", 0, bytes(32))
    with pytest.raises(ValueError, match="header digest"):
        zk_keys.proof_key(KEY, bytes(31), bytes(32))
    with pytest.raises(ValueError, match="traces digest"):
        zk_keys.proof_key(KEY, bytes(32), bytes(31))
    with pytest.raises(ValueError, match="mode must be one of transparent, zk, got 'zkk'"):
        zk_keys.chain_digest(**{**CHAIN, "mode": "zkk"})
    with pytest.raises(ValueError, match="queries must not be negative"):
        zk_keys.chain_digest(**{**CHAIN, "queries": -1})
    with pytest.raises(TypeError, match=r"fri_folds\[1\] must be an integer"):
        zk_keys.chain_digest(**{**CHAIN, "fri_folds": (8, "8")})
    with pytest.raises(TypeError, match="fri_folds must be a sequence"):
        zk_keys.chain_digest(**{**CHAIN, "fri_folds": 8})
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'air_version'"):
        zk_keys.chain_digest(**{k: v for k, v in CHAIN.items() if k != "air_version"})


def test_a_new_store_key_is_32_fresh_bytes():
    a, b = zk_keys.new_store_key(), zk_keys.new_store_key()
    assert len(a) == len(b) == 32 and a != b


# ------------------------------------------------------------- expansion --

def stream_reference(key: bytes, fields, nbytes: int) -> bytes:
    """docs/ZK_KEYS.md's expansion from hashlib's hmac and ChaCha20's
    plain-Python definition."""
    stream = hmac.digest(key, zk_keys.label(["stream", *fields]), "sha256")
    return chacha20_reference.keystream(stream, bytes(12), 0, nbytes)


LABELS = [[], ["salt"], ["mask", "exec", 3], ["x" * 100], [b"\x00" * 200, 5]]


@pytest.mark.parametrize("fields", LABELS, ids=lambda f: str(len(zk_keys.label(f))))
def test_expansion_is_the_chacha20_stream_of_the_stream_key_on_every_isa(fields):
    # 37 blocks and a part: whole and partial batches of 8 and 16 blocks
    expected = stream_reference(KEY, fields, 64 * 37 + 5)
    for isa, got in native.on_each_isa(lambda: zk_keys.expand(KEY, fields, 64 * 37 + 5)).items():
        assert got == expected, f"{isa} path"


def test_a_stream_is_bounded_by_the_block_counter():
    assert zk_keys.MAX_STREAM_BYTES == 64 << 32 and zk_keys.MAX_ELEMENTS == 1 << 35
    with pytest.raises(zk_keys.StreamTooLong, match=r"\['side-salts'\]: a stream is at most 274877906944 bytes"):
        zk_keys.expand(KEY, ["side-salts"], zk_keys.MAX_STREAM_BYTES + 1)
    with pytest.raises(zk_keys.StreamTooLong, match=r"of the stream of \['mask', 'x'\]: at most 34359738368"):
        zk_keys.field_elements(KEY, ["mask", "x"], zk_keys.MAX_ELEMENTS + 1)
    stream = zk_keys.stream_key(KEY, ["x"])
    last = zk_keys.MAX_STREAM_BLOCKS - 1
    assert zk_keys._blocks(stream, last, 1, ["x"]).tobytes() == chacha20_reference.block(stream, last, bytes(12))
    with pytest.raises(zk_keys.StreamTooLong, match=r"blocks 4294967295 \.\. 4294967296 were asked of it"):
        zk_keys._blocks(stream, last, 2, ["x"])


def test_expansion_lengths_are_prefixes():
    full = zk_keys.expand(KEY, ["salt"], 1000)
    for n in (0, 1, 31, 32, 33, 64, 999):
        assert zk_keys.expand(KEY, ["salt"], n) == full[:n]
    assert zk_keys.expand(KEY, ["salt"], 64) != zk_keys.expand(KEY, ["salts"], 64)
    assert zk_keys.expand(KEY, ["salt"], 64) != zk_keys.expand(bytes(32), ["salt"], 64)


def test_rejection_threshold_is_exactly_two_p():
    words = np.array([0, 1, P - 1, P, P + 1, 2 * P - 1, 2 * P, 2 * P + 1, 2**32 - 1], dtype=np.uint32)
    assert zk_keys.uniform_from_words(words).tolist() == [0, 1, P - 1, 0, 1, P - 1]
    assert zk_keys.REJECTION_BOUND == 2 * P


def test_the_rejection_step_is_the_same_on_every_isa_in_place_or_not():
    """Words around the bounds and random ones, lengths on both sides of the
    AVX-512 path's 16-word steps: the accepted words, in order, reduced, the
    same on every path and when the output is the input."""
    rng = np.random.default_rng(7)
    edges = np.array([0, 1, P - 1, P, P + 1, 2 * P - 1, 2 * P, 2 * P + 1, 2**32 - 1], dtype=np.uint32)
    for n in (0, 1, 15, 16, 17, 33, 1000):
        words = np.concatenate([edges, rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)])
        rng.shuffle(words)
        expected = [w % P for w in words.tolist() if w < 2 * P]

        def both():
            inplace = words.copy()
            kept = native.lib.zk_fp_uniform_from_words(native.u32p(inplace), native.u32p(inplace), inplace.size)
            return zk_keys.uniform_from_words(words).tolist(), inplace[:kept].tolist()
        for isa, (fresh, inplace) in native.on_each_isa(both).items():
            assert fresh == expected and inplace == expected, f"{isa} path, {words.size} words"


def test_every_residue_has_exactly_two_accepted_words():
    residues = np.concatenate([[0, 1, P - 1], np.random.default_rng(3).integers(0, P, 1000)]).astype(np.uint32)
    assert (zk_keys.uniform_from_words(residues) == residues).all()
    assert (zk_keys.uniform_from_words(residues + np.uint32(P)) == residues).all()
    # words at or past 2p are the only others, and all are refused
    assert zk_keys.uniform_from_words(np.arange(2 * P, 2 * P + 4096, dtype=np.uint32)).size == 0
    assert zk_keys.uniform_from_words(np.arange(2**32 - 4096, 2**32, dtype=np.uint64).astype(np.uint32)).size == 0


def test_field_elements_are_the_stream_words_below_two_p_reduced():
    count = 5000
    got = zk_keys.field_elements(KEY, ["mask", "exec"], count)
    for isa, other in native.on_each_isa(lambda: zk_keys.field_elements(KEY, ["mask", "exec"], count)).items():
        assert other.tolist() == got.tolist(), f"{isa} path"
    nbytes = 64 * (count // 14)           # more words than 5000 / (15/16)
    words = [w for (w,) in struct.iter_unpack("<I", stream_reference(KEY, ["mask", "exec"], nbytes))]
    expected = [w % P for w in words if w < 2 * P][:count]
    assert got.dtype == np.uint32 and got.tolist() == expected
    assert sum(w >= 2 * P for w in words[:len(words)]) > 0     # the sample did reject some
    for n in (0, 1, 7, 4999):
        assert zk_keys.field_elements(KEY, ["mask", "exec"], n).tolist() == expected[:n]


def test_field_elements_look_uniform():
    """Sanity, not a proof: 2^18 draws, none >= p, 16 equal bins within a
    chi-square bound no uniform sample of this size misses by chance in
    practice (the draws are fixed, so the test is too)."""
    x = zk_keys.field_elements(KEY, ["sanity"], 1 << 18)
    assert x.max() < P
    bins = np.bincount((x.astype(np.uint64) * 16 // P).astype(np.int64), minlength=16)
    expected = x.size / 16
    chi2 = float(((bins - expected) ** 2 / expected).sum())
    assert chi2 < 50, bins                  # 15 degrees of freedom: p(chi2 > 50) ~ 1e-5
    assert abs(float((x & 1).mean()) - 0.5) < 0.01
    assert abs(float(x.mean()) / P - 0.5) < 0.01


def test_bad_expansion_inputs_are_refused():
    with pytest.raises(ValueError, match="key must be 32 bytes, got 16"):
        zk_keys.expand(KEY[:16], ["x"], 10)
    with pytest.raises(ValueError, match="count must not be negative"):
        zk_keys.field_elements(KEY, ["x"], -1)
    with pytest.raises(TypeError, match="nbytes must be an integer"):
        zk_keys.expand(KEY, ["x"], 10.0)
    with pytest.raises(TypeError, match="list or tuple of fields"):
        zk_keys.field_elements(KEY, "x", 10)


def test_rejection_refuses_other_arrays():
    with pytest.raises(TypeError, match="words must be a numpy uint32 array"):
        zk_keys.uniform_from_words(np.zeros(4, dtype=np.int64))
    with pytest.raises(TypeError, match="words must be a numpy uint32 array"):
        zk_keys.uniform_from_words([1, 2])

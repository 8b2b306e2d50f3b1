"""`zksidecar bench kernels`: the C kernels of the proof system, every ISA
path this CPU runs.

Each figure is measured beside a numpy (or hashlib, or plain-Python)
implementation of the same operation, in the same run, and also reported as
a ratio.
"""
from __future__ import annotations

import hashlib
import hmac
import struct

import numpy as np

from zksidecar.prover import extension, field, merkle, native, ntt, poseidon2, poseidon2_reference, zk_keys
from zksidecar.prover.field import GENERATOR
from zksidecar.prover.masking import Mask
from zksidecar.prover.native import lib, u32p

P = field.P


def _numpy_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The plain numpy way to multiply canonical BabyBear arrays."""
    return (a.astype(np.uint64) * b % P).astype(np.uint32)


def ntt_numpy_reference(coeffs: np.ndarray) -> np.ndarray:
    """A plain numpy radix-2 NTT on CANONICAL integers (not Montgomery form):
    natural-order coefficients -> natural-order evaluations on H.  The
    benchmark baseline for the C kernels: vectorised over each stage with
    uint64 products reduced by % p, no other tricks."""
    a = np.asarray(coeffs, dtype=np.uint64)
    n = a.shape[0]
    log_n = n.bit_length() - 1
    if n != 1 << log_n:
        raise ValueError(f"coeffs has {n} rows: the NTT needs a power of two")
    rev = np.zeros(n, dtype=np.int64)
    for b in range(log_n):  # rev(i), one bit at a time
        rev |= ((np.arange(n) >> b) & 1) << (log_n - 1 - b)
    a = a[rev].copy()
    for s in range(log_n):  # DIT stage with half-size h: blocks of 2h as rows
        h = 1 << s
        w = field.two_adic_generator(s + 1)
        tw = np.ones(h, dtype=np.uint64)
        for k in range(s):  # w^j for j < h by doubling: tw[k..2k) = tw[0..k) * w^k
            tw[1 << k: 2 << k] = tw[: 1 << k] * pow(w, 1 << k, P) % P
        blocks = a.reshape(-1, 2, h)
        t = blocks[:, 1, :] * tw % P
        x = blocks[:, 0, :].copy()
        blocks[:, 0, :] = (x + t) % P
        blocks[:, 1, :] = (x + P - t) % P
    return a.astype(np.uint32)


def kernels(sw) -> dict:
    rng = np.random.default_rng(2026)
    fig: dict = {"isa": native.isa(), "sha_ni": native.sha_ni()}
    active = native.isa()

    # -- multiply, in cache: three 64 KiB arrays stay in L2 (1 MiB per Zen 4 core);
    #    smaller arrays measure the ~1.5 us of Python per call, not the kernel
    n = 16384
    x, y = rng.integers(0, P, n, dtype=np.uint32), rng.integers(0, P, n, dtype=np.uint32)
    a, b, out = field.encode(x), field.encode(y), np.empty(n, dtype=np.uint32)
    sw.step("BabyBear mul, every ISA path")
    mul_by_isa = native.on_each_isa(lambda: n / sw.per_call(lambda: field.mul(a, b, out)))
    sw.step("BabyBear mul, numpy")
    numpy_mul = n / sw.per_call(lambda: _numpy_mul(x, y))
    fig["mul_per_s"] = mul_by_isa[active]
    for isa, rate in mul_by_isa.items():
        fig[f"mul_per_s_{isa}"] = rate
    fig["mul_per_s_numpy"] = numpy_mul
    fig["mul_speedup_vs_numpy"] = mul_by_isa[active] / numpy_mul

    # -- one column NTT of 2^20
    col = field.encode(rng.integers(0, P, 1 << 20, dtype=np.uint32))
    sw.step("NTT 2^20, every ISA path")
    ntt_by_isa = native.on_each_isa(lambda: sw.per_call(lambda: ntt.ntt(col), samples=3) * 1e3)
    sw.step("NTT 2^20, numpy")
    canon = field.decode(col)
    ntt_numpy = sw.per_call(lambda: ntt_numpy_reference(canon), samples=3) * 1e3
    fig["ntt_2_20_ms"] = ntt_by_isa[active]
    for isa, ms in ntt_by_isa.items():
        fig[f"ntt_2_20_ms_{isa}"] = ms
    fig["ntt_2_20_ms_numpy"] = ntt_numpy
    fig["ntt_speedup_vs_numpy"] = ntt_numpy / ntt_by_isa[active]

    # -- LDE of 2^16 rows x 64 columns, blowup 2
    sw.step("LDE 2^16 x 64, blowup 2")
    trace = field.encode(rng.integers(0, P, (1 << 16, 64), dtype=np.uint32))
    fig["lde_2_16x64_b2_ms"] = sw.per_call(lambda: ntt.lde(trace, 1), samples=3) * 1e3

    # -- a segment's commitment as the order book makes it: 143 columns x 2^15
    #    rows at blowup 4, LDE and Merkle tree in one pass (merkle.commit_lde),
    #    beside the two calls one after the other (same kernels, same run)
    sw.step("commitment 2^15 x 143, blowup 4: one pass, then LDE and tree apart")
    wide = field.encode(rng.integers(0, P, (1 << 15, 143), dtype=np.uint32))
    fig["commit_2_15x143_b4_ms"] = sw.per_call(lambda: merkle.commit_lde(wide, 2), samples=3) * 1e3
    fig["commit_2_15x143_b4_ms_two_calls"] = sw.per_call(
        lambda: merkle.MerkleTree(ntt.lde(wide, 2)), samples=3) * 1e3

    # -- zk mode's commitment of the same matrix at blowup 2 (docs/ZK.md, 5.1
    #    and 5.2): unsalted (the baseline), salted leaves, and masked
    #    (f = t + Z_H r, h = 196, the mask's 2^15 q = 88 figure) and salted
    sw.step("commitment 2^15 x 143, blowup 2: unsalted, salted, masked and salted")
    zk_mask = Mask.derive(bytes(32), "bench", 143, 196, 16)
    salts_only = Mask(zk_mask.coeffs[:0], zk_mask.salts)
    fig["commit_2_15x143_b2_ms"] = sw.per_call(lambda: merkle.commit_lde(wide, 1), samples=3) * 1e3
    fig["commit_2_15x143_b2_ms_salted"] = sw.per_call(
        lambda: salts_only.commit_lde(wide, 1, GENERATOR), samples=3) * 1e3
    fig["commit_2_15x143_b2_ms_masked"] = sw.per_call(
        lambda: zk_mask.commit_lde(wide, 1, GENERATOR), samples=3) * 1e3

    # -- Merkle leaves of 143-column rows (10 SHA-256 blocks each), every ISA
    #    path: 16 rows at a time on AVX-512, two SHA-NI lanes on AVX2
    rows_143 = ntt.lde(wide[:1 << 12], 2)
    blocks = rows_143.shape[0] * ((4 * 143 + 9 + 63) // 64)
    sw.step("Merkle leaves 2^14 x 143, every ISA path")
    for isa, sec in native.on_each_isa(lambda: sw.per_call(lambda: merkle.hash_rows(rows_143))).items():
        fig[f"merkle_leaf_blocks_per_s_{isa}"] = blocks / sec

    # -- out-of-domain sums of a trace (157 x 2^15) at z and w z: the rows
    #    weighed as they lie (sum_rows2), beside the transpose and the
    #    combination of its rows that it replaced
    sw.step("out-of-domain sums 2^15 x 157: sum_rows2, then transpose + combine_rows2")
    trace = field.encode(rng.integers(0, P, (1 << 15, 157), dtype=np.uint32))
    u = field.encode(rng.integers(0, P, (1 << 15, 4), dtype=np.uint32))
    u_next = np.roll(u, 1, axis=0)
    cols_t = np.empty((157, 1 << 15), dtype=np.uint32)

    def transposed():
        lib.zk_transpose_u32(u32p(cols_t), 1 << 15, u32p(trace), 1 << 15, 157)
        return extension.combine_rows2(cols_t, u, u_next)

    fig["ood_2_15x157_ms"] = sw.per_call(lambda: extension.sum_rows2(trace, u, u_next), samples=3) * 1e3
    fig["ood_2_15x157_ms_transpose"] = sw.per_call(transposed, samples=3) * 1e3

    # -- SHA-256 two-to-one compressions (Merkle nodes, one compression
    #    each), every ISA path; hashlib beside them hashes the 64 bytes,
    #    two compressions (the node of proof formats before 8)
    pairs = rng.integers(0, 256, (1 << 16, 64), dtype=np.uint8)
    sw.step("SHA-256 compressions, every ISA path")
    for isa, sec in native.on_each_isa(lambda: sw.per_call(lambda: merkle.compress_pairs(pairs))).items():
        fig[f"merkle_compressions_per_s_{isa}"] = len(pairs) / sec
    fig["merkle_compressions_per_s"] = fig[f"merkle_compressions_per_s_{active}"]
    few = [bytes(p) for p in pairs[:4096]]
    sw.step("SHA-256 compressions, hashlib")
    hashlib_rate = len(few) / sw.per_call(lambda: [hashlib.sha256(p).digest() for p in few])
    fig["merkle_compressions_per_s_hashlib"] = hashlib_rate
    fig["merkle_speedup_vs_hashlib"] = fig["merkle_compressions_per_s"] / hashlib_rate

    # -- Poseidon2 (width 16) permutations, every ISA path (16 states at a
    #    time on AVX-512, 8 on AVX2, one scalar), beside the plain-Python
    #    definition; the zk lane hashes ~33,000 records a batch at 2^15 rows
    states = field.encode(rng.integers(0, P, (1 << 14, 16), dtype=np.uint32))
    sw.step("Poseidon2 permutations 2^14, every ISA path")
    for isa, sec in native.on_each_isa(lambda: sw.per_call(lambda: poseidon2.permute(states))).items():
        fig[f"poseidon2_perms_per_s_{isa}"] = len(states) / sec
    fig["poseidon2_perms_per_s"] = fig[f"poseidon2_perms_per_s_{active}"]
    few = field.decode(states[:32]).tolist()
    sw.step("Poseidon2 permutations, the plain-Python definition")
    python_rate = len(few) / sw.per_call(lambda: [poseidon2_reference.permute(s) for s in few])
    fig["poseidon2_perms_per_s_python"] = python_rate
    fig["poseidon2_speedup_vs_python"] = fig["poseidon2_perms_per_s"] / python_rate

    # -- the zk keys' expansion: a proof's ~7 MB of masks and salts as field
    #    elements (the ChaCha20 stream of the stream key, then rejection),
    #    every ISA path, beside the expansion it replaced, HMAC-SHA-256 in
    #    counter mode, from hashlib's hmac one 32-byte block a call
    key, label = bytes(range(32)), ["bench", "mask"]
    count = 7 * 10**6 // 4
    sw.step("key expansion, 7 MB of field elements, every ISA path")
    for isa, sec in native.on_each_isa(
            lambda: sw.per_call(lambda: zk_keys.field_elements(key, label, count), samples=3)).items():
        fig[f"key_expansion_7mb_ms_{isa}"] = sec * 1e3
        fig[f"key_expansion_mb_per_s_{isa}"] = 4 * count / sec / 1e6
    fig["key_expansion_7mb_ms"] = fig[f"key_expansion_7mb_ms_{active}"]
    fig["key_expansion_mb_per_s"] = fig[f"key_expansion_mb_per_s_{active}"]
    prefix, blocks = zk_keys.label(label), 1 << 14
    sw.step("key expansion, hashlib hmac in counter mode (the stream alone, no rejection)")
    sec = sw.per_call(lambda: [hmac.digest(key, prefix + struct.pack("<Q", i), "sha256") for i in range(blocks)])
    hashlib_rate = 32 * blocks / sec / 1e6
    fig["key_expansion_mb_per_s_hashlib"] = hashlib_rate
    fig["key_expansion_speedup_vs_hashlib"] = fig["key_expansion_mb_per_s"] / hashlib_rate
    return fig

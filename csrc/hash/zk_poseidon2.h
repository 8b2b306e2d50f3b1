/*
 * zk_poseidon2.h — Poseidon2 over BabyBear, width 16 (public interface).
 *
 * The permutation pi is the Poseidon2 authors' reference instance for
 * BabyBear at width 16: S-box x^7, 8 full rounds (4 + 4), 13 partial rounds,
 * external layer circ(2 M4, M4, M4, M4), internal layer 1 1^T + diag(mu).
 * prover/poseidon2_reference.py is its definition in plain Python and
 * docs/POSEIDON2.md describes it; poseidon2.c says how it is computed.
 *
 * States are rows of 16 uint32 in Montgomery form (zk_field.h), row-major
 * (state i is in[16i .. 16i+16)), like every other kernel's arrays.  Each
 * call checks every input element is reduced (< p) before writing anything.
 */
#ifndef ZK_POSEIDON2_H
#define ZK_POSEIDON2_H

#include "common/zk_common.h"

/* cffi-begin */
#define ZK_POSEIDON2_WIDTH 16
#define ZK_POSEIDON2_LEAF_WIDTH 8
#define ZK_POSEIDON2_FULL_ROUNDS 8
#define ZK_POSEIDON2_PARTIAL_ROUNDS 13
/* The registers one permutation keeps in the record lane's AIR, one
 * permutation per row (docs/ZK.md, section 3.2; prover/poseidon2_air.py):
 * 4 x 32 + 13 x 2 + 3 x 32 + 16 + 8 */
#define ZK_POSEIDON2_AIR_COLUMNS 274

/* The instance's constants as canonical values, as published (the kernel
 * works from their Montgomery forms): exported so a test can compare them
 * with the Python definition. */
extern const uint32_t zk_poseidon2_full_rc[8][16];
extern const uint32_t zk_poseidon2_partial_rc[13];
extern const uint32_t zk_poseidon2_internal_diag[16];

/* out[16i .. 16i+16) = pi(in[16i .. 16i+16)) for i < n.  `out` may be `in`.
 * Returns -1, or the index (into in) of the first element >= p, and then
 * nothing is written. */
int64_t zk_poseidon2_permute(uint32_t *out, const uint32_t *in, size_t n);
/* The record lane's leaf, pi with a feed-forward on the first 8 elements:
 * out[8i + k] = pi(x)_k + x_k for k < 8, x = in[16i .. 16i+16).  `out`
 * must not overlap `in`.  Returns as zk_poseidon2_permute. */
int64_t zk_poseidon2_leaf(uint32_t *out, const uint32_t *in, size_t n);
/* The AIR's witness: for each state x = in[16i .. 16i+16), the
 * ZK_POSEIDON2_AIR_COLUMNS registers the rounds of pi(x) pass through, in
 * the AIR's column order (poseidon2_rounds.inc), at out + i * stride
 * (stride >= ZK_POSEIDON2_AIR_COLUMNS words: a block of a wider trace's
 * row).  `out` must not overlap `in`.  Returns as zk_poseidon2_permute. */
int64_t zk_poseidon2_air_registers(uint32_t *out, size_t stride, const uint32_t *in, size_t n);
/* cffi-end */

#endif

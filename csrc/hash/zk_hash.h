/*
 * zk_hash.h — SHA-256 and the Merkle trees built from it (public interface).
 *
 * SHA-256 is FIPS 180-4 SHA-256, bit for bit: every digest here equals
 * hashlib.sha256 of the same bytes (but a Merkle node, which is the bare
 * compression function, below).  Three bodies exist: portable C, SHA-NI
 * (when a vector ISA is active and the CPU has the extension, see
 * zk_common.h), and on the AVX-512 path sixteen messages at once in zmm
 * lanes (SHA-NI for what comes in fewer).  All give identical results.
 *
 * Merkle trees (docs/MERKLE.md is the format's definition):
 *   leaf r   = SHA-256(canonical values of row r, each 4 bytes little-endian)
 *              or, salted, SHA-256(those bytes || salt_r), salt_r 16 bytes
 *              (zk mode: docs/ZK.md, section 5.1); every function taking
 *              `salts` hashes unsalted leaves when it is NULL
 *   node     = N(left, right): SHA-256's compression function applied once
 *              to the standard IV and the 64-byte block left || right, the
 *              eight state words big-endian (no padding block, no length);
 *              at the height where a shorter matrix of a shared tree joins,
 *              N(N(left, right), digest of its row)
 *   a committed LDE's leaf j is the digest of its natural row rev(j)
 *   node array of 2*rows digests: [1] is the root, node i has children 2i and
 *   2i+1, the leaves are [rows, 2*rows), [0] is unused.  rows is a power of two.
 *   path     = the sibling digests from the leaf's level up to the root's
 *              children: depth = log2(rows) digests of 32 bytes.
 * Matrices are row-major uint32 in Montgomery form (see zk_field.h); leaves
 * hash their canonical values, decoded on the fly.
 */
#ifndef ZK_HASH_H
#define ZK_HASH_H

#include "common/zk_common.h"
#include "field/zk_ntt.h"

/* cffi-begin */
#define ZK_DIGEST_BYTES 32
#define ZK_SALT_BYTES 16

/* out = SHA-256(data[0 .. len)). */
void zk_sha256(uint8_t out[32], const uint8_t *data, size_t len);
/* out[32i .. 32i+32) = N(in[64i .. 64i+64)) for i < n: one Merkle node per
 * 64-byte pair of child digests, N the compression function applied once to
 * the standard IV and the block, its state words written big-endian as
 * SHA-256 writes its digest (not SHA-256 of the 64 bytes: no padding block).
 * `out` must not overlap `in`. */
void zk_sha256_compress_pairs(uint8_t *out, const uint8_t *in, size_t n);

/* out[32i .. 32i+32) = SHA-256(in[len*i .. len*(i+1))) for i < n: n messages
 * of one length, hashed side by side.  `out` must not overlap `in`. */
void zk_sha256_messages(uint8_t *out, const uint8_t *in, size_t n, size_t len);

/* out[32r .. 32r+32) = leaf digest of row r of a rows x cols matrix, salted
 * with salts[16r .. 16r+16) when salts is not NULL. */
void zk_merkle_hash_rows(uint8_t *out, const uint32_t *matrix, size_t rows, size_t cols, const uint8_t *salts);
/* Whole tree over a matrix into nodes[2*rows*32], leaf r the digest of row r
 * (natural order: FRI layers' trees), salted with salts[16r ..] unless salts
 * is NULL.  Returns 0, or -1 (nothing written) if rows is not a power of two. */
int zk_merkle_build(uint8_t *nodes, const uint32_t *matrix, size_t rows, size_t cols, const uint8_t *salts);
/* zk_lde(lde, in, rows, cols, log_blowup, shift, from_coeffs) (field/zk_ntt.h:
 * natural order, N = rows << log_blowup rows; from_coeffs: zk_ntt_extend) and
 * its N row digests into leaves[N*32] in bit-reversed order (leaves[j] the
 * digest of row rev(j), salted with salts[16j ..] unless salts is NULL), in
 * one pass: each row is hashed while it is in cache.  A masked commitment
 * (docs/ZK.md, section 5.2: f = t + Z_H r): `mask` holds r's mask_rows
 * coefficients (mask_rows x cols, mask_rows <= rows, Montgomery, X^0
 * first), added inside the LDE (zk_lde_visit_masked), so `lde` and the
 * leaves are f's; each of the
 * `ncosets` small cosets (field/zk_ntt.h, zk_coset) receives f's values
 * there.  mask_rows 0 and no cosets: the plain LDE.  Returns zk_lde's
 * codes: 0, -1 (unsupported shape, mask_rows > rows, a coset out of
 * range; nothing written), -2 (out of memory). */
int zk_merkle_lde_leaves(uint32_t *lde, uint8_t *leaves, const uint32_t *in, size_t rows, size_t cols,
                         unsigned log_blowup, uint32_t shift, int from_coeffs, const uint8_t *salts,
                         const uint32_t *mask, size_t mask_rows, const zk_coset *cosets, size_t ncosets);
/* Whole tree over leaf digests leaves[rows*32] the caller computed; `leaves`
 * may already be the node array's leaf half.  `inject` is NULL or depth + 1
 * pointers: where inject[l] is not NULL, each of the rows >> l nodes of
 * level l (0 = leaves) is N(N(left, right), inject[l][32i ..]) (a shared
 * tree: docs/MERKLE.md).  Returns 0 or -1 as above. */
int zk_merkle_build_from_leaves(uint8_t *nodes, const uint8_t *leaves, size_t rows, const uint8_t *const *inject);
/* For each of `count` leaf indices, its path (depth digests, leaf level
 * first) into paths[count*depth*32].  Returns -1, or the position in
 * `indices` of the first index >= rows (then `paths` is unspecified). */
int64_t zk_merkle_open(uint8_t *paths, const uint8_t *nodes, size_t rows, const uint64_t *indices,
                       size_t count);
/* 1 if `path` (depth digests) leads from `leaf` at `index` to `root`, else 0
 * (also 0 if index >= 2^depth or depth > 64). */
int zk_merkle_verify(const uint8_t root[32], const uint8_t leaf[32], uint64_t index, const uint8_t *path,
                     size_t depth);
/* A batch opening (prover/merkle_batch.py; docs/PROOF_FORMAT.md, "Batch Merkle
 * proofs"): 1 if the leaf digests
 * leaves[count*32] at the sorted distinct `indices` (each < 2^depth) and the
 * sibling digests proof[proof_len*32] lead to `root`, using every proof
 * digest exactly once, in the order a batch opening lists them (by level,
 * leaves first, then by index); 0 if not (also for no indices, indices out
 * of order or range, or depth > 62); -2 out of memory.  A shared tree's
 * injected digests: `inject` NULL, or depth + 1 pointers where inject[l],
 * if not NULL, holds inject_count[l] digests, one per known node of level l
 * in index order (those whose subtree holds a given index); a count other
 * than the number of known nodes fails the check. */
int zk_merkle_verify_batch(const uint8_t root[32], size_t depth, const uint64_t *indices,
                           const uint8_t *leaves, size_t count, const uint8_t *proof,
                           size_t proof_len, const uint8_t *const *inject, const size_t *inject_count);
/* cffi-end */

/* ---- internal: the block-level interface merkle.c streams rows through ---- */

/* Messages hashed side by side: SHA-NI interleaves two independent streams
 * because its rounds instruction is latency-bound; the AVX-512 path runs
 * sixteen, one per 32-bit lane of a zmm register. */
#define ZK_SHA256_MAX_LANES 16

/* How many equal-length messages zk_sha256_blocks should be given at once on
 * the active path (1 scalar, 2 SHA-NI, 16 AVX-512); more lanes only waste
 * work on the scalar path.  zk_sha256_blocks takes any count up to
 * ZK_SHA256_MAX_LANES on any path. */
int zk_sha256_lanes(void);
void zk_sha256_init(uint32_t state[8]);
/* Compress `nblocks` 64-byte blocks of each lane's message into its state. */
void zk_sha256_blocks(uint32_t (*states)[8], const uint8_t *const *msgs, size_t nblocks, int lanes);
/* Pad in place: `buf` holds the message's last `used` bytes (those not yet
 * compressed) and has room for used + 72 bytes.  Appends 0x80, zeros and the
 * length in bits of the whole `msg_len`-byte message; returns the number of
 * 64-byte blocks now in buf. */
size_t zk_sha256_pad(uint8_t *buf, size_t used, uint64_t msg_len);
/* The digest (big-endian state words). */
void zk_sha256_digest(uint8_t out[32], const uint32_t state[8]);

/* Sixteen Merkle leaves at once on the AVX-512 path (only when
 * zk_sha256_lanes() is 16): out[l] = the leaf digest of rows[l][0 .. cols)
 * (Montgomery form; the decode to canonical values runs in the same
 * registers as the hashing), salted with salts[l] (16 bytes) unless salts
 * is NULL. */
void zk_sha256_leaves_x16(uint8_t *const out[16], const uint32_t *const rows[16], size_t cols,
                          const uint8_t *const salts[16]);

#endif

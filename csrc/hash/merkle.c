/*
 * merkle.c — Merkle trees over matrix rows: leaf hashing, whole-tree
 * construction, authentication paths.  The layout and encodings are defined
 * in zk_hash.h and docs/MERKLE.md.
 *
 * The node array makes every level contiguous: the children of nodes
 * [m/2, m) are exactly nodes [m, 2m), in order, so a level is one call to
 * zk_sha256_compress_pairs over 64-byte (left || right) pairs.
 */
#include <stdlib.h>
#include <string.h>

#include "field/zk_field.h"
#include "field/zk_ntt.h"
#include "zk_hash.h"

#define DIGEST ZK_DIGEST_BYTES

/* Row elements decoded per step: 1 KiB per lane stays in L1 and amortises
 * the decode call; a multiple of 16 so full steps are whole blocks. */
enum { CHUNK = 256 };

static int is_pow2(size_t n) { return n && !(n & (n - 1)); }

/* Canonical values of src[0..n) into dst as 4-byte little-endian words,
 * which on a little-endian host is the decoded uint32 array itself. */
static void decode_le(uint32_t *dst, const uint32_t *src, size_t n) {
    zk_fp_decode(dst, src, n);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n; i++) dst[i] = __builtin_bswap32(dst[i]);
#endif
}

/* Leaf digests of `lanes` rows (rows[l] into out[l]), hashed side by side
 * through the block interface.  Every row has the same length, so the lanes
 * need the same number of blocks at every step, padding included. */
static void hash_row_group(uint8_t *const *out, const uint32_t *const *rows, size_t cols, int lanes) {
    /* room for CHUNK words plus the padding (at most 72 bytes = 18 words) */
    uint32_t buf[ZK_SHA256_MAX_LANES][CHUNK + 18];
    uint32_t st[ZK_SHA256_MAX_LANES][8];
    const uint8_t *msgs[ZK_SHA256_MAX_LANES];
    for (int l = 0; l < lanes; l++) zk_sha256_init(st[l]), msgs[l] = (const uint8_t *)buf[l];

    for (size_t c = 0;; c += CHUNK) {
        size_t k = cols - c < CHUNK ? cols - c : CHUNK, nblocks = 4 * k / 64;
        int last = c + k == cols;
        for (int l = 0; l < lanes; l++) {
            decode_le(buf[l], rows[l] + c, k);
            if (last) nblocks = zk_sha256_pad((uint8_t *)buf[l], 4 * k, 4 * (uint64_t)cols);
        }
        zk_sha256_blocks(st, msgs, nblocks, lanes);
        if (last) break;
    }
    for (int l = 0; l < lanes; l++) zk_sha256_digest(out[l], st[l]);
}

/* Leaf digests of n <= 16 rows, rows[l] into out[l]: sixteen at once on the
 * AVX-512 path, the decode in the same registers (zk_sha256_leaves_x16);
 * otherwise as many at a time as the path has lanes (on AVX-512 a set of
 * fewer than sixteen goes to SHA-NI, two at a time, inside
 * zk_sha256_blocks). */
static void hash_leaves(uint8_t *const out[16], const uint32_t *const rows[16], size_t n, size_t cols) {
    size_t lanes = (size_t)zk_sha256_lanes();
    if (n == 16 && lanes == 16) {
        zk_sha256_leaves_x16(out, rows, cols);
        return;
    }
    for (size_t i = 0; i < n; i += lanes) hash_row_group(out + i, rows + i, cols, (int)(n - i < lanes ? n - i : lanes));
}

void zk_merkle_hash_rows(uint8_t *out, const uint32_t *matrix, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r += 16) {
        size_t n = rows - r < 16 ? rows - r : 16;
        uint8_t *dst[16];
        const uint32_t *src[16];
        for (size_t l = 0; l < n; l++) dst[l] = out + DIGEST * (r + l), src[l] = matrix + (r + l) * cols;
        hash_leaves(dst, src, n, cols);
    }
}

/* Every node above the leaves, one level per call, bottom up. */
static void hash_levels(uint8_t *nodes, size_t rows) {
    for (size_t m = rows; m > 1; m /= 2)
        zk_sha256_compress_pairs(nodes + DIGEST * (m / 2), nodes + DIGEST * m, m / 2);
    memset(nodes, 0, DIGEST); /* node 0 is unused; keep it defined */
}

int zk_merkle_build(uint8_t *nodes, const uint32_t *matrix, size_t rows, size_t cols) {
    if (!is_pow2(rows)) return -1;
    zk_merkle_hash_rows(nodes + DIGEST * rows, matrix, rows, cols);
    hash_levels(nodes, rows);
    return 0;
}

/* ---- the LDE and its tree in one pass over the rows ----
 * zk_lde_visit hands over each set of output rows when the LDE is done with
 * them (ntt.c, "Passes": its last pass works on cache-sized sets of rows),
 * and their leaves are hashed there, from cache, instead of in a second
 * sweep over the whole matrix, sixteen rows at a time (hash_leaves). */
typedef struct {
    uint8_t *leaves; /* the node array's leaf half */
    size_t cols;
} leaf_sink;

static void hash_visited(void *ctx, const uint32_t *rows, size_t r0, size_t groups, size_t step, size_t g) {
    const leaf_sink *sink = ctx;
    size_t cols = sink->cols, count = groups * g;
    for (size_t i = 0; i < count; i += 16) {
        size_t n = count - i < 16 ? count - i : 16;
        uint8_t *dst[16];
        const uint32_t *src[16];
        for (size_t l = 0; l < n; l++) { /* row k of the set: row k % g of group k / g */
            size_t k = i + l, at = k / g * step + k % g;
            dst[l] = sink->leaves + DIGEST * (r0 + at), src[l] = rows + at * cols;
        }
        hash_leaves(dst, src, n, cols);
    }
}

static int commit(uint32_t *lde, uint8_t *nodes, const uint32_t *in, size_t rows, size_t cols,
                  unsigned log_blowup, uint32_t shift, int from_coeffs) {
    leaf_sink sink = {nodes + DIGEST * (rows << log_blowup), cols};
    zk_lde_visitor visit = {hash_visited, &sink};
    int rc = zk_lde_visit(lde, in, rows, cols, log_blowup, shift, from_coeffs, &visit);
    if (rc == 0) hash_levels(nodes, rows << log_blowup);
    return rc;
}

int zk_merkle_commit_lde(uint32_t *lde, uint8_t *nodes, const uint32_t *in, size_t rows, size_t cols,
                         unsigned log_blowup, uint32_t shift) {
    return commit(lde, nodes, in, rows, cols, log_blowup, shift, 0);
}

int zk_merkle_commit_extend(uint32_t *lde, uint8_t *nodes, const uint32_t *coeffs, size_t rows, size_t cols,
                            unsigned log_blowup, uint32_t shift) {
    return commit(lde, nodes, coeffs, rows, cols, log_blowup, shift, 1);
}

int zk_merkle_build_from_leaves(uint8_t *nodes, const uint8_t *leaves, size_t rows) {
    if (!is_pow2(rows)) return -1;
    if (leaves != nodes + DIGEST * rows) memmove(nodes + DIGEST * rows, leaves, DIGEST * rows);
    hash_levels(nodes, rows);
    return 0;
}

int64_t zk_merkle_open(uint8_t *paths, const uint8_t *nodes, size_t rows, const uint64_t *indices,
                       size_t count) {
    size_t depth = 0;
    while ((size_t)1 << depth < rows) depth++;
    for (size_t q = 0; q < count; q++) {
        if (indices[q] >= rows) return (int64_t)q;
        uint8_t *path = paths + DIGEST * depth * q;
        /* node ^ 1 is the sibling; node / 2 the parent */
        for (size_t node = rows + indices[q]; node > 1; node /= 2, path += DIGEST)
            memcpy(path, nodes + DIGEST * (node ^ 1), DIGEST);
    }
    return -1;
}

int zk_merkle_verify(const uint8_t root[32], const uint8_t leaf[32], uint64_t index, const uint8_t *path,
                     size_t depth) {
    if (depth > 64 || (depth < 64 && index >> depth)) return 0;
    uint8_t pair[2 * DIGEST], cur[DIGEST];
    memcpy(cur, leaf, DIGEST);
    for (size_t level = 0; level < depth; level++, index >>= 1) {
        /* bit `level` of the index says whether `cur` is a right child */
        const uint8_t *sibling = path + DIGEST * level;
        memcpy(pair + DIGEST * (index & 1), cur, DIGEST);
        memcpy(pair + DIGEST * (~index & 1), sibling, DIGEST);
        zk_sha256_compress_pairs(cur, pair, 1);
    }
    return memcmp(cur, root, DIGEST) == 0;
}

/* Level by level from the leaves up, the known nodes (sorted by index) are
 * paired into their parents: two known siblings need nothing, a lone node
 * takes its sibling from the proof.  Each level's pairs are hashed in one
 * zk_sha256_compress_pairs call (sixteen lanes on the AVX-512 path). */
int zk_merkle_verify_batch(const uint8_t root[32], size_t depth, const uint64_t *indices,
                           const uint8_t *leaves, size_t count, const uint8_t *proof,
                           size_t proof_len) {
    if (count == 0 || depth > 62) return 0;
    for (size_t q = 0; q < count; q++)
        if (indices[q] >> depth || (q && indices[q] <= indices[q - 1])) return 0;
    uint64_t *idx = malloc(sizeof(uint64_t) * count);
    uint8_t *nodes = malloc(DIGEST * count), *pairs = malloc(2 * DIGEST * count);
    int ok = 0;
    if (!idx || !nodes || !pairs) {
        ok = -2;
        goto done;
    }
    memcpy(idx, indices, sizeof(uint64_t) * count);
    memcpy(nodes, leaves, DIGEST * count);
    size_t used = 0;
    for (size_t level = 0; level < depth; level++) {
        size_t g = 0;
        for (size_t j = 0; j < count; g++) {
            uint8_t *pair = pairs + 2 * DIGEST * g;
            uint64_t i = idx[j];
            if (!(i & 1) && j + 1 < count && idx[j + 1] == i + 1) {
                memcpy(pair, nodes + DIGEST * j, 2 * DIGEST);       /* both children known */
                j += 2;
            } else {
                if (used == proof_len) goto done;                   /* the proof is too short */
                const uint8_t *sibling = proof + DIGEST * used++;
                memcpy(pair + DIGEST * (i & 1), nodes + DIGEST * j, DIGEST);
                memcpy(pair + DIGEST * (~i & 1), sibling, DIGEST);
                j += 1;
            }
            idx[g] = i >> 1;
        }
        zk_sha256_compress_pairs(nodes, pairs, g);
        count = g;
    }
    ok = used == proof_len && count == 1 && memcmp(nodes, root, DIGEST) == 0;
done:
    free(idx);
    free(nodes);
    free(pairs);
    return ok;
}

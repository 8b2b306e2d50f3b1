/*
 * merkle.c — Merkle trees over matrix rows: leaf hashing, whole-tree
 * construction, authentication paths.  The layout and encodings are defined
 * in zk_hash.h and docs/MERKLE.md.
 *
 * The node array makes every level contiguous: the children of nodes
 * [m/2, m) are exactly nodes [m, 2m), in order, so a level is one call to
 * zk_sha256_compress_pairs over 64-byte (left || right) pairs: a node is one
 * compression, N(left, right) (docs/MERKLE.md, "Nodes").  A level where a
 * shorter matrix of a shared tree joins takes a second call over
 * (node || joined digest) pairs: N(N(left, right), joined).
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

static unsigned log2_pow2(size_t n) {
    unsigned k = 0;
    while ((size_t)1 << k < n) k++;
    return k;
}

/* i with its low `bits` bits in reverse order (i < 2^bits). */
static size_t rev_bits(size_t i, unsigned bits) {
    uint64_t x = i;
    x = (x >> 1 & 0x5555555555555555ull) | (x & 0x5555555555555555ull) << 1;
    x = (x >> 2 & 0x3333333333333333ull) | (x & 0x3333333333333333ull) << 2;
    x = (x >> 4 & 0x0F0F0F0F0F0F0F0Full) | (x & 0x0F0F0F0F0F0F0F0Full) << 4;
    x = __builtin_bswap64(x);
    return bits ? (size_t)(x >> (64 - bits)) : 0;
}

void zk_sha256_messages(uint8_t *out, const uint8_t *in, size_t n, size_t len) {
    /* whole blocks straight from the input, the tail and its padding from a
     * buffer per lane; as many messages side by side as the path has lanes */
    size_t lanes = (size_t)zk_sha256_lanes(), full = len / 64, rest = len % 64;
    uint8_t tail[ZK_SHA256_MAX_LANES][128];
    uint32_t st[ZK_SHA256_MAX_LANES][8];
    const uint8_t *msgs[ZK_SHA256_MAX_LANES];
    for (size_t i = 0; i < n; i += lanes) {
        int k = (int)(n - i < lanes ? n - i : lanes);
        size_t nb = 0;
        for (int l = 0; l < k; l++) zk_sha256_init(st[l]), msgs[l] = in + len * (i + l);
        zk_sha256_blocks(st, msgs, full, k);
        for (int l = 0; l < k; l++) {
            memcpy(tail[l], in + len * (i + l) + 64 * full, rest);
            nb = zk_sha256_pad(tail[l], rest, len);
            msgs[l] = tail[l];
        }
        zk_sha256_blocks(st, msgs, nb, k);
        for (int l = 0; l < k; l++) zk_sha256_digest(out + DIGEST * (i + l), st[l]);
    }
}

/* node[i] = N(node[i], inject[i]) for i < n: the n nodes of a level where a
 * shorter matrix joins, each compressed once more with the joined digest at
 * its index.  The pairs are laid out in a buffer (compress_pairs' output
 * may not overlap its input), a few hundred at a time. */
static void join_injected(uint8_t *node, const uint8_t *inject, size_t n) {
    enum { STEP = 256 };
    uint8_t pairs[STEP * 2 * DIGEST];
    for (size_t i = 0; i < n; i += STEP) {
        size_t k = n - i < STEP ? n - i : STEP;
        for (size_t j = 0; j < k; j++) {
            memcpy(pairs + 2 * DIGEST * j, node + DIGEST * (i + j), DIGEST);
            memcpy(pairs + 2 * DIGEST * j + DIGEST, inject + DIGEST * (i + j), DIGEST);
        }
        zk_sha256_compress_pairs(node + DIGEST * i, pairs, k);
    }
}

/* Canonical values of src[0..n) into dst as 4-byte little-endian words,
 * which on a little-endian host is the decoded uint32 array itself. */
static void decode_le(uint32_t *dst, const uint32_t *src, size_t n) {
    zk_fp_decode(dst, src, n);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n; i++) dst[i] = __builtin_bswap32(dst[i]);
#endif
}

/* Leaf digests of `lanes` rows (rows[l] into out[l]), salted with salts[l]
 * unless salts is NULL, hashed side by side through the block interface.
 * Every row has the same length, so the lanes need the same number of
 * blocks at every step, padding included. */
static void hash_row_group(uint8_t *const *out, const uint32_t *const *rows, size_t cols,
                           const uint8_t *const *salts, int lanes) {
    /* room for CHUNK words, a salt (4 words) and the padding (at most 72
     * bytes = 18 words) */
    uint32_t buf[ZK_SHA256_MAX_LANES][CHUNK + 4 + 18];
    size_t salt = salts ? ZK_SALT_BYTES : 0;
    uint32_t st[ZK_SHA256_MAX_LANES][8];
    const uint8_t *msgs[ZK_SHA256_MAX_LANES];
    for (int l = 0; l < lanes; l++) zk_sha256_init(st[l]), msgs[l] = (const uint8_t *)buf[l];

    for (size_t c = 0;; c += CHUNK) {
        size_t k = cols - c < CHUNK ? cols - c : CHUNK, nblocks = 4 * k / 64;
        int last = c + k == cols;
        for (int l = 0; l < lanes; l++) {
            decode_le(buf[l], rows[l] + c, k);
            if (!last) continue;
            if (salt) memcpy(buf[l] + k, salts[l], salt);
            nblocks = zk_sha256_pad((uint8_t *)buf[l], 4 * k + salt, 4 * (uint64_t)cols + salt);
        }
        zk_sha256_blocks(st, msgs, nblocks, lanes);
        if (last) break;
    }
    for (int l = 0; l < lanes; l++) zk_sha256_digest(out[l], st[l]);
}

/* Leaf digests of n <= 16 rows, rows[l] into out[l], salted with salts[l]
 * unless salts is NULL: sixteen at once on the AVX-512 path, the decode in
 * the same registers (zk_sha256_leaves_x16); otherwise as many at a time as
 * the path has lanes (on AVX-512 a set of fewer than sixteen goes to
 * SHA-NI, two at a time, inside zk_sha256_blocks). */
static void hash_leaves(uint8_t *const out[16], const uint32_t *const rows[16], size_t n, size_t cols,
                        const uint8_t *const *salts) {
    size_t lanes = (size_t)zk_sha256_lanes();
    if (n == 16 && lanes == 16) {
        zk_sha256_leaves_x16(out, rows, cols, salts);
        return;
    }
    for (size_t i = 0; i < n; i += lanes)
        hash_row_group(out + i, rows + i, cols, salts ? salts + i : NULL, (int)(n - i < lanes ? n - i : lanes));
}

void zk_merkle_hash_rows(uint8_t *out, const uint32_t *matrix, size_t rows, size_t cols, const uint8_t *salts) {
    for (size_t r = 0; r < rows; r += 16) {
        size_t n = rows - r < 16 ? rows - r : 16;
        uint8_t *dst[16];
        const uint32_t *src[16];
        const uint8_t *salt[16];
        for (size_t l = 0; l < n; l++) {
            dst[l] = out + DIGEST * (r + l), src[l] = matrix + (r + l) * cols;
            salt[l] = salts ? salts + ZK_SALT_BYTES * (r + l) : NULL;
        }
        hash_leaves(dst, src, n, cols, salts ? salt : NULL);
    }
}

/* Every node above the leaves, one level per call, bottom up; at a level l
 * with inject[l] (inject may be NULL), each node is compressed once more
 * with its injected digest (a shorter matrix of the tree joining at its
 * height). */
static void hash_levels(uint8_t *nodes, size_t rows, const uint8_t *const *inject) {
    unsigned level = 1;
    for (size_t m = rows; m > 1; m /= 2, level++) {
        zk_sha256_compress_pairs(nodes + DIGEST * (m / 2), nodes + DIGEST * m, m / 2);
        if (inject && inject[level]) join_injected(nodes + DIGEST * (m / 2), inject[level], m / 2);
    }
    memset(nodes, 0, DIGEST); /* node 0 is unused; keep it defined */
}

int zk_merkle_build(uint8_t *nodes, const uint32_t *matrix, size_t rows, size_t cols, const uint8_t *salts) {
    if (!is_pow2(rows)) return -1;
    zk_merkle_hash_rows(nodes + DIGEST * rows, matrix, rows, cols, salts);
    hash_levels(nodes, rows, NULL);
    return 0;
}

/* ---- the LDE and its leaves in one pass over the rows ----
 * zk_lde_visit hands over each set of output rows when the LDE is done with
 * them (ntt.c, "Passes": its last pass works on cache-sized sets of rows),
 * and their leaves are hashed there, from cache, instead of in a second
 * sweep over the whole matrix, sixteen rows at a time (hash_leaves).  Row r's
 * digest goes to leaf rev(r): a committed LDE's leaf j is FRI position j. */
typedef struct {
    uint8_t *leaves;       /* M digests, bit-reversed order */
    const uint8_t *salts;  /* M salts by leaf (bit-reversed order), or NULL */
    size_t cols;
    unsigned log_rows;
} leaf_sink;

static void hash_visited(void *ctx, const uint32_t *rows, size_t r0, size_t groups, size_t step, size_t g) {
    const leaf_sink *sink = ctx;
    size_t cols = sink->cols, count = groups * g;
    for (size_t i = 0; i < count; i += 16) {
        size_t n = count - i < 16 ? count - i : 16;
        uint8_t *dst[16];
        const uint32_t *src[16];
        const uint8_t *salt[16];
        for (size_t l = 0; l < n; l++) { /* row k of the set: row k % g of group k / g */
            size_t k = i + l, at = k / g * step + k % g, leaf = rev_bits(r0 + at, sink->log_rows);
            dst[l] = sink->leaves + DIGEST * leaf, src[l] = rows + at * cols;
            salt[l] = sink->salts ? sink->salts + ZK_SALT_BYTES * leaf : NULL;
        }
        hash_leaves(dst, src, n, cols, sink->salts ? salt : NULL);
    }
}

/* A masked LDE (zk_lde_visit_masked) adds the mask inside the transform:
 * the rows handed over are f's, hashed as any others. */
int zk_merkle_lde_leaves(uint32_t *lde, uint8_t *leaves, const uint32_t *in, size_t rows, size_t cols,
                         unsigned log_blowup, uint32_t shift, int from_coeffs, const uint8_t *salts,
                         const uint32_t *mask, size_t mask_rows, const zk_coset *cosets, size_t ncosets) {
    if (!is_pow2(rows)) return -1;
    leaf_sink sink = {leaves, salts, cols, log2_pow2(rows) + log_blowup};
    zk_lde_visitor visit = {hash_visited, &sink};
    return zk_lde_visit_masked(lde, in, rows, cols, log_blowup, shift, from_coeffs, mask, mask_rows, cosets,
                               ncosets, &visit);
}

int zk_merkle_build_from_leaves(uint8_t *nodes, const uint8_t *leaves, size_t rows, const uint8_t *const *inject) {
    if (!is_pow2(rows)) return -1;
    if (leaves != nodes + DIGEST * rows) memmove(nodes + DIGEST * rows, leaves, DIGEST * rows);
    hash_levels(nodes, rows, inject);
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
                           size_t proof_len, const uint8_t *const *inject, const size_t *inject_count) {
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
        const uint8_t *extra = inject ? inject[level + 1] : NULL;
        if (extra && inject_count[level + 1] != g) goto done;   /* one per known parent, in index order */
        zk_sha256_compress_pairs(nodes, pairs, g);
        if (extra) join_injected(nodes, extra, g);
        count = g;
    }
    ok = used == proof_len && count == 1 && memcmp(nodes, root, DIGEST) == 0;
done:
    free(idx);
    free(nodes);
    free(pairs);
    return ok;
}

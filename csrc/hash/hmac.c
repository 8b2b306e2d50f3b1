/*
 * hmac.c — HMAC-SHA-256 in counter mode (zk_hash.h): the output stream the
 * zk keys expand into masks and salts (prover/zk_keys.py, docs/ZK_KEYS.md).
 *
 *   HMAC(K, m) = SHA-256((K0 ^ opad) || SHA-256((K0 ^ ipad) || m))
 *
 * with K0 the key zero-padded to 64 bytes (hashed first if longer).  Every
 * output block has the same key and the same message up to its last 8 bytes
 * (the counter), so the work common to all blocks is done once: the
 * compressions of K0 ^ ipad and K0 ^ opad (one block each) and of the
 * message's whole 64-byte blocks.  Each output block then costs the
 * message's tail with the counter (one compression when the tail is at most
 * 47 bytes, else two) and one outer compression, run as many blocks side by
 * side as the active path has SHA-256 lanes (16 on AVX-512, 2 with SHA-NI,
 * 1 scalar).  The bytes are those of hashlib's hmac on every path.
 */
#include <string.h>

#include "zk_hash.h"

static void store_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* The state after compressing the one block K0 ^ pad. */
static void keyed_state(uint32_t st[8], const uint8_t k0[64], uint8_t pad) {
    uint8_t block[64];
    const uint8_t *msg = block;
    for (int i = 0; i < 64; i++) block[i] = k0[i] ^ pad;
    zk_sha256_init(st);
    zk_sha256_blocks((uint32_t(*)[8])st, &msg, 1, 1);
}

void zk_hmac_sha256_ctr(uint8_t *out, const uint8_t *key, size_t key_len, const uint8_t *msg,
                        size_t msg_len, uint64_t counter, size_t nblocks) {
    uint8_t k0[64] = {0};
    if (key_len > 64)
        zk_sha256(k0, key, key_len);
    else if (key_len)
        memcpy(k0, key, key_len);
    uint32_t inner[8], outer[8];
    keyed_state(inner, k0, 0x36);
    keyed_state(outer, k0, 0x5c);

    size_t full = msg_len / 64, rest = msg_len % 64;
    const uint8_t *whole = msg;
    zk_sha256_blocks((uint32_t(*)[8])inner, &whole, full, 1);

    /* Per lane: the inner tail (the message's last partial block, the
     * counter, the padding of a 64 + msg_len + 8-byte message) and the outer
     * block (the inner digest, padded as a 96-byte message).  Room for the
     * padding: zk_sha256_pad wants used + 72 bytes. */
    enum { LANES = ZK_SHA256_MAX_LANES };
    uint8_t tail[LANES][64 + 8 + 72], outer_block[LANES][32 + 72];
    const uint8_t *tails[LANES], *outers[LANES];
    size_t tail_blocks = 0;
    for (int l = 0; l < LANES; l++) {
        memcpy(tail[l], msg + 64 * full, rest);
        tail_blocks = zk_sha256_pad(tail[l], rest + 8, 64 + (uint64_t)msg_len + 8);
        zk_sha256_pad(outer_block[l], 32, 64 + 32);
        tails[l] = tail[l], outers[l] = outer_block[l];
    }

    size_t lanes = (size_t)zk_sha256_lanes();
    uint32_t st[LANES][8];
    for (size_t i = 0; i < nblocks; i += lanes) {
        size_t m = nblocks - i < lanes ? nblocks - i : lanes;
        for (size_t l = 0; l < m; l++) {
            store_le64(tail[l] + rest, counter + i + l);
            memcpy(st[l], inner, sizeof inner);
        }
        zk_sha256_blocks(st, tails, tail_blocks, (int)m);
        for (size_t l = 0; l < m; l++) {
            zk_sha256_digest(outer_block[l], st[l]);
            memcpy(st[l], outer, sizeof outer);
        }
        zk_sha256_blocks(st, outers, 1, (int)m);
        for (size_t l = 0; l < m; l++) zk_sha256_digest(out + 32 * (i + l), st[l]);
    }
}

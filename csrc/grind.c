/*
 * grind.c — proof-of-work search for the Fiat-Shamir transcript.
 *
 * The message is 41 bytes (32 state, 1 tag, 8 nonce), a single SHA-256 block
 * after padding, so each try is one compression through zk_sha256 (SHA-NI
 * when available).  Expected tries: 2^bits.
 */
#include <string.h>

#include "zk_grind.h"
#include "zk_hash.h"

static int leading_zero_bits_at_least(const uint8_t digest[32], unsigned bits) {
    uint64_t head = 0;
    for (int i = 0; i < 8; i++) head = head << 8 | digest[i]; /* big-endian first 8 bytes */
    return bits == 0 || (head >> (64 - bits)) == 0;
}

uint64_t zk_grind(const uint8_t state[32], unsigned bits, uint64_t start) {
    uint8_t msg[41], digest[32];
    memcpy(msg, state, 32);
    msg[32] = 0x04;
    for (uint64_t nonce = start;; nonce++) {
        for (int i = 0; i < 8; i++) msg[33 + i] = (uint8_t)(nonce >> (8 * i));
        zk_sha256(digest, msg, sizeof msg);
        if (leading_zero_bits_at_least(digest, bits)) return nonce;
    }
}

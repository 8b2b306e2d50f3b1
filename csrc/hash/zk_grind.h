/*
 * zk_grind.h — the transcript's proof of work (prover/transcript.py).
 *
 * A nonce is valid for `bits` when SHA-256(state || 0x04 || nonce as 8 bytes
 * little-endian) starts with `bits` zero bits.  The prover searches from
 * `start` upward; the verifier checks one nonce in Python.
 */
#ifndef ZK_GRIND_H
#define ZK_GRIND_H

#include "common/zk_common.h"

/* cffi-begin */
/* The least nonce >= start valid for `bits` (bits <= 64). */
uint64_t zk_grind(const uint8_t state[32], unsigned bits, uint64_t start);
/* cffi-end */

#endif

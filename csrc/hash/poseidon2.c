/*
 * poseidon2.c — Poseidon2 over BabyBear, width 16 (zk_poseidon2.h): many
 * independent permutations per call, the scalar path one state at a time,
 * the AVX2 and AVX-512 paths 8 and 16 states at a time, one per vector lane.
 *
 * Arithmetic: Montgomery form, as in every kernel (field/bb_field.h).  The
 * inputs arrive in it, so there is no conversion at the edges; a product
 * costs one Montgomery reduction (multiplies and a subtraction, no
 * division and no 64-bit remainder, which a plain reduction mod p would
 * need); and the permutation's only products are the S-box's (element by
 * element) and the internal diagonal's (element by constant), both one
 * bb_mul once the constants are stored as cR.  Everything else is
 * additions, which do not see the representation.  poseidon2_rounds.inc
 * says why the result is pi(x)R for an input xR.
 *
 * All three paths run the same rounds (poseidon2_rounds.inc) with the same
 * reduced-element operations, so they give identical words.
 */
#include <string.h>

#include "field/bb_field.h"
#include "zk_poseidon2.h"

/* The instance's constants, canonical, transcribed from the Poseidon2
 * authors' published BabyBear width-16 instance; the same tables as
 * prover/poseidon2_reference.py (tests/test_poseidon2.py compares them).
 * Full rounds 0-3 come before the partial rounds, 4-7 after. */
const uint32_t zk_poseidon2_full_rc[8][16] = {
    {0x69cbb6af, 0x46ad93f9, 0x60a00f4e, 0x6b1297cd, 0x23189afe, 0x732e7bef, 0x72c246de, 0x2c941900,
     0x0557eede, 0x1580496f, 0x3a3ea77b, 0x54f3f271, 0x0f49b029, 0x47872fe1, 0x221e2e36, 0x1ab7202e},
    {0x487779a6, 0x3851c9d8, 0x38dc17c0, 0x209f8849, 0x268dcee8, 0x350c48da, 0x5b9ad32e, 0x0523272b,
     0x3f89055b, 0x01e894b2, 0x13ddedde, 0x1b2ef334, 0x7507d8b4, 0x6ceeb94e, 0x52eb6ba2, 0x50642905},
    {0x05453f3f, 0x06349efc, 0x6922787c, 0x04bfff9c, 0x768c714a, 0x3e9ff21a, 0x15737c9c, 0x2229c807,
     0x0d47f88c, 0x097e0ecc, 0x27eadba0, 0x2d7d29e4, 0x3502aaa0, 0x0f475fd7, 0x29fbda49, 0x018afffd},
    {0x0315b618, 0x6d4497d1, 0x1b171d9e, 0x52861abd, 0x2e5d0501, 0x3ec8646c, 0x6e5f250a, 0x148ae8e6,
     0x17f5fa4a, 0x3e66d284, 0x0051aa3b, 0x483f7913, 0x2cfe5f15, 0x023427ca, 0x2cc78315, 0x1e36ea47},
    {0x7290a80d, 0x6f7e5329, 0x598ec8a8, 0x76a859a0, 0x6559e868, 0x657b83af, 0x13271d3f, 0x1f876063,
     0x0aeeae37, 0x706e9ca6, 0x46400cee, 0x72a05c26, 0x2c589c9e, 0x20bd37a7, 0x6a2d3d10, 0x20523767},
    {0x5b8fe9c4, 0x2aa501d6, 0x1e01ac3e, 0x1448bc54, 0x5ce5ad1c, 0x4918a14d, 0x2c46a83f, 0x4fcf6876,
     0x61d8d5c8, 0x6ddf4ff9, 0x11fda4d3, 0x02933a8f, 0x170eaf81, 0x5a9c314f, 0x49a12590, 0x35ec52a1},
    {0x58eb1611, 0x5e481e65, 0x367125c9, 0x0eba33ba, 0x1fc28ded, 0x066399ad, 0x0cbec0ea, 0x75fd1af0,
     0x50f5bf4e, 0x643d5f41, 0x6f4fe718, 0x5b3cbbde, 0x1e3afb3e, 0x296fb027, 0x45e1547b, 0x4a8db2ab},
    {0x59986d19, 0x30bcdfa3, 0x1db63932, 0x1d7c2824, 0x53b33681, 0x0673b747, 0x038a98a3, 0x2c5bce60,
     0x351979cd, 0x5008fb73, 0x547bca78, 0x711af481, 0x3f93bf64, 0x644d987b, 0x3c8bcd87, 0x608758b8},
};
const uint32_t zk_poseidon2_partial_rc[13] = {
    0x5a8053c0, 0x693be639, 0x3858867d, 0x19334f6b, 0x128f0fd8, 0x4e2b1ccb, 0x61210ce0,
    0x3c318939, 0x0b5b2f22, 0x2edb11d5, 0x213effdf, 0x0cac4606, 0x241af16d,
};
/* mu: the internal matrix's diagonal less one (M_I = 1 1^T + diag(mu)) */
const uint32_t zk_poseidon2_internal_diag[16] = {
    0x0a632d94, 0x6db657b7, 0x56fbdc9e, 0x052b3d8a, 0x33745201, 0x5c03108c, 0x0beba37b, 0x258c2e8b,
    0x12029f39, 0x694909ce, 0x6d231724, 0x21c3b222, 0x3c0904a5, 0x01d6acda, 0x27705c83, 0x5231c802,
};

/* The same constants in Montgomery form, filled at load (poseidon2_load). */
static uint32_t p2_full_rc_m[8][16], p2_partial_rc_m[13], p2_diag_m[16];

/* ------------------------------------------------------------- scalar -- */

/* The rounds twice per path, from the one source: the permutation (the
 * registers dropped: P2_KEEP does nothing, so the compiler keeps no store)
 * and the witness (each register stored into the block w, element-major
 * like the states: w[k * lanes + l] is register k of state l). */
#define P2_T uint32_t
#define P2_ADD(a, b) bb_add(a, b)
#define P2_MUL(a, b) bb_mul(a, b)
#define P2_CONST(c) (c)
#define P2_ATTR
#define P2_FN(name) name##_scalar
#define P2_KEEP(w, k, v) ((void)0)
#include "poseidon2_rounds.inc"
#undef P2_FN
#undef P2_KEEP
#define P2_FN(name) name##_w_scalar
#define P2_KEEP(w, k, v) ((w)[k] = (v))
#include "poseidon2_rounds.inc"
#undef P2_T
#undef P2_ADD
#undef P2_MUL
#undef P2_CONST
#undef P2_ATTR
#undef P2_FN
#undef P2_KEEP

/* One state (a block of one lane: element-major order is the state). */
static void p2_block_scalar(uint32_t *soa) { p2_rounds_scalar(soa, NULL); }
static void p2_witness_block_scalar(uint32_t *soa, uint32_t *w) { p2_rounds_w_scalar(soa, w); }

/* ------------------------------------------------------- AVX2, AVX-512 -- */

/* p2_block_avx2 (8 states), p2_block_avx512 (16 states), and the
 * p2_witness_block_ of each */
#define VEC_BODY "hash/poseidon2_vec.inc"
#include "common/vec_widths.h"

/* ------------------------------------------------------------- driver -- */

static size_t block_lanes(int isa) {
    return isa == ZK_ISA_AVX512 ? 16 : isa == ZK_ISA_AVX2 ? 8 : 1;
}

/* The states go through in blocks of as many as the path has lanes: copied
 * into element-major order (the vector paths' layout; scalar moves, 2 x 256
 * words for sixteen permutations, against their ~12,000 products), permuted,
 * and copied back, as whole states or as leaves.  A last block of fewer
 * states fills its spare lanes with zeros and writes none of them.  Each
 * block is read whole before any of it is written, so out may be in. */
static void run(uint32_t *out, const uint32_t *in, size_t n, int leaf) {
    int isa = zk_active_isa; /* the lane count and the body must agree */
    size_t L = block_lanes(isa), width = leaf ? ZK_POSEIDON2_LEAF_WIDTH : ZK_POSEIDON2_WIDTH;
    uint32_t soa[16 * 16], x[8 * 16];
    for (size_t i = 0; i < n; i += L) {
        size_t m = n - i < L ? n - i : L;
        for (size_t l = 0; l < L; l++)
            for (size_t k = 0; k < 16; k++) soa[k * L + l] = l < m ? in[(i + l) * 16 + k] : 0;
        if (leaf) memcpy(x, soa, sizeof(uint32_t) * 8 * L);
        ZK_DISPATCH(isa, p2_block, soa);
        for (size_t l = 0; l < m; l++)
            for (size_t k = 0; k < width; k++) {
                uint32_t y = soa[k * L + l];
                out[(i + l) * width + k] = leaf ? bb_add(y, x[k * L + l]) : y; /* the feed-forward */
            }
    }
}

int64_t zk_poseidon2_permute(uint32_t *out, const uint32_t *in, size_t n) {
    int64_t bad = bb_first_unreduced(in, 16 * n);
    if (bad < 0) run(out, in, n, 0);
    return bad;
}

int64_t zk_poseidon2_leaf(uint32_t *out, const uint32_t *in, size_t n) {
    int64_t bad = bb_first_unreduced(in, 16 * n);
    if (bad < 0) run(out, in, n, 1);
    return bad;
}

/* The witness: blocks as run() takes them, the registers written
 * element-major into w by the rounds, then scattered into the rows of out
 * (ZK_POSEIDON2_AIR_COLUMNS words at out + i * stride for state i). */
int64_t zk_poseidon2_air_registers(uint32_t *out, size_t stride, const uint32_t *in, size_t n) {
    int64_t bad = bb_first_unreduced(in, 16 * n);
    if (bad >= 0) return bad;
    int isa = zk_active_isa;
    size_t L = block_lanes(isa);
    uint32_t soa[16 * 16], w[ZK_POSEIDON2_AIR_COLUMNS * 16];
    for (size_t i = 0; i < n; i += L) {
        size_t m = n - i < L ? n - i : L;
        for (size_t l = 0; l < L; l++)
            for (size_t k = 0; k < 16; k++) soa[k * L + l] = l < m ? in[(i + l) * 16 + k] : 0;
        /* the next block's rows asked for, for writing, while this block's
         * permutations run: out is a trace matrix tens of MiB wide of rows,
         * each row's registers a few lines, and the scatter's stores
         * otherwise wait on each line's fetch (a prefetch changes no value) */
        for (size_t l = i + L; l < i + 2 * L && l < n; l++) {
            const char *p = (const char *)(out + l * stride), *end = p + 4 * ZK_POSEIDON2_AIR_COLUMNS;
            for (const char *q = (const char *)((uintptr_t)p & ~(uintptr_t)63); q < end; q += 64)
                __builtin_prefetch(q, 1, 3);
        }
        ZK_DISPATCH(isa, p2_witness_block, soa, w);
        for (size_t l = 0; l < m; l++) {
            uint32_t *row = out + (i + l) * stride;
            for (size_t k = 0; k < ZK_POSEIDON2_AIR_COLUMNS; k++) row[k] = w[k * L + l];
        }
    }
    return -1;
}

__attribute__((constructor)) static void poseidon2_load(void) {
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < 16; i++) p2_full_rc_m[r][i] = bb_encode(zk_poseidon2_full_rc[r][i]);
    for (int r = 0; r < 13; r++) p2_partial_rc_m[r] = bb_encode(zk_poseidon2_partial_rc[r]);
    for (int i = 0; i < 16; i++) p2_diag_m[i] = bb_encode(zk_poseidon2_internal_diag[i]);
}

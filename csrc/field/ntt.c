/*
 * ntt.c — radix-2 NTTs and the low-degree extension over BabyBear, on
 * row-major matrices (conventions in zk_ntt.h, arithmetic in bb_field.h).
 *
 * Two in-place butterfly networks, both with natural-order twiddles:
 *
 *   DIT (Cooley-Tukey), bit-reversed input -> natural output,
 *       stages h = 1, 2, 4, ..., n/2:   x' = x + w y,   y' = x - w y
 *   DIF (Gentleman-Sande), natural input -> bit-reversed output,
 *       stages h = n/2, ..., 2, 1:      x' = x + y,     y' = (x - y) w
 *
 * In a stage of half-size h, rows k + j and k + j + h (k a multiple of 2h,
 * j < h) meet with twiddle w_2h^j.  That twiddle depends on h and j only, not
 * on n, so the twiddle cache keeps one array per level and every transform
 * size shares it.
 *
 * Vectorisation:
 *   cols > 1   across columns: a butterfly works on two whole rows with one
 *              broadcast twiddle (vpbroadcastd), 8 or 16 columns per vector;
 *              leftover columns by a ymm step (AVX-512) and scalar code.
 *   cols == 1  along the column: stages with h >= lanes pair two full
 *              vectors (twiddles are a contiguous load from the level array);
 *              the log2(lanes) stages with h < lanes pair lanes of ONE vector
 *              and run fused in registers with a lane permute (see
 *              small_stages_*).
 * All arithmetic is exact field arithmetic with canonical results, so every
 * path is bit-identical to the scalar one whatever the evaluation order.
 *
 * Cache blocking: the stages with 2h <= B rows (B rows ~ BLOCK_BYTES) only
 * mix rows inside aligned blocks of B rows, so they run block by block while
 * the block sits in L2; only the remaining log2(n / B) stages stream the
 * whole matrix.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bb_field.h"
#include "zk_field.h"
#include "zk_matrix.h"
#include "zk_ntt.h"

#define BB_G27 0x1a427a41u      /* 31^15: generates the order-2^27 subgroup (canonical) */
#define BLOCK_BYTES (256u << 10) /* a quarter of Zen 4's 1 MiB L2: room for twiddles */

enum { DIT = 0, DIF = 1 };

/* ------------------------------------------------------------- helpers -- */

static unsigned log2_exact(size_t n) { return (unsigned)__builtin_ctzll(n); }

/* The low `bits` bits of i, reversed. */
static size_t rev_bits(size_t i, unsigned bits) {
    uint32_t x = (uint32_t)i;
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = __builtin_bswap32(x);
    return bits ? x >> (32 - bits) : 0;
}

/* w_n in Montgomery form: square the 2^27-th root down to order n = 2^log_n. */
static uint32_t root_of_unity(unsigned log_n) {
    uint32_t g = bb_encode(BB_G27);
    for (unsigned i = log_n; i < BB_TWO_ADICITY; i++) g = bb_mul(g, g);
    return g;
}

/* out[i] = start * step^i.  Eight independent chains, so the loop runs at
 * multiplier throughput rather than latency. */
static void fill_powers(uint32_t *out, size_t n, uint32_t start, uint32_t step) {
    enum { CHAINS = 8 };
    uint32_t acc[CHAINS];
    acc[0] = start;
    for (int l = 1; l < CHAINS; l++) acc[l] = bb_mul(acc[l - 1], step);
    uint32_t stride = bb_pow(step, CHAINS);
    size_t i = 0;
    for (; i + CHAINS <= n; i += CHAINS)
        for (int l = 0; l < CHAINS; l++) out[i + l] = acc[l], acc[l] = bb_mul(acc[l], stride);
    for (int l = 0; i < n; i++, l++) out[i] = acc[l];
}

/* dst row i = src row i * start * step^i (dst may equal src). */
static void scale_rows(uint32_t *dst, const uint32_t *src, size_t n, size_t m, uint32_t start,
                       uint32_t step) {
    if (m > 1) {
        for (size_t i = 0; i < n; i++, start = bb_mul(start, step))
            zk_fp_mul_scalar(dst + i * m, src + i * m, start, m);
        return;
    }
    /* One column: multiply by a run of powers, a stack chunk at a time. */
    enum { CHUNK = 1024 };
    uint32_t pw[CHUNK];
    uint32_t jump = bb_pow(step, CHUNK);
    for (size_t i = 0; i < n; i += CHUNK, start = bb_mul(start, jump)) {
        size_t len = n - i < CHUNK ? n - i : CHUNK;
        fill_powers(pw, len, start, step);
        zk_fp_mul(dst + i, src + i, pw, len);
    }
}

/* ------------------------------------------------------------ twiddles -- */

/* Level l (h = 2^l) holds w_2h^j for j < h, forward and inverse.  Built once
 * under the mutex in ascending order and published with a release store;
 * never changed or freed, so a reader needs only the acquire load of the
 * highest level it uses (which orders all lower ones). */
static _Atomic(uint32_t *) tw_fwd[ZK_NTT_MAX_LOG];
static _Atomic(uint32_t *) tw_inv[ZK_NTT_MAX_LOG];
static pthread_mutex_t tw_lock = PTHREAD_MUTEX_INITIALIZER;

static int build_level(unsigned l) {
    size_t h = (size_t)1 << l;
    uint32_t *fwd = malloc(h * sizeof *fwd), *inv = malloc(h * sizeof *inv);
    if (!fwd || !inv) {
        free(fwd), free(inv);
        return -2;
    }
    uint32_t w = root_of_unity(l + 1);
    fill_powers(fwd, h, BB_ONE, w);
    fill_powers(inv, h, BB_ONE, bb_inv(w));
    atomic_store_explicit(&tw_inv[l], inv, memory_order_release);
    atomic_store_explicit(&tw_fwd[l], fwd, memory_order_release);
    return 0;
}

/* Point fwd[l], inv[l] at the tables of levels l < log_n, building any that
 * are missing.  Returns 0 or -2. */
static int twiddles(unsigned log_n, const uint32_t **fwd, const uint32_t **inv) {
    if (log_n && !atomic_load_explicit(&tw_fwd[log_n - 1], memory_order_acquire)) {
        int rc = 0;
        pthread_mutex_lock(&tw_lock);
        for (unsigned l = 0; l < log_n && rc == 0; l++)
            if (!atomic_load_explicit(&tw_fwd[l], memory_order_relaxed)) rc = build_level(l);
        pthread_mutex_unlock(&tw_lock);
        if (rc) return rc;
    }
    for (unsigned l = 0; l < log_n; l++) {
        fwd[l] = atomic_load_explicit(&tw_fwd[l], memory_order_acquire);
        inv[l] = atomic_load_explicit(&tw_inv[l], memory_order_acquire);
    }
    return 0;
}

/* -------------------------------------------------------------- scalar -- */

ZK_INLINE void butterfly(uint32_t *x, uint32_t *y, uint32_t w, int dif) {
    if (dif) {
        uint32_t s = bb_add(*x, *y);
        *y = bb_mul(bb_sub(*x, *y), w);
        *x = s;
    } else {
        uint32_t t = bb_mul(*y, w);
        *y = bb_sub(*x, t);
        *x = bb_add(*x, t);
    }
}

ZK_INLINE void stage_scalar_body(uint32_t *a, size_t n, size_t m, size_t h, const uint32_t *tw,
                                 int dif) {
    for (size_t k = 0; k < n; k += 2 * h)
        for (size_t j = 0; j < h; j++) {
            uint32_t *x = a + (k + j) * m, *y = x + h * m;
            for (size_t c = 0; c < m; c++) butterfly(x + c, y + c, tw[j], dif);
        }
}

static void stage_scalar(uint32_t *a, size_t n, size_t m, size_t h, const uint32_t *tw, int dif) {
    if (dif)
        stage_scalar_body(a, n, m, h, tw, DIF);
    else
        stage_scalar_body(a, n, m, h, tw, DIT);
}

/* ------------------------------------------------------ AVX2, AVX-512 -- */

/* stage_avx2 / stage_avx512, small_stages_avx2 / small_stages_avx512 */
#define VEC_BODY "field/ntt_vec.inc"
#include "common/vec_widths.h"

/* ------------------------------------------------------------ dispatch -- */

/* The ISA is read once per public call, so a concurrent zk_set_isa cannot
 * mix paths inside one transform (harmless for results, confusing for timing). */
static size_t lanes(int isa) { return isa == ZK_ISA_AVX512 ? 16 : isa == ZK_ISA_AVX2 ? 8 : 1; }

static void stage(int isa, uint32_t *a, size_t n, size_t m, size_t h, const uint32_t *tw, int dif) {
    ZK_DISPATCH(isa, stage, a, n, m, h, tw, dif);
}

/* Stages h in [h_lo, lanes) of a single column whose length n >= lanes. */
static void small_stages(int isa, uint32_t *a, size_t n, size_t h_lo,
                         const uint32_t *const *tw, int dif) {
#if ZK_X86
    if (isa == ZK_ISA_AVX512) small_stages_avx512(a, n, h_lo, tw, dif);
    if (isa == ZK_ISA_AVX2) small_stages_avx2(a, n, h_lo, tw, dif);
#endif
}

/* ------------------------------------------------------------- drivers -- */

/* Rows per cache block: a power of two, at most BLOCK_BYTES of data. */
static size_t block_rows(size_t n, size_t m) {
    size_t b = 1;
    while (2 * b <= n && 2 * b * m * sizeof(uint32_t) <= BLOCK_BYTES) b *= 2;
    return b;
}

/* Stages h in [h_lo, blk) of one block of blk rows, ascending (DIT) or
 * descending (DIF). */
static void block_stages(int isa, uint32_t *a, size_t blk, size_t m, size_t h_lo,
                         const uint32_t *const *tw, int dif) {
    size_t v = lanes(isa);
    int fused = m == 1 && v > 1 && blk >= v; /* one column: small stages in registers */
    size_t h_vec = fused && h_lo < v ? v : h_lo;
    if (dif) {
        for (size_t h = blk / 2; h >= h_vec && h > 0; h >>= 1) stage(isa, a, blk, m, h, tw[log2_exact(h)], DIF);
        if (h_vec != h_lo) small_stages(isa, a, blk, h_lo, tw, DIF);
    } else {
        if (h_vec != h_lo) small_stages(isa, a, blk, h_lo, tw, DIT);
        for (size_t h = h_vec; h < blk; h <<= 1) stage(isa, a, blk, m, h, tw[log2_exact(h)], DIT);
    }
}

/* DIT stages h in [h_lo, n): bit-reversed input -> natural output. */
static void dit(int isa, uint32_t *a, size_t n, size_t m, size_t h_lo, const uint32_t *const *tw) {
    size_t blk = block_rows(n, m);
    if (h_lo < blk)
        for (size_t b = 0; b < n; b += blk) block_stages(isa, a + b * m, blk, m, h_lo, tw, DIT);
    for (size_t h = h_lo > blk ? h_lo : blk; h < n; h <<= 1) stage(isa, a, n, m, h, tw[log2_exact(h)], DIT);
}

/* All DIF stages: natural input -> bit-reversed output. */
static void dif(int isa, uint32_t *a, size_t n, size_t m, const uint32_t *const *tw) {
    size_t blk = block_rows(n, m);
    for (size_t h = n / 2; h >= blk; h >>= 1) stage(isa, a, n, m, h, tw[log2_exact(h)], DIF);
    for (size_t b = 0; b < n; b += blk) block_stages(isa, a + b * m, blk, m, 1, tw, DIF);
}

static void swap_rows(uint32_t *x, uint32_t *y, size_t m) {
    for (size_t c = 0; c < m; c++) {
        uint32_t t = x[c];
        x[c] = y[c];
        y[c] = t;
    }
}

/* One column, n = 2^bits >= 2^(2 TILE_BITS).  Split an index into
 * (hi, mid, lo) with TILE_BITS-bit hi and lo: rev maps (hi, mid, lo) to
 * (rev lo, rev mid, rev hi).  So the T x T tile of one `mid` (T rows of T
 * contiguous elements, a 64-byte line each) lands, transposed, on the tile
 * of rev(mid): both tiles are read whole, then written whole, touching 4T
 * cache lines per 2 T^2 elements instead of one line per element. */
enum { TILE_BITS = 4, TILE = 1 << TILE_BITS };

static void store_tile(uint32_t *a, size_t stride, const uint32_t t[TILE][TILE]) {
    for (size_t lo = 0; lo < TILE; lo++)
        for (size_t hi = 0; hi < TILE; hi++) a[rev_bits(lo, TILE_BITS) * stride + rev_bits(hi, TILE_BITS)] = t[hi][lo];
}

static void bit_reverse_column(uint32_t *a, unsigned bits) {
    unsigned mid_bits = bits - 2 * TILE_BITS;
    size_t stride = (size_t)1 << (bits - TILE_BITS); /* index = hi * stride + mid * TILE + lo */
    uint32_t ta[TILE][TILE], tb[TILE][TILE];
    for (size_t mid = 0; mid < (size_t)1 << mid_bits; mid++) {
        size_t rmid = rev_bits(mid, mid_bits);
        if (rmid < mid) continue; /* the pair was swapped at rmid */
        for (size_t hi = 0; hi < TILE; hi++) {
            memcpy(ta[hi], a + hi * stride + mid * TILE, sizeof ta[hi]);
            memcpy(tb[hi], a + hi * stride + rmid * TILE, sizeof tb[hi]);
        }
        store_tile(a + rmid * TILE, stride, ta);
        store_tile(a + mid * TILE, stride, tb);
    }
}

static void bit_reverse_rows(uint32_t *a, size_t n, size_t m) {
    unsigned bits = log2_exact(n);
    if (m == 1 && bits >= 2 * TILE_BITS) {
        bit_reverse_column(a, bits);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t r = rev_bits(i, bits);
        if (i < r) swap_rows(a + i * m, a + r * m, m);
    }
}

static int valid_rows(size_t rows) {
    return rows && (rows & (rows - 1)) == 0 && log2_exact(rows) <= ZK_NTT_MAX_LOG;
}

/* ---------------------------------------------------------- public API -- */

int zk_ntt_bit_reverse_rows(uint32_t *a, size_t rows, size_t cols) {
    if (!valid_rows(rows)) return -1;
    bit_reverse_rows(a, rows, cols);
    return 0;
}

/* A matrix narrower than 16 columns and not a multiple of 8 wide (the
 * quotient's 4 extension coordinates) leaves most of each row butterfly to
 * the scalar tail of rows_avx512; one column at a time, every stage is whole
 * vectors.  Measured on 2^18 rows: 4 columns 3.5x faster this way (with the
 * two transposes), 12 columns 1.8x; 8 and 16 columns faster as a matrix.
 * (Masked 16-lane loads and stores for the tail measured slower still.) */
static int narrow(size_t rows, size_t cols) { return cols > 1 && cols < 16 && cols % 8 && rows >= 16; }

static int by_columns(uint32_t *a, size_t rows, size_t cols, uint32_t shift,
                      int (*transform)(uint32_t *, size_t, size_t, uint32_t)) {
    uint32_t *t = malloc(rows * cols * sizeof *t);
    if (!t) return -2;
    zk_transpose_u32(t, rows, a, rows, cols);
    int rc = 0;
    for (size_t c = 0; c < cols && !rc; c++) rc = transform(t + c * rows, rows, 1, shift);
    if (!rc) zk_transpose_u32(a, cols, t, cols, rows);
    free(t);
    return rc;
}

/* Coefficients c_i of f -> f(shift w^k): the coefficients of f(shift x) are
 * c_i shift^i, then bit-reverse + DIT evaluates on H. */
int zk_ntt_forward(uint32_t *a, size_t rows, size_t cols, uint32_t shift) {
    const uint32_t *fwd[ZK_NTT_MAX_LOG], *inv[ZK_NTT_MAX_LOG];
    if (!valid_rows(rows)) return -1;
    if (narrow(rows, cols)) return by_columns(a, rows, cols, shift, zk_ntt_forward);
    int rc = twiddles(log2_exact(rows), fwd, inv);
    if (rc) return rc;
    int isa = zk_active_isa;
    if (shift != BB_ONE) scale_rows(a, a, rows, cols, BB_ONE, shift);
    bit_reverse_rows(a, rows, cols);
    dit(isa, a, rows, cols, 1, fwd);
    return 0;
}

/* The DFT with w^-1 (inverse twiddles), then c_i = (that)_i / (n shift^i),
 * one scaling pass for both the 1/n and the coset. */
int zk_ntt_inverse(uint32_t *a, size_t rows, size_t cols, uint32_t shift) {
    const uint32_t *fwd[ZK_NTT_MAX_LOG], *inv[ZK_NTT_MAX_LOG];
    if (!valid_rows(rows)) return -1;
    if (narrow(rows, cols)) return by_columns(a, rows, cols, shift, zk_ntt_inverse);
    int rc = twiddles(log2_exact(rows), fwd, inv);
    if (rc) return rc;
    int isa = zk_active_isa;
    bit_reverse_rows(a, rows, cols);
    dit(isa, a, rows, cols, 1, inv);
    uint32_t n_inv = bb_inv(bb_encode((uint32_t)rows));
    scale_rows(a, a, rows, cols, n_inv, shift == BB_ONE ? BB_ONE : bb_inv(shift));
    return 0;
}

/* Natural order.  After DIF with w^-1, row r holds n c_rev(r).  The extended
 * DIT wants bit-reversed input of length N: coefficient i < n sits at row
 * rev_N(i) = rev_n(i) * B (B = blowup), every other row is zero.  The first
 * log2(B) DIT stages on such input just copy each nonzero row over its block
 * of B rows (each block's DFT is that of (v, 0, ..., 0), the constant v), so
 * we write B copies of n c_rev(r) shift^rev(r) / n and start the DIT at
 * h = B: no zero rows are ever transformed. */
static int lde_natural(int isa, uint32_t *out, size_t n, size_t m, unsigned log_blowup,
                       uint32_t shift, const uint32_t *const *fwd, const uint32_t *const *inv) {
    size_t blowup = (size_t)1 << log_blowup;
    unsigned bits = log2_exact(n);
    uint32_t *pw = malloc(n * sizeof *pw);
    if (!pw) return -2;
    fill_powers(pw, n, bb_inv(bb_encode((uint32_t)n)), shift);
    dif(isa, out, n, m, inv);
    /* Row r moves to rows rB..rB+B-1 >= r: go downwards so no source row is
     * overwritten before it is read (row 0 last, in place). */
    for (size_t r = n; r-- > 0;) {
        uint32_t *src = out + r * m, *dst = out + r * blowup * m;
        uint32_t f = pw[rev_bits(r, bits)];
        if (m == 1) { /* one element per row: no per-row calls */
            uint32_t v = bb_mul(*src, f);
            for (size_t t = 0; t < blowup; t++) dst[t] = v;
            continue;
        }
        zk_fp_mul_scalar(dst + (blowup - 1) * m, src, f, m);
        for (size_t t = 0; t + 1 < blowup; t++) memcpy(dst + t * m, dst + (blowup - 1) * m, m * sizeof *dst);
    }
    free(pw);
    dit(isa, out, n << log_blowup, m, blowup, fwd);
    return 0;
}

/* Bit-reversed order.  Output row b*n + r (b < B, r < n) is the point
 * shift w_N^(rev_n(r) B + rev_B(b)) = s_b w_n^rev_n(r), s_b = shift w_N^rev_B(b):
 * block b is the bit-reversed evaluation of f on the coset s_b H, i.e. a DIF
 * of size n of the coefficients c_i s_b^i.  So: natural coefficients once
 * (bit-reverse + inverse DIT), then per block one scaling pass and one DIF,
 * block 0 last because it holds the coefficients. */
static int lde_bit_reversed(int isa, uint32_t *out, size_t n, size_t m, unsigned log_blowup,
                            uint32_t shift, const uint32_t *const *fwd, const uint32_t *const *inv) {
    size_t blowup = (size_t)1 << log_blowup;
    uint32_t n_inv = bb_inv(bb_encode((uint32_t)n));
    uint32_t w_big = root_of_unity(log2_exact(n) + log_blowup);
    bit_reverse_rows(out, n, m);
    dit(isa, out, n, m, 1, inv);
    for (size_t b = blowup; b-- > 0;) {
        uint32_t *block = out + b * n * m;
        uint32_t s_b = bb_mul(shift, bb_pow(w_big, rev_bits(b, log_blowup)));
        scale_rows(block, out, n, m, n_inv, s_b);
        dif(isa, block, n, m, fwd);
    }
    return 0;
}

int zk_lde(uint32_t *out, const uint32_t *in, size_t rows, size_t cols, unsigned log_blowup,
           uint32_t shift, int bit_reverse_output) {
    const uint32_t *fwd[ZK_NTT_MAX_LOG], *inv[ZK_NTT_MAX_LOG];
    if (!valid_rows(rows) || log_blowup < ZK_NTT_MIN_LOG_BLOWUP || log_blowup > ZK_NTT_MAX_LOG_BLOWUP ||
        log2_exact(rows) + log_blowup > ZK_NTT_MAX_LOG)
        return -1;
    int rc = twiddles(log2_exact(rows) + log_blowup, fwd, inv);
    if (rc) return rc;
    int isa = zk_active_isa;
    memcpy(out, in, rows * cols * sizeof *out);
    if (bit_reverse_output) return lde_bit_reversed(isa, out, rows, cols, log_blowup, shift, fwd, inv);
    return lde_natural(isa, out, rows, cols, log_blowup, shift, fwd, inv);
}

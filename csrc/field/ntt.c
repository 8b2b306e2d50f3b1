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
 * All arithmetic is exact field arithmetic with canonical results (the
 * vector paths keep a word lazy, below 2p, only where a product alone reads
 * it: ntt_vec.inc), so every path is bit-identical to the scalar one
 * whatever the evaluation order.
 *
 * Passes (matrices, cols > 1).  A stage of half-size h pairs rows whose
 * indices differ by h.  Write a row index r = q hb + t ha + j (j < ha,
 * t < T = hb / ha): the stages h in [ha, hb) change only t, so for each (q, j)
 * the T rows {q hb + t ha + j} are an independent transform (a "set"), whose
 * butterflies take the twiddle w_2h^((t mod h/ha) ha + j).  A pass runs the
 * stages [ha, hb) set by set, g consecutive j together (g rows side by side:
 * every access is g whole rows), with T g rows within the cache budget: each
 * stage of the pass works in L2, and the pass reads and writes the matrix
 * once.  ha = 1 is the blocked case (contiguous blocks of hb rows).  The
 * stages of a transform are split into as few passes as the budget allows
 * (two for the order book's LDE, where a stage-at-a-time sweep streamed the
 * whole 2^17-row matrix once for each of nine late stages).
 *
 * The budget is half the L2 of the core (sysconf, read once; 512 KiB when
 * unknown), settable with zk_ntt_set_cache_bytes.  A single column keeps the
 * older scheme: blocks of BLOCK_BYTES, then one sweep per later stage.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bb_field.h"
#include "zk_field.h"
#include "zk_matrix.h"
#include "zk_ntt.h"

#define BB_G27 0x1a427a41u      /* 31^15: generates the order-2^27 subgroup (canonical) */
#define BLOCK_BYTES (256u << 10) /* one column: a quarter of Zen 4's 1 MiB L2, room for twiddles */

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

static void set_stage_scalar(uint32_t *a, size_t groups, size_t H, size_t stride, size_t g, size_t m,
                             const uint32_t *tw, size_t tw_step, int dif) {
    for (size_t k = 0; k < groups; k += 2 * H)
        for (size_t t = 0; t < H; t++) {
            uint32_t *x = a + (k + t) * stride, *y = x + H * stride;
            for (size_t u = 0; u < g; u++)
                for (size_t c = 0; c < m; c++) butterfly(x + u * m + c, y + u * m + c, tw[t * tw_step + u], dif);
        }
}

/* Stages H and 2H of a set (set_stage2_avx2 / _avx512 fuse them): in
 * their order, one after the other. */
static void set_stage2_scalar(uint32_t *a, size_t groups, size_t H, size_t stride, size_t g, size_t m,
                              const uint32_t *tw_lo, const uint32_t *tw_hi, size_t tw_step, int dif) {
    if (dif) {
        set_stage_scalar(a, groups, 2 * H, stride, g, m, tw_hi, tw_step, DIF);
        set_stage_scalar(a, groups, H, stride, g, m, tw_lo, tw_step, DIF);
    } else {
        set_stage_scalar(a, groups, H, stride, g, m, tw_lo, tw_step, DIT);
        set_stage_scalar(a, groups, 2 * H, stride, g, m, tw_hi, tw_step, DIT);
    }
}

/* spread_quad_avx2 / _avx512 (ntt_vec.inc): four coefficient rows of
 * src scaled by f[i], spread over B rows each and through the DIT stages B
 * and 2B, into the 4 B rows of dst; column by column. */
static void spread_quad_scalar(uint32_t *dst, const uint32_t *src, const uint32_t f[4], size_t B, size_t m,
                               const uint32_t *tw_lo, const uint32_t *tw_hi) {
    for (size_t c = 0; c < m; c++) {
        uint32_t v[4];
        for (int i = 0; i < 4; i++) v[i] = bb_mul(src[i * m + c], f[i]);
        for (size_t u = 0; u < B; u++) {
            uint32_t x0 = v[0], x1 = v[1], x2 = v[2], x3 = v[3];
            butterfly(&x0, &x1, tw_lo[u], DIT), butterfly(&x2, &x3, tw_lo[u], DIT);
            butterfly(&x0, &x2, tw_hi[u], DIT), butterfly(&x1, &x3, tw_hi[B + u], DIT);
            uint32_t *d = dst + u * m + c;
            d[0] = x0, d[B * m] = x1, d[2 * B * m] = x2, d[3 * B * m] = x3;
        }
    }
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

static void set_stage(int isa, uint32_t *a, size_t groups, size_t H, size_t stride, size_t g, size_t m,
                      const uint32_t *tw, size_t tw_step, int dif) {
    ZK_DISPATCH(isa, set_stage, a, groups, H, stride, g, m, tw, tw_step, dif);
}

static void set_stage2(int isa, uint32_t *a, size_t groups, size_t H, size_t stride, size_t g, size_t m,
                       const uint32_t *tw_lo, const uint32_t *tw_hi, size_t tw_step, int dif) {
    ZK_DISPATCH(isa, set_stage2, a, groups, H, stride, g, m, tw_lo, tw_hi, tw_step, dif);
}

static void spread_quad(int isa, uint32_t *dst, const uint32_t *src, const uint32_t f[4], size_t B, size_t m,
                        const uint32_t *tw_lo, const uint32_t *tw_hi) {
    ZK_DISPATCH(isa, spread_quad, dst, src, f, B, m, tw_lo, tw_hi);
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

/* ---- passes (see the top of the file) ---- */

static _Atomic size_t cache_bytes_set;  /* 0: the default below */
static _Atomic size_t cache_bytes_auto; /* half the L2, read once (0: not yet) */

static size_t cache_bytes(void) {
    size_t set = atomic_load_explicit(&cache_bytes_set, memory_order_relaxed);
    if (set) return set;
    size_t bytes = atomic_load_explicit(&cache_bytes_auto, memory_order_relaxed);
    if (!bytes) { /* racing threads compute the same value */
        long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE); /* glibc reads it from CPUID */
        bytes = l2 > 0 ? (size_t)l2 / 2 : 512u << 10;
        if (bytes < (64u << 10)) bytes = 64u << 10;
        atomic_store_explicit(&cache_bytes_auto, bytes, memory_order_relaxed);
    }
    return bytes;
}

/* Rows of m words in the budget: a power of two, at least 2. */
static size_t budget_rows(size_t m) {
    size_t rows = cache_bytes() / (m * sizeof(uint32_t)), r = 2;
    while (2 * r <= rows) r *= 2;
    return r;
}

/* Stages [lo, hb) of one set, lo a power of two in [ha, hb] (past ha
 * where spread_dit2 has run a window's first two): `groups` = hb / ha
 * groups of g rows, group t at a + t ha m, twiddles from offset j0 (its
 * first j); ascending (DIT) or descending (DIF). */
static void set_stages(int isa, uint32_t *a, size_t m, size_t ha, size_t lo, size_t hb, size_t g, size_t j0,
                       const uint32_t *const *tw, int dif) {
    size_t groups = hb / ha, h = dif ? hb / 2 : lo;
    unsigned left = log2_exact(hb) - log2_exact(lo);
    /* two stages a call while two are left (set_stage2: on the vector
     * paths each row is loaded and stored once for both); h is the next
     * stage's half-size, p the smaller of the pair's */
    for (; left >= 2; left -= 2) {
        size_t p = dif ? h / 2 : h;
        set_stage2(isa, a, groups, p / ha, ha * m, g, m, tw[log2_exact(p)] + j0, tw[log2_exact(2 * p)] + j0, ha, dif);
        h = dif ? h / 4 : h * 4;
    }
    for (; left; left--, h = dif ? h / 2 : h * 2)
        set_stage(isa, a, groups, h / ha, ha * m, g, m, tw[log2_exact(h)] + j0, ha, dif);
}

/* One pass: stages [ha, hb) of an n x m matrix, set by set.  With `src`, a
 * set's rows are first copied from the same place in src (the LDE's input:
 * no separate copy pass).  With `visit`, each set's rows are handed to it
 * when the pass is done with them. */
static void run_pass(int isa, uint32_t *a, size_t n, size_t m, size_t ha, size_t hb, size_t budget,
                     const uint32_t *const *tw, int dif, const uint32_t *src, const zk_lde_visitor *visit) {
    size_t groups = hb / ha, g = budget / groups;
    if (g > ha) g = ha;
    if (g == 0) g = 1;
    for (size_t q = 0; q < n; q += hb)
        for (size_t j0 = 0; j0 < ha; j0 += g) {
            uint32_t *set = a + (q + j0) * m;
            if (src)
                for (size_t t = 0; t < groups; t++)
                    memcpy(set + t * ha * m, src + (q + j0 + t * ha) * m, g * m * sizeof *set);
            set_stages(isa, set, m, ha, ha, hb, g, j0, tw, dif);
            if (visit) visit->rows(visit->ctx, set, q + j0, groups, ha, g);
        }
}

/* Bounds lo = b[0] < b[1] < ... < b[P] = hi of the fewest passes covering
 * the stages [lo, hi), none with more than `budget` rows a set, their
 * stage counts as even as possible.  Returns P. */
static unsigned pass_bounds(size_t lo, size_t hi, size_t budget, size_t *b) {
    unsigned stages = log2_exact(hi) - log2_exact(lo), per = log2_exact(budget);
    unsigned passes = (stages + per - 1) / per;
    b[0] = lo;
    for (unsigned i = 0; i < passes; i++) b[i + 1] = b[i] << (stages / passes + (i < stages % passes));
    return passes;
}

/* DIT stages [lo, hi) in passes, ascending; `visit` sees the last pass. */
static void dit_passes(int isa, uint32_t *a, size_t n, size_t m, size_t lo, size_t hi,
                       const uint32_t *const *tw, const zk_lde_visitor *visit) {
    size_t b[ZK_NTT_MAX_LOG + 1], budget = budget_rows(m);
    unsigned passes = pass_bounds(lo, hi, budget, b);
    for (unsigned i = 0; i < passes; i++)
        run_pass(isa, a, n, m, b[i], b[i + 1], budget, tw, DIT, 0, i + 1 == passes ? visit : 0);
}

/* DIF stages [lo, hi) in passes, descending; `src` feeds the first pass. */
static void dif_passes(int isa, uint32_t *a, size_t n, size_t m, size_t lo, size_t hi,
                       const uint32_t *const *tw, const uint32_t *src) {
    size_t b[ZK_NTT_MAX_LOG + 1], budget = budget_rows(m);
    unsigned passes = pass_bounds(lo, hi, budget, b);
    for (unsigned i = passes; i-- > 0;) {
        run_pass(isa, a, n, m, b[i], b[i + 1], budget, tw, DIF, src, 0);
        src = 0;
    }
}

/* DIT stages h in [h_lo, n): bit-reversed input -> natural output. */
static void dit(int isa, uint32_t *a, size_t n, size_t m, size_t h_lo, const uint32_t *const *tw) {
    if (m > 1) {
        if (h_lo < n) dit_passes(isa, a, n, m, h_lo, n, tw, 0);
        return;
    }
    size_t blk = block_rows(n, m);
    if (h_lo < blk)
        for (size_t b = 0; b < n; b += blk) block_stages(isa, a + b * m, blk, m, h_lo, tw, DIT);
    for (size_t h = h_lo > blk ? h_lo : blk; h < n; h <<= 1) stage(isa, a, n, m, h, tw[log2_exact(h)], DIT);
}

/* All DIF stages: natural input -> bit-reversed output. */
static void dif(int isa, uint32_t *a, size_t n, size_t m, const uint32_t *const *tw) {
    if (m > 1) {
        if (n > 1) dif_passes(isa, a, n, m, 1, n, tw, 0);
        return;
    }
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

/* ---- the masked LDE (docs/ZK.md 5.2; zk_lde_visit_masked) ----
 * f = t + Z_H r, r of degree < h <= N (zk_lde_visit_masked refuses a
 * larger h: copy t of a coefficient k = q N + j >= N would add c_t^q
 * (c_t - 1) shift^j r_k to coefficient j, a wrap neither spread makes, and
 * zk mode's masks are far below N).  Output row i lies on the
 * coset of H where x^N = c_t, t = i mod B, c_t = shift^N w_B^t, and there f
 * is the polynomial t + (c_t - 1) r of degree < N.  In the spread, copy t
 * of coefficient row k (output row rev_n(k) B + t) starts the DIT that
 * ends on exactly those rows (the stages h >= B pair rows B apart and
 * keep t), so adding (c_t - 1) shift^k r_k to copy t of each of the first
 * h coefficients commits f at the cost of t: no transform of r, no pass
 * over the LDE.
 *
 * Small cosets.  The DIF's rows are t's coefficients (n c_k from
 * evaluations), so f's values on a small coset s <w_m> (zk_coset) come on
 * the way: f mod (X^m - s^m) has row i = sum_j f_(i + j m) S^j, S = s^m,
 * and each coefficient row is added to its row of that fold, scaled by
 * S^j, while the spread holds it in cache; f's coefficients above N (r's,
 * X^N r) are folded in first, and one transform of size m per coset ends
 * it.  The fold is m rows, where the N + h coefficients it replaces were
 * a matrix as tall as the trace written to memory and read back. */
typedef struct {
    uint32_t *values;        /* m x cols: the fold, then f's values */
    const uint32_t *spow;    /* S^j, j <= (n + h - 1) >> log_m */
    const uint32_t *weight;  /* coeff_scale S^rev(l) for DIF row q L + l, l < L (cosets_fold_rows) */
    unsigned log_m;
} coset_fold;

typedef struct {
    const uint32_t *r;       /* h x m: r's coefficients (X^0 first), or NULL when h = 0 */
    size_t h;
    uint32_t shift;
    uint32_t vanishing[(size_t)1 << ZK_NTT_MAX_LOG_BLOWUP]; /* c_t - 1, t < B */
    uint32_t coeff_scale;    /* the DIF row's multiple of c_k: 1/n, or 1 from coefficients */
    size_t ncosets;
    coset_fold cosets[ZK_LDE_MAX_COSETS];
    uint32_t *scratch;       /* m words */
} lde_mask;

/* Each coset's fold before the spread: zero, then r's part of f = t - r +
 * X^N r (the spread folds t's coefficients): +r_k in row (N + k) mod m,
 * -r_k in row k mod m, k < h, each scaled by its S^j. */
static void cosets_begin(const lde_mask *mk, size_t n, size_t m) {
    for (size_t j = 0; j < mk->ncosets; j++) {
        const coset_fold *cf = &mk->cosets[j];
        size_t rows = (size_t)1 << cf->log_m;
        memset(cf->values, 0, rows * m * sizeof *cf->values);
        for (size_t k = 0; k < mk->h; k++) {
            uint32_t *hi = cf->values + ((n + k) & (rows - 1)) * m, *lo = cf->values + (k & (rows - 1)) * m;
            uint32_t s_hi = cf->spow[(n + k) >> cf->log_m], s_lo = bb_sub(0, cf->spow[k >> cf->log_m]);
            const uint32_t *r = mk->r + k * m;
            if (m == 1) {
                *hi = bb_add(*hi, bb_mul(*r, s_hi)), *lo = bb_add(*lo, bb_mul(*r, s_lo));
                continue;
            }
            zk_fp_mul_scalar_add(hi, r, s_hi, hi, m);
            zk_fp_mul_scalar_add(lo, r, s_lo, lo, m);
        }
    }
}

/* DIF rows r0 .. r0 + count - 1 (`rows`, m words each) into each coset's
 * fold.  Row r holds coeff_scale t_k, k = rev(r): with L = n / m', row
 * q L + l holds coefficient rev(l) m' + rev(q), so the rows of one q (L of
 * them, consecutive) all fold into row rev(q) of the fold, weighted by
 * S^rev(l) (coset_fold.weight): one weighted sum of consecutive rows a q,
 * the cosets of one size in the same pass (zk_fp_sum_rows_add), where a
 * multiply-add a row reduced every product.  A coset of m' >= n points
 * takes coefficient k in its row k (L = 1). */
_Static_assert(ZK_LDE_MAX_COSETS <= ZK_FP_MAX_WEIGHT_SETS,
               "cosets_fold_rows sums all the cosets of one size in one zk_fp_sum_rows_add pass");
static void cosets_fold_rows(const lde_mask *mk, const uint32_t *rows, size_t r0, size_t count, size_t n, size_t m) {
    unsigned bits = log2_exact(n);
    for (size_t j = 0; j < mk->ncosets; j++) {
        unsigned lm = mk->cosets[j].log_m;
        int seen = 0;
        for (size_t i = 0; i < j; i++) seen |= mk->cosets[i].log_m == lm;
        if (seen) continue;                          /* folded with the first of its size */
        size_t L = lm >= bits ? 1 : n >> lm, sets = 0;
        const coset_fold *cf[ZK_LDE_MAX_COSETS];
        for (size_t i = j; i < mk->ncosets; i++)
            if (mk->cosets[i].log_m == lm) cf[sets++] = &mk->cosets[i];
        for (size_t a = r0, e; a < r0 + count; a = e) {
            size_t q = a / L, row = lm >= bits ? rev_bits(a, bits) : rev_bits(q, lm);
            e = (q + 1) * L < r0 + count ? (q + 1) * L : r0 + count;
            uint32_t *outs[ZK_LDE_MAX_COSETS];
            const uint32_t *ws[ZK_LDE_MAX_COSETS];
            for (size_t i = 0; i < sets; i++) outs[i] = cf[i]->values + row * m, ws[i] = cf[i]->weight + (a - q * L);
            zk_fp_sum_rows_add(outs, ws, sets, rows + (a - r0) * m, e - a, m, m);
        }
    }
}

/* cosets_fold_rows for a whole column (m = 1: the narrow matrices'
 * columns, `d` its n DIF rows): one vector product of the column with the
 * weights tiled, then sums of L words, where a call a q would sum L words
 * a call. */
static int cosets_fold_column(const lde_mask *mk, const uint32_t *d, size_t n) {
    enum { TILE = 256 };
    unsigned bits = log2_exact(n);
    for (size_t j = 0; j < mk->ncosets; j++) {
        const coset_fold *cf = &mk->cosets[j];
        if (cf->log_m >= bits) { /* m >= n: coefficient k alone in row k */
            for (size_t r = 0; r < n; r++) {
                uint32_t *v = cf->values + rev_bits(r, bits);
                *v = bb_add(*v, bb_mul(d[r], cf->weight[0]));
            }
            continue;
        }
        size_t L = n >> cf->log_m, T = L > TILE ? L : TILE;
        uint32_t *w = malloc(2 * T * sizeof *w), *prod = w + T;
        if (!w) return -2;
        for (size_t l = 0; l < T; l++) w[l] = cf->weight[l % L];
        for (size_t r0 = 0; r0 < n; r0 += T) {
            size_t len = n - r0 < T ? n - r0 : T;
            zk_fp_mul(prod, d + r0, w, len);
            for (size_t q0 = 0; q0 < len; q0 += L) {
                uint32_t acc = 0, *v = cf->values + rev_bits((r0 + q0) / L, cf->log_m);
                for (size_t l = 0; l < L; l++) acc = bb_add(acc, prod[q0 + l]);
                *v = bb_add(*v, acc);
            }
        }
        free(w);
    }
    return 0;
}

/* spread_rows' step for one row r (coefficient k = rev(r), src its DIF
 * row, dst its B copies, f = pw[k]) of a masked LDE of m > 1 columns.  For
 * r = 0, dst is src: copy 0 is written after src's last read. */
static void spread_masked_row(const lde_mask *mk, uint32_t *dst, const uint32_t *src, size_t k, uint32_t f,
                              size_t m, size_t blowup) {
    uint32_t *last = dst + (blowup - 1) * m;
    zk_fp_mul_scalar(last, src, f, m);                      /* shift^k t_k */
    if (k >= mk->h) {
        for (size_t t = 0; t + 1 < blowup; t++) memcpy(dst + t * m, last, m * sizeof *dst);
        return;
    }
    uint32_t *sr = mk->scratch;                             /* shift^k r_k */
    zk_fp_mul_scalar(sr, mk->r + k * m, bb_pow(mk->shift, k), m);
    for (size_t t = 0; t + 1 < blowup; t++) {
        zk_fp_mul_scalar(dst + t * m, sr, mk->vanishing[t], m);
        zk_fp_add(dst + t * m, dst + t * m, last, m);
    }
    zk_fp_mul_scalar(sr, sr, mk->vanishing[blowup - 1], m);
    zk_fp_add(last, last, sr, m);
}

/* Natural order.  After DIF with w^-1, row r holds n c_rev(r).  The extended
 * DIT wants bit-reversed input of length N: coefficient i < n sits at row
 * rev_N(i) = rev_n(i) * B (B = blowup), every other row is zero.  The first
 * log2(B) DIT stages on such input just copy each nonzero row over its block
 * of B rows (each block's DFT is that of (v, 0, ..., 0), the constant v), so
 * we write B copies of n c_rev(r) shift^rev(r) / n and start the DIT at
 * h = B: no zero rows are ever transformed.
 *
 * Matrices run in three steps, each reading and writing its rows once:
 *   1. the DIF stages [b, n) in passes (the first copies the input in);
 *   2. block by block, b rows at a time: the DIF stages [1, b), the spread of
 *      its b rows over b B rows of out fused with the DIT stages B and 2B
 *      (spread_dit2: no row is written B times and read back), the DIT
 *      stages [4 B, b B), all while the block is in cache (b B rows within
 *      the budget);
 *   3. the DIT stages [b B, N) in passes.
 * Blocks go downwards: block i's b B output rows cover only the input rows
 * of blocks >= i, already consumed (block 0 spreads in place, row 0 last).
 * `visit` sees every output row once it is final (step 3's last pass, or
 * step 2 when there is no step 3). */
static void spread_rows(uint32_t *out, size_t r_hi, size_t count, size_t m, size_t blowup, unsigned bits,
                        const uint32_t *pw, const lde_mask *mk) {
    /* rows r_hi - 1 down to r_hi - count: row r moves to rows rB..rB+B-1 >= r */
    if (m == 1) { /* one element per row: no per-row calls; a mask's h rows after */
        for (size_t r = r_hi; r-- > r_hi - count;) {
            uint32_t v = bb_mul(out[r], pw[rev_bits(r, bits)]);
            for (size_t t = 0; t < blowup; t++) out[r * blowup + t] = v;
        }
        /* masked: (c_t - 1) shift^k r_k onto copy t of coefficient k < h */
        uint32_t sk = BB_ONE;                               /* shift^k */
        for (size_t k = 0; mk && k < mk->h; k++, sk = bb_mul(sk, mk->shift)) {
            size_t r = rev_bits(k, bits);
            if (r < r_hi - count || r >= r_hi) continue;
            uint32_t sr = bb_mul(mk->r[k], sk), *dst = out + r * blowup;
            for (size_t t = 0; t < blowup; t++) dst[t] = bb_add(dst[t], bb_mul(sr, mk->vanishing[t]));
        }
        return;
    }
    for (size_t r = r_hi; r-- > r_hi - count;) {
        uint32_t *src = out + r * m, *dst = out + r * blowup * m;
        uint32_t f = pw[rev_bits(r, bits)];
        if (mk) { /* masked: its own step (spread_masked_row) */
            spread_masked_row(mk, dst, src, rev_bits(r, bits), f, m, blowup);
            continue;
        }
        zk_fp_mul_scalar(dst + (blowup - 1) * m, src, f, m);
        for (size_t t = 0; t + 1 < blowup; t++) memcpy(dst + t * m, dst + (blowup - 1) * m, m * sizeof *dst);
    }
}

/* The spread of a block of rows [r0, r0 + count) (count a multiple of 4)
 * and the first two DIT stages (B and 2B) of its window, fused four rows at
 * a time (spread_quad): the rows of each quad are read once and their 4 B
 * outputs written once, where the spread wrote B copies of every row and
 * the stages read them back.  Two kinds of quad take the unfused steps
 * (spread_rows, then set_stage2 on their 4 B rows): the first of the
 * matrix, whose output rows overlap its own input rows (spread_rows orders
 * that overlap), and, masked, a quad holding a coefficient k < h, whose B
 * copies differ (spread_masked_row): h rows of N, the exception.  Quads go
 * downwards as spread_rows' rows do: quad q's output rows 4 q B.. lie at or
 * above every input row of the quads below it. */
static void spread_dit2(int isa, uint32_t *out, size_t r0, size_t count, size_t m, size_t blowup, unsigned bits,
                        const uint32_t *pw, const lde_mask *mk, const uint32_t *const *fwd) {
    unsigned lb = log2_exact(blowup);
    const uint32_t *tw_lo = fwd[lb], *tw_hi = fwd[lb + 1];
    for (size_t q = r0 + count; q > r0;) {
        q -= 4;
        uint32_t *dst = out + q * blowup * m, f[4];
        int plain = q > 0;
        for (size_t i = 0; i < 4; i++) {
            size_t k = rev_bits(q + i, bits);
            f[i] = pw[k];
            if (mk && k < mk->h) plain = 0;
        }
        if (plain) {
            spread_quad(isa, dst, out + q * m, f, blowup, m, tw_lo, tw_hi);
            continue;
        }
        spread_rows(out, q + 4, 4, m, blowup, bits, pw, mk);
        set_stage2(isa, dst, 4, 1, blowup * m, blowup, m, tw_lo, tw_hi, blowup, DIT);
    }
}

/* lde_natural with `mk` (NULL: unmasked) passed to every spread. */
static int lde_natural_masked(int isa, uint32_t *out, const uint32_t *in, size_t n, size_t m, unsigned log_blowup,
                              uint32_t shift, int from_coeffs, const uint32_t *const *fwd,
                              const uint32_t *const *inv, const zk_lde_visitor *visit, const lde_mask *mk) {
    size_t blowup = (size_t)1 << log_blowup, big = n << log_blowup;
    unsigned bits = log2_exact(n);
    uint32_t *pw = malloc(n * sizeof *pw);
    if (!pw) return -2;
    if (mk && mk->ncosets) cosets_begin(mk, n, m);
    /* from evaluations: the DIF leaves n c_rev(r), scaled by shift^rev(r) / n;
     * from coefficients: bit-reversed rows c_rev(r), scaled by shift^rev(r) */
    fill_powers(pw, n, from_coeffs ? BB_ONE : bb_inv(bb_encode((uint32_t)n)), shift);
    if (m == 1 || from_coeffs) {
        memcpy(out, in, n * m * sizeof *out);
        if (from_coeffs)
            bit_reverse_rows(out, n, m);
        else
            dif(isa, out, n, m, inv);
        if (m == 1) {
            if (mk && mk->ncosets && cosets_fold_column(mk, out, n)) {
                free(pw);
                return -2;
            }
            spread_rows(out, n, n, m, blowup, bits, pw, mk);
            dit(isa, out, big, m, blowup, fwd);
            if (visit) visit->rows(visit->ctx, out, 0, 1, big, big);
            free(pw);
            return 0;
        }
    }
    size_t b = 1, budget = budget_rows(m);
    while (2 * b <= n && 2 * b * blowup <= budget) b *= 2;
    if (from_coeffs)
        ; /* in place above */
    else if (b < n)
        dif_passes(isa, out, n, m, b, n, inv, in);
    else
        memcpy(out, in, n * m * sizeof *out);
    int last = b * blowup == big;
    for (size_t i = n / b; i-- > 0;) {
        uint32_t *window = out + i * b * blowup * m;
        if (b > 1 && !from_coeffs) set_stages(isa, out + i * b * m, m, 1, 1, b, 1, 0, inv, DIF);
        if (mk && mk->ncosets) cosets_fold_rows(mk, out + i * b * m, i * b, b, n, m);
        if (b >= 4) { /* spread + DIT stages B, 2B fused, then [4 B, b B) */
            spread_dit2(isa, out, i * b, b, m, blowup, bits, pw, mk, fwd);
            if (b > 4) set_stages(isa, window, m, blowup, 4 * blowup, b * blowup, blowup, 0, fwd, DIT);
        } else {
            spread_rows(out, (i + 1) * b, b, m, blowup, bits, pw, mk);
            if (b > 1) set_stages(isa, window, m, blowup, blowup, b * blowup, blowup, 0, fwd, DIT);
        }
        if (last && visit) visit->rows(visit->ctx, window, i * b * blowup, 1, b * blowup, b * blowup);
    }
    free(pw);
    if (!last) dit_passes(isa, out, big, m, b * blowup, big, fwd, visit);
    return 0;
}

static int lde_natural(int isa, uint32_t *out, const uint32_t *in, size_t n, size_t m, unsigned log_blowup,
                       uint32_t shift, int from_coeffs, const uint32_t *const *fwd,
                       const uint32_t *const *inv, const zk_lde_visitor *visit) {
    return lde_natural_masked(isa, out, in, n, m, log_blowup, shift, from_coeffs, fwd, inv, visit, 0);
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

/* lde_natural of a narrow matrix (see narrow): its columns transposed out,
 * each extended alone (whole vectors in every stage), the results
 * transposed back; `visit` then sees all the output rows at once.  The
 * order book's `book` domain commits 2- and 4-column matrices (its `stamp`
 * and LogUp column): 4-5x faster this way at 2^14 rows.  Masked (`mk`,
 * zk mode's commitments of those), each column with its column of r, its
 * small cosets' folds gathered per column and transposed back likewise. */
static int lde_by_columns(int isa, uint32_t *out, const uint32_t *in, size_t n, size_t m, unsigned log_blowup,
                          uint32_t shift, int from_coeffs, const uint32_t *const *fwd,
                          const uint32_t *const *inv, const zk_lde_visitor *visit, const lde_mask *mk) {
    size_t big = n << log_blowup, h = mk ? mk->h : 0, nf = 0;
    for (size_t j = 0; mk && j < mk->ncosets; j++) nf += (size_t)1 << mk->cosets[j].log_m;
    uint32_t *t = malloc(m * (n + big + h + nf) * sizeof *t);
    if (!t) return -2;
    uint32_t *cols_in = t, *cols_out = t + m * n;      /* column c: n values in, big out */
    uint32_t *cols_r = cols_out + m * big, *cols_f = cols_r + m * h; /* its h of r, its folds */
    zk_transpose_u32(cols_in, n, in, n, m);
    if (h) zk_transpose_u32(cols_r, h, mk->r, h, m);
    int rc = 0;
    for (size_t c = 0; c < m && !rc; c++) {
        lde_mask col, *one = 0;
        uint32_t word;
        if (mk) {
            col = *mk, one = &col, col.scratch = &word;
            col.r = h ? cols_r + c * h : 0;
            for (size_t j = 0, at = 0; j < mk->ncosets; at += m << mk->cosets[j].log_m, j++)
                col.cosets[j].values = cols_f + at + (c << mk->cosets[j].log_m);
        }
        rc = lde_natural_masked(isa, cols_out + c * big, cols_in + c * n, n, 1, log_blowup, shift, from_coeffs,
                                fwd, inv, 0, one);
    }
    if (!rc) {
        zk_transpose_u32(out, m, cols_out, m, big);
        for (size_t j = 0, at = 0; mk && j < mk->ncosets; at += m << mk->cosets[j].log_m, j++)
            zk_transpose_u32(mk->cosets[j].values, m, cols_f + at, m, (size_t)1 << mk->cosets[j].log_m);
        if (visit) visit->rows(visit->ctx, out, 0, 1, big, big);
    }
    free(t);
    return rc;
}

static int lde(uint32_t *out, const uint32_t *in, size_t rows, size_t cols, unsigned log_blowup,
               uint32_t shift, int bit_reverse_output, int from_coeffs, const zk_lde_visitor *visit) {
    const uint32_t *fwd[ZK_NTT_MAX_LOG], *inv[ZK_NTT_MAX_LOG];
    if (!valid_rows(rows) || log_blowup < ZK_NTT_MIN_LOG_BLOWUP || log_blowup > ZK_NTT_MAX_LOG_BLOWUP ||
        log2_exact(rows) + log_blowup > ZK_NTT_MAX_LOG)
        return -1;
    int rc = twiddles(log2_exact(rows) + log_blowup, fwd, inv);
    if (rc) return rc;
    int isa = zk_active_isa;
    if (!bit_reverse_output && narrow(rows, cols))
        return lde_by_columns(isa, out, in, rows, cols, log_blowup, shift, from_coeffs, fwd, inv, visit, 0);
    if (!bit_reverse_output)
        return lde_natural(isa, out, in, rows, cols, log_blowup, shift, from_coeffs, fwd, inv, visit);
    memcpy(out, in, rows * cols * sizeof *out);
    return lde_bit_reversed(isa, out, rows, cols, log_blowup, shift, fwd, inv);
}

int zk_lde(uint32_t *out, const uint32_t *in, size_t rows, size_t cols, unsigned log_blowup,
           uint32_t shift, int bit_reverse_output) {
    return lde(out, in, rows, cols, log_blowup, shift, bit_reverse_output, 0, 0);
}

int zk_ntt_extend(uint32_t *out, const uint32_t *coeffs, size_t rows, size_t cols, unsigned log_blowup,
                  uint32_t shift) {
    return lde(out, coeffs, rows, cols, log_blowup, shift, 0, 1, 0);
}

int zk_lde_visit(uint32_t *out, const uint32_t *in, size_t rows, size_t cols, unsigned log_blowup,
                 uint32_t shift, int from_coeffs, const zk_lde_visitor *visit) {
    return lde(out, in, rows, cols, log_blowup, shift, 0, from_coeffs, visit);
}

int zk_lde_visit_masked(uint32_t *out, const uint32_t *in, size_t rows, size_t cols, unsigned log_blowup,
                        uint32_t shift, int from_coeffs, const uint32_t *mask, size_t mask_rows,
                        const zk_coset *cosets, size_t ncosets, const zk_lde_visitor *visit) {
    const uint32_t *fwd[ZK_NTT_MAX_LOG], *inv[ZK_NTT_MAX_LOG];
    if (!mask_rows && !ncosets) return lde(out, in, rows, cols, log_blowup, shift, 0, from_coeffs, visit);
    if (!valid_rows(rows) || log_blowup < ZK_NTT_MIN_LOG_BLOWUP || log_blowup > ZK_NTT_MAX_LOG_BLOWUP ||
        log2_exact(rows) + log_blowup > ZK_NTT_MAX_LOG || mask_rows > rows ||
        (mask_rows && !mask) || ncosets > ZK_LDE_MAX_COSETS)
        return -1;
    for (size_t j = 0; j < ncosets; j++)
        if (cosets[j].log_m > ZK_NTT_MAX_LOG || !cosets[j].values) return -1;
    int rc = twiddles(log2_exact(rows) + log_blowup, fwd, inv);
    if (rc) return rc;
    /* S_j^i for i up to the block of f's highest coefficient, and the
     * weights of cosets_fold_rows, two tables a coset */
    size_t blowup = (size_t)1 << log_blowup, powers = 0, bits = log2_exact(rows);
    for (size_t j = 0; j < ncosets; j++)
        powers += ((rows + mask_rows - 1) >> cosets[j].log_m) + 1 + (cosets[j].log_m >= bits ? 1 : rows >> cosets[j].log_m);
    lde_mask mk = {mask, mask_rows, shift, {0}, from_coeffs ? BB_ONE : bb_inv(bb_encode((uint32_t)rows)), ncosets,
                   {{0}}, malloc((cols ? cols : 1) * sizeof(uint32_t))};
    uint32_t *spow = malloc((powers ? powers : 1) * sizeof *spow);
    if (!mk.scratch || !spow) {
        free(mk.scratch), free(spow);
        return -2;
    }
    for (size_t j = 0, at = 0; j < ncosets; j++) {
        unsigned lm = cosets[j].log_m;
        size_t count = ((rows + mask_rows - 1) >> lm) + 1, L = lm >= bits ? 1 : rows >> lm;
        uint32_t *pw = spow + at, *weight = pw + count;
        fill_powers(pw, count, BB_ONE, bb_pow(cosets[j].shift, (uint64_t)1 << lm));
        for (size_t l = 0; l < L; l++) weight[l] = bb_mul(mk.coeff_scale, pw[rev_bits(l, log2_exact(L))]);
        mk.cosets[j] = (coset_fold){cosets[j].values, pw, weight, lm};
        at += count + L;
    }
    uint32_t c = bb_pow(shift, rows), w_b = root_of_unity(log_blowup);
    for (size_t t = 0; t < blowup; t++, c = bb_mul(c, w_b)) mk.vanishing[t] = bb_sub(c, BB_ONE);
    int isa = zk_active_isa;
    rc = narrow(rows, cols) ? lde_by_columns(isa, out, in, rows, cols, log_blowup, shift, from_coeffs, fwd, inv,
                                             visit, &mk)
                            : lde_natural_masked(isa, out, in, rows, cols, log_blowup, shift, from_coeffs, fwd, inv,
                                                 visit, &mk);
    for (size_t j = 0; j < ncosets && !rc; j++)      /* each fold to its coset's values */
        rc = zk_ntt_forward(cosets[j].values, (size_t)1 << cosets[j].log_m, cols, cosets[j].shift);
    free(mk.scratch);
    free(spow);
    return rc;
}

size_t zk_ntt_set_cache_bytes(size_t bytes) {
    return atomic_exchange_explicit(&cache_bytes_set, bytes, memory_order_relaxed);
}

/*
 * constraint_vm.c — the block-wise constraint evaluator (see zk_vm.h).
 *
 * Each instruction is one call of an existing array kernel (field.c, ext4.c)
 * on a block of ZK_VM_BLOCK rows, so every ISA path and its correctness
 * argument carry over unchanged; the new arithmetic is the mixed
 * base/extension add and subtract, which touch one coefficient of four, the
 * lazy accumulation of base constraints (ACC_B, below), linear forms
 * (LIN_E) and operations with a constant operand (ADD_BC ... MUL_BC: the
 * field's own vector add, sub and product, the constant broadcast).
 */
#include <stdlib.h>
#include <string.h>

#include "field/bb_field.h"
#include "field/zk_ext4.h"
#include "field/zk_field.h"
#include "field/zk_matrix.h"
#include "zk_vm.h"

enum { B = ZK_VM_BLOCK };

/* Register kinds an instruction expects: 'b' base, 'e' extension, '-' none
 * (dst, a, b).  Index checks for the non-register fields are in valid(). */
static const char *kinds(uint32_t op) {
    switch (op) {
    case ZK_VM_LOAD_B: case ZK_VM_CONST_B: return "b--";
    case ZK_VM_LOAD_E: case ZK_VM_CONST_E: return "e--";
    case ZK_VM_ADD_BB: case ZK_VM_SUB_BB: case ZK_VM_MUL_BB: return "bbb";
    case ZK_VM_NEG_B: case ZK_VM_ADD_BC: case ZK_VM_SUB_BC: case ZK_VM_SUB_CB: case ZK_VM_MUL_BC: return "bb-";
    case ZK_VM_ADD_EE: case ZK_VM_SUB_EE: case ZK_VM_MUL_EE: return "eee";
    case ZK_VM_NEG_E: return "ee-";
    case ZK_VM_ADD_EB: case ZK_VM_SUB_EB: case ZK_VM_MUL_EB: return "eeb";
    case ZK_VM_SUB_BE: return "ebe";
    case ZK_VM_ACC_B: return "-b-";
    case ZK_VM_ACC_E: return "-e-";
    case ZK_VM_LIN_E: return "e--";
    case ZK_VM_TERM: return "-b-";
    default: return 0;
    }
}

/* Every opcode known, every register in range and of the kind its operand
 * needs (a base register holds a quarter of an extension one), every column,
 * constant and accumulator index in range. */
static int valid(const zk_vm_insn *code, size_t n_code, size_t n_regs, size_t n_base_regs, size_t n_base,
                 size_t n_ext, size_t n_consts, size_t n_accs) {
    if (n_base_regs > n_regs) return 0;
    for (size_t i = 0; i < n_code; i++) {
        const zk_vm_insn *c = &code[i];
        const char *k = kinds(c->op);
        if (!k) return 0;
        uint32_t field[3] = {c->dst, c->a, c->b};
        for (int f = 0; f < 3; f++) {
            if (k[f] == '-') continue;
            if (field[f] >= n_regs || (k[f] == 'b') != (field[f] < n_base_regs)) return 0;
        }
        switch (c->op) {
        case ZK_VM_LOAD_B:
            if (c->a >= n_base || c->b > 1) return 0;
            break;
        case ZK_VM_LOAD_E:
            if (c->a >= n_ext || c->b > 1) return 0;
            break;
        case ZK_VM_CONST_B:
        case ZK_VM_CONST_E:
            if (c->a >= n_consts) return 0;
            break;
        case ZK_VM_ADD_BC: case ZK_VM_SUB_BC: case ZK_VM_SUB_CB: case ZK_VM_MUL_BC:
            if (c->b >= n_consts) return 0;
            break;
        case ZK_VM_ACC_B:
        case ZK_VM_ACC_E:
            if (c->dst >= n_accs || c->b >= n_consts) return 0;
            break;
        case ZK_VM_LIN_E: /* its terms follow it, and are checked (and skipped) here */
            if (c->a >= n_consts || c->b > n_code - i - 1) return 0;
            for (size_t t = i + 1; t <= i + c->b; t++)
                if (code[t].op != ZK_VM_TERM || code[t].a >= n_base_regs || code[t].b >= n_consts) return 0;
            i += c->b;
            break;
        case ZK_VM_TERM: /* not after a LIN_E */
            return 0;
        }
    }
    return 1;
}

/* ext (n x 4) +/- base (n): only coefficient 0 changes.  sign: +1 ext + base,
 * -1 ext - base, 0 base - ext. */
static void mixed(uint32_t *out, const uint32_t *e, const uint32_t *b, size_t n, int sign) {
    for (size_t i = 0; i < n; i++) {
        uint32_t c0 = e[4 * i], c1 = e[4 * i + 1], c2 = e[4 * i + 2], c3 = e[4 * i + 3];
        if (sign > 0)
            out[4 * i] = bb_add(c0, b[i]), out[4 * i + 1] = c1, out[4 * i + 2] = c2, out[4 * i + 3] = c3;
        else if (sign < 0)
            out[4 * i] = bb_sub(c0, b[i]), out[4 * i + 1] = c1, out[4 * i + 2] = c2, out[4 * i + 3] = c3;
        else
            out[4 * i] = bb_sub(b[i], c0), out[4 * i + 1] = bb_neg(c1), out[4 * i + 2] = bb_neg(c2),
            out[4 * i + 3] = bb_neg(c3);
    }
}

/* n values of `width` words from rows start, start + 1, ... of a column with
 * `stride` values between rows, wrapping at `rows`: the extension loads, a
 * contiguous column's, and a shifted base load whose step is too long for
 * the block's window (below, gather). */
static void load(uint32_t *d, const uint32_t *col, size_t stride, size_t width, size_t start,
                 size_t n, size_t rows) {
    if (start >= rows) start -= rows;
    while (n) {
        size_t run = rows - start < n ? rows - start : n;
        const uint32_t *s = col + start * stride * width;
        if (stride == 1)
            memcpy(d, s, run * width * sizeof *d);
        else if (width == 1)
            for (size_t k = 0; k < run; k++) d[k] = s[k * stride];
        else
            for (size_t k = 0; k < run; k++) memcpy(d + 4 * k, s + 4 * k * stride, 4 * sizeof *d);
        d += run * width, n -= run, start = 0;
    }
}

/* The base columns a program loads, gathered once per block.
 *
 * A base column of a row-major LDE matrix is one word in every row (the
 * order book's: 126 words, 504 bytes, a row).  Loaded column by column, a
 * block's rows (256 x 504 bytes, 126 KiB: more than L1) are walked once per
 * column, each walk fetching a cache line per row for one word of it; that
 * strided walk was ~60 % of the evaluator's own time.  gather instead copies
 * the block's window of every strided column the program loads into
 * `scratch`, one row of it a column, with zk_gather_strided (field/matrix.c,
 * the tiled gather the LogUp entries and the transpose use): 16 columns at a
 * time over the window's rows, so the first column's loads bring a line of
 * each row into L1 (258 lines, 16 KiB) where the other fifteen find it, and
 * each line of the block comes from L2 about once.  A scratch row is in the
 * layout of a base register, so an instruction reads a gathered column's
 * values where they lie in it (resolved, below): LOAD_B of a gathered
 * column is no copy at all.
 *
 * Intended instructions: on the vector paths, a run of VEC_LANES adjacent
 * columns (a matrix's columns are; the zk `ops` domain's 528 are 33 runs of
 * 16) is transposed in registers (gather16_avx512, gather8_avx2): a row's
 * words of the run in one load, every word used.  Elsewhere (a column
 * alone, the scalar path) one scalar load (mov r32, [src + r stride]) a row
 * from a line already in L1 and a store into the column's scratch row,
 * whose rows start on a line (pitch is a whole number of lines).
 * vpgatherdd was tried for the strided loads and gained nothing
 * (docs/BENCHMARKS.md): the cost was the lines fetched, not the loads; the
 * transpose saves the loads and stores of single words.
 *
 * Correct because it reads exactly what load() reads: scratch row g, word w
 * is column which[g]'s value at row (r0 + w) mod rows, for w < n + ext
 * (ext = step when a gathered column is loaded shifted and step <= B, else
 * 0).  LOAD_B of that column reads words [shift, shift + n) of its row,
 * shift = step for a shifted load, else 0: rows (r0 + shift + k) mod rows
 * for k < n, which is load(.., r0 + shift, n, rows).  r0 + n <= rows and
 * ext < rows, so the window wraps at most once, where load() would. */
enum { LINE_WORDS = 16 };

/* Runs of gathered columns that lie side by side in one matrix (the next
 * column one word on, the same stride), VEC_LANES of them, are gathered by
 * a transpose in vector registers: VEC_LANES rows' words of the run loaded
 * as VEC_LANES vectors (one vmovdqu32 a row: every word of it used, where
 * the scalar gather loads a word at a time), transposed (4 shuffle stages
 * on AVX-512, 3 + 1 on AVX2) and stored as one vector a column.  A run's
 * columns hold one value each of the rows loaded, so the stores are what
 * the scalar loop would write: word r of column j's scratch row is the
 * column's value at row start + r. */
#if ZK_X86
ZK_AVX512 static void gather16_avx512(uint32_t *out, size_t pitch, const uint32_t *src, size_t stride,
                                      size_t n) {
    size_t r = 0;
    for (; r + 16 <= n; r += 16) {
        __m512i v[16], t[16];
        for (int i = 0; i < 16; i++) v[i] = _mm512_loadu_si512((const void *)(src + (r + i) * stride));
        for (int i = 0; i < 16; i += 2)
            t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]), t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
        /* v[4q + e], 128-bit lane L: rows 4q..4q+3 of column 4L + e */
        for (int i = 0; i < 16; i += 4) {
            v[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]), v[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
            v[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]), v[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
        }
        for (int e = 0; e < 4; e++) {
            __m512i a0 = _mm512_shuffle_i32x4(v[e], v[4 + e], 0x88), a1 = _mm512_shuffle_i32x4(v[e], v[4 + e], 0xDD);
            __m512i b0 = _mm512_shuffle_i32x4(v[8 + e], v[12 + e], 0x88);
            __m512i b1 = _mm512_shuffle_i32x4(v[8 + e], v[12 + e], 0xDD);
            _mm512_storeu_si512((void *)(out + e * pitch + r), _mm512_shuffle_i32x4(a0, b0, 0x88));
            _mm512_storeu_si512((void *)(out + (4 + e) * pitch + r), _mm512_shuffle_i32x4(a1, b1, 0x88));
            _mm512_storeu_si512((void *)(out + (8 + e) * pitch + r), _mm512_shuffle_i32x4(a0, b0, 0xDD));
            _mm512_storeu_si512((void *)(out + (12 + e) * pitch + r), _mm512_shuffle_i32x4(a1, b1, 0xDD));
        }
    }
    for (; r < n; r++)
        for (int j = 0; j < 16; j++) out[j * pitch + r] = src[r * stride + j];
}

ZK_AVX2 static void gather8_avx2(uint32_t *out, size_t pitch, const uint32_t *src, size_t stride, size_t n) {
    size_t r = 0;
    for (; r + 8 <= n; r += 8) {
        __m256i v[8], t[8];
        for (int i = 0; i < 8; i++) v[i] = _mm256_loadu_si256((const __m256i *)(src + (r + i) * stride));
        for (int i = 0; i < 8; i += 2)
            t[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]), t[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);
        for (int i = 0; i < 8; i += 4) {
            v[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]), v[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
            v[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]), v[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
        }
        for (int e = 0; e < 4; e++) {
            _mm256_storeu_si256((__m256i *)(out + e * pitch + r), _mm256_permute2x128_si256(v[e], v[4 + e], 0x20));
            _mm256_storeu_si256((__m256i *)(out + (4 + e) * pitch + r),
                                _mm256_permute2x128_si256(v[e], v[4 + e], 0x31));
        }
    }
    for (; r < n; r++)
        for (int j = 0; j < 8; j++) out[j * pitch + r] = src[r * stride + j];
}
#endif

/* The width of the transposing gather on `isa` (1: none). */
static size_t gather_lanes(int isa) {
#if ZK_X86
    return isa == ZK_ISA_AVX512 ? 16 : isa == ZK_ISA_AVX2 ? 8 : 1;
#else
    (void)isa;
    return 1;
#endif
}

/* run[g]: the gathered columns g, g+1, ... that gather_block takes at once
 * (lanes of them, side by side in one matrix), or 1. */
static void plan_runs(uint8_t *run, uint32_t *const *cols, const size_t *col_stride, const uint32_t *which,
                      size_t k, size_t lanes) {
    for (size_t g = 0; g < k;) {
        size_t j = 1;
        if (lanes > 1 && g + lanes <= k)
            while (j < lanes && cols[which[g + j]] == cols[which[g]] + j
                   && col_stride[which[g + j]] == col_stride[which[g]])
                j++;
        run[g] = j == lanes ? (uint8_t)lanes : 1;
        for (size_t i = 1; i < run[g]; i++) run[g + i] = 0;
        g += run[g];
    }
}

/* Rows start.. start+n-1 (no wrap) of the gathered columns into scratch
 * columns' words done.. */
static void gather_block(uint32_t *scratch, size_t pitch, uint32_t *const *cols, const size_t *col_stride,
                         const uint32_t *which, const uint8_t *run, size_t k, size_t start, size_t n, int isa) {
    for (size_t g = 0; g < k;) {
        const uint32_t *src = cols[which[g]] + start * col_stride[which[g]];
        uint32_t *out = scratch + g * pitch;
#if ZK_X86
        if (run[g] == 16 && isa == ZK_ISA_AVX512) {
            gather16_avx512(out, pitch, src, col_stride[which[g]], n);
            g += 16;
            continue;
        }
        if (run[g] == 8 && isa == ZK_ISA_AVX2) {
            gather8_avx2(out, pitch, src, col_stride[which[g]], n);
            g += 8;
            continue;
        }
#endif
        /* up to 16 single columns at once, as zk_gather_strided tiles them:
         * the first column's loads bring each row's line to L1 for the rest.
         * Column g always (a run this isa has no gather for, which plan_runs
         * with the same isa never makes, goes column by column: no spin),
         * then up to the next run. */
        size_t m = 0;
        const uint32_t *srcs[16];
        size_t strides[16];
        while (m < 16 && g + m < k && (m == 0 || run[g + m] == 1)) {
            srcs[m] = cols[which[g + m]] + start * col_stride[which[g + m]];
            strides[m] = col_stride[which[g + m]];
            m++;
        }
        zk_gather_strided(out, pitch, srcs, strides, n, m);
        g += m;
        (void)src;
    }
}

/* The block's window: rows start .. start+n-1, wrapping at `rows`, of every
 * gathered column. */
static void gather(uint32_t *scratch, size_t pitch, uint32_t *const *cols, const size_t *col_stride,
                   const uint32_t *which, const uint8_t *run, size_t k, size_t start, size_t n, size_t rows,
                   int isa) {
    size_t done = 0;
    if (start >= rows) start -= rows;
    while (done < n) {
        size_t len = rows - start < n - done ? rows - start : n - done;
        gather_block(scratch + done, pitch, cols, col_stride, which, run, k, start, len, isa);
        done += len, start = 0;
    }
}

/* The next block's rows, fetched while this block's program runs.
 *
 * The LDE matrices are tens of MiB: a block's rows come from memory, not
 * L2, and a strided walk of them (the gather's first column of each group,
 * or a LOAD_E) waits on each line in turn.  The program runs ~1,400
 * instructions a block, so spread over its instructions (a row or so each)
 * prefetcht1 asks for every line of the next block's rows that a gathered
 * or extension column reads, and the gather and the extension loads of the
 * next block find them in L2.  A prefetch is a hint: it never faults and
 * changes no value, so every path computes what it did.
 *
 * A span is the bytes [lo, hi) of row 0 that a run of columns of one
 * matrix reads (its columns within a line of each other, of one stride),
 * rows `stride` bytes apart. */
typedef struct {
    uintptr_t lo, hi;
    size_t stride;
} span;

/* spans with the column at p (`width` words a value, values `stride`
 * values apart) added: merged into the last span when it lies within a line
 * of it at the same stride; returns the span count */
static size_t add_span(span *s, size_t n, const uint32_t *p, size_t width, size_t stride) {
    uintptr_t lo = (uintptr_t)p, hi = lo + 4 * width;
    size_t bytes = 4 * width * stride;
    if (n && s[n - 1].stride == bytes && lo + 64 >= s[n - 1].lo && lo <= s[n - 1].hi + 64) {
        if (lo < s[n - 1].lo) s[n - 1].lo = lo;
        if (hi > s[n - 1].hi) s[n - 1].hi = hi;
        return n;
    }
    s[n] = (span){lo, hi, bytes};
    return n + 1;
}

static void prefetch_row(const span *s, size_t n, size_t row) {
    for (size_t i = 0; i < n; i++) {
        uintptr_t end = s[i].hi + row * s[i].stride;
        for (uintptr_t q = (s[i].lo + row * s[i].stride) & ~(uintptr_t)63; q < end; q += 64)
            __builtin_prefetch((const void *)q, 0, 2); /* prefetcht1 */
    }
}

/* ACC_B, the most frequent accumulation (a base constraint times its
 * extension weight), is kept lazily in 64-bit lanes, component-major:
 * lazy[c][k] += a[k] * s_c, folded back below p 2^32 after each add (a
 * product is below p^2 < p 2^32, so the sum stays below 2p 2^32 < 2^64, and
 * bb_fold64 subtracts p 2^32 when it is above).  One Montgomery reduction
 * per word at the end of the block (flush) then gives the sum of the
 * products' Montgomery forms.  Against scale_base + add (four Montgomery
 * products and four modular adds per row) this is four vpmuludq, vpaddq and
 * fold; ACC_B took a third of the evaluator's time. */
/* Rows from..n-1: the whole block on the scalar path, the tail after the
 * vector loops on the others. */
static void lazy_acc_from(uint64_t *lazy, const uint32_t *a, const uint32_t *s, size_t from, size_t n) {
    const uint64_t ph = (uint64_t)BB_P << 32;
    for (int c = 0; c < 4; c++) {
        uint64_t sc = s[c], *l = lazy + c * B;
        for (size_t k = from; k < n; k++) {
            uint64_t x = l[k] + (uint64_t)a[k] * sc;
            l[k] = x >= ph ? x - ph : x;
        }
    }
}

static void lazy_acc_scalar(uint64_t *lazy, const uint32_t *const *a, const uint32_t *const *s, size_t terms,
                            size_t n) {
    for (size_t t = 0; t < terms; t++) lazy_acc_from(lazy, a[t], s[t], 0, n);
}

/* LIN_E: d (n extension values) = c0 + sum_t s_t a_t for base registers a_t
 * and extension constants s_t, summed lazily as ACC_B is: per row and
 * component the products in a 64-bit lane, folded below p 2^32 after each
 * add, one Montgomery reduction at the end (the sum of the products'
 * Montgomery forms, as flush gives), then c0 added.  A LogUp denominator
 * alpha - (tag + sum_j beta_j v_j) is one of these: as MUL_EB and ADD_EE per
 * entry it was four Montgomery products and four modular adds per entry
 * and row, each through an extension register.  Rows from..n-1: the whole
 * block on the scalar path, the tail after the vector loop on the others. */
ZK_INLINE void lin_comb_from(uint32_t *d, const uint32_t *const *a, const uint32_t *const *s, size_t terms,
                          const uint32_t *c0, size_t from, size_t n) {
    const uint64_t ph = (uint64_t)BB_P << 32;
    for (size_t k = from; k < n; k++)
        for (int c = 0; c < 4; c++) {
            uint64_t x = 0;
            for (size_t t = 0; t < terms; t++) {
                x += (uint64_t)a[t][k] * s[t][c];
                x = x >= ph ? x - ph : x;
            }
            d[4 * k + c] = bb_add(bb_reduce(x), c0[c]);
        }
}

static void lin_comb_scalar(uint32_t *d, const uint32_t *const *a, const uint32_t *const *s, size_t terms,
                            const uint32_t *c0, size_t n) {
    lin_comb_from(d, a, s, terms, c0, 0, n);
}

/* ADD_BC, SUB_BC, SUB_CB, MUL_BC: d = a op k for one element k, rows
 * from..n-1 (the scalar path's block, the vector paths' tail). */
ZK_INLINE void with_const_from(uint32_t op, uint32_t *d, const uint32_t *a, uint32_t k, size_t from, size_t n) {
    for (size_t i = from; i < n; i++)
        d[i] = op == ZK_VM_ADD_BC   ? bb_add(a[i], k)
               : op == ZK_VM_SUB_BC ? bb_sub(a[i], k)
               : op == ZK_VM_SUB_CB ? bb_sub(k, a[i])
                                    : bb_mul(a[i], k);
}

static void with_const_scalar(uint32_t op, uint32_t *d, const uint32_t *a, uint32_t k, size_t n) {
    with_const_from(op, d, a, k, 0, n);
}

/* lazy_acc_avx2, lazy_acc_avx512, lin_comb_avx2, lin_comb_avx512, with_const_avx2, with_const_avx512 */
#define VEC_BODY "stark/constraint_vm_vec.inc"
#include "common/vec_widths.h"

/* acc[k] += the reduced lazy sums of rows k < n, and the lazy sums restart. */
static void flush(uint32_t *acc, uint64_t *lazy, size_t n) {
    for (int c = 0; c < 4; c++) {
        uint64_t *l = lazy + c * B;
        for (size_t k = 0; k < n; k++) acc[4 * k + c] = bb_add(acc[4 * k + c], bb_reduce(l[k])), l[k] = 0;
    }
}

/* An instruction with its operands resolved to memory: a register's block,
 * or for a value LOAD_B reads from a gathered column, that column's row of
 * the gathered block itself (no copy: the scratch row is laid out as a base
 * register, and nothing writes it while the block runs).  The block's
 * addresses do not move from block to block, so the program is resolved
 * once per run.  LIN_E's terms are in `lin` from index `aux`; LOAD_B,
 * LOAD_E and CONST_* keep their column or constant index in `aux`, ACC_*
 * the accumulator's. */
typedef struct {
    uint32_t op, shifted;
    uint32_t *d;
    const uint32_t *a, *b;
    size_t aux, terms;
} resolved;

int zk_vm_run(const zk_vm_insn *code, size_t n_code, size_t n_regs, size_t n_base_regs,
              uint32_t **base_cols, const size_t *base_stride, size_t n_base,
              uint32_t **ext_cols, const size_t *ext_stride, size_t n_ext,
              const uint32_t *consts, size_t n_consts, uint32_t **accs, size_t n_accs,
              size_t rows, size_t step) {
    if (!valid(code, n_code, n_regs, n_base_regs, n_base, n_ext, n_consts, n_accs) || (rows && step >= rows))
        return -1;
    /* base registers of one block, extension registers of four, and one scratch */
    size_t n_ext_regs = n_regs - n_base_regs;
    uint32_t *mem = malloc((n_base_regs + 4 * n_ext_regs + 4) * B * sizeof *mem);
    uint64_t *lazy = calloc(n_accs * 4 * B, sizeof *lazy); /* lazy[acc][c][k] */
    /* the strided base columns the program loads (gather, above): slot[a]
     * is input a's row of the gathered block, or n_base if it is not
     * gathered; which[] the inputs in slot order */
    size_t *slot = malloc((n_base + 1) * sizeof *slot);
    uint32_t *which = malloc((n_base + 1) * sizeof *which);
    uint8_t *g_run = malloc(n_base + 1);
    span *spans = malloc((n_base + n_ext + 1) * sizeof *spans);
    /* a LIN_E's terms: their registers and constants */
    const uint32_t **lin = malloc(2 * (n_code + 1) * sizeof *lin);
    resolved *prog = malloc((n_code + 1) * sizeof *prog);
    const uint32_t **at = malloc((n_regs + 1) * sizeof *at);   /* where each register's value is */
    if (!mem || !lazy || !slot || !which || !g_run || !spans || !lin || !prog || !at) {
        free(mem), free(lazy), free(slot), free(which), free(g_run), free(spans), free(lin), free(prog), free(at);
        return -2;
    }
    size_t n_which = 0, ext = 0;
    for (size_t a = 0; a < n_base; a++) slot[a] = n_base;
    for (size_t i = 0; i < n_code; i++) {
        const zk_vm_insn *c = &code[i];
        if (c->op != ZK_VM_LOAD_B || base_stride[c->a] == 1) continue;
        slot[c->a] = 0;   /* gathered; numbered below */
        if (c->b && step <= B) ext = step;
    }
    /* slots in input order: a matrix's columns in the order of its words */
    for (size_t a = 0; a < n_base; a++)
        if (slot[a] != n_base) slot[a] = n_which, which[n_which++] = (uint32_t)a;
    /* what the next block's prefetches cover: the gathered columns, and the
     * strided extension columns the program loads */
    size_t n_spans = 0;
    for (size_t g = 0; g < n_which; g++)
        n_spans = add_span(spans, n_spans, base_cols[which[g]], 1, base_stride[which[g]]);
    for (size_t e = 0; e < n_ext; e++) {
        int loaded = 0;
        for (size_t i = 0; i < n_code && !loaded; i++) loaded = code[i].op == ZK_VM_LOAD_E && code[i].a == e;
        if (loaded && ext_stride[e] != 1) n_spans = add_span(spans, n_spans, ext_cols[e], 4, ext_stride[e]);
    }
    int isa = zk_active_isa;      /* one path for the whole run */
    plan_runs(g_run, base_cols, base_stride, which, n_which, gather_lanes(isa));
    size_t pitch = (B + ext + LINE_WORDS - 1) / LINE_WORDS * LINE_WORDS;
    uint32_t *scratch = 0;
    if (n_which && posix_memalign((void **)&scratch, 4 * LINE_WORDS, n_which * pitch * sizeof *scratch)) {
        free(mem), free(lazy), free(slot), free(which), free(g_run), free(spans), free(lin), free(prog), free(at);
        return -2;
    }
    uint32_t *ext_mem = mem + n_base_regs * B, *tmp = ext_mem + n_ext_regs * 4 * B;
#define R(i) ((size_t)(i) < n_base_regs ? mem + (size_t)(i) * B : ext_mem + ((size_t)(i) - n_base_regs) * 4 * B)

    /* resolve: each operand to where its value is when the instruction runs */
    for (size_t r = 0; r < n_regs; r++) at[r] = R(r);
    size_t n_prog = 0, n_lin = 0;
    for (size_t i = 0; i < n_code; i++) {
        const zk_vm_insn *c = &code[i];
        resolved *o = &prog[n_prog];
        *o = (resolved){c->op, c->b, R(c->dst), 0, 0, c->a, 0};
        switch (c->op) {
        case ZK_VM_LOAD_B:
            if (slot[c->a] != n_base && (!c->b || ext == step)) {   /* read in place */
                at[c->dst] = scratch + slot[c->a] * pitch + (c->b ? step : 0);
                continue;
            }
            break;
        case ZK_VM_LOAD_E: case ZK_VM_CONST_B: case ZK_VM_CONST_E:
            break;
        case ZK_VM_ACC_B: {
            /* a run of ACC_Bs into one accumulator: one pass (lazy_acc) */
            size_t t = 0;
            for (; i + t < n_code && code[i + t].op == ZK_VM_ACC_B && code[i + t].dst == c->dst; t++)
                lin[n_lin + t] = at[code[i + t].a], lin[n_code + 1 + n_lin + t] = consts + 4 * code[i + t].b;
            o->d = 0, o->b = (const uint32_t *)(lazy + c->dst * 4 * B), o->aux = n_lin, o->terms = t;
            n_lin += t;
            i += t - 1;
            n_prog++;
            continue;
        }
        case ZK_VM_ACC_E:
            o->d = 0, o->a = at[c->a], o->aux = c->dst, o->b = consts + 4 * c->b;
            n_prog++;
            continue;
        case ZK_VM_ADD_BC: case ZK_VM_SUB_BC: case ZK_VM_SUB_CB: case ZK_VM_MUL_BC:
            o->a = at[c->a], o->b = consts + 4 * c->b;
            break;
        case ZK_VM_LIN_E:
            o->a = consts + 4 * c->a, o->aux = n_lin, o->terms = c->b;
            for (size_t t = 0; t < c->b; t++)
                lin[n_lin + t] = at[code[i + 1 + t].a], lin[n_code + 1 + n_lin + t] = consts + 4 * code[i + 1 + t].b;
            n_lin += c->b;
            i += c->b; /* its TERMs */
            break;
        default:
            o->a = at[c->a], o->b = at[c->b];
            break;
        }
        at[c->dst] = o->d;
        n_prog++;
    }

    for (size_t r0 = 0; r0 < rows; r0 += B) {
        size_t n = rows - r0 < B ? rows - r0 : B;
        if (n_which)
            gather(scratch, pitch, base_cols, base_stride, which, g_run, n_which, r0, n + ext, rows, isa);
        /* the next block's window (its rows and `ext` more), `per` rows of
         * it prefetched before each instruction */
        size_t next = r0 + B, pf = 0;
        size_t pf_rows = n_spans && next < rows ? (rows - next < B ? rows - next : B) + ext : 0;
        size_t per = (pf_rows + n_prog - 1) / (n_prog ? n_prog : 1);
        for (size_t i = 0; i < n_prog; i++) {
            const resolved *c = &prog[i];
            for (size_t end = pf + per < pf_rows ? pf + per : pf_rows; pf < end; pf++)
                prefetch_row(spans, n_spans, next + pf < rows ? next + pf : next + pf - rows);
            uint32_t *d = c->d;
            switch (c->op) {
            case ZK_VM_LOAD_B:
                load(d, base_cols[c->aux], base_stride[c->aux], 1, r0 + (c->shifted ? step : 0), n, rows);
                break;
            case ZK_VM_LOAD_E:
                load(d, ext_cols[c->aux], ext_stride[c->aux], 4, r0 + (c->shifted ? step : 0), n, rows);
                break;
            case ZK_VM_CONST_B:
                for (size_t k = 0; k < n; k++) d[k] = consts[4 * c->aux];
                break;
            case ZK_VM_CONST_E:
                for (size_t k = 0; k < n; k++) memcpy(d + 4 * k, consts + 4 * c->aux, 4 * sizeof *d);
                break;
            case ZK_VM_ADD_BB: zk_fp_add(d, c->a, c->b, n); break;
            case ZK_VM_SUB_BB: zk_fp_sub(d, c->a, c->b, n); break;
            case ZK_VM_MUL_BB: zk_fp_mul(d, c->a, c->b, n); break;
            case ZK_VM_NEG_B: zk_fp_neg(d, c->a, n); break;
            case ZK_VM_ADD_BC: case ZK_VM_SUB_BC: case ZK_VM_SUB_CB: case ZK_VM_MUL_BC:
                ZK_DISPATCH(isa, with_const, c->op, d, c->a, c->b[0], n);
                break;
            case ZK_VM_ADD_EE: zk_fp_add(d, c->a, c->b, 4 * n); break;
            case ZK_VM_SUB_EE: zk_fp_sub(d, c->a, c->b, 4 * n); break;
            case ZK_VM_MUL_EE: zk_ext4_mul(d, c->a, c->b, n); break;
            case ZK_VM_NEG_E: zk_fp_neg(d, c->a, 4 * n); break;
            case ZK_VM_ADD_EB: mixed(d, c->a, c->b, n, 1); break;
            case ZK_VM_SUB_EB: mixed(d, c->a, c->b, n, -1); break;
            case ZK_VM_SUB_BE: mixed(d, c->b, c->a, n, 0); break;
            case ZK_VM_MUL_EB: zk_ext4_mul_base(d, c->a, c->b, n); break;
            case ZK_VM_ACC_B:
                ZK_DISPATCH(isa, lazy_acc, (uint64_t *)c->b, lin + c->aux, lin + n_code + 1 + c->aux, c->terms, n);
                break;
            case ZK_VM_ACC_E:
                zk_ext4_mul_scalar(tmp, c->a, c->b, n);
                zk_fp_add(accs[c->aux] + 4 * r0, accs[c->aux] + 4 * r0, tmp, 4 * n);
                break;
            case ZK_VM_LIN_E:
                ZK_DISPATCH(isa, lin_comb, d, lin + c->aux, lin + n_code + 1 + c->aux, c->terms,
                            c->a, n);
                break;
            }
        }
        for (size_t k = 0; k < n_accs; k++) flush(accs[k] + 4 * r0, lazy + k * 4 * B, n);
    }
#undef R
    free(mem), free(lazy), free(slot), free(which), free(g_run), free(spans), free(lin), free(prog), free(at);
    free(scratch);
    return 0;
}

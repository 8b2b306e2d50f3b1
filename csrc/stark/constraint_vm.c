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
#include "column_window.h"
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
 * the block's window (below, zk_window_gather). */
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
 * strided walk was ~60 % of the evaluator's own time.  zk_window_gather
 * (column_window.c) instead copies the block's window of every strided
 * column the program loads into `scratch`, one row of it a column, 16
 * columns at a time over the window's rows, so the first column's loads
 * bring a line of each row into L1 (258 lines, 16 KiB) where the other
 * fifteen find it, and each line of the block comes from L2 about once.
 * A scratch row is in the layout of a base register, so an instruction
 * reads a gathered column's values where they lie in it (resolved,
 * below): LOAD_B of a gathered column is no copy at all.
 *
 * Intended instructions: column_window.c (a run of adjacent columns is
 * transposed in vector registers, a column alone copied a word a row).
 *
 * Correct because it reads exactly what load() reads: scratch row g, word w
 * is column which[g]'s value at row (r0 + w) mod rows, for w < n + ext
 * (ext = step when a gathered column is loaded shifted and step <= B, else
 * 0).  LOAD_B of that column reads words [shift, shift + n) of its row,
 * shift = step for a shifted load, else 0: rows (r0 + shift + k) mod rows
 * for k < n, which is load(.., r0 + shift, n, rows).  r0 + n <= rows and
 * ext < rows, so the window wraps at most once, where load() would.
 *
 * The next block's rows, fetched while this block's program runs.
 *
 * The LDE matrices are tens of MiB: a block's rows come from memory, not
 * L2, and a strided walk of them (the gather's first column of each group,
 * or a LOAD_E) waits on each line in turn.  The program runs ~1,400
 * instructions a block, so spread over its instructions (a row or so each)
 * prefetcht1 asks for every line of the next block's rows that a gathered
 * or extension column reads (zk_window_prefetch_row), and the gather and
 * the extension loads of the next block find them in L2.  A prefetch is a
 * hint: it never faults and changes no value, so every path computes what
 * it did. */

/* ACC_B, the most frequent accumulation (a base constraint times its
 * extension weight), is kept lazily in 64-bit lanes, component-major:
 * lazy[c][k] += a[k] * s_c, folded back below p 2^32 after each add (a
 * product is below p^2 < p 2^32, so the sum stays below 2p 2^32 < 2^64, and
 * bb_fold64 subtracts p 2^32 when it is above).  One Montgomery reduction
 * per word at the end of the block (flush) then gives the sum of the
 * products' Montgomery forms.  Against scale_base + add (four Montgomery
 * products and four modular adds per row) this is four vpmuludq, vpaddq and
 * fold; ACC_B took a third of the evaluator's time. */
/* The weights come as 64-bit words (w[4 t + c], term t's component c, zero
 * above bit 32), laid out once a run: the vector paths multiply by
 * VEC_SET1_64 of one of them, which the compiler emits as a broadcast from
 * memory (vpbroadcastq zmm, m64: a load-port uop), where a 32-bit weight
 * had to be loaded into a general register and broadcast from it
 * (vpbroadcastq zmm, r64: a shuffle-port uop more before each of the four
 * products of a term and row vector, on a port the products and folds
 * share).  Rows from..n-1: the whole block on the scalar
 * path, the tail after the vector loops on the others. */
static void lazy_acc_from(uint64_t *lazy, const uint32_t *a, const uint64_t *w, size_t from, size_t n) {
    const uint64_t ph = (uint64_t)BB_P << 32;
    for (int c = 0; c < 4; c++) {
        uint64_t sc = w[c], *l = lazy + c * B;
        for (size_t k = from; k < n; k++) {
            uint64_t x = l[k] + (uint64_t)a[k] * sc;
            l[k] = x >= ph ? x - ph : x;
        }
    }
}

static void lazy_acc_scalar(uint64_t *lazy, const uint32_t *const *a, const uint64_t *w, size_t terms, size_t n) {
    for (size_t t = 0; t < terms; t++) lazy_acc_from(lazy, a[t], w + 4 * t, 0, n);
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

/* acc[k] += the reduced lazy sums of rows from <= k < n, and the lazy sums
 * restart: the whole block on the scalar path, the tail after the vector
 * loop (flush_avx2, flush_avx512) on the others. */
ZK_INLINE void flush_from(uint32_t *acc, uint64_t *lazy, size_t from, size_t n) {
    for (int c = 0; c < 4; c++) {
        uint64_t *l = lazy + c * B;
        for (size_t k = from; k < n; k++) acc[4 * k + c] = bb_add(acc[4 * k + c], bb_reduce(l[k])), l[k] = 0;
    }
}

static void flush_scalar(uint32_t *acc, uint64_t *lazy, size_t n) {
    flush_from(acc, lazy, 0, n);
}

/* lazy_acc_avx2, lazy_acc_avx512, lin_comb_avx2, lin_comb_avx512, with_const_avx2, with_const_avx512,
 * flush_avx2, flush_avx512 */
#define VEC_BODY "stark/constraint_vm_vec.inc"
#include "common/vec_widths.h"

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
    /* the strided base columns the program loads (zk_window_gather, above): slot[a]
     * is input a's row of the gathered block, or n_base if it is not
     * gathered; which[] the inputs in slot order */
    size_t *slot = malloc((n_base + 1) * sizeof *slot);
    uint32_t *which = malloc((n_base + 1) * sizeof *which);
    uint8_t *g_run = malloc(n_base + 1);
    zk_window_span *spans = malloc((n_base + n_ext + 1) * sizeof *spans);
    /* a LIN_E's terms: their registers and constants */
    const uint32_t **lin = malloc(2 * (n_code + 1) * sizeof *lin);
    uint64_t *wide = malloc(4 * (n_code + 1) * sizeof *wide);   /* ACC_B's weights (lazy_acc_from) */
    resolved *prog = malloc((n_code + 1) * sizeof *prog);
    const uint32_t **at = malloc((n_regs + 1) * sizeof *at);   /* where each register's value is */
    if (!mem || !lazy || !slot || !which || !g_run || !spans || !lin || !wide || !prog || !at) {
        free(mem), free(lazy), free(slot), free(which), free(g_run), free(spans), free(lin), free(wide), free(prog),
            free(at);
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
        n_spans = zk_window_add_span(spans, n_spans, base_cols[which[g]], 1, base_stride[which[g]]);
    for (size_t e = 0; e < n_ext; e++) {
        int loaded = 0;
        for (size_t i = 0; i < n_code && !loaded; i++) loaded = code[i].op == ZK_VM_LOAD_E && code[i].a == e;
        if (loaded && ext_stride[e] != 1) n_spans = zk_window_add_span(spans, n_spans, ext_cols[e], 4, ext_stride[e]);
    }
    int isa = zk_active_isa;      /* one path for the whole run */
    zk_window_plan(g_run, base_cols, base_stride, which, n_which, zk_window_lanes(isa));
    size_t pitch = (B + ext + ZK_WINDOW_LINE_WORDS - 1) / ZK_WINDOW_LINE_WORDS * ZK_WINDOW_LINE_WORDS;
    uint32_t *scratch = 0;
    if (n_which && posix_memalign((void **)&scratch, 4 * ZK_WINDOW_LINE_WORDS, n_which * pitch * sizeof *scratch)) {
        free(mem), free(lazy), free(slot), free(which), free(g_run), free(spans), free(lin), free(wide), free(prog),
            free(at);
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
            for (; i + t < n_code && code[i + t].op == ZK_VM_ACC_B && code[i + t].dst == c->dst; t++) {
                lin[n_lin + t] = at[code[i + t].a];
                for (int k = 0; k < 4; k++) wide[4 * (n_lin + t) + k] = consts[4 * code[i + t].b + k];
            }
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
            zk_window_gather(scratch, pitch, base_cols, base_stride, which, g_run, n_which, r0, n + ext, rows, isa);
        /* the next block's window (its rows and `ext` more), `per` rows of
         * it prefetched before each instruction */
        size_t next = r0 + B, pf = 0;
        size_t pf_rows = n_spans && next < rows ? (rows - next < B ? rows - next : B) + ext : 0;
        size_t per = (pf_rows + n_prog - 1) / (n_prog ? n_prog : 1);
        for (size_t i = 0; i < n_prog; i++) {
            const resolved *c = &prog[i];
            for (size_t end = pf + per < pf_rows ? pf + per : pf_rows; pf < end; pf++)
                zk_window_prefetch_row(spans, n_spans, next + pf < rows ? next + pf : next + pf - rows);
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
                ZK_DISPATCH(isa, lazy_acc, (uint64_t *)c->b, lin + c->aux, wide + 4 * c->aux, c->terms, n);
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
        for (size_t k = 0; k < n_accs; k++) ZK_DISPATCH(isa, flush, accs[k] + 4 * r0, lazy + k * 4 * B, n);
    }
#undef R
    free(mem), free(lazy), free(slot), free(which), free(g_run), free(spans), free(lin), free(wide), free(prog), free(at);
    free(scratch);
    return 0;
}

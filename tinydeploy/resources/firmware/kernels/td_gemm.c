/* FULLY_CONNECTED (td_fully_connected.h) and ungrouped CONV_2D (td_conv.h's
 * td_conv_gemm_s8) as one matrix product: each output pixel (or
 * batch row) is a column x of `depth` int8 values; out[o] = requantize(
 * bias[o] + sum_k w[o][k] * x[k]).
 *
 * The code generator folds the input offset into the bias and lays the
 * weights out for the inner loop: rows in blocks of four, interleaved by
 * 4-byte chunks ([r0 k0..3][r1 k0..3][r2 k0..3][r3 k0..3][r0 k4..7]...), the
 * last rows % 4 plain, every row padded to a multiple of 4 with zero weights,
 * stored as words (one chunk of one row each).
 *
 * Columns are unpacked once to 16-bit pairs in the order SXTB16 unpacks the
 * weights ((k0, k2), (k1, k3), ...), two columns interleaved chunk by chunk,
 * so the inner loop unpacks only weights and each weight serves two pixels.
 *
 * A convolution gathers each pixel's window (im2col), padding taps filled
 * with the input zero point: they then add w * (zp - zp) = 0 with the folded
 * bias, exactly as the reference skips them. */
#include "td_fully_connected.h"
#include "td_conv.h"
#include "td_fixedpoint.h"
#include "td_simd.h"
#include "td_output.h"

static inline td_output_stage output_stage_of(const td_gemm_params *g)
{
    const td_output_stage o = {g->rescale, g->per_channel ? 1 : 0, g->output_offset, g->act_min, g->act_max};
    return o;
}

/* Requantize one accumulator (the single-row FULLY_CONNECTED path). */
static TD_ALWAYS_INLINE int8_t requantize(const td_output_stage *o, int32_t acc, int32_t row, int mode)
{
    return td_output(o->rescale + row * o->step, acc, o->offset, o->lo, o->hi, mode);
}

/* Unpack `depth` int8 values (a multiple of 4) of one or two columns into
 * `packed`: per 4-value chunk, (k0, k2) (k1, k3) of a, then of b. */
static void pack_columns(const int8_t *a, const int8_t *b, int32_t depth, uint32_t *packed)
{
    for (int32_t k = 0; k < depth; k += 4) {
        const uint32_t va = td_load4(a + k);
        *packed++ = td_sxtb16(va);
        *packed++ = td_sxtb16_odd(va);
        if (b) {
            const uint32_t vb = td_load4(b + k);
            *packed++ = td_sxtb16(vb);
            *packed++ = td_sxtb16_odd(vb);
        }
    }
}

/* acc += one 4-value chunk of x (unpacked as xe, xo) times one row's chunk w. */
static inline int32_t chunk_dot(uint32_t xe, uint32_t xo, uint32_t w, int32_t acc)
{
    return td_smlad(xo, td_sxtb16_odd(w), td_smlad(xe, td_sxtb16(w), acc));
}

/* Four rows' accumulators (kept in registers; -O2 does not unroll loops over an array). */
typedef struct {
    int32_t a0, a1, a2, a3;
} acc4;

/* acc += one chunk (unpacked as xe, xo) times a 4-row block's words w[0..3]. */
static inline void block4_chunk(uint32_t xe, uint32_t xo, const uint32_t *w, acc4 *acc)
{
    acc->a0 = chunk_dot(xe, xo, w[0], acc->a0);
    acc->a1 = chunk_dot(xe, xo, w[1], acc->a1);
    acc->a2 = chunk_dot(xe, xo, w[2], acc->a2);
    acc->a3 = chunk_dot(xe, xo, w[3], acc->a3);
}

static TD_ALWAYS_INLINE void store4(const td_output_stage *o, const acc4 *acc, int32_t row, int8_t *out, int mode)
{
    out[row] = requantize(o, acc->a0, row, mode);
    out[row + 1] = requantize(o, acc->a1, row + 1, mode);
    out[row + 2] = requantize(o, acc->a2, row + 2, mode);
    out[row + 3] = requantize(o, acc->a3, row + 3, mode);
}

/* Two rows (a, b) of a 4-row block against two packed columns (0, 1): per chunk one word of
 * each row's weights (a chunk of the block is 4 words) and x[0..3]. On DSP cores the loop is
 * assembly: three LDRD, four SXTB16 and eight SMLAD per 16 multiply-accumulates. */
static TD_ALWAYS_INLINE void rows2_columns2(const uint32_t *w, const uint32_t *x, int32_t chunks, int32_t *a0,
                                           int32_t *a1, int32_t *b0, int32_t *b1)
{
    int32_t ra0 = *a0, ra1 = *a1, rb0 = *b0, rb1 = *b1;
#if TD_DSP
    const uint32_t *end = x + 4 * chunks;
    uint32_t wa, wb, ua, ub, x0, x1;
    __asm__("1:\n\t"
            "ldrd    %[wa], %[wb], [%[w]], #16\n\t"
            "ldrd    %[x0], %[x1], [%[x]], #8\n\t"
            "sxtb16  %[ua], %[wa]\n\t"
            "sxtb16  %[wa], %[wa], ror #8\n\t"
            "smlad   %[ra0], %[x0], %[ua], %[ra0]\n\t"
            "smlad   %[ra0], %[x1], %[wa], %[ra0]\n\t"
            "sxtb16  %[ub], %[wb]\n\t"
            "sxtb16  %[wb], %[wb], ror #8\n\t"
            "smlad   %[rb0], %[x0], %[ub], %[rb0]\n\t"
            "smlad   %[rb0], %[x1], %[wb], %[rb0]\n\t"
            "ldrd    %[x0], %[x1], [%[x]], #8\n\t"
            "smlad   %[ra1], %[x0], %[ua], %[ra1]\n\t"
            "smlad   %[ra1], %[x1], %[wa], %[ra1]\n\t"
            "smlad   %[rb1], %[x0], %[ub], %[rb1]\n\t"
            "smlad   %[rb1], %[x1], %[wb], %[rb1]\n\t"
            "cmp     %[x], %[end]\n\t"
            "bne     1b"
            : [ra0] "+r"(ra0), [ra1] "+r"(ra1), [rb0] "+r"(rb0), [rb1] "+r"(rb1), [w] "+r"(w), [x] "+r"(x),
              [wa] "=&r"(wa), [wb] "=&r"(wb), [ua] "=&r"(ua), [ub] "=&r"(ub), [x0] "=&r"(x0), [x1] "=&r"(x1)
            : [end] "r"(end)
            : "cc", "memory");
#else
    /* stops at the last chunk (chunks >= 1): stepping past it would take w + 2 past the block */
    for (const uint32_t *last = x + 4 * (chunks - 1);; x += 4, w += 4) {
        const uint32_t wa = w[0], wb = w[1], x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
        uint32_t u = td_sxtb16(wa);
        ra0 = td_smlad(x0, u, ra0);
        ra1 = td_smlad(x2, u, ra1);
        u = td_sxtb16_odd(wa);
        ra0 = td_smlad(x1, u, ra0);
        ra1 = td_smlad(x3, u, ra1);
        u = td_sxtb16(wb);
        rb0 = td_smlad(x0, u, rb0);
        rb1 = td_smlad(x2, u, rb1);
        u = td_sxtb16_odd(wb);
        rb0 = td_smlad(x1, u, rb0);
        rb1 = td_smlad(x3, u, rb1);
        if (x == last) {
            break;
        }
    }
#endif
    *a0 = ra0, *a1 = ra1, *b0 = rb0, *b1 = rb1;
}

/* Accumulators of two packed columns against all rows, interleaved: acc[2 * row + column]. */
static void accumulate_two(const td_gemm_params *g, const uint32_t *x, int32_t *acc)
{
    const int32_t chunks = g->depth >> 2;
    const uint32_t *w = g->weights;
    int32_t row = 0;
    for (; row + 4 <= g->rows; row += 4, w += 4 * chunks, acc += 8) {
        int32_t r0 = g->bias[row], r1 = g->bias[row + 1], r2 = g->bias[row + 2], r3 = g->bias[row + 3];
        int32_t s0 = r0, s1 = r1, s2 = r2, s3 = r3;
        rows2_columns2(w, x, chunks, &r0, &s0, &r1, &s1);            /* rows 0-1 of the block */
        rows2_columns2(w + 2, x, chunks, &r2, &s2, &r3, &s3);        /* rows 2-3 */
        acc[0] = r0, acc[1] = s0, acc[2] = r1, acc[3] = s1, acc[4] = r2, acc[5] = s2, acc[6] = r3, acc[7] = s3;
    }
    for (; row < g->rows; ++row, w += chunks, acc += 2) {
        int32_t a = g->bias[row], b = a;
        const uint32_t *xp = x;
        for (int32_t n = 0; n < chunks; ++n, xp += 4) {
            const uint32_t ue = td_sxtb16(w[n]), uo = td_sxtb16_odd(w[n]);
            a = td_smlad(xp[1], uo, td_smlad(xp[0], ue, a));
            b = td_smlad(xp[3], uo, td_smlad(xp[2], ue, b));
        }
        acc[0] = a, acc[1] = b;
    }
}

/* acc += one 4-row block's weights for `chunks` chunks of the int8 column x, read in place
 * (any alignment). On DSP cores the loop is written in assembly: post-indexed loads and
 * no spills, 21 instructions per 16 multiply-accumulates plus 2 per chunk for the loop. */
static TD_NOINLINE void block4_bytes(const int8_t *x, const uint32_t *w, int32_t chunks, acc4 *acc)
{
#if TD_DSP
    int32_t a0 = acc->a0, a1 = acc->a1, a2 = acc->a2, a3 = acc->a3;
    if (chunks > 0) {
        const uint32_t *end = w + 4 * chunks;
        uint32_t xe, xo, w0, w1, t;
        __asm__("1:\n\t"
                "ldr     %[xe], [%[x]], #4\n\t"
                "ldrd    %[w0], %[w1], [%[w]], #8\n\t"
                "sxtb16  %[xo], %[xe], ror #8\n\t"
                "sxtb16  %[xe], %[xe]\n\t"
                "sxtb16  %[t], %[w0]\n\t"
                "smlad   %[a0], %[xe], %[t], %[a0]\n\t"
                "sxtb16  %[t], %[w0], ror #8\n\t"
                "smlad   %[a0], %[xo], %[t], %[a0]\n\t"
                "sxtb16  %[t], %[w1]\n\t"
                "smlad   %[a1], %[xe], %[t], %[a1]\n\t"
                "sxtb16  %[t], %[w1], ror #8\n\t"
                "smlad   %[a1], %[xo], %[t], %[a1]\n\t"
                "ldrd    %[w0], %[w1], [%[w]], #8\n\t"
                "sxtb16  %[t], %[w0]\n\t"
                "smlad   %[a2], %[xe], %[t], %[a2]\n\t"
                "sxtb16  %[t], %[w0], ror #8\n\t"
                "smlad   %[a2], %[xo], %[t], %[a2]\n\t"
                "sxtb16  %[t], %[w1]\n\t"
                "smlad   %[a3], %[xe], %[t], %[a3]\n\t"
                "sxtb16  %[t], %[w1], ror #8\n\t"
                "smlad   %[a3], %[xo], %[t], %[a3]\n\t"
                "cmp     %[w], %[end]\n\t"
                "bne     1b"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w),
                  [xe] "=&r"(xe), [xo] "=&r"(xo), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)
                : [end] "r"(end)
                : "cc", "memory");
    }
    acc->a0 = a0, acc->a1 = a1, acc->a2 = a2, acc->a3 = a3;
#else
    acc4 a = *acc;
    for (const uint32_t *end = w + 4 * chunks; w < end; w += 4, x += 4) {
        const uint32_t xv = td_load4(x);
        block4_chunk(td_sxtb16(xv), td_sxtb16_odd(xv), w, &a);
    }
    *acc = a;
#endif
}

/* Accumulators of one packed column against all rows, four rows at a time. */
static void accumulate_one(const td_gemm_params *g, const uint32_t *x, int32_t *acc)
{
    const int32_t chunks = g->depth >> 2;
    const uint32_t *w = g->weights;
    int32_t row = 0;
    for (; row + 4 <= g->rows; row += 4, acc += 4) {
        acc4 a = {g->bias[row], g->bias[row + 1], g->bias[row + 2], g->bias[row + 3]};
        const uint32_t *xp = x;
        for (int32_t n = chunks; n > 0; --n, w += 4, xp += 2) {
            block4_chunk(xp[0], xp[1], w, &a);
        }
        acc[0] = a.a0, acc[1] = a.a1, acc[2] = a.a2, acc[3] = a.a3;
    }
    for (; row < g->rows; ++row, ++acc) {
        int32_t a = g->bias[row];
        const uint32_t *xp = x;
        for (int32_t n = chunks; n > 0; --n, ++w, xp += 2) {
            a = chunk_dot(xp[0], xp[1], *w, a);
        }
        *acc = a;
    }
}

/* One int8 column of `length` values read in place (no scratch), four rows at a time. */
static TD_ALWAYS_INLINE void gemm_bytes(const td_gemm_params *g, const int8_t *x, int32_t length, int8_t *out,
                                        int mode)
{
    const int32_t full = length >> 2, tail = length & 3, chunks = full + (tail != 0);
    const td_output_stage o = output_stage_of(g);
    const uint32_t *w = g->weights;
    const uint32_t x_tail = td_load_tail(x + 4 * full, tail);
    int32_t row = 0;
    for (; row + 4 <= g->rows; row += 4, w += 4 * chunks) {
        acc4 acc = {g->bias[row], g->bias[row + 1], g->bias[row + 2], g->bias[row + 3]};
        block4_bytes(x, w, full, &acc);
        if (tail) {
            block4_chunk(td_sxtb16(x_tail), td_sxtb16_odd(x_tail), w + 4 * full, &acc);
        }
        store4(&o, &acc, row, out, mode);
    }
    for (; row < g->rows; ++row, w += chunks) {
        int32_t acc = g->bias[row];
        for (int32_t n = 0; n < chunks; ++n) {
            const uint32_t xv = n < full ? td_load4(x + 4 * n) : x_tail;
            acc = chunk_dot(td_sxtb16(xv), td_sxtb16_odd(xv), w[n], acc);
        }
        out[row] = requantize(&o, acc, row, mode);
    }
}

/* Scratch layout shared by both ops, the one definition of its size (gemm_scratch_bytes):
 * [packed: 4 * depth][column a: depth][column b: depth][accumulators: 2 * rows int32].
 * `depth` is a multiple of 4, so every area is 4-byte aligned. */
static uint32_t *packed_area(int8_t *scratch) { return (uint32_t *)(void *)scratch; }

/* Column 0 (a) or 1 (b): one gathered window or padded input row of `depth` int8 values. */
static int8_t *column_area(const td_gemm_params *g, int8_t *scratch, int32_t column)
{
    return scratch + (4 + column) * g->depth;
}

static int32_t accumulator_offset(const td_gemm_params *g) { return 6 * g->depth; }

static int32_t *accumulator_area(const td_gemm_params *g, int8_t *scratch)
{
    return (int32_t *)(void *)(scratch + accumulator_offset(g));
}

static int32_t gemm_scratch_bytes(const td_gemm_params *g)
{
    return accumulator_offset(g) + 2 * g->rows * (int32_t)sizeof(int32_t);
}

int32_t td_fully_connected_scratch_bytes(const td_fully_connected_params *p)
{
    return p->batches == 1 ? 0 : gemm_scratch_bytes(&p->gemm);     /* one row is read in place */
}

int32_t td_conv_gemm_scratch_bytes(const td_conv_gemm_params *p)
{
    return gemm_scratch_bytes(&p->gemm);
}

/* Columns a (and b, when not NULL) of `depth` int8 values through the scratch buffer. */
static void gemm_columns(const td_gemm_params *g, const int8_t *a, const int8_t *b, int8_t *out_a, int8_t *out_b,
                         int8_t *scratch)
{
    uint32_t *packed = packed_area(scratch);
    int32_t *acc = accumulator_area(g, scratch);
    const td_output_stage o = output_stage_of(g);
    const int32_t columns = b ? 2 : 1, distance = (int32_t)(out_b - out_a);
    pack_columns(a, b, g->depth, packed);
    if (b) {
        accumulate_two(g, packed, acc);
    } else {
        accumulate_one(g, packed, acc);
    }
    const int mode = td_output_mode(g->fast, g->act_min, g->act_max);
    if (mode == TD_OUTPUT_SATURATE && columns == 2) {
        td_requantize_channels(&o, acc, g->rows, 2, out_a, distance, TD_OUTPUT_SATURATE);
    } else if (mode == TD_OUTPUT_SATURATE) {
        td_requantize_channels(&o, acc, g->rows, 1, out_a, distance, TD_OUTPUT_SATURATE);
    } else if (mode == TD_OUTPUT_FAST) {
        td_requantize_channels(&o, acc, g->rows, columns, out_a, distance, TD_OUTPUT_FAST);
    } else {
        td_requantize_channels(&o, acc, g->rows, columns, out_a, distance, TD_OUTPUT_EXACT);
    }
}

void td_fully_connected_s8(const td_fully_connected_params *p, const int8_t *in, int8_t *out, int8_t *scratch)
{
    const int32_t depth = p->gemm.depth, rows = p->gemm.rows;
    if (p->batches == 1) {                                /* one row: read in place, no scratch */
        const int mode = td_output_mode(p->gemm.fast, p->gemm.act_min, p->gemm.act_max);
        if (mode == TD_OUTPUT_SATURATE) {
            gemm_bytes(&p->gemm, in, p->in_depth, out, TD_OUTPUT_SATURATE);
        } else if (mode == TD_OUTPUT_FAST) {
            gemm_bytes(&p->gemm, in, p->in_depth, out, TD_OUTPUT_FAST);
        } else {
            gemm_bytes(&p->gemm, in, p->in_depth, out, TD_OUTPUT_EXACT);
        }
        return;
    }
    int8_t *col[2] = {column_area(&p->gemm, scratch, 0), column_area(&p->gemm, scratch, 1)};
    for (int32_t b = 0; b < p->batches; b += 2) {
        const int two = b + 1 < p->batches;
        const int8_t *x[2] = {in + b * p->in_depth, in + (b + 1) * p->in_depth};
        for (int32_t i = 0; i < 1 + two && p->in_depth != depth; ++i) {   /* pad to the weights' multiple of 4 */
            for (int32_t k = 0; k < depth; ++k) {
                col[i][k] = k < p->in_depth ? x[i][k] : 0;
            }
            x[i] = col[i];
        }
        gemm_columns(&p->gemm, x[0], two ? x[1] : 0, out + b * rows, out + (b + 1) * rows, scratch);
    }
}

static void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, src += 4, dst += 4) {
        const uint32_t v = td_load4(src);
        memcpy(dst, &v, 4);
    }
    while (n-- > 0) {
        *dst++ = *src++;
    }
}

static void fill_bytes(int8_t *dst, int8_t value, int32_t n)
{
    while (n-- > 0) {
        *dst++ = value;
    }
}

/* Copy the window of the output pixel at (oy, ox) into `col`, [fy][fx][c], padding with `pad`. */
static void gather_window(const td_window *w, const int8_t *image, int32_t oy, int32_t ox, int8_t pad, int8_t *col)
{
    const int32_t iy0 = oy * w->stride_h - w->pad_h, ix0 = ox * w->stride_w - w->pad_w;
    const int32_t c = w->in_c, row = w->filter_w * c;
    const int whole_rows = w->dilation_w == 1 && ix0 >= 0 && ix0 + w->filter_w <= w->in_w;
    for (int32_t fy = 0; fy < w->filter_h; ++fy, col += row) {
        const int32_t iy = iy0 + fy * w->dilation_h;
        if (iy < 0 || iy >= w->in_h) {
            fill_bytes(col, pad, row);
        } else if (whole_rows) {
            copy_bytes(col, image + (iy * w->in_w + ix0) * c, row);
        } else {
            for (int32_t fx = 0; fx < w->filter_w; ++fx) {
                const int32_t ix = ix0 + fx * w->dilation_w;
                if (ix < 0 || ix >= w->in_w) {
                    fill_bytes(col + fx * c, pad, c);
                } else {
                    copy_bytes(col + fx * c, image + (iy * w->in_w + ix) * c, c);
                }
            }
        }
    }
}

void td_conv_gemm_s8(const td_conv_gemm_params *p, const int8_t *in, int8_t *out, int8_t *scratch)
{
    const td_window *w = &p->win;
    const int32_t depth = p->gemm.depth, window = w->filter_h * w->filter_w * w->in_c;
    const int direct = w->filter_h == 1 && w->filter_w == 1 && window == depth;   /* 1x1: read pixels in place */
    const int32_t pixels = w->out_h * w->out_w;
    int8_t *col[2] = {column_area(&p->gemm, scratch, 0), column_area(&p->gemm, scratch, 1)};
    if (!direct) {
        fill_bytes(col[0] + window, 0, depth - window);    /* zero weights pad the window to a multiple of 4 */
        fill_bytes(col[1] + window, 0, depth - window);
    }
    for (int32_t b = 0; b < w->batches; ++b) {
        const int8_t *image = in + b * w->in_h * w->in_w * w->in_c;
        for (int32_t i = 0; i < pixels; i += 2) {
            const int two = i + 1 < pixels;
            const int8_t *x[2];
            for (int32_t j = 0; j < 1 + two; ++j) {
                const int32_t oy = (i + j) / w->out_w, ox = (i + j) % w->out_w;
                if (direct) {
                    x[j] = image + (oy * w->stride_h * w->in_w + ox * w->stride_w) * w->in_c;
                } else {
                    gather_window(w, image, oy, ox, (int8_t)p->pad_value, col[j]);
                    x[j] = col[j];
                }
            }
            gemm_columns(&p->gemm, x[0], two ? x[1] : 0, out, out + w->out_c, scratch);
            out += (1 + two) * w->out_c;
        }
    }
}

/* FULLY_CONNECTED and CONV_2D as one matrix product: each output pixel (or
 * batch row) is a column x of `depth` int8 values; out[o] = requantize(
 * bias[o] + sum_k w[o][k] * x[k]).
 *
 * The code generator folds the input offset into the bias and lays the
 * weights out for the inner loop: rows in blocks of four, interleaved by
 * 4-byte chunks ([r0 k0..3][r1 k0..3][r2 k0..3][r3 k0..3][r0 k4..7]...), the
 * last rows % 4 plain, every row padded to a multiple of 4 with zero weights.
 *
 * Columns are unpacked once to 16-bit pairs in the order SXTB16 unpacks the
 * weights ((k0, k2), (k1, k3), ...), two columns interleaved chunk by chunk,
 * so the inner loop unpacks only weights and each weight serves two pixels.
 *
 * A convolution gathers each pixel's window (im2col), padding taps filled
 * with the input zero point: they then add w * (zp - zp) = 0 with the folded
 * bias, exactly as the reference skips them. */
#include "td_kernels.h"
#include "td_fixedpoint.h"
#include "td_simd.h"
#include "td_output.h"

static inline td_output_stage output_stage_of(const td_gemm_params *g)
{
    const td_output_stage o = {g->requant, g->per_channel ? 2 : 0, g->output_offset, g->act_min, g->act_max};
    return o;
}

/* Requantize one accumulator (the single-row FULLY_CONNECTED path). */
static inline int8_t requantize(const td_output_stage *o, int32_t acc, int32_t row, int fast)
{
    const int32_t *rq = o->requant + row * o->step;
    const int32_t v = fast ? td_requantize_short(acc, rq[0], rq[1]) : td_requantize(acc, rq[0], rq[1]);
    return (int8_t)td_clamp(v + o->offset, o->lo, o->hi);
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

/* acc += one 4-value chunk of x (packed as xe, xo) times one row's chunk at w. */
static inline int32_t chunk_dot(uint32_t xe, uint32_t xo, const int8_t *w, int32_t acc)
{
    const uint32_t wv = td_load4(w);
    return td_smlad(xo, td_sxtb16_odd(wv), td_smlad(xe, td_sxtb16(wv), acc));
}

/* Four rows' accumulators (kept in registers; -O2 does not unroll loops over an array). */
typedef struct {
    int32_t a0, a1, a2, a3;
} acc4;

static inline void chunk_x4(uint32_t xe, uint32_t xo, const int8_t *w, acc4 *acc)
{
    acc->a0 = chunk_dot(xe, xo, w, acc->a0);
    acc->a1 = chunk_dot(xe, xo, w + 4, acc->a1);
    acc->a2 = chunk_dot(xe, xo, w + 8, acc->a2);
    acc->a3 = chunk_dot(xe, xo, w + 12, acc->a3);
}

static inline void store4(const td_output_stage *o, const acc4 *acc, int32_t row, int8_t *out, int fast)
{
    out[row] = requantize(o, acc->a0, row, fast);
    out[row + 1] = requantize(o, acc->a1, row + 1, fast);
    out[row + 2] = requantize(o, acc->a2, row + 2, fast);
    out[row + 3] = requantize(o, acc->a3, row + 3, fast);
}

/* Accumulators of two packed columns against all rows, interleaved: acc[2 * row + column]. */
static void accumulate_two(const td_gemm_params *g, const uint32_t *x, int32_t *acc)
{
    const int32_t chunks = g->depth >> 2;
    const int8_t *w = g->weights;
    int32_t row = 0;
    for (; row + 4 <= g->rows; row += 4, w += 16 * chunks) {
        for (int32_t half = 0; half < 2; ++half) {          /* rows 0-1, then 2-3 of the block */
            const int32_t r = row + 2 * half;
            int32_t a0 = g->bias[r], a1 = g->bias[r + 1], b0 = a0, b1 = a1;
            const int8_t *wp = w + 8 * half;
            const uint32_t *xp = x;
            for (int32_t n = chunks; n > 0; --n, wp += 16, xp += 4) {
                const uint32_t w0 = td_load4(wp), w1 = td_load4(wp + 4);
                uint32_t u = td_sxtb16(w0);
                a0 = td_smlad(xp[0], u, a0);
                b0 = td_smlad(xp[2], u, b0);
                u = td_sxtb16_odd(w0);
                a0 = td_smlad(xp[1], u, a0);
                b0 = td_smlad(xp[3], u, b0);
                u = td_sxtb16(w1);
                a1 = td_smlad(xp[0], u, a1);
                b1 = td_smlad(xp[2], u, b1);
                u = td_sxtb16_odd(w1);
                a1 = td_smlad(xp[1], u, a1);
                b1 = td_smlad(xp[3], u, b1);
            }
            acc[2 * r] = a0, acc[2 * r + 1] = b0, acc[2 * r + 2] = a1, acc[2 * r + 3] = b1;
        }
    }
    for (; row < g->rows; ++row, w += 4 * chunks) {
        int32_t a = g->bias[row], b = a;
        const uint32_t *xp = x;
        for (int32_t n = 0; n < chunks; ++n, xp += 4) {
            const uint32_t wv = td_load4(w + 4 * n);
            const uint32_t ue = td_sxtb16(wv), uo = td_sxtb16_odd(wv);
            a = td_smlad(xp[1], uo, td_smlad(xp[0], ue, a));
            b = td_smlad(xp[3], uo, td_smlad(xp[2], ue, b));
        }
        acc[2 * row] = a, acc[2 * row + 1] = b;
    }
}

/* Accumulators of one packed column against all rows, four rows at a time. */
static void accumulate_one(const td_gemm_params *g, const uint32_t *x, int32_t *acc)
{
    const int32_t chunks = g->depth >> 2;
    const int8_t *w = g->weights;
    int32_t row = 0;
    for (; row + 4 <= g->rows; row += 4) {
        acc4 a = {g->bias[row], g->bias[row + 1], g->bias[row + 2], g->bias[row + 3]};
        const uint32_t *xp = x;
        for (int32_t n = chunks; n > 0; --n, w += 16, xp += 2) {
            chunk_x4(xp[0], xp[1], w, &a);
        }
        acc[row] = a.a0, acc[row + 1] = a.a1, acc[row + 2] = a.a2, acc[row + 3] = a.a3;
    }
    for (; row < g->rows; ++row) {
        int32_t a = g->bias[row];
        const uint32_t *xp = x;
        for (int32_t n = chunks; n > 0; --n, w += 4, xp += 2) {
            a = chunk_dot(xp[0], xp[1], w, a);
        }
        acc[row] = a;
    }
}

/* The last 1-3 values of a column, zero-extended to a chunk. */
static inline uint32_t load_tail(const int8_t *x, int32_t n)
{
    uint32_t v = 0;
    for (int32_t i = 0; i < n; ++i) {
        v |= (uint32_t)(uint8_t)x[i] << (8 * i);
    }
    return v;
}

/* One int8 column of `length` values read in place (no scratch), four rows at a time. */
static inline void gemm_bytes(const td_gemm_params *g, const int8_t *x, int32_t length, int8_t *out, int fast)
{
    const int32_t full = length >> 2, tail = length & 3;
    const td_output_stage o = output_stage_of(g);
    const int8_t *w = g->weights;
    int32_t row = 0;
    for (; row + 4 <= g->rows; row += 4) {
        acc4 acc = {g->bias[row], g->bias[row + 1], g->bias[row + 2], g->bias[row + 3]};
        const int8_t *xp = x;
        for (int32_t n = full; n > 0; --n, w += 16, xp += 4) {
            const uint32_t xv = td_load4(xp);
            chunk_x4(td_sxtb16(xv), td_sxtb16_odd(xv), w, &acc);
        }
        if (tail) {
            const uint32_t xv = load_tail(xp, tail);
            chunk_x4(td_sxtb16(xv), td_sxtb16_odd(xv), w, &acc);
            w += 16;
        }
        store4(&o, &acc, row, out, fast);
    }
    for (; row < g->rows; ++row) {
        int32_t acc = g->bias[row];
        const int8_t *xp = x;
        for (int32_t n = 0; n < full + (tail != 0); ++n, w += 4, xp += 4) {
            const uint32_t xv = n < full ? td_load4(xp) : load_tail(xp, tail);
            acc = chunk_dot(td_sxtb16(xv), td_sxtb16_odd(xv), w, acc);
        }
        out[row] = requantize(&o, acc, row, fast);
    }
}

/* Scratch layout shared by both ops:
 * [packed: 4 * depth][column a: depth][column b: depth][accumulators: 2 * rows int32]. */
static uint32_t *packed_area(int8_t *scratch) { return (uint32_t *)(void *)scratch; }

static int32_t *accumulator_area(const td_gemm_params *g, int8_t *scratch)
{
    return (int32_t *)(void *)(scratch + 6 * g->depth);
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
    if (g->fast && columns == 2) {
        td_requantize_channels(&o, acc, g->rows, 2, out_a, distance, 1);
    } else if (g->fast) {
        td_requantize_channels(&o, acc, g->rows, 1, out_a, distance, 1);
    } else {
        td_requantize_channels(&o, acc, g->rows, columns, out_a, distance, 0);
    }
}

void td_fully_connected_s8(const td_fully_connected_params *p, const int8_t *in, int8_t *out, int8_t *scratch)
{
    const int32_t depth = p->gemm.depth, rows = p->gemm.rows;
    if (p->batches == 1) {                                /* one row: read in place, no scratch */
        if (p->gemm.fast) {
            gemm_bytes(&p->gemm, in, p->in_depth, out, 1);
        } else {
            gemm_bytes(&p->gemm, in, p->in_depth, out, 0);
        }
        return;
    }
    int8_t *col[2] = {scratch + 4 * depth, scratch + 5 * depth};
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
    int8_t *col[2] = {scratch + 4 * depth, scratch + 5 * depth};
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

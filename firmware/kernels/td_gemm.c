/* FULLY_CONNECTED and CONV_2D as one matrix-vector kernel.
 *
 * The code generator folds the input offset into the bias and lays the
 * weights out for the inner loop: rows in blocks of four, interleaved by
 * 4-byte chunks ([r0 k0..3][r1 k0..3][r2 k0..3][r3 k0..3][r0 k4..7]...), the
 * last rows % 4 plain, each row padded to a multiple of 4 with zero weights.
 * A convolution gathers each output pixel's window into a scratch buffer
 * (im2col), padding taps filled with the input zero point: they then add
 * w * (zp - zp) = 0 with the folded bias, exactly as the reference skips them. */
#include "td_kernels.h"
#include "td_fixedpoint.h"
#include "td_simd.h"

/* Requantize, add the output offset, clamp. `fast` is a compile-time
 * constant in each copy of gemm_rows below. */
static inline int8_t requantize(const td_gemm_params *g, int32_t acc, const int32_t *mult, const int32_t *shift,
                                int fast)
{
    const int32_t v = fast ? td_requantize_short(acc, *mult, *shift) : td_requantize(acc, *mult, *shift);
    return (int8_t)td_clamp(v + g->output_offset, g->act_min, g->act_max);
}

static inline void gemm_rows(const td_gemm_params *g, const int8_t *x, int8_t *out, int fast)
{
    const int8_t *w = g->weights;
    const int8_t *x_end = x + g->depth;
    const int32_t *bias = g->bias, *mult = g->multiplier, *shift = g->shift;
    const int32_t step = g->per_channel ? 1 : 0;
    int32_t row = 0;
    for (; row + 4 <= g->rows; row += 4, bias += 4) {
        int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
        for (const int8_t *xp = x; xp < x_end; xp += 4, w += 16) {
            const uint32_t xv = td_load4(xp);
            const uint32_t xe = td_sxtb16(xv), xo = td_sxtb16_odd(xv);
            const uint32_t w0 = td_load4(w), w1 = td_load4(w + 4), w2 = td_load4(w + 8), w3 = td_load4(w + 12);
            a0 = td_smlad(xo, td_sxtb16_odd(w0), td_smlad(xe, td_sxtb16(w0), a0));
            a1 = td_smlad(xo, td_sxtb16_odd(w1), td_smlad(xe, td_sxtb16(w1), a1));
            a2 = td_smlad(xo, td_sxtb16_odd(w2), td_smlad(xe, td_sxtb16(w2), a2));
            a3 = td_smlad(xo, td_sxtb16_odd(w3), td_smlad(xe, td_sxtb16(w3), a3));
        }
        *out++ = requantize(g, a0, mult, shift, fast);
        mult += step, shift += step;
        *out++ = requantize(g, a1, mult, shift, fast);
        mult += step, shift += step;
        *out++ = requantize(g, a2, mult, shift, fast);
        mult += step, shift += step;
        *out++ = requantize(g, a3, mult, shift, fast);
        mult += step, shift += step;
    }
    for (; row < g->rows; ++row, ++bias, mult += step, shift += step) {
        int32_t acc = *bias;
        for (const int8_t *xp = x; xp < x_end; xp += 4, w += 4) {
            const uint32_t xv = td_load4(xp), wv = td_load4(w);
            acc = td_smlad(td_sxtb16_odd(xv), td_sxtb16_odd(wv), td_smlad(td_sxtb16(xv), td_sxtb16(wv), acc));
        }
        *out++ = requantize(g, acc, mult, shift, fast);
    }
}

void td_gemm_s8(const td_gemm_params *g, const int8_t *x, int8_t *out)
{
    if (g->fast) {
        gemm_rows(g, x, out, 1);
    } else {
        gemm_rows(g, x, out, 0);
    }
}

void td_fully_connected_s8(const td_fully_connected_params *p, const int8_t *in, int8_t *out, int8_t *scratch)
{
    for (int32_t b = 0; b < p->batches; ++b, in += p->in_depth, out += p->gemm.rows) {
        const int8_t *x = in;
        if (p->in_depth != p->gemm.depth) {              /* pad the row to the weights' multiple of 4 */
            for (int32_t i = 0; i < p->gemm.depth; ++i) {
                scratch[i] = i < p->in_depth ? in[i] : 0;
            }
            x = scratch;
        }
        td_gemm_s8(&p->gemm, x, out);
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
    const int32_t window = w->filter_h * w->filter_w * w->in_c;
    const int direct = w->filter_h == 1 && w->filter_w == 1 && window == p->gemm.depth;
    for (int32_t i = window; i < p->gemm.depth; ++i) {
        scratch[i] = 0;                                  /* zero weights pad the window to a multiple of 4 */
    }
    for (int32_t b = 0; b < w->batches; ++b) {
        const int8_t *image = in + b * w->in_h * w->in_w * w->in_c;
        for (int32_t oy = 0; oy < w->out_h; ++oy) {
            for (int32_t ox = 0; ox < w->out_w; ++ox, out += w->out_c) {
                const int8_t *x;
                if (direct && w->pad_h == 0 && w->pad_w == 0) {    /* 1x1: the pixel itself */
                    x = image + ((oy * w->stride_h) * w->in_w + ox * w->stride_w) * w->in_c;
                } else {
                    gather_window(w, image, oy, ox, (int8_t)p->pad_value, scratch);
                    x = scratch;
                }
                td_gemm_s8(&p->gemm, x, out);
            }
        }
    }
}

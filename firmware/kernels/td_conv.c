/* CONV_2D with groups and DEPTHWISE_CONV_2D, int8 with per-channel
 * requantization (ungrouped CONV_2D runs as a matrix product, td_gemm.c).
 * Same arithmetic as TFLite Micro's reference kernels; the window bounds are
 * computed once per output pixel instead of tested per tap. */
#include "td_kernels.h"
#include "td_fixedpoint.h"
#include "td_simd.h"

/* The filter taps of one output pixel that land inside the input. */
typedef struct {
    const int8_t *image;          /* this batch's input */
    int32_t iy0, ix0;             /* input coordinates of tap (0, 0) */
    int32_t fy0, fy1, fx0, fx1;   /* taps [fy0, fy1) x [fx0, fx1) */
} td_taps;

/* Taps [*first, *last) whose coordinate origin + tap * dilation lies in [0, size). */
static void valid_taps(int32_t origin, int32_t dilation, int32_t taps, int32_t size, int32_t *first, int32_t *last)
{
    const int32_t hi = size - origin <= 0 ? 0 : (size - origin + dilation - 1) / dilation;
    *first = origin < 0 ? (-origin + dilation - 1) / dilation : 0;
    *last = hi < taps ? hi : taps;
}

static int8_t requantize_channel(const td_conv_params *p, int32_t acc, int32_t oc)
{
    acc = td_wrap_add(acc, p->bias[oc]);
    acc = td_requantize(acc, p->requant[2 * oc], p->requant[2 * oc + 1]) + p->output_offset;
    return (int8_t)td_clamp(acc, p->act_min, p->act_max);
}

static int32_t conv_dot(const td_conv_params *p, const td_taps *t, int32_t oc)
{
    const td_window *w = &p->win;
    const int32_t group_c = p->group_in_c;
    const int32_t first_c = (oc / (w->out_c / (w->in_c / group_c))) * group_c;
    const int8_t *filter = p->weights + oc * w->filter_h * w->filter_w * group_c;
    int32_t acc = 0;
    for (int32_t fy = t->fy0; fy < t->fy1; ++fy) {
        const int8_t *row = t->image + (t->iy0 + fy * w->dilation_h) * w->in_w * w->in_c;
        for (int32_t fx = t->fx0; fx < t->fx1; ++fx) {
            const int8_t *x = row + (t->ix0 + fx * w->dilation_w) * w->in_c + first_c;
            const int8_t *k = filter + (fy * w->filter_w + fx) * group_c;
            for (int32_t c = 0; c < group_c; ++c) {
                acc += (int32_t)k[c] * ((int32_t)x[c] + p->input_offset);
            }
        }
    }
    return acc;
}

static int32_t depthwise_dot(const td_conv_params *p, const td_taps *t, int32_t oc)
{
    const td_window *w = &p->win;
    const int32_t ic = oc / p->group_in_c;
    int32_t acc = 0;
    for (int32_t fy = t->fy0; fy < t->fy1; ++fy) {
        const int8_t *row = t->image + (t->iy0 + fy * w->dilation_h) * w->in_w * w->in_c;
        const int8_t *k = p->weights + fy * w->filter_w * w->out_c + oc;
        for (int32_t fx = t->fx0; fx < t->fx1; ++fx) {
            const int32_t x = row[(t->ix0 + fx * w->dilation_w) * w->in_c + ic];
            acc += (int32_t)k[fx * w->out_c] * (x + p->input_offset);
        }
    }
    return acc;
}

static void convolve(const td_conv_params *p, const int8_t *in, int8_t *out, int depthwise)
{
    const td_window *w = &p->win;
    td_taps t;
    for (int32_t b = 0; b < w->batches; ++b) {
        t.image = in + b * w->in_h * w->in_w * w->in_c;
        for (int32_t oy = 0; oy < w->out_h; ++oy) {
            t.iy0 = oy * w->stride_h - w->pad_h;
            valid_taps(t.iy0, w->dilation_h, w->filter_h, w->in_h, &t.fy0, &t.fy1);
            for (int32_t ox = 0; ox < w->out_w; ++ox) {
                t.ix0 = ox * w->stride_w - w->pad_w;
                valid_taps(t.ix0, w->dilation_w, w->filter_w, w->in_w, &t.fx0, &t.fx1);
                for (int32_t oc = 0; oc < w->out_c; ++oc) {
                    *out++ = requantize_channel(p, depthwise ? depthwise_dot(p, &t, oc) : conv_dot(p, &t, oc), oc);
                }
            }
        }
    }
}

void td_conv_s8(const td_conv_params *p, const int8_t *in, int8_t *out)
{
    convolve(p, in, out, 0);
}

void td_depthwise_conv_s8(const td_conv_params *p, const int8_t *in, int8_t *out)
{
    convolve(p, in, out, 1);
}

/* ---- Packed path (td_simd.h) for depth multiplier 1. The input offset is
 * added while unpacking (SXTAB16), so padding taps still contribute nothing. ---- */

/* Requantize one channel's accumulator and store it (the output stage in locals). */
static inline void store_one(const int32_t *rq, int32_t acc, int32_t offset, int32_t lo, int32_t hi, int8_t *out,
                             int fast)
{
    const int32_t v = fast ? td_requantize_short(acc, rq[0], rq[1]) : td_requantize(acc, rq[0], rq[1]);
    *out = (int8_t)td_clamp(v + offset, lo, hi);
}

/* One tap for four channels: acc(c) += (x(c) + offset) * k(c), few values live at once. */
#define TD_DW_TAP(xp, kp)                                                                   \
    do {                                                                                    \
        uint32_t xv_ = td_load4(xp), kv_ = td_load4(kp);                                    \
        uint32_t xs_ = td_sxtab16(offset, xv_), ks_ = td_sxtb16(kv_);                       \
        a0 = td_smlabb(xs_, ks_, a0);                                                       \
        a2 = td_smlatt(xs_, ks_, a2);                                                       \
        xs_ = td_sxtab16_odd(offset, xv_);                                                  \
        ks_ = td_sxtb16_odd(kv_);                                                           \
        a1 = td_smlabb(xs_, ks_, a1);                                                       \
        a3 = td_smlatt(xs_, ks_, a3);                                                       \
    } while (0)

/* Depth multiplier 1: four channels at a time, one accumulator per channel;
 * whole 3x3 windows (dilation 1) run unrolled. */
static inline void depthwise_packed(const td_conv_params *p, const int8_t *in, int8_t *out, int fast)
{
    const td_window *w = &p->win;
    const uint32_t offset = td_dup16(p->input_offset);
    const int32_t channels = w->in_c, row = w->in_w * channels;
    const int32_t tap_step = w->dilation_w * channels, row_step = w->dilation_h * row;
    const int32_t out_offset = p->output_offset, lo = p->act_min, hi = p->act_max;
    const int three = w->filter_h == 3 && w->filter_w == 3 && w->dilation_h == 1 && w->dilation_w == 1;
    for (int32_t b = 0; b < w->batches; ++b) {
        const int8_t *image = in + b * w->in_h * row;
        for (int32_t oy = 0; oy < w->out_h; ++oy) {
            const int32_t iy0 = oy * w->stride_h - w->pad_h;
            int32_t fy0, fy1;
            valid_taps(iy0, w->dilation_h, w->filter_h, w->in_h, &fy0, &fy1);
            for (int32_t ox = 0; ox < w->out_w; ++ox, out += channels) {
                const int32_t ix0 = ox * w->stride_w - w->pad_w;
                int32_t fx0, fx1;
                valid_taps(ix0, w->dilation_w, w->filter_w, w->in_w, &fx0, &fx1);
                const int8_t *x_first = image + (iy0 + fy0 * w->dilation_h) * row + (ix0 + fx0 * w->dilation_w) * channels;
                const int8_t *k_first = p->weights + (fy0 * w->filter_w + fx0) * channels;
                const int whole = three && fy1 - fy0 == 3 && fx1 - fx0 == 3;
                int32_t c = 0;
                for (; c + 4 <= channels; c += 4) {
                    int32_t a0 = p->bias[c], a1 = p->bias[c + 1], a2 = p->bias[c + 2], a3 = p->bias[c + 3];
                    const int8_t *x = x_first + c, *k = k_first + c;
                    if (whole) {
                        const int32_t c2 = 2 * channels;
                        TD_DW_TAP(x, k); TD_DW_TAP(x + channels, k + channels); TD_DW_TAP(x + c2, k + c2);
                        x += row, k += 3 * channels;
                        TD_DW_TAP(x, k); TD_DW_TAP(x + channels, k + channels); TD_DW_TAP(x + c2, k + c2);
                        x += row, k += 3 * channels;
                        TD_DW_TAP(x, k); TD_DW_TAP(x + channels, k + channels); TD_DW_TAP(x + c2, k + c2);
                    } else {
                        for (int32_t fy = fy0; fy < fy1; ++fy, x += row_step, k += w->filter_w * channels) {
                            const int8_t *xt = x, *kt = k;
                            for (int32_t n = fx1 - fx0; n > 0; --n, xt += tap_step, kt += channels) {
                                TD_DW_TAP(xt, kt);
                            }
                        }
                    }
                    const int32_t *rq = p->requant + 2 * c;
                    store_one(rq, a0, out_offset, lo, hi, out + c, fast);
                    store_one(rq + 2, a1, out_offset, lo, hi, out + c + 1, fast);
                    store_one(rq + 4, a2, out_offset, lo, hi, out + c + 2, fast);
                    store_one(rq + 6, a3, out_offset, lo, hi, out + c + 3, fast);
                }
                for (; c < channels; ++c) {
                    td_taps t = {image, iy0, ix0, fy0, fy1, fx0, fx1};
                    out[c] = requantize_channel(p, depthwise_dot(p, &t, c), c);
                }
            }
        }
    }
}

void td_depthwise_conv_packed_s8(const td_conv_params *p, const int8_t *in, int8_t *out)
{
    if (p->fast) {
        depthwise_packed(p, in, out, 1);
    } else {
        depthwise_packed(p, in, out, 0);
    }
}

/* The general CONV_2D (with groups) and DEPTHWISE_CONV_2D kernels of td_conv.h,
 * int8 with per-channel requantization (ungrouped CONV_2D runs as a matrix product,
 * td_gemm.c; DEPTHWISE_CONV_2D with depth multiplier 1 through td_depthwise.c).
 * Same arithmetic as TFLite Micro's reference kernels; the window bounds are
 * computed once per output pixel instead of tested per tap. */
#include "td_conv.h"
#include "td_fixedpoint.h"
#include "td_output.h"

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
    return td_output(p->rescale + oc, acc, p->output_offset, p->act_min, p->act_max, 0);
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

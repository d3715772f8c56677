/* CONV_2D and DEPTHWISE_CONV_2D, int8 with per-channel requantization.
 * Same arithmetic as TFLite Micro's reference kernels; the window bounds are
 * computed once per output row and column instead of tested per tap. */
#include "td_kernels.h"
#include "td_fixedpoint.h"

/* Filter taps [*first, *last) whose input coordinate origin + tap * dilation lies in [0, size). */
static void valid_taps(int32_t origin, int32_t dilation, int32_t taps, int32_t size, int32_t *first, int32_t *last)
{
    int32_t lo = origin < 0 ? (-origin + dilation - 1) / dilation : 0;
    int32_t hi = size - origin <= 0 ? 0 : (size - origin + dilation - 1) / dilation;
    *first = lo;
    *last = hi < taps ? hi : taps;
}

static int8_t requantize_output(const td_conv_params *p, int32_t acc, int32_t channel)
{
    acc = td_wrap_add(acc, p->bias[channel]);
    acc = td_requantize(acc, p->multiplier[channel], p->shift[channel]) + p->output_offset;
    return (int8_t)td_clamp(acc, p->act_min, p->act_max);
}

void td_conv_s8(const td_conv_params *p, const int8_t *in, int8_t *out)
{
    const td_window *w = &p->win;
    const int32_t group_c = p->group_in_c;
    const int32_t filters_per_group = w->out_c / (w->in_c / group_c);
    for (int32_t b = 0; b < w->batches; ++b) {
        const int8_t *image = in + b * w->in_h * w->in_w * w->in_c;
        for (int32_t oy = 0; oy < w->out_h; ++oy) {
            const int32_t iy0 = oy * w->stride_h - w->pad_h;
            int32_t fy0, fy1;
            valid_taps(iy0, w->dilation_h, w->filter_h, w->in_h, &fy0, &fy1);
            for (int32_t ox = 0; ox < w->out_w; ++ox) {
                const int32_t ix0 = ox * w->stride_w - w->pad_w;
                int32_t fx0, fx1;
                valid_taps(ix0, w->dilation_w, w->filter_w, w->in_w, &fx0, &fx1);
                for (int32_t oc = 0; oc < w->out_c; ++oc) {
                    const int32_t first_c = (oc / filters_per_group) * group_c;
                    const int8_t *filter = p->weights + oc * w->filter_h * w->filter_w * group_c;
                    int32_t acc = 0;
                    for (int32_t fy = fy0; fy < fy1; ++fy) {
                        const int8_t *row = image + (iy0 + fy * w->dilation_h) * w->in_w * w->in_c;
                        for (int32_t fx = fx0; fx < fx1; ++fx) {
                            const int8_t *x = row + (ix0 + fx * w->dilation_w) * w->in_c + first_c;
                            const int8_t *k = filter + (fy * w->filter_w + fx) * group_c;
                            for (int32_t c = 0; c < group_c; ++c) {
                                acc += (int32_t)k[c] * ((int32_t)x[c] + p->input_offset);
                            }
                        }
                    }
                    *out++ = requantize_output(p, acc, oc);
                }
            }
        }
    }
}

void td_depthwise_conv_s8(const td_conv_params *p, const int8_t *in, int8_t *out)
{
    const td_window *w = &p->win;
    const int32_t multiplier = p->group_in_c;
    for (int32_t b = 0; b < w->batches; ++b) {
        const int8_t *image = in + b * w->in_h * w->in_w * w->in_c;
        for (int32_t oy = 0; oy < w->out_h; ++oy) {
            const int32_t iy0 = oy * w->stride_h - w->pad_h;
            int32_t fy0, fy1;
            valid_taps(iy0, w->dilation_h, w->filter_h, w->in_h, &fy0, &fy1);
            for (int32_t ox = 0; ox < w->out_w; ++ox) {
                const int32_t ix0 = ox * w->stride_w - w->pad_w;
                int32_t fx0, fx1;
                valid_taps(ix0, w->dilation_w, w->filter_w, w->in_w, &fx0, &fx1);
                for (int32_t oc = 0; oc < w->out_c; ++oc) {
                    const int32_t ic = oc / multiplier;
                    int32_t acc = 0;
                    for (int32_t fy = fy0; fy < fy1; ++fy) {
                        const int8_t *row = image + (iy0 + fy * w->dilation_h) * w->in_w * w->in_c;
                        const int8_t *k = p->weights + fy * w->filter_w * w->out_c + oc;
                        for (int32_t fx = fx0; fx < fx1; ++fx) {
                            const int32_t x = row[(ix0 + fx * w->dilation_w) * w->in_c + ic];
                            acc += (int32_t)k[fx * w->out_c] * (x + p->input_offset);
                        }
                    }
                    *out++ = requantize_output(p, acc, oc);
                }
            }
        }
    }
}

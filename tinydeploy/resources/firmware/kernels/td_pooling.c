/* AVERAGE_POOL_2D and MAX_POOL_2D, int8, as TFLite Micro's reference kernels:
 * windows are clipped to the input, the average divides by the taps inside. */
#include "td_pooling.h"
#include "td_fixedpoint.h"

static void clip_window(int32_t origin, int32_t taps, int32_t size, int32_t *first, int32_t *last)
{
    *first = origin < 0 ? -origin : 0;
    *last = size - origin < taps ? size - origin : taps;
}

static void pool(const td_pool_params *p, const int8_t *in, int8_t *out, int average)
{
    const td_window *w = &p->win;
    for (int32_t b = 0; b < w->batches; ++b) {
        const int8_t *image = in + b * w->in_h * w->in_w * w->in_c;
        for (int32_t oy = 0; oy < w->out_h; ++oy) {
            const int32_t iy0 = oy * w->stride_h - w->pad_h;
            int32_t fy0, fy1;
            clip_window(iy0, w->filter_h, w->in_h, &fy0, &fy1);
            for (int32_t ox = 0; ox < w->out_w; ++ox) {
                const int32_t ix0 = ox * w->stride_w - w->pad_w;
                int32_t fx0, fx1;
                clip_window(ix0, w->filter_w, w->in_w, &fx0, &fx1);
                const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                for (int32_t c = 0; c < w->in_c; ++c) {
                    int32_t acc = average ? 0 : -128;
                    for (int32_t fy = fy0; fy < fy1; ++fy) {
                        /* an index into the image, not a pointer to tap (fy, 0), which may lie before it */
                        const int32_t start = ((iy0 + fy) * w->in_w + ix0) * w->in_c + c;
                        for (int32_t fx = fx0; fx < fx1; ++fx) {
                            const int32_t v = image[start + fx * w->in_c];
                            if (average) {
                                acc += v;
                            } else if (v > acc) {
                                acc = v;
                            }
                        }
                    }
                    if (average && count > 0) {
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    *out++ = (int8_t)td_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

void td_average_pool_s8(const td_pool_params *p, const int8_t *in, int8_t *out)
{
    pool(p, in, out, 1);
}

void td_max_pool_s8(const td_pool_params *p, const int8_t *in, int8_t *out)
{
    pool(p, in, out, 0);
}

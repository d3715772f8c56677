/* td_quantize.h: QUANTIZE (float32 -> int8, int8 -> int8) and DEQUANTIZE
 * (int8 -> float32), as TFLite Micro's reference kernels compute them. */
#include "td_quantize.h"
#include "td_fixedpoint.h"

/* round(v) with halves away from zero, as C's roundf, for |v| < 2^31. */
static int32_t round_half_away(float v)
{
    const int32_t t = (int32_t)v;                 /* truncates toward zero */
    const float rest = v - (float)t;              /* exact */
    if (rest >= 0.5f) {
        return t + 1;
    }
    if (rest <= -0.5f) {
        return t - 1;
    }
    return t;
}

void td_quantize_f32_s8(const td_quantize_params *p, const float *in, int8_t *out)
{
    for (int32_t i = 0; i < p->size; ++i) {
        const float v = in[i] / p->scale;
        int32_t q;
        if (v != v) {
            q = 0;                                    /* NaN */
        } else if (v > 1e9f || v < -1e9f) {
            q = v > 0 ? 1000000000 : -1000000000;     /* clamps below either way */
        } else {
            q = round_half_away(v);
        }
        out[i] = (int8_t)td_clamp(q + p->output_zero_point, -128, 127);
    }
}

void td_requantize_s8(const td_quantize_params *p, const int8_t *in, int8_t *out)
{
    for (int32_t i = 0; i < p->size; ++i) {
        const int32_t v = td_requantize((int32_t)in[i] - p->input_zero_point, p->multiplier, p->shift);
        out[i] = (int8_t)td_clamp(v + p->output_zero_point, -128, 127);
    }
}

void td_dequantize_s8_f32(const td_quantize_params *p, const int8_t *in, float *out)
{
    /* A float product of two exact values is correctly rounded, like the
     * reference's double product rounded to float. */
    for (int32_t i = 0; i < p->size; ++i) {
        out[i] = p->scale * (float)((int32_t)in[i] - p->input_zero_point);
    }
}

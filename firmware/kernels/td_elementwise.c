/* Elementwise int8 ops: ADD and MUL (with broadcasting), LOGISTIC, TANH,
 * QUANTIZE and DEQUANTIZE, as TFLite Micro's reference kernels compute them. */
#include "td_kernels.h"
#include "td_fixedpoint.h"

static int32_t add_one(const td_binary_params *p, int32_t a, int32_t b)
{
    const int32_t x = (int32_t)((uint32_t)(a + p->input1_offset) << p->left_shift);
    const int32_t y = (int32_t)((uint32_t)(b + p->input2_offset) << p->left_shift);
    const int32_t sum = td_requantize(x, p->input1_multiplier, p->input1_shift)
                      + td_requantize(y, p->input2_multiplier, p->input2_shift);
    return td_requantize(sum, p->output_multiplier, p->output_shift) + p->output_offset;
}

static int32_t mul_one(const td_binary_params *p, int32_t a, int32_t b)
{
    const int32_t product = (a + p->input1_offset) * (b + p->input2_offset);
    return td_requantize(product, p->output_multiplier, p->output_shift) + p->output_offset;
}

static void binary(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                   int32_t (*op)(const td_binary_params *, int32_t, int32_t))
{
    const int32_t *n = p->shape, *s1 = p->stride1, *s2 = p->stride2;
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {
            for (int32_t i2 = 0; i2 < n[2]; ++i2) {
                const int8_t *a = in1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *b = in2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                for (int32_t i3 = 0; i3 < n[3]; ++i3) {
                    *out++ = (int8_t)td_clamp(op(p, a[i3 * s1[3]], b[i3 * s2[3]]), p->act_min, p->act_max);
                }
            }
        }
    }
}

void td_add_s8(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    binary(p, in1, in2, out, add_one);
}

void td_mul_s8(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    binary(p, in1, in2, out, mul_one);
}

/* Inputs beyond +-radius saturate; the rest go through Q4 fixed point. */
static void sigmoid_like(const td_activation_params *p, const int8_t *in, int8_t *out, int tanh_not_logistic)
{
    for (int32_t i = 0; i < p->size; ++i) {
        const int32_t x = (int32_t)in[i] - p->input_zero_point;
        if (x <= -p->input_range_radius) {
            out[i] = -128;
        } else if (x >= p->input_range_radius) {
            out[i] = 127;
        } else {
            const int32_t q4 = td_requantize(x, p->input_multiplier, p->input_left_shift);
            const int32_t y = tanh_not_logistic ? td_rounding_div_pot(td_tanh_q4(q4), 24)
                                                : td_rounding_div_pot(td_logistic_q4(q4), 23) - 128;
            out[i] = (int8_t)td_clamp(y, -128, 127);
        }
    }
}

void td_logistic_s8(const td_activation_params *p, const int8_t *in, int8_t *out)
{
    sigmoid_like(p, in, out, 0);
}

void td_tanh_s8(const td_activation_params *p, const int8_t *in, int8_t *out)
{
    sigmoid_like(p, in, out, 1);
}

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

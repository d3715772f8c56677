/* Elementwise int8 ops: ADD and MUL (with broadcasting), LOGISTIC, TANH,
 * QUANTIZE and DEQUANTIZE, as TFLite Micro's reference kernels compute them. */
#include "td_kernels.h"
#include "td_fixedpoint.h"
#include "td_simd.h"

/* The per-element arithmetic of ADD or MUL with every constant in registers.
 * ADD's shifted inputs stay below 2^28 and MUL's products below 2^16, so the
 * short rescale is exact whenever the shifts are <= 0 (ADD: always, the code
 * generator refuses the rest). */
typedef struct {
    int32_t offset1, offset2, output_offset, lo, hi, left_shift;
    td_short_rescale in1, in2, out;
    const int32_t *table1, *table2;   /* ADD_TABLES: rescaled inputs, indexed -128..127 */
} binary_stage;

/* ADD computing each input's rescale, ADD looking both up, MUL. */
enum { ADD_DIRECT, ADD_TABLES, MUL };

static inline int32_t add_input(const binary_stage *b, int32_t x, int32_t offset, const td_short_rescale *r)
{
    return td_rescale_short((x + offset) << b->left_shift, r);
}

static TD_ALWAYS_INLINE int8_t binary_one(const binary_stage *b, int32_t x, int32_t y, int kind)
{
    int32_t v;
    if (kind == ADD_TABLES) {
        v = td_rescale_short(b->table1[x] + b->table2[y], &b->out);
    } else if (kind == ADD_DIRECT) {
        v = td_rescale_short(add_input(b, x, b->offset1, &b->in1) + add_input(b, y, b->offset2, &b->in2), &b->out);
    } else {
        v = td_rescale_short((x + b->offset1) * (y + b->offset2), &b->out);
    }
    return (int8_t)td_clamp(v + b->output_offset, b->lo, b->hi);
}

static TD_ALWAYS_INLINE void binary(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                                    int kind, int32_t *tables)
{
    binary_stage b = {p->input1_offset, p->input2_offset, p->output_offset, p->act_min, p->act_max,
                      p->left_shift, td_short_rescale_of(p->input1_multiplier, p->input1_shift),
                      td_short_rescale_of(p->input2_multiplier, p->input2_shift),
                      td_short_rescale_of(p->output_multiplier, p->output_shift), tables + 128, tables + 384};
    if (kind == ADD_TABLES) {
        for (int32_t v = -128; v < 128; ++v) {
            tables[v + 128] = add_input(&b, v, b.offset1, &b.in1);
            tables[v + 384] = add_input(&b, v, b.offset2, &b.in2);
        }
    }
    const int32_t *n = p->shape, *s1 = p->stride1, *s2 = p->stride2;
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {
            for (int32_t i2 = 0; i2 < n[2]; ++i2) {
                const int8_t *x = in1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *y = in2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                if (s1[3] == 1 && s2[3] == 1) {              /* the common case: both contiguous */
                    for (int32_t i3 = n[3]; i3 > 0; --i3) {
                        *out++ = binary_one(&b, *x++, *y++, kind);
                    }
                } else {
                    for (int32_t i3 = 0; i3 < n[3]; ++i3) {
                        *out++ = binary_one(&b, x[i3 * s1[3]], y[i3 * s2[3]], kind);
                    }
                }
            }
        }
    }
}

void td_add_s8(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int8_t *scratch)
{
    if (scratch) {
        binary(p, in1, in2, out, ADD_TABLES, (int32_t *)(void *)scratch);
    } else {
        binary(p, in1, in2, out, ADD_DIRECT, (int32_t *)0);
    }
}

/* MUL with a rescale above 1 (shift > 0) takes the general path. */
static int32_t mul_general(const td_binary_params *p, int32_t x, int32_t y)
{
    const int32_t v = td_requantize((x + p->input1_offset) * (y + p->input2_offset), p->output_multiplier,
                                    p->output_shift);
    return td_clamp(v + p->output_offset, p->act_min, p->act_max);
}

void td_mul_s8(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    if (p->output_shift <= 0) {
        binary(p, in1, in2, out, MUL, (int32_t *)0);
        return;
    }
    const int32_t *n = p->shape, *s1 = p->stride1, *s2 = p->stride2;
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {
            for (int32_t i2 = 0; i2 < n[2]; ++i2) {
                for (int32_t i3 = 0; i3 < n[3]; ++i3) {
                    const int32_t a = i0 * s1[0] + i1 * s1[1] + i2 * s1[2] + i3 * s1[3];
                    const int32_t b = i0 * s2[0] + i1 * s2[1] + i2 * s2[2] + i3 * s2[3];
                    *out++ = (int8_t)mul_general(p, in1[a], in2[b]);
                }
            }
        }
    }
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

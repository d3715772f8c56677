/* SOFTMAX, int8 -> int8, with gemmlowp's fixed-point exp and reciprocal,
 * as in TFLite Micro's reference kernel. Fixed-point formats are noted as
 * Qm.n (m integer bits, n fractional bits, 32-bit raw values). */
#include "td_kernels.h"
#include "td_fixedpoint.h"

/* exp(a) for a in [-1/4, 0), Q0.31 in and out (Taylor series around -1/8). */
static int32_t exp_quarter_interval(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = td_wrap_add(a, 1 << 28);
    const int32_t x2 = td_srdhm(x, x);
    const int32_t x3 = td_srdhm(x2, x);
    const int32_t x4 = td_srdhm(x2, x2);
    const int32_t x4_over_4 = td_rounding_div_pot(x4, 2);
    const int32_t poly = td_rounding_div_pot(
        td_wrap_add(td_srdhm(td_wrap_add(x4_over_4, x3), one_third), x2), 1);
    return td_wrap_add(exp_minus_one_eighth, td_srdhm(exp_minus_one_eighth, td_wrap_add(x, poly)));
}

/* exp(a) for a <= 0: a in Q5.26, result in Q0.31. */
static int32_t exp_negative_q5_26(int32_t a)
{
    static const int32_t multipliers[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242,
    };
    const int32_t one_quarter = 1 << 24;
    const int32_t a_mod_quarter_minus_quarter = td_wrap_sub(a & (one_quarter - 1), one_quarter);
    int32_t result = exp_quarter_interval(td_saturating_shl(a_mod_quarter_minus_quarter, 5));
    const int32_t remainder = td_wrap_sub(a_mod_quarter_minus_quarter, a);
    for (int k = 0; k < 7; ++k) {              /* exponents -2 .. +4 */
        if (remainder & (1 << (24 + k))) {
            result = td_srdhm(result, multipliers[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1): Q0.31 in and out, Newton-Raphson in Q2.29. */
static int32_t one_over_one_plus(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = td_wrap_add(1515870810, td_srdhm(half_denominator, -1010580540));
    for (int i = 0; i < 3; ++i) {
        const int32_t one_minus = td_wrap_sub(1 << 29, td_srdhm(half_denominator, x));
        x = td_wrap_add(x, td_saturating_shl(td_srdhm(x, one_minus), 2));
    }
    return td_saturating_shl(x, 1);
}

void td_softmax_s8(const td_softmax_params *p, const int8_t *in, int8_t *out)
{
    const int32_t depth = p->depth;
    for (int32_t r = 0; r < p->rows; ++r, in += depth, out += depth) {
        int32_t max_in_row = -128;
        for (int32_t c = 0; c < depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }
        int32_t sum_of_exps = 0;               /* Q12.19 */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = td_srdhm((int32_t)((uint32_t)diff << p->input_left_shift),
                                                p->input_multiplier);
                sum_of_exps = td_wrap_add(sum_of_exps, td_rounding_div_pot(exp_negative_q5_26(scaled), 12));
            }
        }
        const int headroom_plus_one = __builtin_clz((uint32_t)sum_of_exps);
        const int bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - (1u << 31));
        const int32_t shifted_scale = one_over_one_plus(shifted_sum_minus_one);
        const int exponent = bits_over_unit + 31 - 8;
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            int32_t value = -128;
            if (diff >= p->diff_min) {
                const int32_t scaled = td_srdhm((int32_t)((uint32_t)diff << p->input_left_shift),
                                                p->input_multiplier);
                const int32_t e = exp_negative_q5_26(scaled);
                value = td_rounding_div_pot(td_srdhm(shifted_scale, e), exponent) - 128;
            }
            out[c] = (int8_t)td_clamp(value, -128, 127);
        }
    }
}

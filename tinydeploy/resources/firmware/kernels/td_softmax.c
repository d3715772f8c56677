/* SOFTMAX, int8 -> int8, with gemmlowp's fixed-point exp and reciprocal,
 * as in TFLite Micro's reference kernel. */
#include "td_softmax.h"
#include "td_fixedpoint.h"

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
                sum_of_exps = td_wrap_add(sum_of_exps, td_rounding_div_pot(td_exp_on_negative(scaled, 5), 12));
            }
        }
        const int headroom_plus_one = __builtin_clz((uint32_t)sum_of_exps);
        const int bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - (1u << 31));
        const int32_t shifted_scale = td_one_over_one_plus(shifted_sum_minus_one);
        const int exponent = bits_over_unit + 31 - 8;
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            int32_t value = -128;
            if (diff >= p->diff_min) {
                const int32_t scaled = td_srdhm((int32_t)((uint32_t)diff << p->input_left_shift),
                                                p->input_multiplier);
                const int32_t e = td_exp_on_negative(scaled, 5);
                value = td_rounding_div_pot(td_srdhm(shifted_scale, e), exponent) - 128;
            }
            out[c] = (int8_t)td_clamp(value, -128, 127);
        }
    }
}

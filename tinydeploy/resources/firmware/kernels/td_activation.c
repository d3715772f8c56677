/* td_activation.h: LOGISTIC and TANH, int8, as TFLite Micro's reference kernels
 * compute them (gemmlowp's fixed-point exp and reciprocal, td_fixedpoint.h). */
#include "td_activation.h"
#include "td_fixedpoint.h"

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

/* MEAN, int8, as TFLite Micro computes it: the sum over the reduced axes,
 * corrected for the input zero point, rescaled once by a multiplier that
 * includes 1 / count (computed by the code generator). */
#include "td_reduce.h"
#include "td_fixedpoint.h"

static int32_t sum_window(const td_mean_params *p, const int8_t *x)
{
    int32_t acc = 0;
    for (int32_t a = 0; a < p->inner[0]; ++a) {
        for (int32_t b = 0; b < p->inner[1]; ++b) {
            for (int32_t c = 0; c < p->inner[2]; ++c) {
                const int8_t *row = x + a * p->stride[0] + b * p->stride[1] + c * p->stride[2];
                for (int32_t d = 0; d < p->inner[3]; ++d) {
                    acc += row[d * p->stride[3]];
                }
            }
        }
    }
    return acc;
}

void td_mean_s8(const td_mean_params *p, const int8_t *in, int8_t *out)
{
    const int32_t zero_point_sum = p->input_zero_point * p->count;
    for (int32_t a = 0; a < p->outer[0]; ++a) {
        for (int32_t b = 0; b < p->outer[1]; ++b) {
            for (int32_t c = 0; c < p->outer[2]; ++c) {
                for (int32_t d = 0; d < p->outer[3]; ++d) {
                    const int8_t *x = in + a * p->stride[0] + b * p->stride[1] + c * p->stride[2] + d * p->stride[3];
                    const int32_t sum = td_wrap_sub(sum_window(p, x), zero_point_sum);
                    const int32_t v = td_requantize(sum, p->multiplier, p->shift) + p->output_zero_point;
                    *out++ = (int8_t)td_clamp(v, -128, 127);
                }
            }
        }
    }
}

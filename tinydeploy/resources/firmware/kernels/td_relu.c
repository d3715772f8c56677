/* RELU and RELU6, int8 (td_activation.h). */
#include "td_activation.h"
#include "td_fixedpoint.h"

void td_relu_s8(const td_relu_params *p, const int8_t *in, int8_t *out)
{
    for (int32_t i = 0; i < p->size; ++i) {
        const int32_t v = td_requantize((int32_t)in[i] - p->input_offset, p->multiplier, p->shift);
        out[i] = (int8_t)td_clamp(p->output_offset + v, p->act_min, p->act_max);
    }
}

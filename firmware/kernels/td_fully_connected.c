/* FULLY_CONNECTED, int8, per-tensor or per-channel weights. */
#include "td_kernels.h"
#include "td_fixedpoint.h"

void td_fully_connected_s8(const td_fully_connected_params *p, const int8_t *in, int8_t *out)
{
    const int32_t depth = p->in_depth;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *row_in = in + b * depth;
        const int8_t *w = p->weights;
        for (int32_t o = 0; o < p->out_depth; ++o) {
            int32_t acc = p->bias[o];
            for (int32_t i = 0; i < depth; ++i) {
                acc += (int32_t)w[i] * (int32_t)row_in[i];
            }
            w += depth;
            const int32_t ch = p->per_channel ? o : 0;
            acc = td_requantize(acc, p->multiplier[ch], p->shift[ch]) + p->output_offset;
            out[b * p->out_depth + o] = (int8_t)td_clamp(acc, p->act_min, p->act_max);
        }
    }
}

void td_copy_s8(const int8_t *in, int8_t *out, int32_t bytes)
{
    if (in == out) {
        return;
    }
    for (int32_t i = 0; i < bytes; ++i) {
        out[i] = in[i];
    }
}

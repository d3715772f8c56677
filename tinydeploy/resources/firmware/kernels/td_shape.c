/* Data movement: PAD with a constant, CONCATENATION, plain copies. */
#include "td_kernels.h"

void td_pad_s8(const td_pad_params *p, const int8_t *in, int8_t *out)
{
    const int32_t *n = p->out_shape, *m = p->in_shape, *b = p->before;
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {
        const int32_t j0 = i0 - b[0];
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {
            const int32_t j1 = i1 - b[1];
            for (int32_t i2 = 0; i2 < n[2]; ++i2) {
                const int32_t j2 = i2 - b[2];
                const int inside = j0 >= 0 && j0 < m[0] && j1 >= 0 && j1 < m[1] && j2 >= 0 && j2 < m[2];
                const int8_t *row = in + ((j0 * m[1] + j1) * m[2] + j2) * m[3];
                for (int32_t i3 = 0; i3 < n[3]; ++i3) {
                    const int32_t j3 = i3 - b[3];
                    *out++ = (inside && j3 >= 0 && j3 < m[3]) ? row[j3] : (int8_t)p->value;
                }
            }
        }
    }
}

void td_concatenation_s8(const td_concat_params *p, int8_t *out)
{
    for (int32_t o = 0; o < p->outer; ++o) {
        for (int32_t i = 0; i < p->count; ++i) {
            const int8_t *src = p->inputs[i] + o * p->chunk[i];
            for (int32_t k = 0; k < p->chunk[i]; ++k) {
                *out++ = src[k];
            }
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

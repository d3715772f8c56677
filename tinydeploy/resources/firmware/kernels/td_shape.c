/* Data movement: PAD with a constant, CONCATENATION, plain copies. */
#include "td_shape.h"

static void fill_bytes(int8_t *out, int8_t value, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        out[i] = value;
    }
}

/* Every output row (the last dimension) is `lead` padding values, `body` input values, then
 * padding again; rows outside the input in the first three dimensions are all padding. The
 * input row is addressed only when it exists, so no pointer leaves the input. */
void td_pad_s8(const td_pad_params *p, const int8_t *in, int8_t *out)
{
    const int32_t *n = p->out_shape, *m = p->in_shape, *b = p->before;
    const int8_t value = (int8_t)p->value;
    const int32_t lead = b[3] < n[3] ? b[3] : n[3];
    const int32_t body = n[3] - lead < m[3] ? n[3] - lead : m[3];
    const int32_t tail = n[3] - lead - body;
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {
        const int32_t j0 = i0 - b[0];
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {
            const int32_t j1 = i1 - b[1];
            for (int32_t i2 = 0; i2 < n[2]; ++i2, out += n[3]) {
                const int32_t j2 = i2 - b[2];
                if (j0 < 0 || j0 >= m[0] || j1 < 0 || j1 >= m[1] || j2 < 0 || j2 >= m[2]) {
                    fill_bytes(out, value, n[3]);
                    continue;
                }
                const int8_t *row = in + ((j0 * m[1] + j1) * m[2] + j2) * m[3];
                fill_bytes(out, value, lead);
                for (int32_t k = 0; k < body; ++k) {
                    out[lead + k] = row[k];
                }
                fill_bytes(out + lead + body, value, tail);
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

/* FULLY_CONNECTED with 4-bit weights (td_fully_connected.h): the weights stay
 * packed in flash, two per byte, and are unpacked in the inner loop.
 *
 * Each row is depth / 8 words; word c holds w[8c .. 8c + 7]: byte j keeps
 * w[8c + j] in its low nibble and w[8c + 4 + j] in its high nibble. Masking
 * the word as (w << 4) & 0xF0F0F0F0 and w & 0xF0F0F0F0 gives four signed
 * bytes each, 16 times the weights of inputs 8c..8c+3 and 8c+4..8c+7 in input
 * order, so the same SXTB16 unpacking serves weights and inputs and SMLAD
 * accumulates 16 * sum(w * x) exactly; one division by 16 per row recovers the
 * sum (the code generator checks 16 * |sum| stays below 2^31). */
#include "td_fully_connected.h"
#include "td_output.h"
#include "td_simd.h"

#define TD_W4_LOW_NIBBLES 0xF0F0F0F0u      /* after << 4: the low nibbles, as the top of each byte */
#define TD_W4_SCALE 16                     /* a nibble in the top of a byte is 16 times its value */
#define TD_W4_PER_WORD 8

/* 16 * sum over one row of w[k] * x[k], inputs read in place. */
static TD_ALWAYS_INLINE int32_t row_dot16(const uint32_t *w, const int8_t *x, int32_t in_depth)
{
    int32_t acc = 0;
    const int32_t words = in_depth / TD_W4_PER_WORD, tail = in_depth % TD_W4_PER_WORD;
    for (int32_t c = 0; c < words; ++c, x += TD_W4_PER_WORD) {
        const uint32_t word = w[c];
        const uint32_t low = (word << 4) & TD_W4_LOW_NIBBLES, high = word & TD_W4_LOW_NIBBLES;
        const uint32_t xa = td_load4(x), xb = td_load4(x + 4);
        acc = td_smlad(td_sxtb16(xa), td_sxtb16(low), acc);
        acc = td_smlad(td_sxtb16_odd(xa), td_sxtb16_odd(low), acc);
        acc = td_smlad(td_sxtb16(xb), td_sxtb16(high), acc);
        acc = td_smlad(td_sxtb16_odd(xb), td_sxtb16_odd(high), acc);
    }
    if (tail) {                                /* the padding weights are 0: read only the inputs there are */
        const uint32_t word = w[words];
        const uint32_t low = (word << 4) & TD_W4_LOW_NIBBLES, high = word & TD_W4_LOW_NIBBLES;
        const uint32_t xa = td_load_tail(x, tail < 4 ? tail : 4), xb = tail > 4 ? td_load_tail(x + 4, tail - 4) : 0;
        acc = td_smlad(td_sxtb16(xa), td_sxtb16(low), acc);
        acc = td_smlad(td_sxtb16_odd(xa), td_sxtb16_odd(low), acc);
        acc = td_smlad(td_sxtb16(xb), td_sxtb16(high), acc);
        acc = td_smlad(td_sxtb16_odd(xb), td_sxtb16_odd(high), acc);
    }
    return acc;
}

static TD_ALWAYS_INLINE void rows_w4(const td_fully_connected_w4_params *p, const int8_t *x, int8_t *out, int mode)
{
    const uint32_t *w = p->weights;
    const int32_t words = p->depth / TD_W4_PER_WORD;
    for (int32_t row = 0; row < p->rows; ++row, w += words) {
        const int32_t acc = p->bias[row] + row_dot16(w, x, p->in_depth) / TD_W4_SCALE;
        out[row] = td_output(p->rescale, acc, p->output_offset, p->act_min, p->act_max, mode);
    }
}

void td_fully_connected_w4_s8(const td_fully_connected_w4_params *p, const int8_t *in, int8_t *out)
{
    const int mode = td_output_mode(p->fast, p->act_min, p->act_max);
    for (int32_t b = 0; b < p->batches; ++b, in += p->in_depth, out += p->rows) {
        if (mode == TD_OUTPUT_SATURATE) {
            rows_w4(p, in, out, TD_OUTPUT_SATURATE);
        } else if (mode == TD_OUTPUT_FAST) {
            rows_w4(p, in, out, TD_OUTPUT_FAST);
        } else {
            rows_w4(p, in, out, TD_OUTPUT_EXACT);
        }
    }
}

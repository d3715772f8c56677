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

/* The four pairs SMLAD needs from eight inputs: (x0, x2) (x1, x3) (x4, x6) (x5, x7). */
typedef struct {
    uint32_t a_even, a_odd, b_even, b_odd;
} td_w4_inputs;

static TD_ALWAYS_INLINE td_w4_inputs inputs_of(uint32_t xa, uint32_t xb)
{
    const td_w4_inputs x = {td_sxtb16(xa), td_sxtb16_odd(xa), td_sxtb16(xb), td_sxtb16_odd(xb)};
    return x;
}

/* The last 1..7 inputs of a row (the padding weights are 0: nothing past the row is read). */
static TD_ALWAYS_INLINE td_w4_inputs tail_inputs(const int8_t *x, int32_t count)
{
    return inputs_of(td_load_tail(x, count < 4 ? count : 4), count > 4 ? td_load_tail(x + 4, count - 4) : 0);
}

/* acc + 16 * the dot product of one weight word with its eight inputs. */
static TD_ALWAYS_INLINE int32_t word_dot16(uint32_t word, const td_w4_inputs *x, int32_t acc)
{
    const uint32_t low = (word << 4) & TD_W4_LOW_NIBBLES, high = word & TD_W4_LOW_NIBBLES;
    acc = td_smlad(x->a_even, td_sxtb16(low), acc);
    acc = td_smlad(x->a_odd, td_sxtb16_odd(low), acc);
    acc = td_smlad(x->b_even, td_sxtb16(high), acc);
    return td_smlad(x->b_odd, td_sxtb16_odd(high), acc);
}

static TD_ALWAYS_INLINE int8_t output_of(const td_fully_connected_w4_params *p, int32_t row, int32_t acc16, int mode)
{
    return td_output(p->rescale, p->bias[row] + acc16 / TD_W4_SCALE, p->output_offset, p->act_min, p->act_max, mode);
}

static TD_ALWAYS_INLINE void rows_w4(const td_fully_connected_w4_params *p, const int8_t *x, int8_t *out, int mode)
{
    const int32_t words = p->depth / TD_W4_PER_WORD, full = p->in_depth / TD_W4_PER_WORD;
    const int32_t tail = p->in_depth % TD_W4_PER_WORD;
    const uint32_t *w = p->weights;
    int32_t row = 0;
    for (; row + 2 <= p->rows; row += 2, w += 2 * words) {     /* two rows share each unpacked input word */
        const uint32_t *w0 = w, *w1 = w + words;
        const int8_t *xp = x;
        int32_t a0 = 0, a1 = 0;
        for (const uint32_t *end = w0 + full; w0 < end; ++w0, ++w1, xp += TD_W4_PER_WORD) {
            const td_w4_inputs in = inputs_of(td_load4(xp), td_load4(xp + 4));
            a0 = word_dot16(*w0, &in, a0);
            a1 = word_dot16(*w1, &in, a1);
        }
        if (tail) {
            const td_w4_inputs in = tail_inputs(xp, tail);
            a0 = word_dot16(*w0, &in, a0);
            a1 = word_dot16(*w1, &in, a1);
        }
        out[row] = output_of(p, row, a0, mode);
        out[row + 1] = output_of(p, row + 1, a1, mode);
    }
    if (row < p->rows) {
        const int8_t *xp = x;
        int32_t acc = 0;
        for (const uint32_t *end = w + full; w < end; ++w, xp += TD_W4_PER_WORD) {
            const td_w4_inputs in = inputs_of(td_load4(xp), td_load4(xp + 4));
            acc = word_dot16(*w, &in, acc);
        }
        if (tail) {
            const td_w4_inputs in = tail_inputs(xp, tail);
            acc = word_dot16(*w, &in, acc);
        }
        out[row] = output_of(p, row, acc, mode);
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

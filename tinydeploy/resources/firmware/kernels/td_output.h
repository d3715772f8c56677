/* The output stage shared by the convolution kernels: rescale int32
 * accumulators to int8 with per-channel td_rescale records, add the output
 * offset, clamp to the fused activation's range. */
#ifndef TD_OUTPUT_H
#define TD_OUTPUT_H

#include <stdint.h>
#include "td_types.h"
#include "td_fixedpoint.h"
#include "td_simd.h"

/* td_requantize with a td_rescale's multiplier and shift. */
static inline int32_t td_rescale_exact(int32_t x, const td_rescale *r)
{
    return td_requantize(x, r->multiplier, r->left - r->right);
}

/* td_rescale_exact plus the output offset in five instructions, for the layers
 * whose accumulator bounds let the code generator prove it exact (`fast`):
 * SMMULR(acc << left, m) is the rounding doubling high multiply of acc * 2^L,
 * then (round + 2 hi - [hi < 0]) >> right divides by 2^R rounding half away
 * from zero and adds the offset folded into `round`. */
static inline int32_t td_rescale_fast(int32_t acc, const td_rescale *r)
{
    const int32_t hi = td_smmulr((int32_t)((uint32_t)acc << r->left), r->multiplier);
    return (int32_t)((uint32_t)r->round + ((uint32_t)hi << 1) - ((uint32_t)hi >> 31)) >> r->right;
}

typedef struct {
    const td_rescale *rescale;
    int32_t step;                 /* 1 per-channel, 0 per-tensor */
    int32_t offset, lo, hi;
} td_output_stage;

/* How a layer's outputs are computed, chosen once per call and passed down as
 * a compile-time constant: td_rescale_exact, td_rescale_fast (proved exact by
 * the code generator), or td_rescale_fast with a plain 8-bit saturation when
 * the activation range is all of int8 (no fused clamp narrower than int8). */
enum { TD_OUTPUT_EXACT, TD_OUTPUT_FAST, TD_OUTPUT_SATURATE };

static inline int td_output_mode(int32_t fast, int32_t lo, int32_t hi)
{
    return !fast ? TD_OUTPUT_EXACT : (lo == -128 && hi == 127 ? TD_OUTPUT_SATURATE : TD_OUTPUT_FAST);
}

/* One output value in `mode`. */
static TD_ALWAYS_INLINE int8_t td_output(const td_rescale *r, int32_t acc, int32_t offset, int32_t lo, int32_t hi,
                                         int mode)
{
    if (mode == TD_OUTPUT_SATURATE) {
        return (int8_t)td_saturate8(td_rescale_fast(acc, r));
    }
    const int32_t v = mode == TD_OUTPUT_FAST ? td_rescale_fast(acc, r) : td_rescale_exact(acc, r) + offset;
    return (int8_t)td_clamp(v, lo, hi);
}

/* Rescale the accumulators of `columns` (1 or 2) pixels, stored interleaved
 * per channel, into out[ch] and out[distance + ch]: one pass with the stage in
 * registers, each channel's record loaded once. */
static TD_ALWAYS_INLINE void td_requantize_channels(const td_output_stage *o, const int32_t *acc, int32_t channels,
                                                    int32_t columns, int8_t *out, int32_t distance, int mode)
{
    const td_rescale *r = o->rescale;
    const int32_t step = o->step, offset = o->offset, lo = o->lo, hi = o->hi;
    for (const int8_t *end = out + channels; out < end; ++out, r += step, acc += columns) {
        out[0] = td_output(r, acc[0], offset, lo, hi, mode);
        if (columns == 2) {
            out[distance] = td_output(r, acc[1], offset, lo, hi, mode);
        }
    }
}

#endif /* TD_OUTPUT_H */

/* The output stage shared by the convolution kernels: requantize int32
 * accumulators to int8 with per-channel [multiplier, shift] pairs, add the
 * output offset, clamp to the fused activation's range. */
#ifndef TD_OUTPUT_H
#define TD_OUTPUT_H

#include <stdint.h>
#include "td_fixedpoint.h"
#include "td_simd.h"

typedef struct {
    const int32_t *requant;       /* [multiplier, shift] pairs */
    int32_t step;                 /* 2 per-channel, 0 per-tensor */
    int32_t offset, lo, hi;
} td_output_stage;

/* Requantize the accumulators of `columns` (1 or 2) pixels, stored interleaved
 * per channel, into out[ch] and out[distance + ch]: one pass with the stage in
 * registers, each channel's pair loaded once. `fast` (a compile-time constant
 * at each call) selects td_requantize_short, which the code generator proved exact. */
static inline void td_requantize_channels(const td_output_stage *o, const int32_t *acc, int32_t channels,
                                          int32_t columns, int8_t *out, int32_t distance, int fast)
{
    const int32_t *rq = o->requant, step = o->step, offset = o->offset, lo = o->lo, hi = o->hi;
    for (const int8_t *end = out + channels; out < end; ++out, rq += step, acc += columns) {
        const int32_t m = rq[0], shift = rq[1];
        int32_t v = fast ? td_requantize_short(acc[0], m, shift) : td_requantize(acc[0], m, shift);
        out[0] = (int8_t)td_clamp(v + offset, lo, hi);
        if (columns == 2) {
            v = fast ? td_requantize_short(acc[1], m, shift) : td_requantize(acc[1], m, shift);
            out[distance] = (int8_t)td_clamp(v + offset, lo, hi);
        }
    }
}

#endif /* TD_OUTPUT_H */

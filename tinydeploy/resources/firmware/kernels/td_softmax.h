/* SOFTMAX over the last dimension, int8 in, int8 out (td_softmax.c), with
 * gemmlowp's fixed-point exp and reciprocal, as TFLite Micro's reference.
 *
 * Layout:   `rows` rows of `depth` values in, the same out.
 * Ranges:   the output has scale 1/256 and zero point -128 (the code
 *           generator checks). Differences from the row maximum are scaled
 *           by input_multiplier << input_left_shift (beta and the input
 *           scale); those below diff_min give exp 0.
 * Aliasing: out may be exactly in (a row is read in full before any of it
 *           is written, then each value read before it is written); no
 *           other overlap.
 * Scratch:  none.
 */
#ifndef TD_SOFTMAX_H
#define TD_SOFTMAX_H

#include <stdint.h>
#include "td_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t rows;
    int32_t depth;
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} td_softmax_params;

void td_softmax_s8(const td_softmax_params *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TD_SOFTMAX_H */

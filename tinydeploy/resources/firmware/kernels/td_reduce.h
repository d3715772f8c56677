/* MEAN over any set of axes of a 4-D input, int8 (td_reduce.c), as TFLite
 * Micro computes it: the sum over the reduced axes, corrected for the input
 * zero point, rescaled once by a multiplier that includes 1 / count.
 *
 * Layout:   in is dense 4-D with element strides `stride`; out is dense
 *           over `outer` (the input shape with reduced axes set to 1), one
 *           value per combination of kept indices.
 * Ranges:   as td_types.h; count * 128 must fit in int32 (the sum is int32).
 * Aliasing: out must not overlap in.
 * Scratch:  none.
 */
#ifndef TD_REDUCE_H
#define TD_REDUCE_H

#include <stdint.h>
#include "td_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t outer[4];             /* input shape with reduced axes set to 1 */
    int32_t inner[4];             /* input shape with kept axes set to 1 */
    int32_t stride[4];            /* input element strides */
    int32_t count;                /* elements averaged per output */
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier;           /* input scale / output scale / count */
    int32_t shift;
} td_mean_params;

void td_mean_s8(const td_mean_params *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TD_REDUCE_H */

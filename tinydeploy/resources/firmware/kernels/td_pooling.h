/* AVERAGE_POOL_2D and MAX_POOL_2D, int8 (td_pooling.c), as TFLite Micro's
 * reference kernels: windows are clipped to the input, the average divides
 * by the taps inside (rounding half away from zero).
 *
 * Layout:   in [batches][in_h][in_w][in_c], out [batches][out_h][out_w]
 *           [in_c] (NHWC, td_window; out_c == in_c, no dilation).
 * Ranges:   input and output share scale and zero point (no rescale);
 *           act_min <= act_max in [-128, 127].
 * Aliasing: out may start before in and overlap it (streaming), as in
 *           td_conv.h: output pixels are written in raster order, and the
 *           output bytes through pixel p + 1 must end before the first input
 *           byte that pixel p or a later one reads.
 * Scratch:  none.
 */
#ifndef TD_POOLING_H
#define TD_POOLING_H

#include <stdint.h>
#include "td_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    td_window win;
    int32_t act_min;
    int32_t act_max;
} td_pool_params;

void td_average_pool_s8(const td_pool_params *p, const int8_t *in, int8_t *out);
void td_max_pool_s8(const td_pool_params *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TD_POOLING_H */

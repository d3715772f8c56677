/* QUANTIZE (float32 -> int8, int8 -> int8) and DEQUANTIZE (int8 -> float32)
 * (td_quantize.c), as TFLite Micro's reference kernels: the model's float
 * input and output ends.
 *
 * Layout:   `size` values in, `size` out (float32 or int8 as named).
 * Ranges:   float -> int8: round(in / scale) + output_zero_point, halves
 *           away from zero, NaN as 0, saturated to int8. int8 -> int8:
 *           (in - input_zero_point) rescaled by multiplier * 2^(shift - 31)
 *           plus output_zero_point, saturated. int8 -> float:
 *           scale * (in - input_zero_point).
 * Aliasing: td_requantize_s8: out may be exactly in (element i is read
 *           before it is written). The float ends: out must not overlap in.
 * Scratch:  none.
 */
#ifndef TD_QUANTIZE_H
#define TD_QUANTIZE_H

#include <stdint.h>
#include "td_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t size;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier;           /* int8 -> int8 */
    int32_t shift;
    float scale;                  /* float -> int8: output scale; int8 -> float: input scale */
} td_quantize_params;

void td_quantize_f32_s8(const td_quantize_params *p, const float *in, int8_t *out);
void td_requantize_s8(const td_quantize_params *p, const int8_t *in, int8_t *out);
void td_dequantize_s8_f32(const td_quantize_params *p, const int8_t *in, float *out);

#ifdef __cplusplus
}
#endif

#endif /* TD_QUANTIZE_H */

/* LOGISTIC and TANH, int8 (td_activation.c), with gemmlowp's fixed-point
 * exp and reciprocal, as TFLite Micro's reference kernels; RELU and RELU6
 * (td_relu.c).
 *
 * Layout:   `size` int8 values in, `size` out.
 * Ranges:   LOGISTIC's output has scale 1/256 and zero point -128, TANH's
 *           1/128 and 0 (the code generator checks). The input is brought
 *           to Q4.27 by input_multiplier and input_left_shift; inputs beyond
 *           +-input_range_radius of the zero point saturate.
 * Aliasing: out may be exactly in (element i is read before it is written);
 *           no other overlap.
 * Scratch:  none.
 */
#ifndef TD_ACTIVATION_H
#define TD_ACTIVATION_H

#include <stdint.h>
#include "td_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t size;
    int32_t input_zero_point;
    int32_t input_range_radius;
    int32_t input_multiplier;
    int32_t input_left_shift;
} td_activation_params;

void td_logistic_s8(const td_activation_params *p, const int8_t *in, int8_t *out);
void td_tanh_s8(const td_activation_params *p, const int8_t *in, int8_t *out);

/* RELU and RELU6: out = clamp(output_offset + requantize(in - input_offset),
 * act_min, act_max). RELU rescales to the output's quantization; RELU6, as
 * TFLite Micro runs it, clamps in the input's quantization (identity
 * multiplier). Same layout, ranges and aliasing as above; no scratch. */
typedef struct {
    int32_t size;
    int32_t input_offset;         /* input zero point */
    int32_t output_offset;        /* output zero point */
    int32_t multiplier;           /* input scale / output scale, TFLite's Q31 multiplier and shift */
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} td_relu_params;

void td_relu_s8(const td_relu_params *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TD_ACTIVATION_H */

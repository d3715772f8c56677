/* LOGISTIC and TANH, int8 (td_activation.c), with gemmlowp's fixed-point
 * exp and reciprocal, as TFLite Micro's reference kernels.
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

#ifdef __cplusplus
}
#endif

#endif /* TD_ACTIVATION_H */

/* Elementwise ADD and MUL, int8, with broadcasting (td_elementwise.c), as
 * TFLite Micro's reference kernels compute them.
 *
 * Layout:   out is dense over the 4-D `shape`; input n's element at index
 *           (i0, i1, i2, i3) is in_n[i0 * stride_n[0] + ... + i3 *
 *           stride_n[3]], a stride of 0 broadcasting that dimension.
 * Ranges:   as td_types.h. ADD: left_shift 20, input and output shifts <= 0
 *           (the code generator refuses an ADD whose rescale is above 1).
 *           MUL: any output shift (> 0 takes a slower general path).
 * Aliasing: out may be exactly in1 or in2 when that input is not broadcast
 *           (element i is read before it is written); no other overlap.
 * Scratch:  td_add_scratch_bytes(p): both inputs' rescaled values for every
 *           int8 code when the output has at least
 *           TD_ADD_TABLE_MIN_ELEMENTS elements, else none (scratch NULL:
 *           each element rescales its inputs). MUL takes none.
 */
#ifndef TD_ELEMENTWISE_H
#define TD_ELEMENTWISE_H

#include <stdint.h>
#include "td_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Below this many output elements, building ADD's lookup tables costs more than it saves. */
#define TD_ADD_TABLE_MIN_ELEMENTS 1024

typedef struct {
    int32_t shape[4];             /* output shape */
    int32_t stride1[4];           /* element strides of input 1, 0 where broadcast */
    int32_t stride2[4];
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t left_shift;           /* ADD only */
    int32_t input1_multiplier;    /* ADD only */
    int32_t input1_shift;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
} td_binary_params;

/* ADD: with `scratch` (not NULL) both inputs' rescaled values for all 256
 * int8 codes are tabulated first, so each element costs two lookups instead
 * of two rescales. */
void td_add_s8(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int8_t *scratch);
int32_t td_add_scratch_bytes(const td_binary_params *p);
void td_mul_s8(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TD_ELEMENTWISE_H */

/* Data movement (td_shape.c): PAD with a constant, CONCATENATION, and the
 * plain copies of the model API.
 *
 * Layout:   PAD: in is dense over in_shape, out dense over out_shape =
 *           in_shape + padding; input element (j0..j3) lands at (j0 +
 *           before[0], ..., j3 + before[3]), every other output byte is
 *           `value`. CONCATENATION along one axis: for each of `outer`
 *           slices, chunk[i] bytes from each input i in turn.
 * Ranges:   any int8 bytes; PAD's value is an int8 (the output zero point or
 *           PADV2's constant).
 * Aliasing: PAD and CONCATENATION: out must not overlap any input.
 *           td_copy_s8: out may be exactly in (nothing is copied); no other
 *           overlap.
 * Scratch:  none.
 */
#ifndef TD_SHAPE_H
#define TD_SHAPE_H

#include <stdint.h>
#include "td_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* PAD (int8, constant value) of a 4-D tensor. */
typedef struct {
    int32_t in_shape[4];
    int32_t out_shape[4];
    int32_t before[4];            /* padding before each dimension */
    int32_t value;
} td_pad_params;

void td_pad_s8(const td_pad_params *p, const int8_t *in, int8_t *out);

/* CONCATENATION along one axis: outer * (sum of input chunks) bytes. */
typedef struct {
    int32_t count;                /* number of inputs */
    int32_t outer;                /* product of the dimensions before the axis */
    const int32_t *chunk;         /* per input: bytes from the axis on */
    const int8_t *const *inputs;  /* arena addresses of the inputs */
} td_concat_params;

void td_concatenation_s8(const td_concat_params *p, int8_t *out);

/* Copies `bytes` bytes (the model API's input and output copies). */
void td_copy_s8(const int8_t *in, int8_t *out, int32_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* TD_SHAPE_H */

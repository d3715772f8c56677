/* tinydeploy kernels: the conventions every family header (td_<family>.h)
 * relies on, and the structs more than one family shares.
 *
 * Conventions, for every kernel unless its family header says otherwise:
 * - Tensors are dense, row-major, int8 (one byte per value, any alignment);
 *   4-D activations are NHWC. Every value in [-128, 127] is valid input.
 * - Quantization is TFLite's: real = scale * (q - zero_point). An "offset"
 *   field is a zero point folded into an addition (input offsets are the
 *   negated input zero point, in [-127, 128]; output offsets are the output
 *   zero point, in [-128, 127]); act_min <= act_max lie in [-128, 127].
 * - Multipliers are TFLite's Q0.31 fixed point: 0 or in [2^30, 2^31), the
 *   real factor being multiplier * 2^(shift - 31), shift >= -31 (a smaller
 *   factor is multiplier 0).
 * - Params structs and the constant arrays they point at are prepared by the
 *   code generator and never written by a kernel.
 * - Aliasing: `out` must not overlap any input unless the family header
 *   allows it (exact in-place use, or streaming overlap).
 * - Scratch: a kernel that takes `scratch` states its size with a
 *   td_<op>[_<variant>]_scratch_bytes(&params) function, the one definition
 *   of that number; the buffer is 4-byte aligned, overlaps no tensor of the
 *   call, is undefined on entry and dead after it, and is NULL when the
 *   size is 0.
 * - Nothing uses floating point except the float QUANTIZE/DEQUANTIZE ends.
 */
#ifndef TD_TYPES_H
#define TD_TYPES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One output channel's rescale, prepared by the code generator (the
 * rescale_records of the lowering): TFLite's multiplier and shift as
 * left = max(shift, 0) + 1, right = max(-shift, 0) + 1, and
 * round = 2^(right - 1) + (output_offset << right) for the fast path
 * (td_output.h). */
typedef struct {
    int32_t multiplier;
    int32_t left, right;
    int32_t round;
} td_rescale;

/* The sliding-window geometry shared by convolutions and pooling (NHWC).
 * pad_* is the number of implicit rows/columns before the input; every size,
 * stride and dilation is >= 1, and out_h/out_w are what TFLite's SAME or
 * VALID padding gives. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_h, pad_w;
} td_window;

#ifdef __cplusplus
}
#endif

#endif /* TD_TYPES_H */

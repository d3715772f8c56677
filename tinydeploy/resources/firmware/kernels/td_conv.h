/* CONV_2D and DEPTHWISE_CONV_2D, int8 with per-channel requantization:
 * - td_conv_gemm_s8: ungrouped CONV_2D (and DEPTHWISE_CONV_2D over one input
 *   channel) as a matrix product over pairs of output pixels (td_gemm.c);
 * - td_depthwise_conv_m1_s8: DEPTHWISE_CONV_2D with depth multiplier 1
 *   through a ring of unpacked input rows (td_depthwise.c);
 * - td_conv_s8, td_depthwise_conv_s8: any groups / depth multiplier, the
 *   general kernels (td_conv.c).
 *
 * Layout:   in is [batches][in_h][in_w][in_c], out [batches][out_h][out_w]
 *           [out_c] (NHWC, td_window). Padding taps contribute nothing (not
 *           -input_offset * weight), exactly as the reference kernels do.
 * Ranges:   as td_types.h; accumulators wrap as int32, as in the reference.
 * Aliasing: out may start before in and overlap it (streaming): output
 *           pixels are written in raster order, so for every output pixel p
 *           the output bytes through pixel p + 1 must end before the first
 *           input byte that pixel p or a later one reads (the code
 *           generator's stream distance). Scratch overlaps neither.
 * Scratch:  td_conv_gemm_scratch_bytes(p) (two packed and two gathered
 *           windows, the accumulators of two pixels) and
 *           td_depthwise_conv_m1_scratch_bytes(p) (the ring of unpacked
 *           rows); the general kernels take none.
 */
#ifndef TD_CONV_H
#define TD_CONV_H

#include <stdint.h>
#include "td_types.h"
#include "td_fully_connected.h"       /* td_gemm_params */

#ifdef __cplusplus
extern "C" {
#endif

/* The general kernels: weights as in the model, one rescale record per
 * output channel, applied exactly (td_rescale_exact: multiplier and
 * left - right only). */
typedef struct {
    td_window win;
    int32_t input_offset;         /* -input zero point */
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    int32_t group_in_c;           /* conv: input channels per filter; depthwise: depth multiplier */
    const int8_t *weights;        /* conv [out_c][fh][fw][group_in_c]; depthwise [fh][fw][out_c] */
    const int32_t *bias;          /* [out_c] */
    const td_rescale *rescale;    /* [out_c] */
} td_conv_params;

void td_conv_s8(const td_conv_params *p, const int8_t *in, int8_t *out);
void td_depthwise_conv_s8(const td_conv_params *p, const int8_t *in, int8_t *out);

/* DEPTHWISE_CONV_2D with depth multiplier 1 (in_c == out_c): input rows
 * unpacked once into a ring in `scratch`, four channels per step. Weights
 * pre-unpacked by the code generator, channels padded to a multiple of 4;
 * filter_h <= TD_DEPTHWISE_MAX_FILTER_H. */
#define TD_DEPTHWISE_MAX_FILTER_H 16
typedef struct {
    td_window win;
    int32_t input_offset;         /* -input zero point */
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    int32_t fast;                 /* 1: td_rescale_fast is exact for every accumulator */
    const uint32_t *weights;      /* [group][fh * fw][(c0, c2) (c1, c3) int16 pairs] */
    const int32_t *bias;          /* [groups * 4] */
    const td_rescale *rescale;    /* [groups * 4] */
} td_depthwise_params;

void td_depthwise_conv_m1_s8(const td_depthwise_params *p, const int8_t *in, int8_t *out, int8_t *scratch);
int32_t td_depthwise_conv_m1_scratch_bytes(const td_depthwise_params *p);

/* CONV_2D without groups as a matrix product over pairs of output pixels:
 * each pixel's window ([fh][fw][in_c], the weights' order) is gathered into
 * `scratch`, padding taps set to the input zero point `pad_value`, which
 * the bias folds away (1x1 windows are read in place). gemm.rows is out_c,
 * gemm.depth the window rounded up to a multiple of 4. */
typedef struct {
    td_window win;
    int32_t pad_value;
    td_gemm_params gemm;
} td_conv_gemm_params;

void td_conv_gemm_s8(const td_conv_gemm_params *p, const int8_t *in, int8_t *out, int8_t *scratch);
int32_t td_conv_gemm_scratch_bytes(const td_conv_gemm_params *p);

#ifdef __cplusplus
}
#endif

#endif /* TD_CONV_H */

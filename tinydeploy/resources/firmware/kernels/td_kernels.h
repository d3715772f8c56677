/* tinydeploy int8 kernels: plain C99, byte-identical to TFLite Micro's
 * reference kernels. Every constant a kernel needs (requantization
 * multipliers, folded biases, clamp bounds) is computed on the host by the
 * code generator, so nothing here touches floating point.
 */
#ifndef TD_KERNELS_H
#define TD_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One output channel's rescale, prepared by the code generator (lower.py's
 * rescale_records): TFLite's multiplier and shift as left = max(shift, 0) + 1,
 * right = max(-shift, 0) + 1, and round = 2^(right - 1) + (output_offset << right)
 * for the fast path (td_output.h). */
typedef struct {
    int32_t multiplier;
    int32_t left, right;
    int32_t round;
} td_rescale;

/* One matrix-vector product with requantization: out[o] = clamp(requant(
 * bias[o] + sum_k w[o][k] * x[k]) + output_offset). The input offset is folded
 * into the bias; weights are laid out by the code generator (td_gemm.c). */
typedef struct {
    int32_t depth;                /* k, padded to a multiple of 4 */
    int32_t rows;                 /* outputs */
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    int32_t per_channel;          /* 1: `rescale` has `rows` records, else one */
    int32_t fast;                 /* 1: td_rescale_fast is exact for every accumulator */
    const uint32_t *weights;      /* int8, four per word, in td_gemm.c's order */
    const int32_t *bias;
    const td_rescale *rescale;
} td_gemm_params;

/* FULLY_CONNECTED: `batches` rows of `in_depth` int8 values. `scratch`
 * (more than one row): 6 * gemm.depth + 8 * gemm.rows bytes, 4-byte aligned. */
typedef struct {
    int32_t batches;
    int32_t in_depth;
    td_gemm_params gemm;
} td_fully_connected_params;

void td_fully_connected_s8(const td_fully_connected_params *p, const int8_t *in, int8_t *out, int8_t *scratch);

/* SOFTMAX over the last dimension, int8 in, int8 out (scale 1/256, zero point -128). */
typedef struct {
    int32_t rows;
    int32_t depth;
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} td_softmax_params;

void td_softmax_s8(const td_softmax_params *p, const int8_t *in, int8_t *out);

/* Copies `bytes` bytes (the model API's input and output copies). */
void td_copy_s8(const int8_t *in, int8_t *out, int32_t bytes);

/* The sliding-window geometry shared by convolutions and pooling (NHWC).
 * pad_* is the number of implicit rows/columns before the input. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_h, pad_w;
} td_window;

/* CONV_2D and DEPTHWISE_CONV_2D, per-channel requantization.
 * Padding taps contribute nothing (not -input_offset * weight), exactly as
 * the reference kernels do. */
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
/* DEPTHWISE_CONV_2D with depth multiplier 1 (td_depthwise.c): input rows
 * unpacked once into a ring in `scratch`, four channels per step. Weights
 * pre-unpacked by the code generator, channels padded to a multiple of 4. */
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

void td_depthwise_conv_s8_m1(const td_depthwise_params *p, const int8_t *in, int8_t *out, int8_t *scratch);

/* CONV_2D without groups as a matrix product over pairs of output pixels:
 * each pixel's window is gathered into `scratch` (6 * gemm.depth + 8 *
 * gemm.rows bytes, 4-byte aligned), padding taps set to the input zero point
 * `pad_value` (1x1 windows are read in place). */
typedef struct {
    td_window win;
    int32_t pad_value;
    td_gemm_params gemm;
} td_conv_gemm_params;

void td_conv_gemm_s8(const td_conv_gemm_params *p, const int8_t *in, int8_t *out, int8_t *scratch);

/* AVERAGE_POOL_2D and MAX_POOL_2D (input and output share quantization). */
typedef struct {
    td_window win;
    int32_t act_min;
    int32_t act_max;
} td_pool_params;

void td_average_pool_s8(const td_pool_params *p, const int8_t *in, int8_t *out);
void td_max_pool_s8(const td_pool_params *p, const int8_t *in, int8_t *out);

/* Elementwise ADD and MUL over a 4-D output; an input broadcasts along any
 * dimension whose stride is 0. */
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

/* ADD: `scratch` (2048 bytes, 4-byte aligned, or NULL) holds both inputs' rescaled values
 * for all 256 int8 codes, so each element costs two lookups instead of two rescales. */
void td_add_s8(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int8_t *scratch);
void td_mul_s8(const td_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);

/* LOGISTIC (output scale 1/256, zero point -128) and TANH (1/128, 0). */
typedef struct {
    int32_t size;
    int32_t input_zero_point;
    int32_t input_range_radius;
    int32_t input_multiplier;
    int32_t input_left_shift;
} td_activation_params;

void td_logistic_s8(const td_activation_params *p, const int8_t *in, int8_t *out);
void td_tanh_s8(const td_activation_params *p, const int8_t *in, int8_t *out);

/* QUANTIZE (float -> int8, int8 -> int8) and DEQUANTIZE (int8 -> float). */
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

/* MEAN over any set of axes of a 4-D input. */
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

#ifdef __cplusplus
}
#endif

#endif /* TD_KERNELS_H */

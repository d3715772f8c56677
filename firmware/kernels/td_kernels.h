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

/* FULLY_CONNECTED: out[b][o] = clamp(requant(sum_i w[o][i] * in[b][i] + bias[o]) + out_zp).
 * The input offset is folded into `bias` on the host:
 * bias[o] = b[o] - in_zp * sum_i w[o][i]. */
typedef struct {
    int32_t batches;
    int32_t in_depth;
    int32_t out_depth;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    int32_t per_channel;          /* 1: multiplier/shift have out_depth entries */
    const int8_t *weights;        /* [out_depth][in_depth] */
    const int32_t *bias;          /* [out_depth], input offset folded in */
    const int32_t *multiplier;
    const int32_t *shift;
} td_fully_connected_params;

void td_fully_connected_s8(const td_fully_connected_params *p, const int8_t *in, int8_t *out);

/* SOFTMAX over the last dimension, int8 in, int8 out (scale 1/256, zero point -128). */
typedef struct {
    int32_t rows;
    int32_t depth;
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} td_softmax_params;

void td_softmax_s8(const td_softmax_params *p, const int8_t *in, int8_t *out);

/* Copies `bytes` bytes; used where a reshape cannot alias its input. */
void td_copy_s8(const int8_t *in, int8_t *out, int32_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* TD_KERNELS_H */

/* FULLY_CONNECTED, and the matrix product it shares with CONV_2D (td_conv.h's
 * td_conv_gemm_s8); implemented in td_gemm.c.
 *
 * Layout:   in is `batches` rows of `in_depth` int8 values, out `batches`
 *           rows of `gemm.rows` int8 values, both contiguous.
 *           out[b][o] = clamp(requant(bias[o] + sum_k w[o][k] * in[b][k])
 *           + output_offset, act_min, act_max), the input offset folded into
 *           the bias by the code generator.
 * Weights:  int8, four per word, in td_gemm.c's order: rows in blocks of four
 *           interleaved by 4-byte chunks, the last rows % 4 plain, every row
 *           padded with zero weights to `depth` (in_depth rounded up to a
 *           multiple of 4).
 * Ranges:   as td_types.h; accumulators wrap as int32, as in the reference.
 * Aliasing: out must not overlap in.
 * Scratch:  td_fully_connected_scratch_bytes(p): none for one row (read in
 *           place), else two packed and two gathered columns and the
 *           accumulators of two columns.
 */
#ifndef TD_FULLY_CONNECTED_H
#define TD_FULLY_CONNECTED_H

#include <stdint.h>
#include "td_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One matrix-vector product with requantization: out[o] = clamp(requant(
 * bias[o] + sum_k w[o][k] * x[k]) + output_offset). */
typedef struct {
    int32_t depth;                /* k, padded to a multiple of 4 */
    int32_t rows;                 /* outputs */
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    int32_t per_channel;          /* 1: `rescale` has `rows` records, else one */
    int32_t fast;                 /* 1: td_rescale_fast is exact for every accumulator */
    const uint32_t *weights;      /* int8, four per word, in td_gemm.c's order */
    const int32_t *bias;          /* [rows], the input offset folded in */
    const td_rescale *rescale;
} td_gemm_params;

typedef struct {
    int32_t batches;              /* rows of input */
    int32_t in_depth;             /* values per input row (gemm.depth is it rounded up to 4) */
    td_gemm_params gemm;
} td_fully_connected_params;

void td_fully_connected_s8(const td_fully_connected_params *p, const int8_t *in, int8_t *out, int8_t *scratch);
int32_t td_fully_connected_scratch_bytes(const td_fully_connected_params *p);

/* FULLY_CONNECTED with packed 4-bit weights (td_fully_connected_w4.c), one
 * per-tensor scale, as TFLite Micro takes them. Weights: each row depth / 8
 * words; in word c, byte j holds w[8c + j] (low nibble) and w[8c + 4 + j]
 * (high nibble), values -8..7, rows padded with zero weights to `depth`.
 * Inputs are read in place; no scratch. The code generator guarantees
 * 16 * |sum_k w * x| < 2^31 (the inner loop accumulates 16 * w * x).
 * Aliasing: out must not overlap in. */
typedef struct {
    int32_t batches;
    int32_t in_depth;
    int32_t depth;                /* in_depth rounded up to a multiple of 8 */
    int32_t rows;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    int32_t fast;                 /* 1: td_rescale_fast is exact for every accumulator */
    const uint32_t *weights;
    const int32_t *bias;          /* [rows], the input offset folded in */
    const td_rescale *rescale;    /* one record */
} td_fully_connected_w4_params;

void td_fully_connected_w4_s8(const td_fully_connected_w4_params *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TD_FULLY_CONNECTED_H */

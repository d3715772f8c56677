/* tinydeploy int8 kernels: plain C99, byte-identical to TFLite Micro's
 * reference kernels. Every constant a kernel needs (requantization
 * multipliers, folded biases, clamp bounds) is computed on the host by the
 * code generator, so nothing here touches floating point but the float
 * ends of QUANTIZE and DEQUANTIZE.
 *
 * The umbrella header: one header per op family, each stating at its top
 * the tensor layout, value ranges, aliasing and scratch of its kernels
 * (conventions shared by all in td_types.h). Public functions are named
 * td_<op>[_<variant>]_<s8|s16>; a kernel that takes scratch has
 * td_<op>[_<variant>]_scratch_bytes(&params) beside it.
 */
#ifndef TD_KERNELS_H
#define TD_KERNELS_H

#include "td_types.h"             /* td_rescale, td_window, conventions */
#include "td_fully_connected.h"   /* FULLY_CONNECTED, td_gemm_params */
#include "td_conv.h"              /* CONV_2D, DEPTHWISE_CONV_2D */
#include "td_pooling.h"           /* AVERAGE_POOL_2D, MAX_POOL_2D */
#include "td_elementwise.h"       /* ADD, MUL */
#include "td_activation.h"        /* LOGISTIC, TANH */
#include "td_softmax.h"           /* SOFTMAX */
#include "td_quantize.h"          /* QUANTIZE, DEQUANTIZE */
#include "td_reduce.h"            /* MEAN */
#include "td_shape.h"             /* PAD, CONCATENATION, copies */

#endif /* TD_KERNELS_H */

"""RELU and RELU6: td_relu_s8 (td_activation.h), as TFLite Micro computes them.

RELU requantizes to the output's scale (multiplier from the float32 quotient of the scales) and
clamps below at the output zero point. RELU6 clamps in the input's quantization, between its zero
point and 6.0 quantized with it, and ignores the output's parameters, as TFLite Micro does."""
from __future__ import annotations

import numpy as np

from tinydeploy.compiler import quant
from tinydeploy.compiler.ops import OpSpec, register
from tinydeploy.compiler.ops.common import INT8, int8_io, zero_point, require_same_shape
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator

RELU6_CEILING = 6.0
IDENTITY = quant.quantize_multiplier(1.0)         # (2^30, 1): requantize() returns its input


def lower(graph: Graph, op: Operator) -> Step:
    x, y = int8_io(graph, op)
    require_same_shape(graph, op, x, y)
    if op.op == "RELU":
        multiplier, shift = quant.quantize_multiplier(float(np.float32(x.scale[0]) / np.float32(y.scale[0])))
        offset, low, high = zero_point(y), max(quant.INT8_MIN, zero_point(y)), quant.INT8_MAX
    else:
        multiplier, shift = IDENTITY
        six = int(quant.round_half_away(float(np.float32(RELU6_CEILING) / np.float32(x.scale[0])))) + zero_point(x)
        offset, low, high = zero_point(x), zero_point(x), min(max(six, quant.INT8_MIN), quant.INT8_MAX)
    return Step(op.index, op.op, "td_relu_s8", "td_relu_params", [x.index], [y.index],
                scalars=dict(size=x.size, input_offset=zero_point(x), output_offset=offset, multiplier=multiplier,
                             shift=shift, act_min=low, act_max=high))


register(OpSpec(("RELU", "RELU6"), lower, INT8, Aliasing.IN_PLACE,
                notes="RELU rescales to the output; RELU6 clamps in the input's quantization, as TFLite Micro"))

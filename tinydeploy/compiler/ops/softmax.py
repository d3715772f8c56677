"""SOFTMAX over the last dimension: td_softmax_s8 (td_softmax.h), gemmlowp fixed-point exp and reciprocal."""
from __future__ import annotations

from tinydeploy.compiler import quant
from tinydeploy.compiler.ops import OpSpec, register
from tinydeploy.compiler.ops.common import INT8, int8_io, refuse, zero_point, require_same_shape
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator

OUTPUT_SCALE, OUTPUT_ZERO_POINT = 1.0 / 256, -128      # the only int8 softmax output TFLite Micro takes


def lower(graph: Graph, op: Operator) -> Step:
    x, y = int8_io(graph, op)
    require_same_shape(graph, op, x, y)
    if zero_point(y) != OUTPUT_ZERO_POINT or float(y.scale[0]) != OUTPUT_SCALE:
        raise refuse(graph, op, "int8 output must have scale 1/256 and zero point -128")
    depth = x.shape[-1]
    mult, shift, diff_min = quant.softmax_params(op.options.get("beta", 1.0), x.scale[0])
    return Step(op.index, op.op, "td_softmax_s8", "td_softmax_params", [x.index], [y.index],
                scalars=dict(rows=x.size // depth, depth=depth, input_multiplier=mult,
                             input_left_shift=shift, diff_min=diff_min))


register(OpSpec(("SOFTMAX",), lower, INT8, Aliasing.NONE, notes="int8 in and out"))

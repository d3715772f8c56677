"""LOGISTIC and TANH: td_logistic_s8, td_tanh_s8 (td_activation.h), gemmlowp fixed point."""
from __future__ import annotations

from tinydeploy.compiler import quant
from tinydeploy.compiler.ops import OpSpec, register
from tinydeploy.compiler.ops.common import INT8, int8_io, refuse, zero_point, require_same_shape
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator

LOGISTIC_OUTPUT_ZERO_POINT = -128     # int8 LOGISTIC outputs have scale 1/256 and zero point -128


def lower(graph: Graph, op: Operator) -> Step:
    x, y = int8_io(graph, op)
    require_same_shape(graph, op, x, y)
    logistic = op.op == "LOGISTIC"
    if logistic and zero_point(y) != LOGISTIC_OUTPUT_ZERO_POINT:
        raise refuse(graph, op, f"int8 output must have zero point {LOGISTIC_OUTPUT_ZERO_POINT}, not {zero_point(y)}")
    mult, shift, radius = quant.sigmoid_input_params(x.scale[0])
    return Step(op.index, op.op, "td_logistic_s8" if logistic else "td_tanh_s8", "td_activation_params",
                [x.index], [y.index],
                scalars=dict(size=x.size, input_zero_point=zero_point(x), input_range_radius=radius,
                             input_multiplier=mult, input_left_shift=shift))


register(OpSpec(("LOGISTIC", "TANH"), lower, INT8, Aliasing.IN_PLACE, notes="int8 in and out"))

"""QUANTIZE and DEQUANTIZE at the model boundary and between int8 scales (td_quantize.h)."""
from __future__ import annotations

from tinydeploy.compiler import quant
from tinydeploy.compiler.ops import OpSpec, register
from tinydeploy.compiler.ops.common import refuse, require_int8, zero_point, require_same_shape
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator

BOUNDARY = ("int8", "float32")


def lower_quantize(graph: Graph, op: Operator) -> Step:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_same_shape(graph, op, x, y)
    require_int8(graph, op, y, "output")
    base = dict(size=x.size, input_zero_point=0, output_zero_point=zero_point(y), multiplier=0, shift=0, scale=1.0)
    if x.dtype == "float32":
        base.update(scale=float(y.scale[0]))
        return Step(op.index, op.op, "td_quantize_f32_s8", "td_quantize_params", [x.index], [y.index], scalars=base)
    if x.dtype == "int8" and x.is_quantized:
        mult, shift = quant.quantize_multiplier(float(x.scale[0]) / float(y.scale[0]))
        base.update(input_zero_point=zero_point(x), multiplier=mult, shift=shift)
        return Step(op.index, op.op, "td_requantize_s8", "td_quantize_params", [x.index], [y.index], scalars=base)
    raise refuse(graph, op, f"quantizing {x.dtype} to {y.dtype} is not supported (float32 or int8 to int8 only)")


def lower_dequantize(graph: Graph, op: Operator) -> Step:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_same_shape(graph, op, x, y)
    require_int8(graph, op, x, "input")
    if y.dtype != "float32":
        raise refuse(graph, op, f"dequantizing to {y.dtype} is not supported (int8 to float32 only)")
    return Step(op.index, op.op, "td_dequantize_s8_f32", "td_quantize_params", [x.index], [y.index],
                scalars=dict(size=x.size, input_zero_point=zero_point(x), output_zero_point=0, multiplier=0, shift=0,
                             scale=float(x.scale[0])))


# Writing int8 element i after reading element i is safe over an input of the same or a wider type.
register(OpSpec(("QUANTIZE",), lower_quantize, BOUNDARY, Aliasing.IN_PLACE,
                notes="float32 to int8, int8 to int8 (requantize)"))
register(OpSpec(("DEQUANTIZE",), lower_dequantize, BOUNDARY, Aliasing.NONE, notes="int8 to float32"))

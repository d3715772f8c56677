"""ADD and MUL with broadcasting: td_add_s8, td_mul_s8 (td_elementwise.h)."""
from __future__ import annotations

import numpy as np

from tinydeploy.compiler import quant
from tinydeploy.compiler.ops import OpSpec, register
from tinydeploy.compiler.ops.common import (INT8, MAX_RANK, activation, refuse, require_int8, shape4, strides,
                                            zero_point)
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator, Tensor

INPUT1, INPUT2 = 0, 1
OUTPUT = 0
ADD_TABLE_BYTES = 2 * 256 * 4         # td_add_scratch_bytes: both inputs rescaled for every int8 code
ADD_TABLE_MIN_ELEMENTS = 1024         # TD_ADD_TABLE_MIN_ELEMENTS: below it, building the tables costs more


def _broadcast_strides(graph: Graph, op: Operator, t: Tensor, out_shape: list[int]) -> list[int]:
    shape = shape4(t.shape)
    for have, want in zip(shape, out_shape):
        if have not in (1, want):
            raise refuse(graph, op, f"input shape {list(t.shape)} does not broadcast to the output {out_shape}")
    return [0 if have == 1 and want != 1 else s for have, want, s in zip(shape, out_shape, strides(shape))]


def lower(graph: Graph, op: Operator) -> Step:
    a, b = graph.tensors[op.inputs[INPUT1]], graph.tensors[op.inputs[INPUT2]]
    y = graph.tensors[op.outputs[OUTPUT]]
    for t, role in ((a, "first input"), (b, "second input"), (y, "output")):
        require_int8(graph, op, t, role)
    if max(len(a.shape), len(b.shape), len(y.shape)) > MAX_RANK:
        raise refuse(graph, op, f"operands with more than {MAX_RANK} dimensions are not supported")
    out_shape = shape4(y.shape)
    stride1, stride2 = _broadcast_strides(graph, op, a, out_shape), _broadcast_strides(graph, op, b, out_shape)
    # The output is exactly the inputs' broadcast shape: TFLite Micro aborts on a larger one when the inputs
    # have one shape, and reads past the inputs otherwise.
    broadcast = [max(p, q) for p, q in zip(shape4(a.shape), shape4(b.shape))]
    if broadcast != out_shape:
        raise refuse(graph, op, f"output shape {list(y.shape)} is not the inputs' broadcast shape {broadcast} "
                                f"(inputs {list(a.shape)} and {list(b.shape)})")
    act_min, act_max = activation(graph, op, y)
    scalars = dict(shape=out_shape, stride1=stride1, stride2=stride2, input1_offset=-zero_point(a),
                   input2_offset=-zero_point(b), output_offset=zero_point(y), act_min=act_min, act_max=act_max)
    if op.op == "ADD":
        params = quant.add_params(a.scale[0], b.scale[0], y.scale[0])
        if params["output_shift"] > 0:
            raise refuse(graph, op, "the output scale is too small for the inputs' scales (rescale factor >= 1)")
        scalars.update(params)
    else:
        mult, shift = quant.quantize_multiplier(float(a.scale[0]) * float(b.scale[0]) / float(y.scale[0]))
        scalars.update(left_shift=0, input1_multiplier=0, input1_shift=0, input2_multiplier=0, input2_shift=0,
                       output_multiplier=mult, output_shift=shift)
    arrays, operands = {}, []
    for name, t in (("input1", a), ("input2", b)):
        if t.is_constant:
            arrays[name] = ("int8_t", t.data.reshape(-1).astype(np.int8))
            operands.append(name)
        else:
            operands.append(t.index)
    inputs = [t.index for t in (a, b) if not t.is_constant]
    if op.op == "MUL":
        return Step(op.index, op.op, "td_mul_s8", "td_binary_params", inputs, [y.index], scalars=scalars,
                    arrays=arrays, operands=operands + [y.index])
    tables = ADD_TABLE_BYTES if y.size >= ADD_TABLE_MIN_ELEMENTS else 0
    return Step(op.index, op.op, "td_add_s8", "td_binary_params", inputs, [y.index], scalars=scalars,
                arrays=arrays, operands=operands + [y.index, "scratch"], scratch_bytes=tables)


register(OpSpec(("ADD", "MUL"), lower, INT8, Aliasing.IN_PLACE,
                notes="input rescaling, broadcasting of either operand (up to 4-D), constant operands"))

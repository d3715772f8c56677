"""Ops that move bytes without arithmetic: PAD/PADV2, CONCATENATION (td_shape.h) and RESHAPE (no kernel)."""
from __future__ import annotations

import numpy as np

from tinydeploy.compiler.ops import OpSpec, register
from tinydeploy.compiler.ops.common import (INT8, MAX_RANK, OPTIONAL, constant_ints, int8_io, refuse, require_int8,
                                            require_rank, same_quantization, shape4, zero_point)
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator
from tinydeploy.ir.schema import Activation

PAD_INPUT, PAD_PADDINGS, PAD_VALUE = 0, 1, 2


def lower_pad(graph: Graph, op: Operator) -> Step:
    x, y = int8_io(graph, op)
    require_rank(graph, op, x, "input")
    pads = constant_ints(graph, op, PAD_PADDINGS, "the paddings input").reshape(-1, 2)
    if pads.shape[0] != len(x.shape) or np.any(pads < 0):
        raise refuse(graph, op, f"paddings {pads.tolist()} do not fit input shape {list(x.shape)}")
    value = zero_point(y)
    if op.op == "PADV2" and len(op.inputs) > PAD_VALUE and op.inputs[PAD_VALUE] != OPTIONAL:
        v = graph.tensors[op.inputs[PAD_VALUE]]
        if not v.is_constant or v.dtype != "int8":
            raise refuse(graph, op, "the padding value must be a constant int8 tensor")
        value = int(v.data.reshape(-1)[0])
    if not same_quantization(x, y):
        raise refuse(graph, op, "input and output quantization differ; padding does not rescale")
    before = [0] * (MAX_RANK - len(x.shape)) + [int(p) for p in pads[:, 0]]
    out_shape = [d + int(a) + int(b) for d, (a, b) in zip(x.shape, pads)]
    if out_shape != list(y.shape):
        raise refuse(graph, op, f"padding {list(x.shape)} by {pads.tolist()} does not give the output {list(y.shape)}")
    return Step(op.index, op.op, "td_pad_s8", "td_pad_params", [x.index], [y.index],
                scalars=dict(in_shape=shape4(x.shape), out_shape=shape4(y.shape), before=before, value=value))


def lower_concatenation(graph: Graph, op: Operator) -> Step:
    y = graph.tensors[op.outputs[0]]
    require_int8(graph, op, y, "output")
    rank = len(y.shape)
    axis = op.options.get("axis", 0) % max(rank, 1)
    if op.options.get("fusedActivationFunction", Activation.NONE) != Activation.NONE:
        raise refuse(graph, op, "a fused activation on CONCATENATION is not supported")
    inputs = [graph.tensors[i] for i in op.inputs]
    for t in inputs:
        require_int8(graph, op, t, "input")
        if t.is_constant:
            raise refuse(graph, op, f"constant input '{t.name}' is not supported; only activations")
        if not same_quantization(t, y):
            raise refuse(graph, op, f"input '{t.name}' is quantized differently from the output; "
                                    "concatenation does not rescale")
        if len(t.shape) != rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, y.shape)) if i != axis):
            raise refuse(graph, op, f"input shape {list(t.shape)} does not fit output {list(y.shape)} on axis {axis}")
    outer = int(np.prod(y.shape[:axis]))
    chunks = np.asarray([int(np.prod(t.shape[axis:])) for t in inputs], np.int32)
    return Step(op.index, op.op, "td_concatenation_s8", "td_concat_params", [t.index for t in inputs], [y.index],
                scalars=dict(count=len(inputs), outer=outer), arrays=dict(chunk=("int32_t", chunks)),
                operands=[y.index], pointer_lists=dict(inputs=[t.index for t in inputs]))


def lower_reshape(graph: Graph, op: Operator) -> Step:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, op, x, "input")
    if x.size != y.size:
        raise refuse(graph, op, f"reshape from {list(x.shape)} to {list(y.shape)} changes the element count")
    return Step(op.index, op.op, None, None, [x.index], [y.index])


register(OpSpec(("PAD", "PADV2"), lower_pad, INT8, Aliasing.NONE, notes="up to 4-D, constant padding value"))
register(OpSpec(("CONCATENATION",), lower_concatenation, INT8, Aliasing.NONE, notes="any axis, up to 4-D"))
register(OpSpec(("RESHAPE",), lower_reshape, INT8, Aliasing.SHARES_INPUT, notes="shares its input's bytes"))

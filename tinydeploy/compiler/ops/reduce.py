"""MEAN over any axes, keep_dims or not: td_mean_s8 (td_reduce.h)."""
from __future__ import annotations

import numpy as np

from tinydeploy.compiler import quant
from tinydeploy.compiler.ops import OpSpec, register
from tinydeploy.compiler.ops.common import (INT8, MAX_RANK, constant_ints, int8_io, refuse, require_rank, shape4,
                                            strides, zero_point)
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator

INPUT, AXES = 0, 1


def lower(graph: Graph, op: Operator) -> Step:
    x, y = int8_io(graph, op)
    require_rank(graph, op, x, "input")
    rank = len(x.shape)
    axes = sorted({int(a) % rank for a in constant_ints(graph, op, AXES, "the axis input").reshape(-1)})
    shape = shape4(x.shape)
    reduced = {a + MAX_RANK - rank for a in axes}
    outer = [1 if i in reduced else d for i, d in enumerate(shape)]
    inner = [d if i in reduced else 1 for i, d in enumerate(shape)]
    count = int(np.prod(inner))
    if int(np.prod(outer)) != y.size:
        raise refuse(graph, op, f"output {list(y.shape)} does not match the mean of {list(x.shape)} over axes {axes}")
    # TFLite Micro rescales the zero-point-corrected sum once, with 1/count folded into the multiplier.
    mult, shift = quant.mean_sum_multiplier(*quant.quantize_multiplier(float(x.scale[0]) / float(y.scale[0])), count)
    return Step(op.index, op.op, "td_mean_s8", "td_mean_params", [x.index], [y.index],
                scalars=dict(outer=outer, inner=inner, stride=strides(shape), count=count,
                             input_zero_point=zero_point(x), output_zero_point=zero_point(y), multiplier=mult,
                             shift=shift))


register(OpSpec(("MEAN",), lower, INT8, Aliasing.NONE, notes="any axes, keep_dims or not (Keras' global average pooling)"))

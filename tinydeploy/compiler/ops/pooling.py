"""AVERAGE_POOL_2D and MAX_POOL_2D: td_average_pool_s8, td_max_pool_s8 (td_pooling.h)."""
from __future__ import annotations

from tinydeploy.compiler.ops import OpSpec, register
from tinydeploy.compiler.ops.common import INT8, activation, int8_io, refuse, same_quantization
from tinydeploy.compiler.ops.window import geometry, step_overlap_distance
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator

_KERNELS = {"AVERAGE_POOL_2D": "td_average_pool_s8", "MAX_POOL_2D": "td_max_pool_s8"}


def lower(graph: Graph, op: Operator) -> Step:
    x, y = int8_io(graph, op)
    if not same_quantization(x, y):
        raise refuse(graph, op, "input and output quantization differ; pooling does not rescale")
    win = geometry(graph, op, x, y, op.options.get("filterHeight", 1), op.options.get("filterWidth", 1))
    if win["out_c"] != win["in_c"]:      # TFLite Micro refuses it while allocating tensors
        raise refuse(graph, op, f"output {list(y.shape)} has {win['out_c']} channels, the input {list(x.shape)} "
                                f"has {win['in_c']}")
    act_min, act_max = activation(graph, op, y)
    return Step(op.index, op.op, _KERNELS[op.op], "td_pool_params", [x.index], [y.index],
                scalars=dict(win=win, act_min=act_min, act_max=act_max))


register(OpSpec(tuple(_KERNELS), lower, INT8, Aliasing.STREAMING, stream_distance=step_overlap_distance,
                notes="SAME/VALID, strides, fused activations"))

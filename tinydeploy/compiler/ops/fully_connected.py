"""FULLY_CONNECTED: td_fully_connected_s8 (td_fully_connected.h), a matrix product per batch row."""
from __future__ import annotations

import numpy as np

from tinydeploy.compiler.ops import OpSpec, register
from tinydeploy.compiler.ops.common import INT8, activation, bias, constant_weights, int8_io, refuse
from tinydeploy.compiler.ops.gemm import gemm, gemm_scratch_bytes
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator

INPUT, WEIGHTS, BIAS = 0, 1, 2
OUTPUT = 0


def macs(graph: Graph, op: Operator) -> int:
    w = graph.tensors[op.inputs[WEIGHTS]]
    return graph.tensors[op.outputs[OUTPUT]].size * int(np.prod(w.shape[1:]))


def lower(graph: Graph, op: Operator) -> Step:
    x, y = int8_io(graph, op, INPUT, OUTPUT)
    w = constant_weights(graph, op, WEIGHTS)
    out_depth, in_depth = w.data.shape[0], int(np.prod(w.data.shape[1:]))
    batches = x.size // in_depth
    if batches * in_depth != x.size or batches * out_depth != y.size:
        raise refuse(graph, op, f"input {x.shape} and weights {w.shape} do not fit together")
    params, arrays = gemm(x, w, y, w.data.reshape(out_depth, in_depth), bias(graph, op, BIAS, out_depth),
                          activation(graph, op, y))
    return Step(op.index, op.op, "td_fully_connected_s8", "td_fully_connected_params", [x.index], [y.index],
                scalars=dict(batches=batches, in_depth=in_depth, gemm=params), arrays=arrays,
                operands=[x.index, y.index, "scratch"],
                scratch_bytes=0 if batches == 1 else gemm_scratch_bytes(params))   # one row reads in place


register(OpSpec(("FULLY_CONNECTED",), lower, INT8, Aliasing.NONE, macs=macs,
                notes="per-tensor and per-channel weights, batches, input offset folded into the bias"))

"""FULLY_CONNECTED (td_fully_connected.h): int8 weights through the matrix product (td_fully_connected_s8),
packed 4-bit weights through td_fully_connected_w4_s8, unpacked in its inner loop."""
from __future__ import annotations

import numpy as np

from tinydeploy.compiler.ops import OpSpec, register
from tinydeploy.compiler.ops.common import OPTIONAL, INT8, activation, bias, constant_weights, int8_io, refuse
from tinydeploy.compiler.ops.gemm import INT8_MAGNITUDE, gemm, gemm_scratch_bytes
from tinydeploy.compiler.quant import INT32_LIMIT
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator

INPUT, WEIGHTS, BIAS = 0, 1, 2
OUTPUT = 0
WEIGHT_TYPES = ("int8", "int4")
W4_PER_WORD = 8                  # 4-bit weights per uint32 word in td_fully_connected_w4.c
W4_SCALE = 16                    # the kernel accumulates 16 * w * x
BIAS_SCALE_TOLERANCE = 0.02      # |input x weight scale - bias scale| / output scale, as TFLite Micro allows


def macs(graph: Graph, op: Operator) -> int:
    w = graph.tensors[op.inputs[WEIGHTS]]
    return graph.tensors[op.outputs[OUTPUT]].size * int(np.prod(w.shape[1:]))


def lower(graph: Graph, op: Operator) -> Step:
    x, y = int8_io(graph, op, INPUT, OUTPUT)
    w = constant_weights(graph, op, WEIGHTS, WEIGHT_TYPES)
    # TFLite Micro takes the units from the output's last dimension, the batches from its others and the
    # depth from the weights' last dimension: only [units, depth] weights and a [..., units] output mean
    # what the matrix product below computes (a rank-0 output makes it write nothing at all).
    if len(w.shape) != 2:
        raise refuse(graph, op, f"weights shape {list(w.shape)} is not 2-D [units, depth]")
    out_depth, in_depth = w.shape
    if not y.shape or y.shape[-1] != out_depth:
        raise refuse(graph, op, f"output shape {list(y.shape)} does not end in {out_depth}, the weights' units; "
                                "TFLite Micro takes the units from the output shape")
    batches = x.size // in_depth
    if batches * in_depth != x.size or batches * out_depth != y.size:
        raise refuse(graph, op, f"input {x.shape} and weights {w.shape} do not fit together")
    w2d = w.data.reshape(out_depth, in_depth)
    _check_bias_scale(graph, op, x, w, y)
    params, arrays = gemm(x, w, y, w2d, bias(graph, op, BIAS, out_depth), activation(graph, op, y))
    if w.dtype == "int4":
        return _lower_w4(graph, op, x, y, w, w2d, batches, params, arrays)
    return Step(op.index, op.op, "td_fully_connected_s8", "td_fully_connected_params", [x.index], [y.index],
                scalars=dict(batches=batches, in_depth=in_depth, gemm=params), arrays=arrays,
                operands=[x.index, y.index, "scratch"],
                scratch_bytes=0 if batches == 1 else gemm_scratch_bytes(params))   # one row reads in place


def _check_bias_scale(graph: Graph, op: Operator, x, w, y) -> None:
    """TFLite Micro's check on per-tensor weights: the bias scale is (nearly) input scale * weight scale."""
    if w.scale.size != 1 or len(op.inputs) <= BIAS or op.inputs[BIAS] == OPTIONAL:
        return
    b = graph.tensors[op.inputs[BIAS]]
    product = float(np.float32(x.scale[0]) * np.float32(w.scale[0]))
    bias_scale = float(b.scale[0]) if b.is_quantized else 0.0
    if abs(product - bias_scale) / float(y.scale[0]) > BIAS_SCALE_TOLERANCE:
        raise refuse(graph, op, f"bias scale {bias_scale:g} is not input scale x weight scale ({product:g}); "
                                "the reference interpreter refuses it too")


def w4_weight_layout(w2d: np.ndarray) -> np.ndarray:
    """[rows, k] int4 values (as int8) -> td_fully_connected_w4.c's words: each row padded with zeros to a
    multiple of 8; in word c, byte j holds w[8c + j] in its low nibble and w[8c + 4 + j] in its high one."""
    rows, k = w2d.shape
    depth = -(-k // W4_PER_WORD) * W4_PER_WORD
    padded = np.zeros((rows, depth), np.int64)
    padded[:, :k] = w2d
    nibbles = (padded & 0xF).reshape(rows, depth // W4_PER_WORD, 2, 4)     # [row][word][low/high][byte]
    packed = (nibbles[:, :, 0, :] | (nibbles[:, :, 1, :] << 4)).astype(np.uint8)
    return packed.reshape(-1).view("<u4")


def _lower_w4(graph: Graph, op: Operator, x, y, w, w2d: np.ndarray, batches: int, params: dict, arrays: dict) -> Step:
    """Packed 4-bit weights (per-tensor scale, as TFLite Micro takes them): the int8 lowering's folded bias and
    rescale record, the weights kept packed for td_fully_connected_w4_s8."""
    if w.scale.size != 1:
        raise refuse(graph, op, "int4 weights need one per-tensor scale (TFLite Micro refuses per-channel int4)")
    bound = INT8_MAGNITUDE * int(np.abs(w2d.astype(np.int64)).sum(axis=1).max(initial=0))
    if W4_SCALE * bound >= INT32_LIMIT:
        raise refuse(graph, op, f"rows of {w2d.shape[1]} int4 weights can overflow the kernel's 16x accumulator")
    scalars = dict(batches=batches, in_depth=w2d.shape[1], depth=-(-w2d.shape[1] // W4_PER_WORD) * W4_PER_WORD,
                   rows=params["rows"], output_offset=params["output_offset"], act_min=params["act_min"],
                   act_max=params["act_max"], fast=params["fast"], weights=params["weights"],
                   bias=params["bias"], rescale=params["rescale"])
    arrays = dict(arrays, weights=("uint32_t", w4_weight_layout(w2d)))
    return Step(op.index, op.op, "td_fully_connected_w4_s8", "td_fully_connected_w4_params", [x.index], [y.index],
                scalars=scalars, arrays=arrays)


register(OpSpec(("FULLY_CONNECTED",), lower, INT8, Aliasing.NONE, macs=macs,
                notes="per-tensor and per-channel int8 weights, per-tensor packed int4 weights, batches, "
                      "input offset folded into the bias"))

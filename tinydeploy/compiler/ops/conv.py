"""CONV_2D and DEPTHWISE_CONV_2D (td_conv.h): as a matrix product (td_conv_gemm_s8) where there are no
groups, through a ring of unpacked rows for depth multiplier 1 (td_depthwise_conv_m1_s8), and the
general kernels (td_conv_s8, td_depthwise_conv_s8) otherwise."""
from __future__ import annotations

import numpy as np

from tinydeploy.compiler import quant
from tinydeploy.compiler.ops import OpSpec, register
from tinydeploy.compiler.ops.common import (INT8, activation, as_int32, bias, constant_weights, int8_io, refuse,
                                            zero_point)
from tinydeploy.compiler.ops.gemm import gemm, gemm_scratch_bytes
from tinydeploy.compiler.ops.window import geometry, step_overlap_distance
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator

INPUT, WEIGHTS, BIAS = 0, 1, 2
OUTPUT = 0
DEPTHWISE_MAX_FILTER_H = 16      # TD_DEPTHWISE_MAX_FILTER_H in td_conv.h: the ring's row pointers
CHANNEL_GROUP = 4                # channels td_depthwise_conv_m1_s8 handles per step
UINT8_SPAN = 255                 # |x - zero point| bound of an int8 input with its offset not folded


def macs(graph: Graph, op: Operator) -> int:
    w = graph.tensors[op.inputs[WEIGHTS]]
    if len(w.shape) != 4:                # refused by the lowering; inspect still lists the op
        return 0
    taps = int(np.prod(w.shape[1:3])) * (w.shape[3] if op.op == "CONV_2D" else 1)
    return graph.tensors[op.outputs[OUTPUT]].size * taps


def lower(graph: Graph, op: Operator) -> Step:
    x, y = int8_io(graph, op, INPUT, OUTPUT)
    w = constant_weights(graph, op, WEIGHTS)
    depthwise = op.op == "DEPTHWISE_CONV_2D"
    if len(w.shape) != 4:
        raise refuse(graph, op, f"weights shape {list(w.shape)} is not 4-D")
    if depthwise:
        if w.shape[0] != 1:               # TFLite Micro reads only the first [fh, fw, out_c] slice
            raise refuse(graph, op, f"weights shape {list(w.shape)} is not a depthwise filter [1, height, "
                                    "width, channels]")
        _, fh, fw, out_c = w.shape
    else:
        out_c, fh, fw, _ = w.shape
    win = geometry(graph, op, x, y, fh, fw)
    if win["out_c"] != out_c:
        raise refuse(graph, op, f"weights {list(w.shape)} give {out_c} channels, the output has {win['out_c']}")
    if depthwise:
        group_in_c = out_c // win["in_c"]                 # the depth multiplier
        if group_in_c * win["in_c"] != out_c:
            raise refuse(graph, op, f"{out_c} output channels are not a multiple of {win['in_c']} input channels")
        if op.options.get("depthMultiplier", group_in_c) != group_in_c:     # TFLite Micro computes with the option
            raise refuse(graph, op, f"depth multiplier {op.options['depthMultiplier']} does not match {out_c} "
                                    f"output channels for {win['in_c']} input channels")
    else:
        group_in_c = w.shape[3]                           # input channels each filter sees
        if win["in_c"] % group_in_c or out_c % (win["in_c"] // group_in_c):
            raise refuse(graph, op, f"{win['in_c']} input channels cannot be split into groups of {group_in_c}")
    if w.scale.size not in (1, out_c):
        raise refuse(graph, op, f"weights have {w.scale.size} scales for {out_c} output channels")
    act_min, act_max = activation(graph, op, y)
    b = bias(graph, op, BIAS, out_c)
    # An ungrouped convolution is a matrix product; so is a depthwise one over a single input channel
    # (each filter then sees the same one channel), with its [1, fh, fw, out_c] weights transposed.
    if (not depthwise and group_in_c == win["in_c"]) or (depthwise and win["in_c"] == 1):
        w2d = w.data.reshape(-1, out_c).T if depthwise else w.data.reshape(out_c, -1)
        params, arrays = gemm(x, w, y, w2d, b, (act_min, act_max))
        return Step(op.index, op.op, "td_conv_gemm_s8", "td_conv_gemm_params", [x.index], [y.index],
                    scalars=dict(win=win, pad_value=zero_point(x), gemm=params), arrays=arrays,
                    operands=[x.index, y.index, "scratch"], scratch_bytes=gemm_scratch_bytes(params))
    mults, shifts = quant.conv_multipliers(x.scale[0], w.scale, y.scale[0])
    if len(mults) == 1:
        mults, shifts = mults * out_c, shifts * out_c
    per_channel_weights = (w.data.reshape(-1, out_c).T if depthwise else w.data.reshape(out_c, -1)).astype(np.int64)
    bounds = np.abs(b) + UINT8_SPAN * np.abs(per_channel_weights).sum(axis=1)
    scalars = dict(win=win, input_offset=-zero_point(x), output_offset=zero_point(y), act_min=act_min,
                   act_max=act_max)
    if depthwise and group_in_c == 1 and fh <= DEPTHWISE_MAX_FILTER_H:
        rescale, fast = quant.rescale_records(mults, shifts, zero_point(y), bounds,
                                              quant.constant_channels(per_channel_weights, b, out_c))
        return _depthwise_rows(op, scalars, fast, per_channel_weights, b, rescale)
    # The general kernels rescale exactly (multiplier and shift only): no channel may be folded to a constant.
    rescale, _ = quant.rescale_records(mults, shifts, zero_point(y), bounds)
    return Step(op.index, op.op, "td_depthwise_conv_s8" if depthwise else "td_conv_s8", "td_conv_params",
                [x.index], [y.index], scalars=dict(scalars, group_in_c=group_in_c),
                arrays=dict(weights=("int8_t", w.data.reshape(-1).astype(np.int8)),
                            bias=("int32_t", as_int32(b)), rescale=("td_rescale", rescale)))


def depthwise_weight_layout(per_channel: np.ndarray) -> np.ndarray:
    """[channels, taps] int8 -> td_depthwise.c's words: channels padded to a multiple of 4 with zeros,
    per group of four and tap the int16 pairs (c0, c2), (c1, c3) (low half first)."""
    channels, taps = per_channel.shape
    groups = -(-channels // CHANNEL_GROUP)
    padded = np.zeros((groups * CHANNEL_GROUP, taps), np.int64)
    padded[:channels] = per_channel
    quads = padded.reshape(groups, CHANNEL_GROUP, taps).transpose(0, 2, 1)      # [group][tap][c0..c3]
    low, high = quads[..., [0, 1]], quads[..., [2, 3]]                           # (c0, c2) and (c1, c3)
    return ((low & 0xFFFF) | ((high & 0xFFFF) << 16)).astype(np.uint32).reshape(-1)


def depthwise_ring_bytes(win: dict) -> int:
    """td_depthwise_conv_m1_scratch_bytes: (filter_h - 1) * dilation_h + 1 unpacked rows of every padded
    column, two int16 words per group of four channels."""
    span = (win["out_w"] - 1) * win["stride_w"] + (win["filter_w"] - 1) * win["dilation_w"] + 1
    ring_rows = (win["filter_h"] - 1) * win["dilation_h"] + 1
    return ring_rows * span * -(-win["in_c"] // CHANNEL_GROUP) * 8


def _depthwise_rows(op: Operator, scalars: dict, fast: bool, per_channel: np.ndarray, b: np.ndarray,
                    rescale: np.ndarray) -> Step:
    """DEPTHWISE_CONV_2D with depth multiplier 1: td_depthwise.c's ring of unpacked rows."""
    pad = -per_channel.shape[0] % CHANNEL_GROUP
    unused = np.tile(np.asarray([[0, 1, 1, 0]], np.int32), (pad, 1))     # padding channels: never stored
    return Step(op.index, op.op, "td_depthwise_conv_m1_s8", "td_depthwise_params", op.inputs[:1], op.outputs[:1],
                scalars=dict(scalars, fast=int(fast)),
                arrays=dict(weights=("uint32_t", depthwise_weight_layout(per_channel)),
                            bias=("int32_t", as_int32(np.concatenate([b, np.zeros(pad, np.int64)]))),
                            rescale=("td_rescale", np.concatenate([rescale, unused]))),
                operands=[op.inputs[0], op.outputs[0], "scratch"], scratch_bytes=depthwise_ring_bytes(scalars["win"]))


register(OpSpec(("CONV_2D", "DEPTHWISE_CONV_2D"), lower, INT8, Aliasing.STREAMING, macs=macs,
                stream_distance=step_overlap_distance,
                notes="SAME/VALID, strides, dilation, grouped filters, any depth multiplier, per-channel or "
                      "per-tensor weights, fused RELU/RELU_N1_TO_1/RELU6"))

"""The matrix product behind FULLY_CONNECTED and CONV_2D (td_gemm.c): weight layout, folded bias,
requantization records and scratch. Not an op: the families that lower to it share it."""
from __future__ import annotations

import numpy as np

from tinydeploy.compiler import quant
from tinydeploy.compiler.ops.common import as_int32, zero_point
from tinydeploy.compiler.step import ArrayRef
from tinydeploy.ir.graph import Tensor

GEMM_ROWS = 4                    # rows interleaved per block, as td_gemm.c reads them
WORD = 4                         # int8 weights per uint32 word
INT8_MAGNITUDE = 128             # |x - zero point| bound of an int8 input once the offset is folded away


def gemm_weight_layout(w: np.ndarray) -> np.ndarray:
    """[rows, k] int8 -> td_gemm.c's order: rows padded to k % 4 == 0 with zeros, blocks of
    four rows interleaved by 4-byte chunks, the remaining rows plain."""
    rows, k = w.shape
    depth = padded_depth(k)
    padded = np.zeros((rows, depth), np.int8)
    padded[:, :k] = w
    blocked = rows // GEMM_ROWS * GEMM_ROWS
    head = padded[:blocked].reshape(-1, GEMM_ROWS, depth // WORD, WORD).transpose(0, 2, 1, 3)
    return np.concatenate([head.reshape(-1), padded[blocked:].reshape(-1)])


def padded_depth(k: int) -> int:
    return -(-k // WORD) * WORD


def gemm(x: Tensor, w: Tensor, y: Tensor, w2d: np.ndarray, bias: np.ndarray, act: tuple[int, int]):
    """td_gemm_params for weights ``w2d`` [rows, k], with the input offset folded into the bias, and its arrays."""
    rows = w2d.shape[0]
    wide = w2d.astype(np.int64)
    folded = bias - zero_point(x) * wide.sum(axis=1)
    mults, shifts = quant.conv_multipliers(x.scale[0], w.scale, y.scale[0])
    bounds = quant.channel_bounds(np.abs(folded) + INT8_MAGNITUDE * np.abs(wide).sum(axis=1), len(mults))
    rescale, fast = quant.rescale_records(mults, shifts, zero_point(y), bounds,
                                          quant.constant_channels(wide, folded, len(mults)))
    params = dict(depth=padded_depth(w2d.shape[1]), rows=rows, act_min=act[0], act_max=act[1],
                  per_channel=int(len(mults) > 1), fast=int(fast), weights=ArrayRef("weights"),
                  bias=ArrayRef("bias"), rescale=ArrayRef("rescale"), output_offset=zero_point(y))
    arrays = dict(weights=("uint32_t", gemm_weight_layout(w2d).view("<u4")), bias=("int32_t", as_int32(folded)),
                  rescale=("td_rescale", rescale))
    return params, arrays


def gemm_scratch_bytes(params: dict) -> int:
    """td_gemm.c's scratch (td_conv_gemm_scratch_bytes): two columns unpacked (4 bytes per k), two gathered
    (1 each), two int32 accumulators per row."""
    return 6 * params["depth"] + 8 * params["rows"]

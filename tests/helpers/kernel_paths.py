"""Models that force each specialised kernel path (one layer each), with the kernel they must lower to
and a check on the lowered step. test_kernel_paths runs them on the host, test_firmware in QEMU,
test_sanitizers under UBSan and ASan."""
from __future__ import annotations

import numpy as np

from helpers.random_layers import weights_and_bias
from helpers.tflite_builder import ModelBuilder, random_fc_layer

from tinydeploy.ir.schema import Activation

RELU_N1_TO_1 = Activation.RELU_N1_TO_1   # a fused activation narrower than int8: the clamping output path


def conv_model(rng, shape, filters, window, stride=(1, 1), same=True, depthwise=False, multiplier=1, per_tensor=False,
          dilation=(1, 1), activation=0, dead_channels=(), bias_magnitude=0, out_scale=30.0):
    """A single CONV_2D or DEPTHWISE_CONV_2D model with random weights and quantization; `dead_channels`
    get all-zero weights, a tiny scale and a large bias (as trained models have), `bias_magnitude`
    replaces the biases with values that large, `out_scale` sets the output scale (small: rescale > 1)."""
    b = ModelBuilder()
    n, h, w, c = shape
    in_scale = float(rng.uniform(0.01, 0.1))
    x = b.tensor(shape, np.int8, in_scale, int(rng.integers(-50, 50)))
    out_c = c * multiplier if depthwise else filters
    wshape = (1, *window, out_c) if depthwise else (out_c, *window, c)
    weights, bias, w_scale = weights_and_bias(b, rng, wshape, out_c, in_scale, 3 if depthwise else 0)
    q = b.tensors[weights].quantization
    if per_tensor:
        q.scale, q.zeroPoint = [q.scale[0]], [0]
    data = b.buffer_array(weights)
    if dead_channels and len(q.scale) == 1:
        q.scale, q.zeroPoint = q.scale * out_c, [0] * out_c
    for ch in dead_channels:
        if depthwise:
            data[..., ch] = 0
        else:
            data[ch] = 0
        q.scale[ch] = 4e-9
        b.buffer_array(bias)[ch] = 1 << 30
    if bias_magnitude:
        b.buffer_array(bias)[:] = rng.choice([-1, 1], out_c) * bias_magnitude
    eh, ew = (window[0] - 1) * dilation[0] + 1, (window[1] - 1) * dilation[1] + 1
    oh = (h + stride[0] - 1) // stride[0] if same else (h - eh) // stride[0] + 1
    ow = (w + stride[1] - 1) // stride[1] if same else (w - ew) // stride[1] + 1
    k = window[0] * window[1] * (1 if depthwise else c)
    y = b.tensor((n, oh, ow, out_c), np.int8, in_scale * w_scale * np.sqrt(k) * out_scale, int(rng.integers(-50, 50)))
    if depthwise:
        b.depthwise_conv_2d(x, weights, bias, y, multiplier, stride, dilation, same=same, activation=activation)
    else:
        b.conv_2d(x, weights, bias, y, stride, dilation, same=same, activation=activation)
    return b.finish([x], [y])


def mode_of(step) -> str:
    """The output path td_output_mode() picks for the lowered step."""
    params = step.scalars.get("gemm", step.scalars)
    if not params["fast"]:
        return "exact"
    return "saturate" if (params["act_min"], params["act_max"]) == (-128, 127) else "fast"


def constant_records(step) -> int:
    return int(np.sum(step.arrays["rescale"][1][:, 0] == 0))


def add_model(rng, shape, other_shape):
    """ADD of an activation and a constant operand broadcast from `other_shape`."""
    b = ModelBuilder()
    x = b.tensor(shape, np.int8, float(rng.uniform(0.01, 0.1)), int(rng.integers(-50, 50)))
    c = b.tensor(other_shape, np.int8, float(rng.uniform(0.01, 0.1)), int(rng.integers(-50, 50)),
                 rng.integers(-128, 128, other_shape).astype(np.int8))
    y = b.tensor(shape, np.int8, float(rng.uniform(0.02, 0.2)), int(rng.integers(-50, 50)))
    b.add(x, c, y)
    return b.finish([x], [y])



def int4_fully_connected(rng, batches: int, depth: int, rows: int, activation: int = Activation.NONE):
    """FULLY_CONNECTED with packed int4 weights (one scale), int8 activations."""
    b = ModelBuilder()
    x = b.tensor((batches, depth), np.int8, float(rng.uniform(0.01, 0.1)), int(rng.integers(-50, 50)))
    y = random_fc_layer(b, rng, x, rows, per_channel=False, activation=activation, int4=True)
    return b.finish([x], [y])


W4 = "td_fully_connected_w4_s8"
DW = "td_depthwise_conv_m1_s8"
CASES = {
    # name: (builder, expected kernel, extra check on the lowered step)
    "pointwise, pixels read in place, even pixel count": (
        lambda rng: conv_model(rng, (1, 4, 4, 12), 9, (1, 1)), "td_conv_gemm_s8",
        lambda s: s.scratch_bytes == 6 * 12 + 8 * 9 and mode_of(s) == "saturate"),
    "pointwise, odd pixel count (one single column)": (
        lambda rng: conv_model(rng, (1, 3, 3, 8), 6, (1, 1)), "td_conv_gemm_s8", lambda s: True),
    "3x3 windows gathered with zero-point padding, depth padded to 4": (
        lambda rng: conv_model(rng, (2, 6, 5, 3), 7, (3, 3), stride=(2, 1)), "td_conv_gemm_s8",
        lambda s: s.scalars["gemm"]["depth"] == 28),
    "per-tensor weights": (
        lambda rng: conv_model(rng, (1, 5, 5, 4), 5, (3, 3), per_tensor=True), "td_conv_gemm_s8",
        lambda s: s.scalars["gemm"]["per_channel"] == 0),
    "pointwise with a narrow fused activation (clamping output path)": (
        lambda rng: conv_model(rng, (1, 3, 4, 8), 6, (1, 1), activation=RELU_N1_TO_1), "td_conv_gemm_s8",
        lambda s: mode_of(s) == "fast"),
    "pointwise, rescale above one (left shift)": (
        lambda rng: conv_model(rng, (1, 3, 3, 8), 5, (1, 1), out_scale=0.01), "td_conv_gemm_s8",
        lambda s: mode_of(s) != "exact" and int(s.arrays["rescale"][1][:, 1].max()) > 1),
    "pointwise, accumulators near 2^30 (exact rescale)": (
        lambda rng: conv_model(rng, (1, 2, 3, 8), 5, (1, 1), bias_magnitude=1 << 30, out_scale=1e5), "td_conv_gemm_s8",
        lambda s: mode_of(s) == "exact"),
    "zero-weight filters fold to constants": (
        lambda rng: conv_model(rng, (1, 3, 3, 8), 6, (1, 1), dead_channels=(1, 4)), "td_conv_gemm_s8",
        lambda s: mode_of(s) != "exact" and constant_records(s) >= 2),
    "depthwise over one channel as a matrix product": (
        lambda rng: conv_model(rng, (1, 9, 7, 1), 0, (3, 3), (2, 2), depthwise=True, multiplier=6), "td_conv_gemm_s8",
        lambda s: True),
    "depthwise 3x3, whole groups of four, padded rows and columns": (
        lambda rng: conv_model(rng, (1, 7, 6, 12), 0, (3, 3), depthwise=True), DW,
        lambda s: mode_of(s) == "saturate" and s.scratch_bytes == 3 * 8 * 3 * 8),
    "depthwise 3x3 stride 2, a partial group, narrow activation": (
        lambda rng: conv_model(rng, (1, 9, 8, 6), 0, (3, 3), (2, 2), depthwise=True, activation=RELU_N1_TO_1), DW,
        lambda s: mode_of(s) == "fast"),
    "depthwise 3x3 VALID, two channels": (
        lambda rng: conv_model(rng, (2, 6, 7, 2), 0, (3, 3), same=False, depthwise=True), DW, lambda s: True),
    "depthwise, other window with row dilation (ring of three rows)": (
        lambda rng: conv_model(rng, (1, 8, 7, 5), 0, (2, 4), (1, 2), depthwise=True, dilation=(2, 1)), DW,
        lambda s: s.scratch_bytes == 3 * ((4 - 1) * 2 + 4) * 2 * 8),
    "depthwise 3x3 with column dilation (general row loop)": (
        lambda rng: conv_model(rng, (1, 6, 9, 4), 0, (3, 3), depthwise=True, dilation=(1, 2)), DW, lambda s: True),
    "depthwise, accumulators near 2^30 (exact rescale)": (
        lambda rng: conv_model(rng, (1, 4, 4, 8), 0, (3, 3), depthwise=True, bias_magnitude=1 << 30, out_scale=1e5), DW,
        lambda s: mode_of(s) == "exact"),
    "depthwise, zero-weight channels fold to constants": (
        lambda rng: conv_model(rng, (1, 5, 5, 8), 0, (3, 3), depthwise=True, dead_channels=(0, 5)), DW,
        lambda s: mode_of(s) != "exact" and constant_records(s) >= 2),
    "ADD over 1024 elements or more: both inputs rescaled once into lookup tables": (
        lambda rng: add_model(rng, (1, 8, 16, 9), (1, 1, 16, 9)), "td_add_s8", lambda s: s.scratch_bytes == 2048),
    "ADD below 1024 elements: rescaled per element": (
        lambda rng: add_model(rng, (1, 5, 7, 9), (1, 5, 1, 9)), "td_add_s8", lambda s: s.scratch_bytes == 0),
    "depthwise with a filter taller than the row ring allows (general kernel)": (
        lambda rng: conv_model(rng, (1, 18, 4, 3), 0, (17, 2), depthwise=True), "td_depthwise_conv_s8", lambda s: True),
    "depthwise with depth multiplier 2 and zero-weight channels (general kernel, exact rescale)": (
        lambda rng: conv_model(rng, (1, 5, 5, 3), 0, (3, 3), depthwise=True, multiplier=2, dead_channels=(1, 4)),
        "td_depthwise_conv_s8", lambda s: constant_records(s) == 0),
    "int4 weights, one row of a multiple of 8": (
        lambda rng: int4_fully_connected(rng, 1, 32, 9), W4, lambda s: s.scalars["depth"] == 32),
    "int4 weights, a tail of 5 inputs, narrow activation": (
        lambda rng: int4_fully_connected(rng, 1, 21, 6, RELU_N1_TO_1), W4,
        lambda s: s.scalars["depth"] == 24 and mode_of(s) == "fast"),
    "int4 weights, three rows of 3 inputs": (
        lambda rng: int4_fully_connected(rng, 3, 3, 10), W4, lambda s: s.scalars["depth"] == 8),
    "depthwise with depth multiplier 2 (general kernel)": (
        lambda rng: conv_model(rng, (1, 5, 5, 3), 0, (3, 3), depthwise=True, multiplier=2), "td_depthwise_conv_s8",
        lambda s: True),
}


def fully_connected(rng, batches, depth, rows):
    b = ModelBuilder()
    in_scale = float(rng.uniform(0.01, 0.1))
    x = b.tensor((batches, depth), np.int8, in_scale, int(rng.integers(-50, 50)))
    weights, bias, w_scale = weights_and_bias(b, rng, (rows, depth), rows, in_scale, 0)
    y = b.tensor((batches, rows), np.int8, in_scale * w_scale * np.sqrt(depth) * 30, int(rng.integers(-50, 50)))
    b.fully_connected(x, weights, bias, y)
    return b.finish([x], [y])

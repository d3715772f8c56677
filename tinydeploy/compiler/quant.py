"""Host-side requantization constants, computed exactly as TFLite Micro does.

Every function mirrors TFLM's `quantization_util.cc` / `kernel_util.cc`
arithmetic (double precision products of float32 scales, round-half-away,
frexp normalisation) so the firmware's integer-only kernels match it bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> float:
    """C's round(): halves go away from zero (Python's round() goes to even)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier Q0.31, shift) with real == multiplier * 2**(shift - 31)."""
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q = int(round_half_away(mantissa * (1 << 31)))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier on int32 x: x * multiplier * 2**(shift - 31) with its
    double rounding (rounding doubling high multiply, then rounding shift, halves away from zero)."""
    left, right = max(shift, 0), max(-shift, 0)
    a = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)          # int32 wrap, as the C shift does
    if a == multiplier == -(1 << 31):
        high = (1 << 31) - 1
    else:
        high = (a * multiplier + (1 << 30)) >> 31
    if right == 0:
        return high
    remainder, threshold = high & ((1 << right) - 1), ((1 << right) - 1) >> 1
    return (high >> right) + (remainder > threshold + (1 if high < 0 else 0))


def conv_multipliers(input_scale: np.float32, filter_scales: np.ndarray,
                     output_scale: np.float32) -> tuple[list[int], list[int]]:
    """Per-channel (or single) output multipliers for FC/conv layers."""
    mults, shifts = [], []
    for fs in np.asarray(filter_scales, dtype=np.float32).reshape(-1):
        real = float(input_scale) * float(fs) / float(output_scale)
        m, s = quantize_multiplier(real)
        mults.append(m)
        shifts.append(s)
    return mults, shifts


def activation_range(activation: int, scale: np.float32, zero_point: int) -> tuple[int, int]:
    """Clamp bounds for a fused activation (0 none, 1 RELU, 2 RELU_N1_TO_1, 3 RELU6)."""
    def q(f: float) -> int:
        return int(zero_point) + int(round_half_away(float(np.float32(f) / np.float32(scale))))
    lo, hi = INT8_MIN, INT8_MAX
    if activation == 1:
        lo = max(lo, q(0.0))
    elif activation == 2:
        lo, hi = max(lo, q(-1.0)), min(hi, q(1.0))
    elif activation == 3:
        lo, hi = max(lo, q(0.0)), min(hi, q(6.0))
    elif activation != 0:
        raise ValueError(f"fused activation {activation}")
    return lo, hi


def softmax_params(beta: float, input_scale: np.float32) -> tuple[int, int, int]:
    """(input multiplier, left shift, diff_min) for int8 softmax with 5 integer bits."""
    scaled_diff_integer_bits = 5
    real = min(float(np.float32(beta)) * float(input_scale) * (1 << (31 - scaled_diff_integer_bits)),
               float((1 << 31) - 1))
    mult, shift = quantize_multiplier(real)
    radius = ((1 << scaled_diff_integer_bits) - 1) * (1 << (31 - scaled_diff_integer_bits)) / (1 << shift)
    return mult, shift, -int(math.floor(radius))


def add_params(scale1: np.float32, scale2: np.float32, out_scale: np.float32) -> dict[str, int]:
    """Multipliers of int8 ADD: both inputs rescaled to twice the larger scale, shifted left 20 bits."""
    left_shift = 20
    twice_max = 2 * float(max(np.float32(scale1), np.float32(scale2)))
    m1, s1 = quantize_multiplier(float(scale1) / twice_max)
    m2, s2 = quantize_multiplier(float(scale2) / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << left_shift) * float(out_scale)))
    return dict(left_shift=left_shift, input1_multiplier=m1, input1_shift=s1, input2_multiplier=m2,
                input2_shift=s2, output_multiplier=mo, output_shift=so)


def sigmoid_input_params(input_scale: np.float32) -> tuple[int, int, int]:
    """(multiplier, left shift, range radius) that bring int8 LOGISTIC/TANH inputs to Q4.27."""
    integer_bits = 4
    mantissa, left_shift = math.frexp(float(input_scale) * (1 << (31 - integer_bits)))
    multiplier = int(round_half_away(mantissa * (1 << 31)))
    radius = ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / 2.0 ** left_shift
    return multiplier, left_shift, int(math.floor(radius))


def mean_sum_multiplier(multiplier: int, shift: int, count: int) -> tuple[int, int]:
    """Fold 1/count into a MEAN's rescaling multiplier, as the reference's QuantizedMeanOrSum does."""
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << extra) // count, shift - extra

"""Host-side requantization constants, computed exactly as TFLite Micro does.

Every function mirrors TFLM's `quantization_util.cc` / `kernel_util.cc`
arithmetic (double precision products of float32 scales, round-half-away,
frexp normalisation) so the firmware's integer-only kernels match it bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

from tinydeploy.ir.schema import Activation

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


# Real-valued bounds of the fused activations the kernels clamp to (None: unbounded on that side).
_ACTIVATION_BOUNDS = {Activation.NONE: (None, None), Activation.RELU: (0.0, None),
                      Activation.RELU_N1_TO_1: (-1.0, 1.0), Activation.RELU6: (0.0, 6.0)}


def activation_range(activation: Activation, scale: np.float32, zero_point: int) -> tuple[int, int]:
    """int8 clamp bounds for a fused activation (ValueError for one the kernels can't clamp to)."""
    if activation not in _ACTIVATION_BOUNDS:
        raise ValueError(f"fused activation {activation}")

    def q(f: float) -> int:
        return int(zero_point) + int(round_half_away(float(np.float32(f) / np.float32(scale))))
    low, high = _ACTIVATION_BOUNDS[activation]
    return (INT8_MIN if low is None else max(INT8_MIN, q(low)),
            INT8_MAX if high is None else min(INT8_MAX, q(high)))


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


INT32_LIMIT = 1 << 31


def channel_bounds(per_row: np.ndarray, channels: int) -> np.ndarray:
    """Accumulator bounds per requantization channel: per row, or their maximum for one per-tensor scale."""
    return per_row if channels == len(per_row) else np.full(channels, per_row.max())


def rescale_records(mults: list[int], shifts: list[int], output_offset: int, acc_bound: np.ndarray,
                    constant_acc: dict[int, int] | None = None) -> tuple[np.ndarray, bool]:
    """Per-channel td_rescale records [multiplier, left, right, round] and whether td_rescale_fast is
    exact for every accumulator |acc| <= acc_bound[channel].

    With L = max(shift, 0) and R = max(-shift, 0): left = L + 1, right = R + 1 and round = 2^R +
    (output_offset << right). td_rescale_fast takes hi = SMMULR(acc << left, multiplier) (TFLite's
    rounding doubling high multiply of acc * 2^L) and (round + 2 hi - [hi < 0]) >> right, which is its
    rounding division by 2^R, ties away from zero, plus the output offset, as long as nothing overflows.
    For the fast path, a channel whose result is provably 0, or whose accumulator is a known constant
    (`constant_acc`: all its weights are 0), gets multiplier 0 and its result folded into `round`.
    The exact kernel path reads multiplier and left - right (= shift) only."""
    exact, fast_records, fast = [], [], True
    for channel, (m, shift, bound) in enumerate(zip(mults, shifts, (int(b) for b in acc_bound))):
        left, right = max(shift, 0), max(-shift, 0)
        exact.append([m, left + 1, right + 1, 0])
        hi = ((bound << left) * m >> 31) + 1                    # |rounding doubling high multiply| bound
        if constant_acc and channel in constant_acc:
            value = multiply_by_quantized_multiplier(constant_acc[channel], m, shift) + output_offset
            fast_records.append([0, 1, 1, 1 + 2 * value])
            continue
        if right >= 1 and hi < 1 << (right - 1):                # always rounds to 0
            m, left, right, hi = 0, 0, 0, 0
        round_ = (1 << right) + (output_offset << (right + 1))
        fast &= (bound << (left + 1)) < INT32_LIMIT and 2 * hi + abs(round_) + 1 < INT32_LIMIT and right < 31
        fast_records.append([m, left + 1, right + 1, round_])
    return np.asarray(fast_records if fast else exact, np.int64).astype(np.int32), fast


def constant_channels(weights: np.ndarray, bias: np.ndarray, channels: int) -> dict[int, int]:
    """Channels (per-channel quantization only) whose weights are all 0: their accumulator is the bias."""
    if channels != len(bias):
        return {}
    return {int(c): int(bias[c]) for c in np.flatnonzero(~weights.any(axis=1))}

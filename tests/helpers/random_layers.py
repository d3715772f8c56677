"""Random single-layer pieces for op tests: quantization parameters, window geometry, weights."""
from __future__ import annotations

import numpy as np

from helpers.tflite_builder import ModelBuilder


def random_scale(rng, lo=0.005, hi=0.2) -> float:
    return float(rng.uniform(lo, hi))


def random_zp(rng) -> int:
    return int(rng.integers(-100, 100))


def activation_input(b: ModelBuilder, rng, shape) -> int:
    return b.tensor(shape, np.int8, random_scale(rng), random_zp(rng))


def out_size(size: int, taps: int, stride: int, dilation: int, same: bool) -> int:
    effective = (taps - 1) * dilation + 1
    return (size + stride - 1) // stride if same else (size + stride - effective) // stride


def random_geometry(rng, taps_max=4):
    """A random window (taps, stride, dilation, padding) that leaves at least one output."""
    while True:
        in_h, in_w = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        fh, fw = int(rng.integers(1, taps_max + 1)), int(rng.integers(1, taps_max + 1))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (1, 1) if rng.random() < 0.6 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        same = bool(rng.random() < 0.5)
        out_h = out_size(in_h, fh, stride[0], dilation[0], same)
        out_w = out_size(in_w, fw, stride[1], dilation[1], same)
        if out_h > 0 and out_w > 0:
            return in_h, in_w, fh, fw, stride, dilation, same, out_h, out_w


def weights_and_bias(b: ModelBuilder, rng, shape, channels: int, in_scale: float, quantized_dim: int):
    """Random int8 weights (per-channel scales 70% of the time) and int32 bias; returns both and the mean scale."""
    per_channel = bool(rng.random() < 0.7)
    w_scale = rng.uniform(0.002, 0.03, size=channels if per_channel else 1).astype(np.float32)
    w = rng.integers(-127, 128, size=shape).astype(np.int8)
    weights = b.tensor(shape, np.int8, w_scale, 0, w, quantized_dim=quantized_dim)
    bias_scale = (np.float32(in_scale) * w_scale).astype(np.float32)
    bias = b.tensor((channels,), np.int32, bias_scale, 0, rng.integers(-3000, 3000, size=channels).astype(np.int32))
    return weights, bias, float(np.mean(w_scale))

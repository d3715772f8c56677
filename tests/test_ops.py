"""Every convolutional-set operator, host-compiled, against the TFLite Micro
reference on single-op models with randomized shapes, strides, paddings,
dilations, channel counts and quantization parameters (seeded)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.random_layers import random_scale, random_zp, activation_input, random_geometry, weights_and_bias
from helpers.tflite_builder import ModelBuilder, check_against_reference

CASES = 24


@pytest.mark.parametrize("seed", range(CASES))
def test_conv_2d(tmp_path, seed):
    rng = np.random.default_rng(3000 + seed)
    in_h, in_w, fh, fw, stride, dilation, same, out_h, out_w = random_geometry(rng)
    batches, in_c, out_c = int(rng.integers(1, 3)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
    groups = 1
    if seed % 5 == 4:                     # grouped convolution: each filter sees in_c / groups channels
        groups = int(rng.integers(2, 4))
        in_c, out_c = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    b = ModelBuilder()
    in_scale = random_scale(rng)
    x = b.tensor((batches, in_h, in_w, in_c), np.int8, in_scale, random_zp(rng))
    weights, bias, w_scale = weights_and_bias(b, rng, (out_c, fh, fw, in_c // groups), out_c, in_scale, 0)
    out_scale = in_scale * w_scale * np.sqrt(fh * fw * in_c) * rng.uniform(10, 60)
    y = b.tensor((batches, out_h, out_w, out_c), np.int8, out_scale, random_zp(rng))
    b.conv_2d(x, weights, bias, y, stride, dilation, same, activation=int(rng.choice([0, 1, 2, 3])))
    check_against_reference(tmp_path, b.finish([x], [y]), rng)


@pytest.mark.parametrize("seed", range(CASES))
def test_depthwise_conv_2d(tmp_path, seed):
    rng = np.random.default_rng(4000 + seed)
    in_h, in_w, fh, fw, stride, dilation, same, out_h, out_w = random_geometry(rng)
    in_c, multiplier = int(rng.integers(1, 7)), int(rng.choice([1, 1, 2, 3]))
    out_c = in_c * multiplier
    b = ModelBuilder()
    in_scale = random_scale(rng)
    x = b.tensor((1, in_h, in_w, in_c), np.int8, in_scale, random_zp(rng))
    weights, bias, w_scale = weights_and_bias(b, rng, (1, fh, fw, out_c), out_c, in_scale, 3)
    out_scale = in_scale * w_scale * np.sqrt(fh * fw) * rng.uniform(10, 60)
    y = b.tensor((1, out_h, out_w, out_c), np.int8, out_scale, random_zp(rng))
    b.depthwise_conv_2d(x, weights, bias, y, multiplier, stride, dilation, same, activation=int(rng.choice([0, 1, 3])))
    check_against_reference(tmp_path, b.finish([x], [y]), rng)


@pytest.mark.parametrize("kind", ["average", "max"])
@pytest.mark.parametrize("seed", range(CASES // 2))
def test_pool_2d(tmp_path, kind, seed):
    rng = np.random.default_rng(5000 + seed)
    while True:
        in_h, in_w, fh, fw, stride, _, same, out_h, out_w = random_geometry(rng)
        if out_h > 0 and out_w > 0:
            break
    channels = int(rng.integers(1, 9))
    b = ModelBuilder()
    scale, zp = random_scale(rng), random_zp(rng)
    x = b.tensor((int(rng.integers(1, 3)), in_h, in_w, channels), np.int8, scale, zp)
    y = b.tensor((b.tensors[x].shape[0], out_h, out_w, channels), np.int8, scale, zp)
    b.pool_2d(kind, x, y, (fh, fw), stride, same, activation=int(rng.choice([0, 1, 3])))
    check_against_reference(tmp_path, b.finish([x], [y]), rng)


def _second_operand(b: ModelBuilder, rng, a: int, seed: int) -> int:
    """Another activation computed from ``a``: a MEAN over some axes (so it broadcasts), a
    requantized copy of the same shape, ``a`` itself, or a constant."""
    shape = list(b.tensors[a].shape)
    kind = seed % 4
    if kind == 3:
        other = [d if rng.random() < 0.6 else 1 for d in shape]
        return b.tensor(other, np.int8, random_scale(rng), random_zp(rng), rng.integers(-128, 128, size=other).astype(np.int8))
    if kind == 2 and seed % 8 == 2:
        return a
    axes = [i for i in range(4) if rng.random() < 0.4]
    if kind == 0 or not axes:
        copy = b.tensor(shape, np.int8, random_scale(rng), random_zp(rng))
        b.unary("QUANTIZE", a, copy)
        return copy
    reduced = b.tensor([1 if i in axes else d for i, d in enumerate(shape)], np.int8, random_scale(rng), random_zp(rng))
    b.mean(a, axes, reduced, keep_dims=True)
    drop = 0
    while drop < 3 and b.tensors[reduced].shape[drop] == 1 and rng.random() < 0.5:
        drop += 1
    if drop:
        lower_rank = b.tensor(b.tensors[reduced].shape[drop:], np.int8, b.tensors[reduced].quantization.scale[0],
                              b.tensors[reduced].quantization.zeroPoint[0])
        b.reshape(reduced, lower_rank)
        return lower_rank
    return reduced


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("seed", range(CASES))
def test_add_and_mul_with_broadcasting(tmp_path, op, seed):
    rng = np.random.default_rng(6000 + seed)
    b = ModelBuilder()
    a = activation_input(b, rng, [int(rng.integers(1, 5)) for _ in range(4)])
    second = _second_operand(b, rng, a, seed)
    first, second = (a, second) if rng.random() < 0.5 else (second, a)
    out_shape = list(np.broadcast_shapes(tuple(b.tensors[first].shape), tuple(b.tensors[second].shape)))
    scale_a = float(b.tensors[a].quantization.scale[0])
    out_scale = random_scale(rng) if op == "add" else scale_a * random_scale(rng, 0.5, 20) * 0.05
    y = b.tensor(out_shape, np.int8, out_scale, random_zp(rng))
    getattr(b, op)(first, second, y, activation=int(rng.choice([0, 1, 3])))
    check_against_reference(tmp_path, b.finish([a], [y]), rng)


@pytest.mark.parametrize("seed", range(CASES))
def test_mean(tmp_path, seed):
    rng = np.random.default_rng(7000 + seed)
    shape = [int(rng.integers(1, 3)), int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 9))]
    axes = [1, 2] if seed % 2 == 0 else sorted(rng.choice(4, size=int(rng.integers(1, 4)), replace=False).tolist())
    keep_dims = bool(seed % 4 < 2)
    b = ModelBuilder()
    scale, zp = random_scale(rng), random_zp(rng)
    x = b.tensor(shape, np.int8, scale, zp)
    same_quantization = seed % 3 == 0
    out = [1 if i in axes else d for i, d in enumerate(shape)] if keep_dims else \
        [d for i, d in enumerate(shape) if i not in axes]
    y = b.tensor(out, np.int8, *((scale, zp) if same_quantization else (random_scale(rng), random_zp(rng))))
    b.mean(x, axes, y, keep_dims)
    check_against_reference(tmp_path, b.finish([x], [y]), rng)


@pytest.mark.parametrize("seed", range(CASES // 2))
def test_pad(tmp_path, seed):
    rng = np.random.default_rng(8000 + seed)
    rank = int(rng.integers(1, 5))
    shape = [int(rng.integers(1, 6)) for _ in range(rank)]
    pads = [[int(rng.integers(0, 3)), int(rng.integers(0, 3))] for _ in range(rank)]
    b = ModelBuilder()
    scale, zp = random_scale(rng), random_zp(rng)
    x = b.tensor(shape, np.int8, scale, zp)
    y = b.tensor([d + p + q for d, (p, q) in zip(shape, pads)], np.int8, scale, zp)
    value = int(rng.integers(-128, 128)) if seed % 2 else None     # PADV2 with an explicit value
    b.pad(x, pads, y, value)
    check_against_reference(tmp_path, b.finish([x], [y]), rng)


@pytest.mark.parametrize("seed", range(CASES // 2))
def test_concatenation(tmp_path, seed):
    """Concatenate the outputs of two or three ops, so that every input is an activation."""
    rng = np.random.default_rng(9000 + seed)
    rank = int(rng.integers(1, 5))
    axis = int(rng.integers(0, rank))
    base = [int(rng.integers(1, 5)) for _ in range(rank)]
    b = ModelBuilder()
    scale, zp = random_scale(rng), random_zp(rng)
    x = b.tensor(base, np.int8, scale, zp)
    parts = []
    for _ in range(int(rng.integers(2, 4))):
        shape = list(base)
        shape[axis] = int(rng.integers(1, 4))
        pads = [[0, 0] for _ in range(rank)]
        pads[axis] = [0, shape[axis]]
        padded = b.tensor([d + (shape[axis] if i == axis else 0) for i, d in enumerate(base)], np.int8, scale, zp)
        b.pad(x, pads, padded)
        parts.append(padded)
    total = sum(b.tensors[p].shape[axis] for p in parts)
    y = b.tensor([total if i == axis else d for i, d in enumerate(base)], np.int8, scale, zp)
    b.concatenation(parts, y, axis if rng.random() < 0.5 else axis - rank)
    check_against_reference(tmp_path, b.finish([x], [y]), rng)


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("seed", range(CASES // 2))
def test_logistic_and_tanh(tmp_path, op, seed):
    rng = np.random.default_rng(10000 + seed)
    shape = [int(rng.integers(1, 40)), int(rng.integers(1, 8))]
    b = ModelBuilder()
    x = b.tensor(shape, np.int8, random_scale(rng, 0.002, 0.5), random_zp(rng))
    y = b.tensor(shape, np.int8, *((1.0 / 256, -128) if op == "LOGISTIC" else (1.0 / 128, 0)))
    b.unary(op, x, y)
    check_against_reference(tmp_path, b.finish([x], [y]), rng, vectors=6)


@pytest.mark.parametrize("seed", range(CASES // 2))
def test_quantize_and_dequantize_at_the_boundary(tmp_path, seed):
    """float32 in -> QUANTIZE -> int8 -> QUANTIZE (requantize) -> DEQUANTIZE -> float32 out."""
    rng = np.random.default_rng(11000 + seed)
    shape = [1, int(rng.integers(1, 64))]
    b = ModelBuilder()
    x = b.tensor(shape, np.float32)
    q = b.tensor(shape, np.int8, random_scale(rng, 0.001, 0.1), random_zp(rng))
    r = b.tensor(shape, np.int8, random_scale(rng, 0.001, 0.1), random_zp(rng))
    y = b.tensor(shape, np.float32)
    b.unary("QUANTIZE", x, q)
    b.unary("QUANTIZE", q, r)
    b.unary("DEQUANTIZE", r, y)
    check_against_reference(tmp_path, b.finish([x], [y]), rng)


def test_elementwise_ops_run_in_place(tmp_path):
    """ADD and LOGISTIC write over an input nobody reads later: the arena holds two tensors, not three."""
    rng = np.random.default_rng(12)
    b = ModelBuilder()
    x = b.tensor((1, 8, 8, 4), np.int8, 0.05, 3)
    pooled = b.tensor((1, 8, 8, 4), np.int8, 0.05, 3)
    b.pool_2d("max", x, pooled, (3, 3), (1, 1), same=True)
    summed = b.tensor((1, 8, 8, 4), np.int8, 0.08, -5)
    b.add(pooled, x, summed)
    y = b.tensor((1, 8, 8, 4), np.int8, 1.0 / 256, -128)
    b.unary("LOGISTIC", summed, y)
    model = check_against_reference(tmp_path, b.finish([x], [y]), rng)
    offsets = model.plan.offsets
    assert offsets[y] == offsets[summed] and offsets[summed] in (offsets[x], offsets[pooled])
    assert model.plan.arena_size == 2 * 256

"""The generated library and every kernel under UndefinedBehaviorSanitizer and AddressSanitizer: a
standalone host executable (-fsanitize=undefined,address -fno-sanitize-recover=all), so any undefined
behaviour or bad access fails the run, and its outputs still equal the TFLite Micro reference.
One build per model; the kernels' sanitized objects are compiled once and shared."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from tinydeploy.compiler.codegen import compile_model
from tinydeploy.verify import reference
from tinydeploy.verify.host import SanitizedModel
from tinydeploy.verify.vectors import xorshift32_bytes

from helpers import SHARED_MODEL_NAMES, require_tools, shared_model
from helpers.tflite_builder import ModelBuilder, random_input
from helpers.kernel_paths import CASES as KERNEL_PATH_CASES


def check_sanitized(model, inputs: np.ndarray) -> None:
    require_tools("gcc")
    got = SanitizedModel(model).run(inputs)
    expected = reference.run(model.graph.flatbuffer, inputs)
    np.testing.assert_array_equal(got.view(np.uint8), np.ascontiguousarray(expected).view(np.uint8))


def _inputs(model, rng, xorshift: int = 2, random: int = 2) -> np.ndarray:
    """xorshift32 rows (the firmware's vectors; int8 models only) and random rows of the input's type."""
    x = model.graph.input_tensor()
    rows = [random_input(model, rng) for _ in range(random)]
    if x.dtype == "int8":
        rows = list(xorshift32_bytes(xorshift * x.size).reshape(xorshift, x.size)) + rows
    return np.stack(rows)


@pytest.mark.parametrize("rel", SHARED_MODEL_NAMES)
def test_shared_model_under_sanitizers(rel):
    model = compile_model(shared_model(rel))
    check_sanitized(model, _inputs(model, np.random.default_rng(zlib.crc32(rel.encode())), 3, 2))


# Each kernel-path case once (one seed; test_kernel_paths runs three), each layer its own model.
@pytest.mark.parametrize("name", list(KERNEL_PATH_CASES))
def test_kernel_path_under_sanitizers(tmp_path, name):
    build, kernel, _ = KERNEL_PATH_CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    path = tmp_path / "m.tflite"
    path.write_bytes(build(rng))
    model = compile_model(path)
    assert model.steps[0].kernel == kernel
    check_sanitized(model, _inputs(model, rng))


def _chain(rng):
    """One model through the kernels the kernel-path cases leave out: PAD (with rows and columns
    before the input), MAX and AVERAGE pooling over padded windows, MUL by a broadcast constant (both
    of its rescale paths), CONCATENATION, MEAN, LOGISTIC, TANH, FULLY_CONNECTED and SOFTMAX, between
    float QUANTIZE and DEQUANTIZE ends."""
    b = ModelBuilder()
    s, zp = 0.05, 3
    x = b.tensor((1, 6, 7, 5), np.float32)
    q = b.tensor((1, 6, 7, 5), np.int8, s, zp)
    b.unary("QUANTIZE", x, q)
    padded = b.tensor((1, 9, 8, 7), np.int8, s, zp)
    b.pad(q, [[0, 0], [2, 1], [1, 0], [1, 1]], padded, value=-20)
    pooled = b.tensor((1, 5, 4, 7), np.int8, s, zp)
    b.pool_2d("max", padded, pooled, (3, 3), (2, 2), same=True)
    averaged = b.tensor((1, 5, 4, 7), np.int8, s, zp)
    b.pool_2d("average", pooled, averaged, (2, 3), (1, 1), same=True)
    c = b.tensor((1, 1, 4, 7), np.int8, 0.02, -4, rng.integers(-128, 128, (1, 1, 4, 7)).astype(np.int8))
    scaled = b.tensor((1, 5, 4, 7), np.int8, 0.01, 5)
    b.mul(averaged, c, scaled)
    amplified = b.tensor((1, 5, 4, 7), np.int8, 0.0001, -2)          # a rescale above one
    b.mul(scaled, c, amplified)
    requantized = b.tensor((1, 5, 4, 7), np.int8, 0.01, 5)
    b.unary("QUANTIZE", amplified, requantized)
    joined = b.tensor((1, 5, 4, 14), np.int8, 0.01, 5)
    b.concatenation([scaled, requantized], joined, 3)
    mean = b.tensor((1, 14), np.int8, 0.01, 5)
    b.mean(joined, [1, 2], mean, keep_dims=False)
    logistic = b.tensor((1, 14), np.int8, 1.0 / 256, -128)
    b.unary("LOGISTIC", mean, logistic)
    tanh = b.tensor((1, 14), np.int8, 1.0 / 128, 0)
    b.unary("TANH", logistic, tanh)
    w = b.tensor((6, 14), np.int8, 0.01, 0, rng.integers(-127, 128, (6, 14)).astype(np.int8))
    bias = b.tensor((6,), np.int32, 0.01 / 128, 0, rng.integers(-500, 500, 6).astype(np.int32))
    fc = b.tensor((1, 6), np.int8, 0.05, -10)
    b.fully_connected(tanh, w, bias, fc)
    probs = b.tensor((1, 6), np.int8, 1.0 / 256, -128)
    b.softmax(fc, probs)
    y = b.tensor((1, 6), np.float32)
    b.unary("DEQUANTIZE", probs, y)
    return b.finish([x], [y])


@pytest.mark.parametrize("seed", range(2))
def test_every_other_kernel_under_sanitizers(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path / "chain.tflite"
    path.write_bytes(_chain(rng))
    model = compile_model(path)
    kernels = {s.kernel for s in model.steps}
    assert {"td_pad_s8", "td_max_pool_s8", "td_average_pool_s8", "td_mul_s8", "td_concatenation_s8",
            "td_mean_s8", "td_logistic_s8", "td_tanh_s8", "td_softmax_s8", "td_quantize_f32_s8",
            "td_requantize_s8", "td_dequantize_s8_f32", "td_fully_connected_s8"} <= kernels
    assert any(s.kernel == "td_mul_s8" and s.scalars["output_shift"] > 0 for s in model.steps)
    check_sanitized(model, _inputs(model, rng, random=4))

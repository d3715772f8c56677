"""RELU and RELU6 (a plain op added through the registry), host-compiled, against the reference."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.random_layers import random_scale, random_zp
from helpers.tflite_builder import ModelBuilder, check_against_reference


@pytest.mark.parametrize("op", ["RELU", "RELU6"])
@pytest.mark.parametrize("seed", range(6))
def test_relu_matches_reference(tmp_path, op, seed):
    rng = np.random.default_rng(7100 + seed)
    shape = tuple(int(d) for d in rng.integers(1, 9, size=int(rng.integers(1, 5))))
    b = ModelBuilder()
    x = b.tensor(shape, np.int8, random_scale(rng, 0.005, 0.1), random_zp(rng))
    same_quantization = op == "RELU" and seed % 3 == 0
    y = b.tensor(shape, np.int8, b.tensors[x].quantization.scale[0] if same_quantization else random_scale(rng),
                 b.tensors[x].quantization.zeroPoint[0] if same_quantization else random_zp(rng))
    b.unary(op, x, y)
    model = check_against_reference(tmp_path, b.finish([x], [y]), rng)
    assert model.steps[0].kernel == "td_relu_s8"


def test_relu_after_a_layer_runs_in_place(tmp_path):
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.tensor((1, 6, 6, 4), np.int8, 0.05, 2)
    pooled = b.tensor((1, 6, 6, 4), np.int8, 0.05, 2)
    b.pool_2d("average", x, pooled, (3, 3), (1, 1), same=True)
    y = b.tensor((1, 6, 6, 4), np.int8, 0.03, -128)
    b.unary("RELU6", pooled, y)
    model = check_against_reference(tmp_path, b.finish([x], [y]), rng)
    assert model.plan.offsets[y] == model.plan.offsets[pooled]

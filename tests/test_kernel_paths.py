"""Every specialised kernel path, forced by a randomized case built to need it,
checked bit-exactly against the reference interpreter. The host build runs
the same C as the firmware (td_simd.h emulates the DSP instructions), so each
path is exercised here and, for the shared models, in QEMU on the Cortex-M4."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from helpers.kernel_paths import CASES, fully_connected
from helpers.tflite_builder import ModelBuilder, check_against_reference


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("seed", range(3))
def test_kernel_path(tmp_path, name, seed):
    build, kernel, check = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()) + 17 * seed)
    model = check_against_reference(tmp_path, build(rng), rng)
    step = model.steps[0]
    assert step.kernel == kernel
    assert check(step)


@pytest.mark.parametrize("batches,depth,rows", [(1, 64, 16), (1, 13, 7), (1, 3, 6), (3, 10, 9), (2, 32, 4)])
def test_fully_connected_paths(tmp_path, batches, depth, rows):
    """One row read in place (with and without a 1-3 value tail, or only a tail), rows in blocks of four and
    the remaining rows singly; several rows in pairs through the packed columns."""
    rng = np.random.default_rng(depth * rows + batches)
    model = check_against_reference(tmp_path, fully_connected(rng, batches, depth, rows), rng)
    step = model.steps[0]
    assert step.scratch_bytes == (0 if batches == 1 else 6 * -(-depth // 4) * 4 + 8 * rows)


def test_general_requantization_when_the_short_form_is_not_exact(tmp_path):
    """A layer whose accumulators may reach 2^30 takes the general rounding path, still bit-exact."""
    rng = np.random.default_rng(9)
    b = ModelBuilder()
    x = b.tensor((1, 32), np.int8, 0.05, 0)
    w = b.tensor((4, 32), np.int8, 0.01, 0, np.full((4, 32), 127, np.int8))
    bias = b.tensor((4,), np.int32, 0.0005, 0, np.full(4, 1 << 30, np.int32))
    y = b.tensor((1, 4), np.int8, 4e6, 0)
    b.fully_connected(x, w, bias, y)
    model = check_against_reference(tmp_path, b.finish([x], [y]), rng)
    assert model.steps[0].scalars["gemm"]["fast"] == 0


def test_mul_with_a_rescale_above_one(tmp_path):
    rng = np.random.default_rng(4)
    b = ModelBuilder()
    x = b.tensor((1, 4, 4, 3), np.int8, 0.2, 5)
    y = b.tensor((1, 4, 4, 3), np.int8, 0.01, -3)
    b.mul(x, x, y)
    model = check_against_reference(tmp_path, b.finish([x], [y]), rng)
    assert model.steps[0].scalars["output_shift"] > 0

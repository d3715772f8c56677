"""Host-compiled kernels against the TFLite Micro reference interpreter, on
randomized layers, checking every intermediate tensor byte."""
from __future__ import annotations

import numpy as np
import pytest

from tinydeploy.codegen import compile_model

from tflite_builder import ModelBuilder, check_against_reference, random_fc_layer

CASES = 40


@pytest.mark.parametrize("seed", range(CASES))
def test_fully_connected_random(tmp_path, seed):
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    batches, depth = int(rng.integers(1, 4)), int(rng.integers(1, 80))
    x = b.tensor((batches, depth), np.int8, float(rng.uniform(0.005, 0.5)), int(rng.integers(-128, 128)))
    y = random_fc_layer(b, rng, x, int(rng.integers(1, 70)), per_channel=bool(seed % 2), activation=int(rng.choice([0, 1, 3])))
    check_against_reference(tmp_path, b.finish([x], [y]), rng)


@pytest.mark.parametrize("seed", range(CASES))
def test_softmax_random(tmp_path, seed):
    rng = np.random.default_rng(1000 + seed)
    b = ModelBuilder()
    rows, depth = int(rng.integers(1, 4)), int(rng.integers(1, 300))
    x = b.tensor((rows, depth), np.int8, float(rng.uniform(0.001, 1.0)), int(rng.integers(-128, 128)))
    y = b.tensor((rows, depth), np.int8, 1.0 / 256, -128)
    b.softmax(x, y, beta=float(rng.choice([1.0, rng.uniform(0.1, 3.0)])))
    check_against_reference(tmp_path, b.finish([x], [y]), rng, vectors=6)


@pytest.mark.parametrize("seed", range(10))
def test_chain_with_reshapes(tmp_path, seed):
    """FC -> RESHAPE -> FC -> SOFTMAX -> RESHAPE, both reshapes sharing their input's bytes."""
    rng = np.random.default_rng(2000 + seed)
    b = ModelBuilder()
    x = b.tensor((1, int(rng.integers(4, 64))), np.int8, float(rng.uniform(0.01, 0.2)), int(rng.integers(-20, 20)))
    h = random_fc_layer(b, rng, x, 24, per_channel=True, activation=1)
    r = b.tensor((1, 2, 12), np.int8, b.tensors[h].quantization.scale[0], b.tensors[h].quantization.zeroPoint[0])
    b.reshape(h, r)
    h2 = random_fc_layer(b, rng, r, 10, per_channel=False, activation=3)
    sm = b.tensor((2, 10), np.int8, 1.0 / 256, -128)
    b.softmax(h2, sm)
    y = b.tensor((1, 20), np.int8, 1.0 / 256, -128)
    b.reshape(sm, y)
    model = check_against_reference(tmp_path, b.finish([x], [y]), rng)
    assert [s.kernel for s in model.steps if s.op == "RESHAPE"] == [None, None]


def test_planner_never_overlaps_live_tensors(tmp_path):
    rng = np.random.default_rng(7)
    b = ModelBuilder()
    t = b.tensor((1, 32), np.int8, 0.05, 0)
    inp = t
    for i in range(8):
        t = random_fc_layer(b, rng, t, int(rng.integers(8, 64)), per_channel=False, activation=1)
    path = tmp_path / "deep.tflite"
    path.write_bytes(b.finish([inp], [t]))
    model = compile_model(path)
    bufs = model.plan.buffers
    for i, a in enumerate(bufs):
        for c in bufs[i + 1:]:
            if a.first <= c.last and c.first <= a.last:
                assert a.offset + a.size <= c.offset or c.offset + c.size <= a.offset
    # liveness lets a chain of layers reuse two slots instead of one per layer
    assert model.plan.arena_size < sum(buf.size for buf in bufs)

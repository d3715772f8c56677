"""Host-compiled kernels against the TFLite Micro reference interpreter, on
randomized layers, checking every intermediate tensor byte."""
from __future__ import annotations

import numpy as np
import pytest

from tinydeploy.compiler.codegen import compile_model

from helpers.tflite_builder import ModelBuilder, check_against_reference, random_fc_layer

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


def _smmulr(a: int, b: int) -> int:
    return (a * b + (1 << 31)) >> 32


def _wrap32(v: int) -> int:
    return (v + (1 << 31)) % (1 << 32) - (1 << 31)


@pytest.mark.parametrize("seed", range(4))
def test_fast_rescale_records_equal_tflite_rounding(seed):
    """td_rescale_fast's arithmetic (int32, as the C does it) against TFLite's MultiplyByQuantizedMultiplier
    plus the output offset, for multipliers above and below one, at and inside the proven bounds."""
    from tinydeploy.compiler.quant import rescale_records
    from tinydeploy.compiler.quant import multiply_by_quantized_multiplier, quantize_multiplier
    rng = np.random.default_rng(seed)
    reals = np.concatenate([np.exp(rng.uniform(np.log(1e-6), np.log(8.0), 60)), [1e-9]])
    mults, shifts = zip(*(quantize_multiplier(float(r)) for r in reals))
    bounds = rng.integers(1, 1 << 22, len(reals))
    offset = int(rng.integers(-128, 128))
    records, fast = rescale_records(list(mults), list(shifts), offset, bounds)
    assert fast and (records[:, 0] == 0).any()          # the 1e-9 channel always rounds to 0
    for (m, left, right, round_), mult, shift, bound in zip(records.tolist(), mults, shifts, bounds):
        for acc in {0, 1, -1, int(bound), -int(bound), *rng.integers(-bound, bound + 1, 200).tolist()}:
            hi = _smmulr(_wrap32(acc << left), m)
            got = _wrap32(round_ + 2 * hi - (1 if hi < 0 else 0)) >> right
            assert got == multiply_by_quantized_multiplier(acc, mult, shift) + offset, (acc, mult, shift)

"""The main job end to end: train -> quantize -> build -> run in QEMU, verified."""
from __future__ import annotations

import numpy as np
import pytest

from tinydeploy.ml import data
from tinydeploy.pipeline import build_firmware, run_firmware

from helpers import require_module




def test_iot_sensors_split_is_the_demo_split():
    ds = data.load("iot-sensors")
    assert ds.x_train.shape == (8000, 20) and ds.x_test.shape == (2000, 20)
    assert sorted(np.unique(ds.y_test)) == [0, 1, 2, 3]
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)


@pytest.mark.tensorflow
@pytest.mark.firmware
def test_train_quantize_run_iot(tmp_path):
    require_module("tensorflow")
    from tinydeploy.ml.quantize import quantize
    from tinydeploy.ml.train import train
    trained = train("iot-sensors", "mlp", tmp_path / "iot.keras", epochs=30)
    q = quantize(trained.model_path, tmp_path / "iot.tflite")
    assert q.int8_accuracy >= q.float_accuracy - 0.01            # within 1 point of float
    assert q.float_accuracy > 0.8
    for board in ("mps2-an386", "lm3s6965evb"):
        fw = build_firmware(q.tflite_path, board, tmp_path / board, vectors=50)
        result = run_firmware(fw)
        assert result.mismatches == [] and len(result.outputs) == 50
        assert result.labels is not None and result.accuracy() > 0.7

"""Full-integer int8 quantization with TFLiteConverter, and the accuracy it costs."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinydeploy.ml import data as data_mod

from tinydeploy.verify import reference
from tinydeploy.core.errors import TinyDeployError
from tinydeploy.core.resources import atomic_write
from tinydeploy.verify.vectors import testset_path

REPRESENTATIVE_SAMPLES = 500


@dataclass
class QuantizeResult:
    tflite_path: Path
    float_accuracy: float
    int8_accuracy: float
    tflite_bytes: int


def quantize_inputs(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def quantize(keras_path: Path, out: Path) -> QuantizeResult:
    """Convert ``keras_path`` to an int8 .tflite at ``out``; report float vs int8 test accuracy.

    The int8 accuracy is measured with the TFLite Micro reference interpreter,
    the same arithmetic the firmware reproduces.
    """
    keras_path, out = Path(keras_path), Path(out)
    if not keras_path.exists():
        raise TinyDeployError(f"{keras_path}: no such file; train a model first (`tinydeploy train`)")
    if keras_path.suffix != ".keras":
        raise TinyDeployError(f"{keras_path}: quantize takes a trained Keras model (.keras from `tinydeploy train`); "
                              "a .tflite is already converted: pass it to convert, build or run")
    ds = data_mod.load_for_model(keras_path)
    if ds is None:
        raise TinyDeployError(f"{data_mod.spec_path(keras_path)} is missing: quantization needs the training data "
                              "for calibration; train the model with `tinydeploy train`")
    from tinydeploy.ml.train import quiet_tensorflow, silenced
    tf = quiet_tensorflow()
    try:
        model = tf.keras.models.load_model(keras_path)
    except Exception as exc:      # Keras raises many types for a bad file
        raise TinyDeployError(f"{keras_path}: cannot load it as a Keras model ({type(exc).__name__}); re-train it")

    def representative():
        for row in ds.x_train[:REPRESENTATIVE_SAMPLES]:
            yield [row[None, :]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with silenced():
        flatbuffer = converter.convert()

    float_acc = float(np.mean(np.argmax(model.predict(ds.x_test, verbose=0), axis=1) == ds.y_test))
    from tinydeploy.ir.graph import load as load_graph
    atomic_write(out, flatbuffer)
    x = load_graph(out).input_tensor()
    x_q = quantize_inputs(ds.x_test, float(x.scale[0]), int(x.zero_point[0]))
    int8_out = reference.run(flatbuffer, x_q)
    int8_acc = float(np.mean(np.argmax(int8_out, axis=1) == ds.y_test))
    testset = io.BytesIO()
    np.savez(testset, x=x_q, y=ds.y_test)
    atomic_write(testset_path(out), testset.getvalue())
    return QuantizeResult(out, float_acc, int8_acc, len(flatbuffer))

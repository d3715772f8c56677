"""Full-integer quantization with TFLiteConverter (int8, or 4-bit Dense weights), and the accuracy it costs.

Models are converted with a fixed batch of one (``keras.Input(shape, batch_size=1)`` wrapped
around the trained model): with a dynamic batch, Keras 3's Reshape/Flatten add SHAPE,
STRIDED_SLICE and PACK operators to compute the batch size at run time.

``weights="int4"``: the Dense layers' kernels are fake-quantized to 4 bits per tensor
(`tinydeploy.ml.compress.layers`), and the converter emits packed INT4 FULLY_CONNECTED weights
with int8 activations. A model made by the int4 technique (fine-tuned at 4 bits) is converted
as it is; any other model gets its 4-bit ranges (and activation ranges) from the
representative data, without training. TFLite Micro runs per-tensor int4 weights only.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinydeploy.ml import data as data_mod

from tinydeploy.verify import reference
from tinydeploy.core.errors import BadInput, TinyDeployError
from tinydeploy.core.resources import atomic_write
from tinydeploy.verify.vectors import testset_path

REPRESENTATIVE_SAMPLES = 500
WEIGHTS = ("int8", "int4")


@dataclass
class QuantizeResult:
    tflite_path: Path
    float_accuracy: float
    int8_accuracy: float          # accuracy of the converted model (int8 activations; int4 or int8 weights)
    tflite_bytes: int
    weights: str = "int8"


def quantize_inputs(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def for_weights(model, ds: data_mod.Dataset, weights: str):
    """``model`` as it should be converted for ``weights`` (int8: as it is, unless its Dense
    kernels are fake-quantized to 4 bits; int4: with 4-bit Dense kernels)."""
    if weights not in WEIGHTS:
        raise BadInput(f"unknown weight type '{weights}'; choose one of: {', '.join(WEIGHTS)}")
    from tinydeploy.ml.compress.layers import dense_weight_bits, fake_quantized
    bits = dense_weight_bits(model)
    calibration = ds.x_train[:REPRESENTATIVE_SAMPLES]
    if weights == "int4" and (not bits or bits != {4}):
        return fake_quantized(model, calibration, dense_bits=4)
    if weights == "int8" and 4 in bits:
        return fake_quantized(model, calibration, dense_bits=8)
    return model


def convert(model, ds: data_mod.Dataset, weights: str = "int8") -> bytes:
    """The full-integer .tflite flatbuffer of ``model`` (int8 input and output, batch 1)."""
    from tinydeploy.ml.train import quiet_tensorflow, silenced
    tf = quiet_tensorflow()
    import keras
    model = for_weights(model, ds, weights)
    inputs = keras.Input(ds.input_shape, batch_size=1)
    fixed = keras.Model(inputs, model(inputs, training=False))

    def representative():
        for row in ds.x_train[:REPRESENTATIVE_SAMPLES]:
            yield [row[None, ...]]

    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    try:
        with silenced():
            return converter.convert()
    except Exception as exc:      # the converter raises many types; its own log went to /dev/null
        raise TinyDeployError(f"TFLiteConverter could not convert the model ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})")


def tflite_accuracy(flatbuffer: bytes, ds: data_mod.Dataset) -> tuple[float, np.ndarray]:
    """Test accuracy of a converted model in the TFLite Micro reference interpreter, and the
    quantized test inputs it was measured on."""
    import tempfile
    from tinydeploy.ir.graph import load as load_graph
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(flatbuffer)
        x = load_graph(path).input_tensor()
    x_q = quantize_inputs(ds.x_test, float(x.scale[0]), int(x.zero_point[0]))
    out = reference.run(flatbuffer, x_q)
    return float(np.mean(np.argmax(out, axis=1) == ds.y_test)), x_q


def quantize(keras_path: Path, out: Path, weights: str = "int8") -> QuantizeResult:
    """Convert ``keras_path`` to a full-integer .tflite at ``out``; report float vs quantized test accuracy.

    ``weights``: "int8" (default) or "int4" (4-bit Dense weights, int8 activations). The
    quantized accuracy is measured with the TFLite Micro reference interpreter, the same
    arithmetic the firmware reproduces.
    """
    keras_path, out = Path(keras_path), Path(out)
    if weights not in WEIGHTS:
        raise BadInput(f"unknown weight type '{weights}'; choose one of: {', '.join(WEIGHTS)}")
    if not keras_path.exists():
        raise TinyDeployError(f"{keras_path}: no such file; train a model first (`tinydeploy train`)")
    if keras_path.suffix != ".keras":
        raise TinyDeployError(f"{keras_path}: quantize takes a trained Keras model (.keras from `tinydeploy train`); "
                              "a .tflite is already converted: pass it to convert, build or run")
    ds = data_mod.load_for_model(keras_path)
    if ds is None:
        raise TinyDeployError(f"{data_mod.spec_path(keras_path)} is missing: quantization needs the training data "
                              "for calibration; train the model with `tinydeploy train`")
    from tinydeploy.ml.compress.common import load_keras
    model = load_keras(keras_path)
    flatbuffer = convert(model, ds, weights)
    float_acc = float(np.mean(np.argmax(model.predict(ds.x_test, verbose=0), axis=1) == ds.y_test))
    atomic_write(out, flatbuffer)
    quantized_acc, x_q = tflite_accuracy(flatbuffer, ds)
    testset = io.BytesIO()
    np.savez(testset, x=x_q, y=ds.y_test)
    atomic_write(testset_path(out), testset.getvalue())
    return QuantizeResult(out, float_acc, quantized_acc, len(flatbuffer), weights)

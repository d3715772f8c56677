"""Full-integer quantization of a float model (int8, or 4-bit Dense weights), and the accuracy it costs.

What it takes: a Keras model (.keras, .h5, or a SavedModel folder, loaded through
``keras.layers.TFSMLayer``), converted with TFLiteConverter; or a float .tflite, quantized with
LiteRT's ai-edge-quantizer (`tinydeploy.ml.tflite_ptq`). Calibration samples come from the user
(``--calibration``, `tinydeploy.ml.samples`) or, for a model `tinydeploy train` made, from its
training split; the test samples likewise (``--test``, or its test split). Both outputs take and
give int8.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinydeploy.ml import data as data_mod
from tinydeploy.ml import samples, tflite_ptq

from tinydeploy.verify import reference
from tinydeploy.core.errors import BadInput, TinyDeployError
from tinydeploy.core.resources import atomic_write
from tinydeploy.ir.graph import parse
from tinydeploy.verify.vectors import testset_path

REPRESENTATIVE_SAMPLES = 500
WEIGHTS = ("int8", "int4")
KERAS_SUFFIXES = (".keras", ".h5")
SAVED_MODEL_FILE = "saved_model.pb"
SAVED_MODEL_SIGNATURE = "serving_default"     # the signature model.export() and tf.saved_model.save write
MODEL_HINT = "quantize takes a float Keras model (.keras, .h5, a SavedModel folder) or a float .tflite"


@dataclass
class QuantizeResult:
    tflite_path: Path
    float_accuracy: float | None  # None: no test samples
    int8_accuracy: float | None   # accuracy of the converted model (int8 activations; int4 or int8 weights)
    tflite_bytes: int
    weights: str = "int8"
    calibration_samples: int = 0
    calibration_origin: str = ""
    test_samples: int = 0
    test_origin: str | None = None
    quantizer: str = "TFLiteConverter"
    float_kind: str = "float32 (Keras)"                              # how the float figure was measured
    float_operators: list[str] = field(default_factory=list)        # "#i OP" still reading or writing float32


def quantize_inputs(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def for_weights(model, calibration: np.ndarray, weights: str):
    """``model`` as it should be converted for ``weights`` (int8: as it is, unless its Dense
    kernels are fake-quantized to 4 bits; int4: with 4-bit Dense kernels), ranges from ``calibration``."""
    if weights not in WEIGHTS:
        raise BadInput(f"unknown weight type '{weights}'; choose one of: {', '.join(WEIGHTS)}")
    from tinydeploy.ml.compress.layers import dense_weight_bits, fake_quantized
    bits = dense_weight_bits(model)
    if weights == "int4" and (not bits or bits != {4}):
        return fake_quantized(model, calibration, dense_bits=4)
    if weights == "int8" and 4 in bits:
        return fake_quantized(model, calibration, dense_bits=8)
    return model


def convert(model, ds: data_mod.Dataset, weights: str = "int8") -> bytes:
    """The full-integer .tflite flatbuffer of ``model`` (int8 input and output, batch 1), calibrated
    on ``ds``'s training split."""
    return convert_samples(model, ds.input_shape, ds.x_train[:REPRESENTATIVE_SAMPLES], weights)


def convert_samples(model, input_shape: tuple[int, ...], calibration: np.ndarray, weights: str = "int8") -> bytes:
    """The full-integer .tflite flatbuffer of ``model`` (int8 input and output, batch 1) for samples
    of ``input_shape``, calibrated on ``calibration``."""
    from tinydeploy.ml.train import quiet_tensorflow, silenced
    tf = quiet_tensorflow()
    import keras
    model = for_weights(model, calibration, weights)
    inputs = keras.Input(input_shape, batch_size=1)
    fixed = keras.Model(inputs, model(inputs, training=False))

    def representative():
        for row in calibration:
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


def accuracy_of(flatbuffer: bytes, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Accuracy of the full-integer model ``flatbuffer`` on float inputs ``x`` and labels ``y`` in the
    TFLite Micro reference interpreter, and the quantized inputs it was measured on."""
    x_tensor = parse(flatbuffer).input_tensor()
    x_q = quantize_inputs(x, float(x_tensor.scale[0]), int(x_tensor.zero_point[0]))
    out = reference.run(flatbuffer, x_q)
    return float(np.mean(np.argmax(out, axis=1) == y)), x_q


def tflite_accuracy(flatbuffer: bytes, ds: data_mod.Dataset) -> tuple[float, np.ndarray]:
    """Test accuracy of a converted model in the TFLite Micro reference interpreter, and the
    quantized test inputs it was measured on."""
    return accuracy_of(flatbuffer, ds.x_test, ds.y_test)


def model_kind(path: Path) -> str:
    """"keras" (.keras, .h5), "saved_model" (a folder with saved_model.pb) or "tflite", or BadInput."""
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder; {MODEL_HINT}")
    if path.is_dir():
        if (path / SAVED_MODEL_FILE).exists():
            return "saved_model"
        raise BadInput(f"{path}: a folder without {SAVED_MODEL_FILE}, so not a SavedModel; {MODEL_HINT}")
    suffix = path.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        return "keras"
    if suffix == ".tflite":
        return "tflite"
    raise BadInput(f"{path}: not a model tinydeploy can quantize; {MODEL_HINT}")


class _FloatModel:
    """A float Keras model or SavedModel to convert: the model and its one input's sample shape
    (None for a size it leaves open)."""

    def __init__(self, path: Path, kind: str):
        from tinydeploy.ml.train import quiet_tensorflow, silenced
        tf = quiet_tensorflow()
        import keras
        from tinydeploy.ml.compress import layers as _registered  # noqa: F401  (tinydeploy's fake-quant layers)
        try:
            with silenced():
                if kind == "saved_model":
                    spec = self._saved_model_input(tf, path)
                    layer = keras.layers.TFSMLayer(str(path), call_endpoint=SAVED_MODEL_SIGNATURE)
                    inputs = keras.Input(tuple(spec.shape[1:]))
                    outputs = layer(inputs)
                    if isinstance(outputs, dict):       # a signature names its outputs
                        if len(outputs) != 1:
                            raise BadInput(f"{path}: the SavedModel has {len(outputs)} outputs "
                                           f"({', '.join(outputs)}); quantize takes models with one output")
                        outputs = next(iter(outputs.values()))
                    self.model = keras.Model(inputs, outputs)
                else:
                    self.model = keras.models.load_model(path, compile=False)
        except TinyDeployError:
            raise
        except Exception as exc:      # Keras and TensorFlow raise many types for a bad file
            raise BadInput(f"{path}: cannot load it as a {'SavedModel' if kind == 'saved_model' else 'Keras model'} "
                           f"({type(exc).__name__}); re-save it with model.save() or model.export()")
        inputs, outputs = getattr(self.model, "inputs", None), getattr(self.model, "outputs", None)
        if not inputs or not outputs:
            raise BadInput(f"{path}: the model has no defined input shape; build it with keras.Input(shape) "
                           "and save it again")
        if len(inputs) != 1 or len(outputs) != 1:
            raise BadInput(f"{path}: the model has {len(inputs)} inputs and {len(outputs)} outputs; quantize "
                           "takes models with one input and one output")
        self.sample_shape = tuple(inputs[0].shape[1:])

    @staticmethod
    def _saved_model_input(tf, path: Path):
        loaded = tf.saved_model.load(str(path))
        if SAVED_MODEL_SIGNATURE not in loaded.signatures:
            raise BadInput(f"{path}: the SavedModel has no '{SAVED_MODEL_SIGNATURE}' signature "
                           f"(it has: {', '.join(loaded.signatures.keys()) or 'none'}); export it with model.export()")
        specs = loaded.signatures[SAVED_MODEL_SIGNATURE].structured_input_signature[1]
        if len(specs) != 1:
            raise BadInput(f"{path}: the SavedModel takes {len(specs)} inputs; quantize takes models with one input")
        return next(iter(specs.values()))

    def predict(self, x: np.ndarray) -> np.ndarray:
        from tinydeploy.ml.train import silenced
        with silenced():
            return np.asarray(self.model.predict(x, verbose=0)).reshape(len(x), -1)


@dataclass
class _Samples:
    """Calibration samples and labelled test samples (None: no test data), and where each came from."""
    calibration: np.ndarray
    calibration_origin: str
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    test_origin: str | None

    @classmethod
    def read(cls, model_path: Path, calibration: Path | None, test: Path | None, label: str | None) -> "_Samples":
        """From the files given, or else from the data of a model `tinydeploy train` made."""
        spec = data_mod.spec_path(model_path)
        ds = data_mod.load_for_model(model_path) if (calibration is None or test is None) and spec.exists() else None
        if calibration is not None:
            calib, calib_origin = samples.calibration_samples(calibration, label), str(calibration)
        elif ds is not None:
            calib, calib_origin = ds.x_train, f"the training split ({spec.name})"
        else:
            raise BadInput(f"{model_path}: give calibration samples with --calibration FILE: "
                           f"{samples.CALIBRATION_HINT}; only a model trained by `tinydeploy train` has its data "
                           f"beside it ({spec.name})")
        if test is not None:
            (x, y), test_origin = samples.labelled_samples(test, label), str(test)
        elif ds is not None:
            x, y, test_origin = ds.x_test, ds.y_test, f"the test split ({spec.name})"
        else:
            x = y = test_origin = None
        return cls(calib[:REPRESENTATIVE_SAMPLES], calib_origin, x, y, test_origin)

    def fit(self, sample_shape) -> None:
        """Shape the samples for a model input of ``sample_shape``, or BadInput."""
        self.calibration = samples.fit_input(self.calibration, sample_shape, self.calibration_origin)
        if self.x_test is not None:
            self.x_test = samples.fit_input(self.x_test, sample_shape, self.test_origin)


def _check_labels(y: np.ndarray | None, classes: int, origin: str | None) -> None:
    if y is not None and len(y) and int(y.max()) >= classes:
        raise BadInput(f"{origin}: label {int(y.max())} but the model has {classes} outputs; labels are the "
                       "positions of the model's outputs, 0 to outputs - 1")


def quantize(model_path: Path, out: Path, weights: str = "int8", calibration: Path | None = None,
             test: Path | None = None, label: str | None = None) -> QuantizeResult:
    """Convert the float model at ``model_path`` (.keras, .h5, SavedModel folder or float .tflite) to a
    full-integer .tflite at ``out`` (int8 input and output); report float vs quantized test accuracy.

    ``calibration``: the representative samples (`tinydeploy.ml.samples`; its first
    REPRESENTATIVE_SAMPLES rows); ``test``/``label``: labelled samples for the accuracy report. A
    model trained by `tinydeploy train` defaults to its own training and test splits. ``weights``:
    "int8" (default) or "int4" (4-bit Dense weights, int8 activations; Keras files only). The
    quantized accuracy is measured with the TFLite Micro reference interpreter, the same arithmetic
    the firmware reproduces; the int8 test inputs are saved beside ``out`` for `build` and `run`.
    """
    model_path, out = Path(model_path), Path(out)
    if weights not in WEIGHTS:
        raise BadInput(f"unknown weight type '{weights}'; choose one of: {', '.join(WEIGHTS)}")
    kind = model_kind(model_path)
    if weights != "int8" and kind != "keras":
        raise BadInput(f"{model_path}: --weights {weights} takes a Keras model (.keras or .h5); a "
                       f"{'SavedModel' if kind == 'saved_model' else '.tflite'} is quantized to int8 only")
    data = _Samples.read(model_path, calibration, test, label)    # before TensorFlow: bad files fail fast
    if kind == "tflite":
        float_flatbuffer = model_path.read_bytes()
        graph = parse(float_flatbuffer, model_path)
        refusal = tflite_ptq.already_quantized(graph)
        if refusal:
            raise BadInput(f"{model_path}: {refusal}")
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise BadInput(f"{model_path}: the model has {len(graph.inputs)} inputs and {len(graph.outputs)} "
                           "outputs; quantize takes models with one input and one output")
        data.fit(graph.input_tensor().shape[1:])
        flatbuffer, quantized = tflite_ptq.quantize_float_tflite(float_flatbuffer, data.calibration, str(model_path))
        float_outputs = (lambda x: reference.run(float_flatbuffer, x).reshape(len(x), -1))
        float_kind, quantizer_name = "float32 (TFLite Micro reference interpreter)", tflite_ptq.QUANTIZER
    else:
        model = _FloatModel(model_path, kind)
        data.fit(model.sample_shape)
        flatbuffer = convert_samples(model.model, tuple(data.calibration.shape[1:]), data.calibration, weights)
        quantized = parse(flatbuffer, model_path)
        float_outputs = model.predict
        float_kind = "float32 (SavedModel)" if kind == "saved_model" else "float32 (Keras)"
        quantizer_name = "TFLiteConverter"
    x_test, y_test = data.x_test, data.y_test
    _check_labels(y_test, quantized.output_tensor().size, data.test_origin)
    float_acc = quantized_acc = None
    if x_test is not None:
        float_acc = float(np.mean(np.argmax(float_outputs(x_test), axis=1) == y_test))
        quantized_acc, x_q = accuracy_of(flatbuffer, x_test, y_test)
    atomic_write(out, flatbuffer)
    sidecar = testset_path(out)
    if x_test is not None:
        testset = io.BytesIO()
        np.savez(testset, x=x_q, y=y_test)
        atomic_write(sidecar, testset.getvalue())
    else:
        sidecar.unlink(missing_ok=True)         # an earlier quantize's test split is not this model's
    return QuantizeResult(out, float_acc, quantized_acc, len(flatbuffer), weights,
                          calibration_samples=len(data.calibration), calibration_origin=data.calibration_origin,
                          test_samples=0 if x_test is None else len(x_test), test_origin=data.test_origin,
                          quantizer=quantizer_name, float_kind=float_kind,
                          float_operators=tflite_ptq.float_operators(quantized))

"""4-bit weights: fine-tune the baseline with its Dense kernels fake-quantized to 4 bits.

Every Dense layer becomes a `layers.FakeQuantDense` with ``weight_bits=4``: its kernel goes
through ``tf.quantization.fake_quant_with_min_max_vars(num_bits=4, narrow_range=True)`` per
tensor over [-max|kernel|, +max|kernel|] (levels -7..7), and its output through an 8-bit fake
quantizer (EMA range); an 8-bit quantizer also sits on the input (and after average pooling),
because the converter only keeps a layer's 4-bit weight range when the layer's input is
fake-quantized too. Conv layers keep int8 weights (quantized by the converter).

The plain TFLiteConverter (representative dataset, int8 input and output) then emits
FULLY_CONNECTED operators with packed INT4 weights and int8 activations:
`tinydeploy quantize --weights int4`. TFLite Micro refuses per-channel int4, hence per tensor.
The int4 model's accuracy is measured in the TFLite Micro reference interpreter.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinydeploy.core.errors import BadInput
from tinydeploy.ml import data as data_mod
from tinydeploy.ml.compress import common
from tinydeploy.ml.compress.defaults import DEFAULT_EPOCHS, resolve
from tinydeploy.ml.compress.layers import DENSE, fake_quantized
from tinydeploy.ml.quantize import REPRESENTATIVE_SAMPLES, convert, tflite_accuracy


@dataclass
class Int4Result(common.CompressResult):
    int4_accuracy: float = 0.0            # the converted int4 model in the reference interpreter
    int4_tflite_bytes: int = 0
    baseline_int8_accuracy: float = 0.0   # the baseline post-training quantized to int8, for comparison
    baseline_int8_tflite_bytes: int = 0


def int4_weights(baseline: Path, dataset: data_mod.Dataset, out: Path, epochs: int = DEFAULT_EPOCHS, seed: int = 42,
                 **params) -> Int4Result:
    """Fine-tune ``baseline`` with 4-bit Dense kernels for ``epochs`` epochs (0: calibrate only),
    save to ``out``; convert to int4 and measure it. Parameters: `defaults.DEFAULTS["int4"]`."""
    p = resolve("int4", params)
    out = common.check_out(out)
    model = common.load_keras(baseline)
    common.check_fits(model, dataset, baseline)
    if not any(isinstance(layer, DENSE) for layer in common.sequential_layers(model, "int4 weights")):
        raise BadInput(f"{baseline}: no Dense layer, nothing to give 4-bit weights")
    q = fake_quantized(model, dataset.x_train[:REPRESENTATIVE_SAMPLES], dense_bits=4, conv_bits=None,
                       ema_decay=float(p["ema_decay"]))
    common.fine_tune(q, dataset, epochs, seed, float(p["learning_rate"]))
    path, acc, n = common.finish(q, dataset, out)
    int4_tflite = convert(q, dataset, "int4")
    int8_tflite = convert(model, dataset, "int8")
    return Int4Result(path, acc, n, int4_accuracy=tflite_accuracy(int4_tflite, dataset)[0],
                      int4_tflite_bytes=len(int4_tflite), baseline_int8_accuracy=tflite_accuracy(int8_tflite, dataset)[0],
                      baseline_int8_tflite_bytes=len(int8_tflite))

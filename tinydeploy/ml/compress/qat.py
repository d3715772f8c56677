"""Quantization-aware training: fine-tune the baseline with int8 fake quantization in the loop.

The baseline is rebuilt with `layers.FakeQuantDense` / `FakeQuantConv2D` /
`FakeQuantDepthwiseConv2D` (8-bit per-tensor kernels, narrow range; 8-bit outputs with
EMA-tracked ranges) and a `FakeQuantActivation` on the input (and after average pooling); the
ranges start from the float outputs on training data, then training moves them. The forward pass
thus sees the rounding and clipping of the int8 model, and the weights adapt to it
(straight-through gradients).

The saved model keeps the fake-quant ops; the plain TFLiteConverter (full int8, int8 I/O, the
representative dataset only for what has no range) turns them into the int8 model's scales.
Reported next to it: post-training int8 quantization (PTQ) of the same baseline, both measured
in the TFLite Micro reference interpreter.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinydeploy.core.errors import BadInput
from tinydeploy.ml import data as data_mod
from tinydeploy.ml.compress import common
from tinydeploy.ml.compress.defaults import DEFAULT_EPOCHS, resolve
from tinydeploy.ml.compress.layers import fake_quantized, is_plain_kernel_layer
from tinydeploy.ml.quantize import REPRESENTATIVE_SAMPLES, convert, tflite_accuracy


@dataclass
class QATResult(common.CompressResult):
    baseline_float_accuracy: float = 0.0
    qat_int8_accuracy: float = 0.0          # the QAT model converted to int8 (reference interpreter)
    ptq_int8_accuracy: float = 0.0          # the baseline post-training quantized to int8
    qat_tflite_bytes: int = 0
    ptq_tflite_bytes: int = 0


def quantization_aware(baseline: Path, dataset: data_mod.Dataset, out: Path, epochs: int = DEFAULT_EPOCHS,
                       seed: int = 42, **params) -> QATResult:
    """Fine-tune ``baseline`` with 8-bit fake quantization for ``epochs`` epochs, save to ``out``;
    convert it and the baseline (PTQ) to int8 and measure both. Parameters: `defaults.DEFAULTS["qat"]`."""
    p = resolve("qat", params)
    out = common.check_out(out)
    model = common.load_keras(baseline)
    common.check_fits(model, dataset, baseline)
    if not any(is_plain_kernel_layer(layer) for layer in common.sequential_layers(model, "QAT")):
        raise BadInput(f"{baseline}: no Dense or Conv layer left to fake-quantize (already quantization-aware?)")
    qat = fake_quantized(model, dataset.x_train[:REPRESENTATIVE_SAMPLES], dense_bits=8, conv_bits=8,
                         ema_decay=float(p["ema_decay"]))
    common.fine_tune(qat, dataset, epochs, seed, float(p["learning_rate"]))
    path, acc, n = common.finish(qat, dataset, out)
    qat_tflite = convert(qat, dataset, "int8")
    ptq_tflite = convert(model, dataset, "int8")
    return QATResult(path, acc, n, baseline_float_accuracy=common.accuracy(model, dataset),
                     qat_int8_accuracy=tflite_accuracy(qat_tflite, dataset)[0],
                     ptq_int8_accuracy=tflite_accuracy(ptq_tflite, dataset)[0],
                     qat_tflite_bytes=len(qat_tflite), ptq_tflite_bytes=len(ptq_tflite))

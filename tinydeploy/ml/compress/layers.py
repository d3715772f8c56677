"""Keras 3 layers with fake-quantized kernels and outputs, for QAT and 4-bit weights.

``FakeQuantDense``, ``FakeQuantConv2D`` and ``FakeQuantDepthwiseConv2D`` are the Keras layers
with two additions:

* the kernel goes through ``tf.quantization.fake_quant_with_min_max_vars`` per tensor, with
  ``narrow_range=True`` and the symmetric range ``[-max|kernel|, +max|kernel|]``, so zero is a
  level and the levels are TFLite's symmetric weight levels: -127..127 at 8 bits, -7..7 at 4.
  The range follows the kernel at every training step (not trained: ``stop_gradient``; the
  kernel gets the straight-through gradient) and is stored in a variable, ``kernel_bound``,
  used in inference: frozen into the graph it is a constant, which the converter needs.
* with ``quantize_output=True`` the layer's output (after its activation) goes through an 8-bit
  fake quantizer whose range is an exponential moving average (``ema_decay``) of the batch
  minimum and maximum in training, widened to include 0. Inference uses the stored range.

``FakeQuantActivation`` is the output quantizer alone: placed on the model input and after
average pooling, so that every weight layer's input carries a fake-quant range too.

The fake-quant ops stay in the saved .keras model. The plain TFLiteConverter reads their ranges:
a 4-bit kernel range becomes packed INT4 weights and the activation ranges become the int8
tensors' scales (the representative dataset calibrates whatever has none). The converter only
takes a layer's weight range when the layer's input is fake-quantized as well; otherwise it
quantizes that layer's weights itself (int8, per channel) -- hence the input quantizer.

Scheme, as in TensorFlow's QAT: per-tensor weights (TFLite Micro refuses per-channel int4 and
our kernels take either at int8), asymmetric 8-bit activations.
"""
from __future__ import annotations

import numpy as np

from tinydeploy.ml.train import quiet_tensorflow

tf = quiet_tensorflow()
import keras  # noqa: E402  (Keras 3, after TensorFlow's quiet import)

ops = keras.ops
PACKAGE = "tinydeploy"
FAKE_QUANT_OPTIONS = ("weight_bits", "quantize_output", "ema_decay")


def kernel_bound(kernel):
    """max|kernel|, the per-tensor symmetric range of the kernel's grid."""
    return tf.maximum(tf.reduce_max(tf.abs(kernel)), 1e-8)


def fake_quant_kernel(kernel, bits: int, bound):
    """``kernel`` on the symmetric per-tensor grid of ``bits`` bits (narrow range) over [-bound, bound]."""
    bound = tf.stop_gradient(bound)
    return tf.quantization.fake_quant_with_min_max_vars(kernel, -bound, bound, num_bits=bits, narrow_range=True)


class _OutputQuant:
    """An 8-bit fake quantizer on the layer's output, its range an EMA of the training batches'."""

    def _oq_init(self, quantize_output: bool, ema_decay: float):
        self.quantize_output = bool(quantize_output)
        self.ema_decay = float(ema_decay)

    def _oq_build(self):
        if self.quantize_output:
            self.output_min = self.add_weight(name="output_min", shape=(), initializer="zeros", trainable=False)
            self.output_max = self.add_weight(name="output_max", shape=(), initializer="zeros", trainable=False)
            self.output_seen = self.add_weight(name="output_seen", shape=(), initializer="zeros", trainable=False)

    def _fq_output(self, x, training):
        if not self.quantize_output:
            return x
        if training:
            batch_min = tf.minimum(tf.reduce_min(x), 0.0)
            batch_max = tf.maximum(tf.reduce_max(x), 0.0)
            first = self.output_seen < 0.5
            d = self.ema_decay
            self.output_min.assign(tf.where(first, batch_min, d * self.output_min + (1 - d) * batch_min))
            self.output_max.assign(tf.where(first, batch_max, d * self.output_max + (1 - d) * batch_max))
            self.output_seen.assign(1.0)
        lo = tf.stop_gradient(tf.convert_to_tensor(self.output_min))
        hi = tf.stop_gradient(tf.maximum(tf.convert_to_tensor(self.output_max), lo + 1e-6))
        return tf.quantization.fake_quant_with_min_max_vars(x, lo, hi, num_bits=8, narrow_range=False)

    def calibrated(self) -> bool:
        return not self.quantize_output or float(self.output_seen.numpy()) > 0.5

    def set_output_range(self, values: np.ndarray) -> None:
        """Start the range from the float outputs ``values`` (before any training)."""
        self.output_min.assign(min(float(np.min(values)), 0.0))
        self.output_max.assign(max(float(np.max(values)), 0.0))
        self.output_seen.assign(1.0)

    # Keras' Dense saves only its own kernel and bias: save every variable, in creation order.
    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)


class _FakeQuant(_OutputQuant):
    """Kernel fake quantization on top of the output quantizer."""

    def _fq_init(self, weight_bits: int, quantize_output: bool, ema_decay: float):
        if int(weight_bits) not in (4, 8):
            raise ValueError(f"weight_bits must be 4 or 8, not {weight_bits}")
        self.weight_bits = int(weight_bits)
        self._oq_init(quantize_output, ema_decay)

    def _fq_build(self):
        self.kernel_bound = self.add_weight(name="kernel_bound", shape=(), initializer="zeros", trainable=False)
        self._oq_build()

    def _fq_kernel(self, kernel, training):
        if training:                    # the live range, stored for inference and conversion
            bound = kernel_bound(kernel)
            self.kernel_bound.assign(bound)
        else:
            bound = tf.convert_to_tensor(self.kernel_bound)
        return fake_quant_kernel(kernel, self.weight_bits, bound)

    def call(self, inputs, training=None):
        return self._fq_output(self.float_output(inputs, training), training)

    def _fq_config(self) -> dict:
        return {"weight_bits": self.weight_bits, "quantize_output": self.quantize_output, "ema_decay": self.ema_decay}


@keras.saving.register_keras_serializable(PACKAGE)
class FakeQuantActivation(_OutputQuant, keras.layers.Layer):
    """The identity, with its values fake-quantized to 8 bits over an EMA-tracked range."""

    def __init__(self, ema_decay: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self._oq_init(True, ema_decay)

    def build(self, input_shape):
        self._oq_build()

    def float_output(self, inputs, training=None):
        return inputs

    def call(self, inputs, training=None):
        return self._fq_output(inputs, training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "ema_decay": self.ema_decay}


@keras.saving.register_keras_serializable(PACKAGE)
class FakeQuantDense(_FakeQuant, keras.layers.Dense):
    def __init__(self, units, weight_bits: int = 8, quantize_output: bool = True, ema_decay: float = 0.99, **kwargs):
        super().__init__(units, **kwargs)
        self._fq_init(weight_bits, quantize_output, ema_decay)

    def build(self, input_shape):
        super().build(input_shape)
        self._fq_build()

    def float_output(self, inputs, training=None):
        x = ops.matmul(inputs, self._fq_kernel(self.kernel, training))
        if self.use_bias:
            x = ops.add(x, self.bias)
        return self.activation(x) if self.activation is not None else x

    def get_config(self):
        return {**super().get_config(), **self._fq_config()}


def _add_bias(layer, x):
    if not layer.use_bias:
        return x
    shape = (1, 1, 1, -1) if layer.data_format == "channels_last" else (1, -1, 1, 1)
    return ops.add(x, ops.reshape(layer.bias, shape))


@keras.saving.register_keras_serializable(PACKAGE)
class FakeQuantConv2D(_FakeQuant, keras.layers.Conv2D):
    def __init__(self, filters, kernel_size, weight_bits: int = 8, quantize_output: bool = True,
                 ema_decay: float = 0.99, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self._fq_init(weight_bits, quantize_output, ema_decay)

    def build(self, input_shape):
        super().build(input_shape)
        self._fq_build()

    def float_output(self, inputs, training=None):
        x = ops.conv(inputs, self._fq_kernel(self.kernel, training), strides=list(self.strides), padding=self.padding,
                     dilation_rate=self.dilation_rate, data_format=self.data_format)
        x = _add_bias(self, x)
        return self.activation(x) if self.activation is not None else x

    def get_config(self):
        return {**super().get_config(), **self._fq_config()}


@keras.saving.register_keras_serializable(PACKAGE)
class FakeQuantDepthwiseConv2D(_FakeQuant, keras.layers.DepthwiseConv2D):
    def __init__(self, kernel_size, weight_bits: int = 8, quantize_output: bool = True, ema_decay: float = 0.99,
                 **kwargs):
        super().__init__(kernel_size, **kwargs)
        self._fq_init(weight_bits, quantize_output, ema_decay)

    def build(self, input_shape):
        super().build(input_shape)
        self._fq_build()

    def float_output(self, inputs, training=None):
        x = ops.depthwise_conv(inputs, self._fq_kernel(self.kernel, training), strides=self.strides,
                               padding=self.padding, dilation_rate=self.dilation_rate, data_format=self.data_format)
        x = _add_bias(self, x)
        return self.activation(x) if self.activation is not None else x

    def get_config(self):
        return {**super().get_config(), **self._fq_config()}


DENSE = (keras.layers.Dense,)
CONV = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
FAKE_QUANT = {keras.layers.Dense: FakeQuantDense, keras.layers.Conv2D: FakeQuantConv2D,
              keras.layers.DepthwiseConv2D: FakeQuantDepthwiseConv2D}
RANGE_CHANGING = (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
                  keras.layers.AveragePooling1D, keras.layers.AveragePooling2D)


def sync_kernel_ranges(model) -> None:
    """Set every fake-quant layer's stored kernel range to max|kernel| of its current kernel.

    Call after changing weights outside training and after ``fit`` (training stores the range
    before the optimizer's last update)."""
    for layer in getattr(model, "layers", []):
        if isinstance(layer, _FakeQuant) and layer.built:
            layer.kernel_bound.assign(kernel_bound(layer.kernel))
        elif hasattr(layer, "layers"):
            sync_kernel_ranges(layer)


def weight_bits(model) -> set[int]:
    """The kernel bit widths of the model's fake-quant layers (empty for a plain model)."""
    return {layer.weight_bits for layer in model.layers if isinstance(layer, _FakeQuant)}


def dense_weight_bits(model) -> set[int]:
    return {layer.weight_bits for layer in model.layers if isinstance(layer, FakeQuantDense)}


def fake_quantized(model, x_calibration: np.ndarray, dense_bits: int, conv_bits: int | None = None,
                   ema_decay: float = 0.99):
    """``model`` rebuilt with fake quantization, sharing nothing with it (weights are copied).

    Dense layers get ``dense_bits``-bit kernels; Conv2D/DepthwiseConv2D layers get ``conv_bits``
    (None: left as they are). Every replaced layer quantizes its output, an input quantizer is
    put first and one after every average pooling. Layers that were fake-quantized already keep
    their ranges (only their bit width changes); new ranges start from the float outputs on
    ``x_calibration``, so the model is usable (and convertible) before any training."""
    from tinydeploy.ml.compress.common import fresh, rebuild, sequential_layers, weights_of
    layers_in = sequential_layers(model, "fake quantization")
    new_layers, weights = [], []

    def quantizer():
        new_layers.append(FakeQuantActivation(ema_decay=ema_decay))
        weights.append(None)

    if not layers_in or not isinstance(layers_in[0], FakeQuantActivation):
        quantizer()
    for i, layer in enumerate(layers_in):
        bits = None
        if isinstance(layer, DENSE):
            bits = dense_bits
        elif isinstance(layer, CONV) and conv_bits is not None:
            bits = conv_bits
        if bits is not None and isinstance(layer, _FakeQuant):
            new_layers.append(fresh(layer, weight_bits=bits))
        elif bits is not None:
            plain = next(p for p in FAKE_QUANT if isinstance(layer, p))
            new_layers.append(fresh(layer, FAKE_QUANT[plain], weight_bits=bits, quantize_output=True,
                                    ema_decay=ema_decay))
        else:
            new_layers.append(fresh(layer))
        weights.append(weights_of(layer))
        following = layers_in[i + 1] if i + 1 < len(layers_in) else None
        if isinstance(layer, RANGE_CHANGING) and not isinstance(following, FakeQuantActivation):
            quantizer()
    rebuilt = rebuild(model.inputs[0].shape[1:], new_layers, weights)
    sync_kernel_ranges(rebuilt)
    calibrate(rebuilt, x_calibration)
    return rebuilt


def calibrate(model, x: np.ndarray) -> None:
    """Set the range of every output quantizer that has none yet from the float outputs on ``x``."""
    h = tf.convert_to_tensor(np.asarray(x, np.float32))
    for layer in model.layers:
        if isinstance(layer, _OutputQuant) and not layer.calibrated():
            y = layer.float_output(h, training=False)
            layer.set_output_range(y.numpy())
            h = layer._fq_output(y, False)
        else:
            h = layer(h, training=False)


def is_plain_kernel_layer(layer) -> bool:
    return isinstance(layer, (*DENSE, *CONV)) and not isinstance(layer, _FakeQuant)

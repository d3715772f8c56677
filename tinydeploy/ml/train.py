"""Train small Keras classifiers (imports TensorFlow: only for `train`/`quantize`)."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinydeploy.ml import data as data_mod
from tinydeploy.core.errors import BadInput

ARCHS = ("mlp", "cloud", "conv1d", "dscnn")


@dataclass
class TrainResult:
    model_path: Path
    test_accuracy: float
    parameters: int


@contextlib.contextmanager
def silenced():
    """Send the C++ layers' stdout/stderr chatter (TensorFlow, the converter) to /dev/null."""
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


def quiet_tensorflow():
    """Import TensorFlow without its start-up log lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    with silenced():
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    return tf


def _width(units: int, width: float) -> int:
    return max(1, int(round(units * width)))


def build_model(arch: str, input_shape, num_classes: int, width: float = 1.0):
    """A Sequential classifier for one sample of ``input_shape`` (an int means (features,)).

    * "mlp": Dense 32-16 (inputs that are not flat are flattened first).
    * "cloud": Dense 256-128-64 with dropout 0.3 (the big model the demo shrinks).
    * "conv1d": for sensor windows [t, c] (flat features count as [features, 1]): the window is
      reshaped to a one-row image [1, t, c] and convolved with (1, k) Conv2D kernels: Conv 16
      (1x5), max-pool (1x2), Conv 32 (1x3), global average pool. A Keras Conv1D would do the
      same, but TFLite lowers each one to CONV_2D between a RESHAPE (EXPAND_DIMS with a dynamic
      batch) and a RESHAPE back; this way the graph is RESHAPE, CONV_2D, MAX_POOL_2D, CONV_2D,
      MEAN, FULLY_CONNECTED, SOFTMAX.
    * "dscnn": a small depthwise-separable CNN for images [h, w, c]: Conv 8 (3x3, stride 2), then
      two blocks of DepthwiseConv 3x3 + pointwise Conv 16 and 32 (the second block strided),
      global average pool.

    Every model ends in a Dense layer named "logits" without activation followed by a Softmax
    layer, so the logits stay reachable (distillation trains on them); TFLite emits the same
    FULLY_CONNECTED + SOFTMAX as for a softmax-activated Dense. ``width`` scales every hidden
    layer's units/filters (distillation's students)."""
    tf = quiet_tensorflow()
    layers = tf.keras.layers
    shape = (int(input_shape),) if isinstance(input_shape, (int, np.integer)) else tuple(int(d) for d in input_shape)
    w = lambda units: _width(units, width)
    flat = [layers.Flatten(name="flatten")] if len(shape) > 1 else []
    dense = lambda i, units: layers.Dense(w(units), activation="relu", name=f"hidden_{i}")
    conv = lambda name, filters, kernel, **kw: layers.Conv2D(w(filters), kernel, activation="relu", name=name, **kw)
    if arch == "cloud":
        hidden = [*flat, dense(1, 256), layers.Dropout(0.3, name="dropout_1"), dense(2, 128),
                  layers.Dropout(0.3, name="dropout_2"), dense(3, 64), layers.Dropout(0.3, name="dropout_3")]
    elif arch == "mlp":
        hidden = [*flat, dense(1, 32), dense(2, 16)]
    elif arch == "conv1d":
        if len(shape) > 2:
            raise BadInput(f"conv1d takes features [n, f] or sensor windows [n, t, c], not samples of shape {list(shape)}; "
                           "use dscnn for images")
        t, c = shape if len(shape) == 2 else (shape[0], 1)
        hidden = [layers.Reshape((1, t, c), name="as_image_row"),
                  conv("conv_1", 16, (1, 5), padding="same"),
                  *([layers.MaxPooling2D((1, 2), name="pool")] if t >= 2 else []),
                  conv("conv_2", 32, (1, 3), padding="same"),
                  layers.GlobalAveragePooling2D(name="average")]
    elif arch == "dscnn":
        if len(shape) != 3:
            raise BadInput(f"dscnn takes images [n, h, w, c], not samples of shape {list(shape)}; "
                           "use conv1d for windows, mlp for features")
        hidden = [conv("conv_1", 8, 3, strides=2, padding="same"),
                  layers.DepthwiseConv2D(3, padding="same", activation="relu", name="depthwise_1"),
                  conv("pointwise_1", 16, 1),
                  layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu", name="depthwise_2"),
                  conv("pointwise_2", 32, 1),
                  layers.GlobalAveragePooling2D(name="average")]
    else:
        raise BadInput(f"unknown architecture '{arch}'; choose one of: {', '.join(ARCHS)}")
    return tf.keras.Sequential([tf.keras.Input(shape), *hidden, layers.Dense(num_classes, name="logits"),
                                layers.Softmax(name="softmax")])


def train(dataset: str, arch: str, out: Path, label: str | None = None, epochs: int = 30, seed: int = 42) -> TrainResult:
    """Train ``arch`` on ``dataset`` and save it to ``out`` (.keras) with its dataset description."""
    if arch not in ARCHS:
        raise BadInput(f"unknown architecture '{arch}'; choose one of: {', '.join(ARCHS)}")
    if Path(out).suffix != ".keras":
        raise BadInput(f"{out}: the output must end in .keras")
    ds = data_mod.load(dataset, label)
    tf = quiet_tensorflow()
    tf.keras.utils.set_random_seed(seed)
    model = build_model(arch, ds.input_shape, len(ds.classes))
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ds.x_train, ds.y_train, epochs=epochs, batch_size=64, validation_split=0.1, verbose=0,
              callbacks=[tf.keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    _, accuracy = model.evaluate(ds.x_test, ds.y_test, verbose=0)
    out = save_model(model, out, ds)
    return TrainResult(out, float(accuracy), int(model.count_params()))


def save_model(model, out: Path, ds: data_mod.Dataset) -> Path:
    """Save ``model`` to ``out`` (.keras, atomically) with the dataset description beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, out)
    data_mod.save_spec(ds, out)
    return out

"""Train small Keras classifiers (imports TensorFlow: only for `train`/`quantize`)."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from tinydeploy.ml import data as data_mod
from tinydeploy.core.errors import TinyDeployError

ARCHS = ("mlp", "cloud")


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


def build_model(arch: str, num_features: int, num_classes: int):
    """The demo's architectures: "cloud" (Dense 256-128-64 with dropout 0.3) and "mlp" (Dense 32-16)."""
    tf = quiet_tensorflow()
    layers = tf.keras.layers
    if arch == "cloud":
        hidden = [layers.Dense(256, activation="relu"), layers.Dropout(0.3),
                  layers.Dense(128, activation="relu"), layers.Dropout(0.3),
                  layers.Dense(64, activation="relu"), layers.Dropout(0.3)]
    elif arch == "mlp":
        hidden = [layers.Dense(32, activation="relu"), layers.Dense(16, activation="relu")]
    else:
        raise TinyDeployError(f"unknown architecture '{arch}'; choose one of: {', '.join(ARCHS)}")
    return tf.keras.Sequential([tf.keras.Input((num_features,)), *hidden,
                                layers.Dense(num_classes, activation="softmax")])


def train(dataset: str, arch: str, out: Path, label: str | None = None, epochs: int = 30, seed: int = 42) -> TrainResult:
    """Train ``arch`` on ``dataset`` and save it to ``out`` (.keras) with its dataset description."""
    if arch not in ARCHS:
        raise TinyDeployError(f"unknown architecture '{arch}'; choose one of: {', '.join(ARCHS)}")
    if Path(out).suffix != ".keras":
        raise TinyDeployError(f"{out}: the output must end in .keras")
    ds = data_mod.load(dataset, label)
    tf = quiet_tensorflow()
    tf.keras.utils.set_random_seed(seed)
    model = build_model(arch, ds.num_features, len(ds.classes))
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ds.x_train, ds.y_train, epochs=epochs, batch_size=64, validation_split=0.1, verbose=0,
              callbacks=[tf.keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    _, accuracy = model.evaluate(ds.x_test, ds.y_test, verbose=0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, out)
    data_mod.save_spec(ds, out)
    return TrainResult(out, float(accuracy), int(model.count_params()))

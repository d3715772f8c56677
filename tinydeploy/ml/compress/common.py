"""What the compression techniques share: loading, fine-tuning, evaluating, saving, rebuilding.

Every technique works on Sequential models, which is what `tinydeploy train` makes: a model is
rebuilt layer by layer from the layers' configs, with some layers replaced, resized or split,
and the (sliced, factored, copied) weights assigned to the new layers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinydeploy.core.errors import BadInput
from tinydeploy.ml import data as data_mod
from tinydeploy.ml.compress.defaults import BATCH_SIZE
from tinydeploy.ml.train import quiet_tensorflow, save_model

tf = quiet_tensorflow()
import keras  # noqa: E402  (Keras 3, after TensorFlow's quiet import)


@dataclass
class CompressResult:
    """What every technique returns; subclasses add the technique's own figures."""
    model_path: Path
    float_accuracy: float           # test accuracy of the float Keras model
    parameters: int                 # trainable weights (kernels and biases), zeros included

    def figures(self) -> dict:
        """The technique-specific fields, as plain values (the `notes` of a variant)."""
        base = {f.name for f in dataclasses.fields(CompressResult)}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in base}


def load_keras(path: Path):
    """A .keras model saved by tinydeploy (fake-quant layers included), or BadInput."""
    from tinydeploy.ml.compress import layers as _registered  # noqa: F401  (registers the custom layers)
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file; train a baseline first (`tinydeploy train`)")
    if path.suffix != ".keras":
        raise BadInput(f"{path}: not a Keras model (.keras from `tinydeploy train`)")
    try:
        return keras.models.load_model(path)
    except Exception as exc:      # Keras raises many types for a bad file
        raise BadInput(f"{path}: cannot load it as a Keras model ({type(exc).__name__}); re-train it")


def check_out(out: Path) -> Path:
    out = Path(out)
    if out.suffix != ".keras":
        raise BadInput(f"{out}: the output must end in .keras")
    return out


def check_fits(model, dataset: data_mod.Dataset, path) -> None:
    """BadInput unless ``model`` takes ``dataset``'s samples and has one output per class."""
    shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    if shape is not None and tuple(shape) != dataset.input_shape:
        raise BadInput(f"{path}: the model takes samples of shape {list(shape)}, but {dataset.name} has "
                       f"{list(dataset.input_shape)}; give the dataset it was trained on")
    classes = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    if classes is not None and classes != len(dataset.classes):
        raise BadInput(f"{path}: the model has {classes} outputs, but {dataset.name} has {len(dataset.classes)} classes")


def sequential_layers(model, technique: str) -> list:
    if not isinstance(model, keras.Sequential):
        raise BadInput(f"{technique} works on Sequential models (as `tinydeploy train` makes), "
                       f"not {type(model).__name__}")
    return list(model.layers)


def count_parameters(model) -> int:
    """Trainable weights (kernels, biases); fake-quant range state is not counted."""
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def accuracy(model, dataset: data_mod.Dataset) -> float:
    probs = model.predict(dataset.x_test, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(probs, axis=1) == dataset.y_test))


def fine_tune(model, dataset: data_mod.Dataset, epochs: int, seed: int, learning_rate: float,
              loss="sparse_categorical_crossentropy", y=None, callbacks=(), batch_size: int = BATCH_SIZE):
    """Train ``model`` on the whole training split for exactly ``epochs`` epochs (no early stop)."""
    if epochs < 0:
        raise BadInput(f"epochs must be 0 or more, not {epochs}")
    keras.utils.set_random_seed(seed)
    if epochs:                      # (compiled only when trained: an unbuilt optimizer would be saved half-empty)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
        model.fit(dataset.x_train, dataset.y_train if y is None else y, epochs=epochs, batch_size=batch_size,
                  shuffle=True, verbose=0, callbacks=list(callbacks))
    from tinydeploy.ml.compress.layers import sync_kernel_ranges
    sync_kernel_ranges(model)
    return model


def finish(model, dataset: data_mod.Dataset, out: Path) -> tuple[Path, float, int]:
    """Save ``model`` (and the dataset spec) to ``out``; its float accuracy and parameter count."""
    path = save_model(model, out, dataset)
    return path, accuracy(model, dataset), count_parameters(model)


def fresh(layer, cls=None, drop=(), **overrides):
    """A new, unbuilt layer with ``layer``'s config (less the ``drop`` keys, plus ``overrides``),
    of class ``cls`` (default: the same class)."""
    config = layer.get_config()
    for key in drop:
        config.pop(key, None)
    config.update(overrides)
    return (cls or type(layer)).from_config(config)


def rebuild(input_shape, new_layers: list, weights: list):
    """A Sequential of ``new_layers`` on ``input_shape``; ``weights[i]`` is a {variable path: array}
    dict (or None) for ``new_layers[i]``, assigned by the variables' names after building."""
    model = keras.Sequential([keras.Input(tuple(input_shape)), *new_layers])
    for layer, values in zip(new_layers, weights):
        if not values:
            continue
        by_name = {v.name: v for v in layer.weights}
        for name, value in values.items():
            if name not in by_name:
                raise RuntimeError(f"layer {layer.name} has no variable {name} (has {sorted(by_name)})")
            by_name[name].assign(np.asarray(value, dtype=np.float32).reshape(by_name[name].shape))
    return model


def weights_of(layer) -> dict:
    """{variable name: value} of a layer, to hand to rebuild()."""
    return {v.name: np.asarray(v.numpy()) for v in layer.weights}


def kernel_layers(model) -> list:
    """The layers with a kernel (Dense, Conv1D/2D, DepthwiseConv2D and their fake-quant versions)."""
    return [layer for layer in model.layers if getattr(layer, "kernel", None) is not None]

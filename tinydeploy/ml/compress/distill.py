"""Knowledge distillation: a small student learns from the baseline (the teacher) and the labels.

Loss (Hinton et al., 2015), on logits z_s (student) and z_t (teacher):

    alpha * CE(y, softmax(z_s)) + (1 - alpha) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

The T^2 keeps the soft term's gradients on the same scale as the hard term's as T changes.
The teacher's logits are computed once for the training set: its final Dense layer's output
before the softmax (models from `tinydeploy train` end in a Dense "logits" layer and a Softmax
layer; a Dense with a softmax activation is read the same way, through its kernel and bias).

The same student (architecture, initial weights from the same seed, epochs, batches, optimizer)
is also trained without the teacher (alpha = 1: hard labels only), so the report shows what the
teacher adds: ``student_alone_accuracy`` next to ``float_accuracy``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinydeploy.core.errors import BadInput
from tinydeploy.ml import data as data_mod
from tinydeploy.ml.compress import common
from tinydeploy.ml.compress.defaults import DEFAULT_EPOCHS, resolve
from tinydeploy.ml.train import ARCHS, build_model

keras = common.keras
tf = common.tf


@dataclass
class DistillResult(common.CompressResult):
    teacher_accuracy: float = 0.0
    teacher_parameters: int = 0
    student_alone_accuracy: float = 0.0      # the same student trained on the labels only
    student_arch: str = ""
    width: float = 0.0
    temperature: float = 0.0
    alpha: float = 0.0


def logits_model(model):
    """A model from ``model``'s input to its pre-softmax logits."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return keras.Model(model.inputs, model.layers[-2].output)
    if isinstance(last, keras.layers.Dense) and getattr(last.activation, "__name__", "") == "softmax":
        features = keras.Model(model.inputs, last.input)
        kernel, bias = last.kernel, last.bias

        class _Logits:                     # same interface as a Keras model's predict
            def predict(self, x, batch_size=256, verbose=0):
                h = features.predict(x, batch_size=batch_size, verbose=verbose)
                out = h @ kernel.numpy()
                return out + bias.numpy() if bias is not None else out
        return _Logits()
    raise BadInput(f"cannot find the logits of {model.name}: it should end in a Softmax layer or a Dense layer "
                   "with softmax activation (as `tinydeploy train` makes)")


def distillation_loss(num_classes: int, temperature: float, alpha: float):
    """The loss on student logits; ``y_true`` is [one-hot labels | teacher logits]."""
    t = float(temperature)

    def loss(y_true, student_logits):
        labels, teacher_logits = y_true[:, :num_classes], y_true[:, num_classes:]
        hard = keras.losses.categorical_crossentropy(labels, student_logits, from_logits=True)
        if alpha >= 1.0:
            return hard
        p_teacher = tf.nn.softmax(teacher_logits / t)
        log_p_teacher = tf.nn.log_softmax(teacher_logits / t)
        log_p_student = tf.nn.log_softmax(student_logits / t)
        kl = tf.reduce_sum(p_teacher * (log_p_teacher - log_p_student), axis=-1)
        return alpha * hard + (1.0 - alpha) * t * t * kl
    return loss


def student_arch(arch: str, input_shape: tuple) -> str:
    if arch == "auto":
        return {1: "mlp", 2: "conv1d", 3: "dscnn"}.get(len(input_shape), "mlp")
    if arch not in ARCHS:
        raise BadInput(f"unknown student architecture '{arch}'; choose auto or one of: {', '.join(ARCHS)}")
    return arch


def _train_student(arch, width, dataset, y_packed, loss, epochs, seed, learning_rate):
    keras.utils.set_random_seed(seed)                 # same initial weights for both students
    student = build_model(arch, dataset.input_shape, len(dataset.classes), width=width)
    trainable = keras.Model(student.inputs, student.get_layer("logits").output)
    common.fine_tune(trainable, dataset, epochs, seed, learning_rate, loss=loss, y=y_packed)
    return student


def distill(teacher: Path, dataset: data_mod.Dataset, out: Path, epochs: int = DEFAULT_EPOCHS, seed: int = 42,
            **params) -> DistillResult:
    """Train a student (``arch`` at ``width``) on ``teacher``'s softened logits and the labels for
    ``epochs`` epochs; also train it alone; save the distilled student to ``out``.
    Parameters: `defaults.DEFAULTS["distill"]`."""
    p = resolve("distill", params)
    out = common.check_out(out)
    temperature, alpha, width = float(p["temperature"]), float(p["alpha"]), float(p["width"])
    if temperature <= 0:
        raise BadInput(f"temperature must be positive, not {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise BadInput(f"alpha must be in [0, 1], not {alpha}")
    if width <= 0:
        raise BadInput(f"width must be positive, not {width}")
    arch = student_arch(str(p["arch"]), dataset.input_shape)
    if epochs < 1:
        raise BadInput("distillation trains a new student: give at least 1 epoch")
    teacher_model = common.load_keras(teacher)
    common.check_fits(teacher_model, dataset, teacher)
    k = len(dataset.classes)
    teacher_logits = np.asarray(logits_model(teacher_model).predict(dataset.x_train, batch_size=256, verbose=0),
                                np.float32)
    one_hot = np.eye(k, dtype=np.float32)[dataset.y_train]
    y_packed = np.concatenate([one_hot, teacher_logits], axis=1)
    lr = float(p["learning_rate"])
    student = _train_student(arch, width, dataset, y_packed, distillation_loss(k, temperature, alpha), epochs, seed, lr)
    alone = _train_student(arch, width, dataset, y_packed, distillation_loss(k, temperature, 1.0), epochs, seed, lr)
    path, acc, n = common.finish(student, dataset, out)
    return DistillResult(path, acc, n, teacher_accuracy=common.accuracy(teacher_model, dataset),
                         teacher_parameters=common.count_parameters(teacher_model),
                         student_alone_accuracy=common.accuracy(alone, dataset), student_arch=arch, width=width,
                         temperature=temperature, alpha=alpha)

"""Magnitude pruning: zero the smallest weights of every kernel, gradually, while fine-tuning.

Why not tensorflow-model-optimization (TF-MOT): it is built on Keras 2 (the ``tf-keras``
package). Its ``prune_low_magnitude`` wraps Keras 2 layers and rejects Keras 3 models, which
TensorFlow 2.16+ and tinydeploy use, and importing it next to Keras 3 fails; the request for
Keras 3 support (tensorflow/model-optimization#1119) has no plan behind it. Using it would mean
training every model with tf-keras instead. Pruning needs nothing from it: here it is a plain
Keras 3 callback that keeps a 0/1 mask per kernel and multiplies it in after every training
step, so the model stays an ordinary Sequential of ordinary layers (nothing to strip before
saving or converting).

The schedule is TF-MOT's polynomial decay (Zhu & Gupta, 2017): at step t the target sparsity is
``s_f + (s_i - s_f) * (1 - (t - t_0) / (t_1 - t_0)) ** power``, rising from ``initial_sparsity``
at t_0 (the first step) to ``sparsity`` at t_1 (``end_fraction`` of the fine-tuning steps); the
masks are recomputed ``updates`` times along the ramp, then training goes on at the final
sparsity. Every kernel (Dense, Conv, DepthwiseConv; not biases) is pruned to the same sparsity,
its smallest-magnitude weights first: already-zero weights stay zero, so masks only grow.

The pruned weights are exact zeros in the saved model, and stay exact zeros in the int8
.tflite (weights are quantized symmetrically, zero point 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinydeploy.core.errors import BadInput
from tinydeploy.ml import data as data_mod
from tinydeploy.ml.compress import common
from tinydeploy.ml.compress.defaults import BATCH_SIZE, DEFAULT_EPOCHS, resolve

keras = common.keras


@dataclass
class MagnitudePruneResult(common.CompressResult):
    sparsity: float = 0.0                 # achieved: zero kernel weights / all kernel weights
    target_sparsity: float = 0.0
    nonzero_parameters: int = 0           # parameters that are not exactly zero (biases included)
    layer_sparsity: dict = field(default_factory=dict)


@dataclass
class PolynomialSchedule:
    """Target sparsity over training steps; updates at ``begin_step`` + k * ``frequency`` up to ``end_step``."""
    target: float
    begin_step: int
    end_step: int
    initial: float = 0.0
    power: float = 3.0
    frequency: int = 1

    def __call__(self, step: int) -> float:
        if step <= self.begin_step:
            return self.initial
        if step >= self.end_step:
            return self.target
        progress = (step - self.begin_step) / (self.end_step - self.begin_step)
        return self.target + (self.initial - self.target) * (1.0 - progress) ** self.power

    def update_due(self, step: int) -> bool:
        if step < self.begin_step or step > self.end_step:
            return False
        return (step - self.begin_step) % self.frequency == 0 or step == self.end_step


def magnitude_mask(weights: np.ndarray, sparsity: float) -> np.ndarray:
    """A 0/1 mask zeroing exactly round(sparsity * n) of the smallest-magnitude weights."""
    flat = np.abs(weights).reshape(-1)
    k = int(round(sparsity * flat.size))
    mask = np.ones(flat.size, np.float32)
    if k > 0:
        mask[np.argsort(flat, kind="stable")[:k]] = 0.0
    return mask.reshape(weights.shape)


class MagnitudePruning(keras.callbacks.Callback):
    """Keeps every kernel of ``layers`` masked; recomputes the masks when the schedule says so."""

    def __init__(self, schedule: PolynomialSchedule, layers: list):
        super().__init__()
        self.schedule = schedule
        self.layers = layers
        self.step = 0
        self.masks = [np.ones(layer.kernel.shape, np.float32) for layer in layers]

    def update_masks(self, sparsity: float) -> None:
        self.masks = [magnitude_mask(layer.kernel.numpy(), sparsity) for layer in self.layers]
        self.apply_masks()

    def apply_masks(self) -> None:
        for layer, mask in zip(self.layers, self.masks):
            layer.kernel.assign(layer.kernel.numpy() * mask)

    def on_train_batch_begin(self, batch, logs=None):
        if self.schedule.update_due(self.step):
            self.update_masks(self.schedule(self.step))

    def on_train_batch_end(self, batch, logs=None):
        self.apply_masks()                 # undo what the optimizer did to pruned weights
        self.step += 1

    def on_train_end(self, logs=None):
        if self.step <= self.schedule.end_step:       # stopped before the ramp's end: cut to the target now
            self.update_masks(self.schedule.target)
        self.apply_masks()


def kernel_sparsity(model) -> tuple[float, dict]:
    """Zero fraction of all kernels together, and per layer."""
    per_layer, zeros, total = {}, 0, 0
    for layer in common.kernel_layers(model):
        k = layer.kernel.numpy()
        per_layer[layer.name] = float(np.mean(k == 0))
        zeros += int(np.sum(k == 0))
        total += k.size
    return (zeros / total if total else 0.0), per_layer


def prune_magnitude(baseline: Path, dataset: data_mod.Dataset, out: Path, epochs: int = DEFAULT_EPOCHS,
                    seed: int = 42, **params) -> MagnitudePruneResult:
    """Prune ``baseline`` to ``sparsity`` with the polynomial schedule while fine-tuning ``epochs``
    epochs; save to ``out`` (.keras). Parameters: `defaults.DEFAULTS["magnitude_prune"]`."""
    p = resolve("magnitude_prune", params)
    out = common.check_out(out)
    target = float(p["sparsity"])
    if not 0.0 <= float(p["initial_sparsity"]) <= target < 1.0:
        raise BadInput(f"sparsity must satisfy 0 <= initial_sparsity <= sparsity < 1 "
                       f"(got {p['initial_sparsity']} and {target})")
    if epochs < 1:
        raise BadInput("magnitude pruning fine-tunes while it prunes: give at least 1 epoch")
    model = common.load_keras(baseline)
    common.check_fits(model, dataset, baseline)
    common.sequential_layers(model, "magnitude pruning")
    steps = epochs * int(np.ceil(len(dataset.x_train) / BATCH_SIZE))
    end_step = max(1, int(round(float(p["end_fraction"]) * steps)))
    schedule = PolynomialSchedule(target, 0, end_step, float(p["initial_sparsity"]), float(p["power"]),
                                  max(1, end_step // max(1, int(p["updates"]))))
    pruning = MagnitudePruning(schedule, common.kernel_layers(model))
    common.fine_tune(model, dataset, epochs, seed, float(p["learning_rate"]), callbacks=[pruning])
    sparsity, per_layer = kernel_sparsity(model)
    nonzero = int(sum(int(np.count_nonzero(w.numpy())) for w in model.trainable_weights))
    path, acc, n = common.finish(model, dataset, out)
    return MagnitudePruneResult(path, acc, n, sparsity=sparsity, target_sparsity=target, nonzero_parameters=nonzero,
                                layer_sparsity=per_layer)

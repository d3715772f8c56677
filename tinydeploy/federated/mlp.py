"""The clients' learner: a small MLP in NumPy (forward, backward, Adam), no TensorFlow.

Its layers and weight names match ``tinydeploy.ml.train.build_model("mlp")`` (Dense 32-16 with
ReLU, then the "logits" Dense and a softmax), so the federated weights drop into that Keras
model for int8 conversion. Clients run in Flower's Ray actors, where importing TensorFlow in
every actor would cost seconds and memory per device.
"""
from __future__ import annotations

import numpy as np

HIDDEN = (32, 16)                 # tinydeploy.ml.train's "mlp"
LEARNING_RATE = 1e-3              # Adam, Keras' defaults
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-7
BATCH = 32


def layer_names(hidden: tuple[int, ...] = HIDDEN) -> list[str]:
    """Keras layer names, input to output."""
    return [f"hidden_{i + 1}" for i in range(len(hidden))] + ["logits"]


def init_weights(features: int, classes: int, hidden: tuple[int, ...] = HIDDEN, seed: int = 0) -> dict[str, np.ndarray]:
    """Glorot-uniform kernels and zero biases (Keras' Dense defaults), keyed "<layer>/kernel" and "<layer>/bias"."""
    rng = np.random.default_rng(seed)
    sizes = [features, *hidden, classes]
    weights = {}
    for name, fan_in, fan_out in zip(layer_names(hidden), sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights[f"{name}/kernel"] = rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)
        weights[f"{name}/bias"] = np.zeros(fan_out, np.float32)
    return weights


def _layers(weights: dict[str, np.ndarray]) -> list[str]:
    return [key[:-len("/kernel")] for key in weights if key.endswith("/kernel")]


def forward(weights: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Class probabilities, and every layer's input (for the backward pass)."""
    inputs = []
    h = x.reshape(len(x), -1).astype(np.float32)
    names = _layers(weights)
    for i, name in enumerate(names):
        inputs.append(h)
        h = h @ weights[f"{name}/kernel"] + weights[f"{name}/bias"]
        if i < len(names) - 1:
            h = np.maximum(h, 0.0)
    h = h - h.max(axis=1, keepdims=True)
    p = np.exp(h)
    return p / p.sum(axis=1, keepdims=True), inputs


def evaluate(weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on ``x``, ``y``."""
    p, _ = forward(weights, x)
    loss = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))))
    return loss, float(np.mean(np.argmax(p, axis=1) == y))


def gradients(weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of the mean cross-entropy with respect to every weight."""
    p, inputs = forward(weights, x)
    delta = p
    delta[np.arange(len(y)), y] -= 1.0
    delta /= len(y)
    grads = {}
    names = _layers(weights)
    for i in range(len(names) - 1, -1, -1):
        name = names[i]
        grads[f"{name}/kernel"] = inputs[i].T @ delta
        grads[f"{name}/bias"] = delta.sum(axis=0)
        if i:
            delta = (delta @ weights[f"{name}/kernel"].T) * (inputs[i] > 0)
    return grads


class _Flat:
    """Every weight as a view into one float32 vector, so Adam updates them all in a few operations."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.keys = list(weights)
        self.vector = np.concatenate([weights[k].ravel() for k in self.keys]).astype(np.float32)
        self.views, offset = {}, 0
        for k in self.keys:
            n = weights[k].size
            self.views[k] = self.vector[offset:offset + n].reshape(weights[k].shape)
            offset += n

    def flatten(self, grads: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([grads[k].ravel() for k in self.keys]).astype(np.float32)


def fit(weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, epochs: int, seed: int,
        lr: float = LEARNING_RATE, batch: int = BATCH) -> dict[str, np.ndarray]:
    """``weights`` trained with Adam for ``epochs`` on shuffled mini-batches (new arrays; the input is untouched)."""
    flat = _Flat(weights)
    m = np.zeros_like(flat.vector)
    v = np.zeros_like(flat.vector)
    rng = np.random.default_rng(seed)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            g = flat.flatten(gradients(flat.views, x[idx], y[idx]))
            step += 1
            m *= BETA1
            m += (1 - BETA1) * g
            v *= BETA2
            v += (1 - BETA2) * g * g
            rate = lr * np.sqrt(1 - BETA2 ** step) / (1 - BETA1 ** step)
            flat.vector -= rate * m / (np.sqrt(v) + EPSILON)
    return {k: flat.views[k].copy() for k in flat.keys}


def macs(weights: dict[str, np.ndarray]) -> int:
    """Multiply-accumulates of one forward pass."""
    return int(sum(w.size for k, w in weights.items() if k.endswith("/kernel")))

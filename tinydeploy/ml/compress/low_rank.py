"""Low-rank factorization of Dense layers by truncated SVD, then fine-tuning.

A Dense kernel W (m x n) is W = U S V^T; keeping the r largest singular values,
W ~ (U_r sqrt(S_r)) (sqrt(S_r) V_r^T): a Dense of r units without bias or activation followed
by a Dense of n units with the original bias and activation. That costs r (m + n) weights
instead of m n, so a layer is factored only when r < m n / (m + n); other layers are kept.

The rank is ``rank`` for every layer (capped at min(m, n)), or, with ``rank=None``, the smallest
r whose singular values keep ``energy`` of the kernel's squared Frobenius norm
(sum of s_i^2 for i < r over the sum of all). The second factor keeps the original layer's
name (so "logits" stays reachable). In the .tflite each factor is a FULLY_CONNECTED (the first
without bias).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinydeploy.core.errors import BadInput
from tinydeploy.ml import data as data_mod
from tinydeploy.ml.compress import common
from tinydeploy.ml.compress.defaults import DEFAULT_EPOCHS, resolve

keras = common.keras


@dataclass
class LowRankResult(common.CompressResult):
    baseline_parameters: int = 0
    parameter_reduction: float = 0.0        # 1 - parameters / baseline_parameters
    ranks: dict = field(default_factory=dict)         # factored layer -> rank
    kept: list = field(default_factory=list)          # Dense layers not worth factoring


def choose_rank(singular_values: np.ndarray, rank: int | None, energy: float) -> int:
    if rank is not None:
        return max(1, min(int(rank), len(singular_values)))
    share = np.cumsum(singular_values ** 2) / max(float(np.sum(singular_values ** 2)), 1e-30)
    return int(min(np.searchsorted(share, energy - 1e-9) + 1, len(singular_values)))


def factorize_layers(model, rank: int | None, energy: float):
    """A new Sequential with the Dense layers that shrink factored; {name: rank}; [kept names]."""
    layers = common.sequential_layers(model, "low-rank factorization")
    new_layers, weights, ranks, kept = [], [], {}, []
    for layer in layers:
        w = common.weights_of(layer)
        if type(layer) is not keras.layers.Dense:
            new_layers.append(common.fresh(layer))
            weights.append(w)
            continue
        kernel = w["kernel"]
        m, n = kernel.shape
        u, s, vt = np.linalg.svd(kernel, full_matrices=False)
        r = choose_rank(s, rank, energy)
        if r * (m + n) >= m * n:
            kept.append(layer.name)
            new_layers.append(common.fresh(layer))
            weights.append(w)
            continue
        root = np.sqrt(s[:r])
        first = keras.layers.Dense(r, use_bias=False, name=f"{layer.name}_lowrank")
        second = common.fresh(layer)
        new_layers += [first, second]
        weights += [{"kernel": u[:, :r] * root}, {**w, "kernel": root[:, None] * vt[:r]}]
        ranks[layer.name] = r
    return common.rebuild(model.inputs[0].shape[1:], new_layers, weights), ranks, kept


def factorize(baseline: Path, dataset: data_mod.Dataset, out: Path, epochs: int = DEFAULT_EPOCHS, seed: int = 42,
              **params) -> LowRankResult:
    """Factor ``baseline``'s Dense layers by truncated SVD (``rank`` or ``energy``), fine-tune
    ``epochs`` epochs, save to ``out``. Parameters: `defaults.DEFAULTS["low_rank"]`."""
    p = resolve("low_rank", params)
    out = common.check_out(out)
    rank, energy = p["rank"], float(p["energy"])
    if rank is not None and int(rank) < 1:
        raise BadInput(f"rank must be 1 or more (or None to choose by energy), not {rank}")
    if rank is None and not 0.0 < energy <= 1.0:
        raise BadInput(f"energy must be in (0, 1], not {energy}")
    model = common.load_keras(baseline)
    common.check_fits(model, dataset, baseline)
    factored, ranks, kept = factorize_layers(model, None if rank is None else int(rank), energy)
    common.fine_tune(factored, dataset, epochs, seed, float(p["learning_rate"]))
    path, acc, n = common.finish(factored, dataset, out)
    before = common.count_parameters(model)
    return LowRankResult(path, acc, n, baseline_parameters=before, parameter_reduction=1.0 - n / before,
                         ranks=ranks, kept=kept)

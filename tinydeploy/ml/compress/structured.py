"""Structured pruning: remove whole Dense units and Conv filters, building a smaller model.

Importance of a unit / filter: the L1 norm of its incoming weights, i.e. of its kernel slice
``kernel[..., j]`` (after the inputs already removed upstream are dropped), as in Li et al.,
"Pruning Filters for Efficient ConvNets" (2017). The ``ratio`` of least important units is
removed from every Dense, Conv1D and Conv2D layer except the last one (the classes), and with
them their biases and the matching input rows of whatever consumes them:

* the next Dense / Conv layer: its kernel's input axis is sliced;
* a DepthwiseConv2D: its channels are tied to its input's, so it loses the same channels (and
  with a depth multiplier m, each removed input channel takes its m outputs along);
* BatchNormalization: its per-channel statistics are sliced;
* Flatten: every spatial position's copy of a removed channel is removed from the next kernel;
* pooling, Dropout, activations, Softmax pass the channel selection through unchanged.

The model is rebuilt with fewer units / filters (a genuinely smaller model: smaller kernels in
Keras and in the .tflite, fewer MACs), then fine-tuned.
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
L = keras.layers
PRODUCERS = (L.Dense, L.Conv1D, L.Conv2D)             # layers whose outputs (units / filters) are pruned
PASS_THROUGH = (L.Dropout, L.Activation, L.ReLU, L.Softmax, L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D,
                L.AveragePooling2D, L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalMaxPooling1D,
                L.GlobalMaxPooling2D, L.Identity)


@dataclass
class StructuredPruneResult(common.CompressResult):
    ratio: float = 0.0
    baseline_parameters: int = 0
    units_before: dict = field(default_factory=dict)       # layer name -> units / filters
    units_after: dict = field(default_factory=dict)


def importance(kernel: np.ndarray) -> np.ndarray:
    """L1 norm of each output unit's incoming weights (the kernel's last axis is the output)."""
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)


def keep_count(units: int, ratio: float) -> int:
    return max(1, int(round(units * (1.0 - ratio))))


def prune_structure(model, ratio: float):
    """A new, smaller Sequential with ``ratio`` of the units/filters removed (weights sliced, not
    fine-tuned), and {layer: (units before, after)}."""
    layers = common.sequential_layers(model, "structured pruning")
    producer_ids = [i for i, layer in enumerate(layers) if isinstance(layer, PRODUCERS)]
    if len(producer_ids) < 2:
        raise BadInput("structured pruning needs at least one hidden Dense or Conv layer before the output layer")
    last = producer_ids[-1]
    keep = None                     # indices kept along the current tensor's last axis (None: all)
    new_layers, weights, sizes = [], [], {}
    for i, layer in enumerate(layers):
        w = common.weights_of(layer)
        if isinstance(layer, PRODUCERS):
            kernel = w["kernel"] if keep is None else np.take(w["kernel"], keep, axis=-2)
            units = kernel.shape[-1]
            if i == last:
                out_keep = np.arange(units)
            else:
                out_keep = np.sort(np.argsort(importance(kernel), kind="stable")[-keep_count(units, ratio):])
            w["kernel"] = kernel[..., out_keep]
            if "bias" in w:
                w["bias"] = w["bias"][out_keep]
            size_key = "units" if isinstance(layer, L.Dense) else "filters"
            new_layers.append(common.fresh(layer, **{size_key: int(len(out_keep))}))
            sizes[layer.name] = (int(units), int(len(out_keep)))
            keep = None if i == last else out_keep
        elif isinstance(layer, L.DepthwiseConv2D):
            if keep is not None:
                m = layer.depth_multiplier
                w["kernel"] = w["kernel"][:, :, keep, :]
                keep = np.array([c * m + j for c in keep for j in range(m)])
                if "bias" in w:
                    w["bias"] = w["bias"][keep]
            new_layers.append(common.fresh(layer))
        elif isinstance(layer, L.BatchNormalization):
            if keep is not None:
                w = {name: value[keep] for name, value in w.items()}
            new_layers.append(common.fresh(layer))
        elif isinstance(layer, L.Flatten):
            if keep is not None:
                shape = layer.input.shape[1:]
                channels, positions = int(shape[-1]), int(np.prod(shape[:-1]))
                keep = np.array([p * channels + c for p in range(positions) for c in keep])
            new_layers.append(common.fresh(layer))
        elif isinstance(layer, PASS_THROUGH) or keep is None:
            new_layers.append(common.fresh(layer))
        else:
            raise BadInput(f"structured pruning cannot carry removed channels through layer {layer.name} "
                           f"({type(layer).__name__}); supported: Dense, Conv1D/2D, DepthwiseConv2D, "
                           "BatchNormalization, Flatten, pooling, Dropout, activations")
        weights.append(w)
    return common.rebuild(model.inputs[0].shape[1:], new_layers, weights), sizes


def prune_structured(baseline: Path, dataset: data_mod.Dataset, out: Path, epochs: int = DEFAULT_EPOCHS,
                     seed: int = 42, **params) -> StructuredPruneResult:
    """Remove ``ratio`` of every hidden layer's units / filters from ``baseline`` (L1 importance),
    fine-tune ``epochs`` epochs, save to ``out``. Parameters: `defaults.DEFAULTS["structured_prune"]`."""
    p = resolve("structured_prune", params)
    out = common.check_out(out)
    ratio = float(p["ratio"])
    if not 0.0 <= ratio < 1.0:
        raise BadInput(f"ratio must be in [0, 1), not {ratio}")
    model = common.load_keras(baseline)
    common.check_fits(model, dataset, baseline)
    pruned, sizes = prune_structure(model, ratio)
    common.fine_tune(pruned, dataset, epochs, seed, float(p["learning_rate"]))
    path, acc, n = common.finish(pruned, dataset, out)
    return StructuredPruneResult(path, acc, n, ratio=ratio, baseline_parameters=common.count_parameters(model),
                                 units_before={k: v[0] for k, v in sizes.items()},
                                 units_after={k: v[1] for k, v in sizes.items()})

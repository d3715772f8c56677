"""One entry point for every technique: what the `compare` command calls.

``make_variant(technique, params, dataset_name, label, baseline, out, epochs, seed)`` makes the
variant of ``baseline`` (a .keras from `tinydeploy train`) at ``out`` (.keras, with its dataset
description beside it) and returns a `VariantResult`. ``weights`` says how to quantize it
(`tinydeploy.ml.quantize.quantize(model_path, tflite, weights=...)`): "int4" for the int4
technique, "int8" for the others. ``notes`` holds the technique's own figures (sparsity, ranks,
teacher_accuracy, student_alone_accuracy, ptq/qat int8 accuracies, ...). Parameters and their
defaults: `tinydeploy.ml.compress.defaults.DEFAULTS`.
"""
from __future__ import annotations

import importlib

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tinydeploy.core.errors import BadInput
from tinydeploy.ml import data as data_mod
from tinydeploy.ml.compress.defaults import TECHNIQUES, resolve


@dataclass
class VariantResult:
    model_path: Path
    technique: str
    params: dict                    # the parameters used, defaults filled in
    float_accuracy: float
    parameters: int
    weights: str = "int8"           # "int8" or "int4": how `quantize` should convert it
    notes: dict = field(default_factory=dict)


def _baseline(baseline: Path, dataset: data_mod.Dataset, out: Path):
    from tinydeploy.ml.compress import common
    model = common.load_keras(baseline)
    common.check_fits(model, dataset, baseline)
    out = common.check_out(out)
    if Path(out).resolve() != Path(baseline).resolve():
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(baseline, out)
    data_mod.save_spec(dataset, out)
    return common.CompressResult(out, common.accuracy(model, dataset), common.count_parameters(model))


# technique -> (module of tinydeploy.ml.compress, function): imported when used (they import TensorFlow)
_FUNCTIONS = {"magnitude_prune": ("magnitude", "prune_magnitude"), "structured_prune": ("structured", "prune_structured"),
              "distill": ("distill", "distill"), "qat": ("qat", "quantization_aware"),
              "low_rank": ("low_rank", "factorize"), "int4": ("int4", "int4_weights")}


def _technique(name: str):
    if name == "baseline":
        return _baseline
    if name not in _FUNCTIONS:
        raise BadInput(f"unknown technique '{name}'; choose one of: {', '.join(TECHNIQUES)}")
    module, function = _FUNCTIONS[name]
    return getattr(importlib.import_module(f"tinydeploy.ml.compress.{module}"), function)


def make_variant(technique: str, params: dict, dataset_name: str, label: str | None, baseline: Path, out: Path,
                 epochs: int, seed: int = 42) -> VariantResult:
    """Make ``technique``'s variant of ``baseline`` at ``out``, fine-tuning/training ``epochs`` epochs."""
    if technique not in TECHNIQUES:
        raise BadInput(f"unknown technique '{technique}'; choose one of: {', '.join(TECHNIQUES)}")
    used = resolve(technique, params)
    dataset = data_mod.load(dataset_name, label)
    if technique == "baseline":
        result = _baseline(Path(baseline), dataset, Path(out))
    else:
        result = _technique(technique)(Path(baseline), dataset, Path(out), epochs=epochs, seed=seed, **used)
    return VariantResult(result.model_path, technique, used, result.float_accuracy, result.parameters,
                         "int4" if technique == "int4" else "int8", result.figures())


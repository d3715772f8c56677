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


def _technique(name: str):
    if name == "baseline":
        return _baseline
    if name == "magnitude_prune":
        from tinydeploy.ml.compress.magnitude import prune_magnitude
        return prune_magnitude
    if name == "structured_prune":
        from tinydeploy.ml.compress.structured import prune_structured
        return prune_structured
    if name == "distill":
        from tinydeploy.ml.compress.distill import distill
        return distill
    if name == "qat":
        from tinydeploy.ml.compress.qat import quantization_aware
        return quantization_aware
    if name == "low_rank":
        from tinydeploy.ml.compress.low_rank import factorize
        return factorize
    if name == "int4":
        from tinydeploy.ml.compress.int4 import int4_weights
        return int4_weights
    raise BadInput(f"unknown technique '{name}'; choose one of: {', '.join(TECHNIQUES)}")


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


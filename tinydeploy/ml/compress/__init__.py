"""Make it fit: compression techniques, each a .keras -> .keras step with a small result.

* magnitude_prune:  `magnitude.prune_magnitude` -> `MagnitudePruneResult` (sparsity, ...)
* structured_prune: `structured.prune_structured` -> `StructuredPruneResult` (units before/after)
* distill:          `distill.distill` -> `DistillResult` (teacher and student-alone accuracies)
* qat:              `qat.quantization_aware` -> `QATResult` (QAT vs PTQ int8 accuracies)
* low_rank:         `low_rank.factorize` -> `LowRankResult` (ranks, parameter reduction)
* int4:             `int4.int4_weights` -> `Int4Result` (int4 .tflite accuracy and size)

Every function takes ``(baseline: Path, dataset: data.Dataset, out: Path, epochs=5, seed=42,
**params)`` (for distill the baseline is the teacher) with the parameters and defaults of
`defaults.DEFAULTS`, saves the new model to ``out`` (.keras, dataset description beside it) and
returns a `common.CompressResult` subclass: ``model_path``, ``float_accuracy``, ``parameters``
and the technique's figures (``figures()``). `variants.make_variant` runs any of them by name
(the `compare` command). The modules import TensorFlow; this __init__ and `defaults` do not.
"""

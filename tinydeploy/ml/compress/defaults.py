"""Every technique's parameters and their defaults, in one place (imports nothing heavy).

``DEFAULTS[technique]`` is the full set of parameters a technique takes (besides the baseline,
dataset, output path, epochs and seed); `make_variant` and the technique functions fill in from
here whatever the caller leaves out.

magnitude_prune
    sparsity          fraction of every kernel's weights set to exactly zero at the end (0.75)
    initial_sparsity  sparsity at the start of the schedule (0.0)
    power             exponent of the polynomial schedule (3: fast at first, slow near the target)
    end_fraction      fraction of the fine-tuning steps by which the target is reached; the rest
                      fine-tunes at the final sparsity (0.7)
    updates           how many times the masks are recomputed along the ramp (10)
    learning_rate     Adam, fine-tuning (5e-4)
structured_prune
    ratio             fraction of every hidden Dense layer's units and every Conv/DepthwiseConv
                      producer's filters removed (0.5; the output layer keeps its classes)
    learning_rate     (1e-3)
distill
    arch              the student's architecture: "auto" (mlp for features, conv1d for windows,
                      dscnn for images) or one of train.ARCHS
    width             the student's width relative to that architecture (0.5)
    temperature       T, softening both softmaxes (4.0)
    alpha             weight of the hard-label cross-entropy; 1 - alpha weighs T^2 * KL (0.1)
    learning_rate     (1e-3)
qat
    learning_rate     (1e-4: fine-tuning an already trained model)
    ema_decay         decay of the activation ranges' moving averages (0.99)
low_rank
    rank              the rank of every factored Dense layer, or None to choose it by energy
    energy            smallest fraction of the kernel's squared singular values kept (0.8)
    learning_rate     (5e-4)
int4
    learning_rate     (1e-4)
    ema_decay         (0.99)
"""
from __future__ import annotations

from tinydeploy.core.errors import BadInput

BATCH_SIZE = 64
DEFAULT_EPOCHS = 5

DEFAULTS: dict[str, dict] = {
    "baseline": {},
    "magnitude_prune": {"sparsity": 0.75, "initial_sparsity": 0.0, "power": 3, "end_fraction": 0.7, "updates": 10,
                        "learning_rate": 5e-4},
    "structured_prune": {"ratio": 0.5, "learning_rate": 1e-3},
    "distill": {"arch": "auto", "width": 0.5, "temperature": 4.0, "alpha": 0.1, "learning_rate": 1e-3},
    "qat": {"learning_rate": 1e-4, "ema_decay": 0.99},
    "low_rank": {"rank": None, "energy": 0.8, "learning_rate": 5e-4},
    "int4": {"learning_rate": 1e-4, "ema_decay": 0.99},
}

TECHNIQUES = tuple(DEFAULTS)        # ("baseline", "magnitude_prune", ..., "int4")


def resolve(technique: str, params: dict | None) -> dict:
    """``params`` over the technique's defaults; BadInput for a parameter it does not take."""
    if technique not in DEFAULTS:
        raise BadInput(f"unknown technique '{technique}'; choose one of: {', '.join(DEFAULTS)}")
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS[technique]))
    if unknown:
        takes = ", ".join(DEFAULTS[technique]) or "no parameters"
        raise BadInput(f"{technique} has no parameter {', '.join(unknown)} (it takes: {takes})")
    return {**DEFAULTS[technique], **params}

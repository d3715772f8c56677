"""Which runtime executes the model on the device: tinydeploy's ahead-of-time compiled C
(``aot``, compiler/) or TensorFlow Lite Micro's interpreter (``tflm``, runtimes/tflm.py).

Both give a model object that renders the same C API (``<name>.h``), so the firmware's
runner, the line protocol and the verifier never ask which one it is. ``auto`` takes AOT
when tinydeploy compiles every operator and TFLM otherwise, and says why.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from tinydeploy.core.errors import BadInput, TinyDeployError

RUNTIMES = ("aot", "tflm", "auto")


def load_model(path: str | Path, runtime: str = "aot", tflm_dir: str | Path | None = None,
               say: Callable[[str], None] | None = None):
    """The model compiled for ``runtime``: a CompiledModel (aot) or a TflmModel (tflm)."""
    from tinydeploy.compiler.codegen import compile_model
    from tinydeploy.runtimes import tflm
    if runtime not in RUNTIMES:
        raise BadInput(f"--runtime {runtime}: unknown runtime; choose one of {', '.join(RUNTIMES)}")
    if runtime == "aot":
        return compile_model(path)
    if runtime == "tflm":
        return tflm.load(path, tflm_dir)
    try:
        return compile_model(path)
    except TinyDeployError as aot_refusal:
        try:
            model = tflm.load(path, tflm_dir)
        except TinyDeployError as tflm_refusal:
            raise type(aot_refusal)(f"{aot_refusal} (and TensorFlow Lite Micro cannot take it either: "
                                    f"{tflm_refusal})", aot_refusal.exit_code) from None
        if say:
            say(f"runtime: tflm (tinydeploy's AOT compiler refused the model: {aot_refusal})")
        return model

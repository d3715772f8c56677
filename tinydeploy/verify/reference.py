"""The TFLite Micro reference interpreter: the definition of a correct int8 output."""
from __future__ import annotations

import os
import re
import tempfile

import numpy as np


def _runtime():
    from tflite_micro.python.tflite_micro import runtime
    return runtime


def _interpreter(flatbuffer: bytes, preserve: bool = False):
    runtime = _runtime()
    config = runtime.InterpreterConfig.kPreserveAllTensors if preserve else runtime.InterpreterConfig.kAllocationRecording
    # The default arena (10x the model) is too small for models with small weights and large activations.
    return runtime.Interpreter.from_bytes(flatbuffer, arena_size=max(len(flatbuffer) * 10, 4 << 20),
                                          intrepreter_config=config)


def _set_input(interp, row: np.ndarray) -> None:
    details = interp.get_input_details(0)
    interp.set_input(np.asarray(row).astype(details["dtype"], copy=False).reshape(details["shape"]), 0)


def run(flatbuffer: bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs (one row per input row) of the model's single output tensor."""
    interp = _interpreter(flatbuffer)
    outputs = []
    for row in inputs:
        _set_input(interp, row)
        interp.invoke()
        outputs.append(np.array(interp.get_output(0)).reshape(-1))
    return np.stack(outputs)


def intermediates(flatbuffer: bytes, input_row: np.ndarray, tensor_indices: list[int]) -> dict[int, np.ndarray]:
    """Values of the given tensors after one inference (all tensors are preserved)."""
    interp = _interpreter(flatbuffer, preserve=True)
    _set_input(interp, input_row)
    interp.invoke()
    return {t: np.asarray(interp.GetTensor(t, 0)["tensor_data"]).reshape(-1) for t in tensor_indices}


def arena_usage(flatbuffer: bytes) -> dict[str, int]:
    """TFLM's recorded arena use: total, head (tensor data) and tail (persistent) bytes."""
    interp = _interpreter(flatbuffer)
    details = interp.get_input_details(0)
    _set_input(interp, np.zeros(details["shape"], dtype=details["dtype"]))
    interp.invoke()
    with tempfile.TemporaryFile() as capture:     # the figures go to the C stderr, fd 2
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)
            interp.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    found = dict(re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text))
    return {k: int(v) for k, v in found.items()}


def try_arena_usage(flatbuffer: bytes) -> dict[str, int] | None:
    """arena_usage(), or None when the reference cannot run the model (callers then report ours alone)."""
    try:
        return arena_usage(flatbuffer)
    except Exception:          # any failure inside the C++ interpreter surfaces as some RuntimeError
        return None

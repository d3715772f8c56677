"""Build a generated model library for this machine and call it through ctypes.

The same C that goes into the firmware, compiled with the host gcc, with a
trace hook that captures every operator's output. Tests use it to compare
intermediate tensors with the reference interpreter.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinydeploy.compiler.codegen import CompiledModel, kernel_sources, render_sources
from tinydeploy.core.errors import TinyDeployError

_TRACE_SHIM = r"""
#include <stdint.h>
typedef void (*td_trace_fn)(int, const int8_t *, int);
td_trace_fn td_trace_hook = 0;
void td_trace(int op, const int8_t *data, int bytes) { if (td_trace_hook) td_trace_hook(op, data, bytes); }
"""
_TRACE_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(ctypes.c_int8), ctypes.c_int)


class HostModel:
    """A compiled model library loaded into this process."""

    def __init__(self, model: CompiledModel, workdir: Path | None = None,
                 cflags: tuple[str, ...] = ("-O2", "-Wall", "-Wextra", "-Werror", "-std=c99")):
        if shutil.which("gcc") is None:
            raise TinyDeployError("gcc not found; install it (apt-get install gcc) to run models on the host")
        self.model = model
        self._tmp = tempfile.TemporaryDirectory(prefix="td-host-") if workdir is None else None
        work = Path(workdir or self._tmp.name)
        for name, text in render_sources(model).items():
            (work / name).write_text(text)
        (work / "td_trace.c").write_text(_TRACE_SHIM)
        (work / "td_trace.h").write_text("#include <stdint.h>\nvoid td_trace(int op, const int8_t *data, int bytes);\n")
        sources = [work / f"{model.name}.c", work / "td_trace.c"]
        sources += [p for p in kernel_sources() if p.suffix == ".c"]
        lib = work / f"lib{model.name}.so"
        cmd = ["gcc", "-shared", "-fPIC", *cflags, f"-I{work}", f"-I{sources[-1].parent}",
               "-DTD_TRACE(i,d,n)=td_trace((i),(d),(n))",
               "-include", str(work / "td_trace.h"), *map(str, sources), "-o", str(lib)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"host build failed:\n{proc.stderr}")
        self._lib = ctypes.CDLL(str(lib))
        self._invoke = getattr(self._lib, f"{model.name}_invoke")
        self._invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._hook = ctypes.c_void_p.in_dll(self._lib, "td_trace_hook")

    def invoke(self, row: np.ndarray, trace: bool = False) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Output for one input row, and each operator's output bytes (by op index) when ``trace``."""
        graph = self.model.graph
        x = np.ascontiguousarray(np.asarray(row, dtype=graph.input_tensor().numpy_dtype).reshape(-1))
        y = np.zeros(graph.output_tensor().size, dtype=graph.output_tensor().numpy_dtype)
        seen: dict[int, np.ndarray] = {}

        def record(op, data, nbytes):
            seen[op] = np.ctypeslib.as_array(data, shape=(nbytes,)).copy()

        callback = _TRACE_FN(record) if trace else None
        self._hook.value = ctypes.cast(callback, ctypes.c_void_p).value if trace else None
        try:
            self._invoke(x.ctypes.data, y.ctypes.data)
        finally:
            self._hook.value = None
        return y, seen

    def run(self, inputs: np.ndarray) -> np.ndarray:
        return np.stack([self.invoke(row)[0] for row in inputs])

"""Build a generated model library for this machine: loaded through ctypes, or as a
standalone executable under the sanitizers.

The same C that goes into the firmware, compiled with the host gcc. `HostModel`
loads it into this process with a trace hook that captures every operator's
output; tests use it to compare intermediate tensors with the reference
interpreter. `SanitizedModel` (and `sanitized_run`) link it with a small main()
into an executable built with UndefinedBehaviorSanitizer and AddressSanitizer
(which can't be loaded into Python), fed input rows through a file; any
sanitizer report fails the run. `build_program` links the library with any
other main() the same way.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinydeploy.compiler.codegen import CompiledModel, kernel_sources, render_sources
from tinydeploy.core.errors import TinyDeployError
from tinydeploy.core.resources import KERNELS

_TRACE_SHIM = r"""
#include <stdint.h>
typedef void (*td_trace_fn)(int, const int8_t *, int);
td_trace_fn td_trace_hook = 0;
void td_trace(int op, const int8_t *data, int bytes) { if (td_trace_hook) td_trace_hook(op, data, bytes); }
"""
_TRACE_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(ctypes.c_int8), ctypes.c_int)


def _require_gcc() -> None:
    if shutil.which("gcc") is None:
        raise TinyDeployError("gcc not found; install it (apt-get install gcc) to run models on the host")


class HostModel:
    """A compiled model library loaded into this process."""

    def __init__(self, model: CompiledModel, workdir: Path | None = None,
                 cflags: tuple[str, ...] = ("-O2", "-Wall", "-Wextra", "-Werror", "-std=c99")):
        _require_gcc()
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


SANITIZE_FLAGS = ("-fsanitize=undefined,address", "-fno-sanitize-recover=all", "-g", "-O1")
WARNING_FLAGS = ("-Wall", "-Wextra", "-Werror", "-std=c99")


def build_program(model: CompiledModel, main_source: str, workdir: Path,
                  cflags: tuple[str, ...] = ("-O2", *WARNING_FLAGS), link_model: bool = True) -> Path:
    """Write the model library and ``main_source`` (as td_main.c) into ``workdir`` and link them with
    the kernels into a host executable. With ``link_model`` False, main_source #includes the
    generated ``<name>.c`` itself (to reach its static params structs), so it is not compiled apart."""
    _require_gcc()
    work = Path(workdir)
    for name, text in render_sources(model).items():
        (work / name).write_text(text)
    (work / "td_main.c").write_text(main_source)
    sources = [work / "td_main.c"] + ([work / f"{model.name}.c"] if link_model else [])
    exe = work / f"{model.name}_host"
    _gcc(*cflags, f"-I{work}", f"-I{KERNELS}", *map(str, sources), *map(str, _kernel_objects(cflags)),
         "-o", str(exe))
    return exe


def _gcc(*args: str) -> None:
    proc = subprocess.run(["gcc", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"host build failed:\ngcc {' '.join(args)}\n{proc.stderr}")


def _kernel_objects(cflags: tuple[str, ...]) -> list[Path]:
    """The kernels compiled with ``cflags``, once per set of flags and kernel sources: they don't depend
    on the model, so every model's program links the same objects (kept in the temporary directory)."""
    sources = kernel_sources()
    gcc = Path(shutil.which("gcc") or "gcc").resolve()
    key = hashlib.sha256(repr((cflags, str(gcc), gcc.stat().st_mtime_ns if gcc.exists() else 0)).encode())
    for src in sources:
        key.update(src.name.encode() + b"\0" + src.read_bytes())
    cache = Path(tempfile.gettempdir()) / f"td-kernel-objects-{key.hexdigest()[:16]}"
    objects = [cache / f"{src.stem}.o" for src in sources if src.suffix == ".c"]
    if all(o.exists() for o in objects):
        return objects
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=cache) as tmp:
        for src, obj in zip((s for s in sources if s.suffix == ".c"), objects):
            part = Path(tmp) / obj.name
            _gcc(*cflags, f"-I{KERNELS}", "-c", str(src), "-o", str(part))
            os.replace(part, obj)        # atomic: a concurrent build sees a whole object or none
    return objects


class SanitizerError(RuntimeError):
    """The sanitized build stopped: undefined behaviour or a bad memory access (the report is the message)."""


_RUNNER_MAIN = r"""/* Runs the model on every input row of argv[1], appending each output row to argv[2]. */
#include <stdio.h>
#include <stdlib.h>
#include "{name}.h"

int main(int argc, char **argv)
{{
    if (argc != 3) {{
        fprintf(stderr, "usage: %s INPUTS OUTPUTS\n", argv[0]);
        return 2;
    }}
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    /* heap rows: the sanitizer checks the model's copies in and out against their exact sizes */
    {in_ctype} *x = malloc({NAME}_INPUT_BYTES);
    {out_ctype} *y = malloc({NAME}_OUTPUT_BYTES);
    if (!in || !out || !x || !y) {{
        fprintf(stderr, "cannot open %s or %s\n", argv[1], argv[2]);
        return 2;
    }}
    long rows = 0;
    while (fread(x, 1, {NAME}_INPUT_BYTES, in) == {NAME}_INPUT_BYTES) {{
        if ({name}_invoke(x, y) != 0 || fwrite(y, 1, {NAME}_OUTPUT_BYTES, out) != {NAME}_OUTPUT_BYTES) {{
            fprintf(stderr, "row %ld failed\n", rows);
            return 3;
        }}
        ++rows;
    }}
    free(x);
    free(y);
    fclose(in);
    return fclose(out) == 0 ? 0 : 3;
}}
"""

# Every report is fatal (-fno-sanitize-recover) and shows where it happened.
_SANITIZER_ENV = {"ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1",
                  "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


class SanitizedModel:
    """The model library linked into a standalone executable under UBSan and ASan (one build, many runs)."""

    def __init__(self, model: CompiledModel, workdir: Path | None = None, cflags: tuple[str, ...] = ()):
        self.model = model
        self._tmp = tempfile.TemporaryDirectory(prefix="td-sanitize-") if workdir is None else None
        self.workdir = Path(workdir or self._tmp.name)
        x, y = model.graph.input_tensor(), model.graph.output_tensor()
        main = _RUNNER_MAIN.format(name=model.name, NAME=model.name.upper(), in_ctype=_ctype(x.dtype),
                                   out_ctype=_ctype(y.dtype))
        self.executable = build_program(model, main, self.workdir, (*SANITIZE_FLAGS, *WARNING_FLAGS, *cflags))

    def run(self, inputs: np.ndarray, timeout: float = 600) -> np.ndarray:
        """Outputs, one row per input row; SanitizerError with the sanitizer's report if the program fails."""
        graph = self.model.graph
        x_t, y_t = graph.input_tensor(), graph.output_tensor()
        rows = np.ascontiguousarray(np.asarray(inputs, dtype=x_t.numpy_dtype).reshape(-1, x_t.size))
        in_path, out_path = self.workdir / "inputs.bin", self.workdir / "outputs.bin"
        in_path.write_bytes(rows.tobytes())
        out_path.unlink(missing_ok=True)
        proc = subprocess.run([str(self.executable), str(in_path), str(out_path)], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **_SANITIZER_ENV})
        if proc.returncode != 0 or proc.stderr.strip():
            raise SanitizerError(f"{self.model.name}: the sanitized build exited with {proc.returncode}:\n"
                                 f"{proc.stderr.strip()}")
        out = np.frombuffer(out_path.read_bytes(), dtype=y_t.numpy_dtype)
        if out.size != len(rows) * y_t.size:
            raise SanitizerError(f"{self.model.name}: {out.size} output values for {len(rows)} rows of {y_t.size}")
        return out.reshape(len(rows), y_t.size).copy()


def sanitized_run(model: CompiledModel, inputs: np.ndarray) -> np.ndarray:
    """Build ``model`` with -fsanitize=undefined,address and run it on ``inputs`` (one row each);
    SanitizerError, with the sanitizer's report, on any undefined behaviour or bad memory access."""
    return SanitizedModel(model).run(inputs)


def _ctype(dtype: str) -> str:
    return {"int8": "int8_t", "float32": "float"}[dtype]

"""The TFLite Micro reference interpreter: the definition of a correct int8 output.

Where it runs. TFLite Micro reads a flatbuffer without checking it, so a malformed model can
crash it (SIGSEGV, SIGABRT, SIGFPE), loop, or print its complaints over the caller's terminal.
So by default it runs in one reused worker process (`python -m tinydeploy.verify.reference`,
started on first use), where a crash or a hang kills only the worker and becomes
`ReferenceFailed`, one line, and the worker is restarted on the next call. Measured here
(hello_world, 3 rows): starting the worker 0.43 s once; a call to the running worker 3.4 ms
against 2.8 ms in-process (vww: 69 vs 65 ms). Deciding per model whether it is safe to run
in-process (validating and lowering it again) costs 5-100 ms, more than the worker's
overhead, and a fresh process per call would pay the 0.43 s every time: so every call goes to
the worker. ``isolate=False`` runs in this process, for a caller that holds a model which
passed tinydeploy's validation and lowering and wants no second process.
"""
from __future__ import annotations

import atexit
import os
import pickle
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from tinydeploy.core.errors import BadInput

WORKER_TIMEOUT_S = 600          # one request to the worker (a whole test split through a large model)
_HEADER = struct.Struct("<Q")   # length prefix of a pickled message on the worker's pipes
PARENT_POLL_S = 1.0             # how often the worker checks that its parent is alive
_STDERR_TAIL = 300              # characters of the interpreter's last message quoted in an error


class ReferenceFailed(BadInput):
    """The reference interpreter refused the model, crashed on it or did not finish (exit 2)."""


def _runtime():
    from tflite_micro.python.tflite_micro import runtime
    return runtime


def _interpreter(flatbuffer: bytes, preserve: bool = False):
    runtime = _runtime()
    config = runtime.InterpreterConfig.kPreserveAllTensors if preserve else runtime.InterpreterConfig.kAllocationRecording
    # The default arena (10x the model) is too small for models with small weights and large activations.
    try:
        return runtime.Interpreter.from_bytes(flatbuffer, arena_size=max(len(flatbuffer) * 10, 4 << 20),
                                              intrepreter_config=config)
    except (RuntimeError, ValueError) as exc:
        raise ReferenceFailed(f"the TFLite Micro reference interpreter refuses this model ({exc}); "
                              "fix or re-export the model") from None


def _set_input(interp, row: np.ndarray) -> None:
    details = interp.get_input_details(0)
    interp.set_input(np.asarray(row).astype(details["dtype"], copy=False).reshape(details["shape"]), 0)


def _invoke(interp) -> None:
    try:
        interp.invoke()
    except (RuntimeError, ValueError) as exc:
        raise ReferenceFailed(f"the TFLite Micro reference interpreter failed to run this model ({exc}); "
                              "fix or re-export the model") from None


def _run(flatbuffer: bytes, inputs: np.ndarray) -> np.ndarray:
    interp = _interpreter(flatbuffer)
    outputs = []
    for row in inputs:
        _set_input(interp, row)
        _invoke(interp)
        outputs.append(np.array(interp.get_output(0)).reshape(-1))
    return np.stack(outputs)


def _intermediates(flatbuffer: bytes, input_row: np.ndarray, tensor_indices: list[int]) -> dict[int, np.ndarray]:
    interp = _interpreter(flatbuffer, preserve=True)
    _set_input(interp, input_row)
    _invoke(interp)
    return {t: np.asarray(interp.GetTensor(t, 0)["tensor_data"]).reshape(-1) for t in tensor_indices}


def _arena_usage(flatbuffer: bytes) -> dict[str, int]:
    interp = _interpreter(flatbuffer)
    details = interp.get_input_details(0)
    _set_input(interp, np.zeros(details["shape"], dtype=details["dtype"]))
    _invoke(interp)
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


_CALLS = {"run": _run, "intermediates": _intermediates, "arena_usage": _arena_usage}

# --- the worker process ----------------------------------------------------------------------------

def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    """``n`` bytes from ``fd``; None at end of file; TimeoutError past ``deadline``."""
    chunks, left = [], n
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


class _Worker:
    """One `python -m tinydeploy.verify.reference` process; requests and replies are pickles on its pipes."""

    def __init__(self):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "tinydeploy.verify.reference"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)

    def call(self, kind: str, args: tuple, timeout: float):
        start = self.log.seek(0, os.SEEK_END)
        try:
            _send(self.proc.stdin, (kind, args))
            deadline = time.monotonic() + timeout
            header = _read_exact(self.proc.stdout.fileno(), _HEADER.size, deadline)
            body = None if header is None else _read_exact(self.proc.stdout.fileno(),
                                                           _HEADER.unpack(header)[0], deadline)
        except TimeoutError:
            self.close()
            raise ReferenceFailed(f"the TFLite Micro reference interpreter did not finish within {timeout:g} s "
                                  "on this model; the model is probably malformed: check it") from None
        except BrokenPipeError:
            body = None
        if body is None:
            code, said = self.proc.wait(), self._said(start)
            self.close()
            raise ReferenceFailed(f"the TFLite Micro reference interpreter crashed on this model "
                                  f"({_describe_exit(code)}{said}); the model is probably "
                                  "malformed: check it with `tinydeploy inspect` or re-export it")
        status, value = pickle.loads(body)
        if status == "ok":
            return value
        raise ReferenceFailed(value)

    def _said(self, start: int) -> str:
        """The interpreter's last line on stderr since ``start``, quoted."""
        self.log.seek(start)
        lines = [ln.strip() for ln in self.log.read().decode(errors="replace").splitlines() if ln.strip()]
        return f": {lines[-1][:_STDERR_TAIL]}" if lines else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.log.close()


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def _in_worker(kind: str, args: tuple, timeout: float | None = None):
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.alive():
            _worker = _Worker()
        try:
            return _worker.call(kind, args, WORKER_TIMEOUT_S if timeout is None else timeout)
        finally:
            if not _worker.alive():
                _worker = None


@atexit.register
def _stop_worker() -> None:
    if _worker is not None:
        _worker.close()


def _exit_with_parent(parent: int) -> None:
    """End this worker when the process that started it is gone (even if the interpreter hangs)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _serve() -> None:
    """The worker's loop: requests on stdin, replies on the original stdout (fd 1 goes to stderr)."""
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                                   # stray C prints must not corrupt the replies
    requests = sys.stdin.buffer
    while True:
        header = requests.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        kind, args = pickle.loads(requests.read(_HEADER.unpack(header)[0]))
        try:
            reply = ("ok", _CALLS[kind](*args))
        except ReferenceFailed as exc:
            reply = ("error", str(exc))
        except Exception as exc:                    # a failure inside the interpreter's Python wrapper
            reply = ("error", f"the TFLite Micro reference interpreter failed on this model "
                              f"({type(exc).__name__}: {exc}); fix or re-export the model")
        sys.stderr.flush()
        _send(replies, reply)


def _dispatch(kind: str, flatbuffer: bytes, *rest, isolate: bool = True):
    if isolate:
        return _in_worker(kind, (bytes(flatbuffer), *rest))
    return _CALLS[kind](flatbuffer, *rest)


# --- the API ---------------------------------------------------------------------------------------

def run(flatbuffer: bytes, inputs: np.ndarray, isolate: bool = True) -> np.ndarray:
    """Outputs (one row per input row) of the model's single output tensor."""
    return _dispatch("run", flatbuffer, np.asarray(inputs), isolate=isolate)


def intermediates(flatbuffer: bytes, input_row: np.ndarray, tensor_indices: list[int],
                  isolate: bool = True) -> dict[int, np.ndarray]:
    """Values of the given tensors after one inference (all tensors are preserved)."""
    return _dispatch("intermediates", flatbuffer, np.asarray(input_row), list(tensor_indices), isolate=isolate)


def arena_usage(flatbuffer: bytes, isolate: bool = True) -> dict[str, int]:
    """TFLM's recorded arena use: total, head (tensor data) and tail (persistent) bytes."""
    return _dispatch("arena_usage", flatbuffer, isolate=isolate)


def arena_usage_or_reason(flatbuffer: bytes) -> tuple[dict[str, int] | None, str | None]:
    """arena_usage(), or None and the one-line reason the reference cannot run the model."""
    try:
        return arena_usage(flatbuffer), None
    except ReferenceFailed as exc:
        return None, str(exc)


def try_arena_usage(flatbuffer: bytes) -> dict[str, int] | None:
    """arena_usage(), or None when the reference cannot run the model (callers then report ours alone)."""
    return arena_usage_or_reason(flatbuffer)[0]


if __name__ == "__main__":
    _serve()

"""Hostile-input fuzzing: mutated models through `inspect` and `convert`, accepted ones checked bit-exact.

`mutate` makes one mutant of a model, byte-level (bit flips, overwrites, truncation, zero-filled
runs) or schema-aware (edits on the flatbuffer object API `ModelT`, re-serialized). `check` runs
one mutant in this process and sorts it: ``accepted`` (converted, and the host build of the
generated C gives the reference interpreter's outputs byte for byte), ``refused`` (one clean
error line), ``traceback``, ``signal``, ``hang`` or ``differs``. `campaign` runs mutants in
worker processes (one per job), so a signal or a hang costs one mutant, and prints the table:

    python -m tinydeploy.verify.fuzz 10000 --jobs 2 [--models DIR] [--seed S]
"""
from __future__ import annotations

import argparse
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CATEGORIES = ("accepted", "refused", "traceback", "signal", "hang", "differs")
FAILURES = ("traceback", "signal", "hang", "differs")
ROWS = 3                          # input rows each accepted mutant is checked on
MUTANT_TIMEOUT_S = 120            # one mutant in the campaign: inspect, convert, host build and both runs
HOST_RUN_TIMEOUT_S = 30           # the host-built program on ROWS rows
REFERENCE_TIMEOUT_S = 30          # the reference interpreter on ROWS rows
BYTE_SHARE = 0.35                 # share of byte-level mutants; the rest are schema-aware
HUGE_DIMS = (0, -1, 131072, 1 << 20, (1 << 31) - 1)
ODD_SCALES = (0.0, -1.0, float("nan"), float("inf"), 3e38, 1e-30, 1e-45, 1e6)
_HEADER = struct.Struct("<Q")

_RUNNER = r"""#include <stdio.h>
#include "{name}.h"
static {in_ctype} x[{NAME}_INPUT_SIZE];
static {out_ctype} y[{NAME}_OUTPUT_SIZE];
int main(int argc, char **argv)
{{
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (argc != 3 || !in || !out) return 2;
    while (fread(x, 1, sizeof x, in) == sizeof x) {{
        if ({name}_invoke(x, y) != 0 || fwrite(y, 1, sizeof y, out) != sizeof y) return 3;
    }}
    return fclose(out) == 0 ? 0 : 3;
}}
"""
_CTYPES = {"int8": "int8_t", "float32": "float"}


# --- mutation --------------------------------------------------------------------------------------

def _byte_mutant(raw: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    data = bytearray(raw)
    kind = rng.integers(4)
    if kind == 0:
        flips = int(rng.integers(1, 9))
        for _ in range(flips):
            i = int(rng.integers(len(data)))
            data[i] ^= 1 << int(rng.integers(8))
        return bytes(data), f"{flips} bit flips"
    at = int(rng.integers(len(data)))
    if kind == 1:
        n = int(rng.integers(1, 17))
        data[at:at + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()[:len(data) - at]
        return bytes(data), f"{n} random bytes at {at}"
    if kind == 2:
        return bytes(data[:at]), f"truncated to {at} bytes"
    n = int(rng.integers(1, 65))
    data[at:at + n] = bytes(min(n, len(data) - at))
    return bytes(data), f"{n} zero bytes at {at}"


def unpack(raw: bytes):
    """A mutable ModelT of ``raw`` (numpy vectors as lists)."""
    from tinydeploy.ir import schema
    model = schema.generated().ModelT.InitFromPackedBuf(raw, 0)
    for sg in model.subgraphs:
        sg.inputs, sg.outputs = list(sg.inputs), list(sg.outputs)
        for op in sg.operators:
            op.inputs, op.outputs = list(op.inputs), list(op.outputs)
        for t in sg.tensors:
            t.shape = list(t.shape) if t.shape is not None else []
            q = t.quantization
            if q is not None and q.scale is not None:
                q.scale = list(q.scale)
                q.zeroPoint = list(q.zeroPoint) if q.zeroPoint is not None else []
    return model


def pack(model) -> bytes:
    import flatbuffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _schema_edit(model, rng: np.random.Generator) -> str:
    """Apply one schema-aware edit to ``model`` in place; what it did."""
    from tinydeploy.ir import schema
    s = schema.generated()
    sg = model.subgraphs[0]
    n_t, n_op = len(sg.tensors), len(sg.operators)
    t_i = int(rng.integers(n_t))
    t = sg.tensors[t_i]
    op_i = int(rng.integers(n_op))
    op = sg.operators[op_i]
    near = lambda n: int(rng.integers(-1, n + 3))             # noqa: E731  an index, sometimes out of range
    kind = _pick(rng, ("buffer", "buffer_len", "shape", "type", "scale", "zero_point", "qdim", "channels",
                       "opcode", "builtin", "op_input", "op_output", "extra_input", "drop_input", "sg_input",
                       "sg_output", "option", "option_type", "order", "drop_op", "dup_tensor", "version"))
    if kind == "buffer":
        t.buffer = int(rng.integers(0, len(model.buffers) + 3))
        return f"tensor {t_i} buffer -> {t.buffer}"
    if kind == "buffer_len":
        full = [b for b in model.buffers if b.data is not None and len(b.data)]
        if not full:
            return "no constant buffer"
        buf = _pick(rng, full)
        delta = int(rng.integers(-8, 9)) or 1
        data = np.asarray(buf.data, np.uint8)
        buf.data = data[:max(0, data.size + delta)] if delta < 0 else np.concatenate([data, np.zeros(delta, np.uint8)])
        return f"a buffer's length {delta:+d}"
    if kind == "shape":
        if not t.shape or rng.random() < 0.2:
            t.shape = t.shape + [int(rng.integers(1, 4))]
            return f"tensor {t_i} gains a dimension"
        d = int(rng.integers(len(t.shape)))
        t.shape[d] = _pick(rng, HUGE_DIMS) if rng.random() < 0.4 else max(1, t.shape[d] + int(rng.integers(-2, 3)))
        return f"tensor {t_i} shape -> {t.shape}"
    if kind == "type":
        t.type = int(rng.integers(0, 20))
        return f"tensor {t_i} type -> {t.type}"
    q = t.quantization
    if kind in ("scale", "zero_point", "qdim", "channels") and (q is None or not q.scale):
        kind = "sg_input"
    if kind == "scale":
        c = int(rng.integers(len(q.scale)))
        q.scale[c] = _pick(rng, ODD_SCALES) if rng.random() < 0.4 else float(q.scale[c]) * float(2.0 ** rng.uniform(-4, 4))
        return f"tensor {t_i} scale -> {q.scale[c]:g}"
    if kind == "zero_point":
        c = int(rng.integers(len(q.zeroPoint))) if q.zeroPoint else 0
        value = int(rng.integers(-300, 300))
        q.zeroPoint = q.zeroPoint or [0]
        q.zeroPoint[c] = value
        return f"tensor {t_i} zero point -> {value}"
    if kind == "qdim":
        q.quantizedDimension = int(rng.integers(0, 6))
        return f"tensor {t_i} quantized dimension -> {q.quantizedDimension}"
    if kind == "channels":
        if rng.random() < 0.5 and len(q.scale) > 1:
            q.scale, q.zeroPoint = q.scale[:-1], q.zeroPoint[:-1]
        else:
            q.scale, q.zeroPoint = q.scale + [q.scale[-1]], q.zeroPoint + [q.zeroPoint[-1] if q.zeroPoint else 0]
        return f"tensor {t_i} has {len(q.scale)} scales"
    if kind == "opcode":
        op.opcodeIndex = int(rng.integers(0, len(model.operatorCodes) + 2))
        return f"operator {op_i} opcode index -> {op.opcodeIndex}"
    if kind == "builtin":
        code = _pick(rng, model.operatorCodes)
        code.builtinCode = int(rng.integers(0, 130))
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
        return f"an operator code -> builtin {code.builtinCode}"
    if kind == "op_input" and op.inputs:
        slot = int(rng.integers(len(op.inputs)))
        op.inputs[slot] = near(n_t)
        return f"operator {op_i} input {slot} -> {op.inputs[slot]}"
    if kind == "op_output" and op.outputs:
        op.outputs[0] = near(n_t)
        return f"operator {op_i} output -> {op.outputs[0]}"
    if kind == "extra_input":
        op.inputs.append(near(n_t))
        return f"operator {op_i} extra input {op.inputs[-1]}"
    if kind == "drop_input" and op.inputs:
        op.inputs.pop(int(rng.integers(len(op.inputs))))
        return f"operator {op_i} loses an input"
    if kind == "sg_output":
        sg.outputs[0] = near(n_t)
        return f"subgraph output -> {sg.outputs[0]}"
    if kind == "option" and op.builtinOptions is not None and vars(op.builtinOptions):
        field = _pick(rng, sorted(vars(op.builtinOptions)))
        old = getattr(op.builtinOptions, field)
        if isinstance(old, bool):
            new = not old
        elif isinstance(old, float):
            new = _pick(rng, (0.0, -1.0, float("nan"), old * 2, 1e9))
        elif isinstance(old, int):
            new = _pick(rng, (0, 1, 2, 3, 5, old + 1, max(0, old - 1), 127, 1 << 20))
        else:
            return "an option of no scalar type"
        setattr(op.builtinOptions, field, new)
        return f"operator {op_i} option {field} {old} -> {new}"
    if kind == "option_type":
        op.builtinOptionsType = int(rng.integers(0, 128))
        return f"operator {op_i} options type -> {op.builtinOptionsType}"
    if kind == "order" and n_op > 1:
        j = int(rng.integers(n_op))
        sg.operators[op_i], sg.operators[j] = sg.operators[j], sg.operators[op_i]
        return f"operators {op_i} and {j} swapped"
    if kind == "drop_op":
        sg.operators.pop(op_i)
        return f"operator {op_i} dropped"
    if kind == "dup_tensor":
        copy = s.TensorT.InitFromObj(s.Tensor.GetRootAs(_tensor_bytes(t), 0))
        sg.tensors.append(copy)
        where = op.inputs if (rng.random() < 0.5 or not op.outputs) else op.outputs
        if where:
            where[int(rng.integers(len(where)))] = n_t
        return f"tensor {t_i} duplicated into operator {op_i}"
    if kind == "version":
        model.version = int(rng.integers(0, 6))
        return f"schema version -> {model.version}"
    sg.inputs[0] = near(n_t)                                  # sg_input, and the fallback
    return f"subgraph input -> {sg.inputs[0]}"


def _tensor_bytes(t) -> bytes:
    import flatbuffers
    builder = flatbuffers.Builder(256)
    builder.Finish(t.Pack(builder))
    return bytes(builder.Output())


def mutate(raw: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """One mutant of ``raw`` and what was done to it."""
    if rng.random() < BYTE_SHARE:
        return _byte_mutant(raw, rng)
    for _ in range(8):                   # an edit the serializer cannot write (a negative uint) is redrawn
        model = unpack(raw)
        what = _schema_edit(model, rng)
        try:
            return pack(model), what
        except Exception:
            continue
    return _byte_mutant(raw, rng)


def mutant(models: list[Path], seed: int, index: int) -> tuple[str, bytes, str]:
    """Mutant ``index`` of the campaign with ``seed``: (model name, bytes, what was done)."""
    rng = np.random.default_rng([seed, index])
    path = models[index % len(models)]
    data, what = mutate(path.read_bytes(), rng)
    return path.stem, data, what


# --- checking one mutant ---------------------------------------------------------------------------

@dataclass
class Outcome:
    category: str
    detail: str = ""


def _one_line(exc: Exception) -> bool:
    return "\n" not in str(exc) and bool(str(exc).strip())


def _host_outputs(compiled, inputs: np.ndarray, work: Path) -> np.ndarray | Outcome:
    from tinydeploy.verify.host import build_program
    g = compiled.graph
    x_t, y_t = g.input_tensor(), g.output_tensor()
    main = _RUNNER.format(name=compiled.name, NAME=compiled.name.upper(), in_ctype=_CTYPES[x_t.dtype],
                          out_ctype=_CTYPES[y_t.dtype])
    try:
        exe = build_program(compiled, main, work)
    except RuntimeError as exc:
        return Outcome("traceback", f"the generated C does not compile: {str(exc).splitlines()[-1][:200]}")
    (work / "in.bin").write_bytes(np.ascontiguousarray(inputs).tobytes())
    try:
        proc = subprocess.run([str(exe), str(work / "in.bin"), str(work / "out.bin")], capture_output=True,
                              timeout=HOST_RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Outcome("hang", "the host-built model did not finish")
    if proc.returncode < 0:
        return Outcome("signal", f"the host-built model was killed by {signal.Signals(-proc.returncode).name}")
    if proc.returncode != 0:
        return Outcome("differs", f"the host-built model exited with {proc.returncode}")
    return np.frombuffer((work / "out.bin").read_bytes(), y_t.numpy_dtype).reshape(len(inputs), -1)


def _inputs(graph, rng: np.random.Generator) -> np.ndarray:
    x = graph.input_tensor()
    if x.dtype == "float32":
        return rng.normal(0, 1, (ROWS, x.size)).astype(np.float32)
    return rng.integers(-128, 128, (ROWS, x.size)).astype(np.int8)


def check(raw: bytes, name: str = "mutant", seed: int = 0) -> Outcome:
    """Run one model through inspect and convert in this process and sort the result."""
    from tinydeploy.analysis.inspect import inspect
    from tinydeploy.compiler.codegen import compile_model, write_library
    from tinydeploy.core.errors import TinyDeployError
    from tinydeploy.verify import reference
    with tempfile.TemporaryDirectory(prefix="td-fuzz-") as tmp:
        work = Path(tmp)
        path = work / f"{name}.tflite"
        path.write_bytes(raw)
        for stage in ("inspect", "convert"):
            try:
                if stage == "inspect":
                    inspect(path)
                    continue
                compiled = compile_model(path)
                write_library(compiled, work / "lib")
            except TinyDeployError as exc:
                if not _one_line(exc):
                    return Outcome("traceback", f"{stage}: an error of more than one line: {str(exc)[:200]!r}")
                if stage == "convert":
                    return Outcome("refused", str(exc))
            except Exception as exc:
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                return Outcome("traceback", f"{stage}: {type(exc).__name__}: {str(exc)[:160]} "
                                            f"({Path(frame.filename).name}:{frame.lineno})")
        inputs = _inputs(compiled.graph, np.random.default_rng(seed))
        try:
            expected = reference.run(raw, inputs, isolate=True)
        except TinyDeployError as exc:
            return Outcome("differs", f"accepted, but {exc}")
        (work / "host").mkdir()
        ours = _host_outputs(compiled, inputs, work / "host")
        if isinstance(ours, Outcome):
            return ours
        expected = np.asarray(expected).reshape(len(inputs), -1)
        if ours.shape != expected.shape or ours.tobytes() != expected.astype(ours.dtype).tobytes():
            bad = int(np.sum(ours.reshape(-1) != expected.reshape(-1))) if ours.shape == expected.shape else -1
            return Outcome("differs", f"accepted, {bad} output values differ from the reference")
        return Outcome("accepted")


# --- the campaign ----------------------------------------------------------------------------------

def _serve(models: list[Path], seed: int) -> None:
    """Worker: mutant indices on stdin, pickled (index, model, what, Outcome) on stdout."""
    from tinydeploy.verify import reference
    reference.WORKER_TIMEOUT_S = REFERENCE_TIMEOUT_S
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    for line in sys.stdin:
        index = int(line)
        name, data, what = mutant(models, seed, index)
        outcome = check(data, name, seed + index)
        blob = pickle.dumps((index, name, what, outcome))
        out.write(_HEADER.pack(len(blob)) + blob)
        out.flush()


class _Runner:
    def __init__(self, models: list[Path], seed: int):
        self.args = [sys.executable, "-m", "tinydeploy.verify.fuzz", "--serve", "--seed", str(seed),
                     *("--model=" + str(m) for m in models)]
        self.proc = None

    def run(self, index: int, timeout: float):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
            self.started = True
        self.proc.stdin.write(f"{index}\n".encode())
        self.proc.stdin.flush()
        fd, deadline = self.proc.stdout.fileno(), time.monotonic() + timeout
        header = self._read(fd, _HEADER.size, deadline)
        if header is not None and header != b"timeout":
            body = self._read(fd, _HEADER.unpack(header)[0], deadline)
            if body is not None and body != b"timeout":
                return pickle.loads(body)
            header = body
        if header == b"timeout":
            self.stop()
            return index, "?", "?", Outcome("hang", f"no result within {timeout:g} s")
        code = self.proc.wait()
        self.proc = None
        why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return index, "?", "?", Outcome("signal", f"the checking process died ({why})")

    @staticmethod
    def _read(fd: int, n: int, deadline: float):
        chunks = []
        while n:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                return b"timeout"
            chunk = os.read(fd, n)
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)      # the worker and its reference interpreter
            self.proc.wait()
        self.proc = None


def campaign(count: int, models: list[Path], seed: int = 0, jobs: int = 2, timeout: float = MUTANT_TIMEOUT_S,
             log=None) -> dict[str, list]:
    """Run mutants 0..count-1 on ``jobs`` worker processes; results by category."""
    import threading
    results: dict[str, list] = {c: [] for c in CATEGORIES}
    lock = threading.Lock()
    todo = iter(range(count))

    def work():
        runner = _Runner(models, seed)
        try:
            while True:
                with lock:
                    index = next(todo, None)
                if index is None:
                    return
                index, name, what, outcome = runner.run(index, timeout)
                with lock:
                    results[outcome.category].append((index, name, what, outcome.detail))
                    done = sum(map(len, results.values()))
                    if log and outcome.category in FAILURES:
                        print(f"[{done}/{count}] {outcome.category}: mutant {index} {name} ({what}): "
                              f"{outcome.detail}", file=log, flush=True)
                    elif log and done % 500 == 0:
                        print(f"[{done}/{count}] " + table(results, short=True), file=log, flush=True)
        finally:
            runner.stop()

    threads = [threading.Thread(target=work) for _ in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def table(results: dict[str, list], short: bool = False) -> str:
    total = sum(map(len, results.values()))
    if short:
        return ", ".join(f"{c} {len(results[c])}" for c in CATEGORIES)
    lines = ["| outcome | mutants | share |", "|---|---|---|"]
    names = dict(accepted="accepted (outputs equal the reference)", refused="refused with one clean error line",
                 traceback="traceback", signal="killed by a signal", hang="hang (over the per-mutant timeout)",
                 differs="accepted but differs from the reference")
    for c in CATEGORIES:
        lines.append(f"| {names[c]} | {len(results[c]):,} | {100 * len(results[c]) / max(total, 1):.1f}% |")
    lines.append(f"| total | {total:,} | |")
    return "\n".join(lines)


def default_models() -> list[Path]:
    root = Path(os.environ.get("TINYDEPLOY_MODELS", Path(__file__).resolve().parents[3] / "shared" / "models"))
    return sorted(root.rglob("*.tflite"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinydeploy.verify.fuzz", description=__doc__.split("\n")[0])
    ap.add_argument("count", nargs="?", type=int, default=10000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=MUTANT_TIMEOUT_S)
    ap.add_argument("--models", type=Path, help="folder of .tflite models [the shared models]")
    ap.add_argument("--model", action="append", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    models = args.model or (sorted(args.models.rglob("*.tflite")) if args.models else default_models())
    if not models:
        print("no .tflite models found; give --models DIR", file=sys.stderr)
        return 2
    if args.serve:
        _serve(models, args.seed)
        return 0
    started = time.monotonic()
    results = campaign(args.count, models, args.seed, args.jobs, args.timeout, log=sys.stderr)
    print(f"{args.count} mutants of {len(models)} models, seed {args.seed}, {args.jobs} jobs, "
          f"{time.monotonic() - started:.0f} s")
    print(table(results))
    for c in FAILURES:
        for index, name, what, detail in results[c][:50]:
            print(f"{c}: mutant {index} of {name} ({what}): {detail}")
    return 1 if any(results[c] for c in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Generate the model library: AOT C for one model, plus the kernels it calls.

Output (in ``out_dir``): ``<name>.h`` (the C API), ``<name>.c`` (weights,
constants, static arena, invoke()), ``<name>_tflite.c`` (the flatbuffer as an
aligned array), the kernel sources it needs, and ``model.json`` (the plan).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from tinydeploy.compiler.lower import lower
from tinydeploy.compiler.step import ArrayRef, Step
from tinydeploy.ir import graph as graph_mod
from tinydeploy.ir.graph import Graph, Tensor
from tinydeploy.core.resources import KERNELS, TEMPLATES, atomic_dir
from tinydeploy.compiler.plan import MemoryPlan, plan


@dataclass
class CompiledModel:
    """Everything known about a model once it is lowered and planned."""
    graph: Graph
    steps: list[Step]
    plan: MemoryPlan
    runtime = "aot"

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_size

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.steps)

    @property
    def weight_bytes(self) -> int:
        return sum(s.weight_bytes for s in self.steps)

    def summary(self) -> dict:
        return {
            "name": self.name, "source": str(self.graph.path), "runtime": self.runtime,
            "input": io_summary(self.graph.input_tensor()), "output": io_summary(self.graph.output_tensor()),
            "arena_bytes": self.plan.arena_size,
            "weight_bytes": self.weight_bytes, "macs": self.macs,
            "ops": [{"index": s.op_index, "op": s.op, "macs": s.macs, "weight_bytes": s.weight_bytes} for s in self.steps],
        }

    def write_library(self, out_dir: Path) -> Path:
        return write_library(self, out_dir)


def io_summary(t: Tensor) -> dict:
    """Shape, type and quantization of a model input or output (scale 1, zero point 0 for float)."""
    return {"shape": list(t.shape), "size": t.size, "bytes": t.nbytes, "dtype": t.dtype, "ctype": _CTYPES[t.dtype],
            "scale": float(t.scale[0]) if t.is_quantized else 1.0,
            "zero_point": int(t.zero_point[0]) if t.is_quantized else 0}


def compile_model(path: str | Path) -> CompiledModel:
    """Load, lower and plan a .tflite (raises TinyDeployError on bad input)."""
    g = graph_mod.load(path)
    steps = lower(g)
    return CompiledModel(g, steps, plan(g, steps))


def c_values(values: np.ndarray, per_line: int = 16) -> str:
    """A C array body: integers, or for a 2-D array one braced struct initializer per row."""
    values = np.asarray(values)
    if values.ndim == 2:
        items = ["{" + ", ".join(str(int(v)) for v in row) + "}" for row in values]
        per_line = max(1, per_line // values.shape[1])
    else:
        items = [str(int(v)) for v in values.reshape(-1)]
    if len(items) == 0:
        items = ["0"]
    return "\n".join("    " + ", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line))


_CTYPES = {"int8": "int8_t", "float32": "float"}


def c_initializer(value, prefix: str = "") -> str:
    """A C initializer for a params field: ints, float32 (as exact hex literals), arrays, nested
    structs, and references to the step's constant arrays (named ``prefix`` + the array's name)."""
    if isinstance(value, ArrayRef):
        return prefix + value
    if isinstance(value, dict):
        return "{" + ", ".join(f".{k} = {c_initializer(v, prefix)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(c_initializer(v, prefix) for v in value) + "}"
    if isinstance(value, float):
        return float(np.float32(value)).hex() + "f"
    return str(int(value))


def _arena_address(model: CompiledModel, tensor: int) -> str:
    return f"(arena + {model.plan.offsets[tensor]})"


def _pointer(model: CompiledModel, tensor: int) -> str:
    """A typed pointer to an activation tensor in the arena."""
    ctype = _CTYPES[model.graph.tensors[tensor].dtype]
    address = _arena_address(model, tensor)
    return address if ctype == "int8_t" else f"(({ctype} *){address})"


def _referenced(value) -> set[str]:
    if isinstance(value, ArrayRef):
        return {str(value)}
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return set().union(*(_referenced(v) for v in value)) if value else set()
    return set()


def _operand(model: CompiledModel, step: Step, operand: int | str) -> str:
    if operand == "scratch":
        return f"(arena + {model.plan.scratch[step.op_index]})" if step.scratch_bytes else "(int8_t *)0"
    if isinstance(operand, str):
        return f"op{step.op_index}_{operand}"
    return _pointer(model, operand)


def _step_context(model: CompiledModel, step: Step) -> dict:
    prefix = f"op{step.op_index}_"
    arrays = [dict(field=f, ctype=ctype, count=max(1, len(a) if a.ndim == 2 else a.size), body=c_values(a)) for f, (ctype, a) in step.arrays.items()]
    pointer_lists = [dict(field=f, body=", ".join(_arena_address(model, t) for t in tensors))
                     for f, tensors in step.pointer_lists.items()]
    fields = [(f, c_initializer(v, prefix)) for f, v in step.scalars.items()] if step.params_type else []
    operands = step.operands if step.operands is not None else step.inputs + step.outputs
    taken = set(operands) | _referenced(step.scalars)
    fields += [(f, prefix + f) for f in list(step.arrays) + list(step.pointer_lists) if f not in taken]
    if step.kernel is None:
        call = None
        comment = "shares its input's bytes, no copy"
    else:
        args = [_operand(model, step, o) for o in operands]
        call = f"{step.kernel}(&op{step.op_index}, {', '.join(args)})"
        comment = f"{step.macs} MACs" if step.macs else ""
    return dict(op_index=step.op_index, op=step.op, params_type=step.params_type, arrays=arrays,
                pointer_lists=pointer_lists, fields=fields, call=call, comment=comment,
                output=_arena_address(model, step.outputs[0]),
                output_bytes=model.graph.tensors[step.outputs[0]].nbytes)


def template_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def header_context(model, **extra) -> dict:
    """What model.h.j2 needs, for either runtime's model (CompiledModel or runtimes.tflm.TflmModel)."""
    info = model.summary()
    return dict(name=model.name, NAME=model.name.upper(), source=model.graph.path.name, runtime=model.runtime,
                input=info["input"], output=info["output"], arena_size=model.arena_bytes, macs=model.macs, **extra)


def flatbuffer_source(graph: Graph) -> str:
    """``<name>_tflite.c``: the flatbuffer as a 16-byte-aligned const array."""
    flat = np.frombuffer(graph.flatbuffer, dtype=np.uint8)
    return template_env().get_template("tflite.c.j2").render(
        name=graph.name, source=graph.path.name, length=flat.size, body=c_values(flat, 20))


def render_sources(model: CompiledModel) -> dict[str, str]:
    """File name -> text of the generated model library (without kernels)."""
    env = template_env()
    ctx = header_context(model, input_offset=model.plan.offsets[model.graph.inputs[0]],
                         output_offset=model.plan.offsets[model.graph.outputs[0]],
                         op_count=len(model.steps), steps=[_step_context(model, s) for s in model.steps])
    return {
        f"{model.name}.h": env.get_template("model.h.j2").render(ctx),
        f"{model.name}.c": env.get_template("model.c.j2").render(ctx),
        f"{model.name}_tflite.c": flatbuffer_source(model.graph),
        "model.json": json.dumps(model.summary(), indent=2) + "\n",
    }


def kernel_sources() -> list[Path]:
    return sorted(p for p in KERNELS.iterdir() if p.suffix in (".c", ".h"))


def write_library(model: CompiledModel, out_dir: Path) -> Path:
    """Write the self-contained model library (generated code + kernels) into ``out_dir``."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for name, text in render_sources(model).items():
            (tmp / name).write_text(text)
        for src in kernel_sources():
            shutil.copy2(src, tmp / src.name)
    return out_dir

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

from . import graph as graph_mod
from .graph import Graph
from .lower import Step, lower
from .paths import KERNELS, TEMPLATES, atomic_dir
from .plan import MemoryPlan, plan


@dataclass
class CompiledModel:
    """Everything known about a model once it is lowered and planned."""
    graph: Graph
    steps: list[Step]
    plan: MemoryPlan

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.steps)

    @property
    def weight_bytes(self) -> int:
        return sum(s.weight_bytes for s in self.steps)

    def summary(self) -> dict:
        x, y = self.graph.input_tensor(), self.graph.output_tensor()
        return {
            "name": self.name, "source": str(self.graph.path),
            "input": {"shape": list(x.shape), "size": x.size, "scale": float(x.scale[0]), "zero_point": int(x.zero_point[0])},
            "output": {"shape": list(y.shape), "size": y.size, "scale": float(y.scale[0]), "zero_point": int(y.zero_point[0])},
            "arena_bytes": self.plan.arena_size,
            "weight_bytes": self.weight_bytes, "macs": self.macs,
            "ops": [{"index": s.op_index, "op": s.op, "macs": s.macs, "weight_bytes": s.weight_bytes} for s in self.steps],
        }


def compile_model(path: str | Path) -> CompiledModel:
    """Load, lower and plan a .tflite (raises TinyDeployError on bad input)."""
    g = graph_mod.load(path)
    steps = lower(g)
    return CompiledModel(g, steps, plan(g, steps))


def c_values(values: np.ndarray, per_line: int = 16) -> str:
    items = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    if len(items) == 0:
        items = ["0"]
    return "\n".join("    " + ", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line))


def _pointer(model: CompiledModel, tensor: int) -> str:
    return f"(arena + {model.plan.offsets[tensor]})"


def _step_context(model: CompiledModel, step: Step) -> dict:
    arrays = [dict(field=f, ctype=ctype, count=max(1, a.size), body=c_values(a)) for f, (ctype, a) in step.arrays.items()]
    fields = list(step.scalars.items()) if step.params_type else []
    fields += [(f, f"op{step.op_index}_{f}") for f in step.arrays]
    src, dst = _pointer(model, step.inputs[0]), _pointer(model, step.outputs[0])
    if step.kernel is None:
        call = None
        comment = "shares its input's bytes, no copy"
    else:
        call = f"{step.kernel}(&op{step.op_index}, {src}, {dst})"
        comment = f"{step.macs} MACs" if step.macs else ""
    return dict(op_index=step.op_index, op=step.op, params_type=step.params_type, arrays=arrays, fields=fields,
                call=call, comment=comment, output=dst,
                output_bytes=model.graph.tensors[step.outputs[0]].nbytes)


def template_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def render_sources(model: CompiledModel) -> dict[str, str]:
    """File name -> text of the generated model library (without kernels)."""
    env = template_env()
    info = model.summary()
    ctx = dict(name=model.name, NAME=model.name.upper(), source=model.graph.path.name,
               input=info["input"], output=info["output"], arena_size=model.plan.arena_size,
               input_offset=model.plan.offsets[model.graph.inputs[0]],
               output_offset=model.plan.offsets[model.graph.outputs[0]],
               op_count=len(model.steps), macs=model.macs,
               steps=[_step_context(model, s) for s in model.steps])
    flat = np.frombuffer(model.graph.flatbuffer, dtype=np.uint8)
    return {
        f"{model.name}.h": env.get_template("model.h.j2").render(ctx),
        f"{model.name}.c": env.get_template("model.c.j2").render(ctx),
        f"{model.name}_tflite.c": env.get_template("tflite.c.j2").render(
            name=model.name, source=model.graph.path.name, length=flat.size, body=c_values(flat, 20)),
        "model.json": json.dumps(info, indent=2) + "\n",
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

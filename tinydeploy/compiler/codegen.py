"""Generate the model library: AOT C for one model, plus the kernels it calls.

Output (in ``out_dir``): ``<name>.h`` (the C API), ``<name>.c`` (weights,
constants, static arena, invoke()), the kernel sources, ``model.json`` (the plan),
``CMakeLists.txt`` and ``tinydeploy.mk`` (the library in the user's build), and
with ``with_flatbuffer`` ``<name>_tflite.c`` (the flatbuffer as an aligned array).
Several models (``write_libraries``) share one kernel set in ``kernels/`` beside
a folder per model, so they link into one image.
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
from tinydeploy.core.errors import BadInput
from tinydeploy.core.resources import KERNELS, TEMPLATES, atomic_dir
from tinydeploy.compiler.plan import ALIGNMENT, MemoryPlan, plan

# The build-system files beside the library: file name -> template.
BUILD_FILES = {"CMakeLists.txt": "library/CMakeLists.txt.j2", "tinydeploy.mk": "library/tinydeploy.mk.j2"}
KERNELS_DIR = "kernels"              # the shared kernel set of a several-model library
KERNELS_TARGET = "td_kernels"        # its CMake target
# Target names CMake reserves (policy CMP0037): a model of that name gets the target <name>_model.
CMAKE_RESERVED_TARGETS = frozenset({"all", "clean", "help", "install", "package", "package_source", "test",
                                    "edit_cache", "rebuild_cache", "list_install_components"})


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

    def write_library(self, out_dir: Path, with_flatbuffer: bool = False) -> Path:
        return write_library(self, out_dir, with_flatbuffer)


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
    pointer_lists = [dict(field=f, addresses=[_arena_address(model, t) for t in tensors])
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
    context = dict(name=model.name, NAME=model.name.upper(), source=model.graph.path.name, runtime=model.runtime,
                   input=info["input"], output=info["output"], arena_size=model.arena_bytes, macs=model.macs,
                   with_flatbuffer=model.runtime == "tflm")     # TFLM's interpreter reads the flatbuffer
    return {**context, **extra}


def flatbuffer_source(graph: Graph) -> str:
    """``<name>_tflite.c``: the flatbuffer as a 16-byte-aligned const array."""
    flat = np.frombuffer(graph.flatbuffer, dtype=np.uint8)
    return template_env().get_template("tflite.c.j2").render(
        name=graph.name, source=graph.path.name, length=flat.size, body=c_values(flat, 20))


def render_sources(model: CompiledModel, with_flatbuffer: bool = False) -> dict[str, str]:
    """File name -> text of the generated model library (without kernels and build files)."""
    env = template_env()
    ctx = header_context(model, input_offset=model.plan.offsets[model.graph.inputs[0]],
                         output_offset=model.plan.offsets[model.graph.outputs[0]], arena_alignment=ALIGNMENT,
                         op_count=len(model.steps), steps=[_step_context(model, s) for s in model.steps],
                         with_flatbuffer=with_flatbuffer)
    sources = {
        f"{model.name}.h": env.get_template("model.h.j2").render(ctx),
        f"{model.name}.c": env.get_template("model.c.j2").render(ctx),
    }
    if with_flatbuffer:
        sources[f"{model.name}_tflite.c"] = flatbuffer_source(model.graph)
    sources["model.json"] = json.dumps(model.summary(), indent=2) + "\n"
    return sources


def kernel_sources() -> list[Path]:
    return sorted(p for p in KERNELS.iterdir() if p.suffix in (".c", ".h"))


def cmake_target(model: CompiledModel) -> str:
    """The model's CMake library target: its name, unless CMake reserves that."""
    return f"{model.name}_model" if model.name in CMAKE_RESERVED_TARGETS else model.name


def build_files(models: list[CompiledModel], sources: dict[str, list[str]], shared_kernels: bool) -> dict[str, str]:
    """File name -> text of the CMake file and the Makefile fragment for ``models``, whose C sources
    (paths relative to the library folder) are ``sources[name]``. With ``shared_kernels`` the kernels
    are one target (td_kernels, TD_KERNELS_SRCS) in kernels/ every model links; else in the model's."""
    kernels = [src.name for src in kernel_sources() if src.suffix == ".c"]
    ctx = dict(summary=(f"{len(models)} tinydeploy model libraries sharing one kernel set" if shared_kernels
                        else f"{models[0].name}: a tinydeploy model library"),
               project="tinydeploy_models" if shared_kernels else models[0].name,
               all_prefix="TINYDEPLOY" if shared_kernels else models[0].name.upper(),
               kernels=dict(dir=KERNELS_DIR, sources=[f"{KERNELS_DIR}/{k}" for k in kernels]) if shared_kernels else None,
               models=[dict(name=m.name, NAME=m.name.upper(), target=cmake_target(m), source=m.graph.path.name,
                            dir=m.name if shared_kernels else "",
                            sources=sources[m.name] + ([] if shared_kernels else kernels)) for m in models])
    env = template_env()
    return {name: env.get_template(template).render(ctx) for name, template in BUILD_FILES.items()}


def check_names(models: list[CompiledModel], shared_kernels: bool) -> None:
    """Refuse models whose files or CMake targets would clash with the kernels' or each other's."""
    taken = {p.stem for p in kernel_sources()} | {KERNELS_TARGET}
    if shared_kernels:
        taken.add(KERNELS_DIR)
    seen: dict[str, Path] = {}
    for m in models:
        if m.name in taken:
            raise BadInput(f"{m.graph.path}: a model named '{m.name}' would clash with tinydeploy's kernels; "
                           "rename the .tflite file")
        if m.name in seen and Path(m.graph.path).resolve() == Path(seen[m.name]).resolve():
            raise BadInput(f"{m.graph.path} is given twice; give each model once")
        if m.name in seen:
            raise BadInput(f"{m.graph.path} and {seen[m.name]} both make a model named '{m.name}'; "
                           "rename one of the .tflite files")
        seen[m.name] = m.graph.path


def write_library(model: CompiledModel, out_dir: Path, with_flatbuffer: bool = False) -> Path:
    """Write the self-contained model library (generated code, kernels, build files) into ``out_dir``."""
    check_names([model], shared_kernels=False)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        files = render_sources(model, with_flatbuffer)
        files.update(build_files([model], {model.name: [n for n in files if n.endswith(".c")]}, shared_kernels=False))
        for name, text in files.items():
            (tmp / name).write_text(text)
        for src in kernel_sources():
            shutil.copy2(src, tmp / src.name)
    return out_dir


def write_libraries(models: list[CompiledModel], out_dir: Path, with_flatbuffer: bool = False) -> Path:
    """Several models for one image: ``kernels/`` (one kernel set), ``<name>/`` per model (its
    generated code), and the build files at the top, into ``out_dir``."""
    check_names(models, shared_kernels=True)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / KERNELS_DIR).mkdir()
        for src in kernel_sources():
            shutil.copy2(src, tmp / KERNELS_DIR / src.name)
        sources = {}
        for model in models:
            (tmp / model.name).mkdir()
            files = render_sources(model, with_flatbuffer)
            for name, text in files.items():
                (tmp / model.name / name).write_text(text)
            sources[model.name] = [f"{model.name}/{n}" for n in files if n.endswith(".c")]
        for name, text in build_files(models, sources, shared_kernels=True).items():
            (tmp / name).write_text(text)
    return out_dir

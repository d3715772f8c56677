"""TensorFlow Lite Micro as the model's runtime: the flatbuffer as a const array, an op
resolver with exactly the model's operator kinds, a static arena sized from the model, and
TFLM itself as two PlatformIO libraries that compile the user's TFLM tree in place.

TFLM comes from a source tree laid out by TFLM's project generator
(``create_tflm_tree.py`` with ``OPTIMIZED_KERNEL_DIR=cmsis_nn``): ``--tflm DIR`` or the
``TINYDEPLOY_TFLM`` environment variable. tinydeploy never copies it: the generated
``library.json`` files point at it, and PlatformIO's build cache keeps its objects per board
and flags, so only the first build for a board compiles TFLM's ~300 sources.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tinydeploy.core.errors import BadInput, MissingTool
from tinydeploy.core.resources import atomic_dir
from tinydeploy.ir import graph as graph_mod
from tinydeploy.ir.graph import Graph

TFLM_ENV = "TINYDEPLOY_TFLM"
RESOLVER_HEADER = Path("tensorflow/lite/micro/micro_mutable_op_resolver.h")
INTERPRETER_HEADER = Path("tensorflow/lite/micro/micro_interpreter.h")

# The arena is TFLM's arena_used_bytes as the reference interpreter records it on this host (a
# 64-bit build, whose interpreter state is larger than on a 32-bit core) plus this margin, so the
# firmware's own figure (reported by the run) is always the smaller one.
ARENA_MARGIN_FRACTION = 0.10
ARENA_MARGIN_MIN_BYTES = 1024
ARENA_ALIGNMENT = 16

# How TFLM is compiled (its README's measured configuration): the defines the application that
# includes TFLM's headers must share (TF_LITE_STATIC_MEMORY changes struct layouts), the include
# paths under the tree, and the optimisation level of each of the two libraries.
DEFINES = ("TF_LITE_STATIC_MEMORY", "TF_LITE_DISABLE_X86_NEON", "TF_LITE_MCU_DEBUG_LOG", "PROJECT_GENERATION",
           "CMSIS_NN", "KERNELS_OPTIMIZED_FOR_SPEED", "ARM_NN_ENABLE_F16=0", "ARM_NN_ENABLE_F32=0")
INCLUDE_DIRS = (".", "third_party/gemmlowp", "third_party/flatbuffers/include", "third_party/kissfft",
                "third_party/kissfft/tools", "third_party/ruy", "third_party/cmsis",
                "third_party/cmsis/CMSIS/Core/Include", "third_party/cmsis_nn", "third_party/cmsis_nn/Include")
LIBRARY_FLAGS = ("-funsigned-char",)
KERNELS_DIR = "tensorflow/lite/micro/kernels"
CMSIS_NN_SOURCES = "third_party/cmsis_nn/Source"
# Sources only TFLM's own unit tests use: never part of firmware.
TEST_ONLY_SOURCES = ("tensorflow/lite/micro/test_helpers.cc", "tensorflow/lite/micro/test_helper_custom_ops.cc",
                     "tensorflow/lite/micro/mock_micro_graph.cc", "tensorflow/lite/micro/fake_micro_context.cc",
                     f"{KERNELS_DIR}/kernel_runner.cc")
LIBRARIES = {"tflm-core": "-Os", "tflm-kernels": "-O2"}      # library folder -> optimisation
LINK_LIBS = ("-lstdc++", "-lm")
_REGISTRATION = re.compile(r"TFLMRegistration\s*\*?\s*Register_(\w+)\s*\(\s*\)\s*\{")


def find_tree(tflm_dir: str | Path | None = None) -> Path:
    """The TFLM source tree to build with: ``tflm_dir``, else $TINYDEPLOY_TFLM; checked for its layout."""
    given = tflm_dir or os.environ.get(TFLM_ENV)
    if not given:
        raise MissingTool(f"--runtime tflm needs TensorFlow Lite Micro's sources: pass --tflm DIR or set {TFLM_ENV} "
                          "to a tree made by tflite-micro's create_tflm_tree.py (see the README, 'TFLite Micro')")
    tree = Path(given).expanduser().resolve()
    for needed in (RESOLVER_HEADER, INTERPRETER_HEADER, Path("third_party/cmsis_nn/Include")):
        if not (tree / needed).exists():
            raise BadInput(f"{tree}: not a TFLite Micro tree (no {needed}); point --tflm or {TFLM_ENV} at the "
                           "output of tflite-micro's create_tflm_tree.py with OPTIMIZED_KERNEL_DIR=cmsis_nn")
    return tree


def resolver_methods(tree: Path) -> dict[str, str]:
    """Builtin operator name (normalised: upper case, no underscores) -> MicroMutableOpResolver method."""
    text = (tree / RESOLVER_HEADER).read_text(errors="replace")
    return {m[3:].upper(): m for m in re.findall(r"TfLiteStatus (Add\w+)\(", text)}


def _normalised(op_name: str) -> str:
    return op_name.replace("_", "").upper()


def supports(graph: Graph, tree: Path) -> list[str]:
    """The graph's operator kinds this TFLM tree has no kernel for (empty: it runs them all)."""
    methods = resolver_methods(tree)
    return sorted({op.op for op in graph.operators if _normalised(op.op) not in methods})


def op_registrations(graph: Graph, tree: Path) -> list[str]:
    """The resolver calls for the model's operator kinds, in first-use order; refuses unknown ones."""
    missing = supports(graph, tree)
    if missing:
        raise BadInput(f"{graph.path}: TensorFlow Lite Micro in {tree} has no kernel for {', '.join(missing)}")
    methods = resolver_methods(tree)
    return list(dict.fromkeys(methods[_normalised(op.op)] for op in graph.operators))


def arena_size(graph: Graph) -> tuple[int, dict[str, int]]:
    """The tensor arena to reserve and the reference interpreter's recorded use it was sized from."""
    from tinydeploy.verify import reference
    usage = reference.try_arena_usage(graph.flatbuffer)
    if not usage or "total" not in usage:
        raise BadInput(f"{graph.path}: the TFLite Micro reference interpreter cannot allocate this model, "
                       "so TFLM firmware would not run it either; check the model with `tinydeploy inspect`")
    return with_margin(usage["total"]), usage


def with_margin(used: int) -> int:
    """The arena to reserve for ``used`` bytes: the stated margin added, rounded up to the alignment."""
    margin = max(ARENA_MARGIN_MIN_BYTES, math.ceil(used * ARENA_MARGIN_FRACTION))
    return aligned(used + margin)


def aligned(size: int) -> int:
    return -(-size // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


@dataclass
class TflmModel:
    """A model that runs on TensorFlow Lite Micro: what rendering a project for it needs."""
    graph: Graph
    tree: Path
    ops: list[str]                      # MicroMutableOpResolver calls
    arena_bytes: int                    # the static tensor arena reserved in the firmware
    reference_usage: dict[str, int]     # arena_used_bytes etc. recorded by the reference interpreter
    runtime: str = field(default="tflm", init=False)
    steps: list = field(default_factory=list, init=False)     # no per-operator code: no layer profile

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def weight_bytes(self) -> int:
        """Flash the model itself takes: the whole flatbuffer (weights, graph and metadata)."""
        return len(self.graph.flatbuffer)

    @property
    def macs(self) -> int:
        from tinydeploy.compiler import ops as op_registry
        return sum(op_registry.macs(self.graph, op) for op in self.graph.operators)     # 0 for ops tinydeploy lacks

    def summary(self) -> dict:
        from tinydeploy.compiler.codegen import io_summary
        return {"name": self.name, "source": str(self.graph.path), "runtime": self.runtime,
                "input": io_summary(self.graph.input_tensor()), "output": io_summary(self.graph.output_tensor()),
                "arena_bytes": self.arena_bytes, "weight_bytes": self.weight_bytes, "macs": self.macs,
                "tflm": {"tree": str(self.tree), "resolver": self.ops, "reference_arena": self.reference_usage},
                "ops": [{"index": op.index, "op": op.op} for op in self.graph.operators]}

    def write_library(self, out_dir: Path) -> Path:
        """The model library (same C API as the AOT one) for the project's lib/<name>/."""
        from tinydeploy.compiler.codegen import flatbuffer_source, header_context, template_env
        env = template_env()
        ctx = header_context(self, op_count=len(self.graph.operators), ops=self.ops)
        with atomic_dir(out_dir) as tmp:
            (tmp / f"{self.name}.h").write_text(env.get_template("model.h.j2").render(ctx))
            (tmp / f"{self.name}.cc").write_text(env.get_template("tflm_model.cc.j2").render(ctx))
            (tmp / f"{self.name}_tflite.c").write_text(flatbuffer_source(self.graph))
            (tmp / "model.json").write_text(json.dumps(self.summary(), indent=2) + "\n")
        return out_dir


def load(path: str | Path, tflm_dir: str | Path | None = None) -> TflmModel:
    """A .tflite ready to render as TFLM firmware (raises TinyDeployError on bad input or no TFLM)."""
    tree = find_tree(tflm_dir)
    graph = graph_mod.load(path)
    ops = op_registrations(graph, tree)
    size, usage = arena_size(graph)
    return TflmModel(graph, tree, ops, size, usage)


def build_flags(tree: Path) -> list[str]:
    """platformio.ini build_flags a TFLM project needs: the shared defines, include paths, C++ libraries."""
    return ([f"-D{d}" for d in DEFINES] + [f"-I{tree / d}" for d in INCLUDE_DIRS]
            + list(LINK_LIBS))


def kernel_sources(tree: Path, op_names: set[str]) -> list[str]:
    """The kernel sources (relative to ``tree``) a model with ``op_names`` needs: each file that
    defines a used op's registration (CMSIS-NN's where the generator put one) and every helper that
    registers nothing (``*_common.cc`` files serve other families too: depthwise needs conv's).
    Kernels of operators the model does not use are not even compiled."""
    sources = sorted((tree / KERNELS_DIR).rglob("*.cc"))
    chosen = []
    for src in sources:
        registered = set(_REGISTRATION.findall(src.read_text(errors="replace")))
        rel = str(src.relative_to(tree))
        if (not registered or registered & op_names) and rel not in TEST_ONLY_SOURCES:
            chosen.append(rel)
    return chosen


def check_board(tree: Path, board) -> None:
    """Refuse, before rendering, a board this tree's kernels cannot build for: CMSIS-NN is Arm-only."""
    if (tree / KERNELS_DIR / "cmsis_nn").is_dir() and board.arch != "arm":
        raise BadInput(f"{board.name} ({board.core}, {board.arch}): the TFLite Micro tree {tree} has CMSIS-NN kernels, "
                       "which build only for Arm cores; for this board generate a tree with create_tflm_tree.py "
                       "without OPTIMIZED_KERNEL_DIR (reference kernels) or with its own (esp_nn for ESP32)")


def write_libraries(model: TflmModel, lib_dir: Path) -> None:
    """lib/tflm-core and lib/tflm-kernels: library.json files that compile the TFLM tree in place,
    the core (interpreter, allocator, flatbuffer reader) at -Os and the model's kernels with
    CMSIS-NN at -O2, as TFLM's own makefiles do."""
    tree = model.tree
    version = (tree / "VERSIONS.txt").read_text().split()[0] if (tree / "VERSIONS.txt").exists() else "unknown"
    op_names = {op.op for op in model.graph.operators}
    filters = {
        "tflm-core": ["+<tensorflow/>", f"-<{KERNELS_DIR}/>"] + [f"-<{s}>" for s in TEST_ONLY_SOURCES],
        "tflm-kernels": [f"+<{s}>" for s in kernel_sources(tree, op_names)] + [f"+<{CMSIS_NN_SOURCES}/>"],
    }
    for name, optimisation in LIBRARIES.items():
        manifest = {
            "name": name, "version": "0.0.0", "description": f"TensorFlow Lite Micro ({version}) from {tree}",
            "build": {"srcDir": str(tree), "includeDir": str(tree), "srcFilter": filters[name],
                      "flags": [optimisation, *LIBRARY_FLAGS], "libArchive": True},
        }
        (lib_dir / name).mkdir(parents=True)
        (lib_dir / name / "library.json").write_text(json.dumps(manifest, indent=2) + "\n")


# ---- emulated boards: TFLM compiled once per core and flags into an object cache, linked as an archive ----

ARCHIVE_DIR = "tflm"                     # in the project: libtflm.a, the objects this model links
ARCHIVE_NAME = "tflm"
CXX_FLAGS = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")
C_FLAGS = ("-std=c11",)
SECTION_FLAGS = ("-ffunction-sections", "-fdata-sections")


def _sources(model: TflmModel) -> dict[str, str]:
    """Every TFLM source the model's firmware needs (relative path -> optimisation level)."""
    tree = model.tree
    core = sorted(str(p.relative_to(tree)) for p in (tree / "tensorflow").rglob("*.cc")
                  if not str(p.relative_to(tree)).startswith(KERNELS_DIR + "/"))
    kernels = kernel_sources(tree, {op.op for op in model.graph.operators})
    cmsis = sorted(str(p.relative_to(tree)) for p in (tree / CMSIS_NN_SOURCES).rglob("*.c"))
    chosen = {s: LIBRARIES["tflm-core"] for s in core if s not in TEST_ONLY_SOURCES}
    chosen.update({s: LIBRARIES["tflm-kernels"] for s in kernels + cmsis})
    return chosen


def _compile_command(compiler_prefix: str, cpu_flags: list[str], tree: Path, source: str, optimisation: str,
                     obj: Path) -> list[str]:
    cxx = source.endswith(".cc")
    return [compiler_prefix + ("g++" if cxx else "gcc"), *cpu_flags, optimisation, *SECTION_FLAGS,
            *(CXX_FLAGS if cxx else C_FLAGS), *LIBRARY_FLAGS, *(f"-D{d}" for d in DEFINES),
            *(f"-I{tree / d}" for d in INCLUDE_DIRS), "-c", str(tree / source), "-o", str(obj)]


@functools.lru_cache(maxsize=None)
def _compiler_version(compiler: str) -> str:
    """``compiler``'s full version, asked once per process (the object cache and the arena record both key on it)."""
    import subprocess
    return subprocess.run([compiler, "-dumpfullversion"], capture_output=True, text=True).stdout.strip()


def build_key(tree: Path, compiler_prefix: str, cpu_flags: list[str]) -> str:
    """What TFLM's objects depend on, hashed: the tree, the compiler's version and every flag."""
    import hashlib
    import shutil
    compiler = compiler_prefix + "g++"
    if shutil.which(compiler) is None:
        raise MissingTool(f"{compiler} is not installed; run `tinydeploy doctor`")
    flavour = json.dumps([str(tree), _compiler_version(compiler), cpu_flags, DEFINES, INCLUDE_DIRS, LIBRARY_FLAGS, CXX_FLAGS,
                          C_FLAGS, SECTION_FLAGS])
    return hashlib.sha256(flavour.encode()).hexdigest()[:16]


def target_arena_file(model: TflmModel, compiler_prefix: str, cpu_flags: list[str]) -> Path:
    """Where the arena TFLM used for ``model`` on a core (built with these flags) is recorded."""
    import hashlib
    from tinydeploy.core.resources import build_cache_dir
    model_key = hashlib.sha256(model.graph.flatbuffer).hexdigest()[:16]
    return build_cache_dir() / "tflm-arena" / f"{build_key(model.tree, compiler_prefix, cpu_flags)}-{model_key}.json"


def build_archive(model: TflmModel, compiler_prefix: str, cpu_flags: list[str], project: Path,
                  say=None) -> Path:
    """``project``/tflm/libtflm.a with the objects the model links, compiled from the TFLM tree into a
    cache keyed by the tree, the compiler and the flags: the first model for a core compiles TFLM's
    core and CMSIS-NN (minutes), later ones only kernels not compiled before (seconds)."""
    import concurrent.futures
    import fcntl
    import subprocess
    import tempfile
    from tinydeploy.core.errors import TinyDeployError
    from tinydeploy.core.resources import build_cache_dir
    objects = build_cache_dir() / "tflm-objects" / build_key(model.tree, compiler_prefix, cpu_flags)
    objects.mkdir(parents=True, exist_ok=True)
    sources = _sources(model)
    wanted = {src: objects / (src.replace("/", "__") + f"{opt}.o") for src, opt in sources.items()}

    def compile_one(src: str) -> None:
        fd, tmp = tempfile.mkstemp(suffix=".o", dir=objects)
        os.close(fd)
        proc = subprocess.run(_compile_command(compiler_prefix, cpu_flags, model.tree, src, sources[src], Path(tmp)),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            os.unlink(tmp)
            detail = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip()[-300:])
            raise TinyDeployError(f"{model.tree / src}: TensorFlow Lite Micro does not compile: {detail}")
        os.replace(tmp, wanted[src])

    with open(objects / ".lock", "w") as lock:     # one compiler pass per cache at a time (xdist, CI jobs)
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [src for src, obj in wanted.items() if not obj.exists()]
        if missing and say:
            say(f"compiling TensorFlow Lite Micro for {' '.join(cpu_flags)}: {len(missing)} of {len(wanted)} "
                f"sources (cached in {objects})")
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(compile_one, missing))
    archive_dir = project / ARCHIVE_DIR
    archive_dir.mkdir(parents=True, exist_ok=True)
    archive = archive_dir / f"lib{ARCHIVE_NAME}.a"
    subprocess.run([compiler_prefix + "ar", "rcs", str(archive), *map(str, wanted.values())], check=True)
    return archive


def archive_flags(tree: Path) -> list[str]:
    """platformio.ini build_flags of a project that links the prebuilt archive: TFLM's defines and
    include paths (for the model's .cc), the archive and the C++ runtime libraries."""
    return ([f"-D{d}" for d in DEFINES] + [f"-I{tree / d}" for d in INCLUDE_DIRS]
            + [f"-L$PROJECT_DIR/{ARCHIVE_DIR}", f"-l{ARCHIVE_NAME}"] + list(LINK_LIBS))

"""The stages strung together: model -> project -> ELF -> run -> verified result.

These are the functions the CLI calls; they take paths and names and return
dataclasses, so a script or a notebook can call them the same way.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tinydeploy.compiler.codegen import CompiledModel, write_libraries
from tinydeploy.core.errors import BadInput, TinyDeployError
from tinydeploy.platforms import boards
from tinydeploy.platforms.base import SizeReport
from tinydeploy.platforms.boards import Board
from tinydeploy.platforms.registry import platform_for
from tinydeploy.runtimes import load_model
from tinydeploy.runtimes.tflm import TflmModel
from tinydeploy.verify import reference
from tinydeploy.verify import vectors as vectors_mod
from tinydeploy.verify.compare import RunResult, run_and_verify

PROBE_RAM_SHARE = 4                # TFLM's arena probe: the reference's arena plus RAM / 4
PROBE_TIMEOUT_S = 60.0


@dataclass
class Firmware:
    model: CompiledModel | TflmModel
    board: Board                       # the board the image is built for (an emulated proxy, for `run`)
    project: Path
    elf: Path | None                   # None: rendered for a real board this machine cannot build for
    size: SizeReport | None
    vector_origin: str
    vector_bytes: int                  # test vectors baked into flash
    reference_arena: int | None        # TFLite Micro's tensor arena for the same model, when it can run it
    stands_in_for: Board | None = None  # the real board whose clock the emulated proxy's counts are scaled to

    @property
    def code_bytes(self) -> int:
        """Flash that is neither weights nor test vectors: kernels, runtime, startup, op parameters."""
        return self.size.flash - self.model.weight_bytes - self.vector_bytes

    @property
    def clock_board(self) -> Board:
        """The board whose clock turns instruction counts into an estimated time."""
        return self.stands_in_for or self.board


def convert_models(model_paths: list[str | Path], out_dir: Path, runtime: str = "aot",
                   tflm_dir: str | Path | None = None, with_flatbuffer: bool = False,
                   say=None) -> list[CompiledModel | TflmModel]:
    """Write the C library of one model, or of several sharing one kernel set (AOT only), into ``out_dir``.

    ``with_flatbuffer`` adds ``<name>_tflite.c`` to an AOT library (TFLite Micro's always has it)."""
    models = [load_model(path, runtime, tflm_dir, say) for path in model_paths]
    if len(models) == 1:
        model = models[0]
        if model.runtime == "tflm":
            model.write_library(out_dir)
        else:
            model.write_library(out_dir, with_flatbuffer)
        return models
    on_tflm = [m for m in models if m.runtime == "tflm"]
    if on_tflm:
        raise BadInput(f"{on_tflm[0].graph.path}: several models in one library need the AOT runtime (their "
                       "kernels are shared); convert a TFLite Micro model on its own")
    write_libraries(models, out_dir, with_flatbuffer)
    return models


def default_project_dir(model_path: Path, board: str, runtime: str = "aot") -> Path:
    suffix = "" if runtime == "aot" else f"-{runtime}"
    return Path("build") / f"{Path(model_path).stem}-{board}{suffix}"


def build_firmware(model_path: str | Path, board_name: str, out_dir: Path | None = None, vectors: int = 50,
                   profile: bool = False, testset: bool = True, build: bool = True, runtime: str = "aot",
                   tflm_dir: str | Path | None = None, say=None) -> Firmware:
    """Compile the model, render the project for the board and build it with PlatformIO.

    ``profile`` adds per-operator timing; ``testset=False`` ignores a saved test split
    and bakes in the xorshift32 inputs (what benchmarks use); ``build=False`` only
    renders (a real board whose platform is missing here can still be read over serial).
    ``runtime``: aot, tflm (TFLite Micro from ``tflm_dir`` or $TINYDEPLOY_TFLM) or auto;
    ``say`` hears which runtime auto chose and why."""
    board = boards.get(board_name)
    platform = platform_for(board)
    model = load_model(model_path, runtime, tflm_dir, say)
    if model.runtime == "tflm" and profile:
        raise BadInput(f"{model_path}: --per-layer needs --runtime aot (TFLite Micro's firmware is not profiled per operator)")
    vecs = vectors_mod.load(Path(model_path), model.graph, vectors, testset)
    project = Path(out_dir) if out_dir else default_project_dir(Path(model_path), board.name, model.runtime)
    if model.runtime == "tflm" and build and platform.emulation_target() is board:
        model = tflm_arena_on_target(model, board, project, say)
    platform.render(model, vecs, project, profile)
    elf = platform.build(project) if build else None
    size = platform.size(project, elf) if elf else None
    return Firmware(model, board, project, elf, size, vecs.origin, vecs.inputs.nbytes,
                    (reference.try_arena_usage(model.graph.flatbuffer) or {}).get("head"))


def tflm_arena_on_target(model: TflmModel, board: Board, project: Path, say=None) -> TflmModel:
    """``model`` with an arena large enough for what TFLite Micro allocates on ``board``'s core, which can
    exceed the host reference's figure: CMSIS-NN's Helium kernels keep per-channel kernel sums, its DSP
    kernels im2col buffers. Measured once per model, TFLM tree, compiler and core flags: a one-vector
    probe image with a quarter of the board's RAM added to the arena runs in the emulator and reports its
    arena_used_bytes; the result is cached. The reserve stays the reference's when that is larger."""
    import json
    import shutil
    from tinydeploy.core.resources import atomic_write
    from tinydeploy.runtimes import tflm
    platform = platform_for(board)
    probe_arena = tflm.aligned(model.arena_bytes + board.ram.size // PROBE_RAM_SHARE)
    if probe_arena > board.ram.size:
        return model                   # no probe image fits: the build itself says whether the model does
    record = tflm.target_arena_file(model, platform.arch.toolchain_prefix, platform.cpu_flags)
    if record.exists():
        used = json.loads(record.read_text())["arena_used"]
    else:
        probe = dataclasses.replace(model, arena_bytes=probe_arena)
        probe_dir = project.parent / f".{project.name}.arena-probe"
        try:
            platform.render(probe, vectors_mod.load(Path(model.graph.path), model.graph, 1, False), probe_dir)
            with platform.open_transport(platform.build(probe_dir)) as target:
                used = run_and_verify(probe_dir, target, PROBE_TIMEOUT_S).arena_used
            if used is None:
                raise TinyDeployError("the probe firmware reported no arena figure")
        except TinyDeployError as exc:
            if say:
                say(f"could not measure TensorFlow Lite Micro's arena on {board.name} ({exc}); reserving the "
                    f"reference interpreter's figure plus the margin, {model.arena_bytes:,} bytes")
            return model
        finally:
            shutil.rmtree(probe_dir, ignore_errors=True)
        record.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(record, json.dumps({"arena_used": used, "board": board.name, "model": str(model.graph.path)}))
    return dataclasses.replace(model, arena_bytes=max(model.arena_bytes, tflm.with_margin(used)))


def build_for_emulation(model_path: str | Path, board_name: str, out_dir: Path | None = None, vectors: int = 50,
                        **options) -> Firmware:
    """Firmware that runs in an emulator for ``board_name``: the board itself, or its emulated proxy
    with the same core (then the counts are scaled to the real board's clock)."""
    board = boards.get(board_name)
    target = platform_for(board).emulation_target()
    if target is board:
        return build_firmware(model_path, board.name, out_dir, vectors, **options)
    if out_dir is None:
        out_dir = default_project_dir(Path(model_path), f"{board.name}-via-{target.name}")
    try:
        fw = build_firmware(model_path, target.name, out_dir, vectors, **options)
    except TinyDeployError as exc:
        raise type(exc)(f"{board.name} runs here as its emulated proxy {target.name}: {exc}", exc.exit_code) from None
    fw.stands_in_for = board
    return fw


def run_firmware(firmware: Firmware, port: str | None = None, baudrate: int = 115200, timeout: float = 120.0,
                 emulator: str = "qemu") -> RunResult:
    """Run the test firmware in the board's emulator (or on the board at ``port``) and verify it."""
    target = platform_for(firmware.board).open_transport(firmware.elf, port=port, baudrate=baudrate, emulator=emulator)
    with target:
        return run_and_verify(firmware.project, target, timeout)


def flash_firmware(model_path: str | Path, board_name: str, out_dir: Path | None = None, vectors: int = 50,
                   port: str | None = None) -> Firmware:
    """Build the project for a real board and upload it with PlatformIO (`pio run -t upload`)."""
    board = boards.get(board_name)
    platform = platform_for(board)
    platform.check_flashable()
    fw = build_firmware(model_path, board.name, out_dir, vectors)
    platform.flash(fw.project, port)
    return fw


def firmware_for_run(model_path: str | Path, board_name: str, out_dir: Path | None = None, vectors: int = 50,
                     port: str | None = None, **options) -> Firmware:
    """What `run` runs: with ``port``, the project for the board itself (flashed earlier; rendered for its
    manifest and vectors, and built when this machine can); without, firmware for its emulator."""
    if not port:
        return build_for_emulation(model_path, board_name, out_dir, vectors, **options)
    board = boards.get(board_name)
    return build_firmware(model_path, board.name, out_dir, vectors, build=platform_for(board).can_build_here(), **options)

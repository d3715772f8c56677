"""The stages strung together: model -> project -> ELF -> run -> verified result.

These are the functions the CLI calls; they take paths and names and return
dataclasses, so a script or a notebook can call them the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinydeploy.compiler.codegen import CompiledModel
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
    platform.render(model, vecs, project, profile)
    elf = platform.build(project) if build else None
    size = platform.size(project, elf) if elf else None
    return Firmware(model, board, project, elf, size, vecs.origin, vecs.inputs.nbytes,
                    (reference.try_arena_usage(model.graph.flatbuffer) or {}).get("head"))


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

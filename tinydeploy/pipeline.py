"""The stages strung together: model -> project -> ELF -> run -> verified result.

These are the functions the CLI calls; they take paths and names and return
dataclasses, so a script or a notebook can call them the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import boards, build as build_mod, reference, render, vectors as vectors_mod
from .boards import Board
from .build import SizeReport
from .codegen import CompiledModel, compile_model
from .targets import QemuTarget, SerialTarget
from .verify import RunResult, run_and_verify


@dataclass
class Firmware:
    model: CompiledModel
    board: Board
    project: Path
    elf: Path
    size: SizeReport
    vector_origin: str
    vector_bytes: int                  # test vectors baked into flash
    reference_arena: int | None        # TFLite Micro's tensor arena for the same model, when it can run it

    @property
    def code_bytes(self) -> int:
        """Flash that is neither weights nor test vectors: kernels, runtime, startup, op parameters."""
        return self.size.flash - self.model.weight_bytes - self.vector_bytes


def default_project_dir(model_path: Path, board: str) -> Path:
    return Path("build") / f"{Path(model_path).stem}-{board}"


def build_firmware(model_path: str | Path, board_name: str, out_dir: Path | None = None, vectors: int = 50,
                   profile: bool = False, testset: bool = True) -> Firmware:
    """Compile the model, render the project for the board and build it with PlatformIO.

    ``profile`` adds per-operator timing; ``testset=False`` ignores a saved test split
    and bakes in the xorshift32 inputs (what benchmarks use)."""
    board = boards.get(board_name)
    model = compile_model(model_path)
    vecs = vectors_mod.load(Path(model_path), model.graph, vectors, testset)
    project = Path(out_dir) if out_dir else default_project_dir(Path(model_path), board.name)
    render.render_project(model, board, vecs, project, profile)
    elf = build_mod.build_project(project, board)
    return Firmware(model, board, project, elf, build_mod.elf_size(elf, board), vecs.origin, vecs.inputs.nbytes,
                    (reference.try_arena_usage(model.graph.flatbuffer) or {}).get("head"))


def run_firmware(firmware: Firmware, port: str | None = None, baudrate: int = 115200, timeout: float = 120.0) -> RunResult:
    """Run the test firmware in the board's emulator (or on the board at ``port``) and verify it."""
    target = SerialTarget(port, baudrate) if port else QemuTarget(firmware.board, firmware.elf)
    with target:
        return run_and_verify(firmware.project, target, timeout)

"""Render a PlatformIO firmware project for one model on one board: the parts every
platform shares (model library, test vectors, runtime, manifest), with the board-specific
files (platformio.ini, start-up code, linker script, ...) written by the board's platform."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import jinja2
import numpy as np

from tinydeploy.platforms.boards import Board
from tinydeploy.compiler.codegen import CompiledModel, c_values, template_env
from tinydeploy.core.errors import BadInput
from tinydeploy.core.resources import FIRMWARE, atomic_dir, hold_project
from tinydeploy.runtimes import tflm
from tinydeploy.verify.vectors import Vectors

MANIFEST = "tinydeploy.json"

# Writes a platform's own files into the new project (templates environment, template context,
# project directory) and returns the board-support sources to copy into src/.
BoardFiles = Callable[[jinja2.Environment, dict, Path], list[Path]]


def fit_check(model: CompiledModel, board: Board, vectors: Vectors) -> dict:
    """Bytes the model needs against what the board has; raises if it can't fit."""
    output_copy = model.graph.output_tensor().nbytes      # main.c's output buffer
    ram = model.arena_bytes + output_copy + board.stack
    flash = model.weight_bytes + vectors.inputs.nbytes
    if ram > board.ram.size:
        raise BadInput(
            f"{model.graph.path}: needs {ram} bytes of RAM (arena {model.arena_bytes} + output copy "
            f"{output_copy} + stack {board.stack}) but {board.name} has {board.ram.size}; "
            "pick a board with more RAM or a smaller model")
    if flash > board.flash.size:
        raise BadInput(
            f"{model.graph.path}: needs at least {flash} bytes of flash (weights {model.weight_bytes} + test "
            f"vectors {vectors.inputs.nbytes}) but {board.name} has {board.flash.size}; "
            "pick a board with more flash, fewer --vectors, or a smaller model")
    return {"ram_needed": ram, "flash_needed_min": flash}


def render_project(model: CompiledModel, board: Board, vectors: Vectors, out_dir: Path, profile: bool,
                   board_files: BoardFiles) -> Path:
    """Write the complete project into ``out_dir`` (replacing it atomically).

    ``board_files`` is the platform's part (Platform.render passes it); ``profile`` is recorded
    in the manifest (what it changes in the build is the platform's business)."""
    fit_check(model, board, vectors)
    if model.runtime == "tflm":
        tflm.check_board(model.tree, board)
    hold_project(out_dir)        # until the run ends (verify.compare) or the process does: one tinydeploy per project
    env = template_env()
    fingerprint = vectors.fingerprint(model.graph.flatbuffer)
    ctx = dict(model=model.name, MODEL=model.name.upper(), runtime=model.runtime, board=board, stack_size=board.stack,
               count=len(vectors.inputs), size=vectors.inputs[0].nbytes, fingerprint=fingerprint,
               origin=vectors.origin, rows=[c_values(row.view(np.int8)) for row in vectors.inputs], io=model.summary())
    with atomic_dir(out_dir) as tmp:
        (tmp / "src").mkdir()
        board_support = board_files(env, ctx, tmp)
        (tmp / "src" / "td_vectors.h").write_text(env.get_template("vectors.h.j2").render(ctx))
        (tmp / "src" / "td_vectors.c").write_text(env.get_template("vectors.c.j2").render(ctx))
        for src in board_support + sorted((FIRMWARE / "runtime").iterdir()):
            shutil.copy2(src, tmp / "src" / src.name)
        model.write_library(tmp / "lib" / model.name)
        if model.runtime == "tflm" and not (tmp / tflm.ARCHIVE_DIR).is_dir():   # no prebuilt archive: from source
            tflm.write_libraries(model, tmp / "lib")
        np.savez(tmp / "vectors.npz", x=vectors.inputs,
                 y=vectors.labels if vectors.labels is not None else np.zeros(0, np.int64))
        manifest = dict(model=model.summary(), board=board.name, fingerprint=fingerprint,
                        vectors=len(vectors.inputs), vector_origin=vectors.origin, profile=profile,
                        model_path=str(Path(model.graph.path).resolve()))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        previous_build = Path(out_dir) / ".pio"
        if previous_build.is_dir():      # keep PlatformIO's objects: unchanged sources are not recompiled
            previous_build.rename(tmp / ".pio")
    return out_dir

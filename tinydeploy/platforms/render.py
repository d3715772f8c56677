"""Render a PlatformIO firmware project for one model on one board."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from tinydeploy.platforms.boards import Board
from tinydeploy.compiler.codegen import CompiledModel, c_values, template_env, write_library
from tinydeploy.core.errors import TinyDeployError
from tinydeploy.core.resources import FIRMWARE, atomic_dir
from tinydeploy.verify.vectors import Vectors

MANIFEST = "tinydeploy.json"
PLATFORM_DIR = FIRMWARE / "platform"


def fit_check(model: CompiledModel, board: Board, vectors: Vectors) -> dict:
    """Bytes the model needs against what the board has; raises if it can't fit."""
    output_copy = model.graph.output_tensor().nbytes      # main.c's output buffer
    ram = model.plan.arena_size + output_copy + board.stack
    flash = model.weight_bytes + vectors.inputs.nbytes
    if ram > board.ram.size:
        raise TinyDeployError(
            f"{model.graph.path}: needs {ram} bytes of RAM (arena {model.plan.arena_size} + output copy "
            f"{output_copy} + stack {board.stack}) but {board.name} has {board.ram.size}; "
            "pick a board with more RAM or a smaller model")
    if flash > board.flash.size:
        raise TinyDeployError(
            f"{model.graph.path}: needs at least {flash} bytes of flash (weights {model.weight_bytes} + test "
            f"vectors {vectors.inputs.nbytes}) but {board.name} has {board.flash.size}; "
            "pick a board with more flash, fewer --vectors, or a smaller model")
    return {"ram_needed": ram, "flash_needed_min": flash}


def render_project(model: CompiledModel, board: Board, vectors: Vectors, out_dir: Path, profile: bool = False) -> Path:
    """Write the complete project into ``out_dir`` (replacing it atomically).

    An emulated board gets tinydeploy's start-up code, drivers and linker script
    for the offline local platform; a real board gets an Arduino project for its
    PlatformIO platform. ``profile`` times every operator (TD LAYERS lines)."""
    fit_check(model, board, vectors)
    env = template_env()
    fingerprint = vectors.fingerprint(model.graph.flatbuffer)
    ctx = dict(model=model.name, MODEL=model.name.upper(), board=board, stack_size=board.stack,
               count=len(vectors.inputs), size=vectors.inputs[0].nbytes, fingerprint=fingerprint,
               origin=vectors.origin, rows=[c_values(row.view(np.int8)) for row in vectors.inputs], io=model.summary())
    with atomic_dir(out_dir) as tmp:
        (tmp / "src").mkdir()
        if board.emulated:
            ctx.update(platform=f"symlink://{PLATFORM_DIR}", pio_board=f"td-{board.name}",
                       build_flags=board.defines + (["-DTD_PROFILE"] if profile else []),
                       toolchain=board.toolchain_prefix, cpu_flags=board.cpu_flags, link_flags=board.link_flags)
            (tmp / "boards").mkdir()
            (tmp / "platformio.ini").write_text(env.get_template("platformio.ini.j2").render(ctx))
            (tmp / "boards" / f"td-{board.name}.json").write_text(env.get_template("board.json.j2").render(ctx))
            linker = "linker_riscv.ld.j2" if board.arch == "riscv" else "linker.ld.j2"
            (tmp / "linker.ld").write_text(env.get_template(linker).render(ctx))
            (tmp / "src" / "main.c").write_text(env.get_template("main.c.j2").render(ctx))
            board_support = sorted((FIRMWARE / "bsp").iterdir())
        else:
            (tmp / "platformio.ini").write_text(env.get_template("arduino/platformio.ini.j2").render(ctx))
            (tmp / "src" / "main.cpp").write_text(env.get_template("arduino/main.cpp.j2").render(ctx))
            board_support = [FIRMWARE / "bsp" / "td_board.h"]         # the glue in main.cpp implements it
        (tmp / "src" / "td_vectors.h").write_text(env.get_template("vectors.h.j2").render(ctx))
        (tmp / "src" / "td_vectors.c").write_text(env.get_template("vectors.c.j2").render(ctx))
        for src in board_support + sorted((FIRMWARE / "runtime").iterdir()):
            shutil.copy2(src, tmp / "src" / src.name)
        write_library(model, tmp / "lib" / model.name)
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

"""The converted C library in a firmware engineer's own build: a CMake and a Makefile project outside
tinydeploy, each built with arm-none-eabi-gcc from the library's own build files; two models in one
image (one kernel set), both verified in QEMU byte for byte against the reference interpreter; the
arena placed by macros or passed in by the application; the flatbuffer only when asked for."""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest

from tinydeploy.compiler.codegen import CompiledModel, compile_model, template_env
from tinydeploy.core.resources import FIRMWARE
from tinydeploy.platforms import boards
from tinydeploy.platforms.emulated import EmulatedPlatform
from tinydeploy.platforms.targets import QemuTarget, Target
from tinydeploy.verify import protocol, reference
from tinydeploy.verify import vectors as vectors_mod
from tinydeploy.verify.host import WARNING_FLAGS, build_program

from helpers import assert_clean_failure, require_tools, shared_model, tinydeploy
from helpers.tflite_builder import ModelBuilder

BOARD = "mps2-an386"
KWS, HELLO = "mlperf-tiny/kws_ref_model.tflite", "tflm/hello_world_int8.tflite"
VECTORS = 3
RUN_TIMEOUT = 60.0                   # seconds for the whole QEMU run (it takes about one)
BUILD_TIMEOUT = 300                  # seconds for configuring or building one project
# The second model's arena, placed by TD_ARENA_SECTION / TD_ARENA_ALIGN in an output section of its own
# (as a firmware would put it in CCM or DTCM) and aligned more than the default 16 bytes.
ARENA_SECTION, ARENA_ALIGN = ".model_arena", 32
ARENA_FILL = 0xA5                    # what a user arena holds before init: the model must not read it


@dataclass
class Embedded:
    """A model in the test firmware: its vectors, and whether the application passes its arena."""
    path: Path
    user_arena: bool = False
    placed: bool = False             # its static arena in ARENA_SECTION, aligned to ARENA_ALIGN

    @cached_property
    def model(self) -> CompiledModel:
        return compile_model(self.path)

    @cached_property
    def vectors(self) -> vectors_mod.Vectors:
        return vectors_mod.load(self.path, self.model.graph, VECTORS, testset=False)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def fingerprint(self) -> str:
        return self.vectors.fingerprint(self.model.graph.flatbuffer)


def _c_bytes(values: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in np.asarray(values).view(np.int8).reshape(-1))


def main_source(models: list[Embedded]) -> str:
    """The application: each model's vectors through tinydeploy's test runner (the line protocol), a user
    arena refused when too small or misaligned before the right one is taken."""
    out = ["#include <string.h>", '#include "td_board.h"', '#include "td_runtime.h"']
    out += [f'#include "{m.name}.h"' for m in models]
    body = []
    for m in models:
        n, N = m.name, m.name.upper()
        out += [f"static const int8_t {n}_vectors[] = {{ {_c_bytes(m.vectors.inputs)} }};",
                f"static int8_t {n}_out[{N}_OUTPUT_BYTES] __attribute__((aligned(4)));",
                f"static int {n}_bytes(const int8_t *in, int8_t *out) {{ return {n}_invoke((const void *)in, (void *)out); }}"]
        if m.user_arena:
            out.append(f"static uint8_t {n}_arena[{N}_ARENA_SIZE + {N}_ARENA_ALIGNMENT] __attribute__((aligned(16)));")
            body += [f"    if ({n}_run() != {N}_STATUS_NO_ARENA || {n}_init() != {N}_STATUS_NO_ARENA",
                     f"        || {n}_init_with_arena({n}_arena, {N}_ARENA_SIZE - 1) != {N}_STATUS_ARENA_TOO_SMALL",
                     f"        || {n}_init_with_arena({n}_arena + 1, {N}_ARENA_SIZE) != {N}_STATUS_ARENA_MISALIGNED)",
                     "        return 2;",
                     f"    memset({n}_arena, {ARENA_FILL:#x}, sizeof {n}_arena);",
                     f"    if ({n}_init_with_arena({n}_arena, {N}_ARENA_SIZE) != {N}_STATUS_OK)",
                     "        return 3;"]
        else:
            body += [f"    if ({n}_init() != 0)", "        return 3;"]
        body.append(f'    status |= td_run_vectors("{n}", {n}_bytes, {n}_vectors, {VECTORS}, {N}_INPUT_BYTES, {n}_out, '
                    f'{N}_OUTPUT_BYTES, "{m.fingerprint}", (uint32_t){n}_arena_used());')
    out += ["", "int main(void)", "{", "    int status = 0;", "    td_board_init();", *body, "    return status;", "}", ""]
    return "\n".join(out)


def write_application(app: Path, models: list[Embedded]) -> EmulatedPlatform:
    """main.c, the board support tinydeploy ships (start-up, UART, exit, test runner) as the user's own,
    and the board's linker script with an output section for the placed arena."""
    platform = EmulatedPlatform(boards.get(BOARD))
    board_dir = app / "board"
    board_dir.mkdir(parents=True)
    for src in sorted((FIRMWARE / "bsp").iterdir()) + sorted((FIRMWARE / "runtime").iterdir()):
        shutil.copy2(src, board_dir / src.name)
    (app / "main.c").write_text(main_source(models))
    script = template_env().get_template(platform.arch.linker_template).render(board=platform.board,
                                                                                stack_size=platform.board.stack)
    anchor = "    /DISCARD/"
    assert anchor in script
    (app / "linker.ld").write_text(script.replace(
        anchor, f"    {ARENA_SECTION} (NOLOAD) : {{ *({ARENA_SECTION}) }} > RAM\n{anchor}"))
    return platform


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def build_with_make(app: Path, library: Path, platform: EmulatedPlatform, models: list[Embedded],
                    prefix: str) -> Path:
    """A plain Makefile that includes the library's tinydeploy.mk and uses <prefix>_SRCS / _CFLAGS."""
    user_arenas = " ".join(f"-DTD_{m.name.upper()}_USER_ARENA" for m in models if m.user_arena)
    placed = "".join(f"build/{m.name}.o: CFLAGS += -DTD_ARENA_SECTION={ARENA_SECTION} -DTD_ARENA_ALIGN={ARENA_ALIGN}\n"
                     for m in models if m.placed)
    (app / "Makefile").write_text(f"""include {library}/tinydeploy.mk
CC := {platform.arch.toolchain_prefix}gcc
CFLAGS := {' '.join(platform.cpu_flags)} -O2 -std=c99 -ffunction-sections -fdata-sections -Wall -Wextra -Werror
CFLAGS += -Iboard {' '.join(platform.defines)} $({prefix}_CFLAGS) {user_arenas}
SRCS := main.c $(wildcard board/*.c) $({prefix}_SRCS)
OBJS := $(addprefix build/,$(notdir $(SRCS:.c=.o)))
vpath %.c $(sort $(dir $(SRCS)))

firmware.elf: $(OBJS)
\t$(CC) {' '.join(platform.link_flags)} -nostartfiles -Wl,--gc-sections -T linker.ld -o $@ $^ -lc -lgcc
build/%.o: %.c | build
\t$(CC) $(CFLAGS) -c $< -o $@
build:
\tmkdir -p $@
{placed}""")
    _run(["make", "-j2"], app)
    return app / "firmware.elf"


def build_with_cmake(app: Path, library: Path, platform: EmulatedPlatform, models: list[Embedded]) -> Path:
    """A CMake project with a cross toolchain file that add_subdirectory()s the library and links its targets."""
    (app / "toolchain.cmake").write_text(f"""set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER {platform.arch.toolchain_prefix}gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_FLAGS_INIT "{' '.join(platform.cpu_flags)}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "{' '.join(platform.link_flags)} -nostartfiles -Wl,--gc-sections")
""")
    defines = " ".join(flag.removeprefix("-D") for flag in platform.defines)
    (app / "CMakeLists.txt").write_text(f"""cmake_minimum_required(VERSION 3.13)
project(user_firmware C)
add_subdirectory({library} tinydeploy)
file(GLOB BOARD_SOURCES board/*.c)
add_executable(firmware.elf main.c ${{BOARD_SOURCES}})
target_include_directories(firmware.elf PRIVATE board)
target_compile_definitions(firmware.elf PRIVATE {defines})
target_link_libraries(firmware.elf PRIVATE {' '.join(m.name for m in models)} c gcc)
target_link_options(firmware.elf PRIVATE -T${{CMAKE_CURRENT_SOURCE_DIR}}/linker.ld)
""")
    options = [f"-D{m.name.upper()}_USER_ARENA=ON" for m in models if m.user_arena]
    for m in models:
        if m.placed:
            options += [f"-D{m.name.upper()}_ARENA_SECTION={ARENA_SECTION}", f"-D{m.name.upper()}_ARENA_ALIGN={ARENA_ALIGN}"]
    _run(["cmake", "-S", ".", "-B", "build", "-DCMAKE_TOOLCHAIN_FILE=toolchain.cmake", *options], app)
    _run(["cmake", "--build", "build", "-j2"], app)
    return app / "build" / "firmware.elf"


class _Replay(Target):
    """Console lines already read from QEMU, so protocol.read takes one model's run at a time."""

    def __init__(self, lines: list[str]):
        self._lines = lines

    def lines(self, timeout):
        yield from self._lines

    def stop(self):
        pass


def run_and_verify_all(elf: Path, platform: EmulatedPlatform, models: list[Embedded]) -> None:
    """Run the image in QEMU once; every model's outputs equal the reference interpreter's, byte for byte."""
    with QemuTarget(platform.board, elf, platform.qemu_binary) as qemu:
        lines = list(qemu.lines(RUN_TIMEOUT))
    assert qemu.exit_status == 0, "\n".join(lines[-20:])
    starts = [i for i, line in enumerate(lines) if line.startswith(f"{protocol.PREFIX} {protocol.BEGIN}")]
    assert len(starts) == len(models), "\n".join(lines)
    for m, start, end in zip(models, starts, starts[1:] + [len(lines)]):
        out = m.model.graph.output_tensor()
        session = protocol.read(_Replay(lines[start:end]), m.fingerprint, out.nbytes, VECTORS, RUN_TIMEOUT,
                                np.dtype(out.numpy_dtype))
        assert session.begin.model == m.name and session.status == 0
        expected = reference.run(m.model.graph.flatbuffer, m.vectors.inputs)
        np.testing.assert_array_equal(session.outputs.view(np.int8), np.asarray(expected).view(np.int8),
                                      err_msg=m.name)


def section_of(elf: Path, platform: EmulatedPlatform, name: str) -> tuple[int, int, int]:
    """(size, address, alignment) of an output section of the ELF."""
    proc = subprocess.run([platform.arch.toolchain_prefix + "objdump", "-h", str(elf)], capture_output=True,
                          text=True, check=True)
    match = re.search(rf"^\s*\d+\s+{re.escape(name)}\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+[0-9a-f]+\s+2\*\*(\d+)",
                      proc.stdout, re.M)
    assert match, proc.stdout
    return int(match.group(1), 16), int(match.group(2), 16), 2 ** int(match.group(3))


def _convert(out: Path, *models: Path, extra=()) -> None:
    proc = tinydeploy("convert", *models, "-o", out, *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> tuple[Path, list[Embedded]]:
    """kws (the application's arena) and hello_world (its arena placed by macros): one library, one kernel set."""
    models = [Embedded(shared_model(KWS), user_arena=True), Embedded(shared_model(HELLO), placed=True)]
    library = tmp_path_factory.mktemp("two") / "lib"
    _convert(library, *(m.path for m in models))
    return library, models


@pytest.mark.firmware
@pytest.mark.parametrize("build_system", ["cmake", "make"])
def test_two_models_in_one_image_both_verified_in_qemu(two_models, tmp_path, build_system):
    require_tools(build_system)
    library, models = two_models
    assert sorted(p.name for p in library.iterdir() if not p.name.startswith(".")) == \
        sorted(["CMakeLists.txt", "tinydeploy.mk", "kernels", *(m.name for m in models)])
    assert {p.parent.name for p in library.glob("*/td_*.c")} == {"kernels"}
    platform = write_application(tmp_path, models)
    if build_system == "cmake":
        elf = build_with_cmake(tmp_path, library, platform, models)
    else:
        elf = build_with_make(tmp_path, library, platform, models, "TINYDEPLOY")
    run_and_verify_all(elf, platform, models)
    placed = next(m for m in models if m.placed)
    size, address, alignment = section_of(elf, platform, ARENA_SECTION)
    assert size == placed.model.arena_bytes and address % ARENA_ALIGN == 0 and alignment == ARENA_ALIGN


@pytest.mark.firmware
@pytest.mark.parametrize("build_system", ["cmake", "make"])
def test_one_model_library_with_its_kernels_in_a_users_build(tmp_path, build_system):
    """A single-model library (kernels beside the model, static arena, default flags) through its own
    CMakeLists.txt / tinydeploy.mk."""
    require_tools(build_system)
    models = [Embedded(shared_model(HELLO))]
    library = tmp_path / "lib"
    _convert(library, models[0].path)
    app = tmp_path / "app"
    platform = write_application(app, models)
    if build_system == "cmake":
        elf = build_with_cmake(app, library, platform, models)
    else:
        elf = build_with_make(app, library, platform, models, models[0].name.upper())
    run_and_verify_all(elf, platform, models)


def _concat_model(path: Path) -> Path:
    """Two padded copies of the input concatenated: CONCATENATION's arena addresses are a pointer list."""
    b = ModelBuilder()
    x = b.tensor((1, 3, 4), np.int8, 0.05, -3)
    parts = []
    for extra in (1, 2):
        part = b.tensor((1, 3, 4 + extra), np.int8, 0.05, -3)
        b.pad(x, [[0, 0], [0, 0], [0, extra]], part)
        parts.append(part)
    y = b.tensor((1, 3, 11), np.int8, 0.05, -3)
    b.concatenation(parts, y, 2)
    path.write_bytes(b.finish([x], [y]))
    return path


def test_a_user_arena_is_checked_and_used_in_place(tmp_path):
    """Host gcc, a model whose params hold arena addresses: the arena is refused when missing, too small
    or misaligned; the right one, full of garbage, gives the reference's output and nothing is written past it."""
    require_tools("gcc")
    model = compile_model(_concat_model(tmp_path / "concat.tflite"))
    x = np.arange(model.graph.input_tensor().size, dtype=np.int8) * 7 - 40
    guard = 64                       # bytes after the arena that must stay as they were
    main = f"""#include <stdio.h>
#include <string.h>
#include "concat.h"
static const int8_t x[] = {{ {_c_bytes(x)} }};
static int8_t y[CONCAT_OUTPUT_SIZE];
static uint8_t arena[CONCAT_ARENA_SIZE + {guard}] __attribute__((aligned(16)));
int main(void)
{{
    printf("%d", concat_run());
    printf(" %d", concat_init());
    printf(" %d", concat_init_with_arena(NULL, 1000));
    printf(" %d", concat_init_with_arena(arena, CONCAT_ARENA_SIZE - 1));
    printf(" %d", concat_init_with_arena(arena + 1, CONCAT_ARENA_SIZE));
    printf(" %d\\n", concat_invoke(x, y));
    memset(arena, {ARENA_FILL:#x}, sizeof arena);
    printf("%d", concat_init_with_arena(arena, CONCAT_ARENA_SIZE));
    printf(" %d", concat_invoke(x, y));
    int untouched = 1;
    for (int i = 0; i < {guard}; ++i)
        untouched &= arena[CONCAT_ARENA_SIZE + i] == {ARENA_FILL:#x};
    printf(" %d\\n", untouched);
    for (int i = 0; i < CONCAT_OUTPUT_SIZE; ++i)
        printf("%d ", y[i]);
    return 0;
}}
"""
    exe = build_program(model, main, tmp_path, ("-O2", *WARNING_FLAGS, "-DTD_CONCAT_USER_ARENA"))
    refusals, accepted, outputs = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    no_arena, too_small, misaligned = -3, -1, -2        # CONCAT_STATUS_* in the generated header
    assert refusals.split() == [str(s) for s in (no_arena, no_arena, too_small, too_small, misaligned, no_arena)]
    assert accepted.split() == ["0", "0", "1"]
    expected = reference.run(model.graph.flatbuffer, x[None])[0]
    assert [int(v) for v in outputs.split()] == expected.reshape(-1).tolist()
    header = (tmp_path / "concat.h").read_text()
    for status, value in (("NO_ARENA", no_arena), ("ARENA_TOO_SMALL", too_small), ("ARENA_MISALIGNED", misaligned)):
        assert f"#define CONCAT_STATUS_{status} ({value})" in header


def test_the_flatbuffer_only_with_the_flag_and_build_files_always(tmp_path):
    model = shared_model(HELLO)
    plain, with_flatbuffer = tmp_path / "plain", tmp_path / "with"
    _convert(plain, model)
    _convert(with_flatbuffer, model, extra=["--with-flatbuffer"])
    name = "hello_world_int8"
    for out in (plain, with_flatbuffer):
        assert (out / "CMakeLists.txt").exists() and (out / "tinydeploy.mk").exists() and (out / "td_kernels.h").exists()
        assert f"add_library({name} STATIC" in (out / "CMakeLists.txt").read_text()
        fragment = (out / "tinydeploy.mk").read_text()
        assert all(f"{name.upper()}_{var} :=" in fragment for var in ("SRCS", "INCLUDES", "CFLAGS"))
    assert not (plain / f"{name}_tflite.c").exists() and f"{name}_tflite[]" not in (plain / f"{name}.h").read_text()
    flatbuffer = (with_flatbuffer / f"{name}_tflite.c").read_text()
    assert f"const unsigned int {name}_tflite_len = {model.stat().st_size};" in flatbuffer
    assert f"extern const unsigned char {name}_tflite[];" in (with_flatbuffer / f"{name}.h").read_text()
    assert f"{name}_tflite.c" in (with_flatbuffer / "tinydeploy.mk").read_text()
    # the rest of the library is the same either way
    same = [p.name for p in plain.iterdir() if p.is_file() and p.suffix in (".c", ".h", ".json")]
    assert all((plain / n).read_bytes() == (with_flatbuffer / n).read_bytes() for n in same if n != f"{name}.h")


@pytest.mark.parametrize("stems,needles", [
    (["a/same", "b/same"], ("both make a model named 'same'", "rename")),
    (["same", "same"], ("same.tflite is given twice", "give each model once")),
    (["td_conv"], ("would clash with tinydeploy's kernels", "rename")),
    (["x", "kernels"], ("would clash with tinydeploy's kernels", "rename")),
])
def test_clashing_model_names_are_one_line(tmp_path, stems, needles):
    paths = []
    for stem in stems:
        path = tmp_path / f"{stem}.tflite"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_model(HELLO), path)
        paths.append(path)
    proc = tinydeploy("convert", *paths, "-o", tmp_path / "lib")
    assert_clean_failure(proc, *needles)
    assert proc.returncode == 2 and not (tmp_path / "lib").exists()

"""The board catalog: every emulated board builds and runs a real model bit-exactly;
real boards render complete PlatformIO projects and say plainly what this machine lacks."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tinydeploy.core.errors import BadInput
from tinydeploy.platforms import boards
from tinydeploy.platforms import renode
from tinydeploy.platforms.arduino import ArduinoPlatform
from tinydeploy.platforms.emulated import EmulatedPlatform
from tinydeploy.platforms.registry import platform_for
from tinydeploy.pipeline import build_firmware, build_for_emulation, run_firmware

from helpers import require_tools, shared_model, tinydeploy, unavailable

EMULATED = [b.name for b in boards.catalog().values() if isinstance(platform_for(b), EmulatedPlatform)]
REAL = [b.name for b in boards.catalog().values() if isinstance(platform_for(b), ArduinoPlatform)]
KWS = "mlperf-tiny/kws_ref_model.tflite"
GOOD_BOARD = (boards.BOARDS / "mps2-an386.yaml").read_text()


def test_catalog_has_the_boards_users_own():
    assert {"microbit", "mps2-an385", "lm3s6965evb", "mps2-an386", "netduinoplus2", "mps2-an500", "mps2-an505",
            "mps3-an547", "riscv32-virt"} <= set(EMULATED)
    assert {"esp32dev", "esp32-c3-devkitm-1", "esp32-s3-devkitc-1", "nucleo_f446re", "nucleo_l4r5zi", "nano33ble",
            "pico", "disco_f746ng"} <= set(REAL)
    assert set(EMULATED) | set(REAL) == set(boards.catalog())
    assert boards.get("esp32").name == "esp32dev"
    for name in REAL:                       # a proxy, when named, is emulated and has the same core (or says not)
        board = boards.get(name)
        if board.proxy:
            proxy = platform_for(board).emulation_target()
            assert proxy.name in EMULATED and proxy.arch == board.arch
            assert proxy.core.replace("plus", "") == board.core.replace("plus", "") or board.proxy_note


def _board_file(tmp_path, text):
    (tmp_path / "foo.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("text,expected", [
    (GOOD_BOARD.replace("clock_hz:", "clock_hzz:"), "unknown key 'clock_hzz' (did you mean 'clock_hz'?)"),
    (GOOD_BOARD.replace("flash: {origin: 0x00000000, size:", "flash: {origin: 0x00000000, sise:"),
     "unknown key 'flash.sise' (did you mean 'flash.size'?)"),
    (GOOD_BOARD.replace("clock_hz: 25000000", "clock_hz: fast"), "key 'clock_hz': input should be a valid integer"),
    (GOOD_BOARD.replace("kind: cmsdk", "kind: 16550"), "key 'uart.kind': input should be 'cmsdk'"),
    (GOOD_BOARD.replace("dsp: true", "dsp: 1"), "key 'dsp': input should be a valid boolean"),
    (GOOD_BOARD.replace("core: cortex-m4\n", ""), "missing key 'core'"),
])
def test_a_bad_board_file_is_one_line_naming_the_file_and_the_key(tmp_path, text, expected):
    directory = _board_file(tmp_path, text)
    with pytest.raises(BadInput) as exc:
        boards.catalog(directory)
    message = str(exc.value)
    assert "\n" not in message and message.startswith(f"{directory / 'foo.yaml'}: ")
    assert expected in message and "tinydeploy boards --schema" in message


def test_a_bad_board_file_through_the_cli(tmp_path):
    directory = _board_file(tmp_path, GOOD_BOARD.replace("clock_hz:", "clock_hzz:"))
    proc = tinydeploy("boards", "--dir", directory, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "took" not in line]
    assert len(lines) == 1 and "foo.yaml: unknown key 'clock_hzz'" in lines[0]
    directory = _board_file(tmp_path, GOOD_BOARD.replace("clock_hz: 25000000", "clock_hz: '25 MHz'"))
    proc = tinydeploy("boards", "--dir", directory, cwd=tmp_path)
    assert proc.returncode == 2 and "key 'clock_hz'" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "foo.yaml").write_text(GOOD_BOARD.replace("name: mps2-an386", "name: foo"))
    proc = tinydeploy("boards", "--dir", directory, cwd=tmp_path)
    assert proc.returncode == 0 and "│ foo " in proc.stdout and "esp32dev" not in proc.stdout


def test_the_schema_lists_every_key_with_type_default_and_meaning(tmp_path):
    rows = boards.schema_rows()
    keys = [key for key, _, _, _ in rows]
    for key in ("name", "clock_hz", "flash.size", "flash.origin", "uart.kind", "exit.kind", "emulator.qemu.machine",
                "emulator.qemu.icount_shift", "platformio.platform", "proxy", "aliases", "stack"):
        assert key in keys
    assert all(kind and default and doc for _, kind, default, doc in rows)
    proc = tinydeploy("boards", "--schema", cwd=tmp_path)
    assert proc.returncode == 0
    for key in keys:
        assert key in proc.stdout


def test_boards_does_not_import_a_platform():
    """The catalog is a leaf: no import cycle with the PlatformIO runner."""
    proc = subprocess.run([sys.executable, "-c", "import sys, tinydeploy.platforms.boards; "
                           "print(sorted(m for m in sys.modules if m.startswith('tinydeploy.platforms')))"],
                          capture_output=True, text=True, check=True)
    assert "platformio" not in proc.stdout and "emulated" not in proc.stdout and "registry" not in proc.stdout


@pytest.mark.firmware
@pytest.mark.parametrize("board", EMULATED)
def test_kws_is_bit_exact_on_every_emulated_board(tmp_path, board):
    missing = platform_for(boards.get(board)).missing_tools()
    if missing:
        unavailable(f"not installed: {missing}")
    fw = build_firmware(shared_model(KWS), board, tmp_path / board, vectors=3)
    result = run_firmware(fw)
    assert result.exit_status == 0 and len(result.outputs) == 3
    assert result.mismatches == []
    np.testing.assert_array_equal(result.outputs, result.expected)
    assert result.ticks_per_instruction >= 1.0            # at least one tick per instruction: exact counts
    assert all(i > fw.model.macs for i in result.instructions)


@pytest.mark.firmware
def test_a_real_board_runs_on_its_proxy_with_its_clock(tmp_path):
    fw = build_for_emulation(shared_model("tflm/hello_world_int8.tflite"), "nucleo_f446re", tmp_path / "p", vectors=2)
    assert fw.board.name == "netduinoplus2" and fw.clock_board.name == "nucleo_f446re"
    assert run_firmware(fw).mismatches == []


def test_esp32_build_renders_the_project_and_says_why_it_cannot_build(tmp_path):
    proc = tinydeploy("build", shared_model(KWS), "--board", "esp32", "-o", tmp_path / "esp32", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "espressif32" in lines[0] and "not installed" in lines[0] and str(tmp_path / "esp32") in lines[0]
    project = tmp_path / "esp32"
    ini = (project / "platformio.ini").read_text()
    assert "platform = espressif32" in ini and "board = esp32dev" in ini and "framework = arduino" in ini
    assert (project / "lib" / "kws_ref_model" / "kws_ref_model.c").exists()
    assert (project / "src" / "main.cpp").exists()


ARDUINO_API = """#pragma once
#include <stdint.h>
#include <stddef.h>
/* Declarations of the Arduino-ESP32 functions main.cpp calls, to check it compiles. */
struct HardwareSerial { void begin(unsigned long); size_t write(uint8_t); explicit operator bool() const; };
extern HardwareSerial Serial;
struct EspClass { uint32_t getCycleCount(); };
extern EspClass ESP;
unsigned long millis(void);
unsigned long micros(void);
void delay(unsigned long);
"""


def test_generated_esp32_sources_compile_warning_free(tmp_path):
    """All C the ESP32 project contains, with host gcc -Wall -Wextra -Werror; main.cpp against the Arduino API."""
    require_tools("gcc", "g++")
    project = tmp_path / "esp32"
    tinydeploy("build", shared_model(KWS), "--board", "esp32dev", "-o", project, cwd=tmp_path)
    sources = sorted((project / "src").glob("*.c")) + sorted((project / "lib" / "kws_ref_model").glob("*.c"))
    includes = ["-I", str(project / "src"), "-I", str(project / "lib" / "kws_ref_model")]
    for src in sources:
        proc = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", *includes, "-c", str(src),
                               "-o", str(tmp_path / (src.stem + ".o"))], capture_output=True, text=True)
        assert proc.returncode == 0, f"{src.name}: {proc.stderr}"
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Arduino.h").write_text(ARDUINO_API)
    proc = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-DARDUINO_ARCH_ESP32",
                           "-DTD_BOARD_CLOCK_HZ=240000000u", "-I", str(tmp_path / "api"), *includes,
                           str(project / "src" / "main.cpp")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.firmware
def test_esp32_c3_code_runs_as_rv32imc(tmp_path):
    """The ESP32-C3's instruction set, with the same model library, in QEMU's riscv32 virt machine."""
    if platform_for(boards.get("riscv32-virt")).missing_tools():
        unavailable("riscv toolchain or qemu-system-riscv32 missing")
    fw = build_for_emulation(shared_model(KWS), "esp32-c3-devkitm-1", tmp_path / "c3", vectors=2)
    assert fw.board.name == "riscv32-virt"
    assert run_firmware(fw).mismatches == []


@pytest.mark.firmware
def test_real_board_serial_path_against_the_emulator_stream(tmp_path):
    """`run --board esp32dev --port` (nothing built here) reads the protocol from QEMU's UART on a TCP socket."""
    model = shared_model("tflm/hello_world_int8.tflite")
    fw = build_firmware(model, "mps2-an386", tmp_path / "emu", vectors=4)       # same model and vectors
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    qemu = subprocess.Popen(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                             "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on",
                             "-semihosting-config", "enable=on,target=native", "-kernel", str(fw.elf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        proc = tinydeploy("run", model, "--board", "esp32dev", "--vectors", "4", "-o", tmp_path / "esp32",
                          "--port", f"socket://127.0.0.1:{port}", "--timeout", "30", cwd=tmp_path)
    finally:
        qemu.kill()
        qemu.wait()
    assert proc.returncode == 0, proc.stderr
    assert "0 (bit-exact with TFLite Micro)" in proc.stdout and "cycles/inference" in proc.stdout


def test_fit_check_refuses_with_the_numbers(tmp_path):
    proc = tinydeploy("build", shared_model("mlperf-tiny/vww_96_int8.tflite"), "--board", "microbit",
                      "-o", tmp_path / "p", cwd=tmp_path)
    assert proc.returncode == 2
    assert "RAM" in proc.stderr and "16384" in proc.stderr and not (tmp_path / "p").exists()


def test_renode_scripts_are_current_and_runs_say_renode_is_missing(tmp_path):
    on_renode = [name for name in EMULATED if "renode" in platform_for(boards.get(name)).emulators]
    written = renode.render_scripts(tmp_path / "scripts")
    assert len(written) == 2 * len(on_renode)
    for path in written:
        assert path.read_text() == (renode.RENODE_DIR / path.name).read_text(), f"renode/{path.name} is stale"
    proc = tinydeploy("boards", "--renode", tmp_path / "cli", cwd=tmp_path)
    assert proc.returncode == 0 and len(list((tmp_path / "cli").glob("*.res[c]"))) == len(on_renode)
    if shutil.which("renode") is None:
        proc = tinydeploy("run", shared_model("tflm/hello_world_int8.tflite"), "--emulator", "renode",
                          "-o", tmp_path / "r", cwd=tmp_path)
        assert proc.returncode == 2 and "renode is not installed" in proc.stderr


def test_boards_table_lists_every_board(tmp_path):
    proc = tinydeploy("boards", cwd=tmp_path)
    assert proc.returncode == 0
    for name in EMULATED + REAL:
        assert name in proc.stdout


@pytest.mark.parametrize("typed,name", [("NUCLEO_F446RE", "nucleo_f446re"), ("nucleo-f446re", "nucleo_f446re"),
                                        ("ESP32", "esp32dev"), ("Mps2_An386", "mps2-an386")])
def test_board_names_and_aliases_are_case_insensitive(typed, name):
    assert boards.get(typed).name == name


def test_an_unknown_board_suggests_the_closest_names(tmp_path):
    with pytest.raises(BadInput, match=r"unknown board 'nucleo_f466re' \(did you mean 'nucleo_f446re'"):
        boards.get("nucleo_f466re")
    with pytest.raises(BadInput) as exc:
        boards.get("pdp11")
    assert "did you mean" not in str(exc.value) and "known boards: " in str(exc.value)
    proc = tinydeploy("inspect", shared_model("tflm/hello_world_int8.tflite"), "--board", "mps2-an368", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown board 'mps2-an368' (did you mean 'mps2-an386' or 'mps2-an385'?)" in proc.stderr

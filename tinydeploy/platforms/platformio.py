"""Build a rendered project offline with PlatformIO and read its size from the ELF."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tinydeploy.platforms.boards import Board
from tinydeploy.core.errors import TinyDeployError
from tinydeploy.core.resources import atomic_write, cache_dir

SCONS_PACKAGE_VERSION = "4.41101.0"      # PlatformIO's encoding of SCons 4.11.1


@dataclass
class SizeReport:
    """Bytes used by the firmware image, by region."""
    flash: int
    ram: int
    sections: dict[str, int]

    def as_dict(self) -> dict:
        return {"flash": self.flash, "ram": self.ram, "sections": self.sections}


def platformio_core() -> Path:
    """A PlatformIO core directory that never needs the network.

    PlatformIO insists on its `tool-scons` package; we provide it as a local
    package that runs the SCons installed from PyPI beside PlatformIO.
    """
    core = Path(os.environ.get("TINYDEPLOY_PIO_CORE", cache_dir() / "platformio"))
    scons = core / "packages" / "tool-scons"
    if not (scons / ".piopm").exists():
        scons.mkdir(parents=True, exist_ok=True)
        atomic_write(scons / "scons.py", "import sys\nfrom SCons.Script.Main import main\nsys.exit(main())\n")
        atomic_write(scons / "package.json", json.dumps(
            {"name": "tool-scons", "version": SCONS_PACKAGE_VERSION, "description": "SCons from PyPI",
             "system": "*"}))
        atomic_write(scons / ".piopm", json.dumps(
            {"type": "tool", "name": "tool-scons", "version": SCONS_PACKAGE_VERSION,
             "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": None, "uri": None}}))
    return core


def platformio_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PLATFORMIO_CORE_DIR=str(platformio_core()), PLATFORMIO_SETTING_ENABLE_TELEMETRY="no",
               PLATFORMIO_DISABLE_UPGRADE_CHECK="true", PLATFORMIO_NO_ANSI="true")
    return env


def _pio_command() -> list[str]:
    exe = Path(sys.executable).with_name("pio")
    if exe.exists():
        return [str(exe)]
    if shutil.which("pio"):
        return ["pio"]
    raise TinyDeployError("PlatformIO is not installed; run `pip install platformio` (or the README's set-up command)")


CANNOT_BUILD_HERE = 3      # exit code: the project is rendered, but this machine cannot build it


def user_platformio_core() -> Path:
    """The user's own PlatformIO installation (real boards build with their installed platforms)."""
    return Path(os.environ.get("PLATFORMIO_CORE_DIR", Path.home() / ".platformio"))


def _user_platformio_env() -> dict[str, str]:
    return dict(os.environ, PLATFORMIO_SETTING_ENABLE_TELEMETRY="no")


def platform_installed(board: Board) -> bool:
    """True when the user's PlatformIO has the real board's platform (and so its toolchain)."""
    return (user_platformio_core() / "platforms" / board.platformio["platform"]).is_dir()


def check_real_board_platform(project: Path, board: Board) -> None:
    """Stop with one line when the board's PlatformIO platform is not installed (it can't be downloaded here)."""
    if platform_installed(board):
        return
    platform = board.platformio["platform"]
    toolchain = board.platformio.get("toolchain", "its toolchain")
    raise TinyDeployError(
        f"{board.name}: PlatformIO's '{platform}' platform ({toolchain}, {board.core}) is not installed in "
        f"{user_platformio_core()} and cannot be downloaded from this machine; the project is ready in {project}: "
        f"on a machine with internet run `pio run -d {project} -t upload`", exit_code=CANNOT_BUILD_HERE)


def build_project(project: Path, board: Board, timeout: float = 600) -> Path:
    """Run `pio run` in ``project``; returns the ELF path or raises with the compiler's complaint.

    Emulated boards build offline through the local platform; real boards through the
    user's PlatformIO installation, once its platform for the board is there."""
    if board.emulated:
        missing = [tool for tool in board.missing_tools() if "gcc" in tool]
        if missing:
            raise TinyDeployError(f"not installed: {missing[0]}; or run `tinydeploy doctor`")
        env = platformio_env()
    else:
        check_real_board_platform(project, board)
        env = _user_platformio_env()
    try:
        proc = subprocess.run([*_pio_command(), "run", "-d", str(project)], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TinyDeployError(f"{project}: PlatformIO did not finish within {timeout:.0f} s; run `pio run -d {project}` to see why")
    log = proc.stdout + proc.stderr
    atomic_write(project / "build.log", log)
    if proc.returncode != 0:
        overflow = re.search(r"region `?(\w+)'? overflowed by (\d+) bytes", log)
        if overflow:
            raise TinyDeployError(f"{project}: the firmware does not fit: {overflow.group(1)} overflowed by "
                                  f"{overflow.group(2)} bytes on {board.name}; pick a bigger board or a smaller model")
        errors = [line for line in log.splitlines() if "error" in line.lower()]
        detail = errors[0].strip() if errors else log.strip().splitlines()[-1] if log.strip() else "no output"
        raise TinyDeployError(f"{project}: PlatformIO build failed: {detail} (full log: {project / 'build.log'})")
    return project / ".pio" / "build" / board.name / "firmware.elf"


def upload_project(project: Path, port: str | None = None, timeout: float = 600) -> None:
    """`pio run -t upload` with the user's PlatformIO (the project must have built)."""
    cmd = [*_pio_command(), "run", "-d", str(project), "-t", "upload"] + (["--upload-port", port] if port else [])
    try:
        proc = subprocess.run(cmd, env=_user_platformio_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TinyDeployError(f"{project}: the upload did not finish within {timeout:.0f} s; is the board connected?")
    atomic_write(project / "upload.log", proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "error" in line.lower()]
        raise TinyDeployError(f"{project}: upload failed: {lines[-1].strip() if lines else 'see upload.log'} "
                              f"(full log: {project / 'upload.log'}); check the cable and --port")


def firmware_size(project: Path, elf: Path, board: Board) -> SizeReport:
    """Flash and RAM use: from the ELF's sections for emulated boards, from PlatformIO's summary otherwise."""
    if board.emulated:
        return elf_size(elf, board)
    log = (project / "build.log").read_text()
    used = {kind: int(n) for kind, n in re.findall(r"^(RAM|Flash):.*?used (\d+) bytes", log, re.MULTILINE)}
    return SizeReport(used.get("Flash", 0), used.get("RAM", 0), {})


def elf_size(elf: Path, board: Board) -> SizeReport:
    """Flash and RAM use, from the section table (`size -A`)."""
    proc = subprocess.run([board.toolchain_prefix + "size", "-A", "-d", str(elf)], capture_output=True, text=True, check=True)
    sections = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    flash = sum(sections.get(s, 0) for s in (".isr_vector", ".text", ".rodata", ".ARM.exidx", ".data"))
    ram = sum(sections.get(s, 0) for s in (".data", ".bss", "._stack_check"))
    return SizeReport(flash, ram, sections)

"""Running PlatformIO: the offline core the emulated boards build with, the user's own
installation the real boards build and upload with, and reading the image's size.

The platforms (emulated.py, arduino.py) decide which environment a board builds in; this
module only runs `pio` and reads its results.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tinydeploy.core.errors import Interrupted, MissingTool, TinyDeployError
from tinydeploy.core.process import run_captured
from tinydeploy.core.resources import atomic_write, cache_dir, installation_key
from tinydeploy.platforms.base import SizeReport

__all__ = ["SizeReport", "platformio_core", "platformio_env", "user_platformio_core", "user_platformio_env",
           "platform_installed", "run_build", "upload_project", "elf_size", "summary_size"]

SCONS_PACKAGE_VERSION = "4.41101.0"      # PlatformIO's encoding of SCons 4.11.1


def platformio_core() -> Path:
    """A PlatformIO core directory that never needs the network.

    PlatformIO insists on its `tool-scons` package; we provide it as a local
    package that runs the SCons installed from PyPI beside PlatformIO.
    """
    # one core per installation: the core registers the offline platform by name, linked to one checkout
    core = Path(os.environ.get("TINYDEPLOY_PIO_CORE", cache_dir() / f"platformio-{installation_key()}"))
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
    raise MissingTool("PlatformIO is not installed; run `pip install platformio` (or the README's set-up command)")


def user_platformio_core() -> Path:
    """The user's own PlatformIO installation (real boards build with their installed platforms)."""
    return Path(os.environ.get("PLATFORMIO_CORE_DIR", Path.home() / ".platformio"))


def user_platformio_env() -> dict[str, str]:
    return dict(os.environ, PLATFORMIO_SETTING_ENABLE_TELEMETRY="no")


def platform_installed(platform: str) -> bool:
    """True when the user's PlatformIO has ``platform`` (espressif32, ststm32, ...), and so its toolchain."""
    return (user_platformio_core() / "platforms" / platform).is_dir()


def run_build(project: Path, env: dict[str, str], board_name: str, timeout: float = 600) -> Path:
    """Run `pio run` in ``project`` with ``env``; returns the ELF path or raises with the compiler's complaint."""
    elf = project / ".pio" / "build" / board_name / "firmware.elf"
    try:
        proc = run_captured([*_pio_command(), "run", "-d", str(project)], env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        elf.unlink(missing_ok=True)            # possibly half-linked
        raise TinyDeployError(f"{project}: PlatformIO did not finish within {timeout:.0f} s; run `pio run -d {project}` to see why")
    except KeyboardInterrupt:
        elf.unlink(missing_ok=True)
        raise Interrupted(f"interrupted while building {project}; the build stopped (rerun to finish it)") from None
    log = proc.stdout + proc.stderr
    atomic_write(project / "build.log", log)
    if proc.returncode != 0:
        overflow = re.search(r"region `?(\w+)'? overflowed by (\d+) bytes", log)
        if overflow:
            raise TinyDeployError(f"{project}: the firmware does not fit: {overflow.group(1)} overflowed by "
                                  f"{overflow.group(2)} bytes on {board_name}; pick a bigger board or a smaller model")
        errors = [line for line in log.splitlines() if "error" in line.lower()]
        detail = errors[0].strip() if errors else log.strip().splitlines()[-1] if log.strip() else "no output"
        raise TinyDeployError(f"{project}: PlatformIO build failed: {detail} (full log: {project / 'build.log'})")
    return elf


def upload_project(project: Path, port: str | None = None, timeout: float = 600) -> None:
    """`pio run -t upload` with the user's PlatformIO (the project must have built)."""
    cmd = [*_pio_command(), "run", "-d", str(project), "-t", "upload"] + (["--upload-port", port] if port else [])
    try:
        proc = subprocess.run(cmd, env=user_platformio_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TinyDeployError(f"{project}: the upload did not finish within {timeout:.0f} s; is the board connected?")
    atomic_write(project / "upload.log", proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "error" in line.lower()]
        raise TinyDeployError(f"{project}: upload failed: {lines[-1].strip() if lines else 'see upload.log'} "
                              f"(full log: {project / 'upload.log'}); check the cable and --port")


def elf_size(elf: Path, toolchain_prefix: str) -> SizeReport:
    """Flash and RAM use, from the section table (`<prefix>size -A`)."""
    proc = subprocess.run([toolchain_prefix + "size", "-A", "-d", str(elf)], capture_output=True, text=True, check=True)
    sections = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    flash = sum(sections.get(s, 0) for s in (".isr_vector", ".text", ".rodata", ".ARM.exidx", ".data"))
    ram = sum(sections.get(s, 0) for s in (".data", ".bss", "._stack_check"))
    return SizeReport(flash, ram, sections)


def summary_size(project: Path) -> SizeReport:
    """Flash and RAM use, from the RAM:/Flash: summary PlatformIO printed into build.log."""
    log = (project / "build.log").read_text()
    used = {kind: int(n) for kind, n in re.findall(r"^(RAM|Flash):.*?used (\d+) bytes", log, re.MULTILINE)}
    return SizeReport(used.get("Flash", 0), used.get("RAM", 0), {})

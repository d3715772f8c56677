"""`tinydeploy doctor`: which tools are here, what to install for what is missing, and whether the
set-up script (scripts/setup.sh: its apt packages and the venv's `pip install -e '.[train,dev,federated]'`)
installs it."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from dataclasses import dataclass

from tinydeploy.platforms.arch import ARCHES

SETUP_COMMAND = "bash scripts/setup.sh"
RENODE_INSTALL = "not packaged for Debian: install it from renode.io"


@dataclass
class Check:
    name: str
    found: bool
    detail: str
    needed_for: str
    install: str
    by_setup: bool = True          # scripts/setup.sh installs it (False: the user installs it by hand)


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()
        return out[0] if out else "present"
    except (OSError, subprocess.TimeoutExpired):
        return "present"


def checks() -> list[Check]:
    result = []
    for module, needed, pip in (("tflite_micro", "reference interpreter (run, quantize, inspect)", "tflite-micro"),
                                ("tensorflow", "train, quantize", "tensorflow-cpu==2.21.0"),
                                ("sklearn", "datasets (train)", "scikit-learn"),
                                ("platformio", "build", "platformio==6.2.0"),
                                ("SCons", "build (PlatformIO's build engine, used offline)", "scons==4.11.1"),
                                ("serial", "run --port (real boards)", "pyserial"),
                                ("pydantic", "board schema, compare configuration", "pydantic"),
                                ("matplotlib", "compare (figures)", "matplotlib")):
        found = importlib.util.find_spec(module) is not None
        result.append(Check(module, found, "importable" if found else "missing", needed, f"pip install {pip}"))
    tools = []
    for arch in ARCHES.values():         # per architecture: its cross toolchain and its QEMU
        tools += [(arch.toolchain_prefix + "gcc", arch.needed_for_build, arch.toolchain_apt),
                  (arch.qemu_binary, arch.needed_for_run, arch.qemu_apt)]
    tools += [("gcc", "host kernel tests", "gcc"),
              ("g++", "compile check of the Arduino glue for real boards (tests)", "g++"),
              ("renode", "--emulator renode", None)]
    for tool, needed, apt in tools:
        path = shutil.which(tool)
        detail = _version([tool, "--version"]) if path and apt else (path or "not on PATH")
        if apt:
            result.append(Check(tool, path is not None, detail, needed, f"apt-get install {apt}"))
        else:
            result.append(Check(tool, path is not None, detail, needed, RENODE_INSTALL, by_setup=False))
    return result


def missing_summary(found: list[Check]) -> str | None:
    """One line on what is missing: what the set-up command installs, and what it cannot; None if nothing is."""
    missing = [c for c in found if not c.found]
    if not missing:
        return None
    parts = []
    installable = [c.name for c in missing if c.by_setup]
    by_hand = [c for c in missing if not c.by_setup]
    if installable:
        parts.append(f"`{SETUP_COMMAND}` installs {', '.join(installable)}")
    for c in by_hand:
        parts.append(f"`{SETUP_COMMAND}` cannot install {c.name} ({c.install}; needed only for {c.needed_for})")
    return f"{len(missing)} missing: " + "; ".join(parts)

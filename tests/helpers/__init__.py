"""Test helpers shared by every test module: the shared model zoo, required tools, the CLI runner.

Under CI (``CI=true``) a missing toolchain, emulator or shared model fails the test instead of
skipping it, so a run on a machine that lacks them can't pass silently."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SHARED_MODELS = Path(os.environ.get("TINYDEPLOY_MODELS", ROOT.parent / "shared" / "models"))
SHARED_MODEL_NAMES = [
    "mlperf-tiny/ad01_int8.tflite", "mlperf-tiny/kws_ref_model.tflite", "mlperf-tiny/pretrainedResnet_quant.tflite",
    "mlperf-tiny/vww_96_int8.tflite", "tflm/hello_world_int8.tflite", "tflm/micro_speech_quantized.tflite",
    "tflm/person_detect.tflite",
]
FIRMWARE_TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str):
    """Skip the test here; fail it under CI, where everything must be installed."""
    if in_ci():
        pytest.fail(f"CI=true and {reason}: install it (scripts/setup.sh) rather than skip", pytrace=False)
    pytest.skip(reason)


def shared_model(rel: str) -> Path:
    path = SHARED_MODELS / rel
    if not path.exists():
        unavailable(f"{path} is not present (the shared model zoo sits beside the project, or set TINYDEPLOY_MODELS)")
    return path


def require_tools(*tools: str) -> None:
    """Every tool on PATH, or the test is unavailable."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        unavailable(f"not installed: {', '.join(missing)}")


def require_firmware_tools() -> None:
    require_tools(*FIRMWARE_TOOLS)


def require_module(name: str) -> None:
    try:
        __import__(name)
    except ImportError:
        unavailable(f"Python package {name} is not installed")


def tinydeploy(*args, cwd=None, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI as a user runs it, in a subprocess (``env``: its whole environment, else this one's)."""
    return subprocess.run([sys.executable, "-m", "tinydeploy.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=env)


def assert_clean_failure(proc, *needles):
    """A non-zero exit, no traceback, one line on stderr containing every needle."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]

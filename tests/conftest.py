"""Shared fixtures: the shared model zoo, a random generator, and firmware built once per session."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_MODELS = ROOT.parent / "shared" / "models"
SHARED_MODEL_NAMES = [
    "mlperf-tiny/ad01_int8.tflite", "mlperf-tiny/kws_ref_model.tflite", "mlperf-tiny/pretrainedResnet_quant.tflite",
    "mlperf-tiny/vww_96_int8.tflite", "tflm/hello_world_int8.tflite", "tflm/micro_speech_quantized.tflite",
    "tflm/person_detect.tflite",
]


def shared_model(rel: str) -> Path:
    path = SHARED_MODELS / rel
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared model zoo sits beside the project)")
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """PlatformIO core and caches live in the session's temporary directory, unless set."""
    if "TINYDEPLOY_CACHE" not in os.environ:
        os.environ["TINYDEPLOY_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


def have_firmware_tools() -> bool:
    return bool(shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"))

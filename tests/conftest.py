"""Session set-up: an isolated cache, and firmware tests that require the cross toolchain and QEMU."""
from __future__ import annotations

import os

import pytest

from helpers import require_firmware_tools


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """PlatformIO core and caches live in the session's temporary directory, unless set."""
    if "TINYDEPLOY_CACHE" not in os.environ:
        os.environ["TINYDEPLOY_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    if "TINYDEPLOY_BUILD_CACHE" not in os.environ:     # compiled objects: shared by the xdist workers
        base = tmp_path_factory.getbasetemp()
        shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
        os.environ["TINYDEPLOY_BUILD_CACHE"] = str(shared / "build-cache")
    yield


def pytest_runtest_setup(item):
    """A test marked `firmware` needs arm-none-eabi-gcc and qemu-system-arm (a failure under CI=true)."""
    if item.get_closest_marker("firmware"):
        require_firmware_tools()

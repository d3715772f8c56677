"""The wheel is complete: built from the checkout, installed (not editable) into a fresh virtual
environment, it converts, builds and runs a shared model from a directory outside the checkout.

The fresh environment takes tinydeploy only from the wheel; its third-party dependencies come from
the project's own environment (a path entry, so no download), which keeps the test offline."""
from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
import zipfile

import pytest

from helpers import ROOT, require_firmware_tools, shared_model

pytestmark = pytest.mark.firmware

RESOURCE_DIRS = ("boards/", "templates/", "firmware/kernels/", "firmware/bsp/", "firmware/runtime/",
                 "firmware/platform/", "renode/")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, tinydeploy executable, environment) of a fresh venv with the wheel installed."""
    work = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(work / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    [wheel] = (work / "dist").glob("tinydeploy-*.whl")
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(purelib, "project-dependencies.pth"), "w") as pth:   # numpy, tflite-micro, ...
        pth.write("\n".join(site.getsitepackages()) + "\n")
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, PATH=f"{env_dir / 'bin'}{os.pathsep}{os.path.dirname(sys.executable)}{os.pathsep}"
                                f"{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    return python, env_dir / "bin" / "tinydeploy", env, wheel


def test_wheel_carries_the_resources(installed):
    *_, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    for folder in RESOURCE_DIRS:
        assert any(n.startswith(f"tinydeploy/resources/{folder}") for n in names), folder
    assert "tinydeploy/resources/boards/mps2-an386.yaml" in names
    assert "tinydeploy/resources/firmware/kernels/td_kernels.h" in names


def test_installed_wheel_converts_builds_and_runs_outside_the_checkout(installed, tmp_path):
    require_firmware_tools()
    python, tinydeploy, env, _ = installed
    where = subprocess.run([str(python), "-c", "import tinydeploy; print(tinydeploy.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert not where.startswith(str(ROOT)), f"tinydeploy imported from the checkout: {where}"
    model = shared_model("mlperf-tiny/kws_ref_model.tflite")
    for args in (["convert", model, "-o", "lib"], ["build", model, "-o", "proj"],
                 ["run", model, "-o", "proj", "--vectors", "2"]):
        proc = subprocess.run([str(tinydeploy), *map(str, args)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, f"{args[0]}: {proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "lib" / "td_kernels.h").exists() and (tmp_path / "proj" / ".pio").is_dir()
    assert "0 (bit-exact with TFLite Micro)" in proc.stdout

"""Isolation: two checkouts of tinydeploy on one machine, two runs of one project at once, and
Ctrl-C in the middle of a build or an emulator run."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinydeploy.core import process, resources
from tinydeploy.platforms import boards
from tinydeploy.platforms.targets import QemuTarget

from helpers import ROOT, shared_model

MODEL = "tflm/hello_world_int8.tflite"
RUN_TIMEOUT = 600
POLL_S = 0.05
HOLD_S = 1.5


def _cli(*args, cwd, pythonpath: Path | None = None, **popen) -> subprocess.Popen:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-m", "tinydeploy.cli", *map(str, args)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def _checkout(where: Path) -> Path:
    """A second tinydeploy installation: this working tree's package (uncommitted work included)."""
    shutil.copytree(ROOT / "tinydeploy", where / "tinydeploy", ignore=shutil.ignore_patterns("__pycache__"))
    return where


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.firmware
def test_two_checkouts_build_and_run_one_model_at_once(tmp_path):
    """Each installation has its own PlatformIO core, so neither's platform link breaks the other's build."""
    checkouts = [_checkout(tmp_path / name) for name in ("a", "b")]
    runs = [_cli("run", shared_model(MODEL), "--vectors", "2", "-o", c / "project", cwd=c, pythonpath=c)
            for c in checkouts]
    for proc in runs:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        assert proc.returncode == 0, err
        assert "0 (bit-exact with TFLite Micro)" in out
    cores = sorted(p.name for p in Path(os.environ["TINYDEPLOY_CACHE"]).glob("platformio-*"))
    assert len(cores) >= 2                     # (this checkout's own core may be there too)


@pytest.mark.firmware
def test_two_runs_of_one_project_at_once(tmp_path):
    """The second waits for the first (and says so on stderr) instead of re-rendering under it."""
    runs = [_cli("run", shared_model(MODEL), "--vectors", "2", "-o", tmp_path / "project", cwd=tmp_path)
            for _ in range(2)]
    results = [proc.communicate(timeout=RUN_TIMEOUT) for proc in runs]
    for proc, (out, err) in zip(runs, results):
        assert proc.returncode == 0, err
        assert "0 (bit-exact with TFLite Micro)" in out
    waited = [err for _, err in results if "waiting for another tinydeploy" in err]
    assert len(waited) <= 1 and all(str(tmp_path / "project") in err for err in waited)


def test_a_held_project_makes_the_next_one_wait_and_say_so(tmp_path):
    project = tmp_path / "project"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from tinydeploy.core import resources as r\n"
        f"r.hold_project(sys.argv[1]); print('held', flush=True); time.sleep({HOLD_S})\n"), str(project)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    heard = []
    started = time.monotonic()
    resources.hold_project(project, say=heard.append)
    waited = time.monotonic() - started
    resources.release_project(project)
    holder.wait()
    assert len(heard) == 1 and f"pid {holder.pid}" in heard[0] and str(project) in heard[0]
    assert waited > HOLD_S / 3


def test_an_interrupt_kills_the_whole_process_group(tmp_path):
    """run_captured (PlatformIO builds) on Ctrl-C: the command and what it started are gone."""
    marker = f"sleep {RUN_TIMEOUT}.{os.getpid()}"
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            process.run_captured(["sh", "-c", f"sleep {RUN_TIMEOUT}.{os.getpid()} & wait"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    time.sleep(POLL_S)
    assert _processes_mentioning(marker) == []


def test_stopping_an_emulator_leaves_no_process(tmp_path):
    """QemuTarget (here a stand-in emulator that starts a child of its own) stops its whole group."""
    fake = tmp_path / "fake-qemu"
    marker = f"{RUN_TIMEOUT}.{os.getpid()}1"
    fake.write_text(f"#!/bin/sh\nsleep {marker} &\necho TD booting\nwait\n")
    fake.chmod(0o755)
    target = QemuTarget(boards.get("mps2-an386"), tmp_path / "none.elf", str(fake))
    with pytest.raises(KeyboardInterrupt):
        with target:
            for line in target.lines(RUN_TIMEOUT):
                assert line == "TD booting"
                raise KeyboardInterrupt
    assert target.proc.poll() is not None
    time.sleep(POLL_S)
    assert _processes_mentioning(f"sleep {marker}") == []


@pytest.mark.firmware
def test_ctrl_c_during_a_build_exits_130_and_leaves_no_process(tmp_path):
    project = tmp_path / "project"
    proc = _cli("build", shared_model(MODEL), "--vectors", "2", "-o", project, cwd=tmp_path)
    deadline = time.monotonic() + RUN_TIMEOUT
    while not (project / ".pio").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert proc.poll() is None, "the build ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    time.sleep(POLL_S)
    assert _processes_mentioning(str(project)) == []
    assert not (project / ".pio" / "build" / "mps2-an386" / "firmware.elf").exists()

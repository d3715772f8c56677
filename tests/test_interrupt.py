"""Ctrl-C leaves nothing behind: Renode's whole process group goes with an interrupt or a failed start,
and `tinydeploy run` interrupted while QEMU runs exits 130 with one line, no emulator and no half output."""
from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tinydeploy.core.errors import TinyDeployError
from tinydeploy.core.resources import MARKER, lock_file
from tinydeploy.platforms import boards
from tinydeploy.platforms.targets import RenodeTarget

from helpers import assert_clean_failure, shared_model

BOARD = "mps2-an386"
# ad01 at 425k instructions per inference: 1,000 vectors keep QEMU busy for seconds, long enough to catch.
RUN_MODEL, RUN_VECTORS = "mlperf-tiny/ad01_int8.tflite", 1000
HANG_S = 600            # bounds on waits that only end early when something is broken (not timings)
POLL_S = 0.05
GONE_S = 10             # a killed process is gone in milliseconds; one still there after this was not killed

# A stand-in for renode (not installable here): it starts a child of its own, says which process group it is
# in, then fails, waits without a console, or serves the console the way Renode's socket terminal does.
FAKE_MODES = ("fail", "wait", "console")
FAKE_RENODE = '''#!{python}
import os, re, socket, subprocess, sys, time
subprocess.Popen(["sleep", "{marker}"])
mode, ready = "{mode}", "{ready}"
if mode == "fail":
    sys.exit(1)
if mode == "console":
    port = int(re.search(r"CreateServerSocketTerminal (\\d+)", sys.argv[-1]).group(1))
    server = socket.create_server(("127.0.0.1", port))
with open(ready, "w") as f:
    f.write(str(os.getpgrp()))
if mode == "console":
    connection, _ = server.accept()
    connection.sendall(b"TD booting\\n")
time.sleep({hang})
'''


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) of ``pid``, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2])


def _live_processes() -> dict[int, tuple[str, int, int]]:
    """Every process that is not a zombie (one whose parent died is not always reaped in a container)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None and stat[0] != "Z":
            found[int(entry.name)] = stat
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _group(pgid: int) -> list[int]:
    return [pid for pid, (_, _, group) in _live_processes().items() if group == pgid]


def _running(argument: str) -> list[int]:
    return [pid for pid in _live_processes() if pid != os.getpid() and argument in _cmdline(pid)]


def _eventually_empty(find) -> list[int]:
    """``find()`` polled until it finds nothing (a killed process can take a moment to be gone)."""
    deadline = time.monotonic() + GONE_S
    while (found := find()) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _fake_renode(tmp_path: Path, monkeypatch, mode: str) -> tuple[str, Path]:
    """Put a fake `renode` first on PATH; returns the argument of its child `sleep` and its ready file."""
    marker = f"{HANG_S}.{os.getpid()}{FAKE_MODES.index(mode)}"     # a `sleep` argument no other test uses
    ready = tmp_path / "ready"
    script = tmp_path / "renode"
    script.write_text(FAKE_RENODE.format(python=sys.executable, marker=marker, mode=mode, ready=ready, hang=HANG_S))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return marker, ready


@pytest.fixture(autouse=True)
def sigint_raises_keyboard_interrupt():
    """Python's own SIGINT handler for these tests: pytest-xdist's workers ignore SIGINT (the controller
    takes Ctrl-C), and an ignored signal would also stay ignored in the CLI they start."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _wait_for(path: Path) -> str:
    deadline = time.monotonic() + HANG_S
    while not (path.exists() and path.read_text()) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return path.read_text()


def test_ctrl_c_while_renode_starts_kills_its_process_group(tmp_path, monkeypatch):
    """SIGINT while tinydeploy waits for Renode's console socket: Renode and its child are gone."""
    marker, ready = _fake_renode(tmp_path, monkeypatch, "wait")
    seen = {}

    def interrupt_once_started():
        seen["pgid"] = int(_wait_for(ready))
        seen["members"] = _group(seen["pgid"])
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_once_started)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            RenodeTarget(boards.get(BOARD), tmp_path / "firmware.elf", port=_free_port())
    finally:
        interrupter.join()
    assert seen["pgid"] != os.getpgrp() and len(seen["members"]) == 2     # its own group: renode and its child
    assert _eventually_empty(lambda: _group(seen["pgid"])) == []
    assert _running(marker) == []


def test_renode_failing_to_start_leaves_no_child(tmp_path, monkeypatch):
    """Renode exits before opening its console: one clear error, and what it started is killed too."""
    marker, _ = _fake_renode(tmp_path, monkeypatch, "fail")
    with pytest.raises(TinyDeployError, match=r"Renode exited \(status 1\) before opening its console"):
        RenodeTarget(boards.get(BOARD), tmp_path / "firmware.elf", port=_free_port())
    assert _eventually_empty(lambda: _running(marker)) == []


def test_ctrl_c_during_a_renode_run_kills_its_process_group(tmp_path, monkeypatch):
    """SIGINT while the console is being read: stopping the target kills Renode's whole group."""
    marker, ready = _fake_renode(tmp_path, monkeypatch, "console")
    with pytest.raises(KeyboardInterrupt):
        with RenodeTarget(boards.get(BOARD), tmp_path / "firmware.elf", port=_free_port()) as target:
            for line in target.lines(HANG_S):
                assert line == "TD booting"
                pgid = int(ready.read_text())
                assert pgid == target.proc.pid and len(_group(pgid)) == 2
                signal.raise_signal(signal.SIGINT)
    assert target.proc.poll() is not None
    assert _eventually_empty(lambda: _group(pgid)) == []
    assert _running(marker) == []


def _qemu_child(parent: int) -> int | None:
    for pid, (_, ppid, _) in _live_processes().items():
        if ppid == parent and Path(_cmdline(pid)[0]).name == "qemu-system-arm":
            return pid
    return None


@pytest.mark.firmware
def test_ctrl_c_during_a_qemu_run_exits_130_and_leaves_nothing_behind(tmp_path):
    project, measurement = tmp_path / "project", tmp_path / "measurement.json"
    proc = subprocess.Popen([sys.executable, "-m", "tinydeploy.cli", "run", str(shared_model(RUN_MODEL)),
                             "--board", BOARD, "--vectors", str(RUN_VECTORS), "-o", str(project),
                             "--json", str(measurement)],
                            cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + HANG_S
    while (qemu := _qemu_child(proc.pid)) is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert qemu is not None and proc.poll() is None, "QEMU never ran, or the run ended before it was interrupted"
    qemu_group = _stat(qemu)[2]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=HANG_S)

    assert proc.returncode == 130
    assert_clean_failure(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), "interrupted")
    assert "mismatches" not in out                               # interrupted before the results, not after
    assert _eventually_empty(lambda: _group(qemu_group)) == []
    assert _running(str(project / ".pio" / "build" / BOARD / "firmware.elf")) == []
    # the project is the complete one rendered and built before QEMU started; nothing half-written beside it
    assert (project / MARKER).exists() and (project / "tinydeploy.json").exists()
    assert (project / ".pio" / "build" / BOARD / "firmware.elf").exists()
    assert not measurement.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["project", lock_file(project).name])
    with open(lock_file(project)) as lock:                      # and the project's lock is free again
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

"""Where firmware runs: an emulator or a real board on a serial port.

Both give the same thing: the console's lines, one at a time, so the host
side of the protocol is the same for QEMU and for hardware.
"""
from __future__ import annotations

import atexit
import selectors
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

from tinydeploy.platforms.boards import Board
from tinydeploy.core.errors import BadInput, MissingTool, TinyDeployError
from tinydeploy.core.process import kill_group
from tinydeploy.core.resources import RENODE


# Renode takes a few seconds to open its console socket: how long to wait for it, and how often to try.
RENODE_START_S = 20.0
RENODE_POLL_S = 0.2

# Emulators started and not yet stopped: killed when the process exits (an interrupt between start and `with`).
_running: set[subprocess.Popen] = set()


@atexit.register
def _stop_running() -> None:
    for proc in list(_running):
        kill_group(proc)


class Target:
    """Start the firmware, read console lines, stop."""
    counts_instructions = False       # True when ticks are an exact instruction count
    exit_status: int | None = None

    def lines(self, timeout: float) -> Iterator[str]:
        raise NotImplementedError

    def finish(self, timeout: float) -> None:
        """Called after the last protocol line: collect the exit status where there is one."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class QemuTarget(Target):
    """QEMU with -icount (deterministic: the tick counter advances a fixed amount per
    instruction), console on stdio, exit status through semihosting or a test device.
    ``binary``: the QEMU system emulator (the platform resolves the board's default)."""
    counts_instructions = True

    def __init__(self, board: Board, elf: Path, binary: str):
        qemu = board.qemu
        if qemu is None:
            raise BadInput(f"board '{board.name}' has no emulator; run it on the board with --port")
        if shutil.which(binary) is None:
            raise MissingTool(f"{binary} not found; run `tinydeploy doctor`")
        self.command = [binary, "-M", qemu.machine, "-nographic", "-monitor", "none", "-serial", "stdio",
                        "-semihosting-config", "enable=on,target=native",
                        "-icount", f"shift={qemu.icount_shift},align=off,sleep=off", *qemu.args, "-kernel", str(elf)]
        # its own process group: Ctrl-C reaches tinydeploy only, which then stops QEMU (stop(), or at exit)
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        _running.add(self.proc)

    def lines(self, timeout: float) -> Iterator[str]:
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        pending = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if not sel.select(timeout=left):
                continue
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode(errors="replace").rstrip("\r")
        if pending:
            yield pending.decode(errors="replace").rstrip("\r")
        self.finish(max(1.0, deadline - time.monotonic()))

    def finish(self, timeout: float) -> None:
        try:
            self.exit_status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TinyDeployError(f"the firmware reported its results but did not exit within {timeout:.0f} s")

    def stop(self) -> None:
        kill_group(self.proc)
        _running.discard(self.proc)


class SerialTarget(Target):
    """A real board on a serial port, already flashed (`tinydeploy flash`).
    SysTick ticks there are core clock cycles."""

    def __init__(self, port: str, baudrate: int = 115200):
        try:
            import serial
        except ImportError:
            raise MissingTool("pyserial is not installed; run `pip install pyserial`")
        try:
            self.serial = serial.serial_for_url(port, baudrate=baudrate, timeout=0.2)
        except (serial.SerialException, ValueError) as exc:
            raise TinyDeployError(f"cannot open serial port {port}: {exc}; check the cable and the port name")

    def lines(self, timeout: float) -> Iterator[str]:
        import serial
        deadline = time.monotonic() + timeout
        pending = b""
        closed = False
        while time.monotonic() < deadline:
            try:
                # never ask for more than is waiting: pyserial drops a partial read when the link closes
                chunk = self.serial.read(max(1, self.serial.in_waiting))
            except serial.SerialException:      # the other end went away (board reset, emulator exited)
                chunk, closed = b"\n", True
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode(errors="replace").rstrip("\r")
            if closed:
                return                          # the reader says what was missing
        raise TimeoutError

    def stop(self) -> None:
        self.serial.close()


class RenodeTarget(SerialTarget):
    """The board in Renode (renode/<board>.resc), its console on a local TCP socket.
    Renode's ticks are not an exact instruction count, so they are reported as ticks."""

    def __init__(self, board: Board, elf: Path, port: int = 33451, scripts: Path = RENODE):
        from tinydeploy.platforms import renode      # here: renode imports the platform registry, which imports us
        self.proc = renode.launch(board, elf, port, scripts)
        _running.add(self.proc)
        try:
            self._connect(port, renode.script_for(board, scripts))
        except BaseException:                          # Ctrl-C or a failure while Renode starts: its group goes too
            self.stop()
            raise

    def _connect(self, port: int, script: Path) -> None:
        deadline = time.monotonic() + RENODE_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TinyDeployError(f"Renode exited (status {self.proc.returncode}) before opening its console "
                                      f"socket on port {port}; run {script} by hand to see why")
            try:
                super().__init__(f"socket://127.0.0.1:{port}")
                return
            except MissingTool:
                raise
            except TinyDeployError:
                time.sleep(RENODE_POLL_S)
        raise TinyDeployError(f"Renode did not open its console socket on port {port} within {RENODE_START_S:.0f} s; "
                              f"run {script} by hand to see why")

    def stop(self) -> None:
        if hasattr(self, "serial"):
            super().stop()
        kill_group(self.proc)
        _running.discard(self.proc)

"""Line protocol v2 against a faulty link or board: a fake board (a local TCP server) replays a real
firmware's console stream over the serial/socket path with one fault injected, and every fault is a
clear failure (ProtocolError, exit 1), never a pass. The firmware is built and run in QEMU once."""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from tinydeploy.core.errors import BadInput, ProtocolError
from tinydeploy.pipeline import build_firmware, run_firmware
from tinydeploy.platforms.registry import platform_for
from tinydeploy.platforms.targets import SerialTarget
from tinydeploy.verify import protocol
from tinydeploy.verify.compare import run_and_verify

from helpers import shared_model

pytestmark = pytest.mark.firmware

MODEL = "tflm/hello_world_int8.tflite"
VECTORS = 4
READ_TIMEOUT = 10.0
BOOT_NOISE = "tinydeploy mps2-an386 boot"
OPEN_SETTLE_S = 0.3


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The firmware (built once) and the console lines one real QEMU run printed."""
    fw = build_firmware(shared_model(MODEL), "mps2-an386", tmp_path_factory.mktemp("faults") / "p", VECTORS)
    with platform_for(fw.board).open_transport(fw.elf) as target:
        lines = list(target.lines(READ_TIMEOUT * 3))
    return fw, [line for line in lines if line.strip()]


class FakeBoard:
    """A local TCP server that sends ``lines`` (each ended by CR LF) to the first client, then hangs up."""

    def __init__(self, lines: list[str]):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.payload = "".join(line + "\r\n" for line in lines).encode(errors="surrogateescape")
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.server.accept()
        with conn:
            time.sleep(OPEN_SETTLE_S)        # pyserial discards what arrives while it opens the port
            conn.sendall(self.payload)
        self.server.close()

    def read(self, project):
        with SerialTarget(f"socket://127.0.0.1:{self.port}") as target:
            return run_and_verify(project, target, timeout=READ_TIMEOUT)


def replay(fw, lines):
    return FakeBoard(lines).read(fw.project)


def split(line: str) -> tuple[str, list[str]]:
    """A framed line's kind and the fields after its sequence number."""
    parts = line.split()
    return parts[1], parts[3:-1]


def renumbered(lines: list[str]) -> list[str]:
    """Protocol lines framed again with consecutive numbers and fresh checksums (a firmware that
    really printed them so); other lines as they are."""
    out, seq = [], 0
    for line in lines:
        if not line.startswith("TD "):
            out.append(line)
            continue
        kind, fields = split(line)
        seq = 0 if kind == "BEGIN" else seq
        out.append(protocol.frame(kind, seq, *fields))
        seq += 1
    return out


def index_of(lines, kind, nth=0):
    return [i for i, line in enumerate(lines) if line.startswith(f"TD {kind} ")][nth]


def test_a_real_qemu_run_speaks_v2_and_passes(recorded):
    fw, lines = recorded
    result = run_firmware(fw)
    assert result.protocol_version == protocol.PROTOCOL_VERSION == 2
    assert result.mismatches == [] and len(result.outputs) == VECTORS and result.exit_status == 0
    assert all(line.rpartition(" *")[2] == protocol.checksum(line.rpartition(" *")[0])
               for line in lines if line.startswith("TD "))


def test_the_fake_board_replays_a_passing_run(recorded):
    fw, lines = recorded
    result = replay(fw, [BOOT_NOISE] + lines)
    assert result.mismatches == [] and len(result.outputs) == VECTORS
    np.testing.assert_array_equal(result.outputs, result.expected)


def _reset_after_second_output(lines):
    cut = index_of(lines, "OUT", 1) + 1
    return lines[:cut] + [BOOT_NOISE] + lines


def _reset_mid_line(lines):
    cut = index_of(lines, "OUT", 1)
    return lines[:cut] + [lines[cut][: len(lines[cut]) // 2] + BOOT_NOISE] + lines


def _garbage_line(lines):
    cut = index_of(lines, "OUT", 0)
    return lines[:cut] + ["\x00\x7f#@!~ garbage ~\x1b"] + lines[cut:]


def _flipped_digit(lines):
    i = index_of(lines, "OUT", 2)
    head, tail = lines[i].rsplit(" ", 1)
    bad = head[:-1] + ("0" if head[-1] != "0" else "1")           # one hex digit of the output changed
    return lines[:i] + [f"{bad} {tail}"] + lines[i + 1:]


def _dropped_output(lines):
    i = index_of(lines, "OUT", 1)
    return lines[:i] + lines[i + 1:]


def _repeated_line(lines):
    i = index_of(lines, "OUT", 1)
    return lines[:i + 1] + [lines[i]] + lines[i + 1:]


def _vector_reported_twice(lines):
    i = index_of(lines, "OUT", 1)
    return renumbered(lines[:i + 1] + [lines[i]] + lines[i + 1:])


def _vectors_swapped(lines):
    i, j = index_of(lines, "OUT", 1), index_of(lines, "OUT", 2)
    swapped = list(lines)
    swapped[i], swapped[j] = lines[j], lines[i]
    return renumbered(swapped)


def _dropped_end(lines):
    return lines[:index_of(lines, "END")]


FAULTS = {
    "board reset mid-run": (_reset_after_second_output, "restarted mid-run"),
    "board reset mid-line": (_reset_mid_line, "restarted mid-run"),
    "garbage line": (_garbage_line, "garbage on the console"),
    "garbled byte": (_flipped_digit, "checksum does not match"),
    "dropped line": (_dropped_output, "line 3 of the protocol dropped"),
    "repeated line": (_repeated_line, "protocol line 3 repeated"),
    "vector reported twice": (_vector_reported_twice, "vector 1 reported twice"),
    "vectors out of order": (_vectors_swapped, "vector 2 reported after 1 of"),
    "no TD END": (_dropped_end, "no TD END"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_on_the_link_fails_the_run(recorded, fault):
    fw, lines = recorded
    inject, expected = FAULTS[fault]
    with pytest.raises(ProtocolError) as failed:
        replay(fw, inject(lines))
    message = str(failed.value)
    assert expected in message and "\n" not in message and failed.value.exit_code == 1


def test_a_version_1_firmware_is_refused_with_rebuild(recorded):
    fw, lines = recorded
    kind, fields = split(lines[index_of(lines, "BEGIN")])
    old_begin = " ".join(["TD", kind, *fields]).replace(" v=2 ", " v=1 ")       # v1: no number, no checksum
    with pytest.raises(BadInput, match="speaks line protocol v1, this tinydeploy reads v2: rebuild"):
        replay(fw, [old_begin])

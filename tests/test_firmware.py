"""Firmware built with PlatformIO, run in QEMU, every output byte checked
against the TFLite Micro reference. Each (model, board) is built once."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time

import numpy as np
import pytest

from tinydeploy.analysis import measurement
from tinydeploy.core.errors import BadInput, TinyDeployError
from tinydeploy.core.resources import FIRMWARE
from tinydeploy.pipeline import build_firmware, run_firmware
from tinydeploy.platforms.registry import platform_for
from tinydeploy.platforms.targets import SerialTarget, Target
from tinydeploy.verify import protocol
from tinydeploy.verify.compare import run_and_verify

from helpers.kernel_paths import CASES, fully_connected
from helpers.tflite_builder import ModelBuilder, random_fc_layer

from helpers import SHARED_MODEL_NAMES, shared_model, tinydeploy

pytestmark = pytest.mark.firmware

_built = {}


def firmware(tmp_path_factory, rel: str, board: str, vectors: int = 5):
    key = (rel, board)
    if key not in _built:
        out = tmp_path_factory.mktemp("fw") / f"{board}"
        _built[key] = build_firmware(shared_model(rel), board, out, vectors)
    return _built[key]


@pytest.mark.parametrize("rel,board", [("tflm/hello_world_int8.tflite", "mps2-an386"),
                                       ("tflm/hello_world_int8.tflite", "lm3s6965evb"),
                                       ("mlperf-tiny/ad01_int8.tflite", "mps2-an386")])
def test_emulated_run_is_bit_exact(tmp_path_factory, rel, board):
    fw = firmware(tmp_path_factory, rel, board)
    result = run_firmware(fw)
    assert result.exit_status == 0
    assert len(result.outputs) == 5
    assert result.mismatches == []
    np.testing.assert_array_equal(result.outputs, result.expected)
    # -icount makes the count exact and repeatable: same vectors, same count
    again = run_firmware(fw)
    assert again.instructions == result.instructions
    assert all(i > fw.model.macs for i in result.instructions)


@pytest.mark.parametrize("rel", [m for m in SHARED_MODEL_NAMES
                                 if m not in ("tflm/hello_world_int8.tflite", "mlperf-tiny/ad01_int8.tflite")])
def test_every_shared_model_is_bit_exact_in_qemu(tmp_path_factory, rel):
    """`run --board mps2-an386 MODEL --vectors 5` with 0 mismatches for the seven shared models
    (hello_world and ad01 run in the test above)."""
    fw = firmware(tmp_path_factory, rel, "mps2-an386")
    result = run_firmware(fw)
    assert result.exit_status == 0 and len(result.outputs) == 5
    assert result.mismatches == []
    np.testing.assert_array_equal(result.outputs, result.expected)


@pytest.mark.parametrize("board", ["mps2-an386", "lm3s6965evb"])
def test_float_input_and_output_at_the_boundary(tmp_path, board):
    """float32 in, QUANTIZE, FULLY_CONNECTED, DEQUANTIZE, float32 out: on the M4F's FPU and in the M3's soft float."""
    rng = np.random.default_rng(5)
    b = ModelBuilder()
    x = b.tensor((1, 24), np.float32)
    q = b.tensor((1, 24), np.int8, 0.04, -3)
    b.unary("QUANTIZE", x, q)
    h = random_fc_layer(b, rng, q, 10, per_channel=True, activation=0)
    y = b.tensor((1, 10), np.float32)
    b.unary("DEQUANTIZE", h, y)
    path = tmp_path / "float_io.tflite"
    path.write_bytes(b.finish([x], [y]))
    fw = build_firmware(path, board, tmp_path / "fw", vectors=5)
    result = run_firmware(fw)
    assert result.outputs.dtype == np.float32 and result.outputs.shape == (5, 10)
    assert result.mismatches == []
    np.testing.assert_array_equal(result.outputs.view(np.int32), result.expected.view(np.int32))


def test_calibration_is_the_icount_ratio(tmp_path_factory):
    """SysTick at 25 MHz with 64 ns per instruction: 1.6 ticks per instruction."""
    result = run_firmware(firmware(tmp_path_factory, "tflm/hello_world_int8.tflite", "mps2-an386"))
    assert abs(result.ticks_per_instruction - 1.6) < 1e-3


def test_size_report_reads_the_elf(tmp_path_factory):
    fw = firmware(tmp_path_factory, "mlperf-tiny/ad01_int8.tflite", "mps2-an386")
    assert fw.size.flash >= fw.model.weight_bytes + fw.size.sections[".isr_vector"]
    assert fw.size.ram >= fw.model.plan.arena_size + 4096
    manifest = json.loads((fw.project / "tinydeploy.json").read_text())
    assert manifest["model"]["arena_bytes"] == fw.model.plan.arena_size


QEMU_LISTEN_WAIT_S = 10.0
PORT_ATTEMPTS = 5
TCP_LISTEN = "0A"                  # /proc/net/tcp's state code of a listening socket


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on 127.0.0.1:``port`` (from /proc/net/tcp)."""
    inodes = set()
    with open("/proc/net/tcp") as table:
        for row in list(table)[1:]:
            fields = row.split()
            if fields[1] == f"0100007F:{port:04X}" and fields[3] == TCP_LISTEN:
                inodes.add(fields[9])
    return inodes


def _owns_socket(pid: int, inodes: set[str]) -> bool:
    fd_dir = f"/proc/{pid}/fd"
    try:
        links = [os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir)]
    except OSError:
        return False
    return any(link == f"socket:[{inode}]" for link in links for inode in inodes)


def _qemu_serving_uart(elf) -> tuple[subprocess.Popen, int]:
    """QEMU running ``elf`` with its UART on a TCP port it is seen listening on (a free port is picked and
    re-picked if another process took it first: tests in other workers open ports too)."""
    for _ in range(PORT_ATTEMPTS):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        qemu = subprocess.Popen(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                                 "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on",
                                 "-semihosting-config", "enable=on,target=native",
                                 "-icount", "shift=6,align=off,sleep=off", "-kernel", str(elf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + QEMU_LISTEN_WAIT_S
        while qemu.poll() is None and time.monotonic() < deadline:
            if _owns_socket(qemu.pid, _listening_inodes(port)):
                return qemu, port
            time.sleep(0.05)
        qemu.kill()
        qemu.wait()
    pytest.fail(f"QEMU did not listen on a TCP port in {PORT_ATTEMPTS} attempts")


def test_serial_host_side_against_emulator_stream(tmp_path_factory):
    """The serial target reads the same protocol from QEMU's UART on a TCP socket."""
    fw = firmware(tmp_path_factory, "tflm/hello_world_int8.tflite", "mps2-an386")
    qemu, port = _qemu_serving_uart(fw.elf)
    try:
        with SerialTarget(f"socket://127.0.0.1:{port}") as target:
            result = run_and_verify(fw.project, target, timeout=30)
    finally:
        qemu.kill()
        qemu.wait()
    assert result.mismatches == [] and len(result.outputs) == 5
    assert result.instructions is None            # a serial board reports cycles, not instruction counts


class _Rewritten(Target):
    """Another target's console lines, each passed through ``edit`` (a firmware that speaks otherwise)."""

    def __init__(self, inner: Target, edit):
        self.inner, self.edit, self.seen = inner, edit, []
        self.counts_instructions = inner.counts_instructions

    def lines(self, timeout):
        for line in self.inner.lines(timeout):
            self.seen.append(line)
            yield self.edit(line)

    def finish(self, timeout):
        self.inner.finish(timeout)
        self.exit_status = self.inner.exit_status

    def stop(self):
        self.inner.stop()


def _run_rewritten(fw, edit):
    with _Rewritten(platform_for(fw.board).open_transport(fw.elf), edit) as target:
        return run_and_verify(fw.project, target, timeout=30), target.seen


def test_protocol_versions_agree():
    header = (FIRMWARE / "runtime" / "td_protocol.h").read_text()
    assert int(re.search(r"#define TD_PROTOCOL_VERSION (\d+)", header).group(1)) == protocol.PROTOCOL_VERSION


def test_begin_line_carries_the_protocol_version(tmp_path_factory):
    fw = firmware(tmp_path_factory, "tflm/hello_world_int8.tflite", "mps2-an386")
    result, seen = _run_rewritten(fw, lambda line: line)
    [begin] = [line for line in seen if line.startswith("TD BEGIN")]
    fingerprint = json.loads((fw.project / "tinydeploy.json").read_text())["fingerprint"]
    assert begin == protocol.frame("BEGIN", 0, "hello_world_int8", f"v={protocol.PROTOCOL_VERSION}", "vectors=5",
                                   "in=1", "out=1", f"id={fingerprint}")
    assert result.protocol_version == protocol.PROTOCOL_VERSION and result.mismatches == []
    protocol_lines = [line.split() for line in seen if line.startswith("TD ")]
    assert [parts[1] for parts in protocol_lines] == ["BEGIN", "CAL"] + ["OUT"] * 5 + ["END"]
    assert [int(parts[2]) for parts in protocol_lines] == list(range(8))          # numbered from 0


@pytest.mark.parametrize("edit,spoken", [
    (lambda line: line.replace(" v=2 ", " v=3 "), "speaks line protocol v3"),
    (lambda line: line.replace(" v=2 ", " "), "speaks no protocol version"),
])
def test_a_firmware_with_another_protocol_version_is_refused(tmp_path_factory, edit, spoken):
    """The real firmware's stream, its TD BEGIN doctored: refused in one line that says to rebuild."""
    fw = firmware(tmp_path_factory, "tflm/hello_world_int8.tflite", "mps2-an386")
    with pytest.raises(BadInput) as refused:
        _run_rewritten(fw, edit)
    message = str(refused.value)
    assert spoken in message and f"reads v{protocol.PROTOCOL_VERSION}" in message and "rebuild" in message
    assert "\n" not in message and refused.value.exit_code == 2


class _Lines(Target):
    def __init__(self, lines):
        self._lines = lines

    def lines(self, timeout):
        yield from self._lines

    def stop(self):
        pass


def test_protocol_parses_every_line_kind_and_refuses_garbage():
    f = protocol.frame
    lines = ["boot noise", f("OUT", 5, 9, 9, "ff"), f("BEGIN", 0, "m", "v=2", "vectors=2", "in=3", "out=2", "id=abc"),
             f("CAL", 1, 160, 100), f("OUT", 2, 0, 16, "ff01"), f("LAYERS", 3, 0, 10, 6), f("OUT", 4, 1, 32, "7f80"),
             f("LAYERS", 5, 1, 20, 12), f("END", 6, 0)]
    session = protocol.read(_Lines(lines), "abc", 2, 2, 5.0)
    assert session.begin == protocol.Begin("m", 2, 2, 3, 2, "abc", 0) and session.status == 0
    assert session.outputs.tolist() == [[-1, 1], [127, -128]] and session.ticks == [16, 32]
    assert session.ticks_per_instruction == 1.6 and session.layer_ticks == [[10, 6], [20, 12]]
    with pytest.raises(BadInput, match="id xyz, expected abc"):
        protocol.read(_Lines([f("BEGIN", 0, "m", "v=2", "vectors=2", "in=3", "out=2", "id=xyz")]), "abc", 2, 2, 5.0)
    with pytest.raises(TinyDeployError, match="garbled protocol line"):
        protocol.read(_Lines(lines[2:4] + [f("OUT", 2, 0, 16, "fz01")]), "abc", 2, 2, 5.0)
    with pytest.raises(TinyDeployError, match="stopped after 1 of 2 vectors"):
        protocol.read(_Lines(lines[2:6]), "abc", 2, 2, 5.0)


def test_measurement_json_round_trips(tmp_path_factory, tmp_path):
    fw = firmware(tmp_path_factory, "mlperf-tiny/ad01_int8.tflite", "mps2-an386")
    result = run_firmware(fw)
    m = measurement.measure(fw, result)
    assert m.instructions.median == sorted(result.instructions)[2] and m.cycles is None
    assert m.flash.total == fw.size.flash and m.flash.code + m.flash.weights + m.flash.vectors == m.flash.total
    assert m.ram.arena == fw.model.plan.arena_size and m.ram.tflm_arena == fw.reference_arena
    assert m.mismatches == measurement.Mismatches(0, 0) and m.layers is None
    data = m.to_json()
    assert data["schema"] == "tinydeploy.measurement" and data["version"] == 1
    (tmp_path / "m.json").write_text(json.dumps(data, indent=2))
    assert measurement.load(tmp_path / "m.json") == m
    doctored = json.loads(json.dumps(data))
    doctored["instructions"]["min"] = 1.5
    with pytest.raises(BadInput, match=r"m.json: instructions.min: expected an integer, got 1.5"):
        measurement.Measurement.from_json(doctored, str(tmp_path / "m.json"))
    with pytest.raises(BadInput, match="measurement version 2"):
        measurement.Measurement.from_json({**data, "version": 2})
    with pytest.raises(BadInput, match="no such measurement file"):
        measurement.load(tmp_path / "missing.json")


def test_run_json_writes_one_measurement(tmp_path):
    proc = tinydeploy("run", shared_model("tflm/hello_world_int8.tflite"), "--vectors", "3", "-o", tmp_path / "p",
                      "--json", tmp_path / "m.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    m = measurement.load(tmp_path / "m.json")
    assert (m.model, m.board, m.ran_on, m.runtime, m.vectors) == ("hello_world_int8", "mps2-an386", "mps2-an386", "aot", 3)
    assert m.instructions.min <= m.instructions.median <= m.instructions.max and m.instructions.min > m.macs
    assert m.estimated_time.ms == pytest.approx(1000 * m.instructions.median / m.estimated_time.clock_hz)
    assert m.flash.total > m.flash.code > 0 and m.ram.total >= m.ram.arena + m.ram.stack
    assert f"{m.instructions.min:,} / {m.instructions.median:,.0f} / {m.instructions.max:,}" in proc.stdout


def _kernel_path_models():
    models = {name: build for name, (build, kernel, _) in CASES.items() if kernel != "td_depthwise_conv_s8"}
    for batches, depth, rows in [(1, 13, 7), (1, 3, 6), (1, 64, 16), (2, 10, 9)]:
        models[f"fully connected {batches}x{depth} -> {rows}"] = (
            lambda rng, b=batches, d=depth, r=rows: fully_connected(rng, b, d, r))
    return models


KERNEL_PATH_MODELS = _kernel_path_models()


# The Cortex-M0 runs the host's portable C; a few models check it without unaligned loads.
ON_THE_M0 = [name for name in KERNEL_PATH_MODELS if name.startswith(
    ("fully connected 1x13", "3x3 windows gathered", "depthwise 3x3 stride 2", "depthwise, other window", "ADD over",
     "int4 weights, a tail"))]


@pytest.mark.parametrize("name,board", [(name, "mps2-an386") for name in KERNEL_PATH_MODELS]
                         + [(name, "microbit") for name in ON_THE_M0])
def test_kernel_paths_bit_exact_on_the_cores(tmp_path, name, board):
    """Each specialised kernel path once more in QEMU on the Cortex-M4F, where the DSP
    instructions and the inline-assembly loops run instead of the host's portable C, and
    some on the Cortex-M0, which has neither DSP instructions nor unaligned loads."""
    import zlib
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    path = tmp_path / "case.tflite"
    path.write_bytes(KERNEL_PATH_MODELS[name](rng))
    result = run_firmware(build_firmware(path, board, tmp_path / "fw", vectors=3))
    assert result.exit_status == 0 and len(result.outputs) == 3
    assert result.mismatches == []
    np.testing.assert_array_equal(result.outputs, result.expected)

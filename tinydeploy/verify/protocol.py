"""The line protocol between the test firmware and the host (version 1).

The test firmware (``td_runtime.c``; version and keywords in ``td_protocol.h``)
runs its baked-in vectors and reports over the console: QEMU's UART, or a
board's serial port. The emulator and a real board speak the same protocol,
so the host reads both the same way. One record per line, fields separated by
single spaces, lines ended by ``\\r\\n``::

    TD BEGIN <model> v=<version> vectors=<n> in=<bytes> out=<bytes> id=<fingerprint>
    TD CAL <ticks> <instructions>
    TD OUT <index> <ticks> <output bytes as hex>
    TD LAYERS <index> <ticks of operator 0> <ticks of operator 1> ...
    TD END <status>

- ``TD BEGIN`` opens a run: the model's name, the protocol version ``v``
  (currently 1), how many vectors follow, the input and output size of one
  vector in bytes, and ``id``, the CRC-32 fingerprint of the model and the
  baked-in vectors. The host refuses a firmware whose version differs from its
  own (or that has none: built before the protocol had versions) and one whose
  ``id`` is not the project's; either way the board runs another build, to be
  rebuilt and flashed again.
- ``TD CAL`` follows once: the ticks spent in a loop of a known number of
  instructions. Under QEMU ``-icount`` ticks advance a fixed amount per
  instruction, so the ratio turns ticks into exact instruction counts; on a
  real board the ticks are the core's cycles and are reported as such.
- ``TD OUT`` comes once per vector, in order from 0: the ticks one
  ``invoke()`` took (the cost of reading the counter taken off), then the
  output's raw bytes in lower-case hex, ``out`` bytes: int8 values, or
  little-endian float32 for a float output.
- ``TD LAYERS`` follows each ``TD OUT`` in profiling builds only
  (``-DTD_PROFILE``): the ticks spent in each operator of that vector's
  inference, in operator order.
- ``TD END`` closes the run with the OR of every ``invoke()``'s return value
  (0: all succeeded).

Lines that do not start with ``TD``, and anything before ``TD BEGIN`` (boot
messages), are ignored. A ``TD`` line that does not parse after ``TD BEGIN``
is a garbled link (baud rate, cable) and fails the run, as does a firmware
that stops, or goes silent, before reporting every vector.

A change to any line's layout, or a new required field, raises the version
here (``PROTOCOL_VERSION``) and in ``td_protocol.h`` (``TD_PROTOCOL_VERSION``)
together.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinydeploy.core.errors import BadInput, TinyDeployError
from tinydeploy.platforms.targets import Target

PROTOCOL_VERSION = 1
PREFIX = "TD"
BEGIN, CAL, OUT, LAYERS, END = "BEGIN", "CAL", "OUT", "LAYERS", "END"


@dataclass(frozen=True)
class Begin:
    """``TD BEGIN <model> v=<version> vectors=<n> in=<bytes> out=<bytes> id=<fingerprint>``"""
    model: str
    version: int | None                 # None: a firmware from before the protocol had versions
    vectors: int | None
    in_bytes: int | None
    out_bytes: int | None
    id: str | None


@dataclass(frozen=True)
class Calibration:
    """``TD CAL <ticks> <instructions>``"""
    ticks: int
    instructions: int


@dataclass(frozen=True)
class Output:
    """``TD OUT <index> <ticks> <hex>``"""
    index: int
    ticks: int
    data: bytes


@dataclass(frozen=True)
class Layers:
    """``TD LAYERS <index> <ticks> ...``"""
    index: int
    ticks: list[int]


@dataclass(frozen=True)
class End:
    """``TD END <status>``"""
    status: int


Line = Begin | Calibration | Output | Layers | End


@dataclass
class Session:
    """Everything one run of the test firmware reported, vectors in index order."""
    begin: Begin
    outputs: np.ndarray                  # [vectors, output elements] in the output's dtype
    ticks: list[int]                     # per vector, for invoke()
    ticks_per_instruction: float | None  # from TD CAL; None when the firmware sent none
    layer_ticks: list[list[int]] = field(default_factory=list)   # per vector, per operator (profiling builds)
    status: int | None = None            # TD END's status

    @property
    def version(self) -> int | None:
        return self.begin.version


def parse_line(line: str) -> Line | None:
    """One console line as a protocol record; None for a line that is not one (boot messages,
    an unknown keyword). Raises a one-line error for a ``TD`` line whose fields do not parse."""
    parts = line.strip().split()
    if len(parts) < 2 or parts[0] != PREFIX:
        return None
    kind, fields = parts[1], parts[2:]
    try:
        if kind == BEGIN:
            values = dict(p.split("=", 1) for p in fields[1:] if "=" in p)
            number = lambda key: int(values[key]) if key in values else None     # noqa: E731
            return Begin(fields[0], number("v"), number("vectors"), number("in"), number("out"), values.get("id"))
        if kind == CAL:
            return Calibration(int(fields[0]), int(fields[1]))
        if kind == OUT:
            return Output(int(fields[0]), int(fields[1]), bytes.fromhex(fields[2]) if len(fields) > 2 else b"")
        if kind == LAYERS:
            return Layers(int(fields[0]), [int(v) for v in fields[1:]])
        if kind == END:
            return End(int(fields[0]))
    except (IndexError, ValueError):
        raise TinyDeployError(f"garbled protocol line {line.strip()[:60]!r}; check the serial link (baud rate, cable)")
    return None


def check_begin(begin: Begin, fingerprint: str) -> None:
    """Refuse a firmware that speaks another protocol version, or was built for other vectors or another model."""
    if begin.version != PROTOCOL_VERSION:
        spoken = "no protocol version (built by an older tinydeploy)" if begin.version is None else \
            f"line protocol v{begin.version}"
        raise BadInput(f"the firmware speaks {spoken}, this tinydeploy reads v{PROTOCOL_VERSION}: "
                       "rebuild the firmware with this tinydeploy (and flash it again)")
    if begin.id != fingerprint:
        raise BadInput(f"the firmware reports model/vector id {begin.id}, expected {fingerprint}; "
                       "the board runs another build: rebuild and flash it")


def read(target: Target, fingerprint: str, out_size: int, count: int, timeout: float,
         dtype: np.dtype = np.dtype(np.int8)) -> Session:
    """Read one run from ``target``: ``out_size`` bytes per output (returned as ``dtype`` values),
    ``count`` vectors, the firmware built for ``fingerprint``; fail with one line if it is not all there."""
    begin, cal, status = None, None, None
    outputs, ticks, layers = {}, {}, {}
    try:
        for text in target.lines(timeout):
            line = parse_line(text)
            if isinstance(line, Begin):
                check_begin(line, fingerprint)
                begin = line
            elif begin is None or line is None:
                continue
            elif isinstance(line, Calibration):
                cal = line.ticks / line.instructions if line.instructions else None
            elif isinstance(line, Output):
                if len(line.data) != out_size:
                    raise TinyDeployError(f"garbled output line for vector {line.index} ({len(line.data)} of "
                                          f"{out_size} bytes); check the serial link (baud rate, cable)")
                outputs[line.index] = np.frombuffer(line.data, dtype=dtype)
                ticks[line.index] = line.ticks
            elif isinstance(line, Layers):
                layers[line.index] = line.ticks
            elif isinstance(line, End):
                status = line.status
                target.finish(timeout)
                break
    except TimeoutError:
        raise TinyDeployError(f"no complete result within {timeout:.0f} s ({len(outputs)} of {count} vectors "
                              "reported); the firmware hung or crashed: raise --timeout, or check the board")
    if begin is None or len(outputs) != count:
        raise TinyDeployError(f"the firmware stopped after {len(outputs)} of {count} vectors "
                              f"(exit status {target.exit_status}); see the project's build.log and rerun")
    order = sorted(outputs)
    return Session(begin, np.stack([outputs[i] for i in order]), [ticks[i] for i in order], cal,
                   [layers[i] for i in sorted(layers)], status)

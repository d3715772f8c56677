"""The line protocol between the test firmware and the host (version 2).

The test firmware (``td_runtime.c``; version, keywords and checksum in ``td_protocol.h``)
runs its baked-in vectors and reports over the console: QEMU's UART, or a
board's serial port. The emulator and a real board speak the same protocol,
so the host reads both the same way. One record per line, fields separated by
single spaces, lines ended by ``\\r\\n``; every line is framed as
``TD <KIND> <seq> <fields> *<crc>``::

    TD BEGIN <seq> <model> v=<version> vectors=<n> in=<bytes> out=<bytes> id=<fingerprint> *<crc>
    TD CAL <seq> <ticks> <instructions> *<crc>
    TD OUT <seq> <index> <ticks> <output bytes as hex> *<crc>
    TD LAYERS <seq> <index> <ticks of operator 0> <ticks of operator 1> ... *<crc>
    TD END <seq> <status> arena=<bytes> *<crc>

- ``<seq>`` numbers the lines of one run in decimal: 0 for ``TD BEGIN``, then
  one more per line. ``<crc>`` is four lower-case hex digits, the
  CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xffff, no reflection,
  no final xor; ``binascii.crc_hqx(payload, 0xffff)``) of the line's payload:
  every byte from ``TD`` up to, not including, the space before ``*``.
- ``TD BEGIN`` opens a run: the model's name, the protocol version ``v``
  (currently 2), how many vectors follow, the input and output size of one
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
  (0: all succeeded) and ``arena``, the bytes of its arena the model's runtime
  used (TFLite Micro's arena_used_bytes(); AOT: its whole static arena). A run
  without it is incomplete.

Anything before ``TD BEGIN`` (boot messages, the tail of an earlier run on a
board the host attached to late) is ignored. After it, every non-blank line
must be the next protocol line, and the host fails the run (ProtocolError,
exit 1: the outputs were not verified) on: a line whose checksum does not
match or that does not parse (a garbled link: baud rate, cable, noise); a line
that is not a protocol line (garbage on the console); a gap in ``<seq>``
(a dropped line) or a ``<seq>`` seen before (a repeated line); a second
``TD BEGIN`` (the board reset mid-run); a vector reported twice, out of order
or beyond ``vectors``. A firmware that stops, or goes silent, before ``TD END``
fails the run too. The checksum and the numbering are printed outside the
timed region, so they cost no reported tick.

A change to any line's layout, or a new required field, raises the version
here (``PROTOCOL_VERSION``) and in ``td_protocol.h`` (``TD_PROTOCOL_VERSION``)
together.
"""
from __future__ import annotations

import binascii
import collections
from dataclasses import dataclass, field

import numpy as np

from tinydeploy.core.errors import BadInput, ProtocolError, TinyDeployError
from tinydeploy.platforms.targets import Target

PROTOCOL_VERSION = 2
PREFIX = "TD"
BEGIN, CAL, OUT, LAYERS, END = "BEGIN", "CAL", "OUT", "LAYERS", "END"
KINDS = (BEGIN, CAL, OUT, LAYERS, END)
CHECKSUM_MARK = " *"                 # separates a line's payload from its checksum
CRC_INIT = 0xFFFF                    # CRC-16/CCITT-FALSE, as td_protocol.h computes it
CRC_DIGITS = 4
RESET_LOOKAHEAD = 16                 # lines read after a bad one, to tell a reset (a new TD BEGIN) from noise
CONSOLE_LINES_KEPT = 3                # the last lines a firmware printed before TD BEGIN, shown if it stops there
LINK_HINT = "check the serial link (baud rate, cable) and rerun"


@dataclass(frozen=True)
class Begin:
    """``TD BEGIN <seq> <model> v=<version> vectors=<n> in=<bytes> out=<bytes> id=<fingerprint> *<crc>``"""
    model: str
    version: int | None                 # None: a firmware from before the protocol had versions
    vectors: int | None
    in_bytes: int | None
    out_bytes: int | None
    id: str | None
    seq: int | None = None              # None: an older firmware's line, without a number


@dataclass(frozen=True)
class Calibration:
    """``TD CAL <seq> <ticks> <instructions> *<crc>``"""
    ticks: int
    instructions: int
    seq: int | None = None


@dataclass(frozen=True)
class Output:
    """``TD OUT <seq> <index> <ticks> <hex> *<crc>``"""
    index: int
    ticks: int
    data: bytes
    seq: int | None = None


@dataclass(frozen=True)
class Layers:
    """``TD LAYERS <seq> <index> <ticks> ... *<crc>``"""
    index: int
    ticks: list[int]
    seq: int | None = None


@dataclass(frozen=True)
class End:
    """``TD END <seq> <status> arena=<bytes> *<crc>``"""
    status: int
    seq: int | None = None
    arena_used: int | None = None        # the arena bytes the model's runtime reported using


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
    arena_used: int | None = None        # TD END's arena=

    @property
    def version(self) -> int | None:
        return self.begin.version


def checksum(payload: str) -> str:
    """The checksum field of a line whose payload (``TD`` up to the checksum mark) is ``payload``."""
    return f"{binascii.crc_hqx(payload.encode(errors='replace'), CRC_INIT):0{CRC_DIGITS}x}"


def frame(kind: str, seq: int, *fields) -> str:
    """One protocol line as the firmware prints it (without the line ending): for tests and fake boards."""
    payload = " ".join([PREFIX, kind, str(seq), *map(str, fields)])
    return f"{payload}{CHECKSUM_MARK}{checksum(payload)}"


def _shown(line: str) -> str:
    return repr(line.strip()[:60])


def _begin_fields(fields: list[str], seq: int | None) -> Begin:
    values = dict(p.split("=", 1) for p in fields[1:] if "=" in p)
    number = lambda key: int(values[key]) if key in values else None     # noqa: E731
    return Begin(fields[0], number("v"), number("vectors"), number("in"), number("out"), values.get("id"), seq)


def _version_of(fields: list[str]) -> int | None:
    """The v= field of a TD BEGIN line in any version's layout (None: none, or not a number)."""
    for part in fields:
        if part.startswith("v=") and part[2:].isdigit():
            return int(part[2:])
    return None


def parse_line(line: str) -> Line | None:
    """One console line as a protocol record; None for a line that is not one (boot messages,
    an unknown keyword). A ``TD BEGIN`` of another protocol version is returned as read, for
    check_begin() to refuse. Raises ProtocolError for a line whose checksum or fields are wrong."""
    text = line.strip()
    parts = text.split()
    if len(parts) < 2 or parts[0] != PREFIX or parts[1] not in KINDS:
        return None
    kind = parts[1]
    payload, mark, crc = text.rpartition(CHECKSUM_MARK)
    intact = bool(mark) and crc == checksum(payload)
    if kind == BEGIN and not intact and _version_of(parts[2:]) != PROTOCOL_VERSION:
        try:                        # another version's layout (or none): only the version matters
            return _begin_fields(parts[2:], None)
        except (IndexError, ValueError):
            raise ProtocolError(f"garbled protocol line {_shown(line)}; {LINK_HINT}") from None
    if not intact:
        raise ProtocolError(f"corrupted protocol line {_shown(line)} (checksum does not match); {LINK_HINT}")
    fields = payload.split()[2:]
    try:
        seq, fields = int(fields[0]), fields[1:]
        if kind == BEGIN:
            return _begin_fields(fields, seq)
        if kind == CAL:
            return Calibration(int(fields[0]), int(fields[1]), seq)
        if kind == OUT:
            return Output(int(fields[0]), int(fields[1]), bytes.fromhex(fields[2]) if len(fields) > 2 else b"", seq)
        if kind == LAYERS:
            return Layers(int(fields[0]), [int(v) for v in fields[1:]], seq)
        values = dict(p.split("=", 1) for p in fields[1:] if "=" in p)
        return End(int(fields[0]), seq, int(values["arena"]) if "arena" in values else None)
    except (IndexError, ValueError):
        raise ProtocolError(f"garbled protocol line {_shown(line)}; {LINK_HINT}") from None


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


class BoardRestarted(ProtocolError):
    """A second TD BEGIN in one run."""


class _Run:
    """The checks on one run's lines after TD BEGIN: numbering, order, count."""

    def __init__(self, begin: Begin, out_size: int, count: int, dtype: np.dtype):
        self.begin, self.out_size, self.count, self.dtype = begin, out_size, count, dtype
        self.next_seq = 1
        self.cal, self.status, self.arena_used = None, None, None
        self.outputs, self.ticks, self.layers = {}, {}, {}

    def where(self) -> str:
        return f"after {len(self.outputs)} of {self.count} vectors"

    def take(self, text: str) -> bool:
        """Check and record one console line; True once TD END arrived."""
        if not text.strip():
            return False
        if not text.lstrip().startswith(PREFIX + " "):
            raise ProtocolError(f"garbage on the console {self.where()}: {_shown(text)} is not a protocol line; "
                                f"{LINK_HINT}")
        line = parse_line(text)
        if line is None:
            raise ProtocolError(f"unknown protocol line {_shown(text)} {self.where()}; {LINK_HINT}")
        if isinstance(line, Begin):
            raise self.restarted()
        self._check_seq(line.seq, text)
        if isinstance(line, Calibration):
            self.cal = line.ticks / line.instructions if line.instructions else None
        elif isinstance(line, Output):
            self._output(line)
        elif isinstance(line, Layers):
            if line.index not in self.outputs or line.index in self.layers:
                raise ProtocolError(f"TD LAYERS for vector {line.index} out of place {self.where()}; {LINK_HINT}")
            self.layers[line.index] = line.ticks
        elif isinstance(line, End):
            self.status, self.arena_used = line.status, line.arena_used
            return True
        return False

    def restarted(self, cut: str = "") -> ProtocolError:
        return BoardRestarted(f"the board restarted mid-run: a second TD BEGIN {self.where()}{cut} (a reset, "
                             "brown-out or crash); check its power and reset wiring, and rerun")

    def _check_seq(self, seq: int, text: str) -> None:
        if seq > self.next_seq:
            missing = f"line {self.next_seq}" if seq == self.next_seq + 1 else f"lines {self.next_seq}-{seq - 1}"
            raise ProtocolError(f"{missing} of the protocol dropped {self.where()} (the next line is number "
                                f"{seq}); {LINK_HINT}")
        if seq < self.next_seq:
            raise ProtocolError(f"protocol line {seq} repeated {self.where()}: {_shown(text)}; {LINK_HINT}")
        self.next_seq += 1

    def _output(self, line: Output) -> None:
        if line.index in self.outputs:
            raise ProtocolError(f"vector {line.index} reported twice {self.where()}; the firmware or the link "
                                "repeats itself: rebuild and rerun")
        if line.index != len(self.outputs) or line.index >= self.count:
            raise ProtocolError(f"vector {line.index} reported {self.where()} (expected vector "
                                f"{len(self.outputs)} of {self.count}); rebuild and rerun")
        if len(line.data) != self.out_size:
            raise ProtocolError(f"garbled output line for vector {line.index} ({len(line.data)} of "
                                f"{self.out_size} bytes); {LINK_HINT}")
        self.outputs[line.index] = np.frombuffer(line.data, dtype=self.dtype)
        self.ticks[line.index] = line.ticks


def read(target: Target, fingerprint: str, out_size: int, count: int, timeout: float,
         dtype: np.dtype = np.dtype(np.int8)) -> Session:
    """Read one run from ``target``: ``out_size`` bytes per output (returned as ``dtype`` values),
    ``count`` vectors, the firmware built for ``fingerprint``; fail with one line if it is not all there,
    or if the stream shows a fault (see the module docstring)."""
    run, fault, after_fault = None, None, 0
    console = collections.deque(maxlen=CONSOLE_LINES_KEPT)    # what the firmware printed before TD BEGIN
    try:
        for text in target.lines(timeout):
            if fault is not None:        # a bad line: a TD BEGIN soon after it means the board reset mid-line
                if text.lstrip().startswith(f"{PREFIX} {BEGIN}"):
                    raise run.restarted(", the line before it cut off") from None
                after_fault += 1
                if after_fault >= RESET_LOOKAHEAD:
                    raise fault
                continue
            if run is None:
                line = parse_line(text) if text.lstrip().startswith(f"{PREFIX} {BEGIN}") else None
                if isinstance(line, Begin):
                    check_begin(line, fingerprint)
                    if line.seq != 0:
                        raise ProtocolError(f"TD BEGIN numbered {line.seq}, not 0; {LINK_HINT}")
                    run = _Run(line, out_size, count, dtype)
                elif text.strip():
                    console.append(text.strip())
            else:
                try:
                    if run.take(text):
                        target.finish(timeout)
                        break
                except BoardRestarted:
                    raise
                except ProtocolError as exc:
                    fault = exc
    except TimeoutError:
        if fault is not None:
            raise fault from None
        got = 0 if run is None else len(run.outputs)
        raise TinyDeployError(f"no complete result within {timeout:.0f} s ({got} of {count} vectors "
                              "reported, no TD END); the firmware hung or crashed: raise --timeout, or check the board")
    if fault is not None:
        raise fault
    if run is None and console:
        raise TinyDeployError(f"the firmware stopped before its first vector (exit status {target.exit_status}); "
                              f"it printed: {' | '.join(console)}")
    if run is None or len(run.outputs) != count:
        got = 0 if run is None else len(run.outputs)
        raise TinyDeployError(f"the firmware stopped after {got} of {count} vectors "
                              f"(exit status {target.exit_status}); see the project's build.log and rerun")
    if run.status is None:
        raise ProtocolError(f"the firmware reported all {count} vectors but no TD END (the line was lost, or the "
                            f"board stopped; exit status {target.exit_status}); {LINK_HINT}")
    order = sorted(run.outputs)
    return Session(run.begin, np.stack([run.outputs[i] for i in order]), [run.ticks[i] for i in order], run.cal,
                   [run.layers[i] for i in sorted(run.layers)], run.status, run.arena_used)

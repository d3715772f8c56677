"""One model measured on one board: the record `run --json`, `bench --json` and `compare` share.

``measure(firmware, run_result)`` builds it, ``Measurement.to_json()`` serialises it (a dict
with ``"schema": "tinydeploy.measurement"`` and ``"version"``), ``load(path)`` /
``Measurement.from_json(data)`` read it back and validate every field, failing with one line.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from tinydeploy.core.errors import BadInput

SCHEMA = "tinydeploy.measurement"
VERSION = 1

INSTRUCTIONS_NOTE = "exact instruction count under QEMU -icount, not cycles"
CYCLES_NOTE = "the board's cycle counter (SysTick, DWT or CCOUNT), not instructions"
ESTIMATE_NOTE = "estimate: 1 instruction per cycle at the board's clock"


@dataclass(frozen=True)
class Counts:
    """Per-inference counts over the vectors run: ``min``, ``median`` (a half-integer when an even
    number of vectors ran) and ``max``; ``note`` says what is counted."""
    min: int
    median: float
    max: int
    note: str


@dataclass(frozen=True)
class EstimatedTime:
    """``ms`` per inference, the median instruction count at the board's clock ``clock_hz``;
    an estimate that assumes 1 instruction per cycle (``note``)."""
    ms: float
    clock_hz: int
    note: str = ESTIMATE_NOTE


@dataclass(frozen=True)
class WeightBytes:
    """The model's constants in flash, ``total`` bytes (the figure `inspect`, `convert`, `run` and `bench`
    all report as weight bytes), split into ``raw``: the .tflite's constant values the code carries
    (weights, biases, constant operands, as stored in the model), ``requantization``: the per-channel
    rescale records (multiplier and shifts; AOT only: TFLite Micro computes them at start-up, in RAM),
    and ``layout``: what the kernels' layout adds (AOT: rows zero-padded to whole words, depthwise taps
    widened to int16, biases added where the model has none; TFLite Micro: the flatbuffer's graph,
    tensor metadata and alignment)."""
    total: int
    raw: int
    requantization: int
    layout: int

    def __add__(self, other: WeightBytes) -> WeightBytes:
        return WeightBytes(self.total + other.total, self.raw + other.raw,
                           self.requantization + other.requantization, self.layout + other.layout)

    def described(self) -> str:
        """``raw weights N + requantization records N + layout and padding N`` (for tables)."""
        return (f"raw weights {self.raw:,} + requantization records {self.requantization:,} + "
                f"layout and padding {self.layout:,}")


NO_WEIGHTS = WeightBytes(0, 0, 0, 0)
RESCALE_CTYPE = "td_rescale"        # the C type of the AOT kernels' requantization records (compiler/quant.py)


def step_weight_bytes(graph, step) -> WeightBytes:
    """The constants one AOT step (compiler/step.py) puts in flash, split as WeightBytes describes. A step
    with no arrays folds its constant operands (RESHAPE's shape, ...) into its parameters: no weight bytes."""
    total = step.weight_bytes
    requantization = sum(a.nbytes for ctype, a in step.arrays.values() if ctype == RESCALE_CTYPE)
    op = graph.operators[step.op_index]
    raw = sum(graph.tensors[i].nbytes for i in op.inputs if i >= 0 and graph.tensors[i].is_constant) \
        if step.arrays else 0
    return WeightBytes(total, raw, requantization, total - raw - requantization)


def weight_bytes(model) -> WeightBytes:
    """The weight bytes of a compiled model (compiler/codegen.CompiledModel or runtimes/tflm.TflmModel);
    ``total`` is ``model.weight_bytes``, the figure the firmware's size split uses."""
    if model.runtime == "tflm":
        return flatbuffer_weight_bytes(model.graph)
    return sum((step_weight_bytes(model.graph, s) for s in model.steps), NO_WEIGHTS)


def flatbuffer_weight_bytes(graph) -> WeightBytes:
    """What TFLite Micro puts in flash for ``graph`` (an ir.graph.Graph): the whole flatbuffer, its constant
    tensors raw, the rest the graph, metadata and alignment (runtimes/tflm.TflmModel.weight_bytes)."""
    total = len(graph.flatbuffer)
    raw = sum(t.nbytes for t in graph.tensors if t.is_constant)
    return WeightBytes(total, raw, 0, total - raw)


@dataclass(frozen=True)
class Flash:
    """Flash in bytes: ``total`` used by the image (read from the ELF), split into ``code`` (kernels,
    runtime, start-up, operator parameters), ``weights`` (the model's constants) and ``vectors``
    (the baked-in test inputs). ``total`` and ``code`` are null when the firmware was not built here
    (a real board read over serial). ``weight_bytes`` splits ``weights`` (WeightBytes), ``capacity`` is
    the flash of ``board`` (the real board on a proxy run); both null in records from before they existed."""
    total: int | None
    code: int | None
    weights: int
    vectors: int
    weight_bytes: WeightBytes | None = None
    capacity: int | None = None


@dataclass(frozen=True)
class Ram:
    """RAM in bytes: ``total`` used by the image (null when not built here), of which ``arena``
    (every activation, input and output included) and ``stack`` (the board's reserved stack);
    ``tflm_arena`` is the TFLite Micro reference interpreter's tensor arena for the same model
    (null when it cannot run the model); ``arena_used`` is what the runtime on the device reported
    it used of ``arena`` (TFLM: its arena_used_bytes(), tensors and interpreter state; AOT: all of
    it; null when the firmware did not report it). ``capacity`` is the RAM of ``board`` (the real
    board on a proxy run; null in records from before it existed)."""
    total: int | None
    arena: int
    stack: int
    tflm_arena: int | None
    arena_used: int | None = None
    capacity: int | None = None


@dataclass(frozen=True)
class Mismatches:
    """Output ``values`` that differ from the TFLite Micro reference, and in how many ``vectors``."""
    values: int
    vectors: int


@dataclass(frozen=True)
class Layer:
    """One operator of a profiling run: ``index`` in the model, ``op`` (the TFLite operator), ``kernel``
    (the C function; "(shares bytes)" for an operator that only renames its input), ``output_shape``,
    ``macs``, ``instructions`` in it for the first vector, and its ``share`` of the layers' sum (0..1)."""
    index: int
    op: str
    kernel: str
    output_shape: list[int]
    macs: int
    instructions: int
    share: float


@dataclass(frozen=True)
class Measurement:
    """What one model did on one board (schema ``tinydeploy.measurement``, version 1).

    In JSON every record carries ``"schema": "tinydeploy.measurement"`` and ``"version": 1``,
    then these fields (sizes in bytes; null where a figure does not apply):

    - ``model``: the model's name (its .tflite file name as a C identifier).
    - ``source``: the .tflite file it was compiled from.
    - ``board``: the board the figures are for. A real board run on its emulated proxy is
      named here, and its time is estimated at this board's clock.
    - ``ran_on``: the board the firmware ran on: the emulated proxy when ``board`` is a real
      board run without ``--port``, otherwise ``board`` itself.
    - ``runtime``: what ran the model: ``"aot"``, tinydeploy's ahead-of-time compiled C, or
      ``"tflm"``, TensorFlow Lite Micro's interpreter (then ``flash.weights`` is the whole
      flatbuffer and ``ram.arena`` the tensor arena the firmware reserves).
    - ``vectors``, ``vector_origin``: how many test vectors ran, and where they came from.
    - ``instructions``: per inference ``{min, median, max, note}``, exact instruction counts
      under QEMU ``-icount`` (not cycles); null when the target does not count instructions.
    - ``cycles``: per inference ``{min, median, max, note}`` from the board's cycle counter,
      when the target counts cycles (a real board over serial); null in the emulator.
    - ``estimated_time``: ``{ms, clock_hz, note}``, the median instruction count at the
      board's clock: an estimate that assumes 1 instruction per cycle; null without
      instruction counts.
    - ``flash``: ``{total, code, weights, vectors, weight_bytes, capacity}``; ``total`` and ``code``
      are null when the firmware was not built here; ``weight_bytes`` is ``{total, raw,
      requantization, layout}`` (``total`` equals ``weights``); ``capacity`` is ``board``'s flash.
    - ``ram``: ``{total, arena, stack, tflm_arena, arena_used, capacity}``; ``arena`` is the arena
      the firmware reserves (TFLM: its tensor arena); ``tflm_arena`` is the TFLite Micro reference
      interpreter's tensor arena for the same model (activations and scratch, its arena "head");
      ``arena_used`` the bytes of ``arena`` the runtime on the device says it used (TFLM:
      arena_used_bytes(), which adds the interpreter's own state); ``capacity`` is ``board``'s RAM.
    The fields added after version 1 first shipped (``weight_bytes``, ``capacity``) may be absent:
    records without them still load.
    - ``macs``: multiply-accumulates per inference.
    - ``mismatches``: ``{values, vectors}``, output values that differ from the TFLite Micro
      reference, and in how many vectors (0 and 0: bit-exact).
    - ``accuracy``: share (0..1) of the vectors whose arg-max output is their label; null
      without labels or for a single-output model.
    - ``layers``: per operator ``{index, op, kernel, output_shape, macs, instructions, share}``
      from a profiling build (``bench --per-layer``); null otherwise.
    """
    model: str
    source: str | None
    board: str
    ran_on: str
    runtime: str
    vectors: int
    vector_origin: str
    instructions: Counts | None
    cycles: Counts | None
    estimated_time: EstimatedTime | None
    flash: Flash
    ram: Ram
    macs: int
    mismatches: Mismatches
    accuracy: float | None
    layers: list[Layer] | None = None

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions.median / self.macs if self.instructions and self.macs else None

    @property
    def flash_without_vectors(self) -> int | None:
        """The flash a deployment needs: the image without the baked-in test vectors."""
        return None if self.flash.total is None else self.flash.total - self.flash.vectors

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "version": VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: object, where: str = "measurement",
                  again: str = "regenerate it with `tinydeploy run ... --json`") -> Measurement:
        """Validate ``data`` (parsed JSON) against the schema; a one-line BadInput naming ``where``
        (and saying ``again``, how to make a good one) if it fails."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise BadInput(f"{where}: not a tinydeploy measurement (schema {found!r}, expected {SCHEMA!r}); {again}")
        if data.get("version") != VERSION:
            raise BadInput(f"{where}: measurement version {data.get('version')!r}, this tinydeploy reads "
                           f"version {VERSION}; {again}")
        fields = {k: v for k, v in data.items() if k not in ("schema", "version")}
        try:
            return _record(cls, fields, "")
        except _Invalid as exc:
            raise BadInput(f"{where}: {exc}; {again}")


def load(path: Path) -> Measurement:
    """Read a `run --json` file."""
    return Measurement.from_json(read_json(path, "measurement"), str(path))


def read_json(path: Path, what: str) -> object:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadInput(f"{path}: no such {what} file; write one with `tinydeploy {_WRITER[what]} ... --json {path}`")
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: not a readable {what} JSON file ({exc}); regenerate it with --json")


_WRITER = {"measurement": "run", "bench": "bench"}


class _Invalid(Exception):
    pass


def _record(cls, data: object, where: str):
    """Build dataclass ``cls`` from a dict, every field present, of its declared type, and no other."""
    if not isinstance(data, dict):
        raise _Invalid(f"{where or 'the record'}: expected an object, got {_shown(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise _Invalid(f"unknown field {where}{unknown[0]}")
    values = {}
    for name, f in known.items():
        if name not in data:
            if f.default is dataclasses.MISSING:
                raise _Invalid(f"missing field {where}{name}")
            continue
        values[name] = _value(data[name], hints[name], f"{where}{name}")
    return cls(**values)


def _value(data: object, hint, where: str):
    if isinstance(hint, types.UnionType):
        args = typing.get_args(hint)
        if data is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(data, inner, where)
    if typing.get_origin(hint) is list:
        if not isinstance(data, list):
            raise _Invalid(f"{where}: expected a list, got {_shown(data)}")
        (item,) = typing.get_args(hint)
        return [_value(x, item, f"{where}[{i}]") for i, x in enumerate(data)]
    if dataclasses.is_dataclass(hint):
        return _record(hint, data, f"{where}.")
    number = isinstance(data, (int, float)) and not isinstance(data, bool)
    ok = {int: isinstance(data, int) and not isinstance(data, bool), float: number, str: isinstance(data, str)}[hint]
    if not ok:
        kind = {int: "an integer", float: "a number", str: "a string"}[hint]
        raise _Invalid(f"{where}: expected {kind}, got {_shown(data)}")
    return data


def _shown(data: object) -> str:
    return "null" if data is None else repr(data)[:40]


def _counts(values: list[int], note: str) -> Counts:
    return Counts(min(values), statistics.median(values), max(values), note)


def layers_of(fw, result) -> list[Layer] | None:
    """Per-operator figures of a profiling run on an instruction-counting target; None otherwise."""
    per_op = result.layer_instructions
    if not per_op:
        return None
    total = sum(per_op) or 1
    g = fw.model.graph
    rows = []
    for s in fw.model.steps:
        spent = per_op[s.op_index] if s.op_index < len(per_op) else 0
        rows.append(Layer(s.op_index, s.op, s.kernel or "(shares bytes)", list(g.tensors[s.outputs[0]].shape),
                          s.macs, spent, spent / total))
    return rows


def instructions_note(fw) -> str:
    """What the instruction counts are, and on a proxy run whose core counted them."""
    if fw.stands_in_for is None:
        return INSTRUCTIONS_NOTE
    return (f"exact instruction count under QEMU -icount on {fw.board.name}'s {fw.board.core} core (the emulated "
            f"proxy for {fw.stands_in_for.name}, {fw.stands_in_for.proxy_relation}), not cycles")


def check_fits_board(fw) -> None:
    """A proxy run's image against the real board's flash and RAM (the proxy may have more): BadInput if it
    does not fit. The image is the proxy's (its start-up code); the real board's build differs by its own."""
    real = fw.stands_in_for
    if real is None or fw.size is None:
        return
    for memory, used, capacity, proxy_has in (("flash", fw.size.flash, real.flash.size, fw.board.flash.size),
                                              ("RAM", fw.size.ram, real.ram.size, fw.board.ram.size)):
        if used > capacity:
            raise BadInput(f"{fw.model.graph.path}: the image needs {used:,} bytes of {memory} but {real.name} has "
                           f"{capacity:,} (built for its emulated proxy {fw.board.name}, which has {proxy_has:,}); "
                           f"pick a board with more {memory}{', fewer --vectors,' if memory == 'flash' else ''} "
                           "or a smaller model")


def measure(fw, result) -> Measurement:
    """The Measurement of one run: ``fw`` a pipeline.Firmware, ``result`` the verify.compare.RunResult it gave.
    Capacities and clock are the real board's on a proxy run (``fw.clock_board``)."""
    instructions = result.instructions
    board = fw.clock_board
    clock = board.clock_hz
    estimate = None
    if instructions:
        estimate = EstimatedTime(1000.0 * statistics.median(instructions) / clock, clock)
    built = fw.size is not None
    weights = weight_bytes(fw.model)
    return Measurement(
        model=fw.model.name, source=str(fw.model.graph.path),
        board=board.name, ran_on=fw.board.name, runtime=fw.model.runtime,
        vectors=len(result.outputs), vector_origin=fw.vector_origin,
        instructions=_counts(instructions, instructions_note(fw)) if instructions else None,
        cycles=_counts(result.ticks, CYCLES_NOTE) if not result.counts_instructions and result.ticks else None,
        estimated_time=estimate,
        flash=Flash(fw.size.flash if built else None, fw.code_bytes if built else None, weights.total,
                    fw.vector_bytes, weights, board.flash.size),
        ram=Ram(fw.size.ram if built else None, fw.model.arena_bytes, fw.board.stack, fw.reference_arena,
                result.arena_used, board.ram.size),
        macs=fw.model.macs, mismatches=Mismatches(len(result.mismatches), result.mismatched_vectors),
        accuracy=result.accuracy(), layers=layers_of(fw, result))

"""`tinydeploy bench`: instructions, memory and flash per model, board and runtime, per
layer, against a saved baseline, and tinydeploy's AOT code against TensorFlow Lite Micro
built and measured now from the same model on the same core (``--vs tflm``).

Every model runs in the board's emulator on one xorshift32 input (state 1); outputs are
still checked against the reference interpreter, and a mismatch fails the benchmark.

``--json FILE`` writes ``{"schema": "tinydeploy.bench", "version": 1, "input": ...,
"measurements": [...]}``: one Measurement (analysis/measurement.py) per model, board and
runtime. ``--baseline FILE`` reads such a file back and compares like with like (same
model, board and runtime).
"""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Iterator

from tinydeploy.ir import graph as graph_mod
from tinydeploy.core.errors import BadInput, Mismatch
from tinydeploy.pipeline import Firmware, build_for_emulation
from tinydeploy.platforms.registry import platform_for
from tinydeploy.platforms.targets import Target
from tinydeploy.verify import protocol
from tinydeploy.verify.compare import RunResult, run_and_verify
from tinydeploy.analysis.measurement import Measurement, check_fits_board, layers_of, measure, read_json

SCHEMA = "tinydeploy.bench"
VERSION = 1
INPUT = "xorshift32 state 1"
REGRESSION_TOLERANCE = 0.02
# what the gate compares, lower is better: (label, figure of a Measurement)
COMPARED = (
    ("instructions (median)", lambda m: m.instructions.median if m.instructions else None),
    ("arena bytes", lambda m: m.ram.arena),
    ("code bytes", lambda m: m.flash.code),
    ("flash bytes without test vectors", lambda m: m.flash_without_vectors),
)


class Stage:
    """One step of long work, as an Activity shows it; this one shows nothing."""

    def advance(self, done: int) -> None:
        """``done`` of the stage's total are done."""

    def describe(self, text: str) -> None:
        """What the stage does now."""


class Activity:
    """Where long work says what it does: ``with activity.stage(text, total) as stage`` around each step
    (``stage.advance(k)`` for counted work). This one is silent; the CLI's shows it on a terminal."""

    @contextlib.contextmanager
    def stage(self, text: str, total: int | None = None) -> Iterator[Stage]:
        yield Stage()


SILENT = Activity()
CHECKING = "checking every output against the TFLite Micro reference interpreter"


class _Watched(Target):
    """A target whose protocol lines advance a Stage: one per TD OUT (a vector done), then the check."""

    def __init__(self, inner: Target, stage: Stage):
        self.inner, self.stage, self.reported = inner, stage, 0

    @property
    def counts_instructions(self) -> bool:
        return self.inner.counts_instructions

    @property
    def exit_status(self) -> int | None:
        return self.inner.exit_status

    def lines(self, timeout: float) -> Iterator[str]:
        for text in self.inner.lines(timeout):
            kind = text.split(maxsplit=2)[:2]
            if kind == [protocol.PREFIX, protocol.OUT]:
                self.reported += 1
                self.stage.advance(self.reported)
            elif kind == [protocol.PREFIX, protocol.END]:
                self.stage.describe(CHECKING)
            yield text

    def finish(self, timeout: float) -> None:
        self.inner.finish(timeout)

    def stop(self) -> None:
        self.inner.stop()


def vector_count(fw: Firmware) -> int:
    return fw.vector_bytes // fw.model.graph.input_tensor().nbytes


def run_watched(fw: Firmware, activity: Activity = SILENT, port: str | None = None, baudrate: int = 115200,
                timeout: float = 120.0, emulator: str = "qemu", what: str = "running") -> RunResult:
    """pipeline.run_firmware with its progress on ``activity``: the vectors counted as the firmware reports
    them, then the check against the reference (the same transport and verification, watched)."""
    count = vector_count(fw)
    where = f"{fw.board.name} on {port}" if port else f"{fw.board.name} in {emulator}"
    with activity.stage(f"{what} {count} vector{'s' if count != 1 else ''} on {where}", total=count) as stage:
        target = platform_for(fw.board).open_transport(fw.elf, port=port, baudrate=baudrate, emulator=emulator)
        with _Watched(target, stage) as watched:
            return run_and_verify(fw.project, watched, timeout)


def building(model: Path, board: str, runtime: str, profile: bool = False) -> str:
    """The stage text of a firmware build (compile the model, render the project, PlatformIO)."""
    kind = "profiling firmware" if profile else f"{runtime} firmware"
    return f"building {kind} for {Path(model).name} on {board} (compile, render, PlatformIO)"


def _work_dir(model: Path, board: str, profile: bool, runtime: str = "aot") -> Path:
    return Path("build") / "bench" / f"{model.stem}-{board}{'' if runtime == 'aot' else '-' + runtime}" \
                                     f"{'-profile' if profile else ''}"


def bench_one(model: Path, board: str, per_layer: bool = False, runtime: str = "aot",
              tflm_dir: Path | None = None, say=None, activity: Activity = SILENT) -> Measurement:
    """Build and run ``model`` on ``board`` (a real board: on its emulated proxy, timed at its own clock and
    checked against its own flash and RAM) with ``runtime``; with ``per_layer`` a second, profiling build
    times each operator (AOT only). Each step is a stage on ``activity``."""
    with activity.stage(building(model, board, runtime)):
        fw = build_for_emulation(model, board, _work_dir(model, board, False, runtime), vectors=1, testset=False,
                                 runtime=runtime, tflm_dir=tflm_dir, say=say)
    check_fits_board(fw)
    result = run_watched(fw, activity)
    if result.mismatches:
        raise Mismatch(f"{fw.model.graph.path}: {len(result.mismatches)} output values differ from the "
                       f"TFLite Micro reference on {fw.board.name}; fix that before benchmarking")
    measured = measure(fw, result)
    if per_layer and fw.model.runtime == "aot":
        with activity.stage(building(model, board, runtime, profile=True)):
            profiled = build_for_emulation(model, board, _work_dir(model, board, True), vectors=1, profile=True,
                                           testset=False)
        layers = layers_of(profiled, run_watched(profiled, activity, what="profiling every layer of"))
        measured = dataclasses.replace(measured, layers=layers or [])
    return measured


def side_by_side(measurements: list[Measurement]) -> list[tuple[Measurement, Measurement]]:
    """(aot, tflm) pairs of the same model on the same board, in the order they were measured."""
    tflm = {(m.source, m.board): m for m in measurements if m.runtime == "tflm"}
    return [(m, tflm[m.source, m.board]) for m in measurements
            if m.runtime == "aot" and (m.source, m.board) in tflm]


def as_json(measurements: list[Measurement]) -> dict:
    return {"schema": SCHEMA, "version": VERSION, "input": INPUT, "measurements": [m.to_json() for m in measurements]}


def load_bench(path: Path) -> list[Measurement]:
    """The Measurements of a `bench --json` file, every one validated; one line if the file is not one."""
    data = read_json(path, "bench")
    again = f"regenerate it with `tinydeploy bench ... --json {path}`"
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema", data.get("tool")) if isinstance(data, dict) else type(data).__name__
        raise BadInput(f"{path}: not a tinydeploy bench file (schema {found!r}, expected {SCHEMA!r}); {again}")
    if data.get("version") != VERSION:
        raise BadInput(f"{path}: bench file version {data.get('version')!r}, this tinydeploy reads version "
                       f"{VERSION}; {again}")
    entries = data.get("measurements")
    if not isinstance(entries, list):
        raise BadInput(f"{path}: no 'measurements' list; {again}")
    return [Measurement.from_json(e, f"{path}: measurements[{i}]", again) for i, e in enumerate(entries)]


def load_baseline(path: Path) -> list[Measurement]:
    return load_bench(path)


def _shown(value) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def regressions(current: list[Measurement], baseline: list[Measurement],
                tolerance: float = REGRESSION_TOLERANCE) -> list[str]:
    """One line per figure that got more than ``tolerance`` worse than in ``baseline``."""
    before = {(m.model, m.board, m.runtime): m for m in baseline}
    lines = []
    for m in current:
        old = before.get((m.model, m.board, m.runtime))
        if old is None:
            continue
        for label, figure in COMPARED:
            was, now = figure(old), figure(m)
            if was and now is not None and now > was * (1 + tolerance):
                lines.append(f"{m.model} on {m.board}: {label} {_shown(was)} -> {_shown(now)} "
                             f"(+{100 * (now / was - 1):.1f}%)")
    return lines


def check_models(models: list[Path]) -> None:
    """Fail early, with one line, on a model that cannot be read (before any build)."""
    for model in models:
        graph_mod.load(model)

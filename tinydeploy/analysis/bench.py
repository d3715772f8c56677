"""`tinydeploy bench`: instructions, memory and flash per model and board, per layer,
against a saved baseline and against TFLite Micro's published figures.

Every model runs in the board's emulator on one xorshift32 input (state 1), the
input the TFLite Micro figures were measured with; outputs are still checked
against the reference interpreter, and a mismatch fails the benchmark.

``--json FILE`` writes ``{"schema": "tinydeploy.bench", "version": 1, "input": ...,
"measurements": [...]}``: one Measurement (analysis/measurement.py) per model and
board, each with an extra ``"tflm"`` object, TFLite Micro's published figures on the
same core (resources/tflm_figures.json), where they are known. ``--baseline FILE``
reads such a file back and compares like with like (same model, board and runtime).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tinydeploy.ir import graph as graph_mod
from tinydeploy.core.errors import BadInput, Mismatch
from tinydeploy.core.resources import TFLM_FIGURES
from tinydeploy.pipeline import build_for_emulation, run_firmware
from tinydeploy.analysis.measurement import Measurement, layers_of, measure, read_json

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


def _work_dir(model: Path, board: str, profile: bool) -> Path:
    return Path("build") / "bench" / f"{model.stem}-{board}{'-profile' if profile else ''}"


def bench_one(model: Path, board: str, per_layer: bool = False) -> Measurement:
    """Build and run ``model`` on ``board`` (a real board: on its emulated proxy, timed at its own clock);
    with ``per_layer`` a second, profiling build times each operator."""
    fw = build_for_emulation(model, board, _work_dir(model, board, False), vectors=1, testset=False)
    result = run_firmware(fw)
    if result.mismatches:
        raise Mismatch(f"{fw.model.graph.path}: {len(result.mismatches)} output values differ from the "
                       f"TFLite Micro reference on {fw.board.name}; fix that before benchmarking")
    measured = measure(fw, result)
    if per_layer:
        profiled = build_for_emulation(model, board, _work_dir(model, board, True), vectors=1, profile=True,
                                       testset=False)
        measured = dataclasses.replace(measured, layers=layers_of(profiled, run_firmware(profiled)) or [])
    return measured


def tflm_figures(m: Measurement) -> dict | None:
    """TFLite Micro's figures for this model file on this board, when published (issue 4's table)."""
    table = json.loads(TFLM_FIGURES.read_text())
    if m.board != table["board"] or m.source is None:
        return None
    return table["models"].get(Path(m.source).stem)


def as_json(measurements: list[Measurement]) -> dict:
    entries = []
    for m in measurements:
        entry = m.to_json()
        published = tflm_figures(m)
        if published:
            entry["tflm"] = published
        entries.append(entry)
    return {"schema": SCHEMA, "version": VERSION, "input": INPUT, "measurements": entries}


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
    return [Measurement.from_json({k: v for k, v in e.items() if k != "tflm"} if isinstance(e, dict) else e,
                                  f"{path}: measurements[{i}]", again) for i, e in enumerate(entries)]


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

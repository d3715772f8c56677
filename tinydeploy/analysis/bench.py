"""`tinydeploy bench`: instructions, memory and flash per model and board, per layer,
against a saved baseline and against TFLite Micro's published figures.

Every model runs in the board's emulator on one xorshift32 input (state 1), the
input the TFLite Micro figures were measured with; outputs are still checked
against the reference interpreter, and a mismatch fails the benchmark.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tinydeploy.ir import graph as graph_mod
from tinydeploy.core.errors import TinyDeployError
from tinydeploy.core.resources import TFLM_FIGURES
from tinydeploy.pipeline import build_for_emulation, run_firmware
from tinydeploy.analysis.report import summary

REGRESSION_TOLERANCE = 0.02
COMPARED = ("instructions", "arena_bytes", "code_bytes", "flash_bytes")     # lower is better


@dataclass
class BenchResult:
    model: str
    board: str
    figures: dict
    layers: list[dict] | None


def _work_dir(model: Path, board: str, profile: bool) -> Path:
    return Path("build") / "bench" / f"{model.stem}-{board}{'-profile' if profile else ''}"


def bench_one(model: Path, board: str, per_layer: bool = False) -> BenchResult:
    """Build and run ``model`` on ``board`` (a real board: on its emulated proxy, timed at its own clock);
    with ``per_layer`` a second, profiling build times each operator."""
    fw = build_for_emulation(model, board, _work_dir(model, board, False), vectors=1, testset=False)
    result = run_firmware(fw)
    if result.mismatches:
        raise TinyDeployError(f"{fw.model.graph.path}: {len(result.mismatches)} output values differ from the "
                              f"TFLite Micro reference on {fw.board.name}; fix that before benchmarking")
    s = summary(fw, result)
    figures = {
        "instructions": result.instructions[0], "macs": s["macs"], "instructions_per_mac": s["instructions_per_mac"],
        "arena_bytes": s["arena_bytes"], "reference_arena_bytes": s["reference_arena_bytes"],
        "code_bytes": s["code_bytes"], "weight_bytes": s["weight_bytes"], "flash_bytes": s["flash_bytes"] - fw.vector_bytes,
        "ram_bytes": s["ram_bytes"], "clock_hz": s["clock_hz"], "estimated_ms": s["estimated_ms_at_clock"],
        "ran_on": fw.board.name,
        "count_note": "exact emulated instruction count (QEMU -icount), not cycles; ms assume 1 instruction/cycle",
    }
    layers = None
    if per_layer:
        profiled = build_for_emulation(model, board, _work_dir(model, board, True), vectors=1, profile=True,
                                       testset=False)
        result = run_firmware(profiled)
        per_op = result.layer_instructions or []
        total = sum(per_op) or 1
        g = profiled.model.graph
        layers = [{"index": s.op_index, "op": s.op, "kernel": s.kernel or "(shares bytes)",
                   "output_shape": list(g.tensors[s.outputs[0]].shape), "macs": s.macs,
                   "instructions": per_op[s.op_index] if s.op_index < len(per_op) else 0,
                   "share": (per_op[s.op_index] if s.op_index < len(per_op) else 0) / total}
                  for s in profiled.model.steps]
    return BenchResult(fw.model.name, board, figures, layers)


def tflm_figures(model: Path, board: str) -> dict | None:
    """TFLite Micro's figures for this model file on this board, when published (issue 4's table)."""
    table = json.loads(TFLM_FIGURES.read_text())
    if board != table["board"]:
        return None
    return table["models"].get(Path(model).stem)


def as_json(results: list[BenchResult], models: list[Path]) -> dict:
    entries = []
    for r, path in zip(results, models):
        entry = {"model": r.model, "source": str(path), "board": r.board, **r.figures}
        if r.layers is not None:
            entry["layers"] = r.layers
        tflm = tflm_figures(path, r.board)
        if tflm:
            entry["tflm"] = tflm
        entries.append(entry)
    return {"tool": "tinydeploy bench", "input": "xorshift32 state 1", "results": entries}


def regressions(current: dict, baseline: dict, tolerance: float = REGRESSION_TOLERANCE) -> list[str]:
    """One line per figure that got more than ``tolerance`` worse than in ``baseline``."""
    before = {(e["model"], e["board"]): e for e in baseline.get("results", [])}
    lines = []
    for entry in current["results"]:
        old = before.get((entry["model"], entry["board"]))
        if old is None:
            continue
        for key in COMPARED:
            if key in old and old[key] and entry[key] > old[key] * (1 + tolerance):
                lines.append(f"{entry['model']} on {entry['board']}: {key} {old[key]:,} -> {entry[key]:,} "
                             f"(+{100 * (entry[key] / old[key] - 1):.1f}%)")
    return lines


def load_baseline(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TinyDeployError(f"{path}: no such baseline file; write one first with `tinydeploy bench ... --json {path}`")
    except (OSError, ValueError) as exc:
        raise TinyDeployError(f"{path}: not a readable bench JSON file ({exc}); regenerate it with --json")
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise TinyDeployError(f"{path}: not a tinydeploy bench JSON file (no 'results' list); regenerate it with --json")
    return data


def check_models(models: list[Path]) -> None:
    """Fail early, with one line, on a model that cannot be read (before any build)."""
    for model in models:
        graph_mod.load(model)

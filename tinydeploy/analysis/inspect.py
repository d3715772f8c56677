"""`tinydeploy inspect`: what a .tflite contains and what it will cost on a microcontroller.

The weight bytes are the figure `convert`, `run` and `bench` report (analysis/measurement.weight_bytes
of the compiled model), with its split into raw weights, requantization records and layout."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from tinydeploy.compiler import ops
from tinydeploy.ir import graph as graph_mod

from tinydeploy.verify import reference
from tinydeploy.core.errors import TinyDeployError
from tinydeploy.ir.graph import Graph
from tinydeploy.analysis.measurement import (NO_WEIGHTS, WeightBytes, flatbuffer_weight_bytes, step_weight_bytes,
                                             weight_bytes)

SCHEMA = "tinydeploy.inspection"
VERSION = 1


def _quant(t) -> str:
    if not t.is_quantized:
        return "-"
    if t.scale.size > 1:
        return f"per-channel ({t.scale.size} scales, dim {t.quantized_dim})"
    return f"scale {float(t.scale[0]):.6g}, zp {int(t.zero_point[0])}"


@dataclass(frozen=True)
class Fit:
    """The model against one board, before anything is built: lower bounds, as the project render checks
    them (code, runtime and start-up come on top of ``flash_needed``)."""
    board: str
    runtime: str                 # whose figures: aot, or tflm when tinydeploy cannot compile the model
    flash_needed: int            # the model's weight bytes
    flash_capacity: int
    ram_needed: int              # arena + output copy + the board's stack
    ram_capacity: int
    arena: int
    output_copy: int
    stack: int
    clock_hz: int

    @property
    def fits(self) -> bool:
        return self.flash_needed <= self.flash_capacity and self.ram_needed <= self.ram_capacity


@dataclass
class Inspection:
    graph: Graph
    rows: list[dict]
    tensors: list[dict]
    arena_bytes: int | None            # ours, None when the model can't be compiled yet
    unsupported: str | None
    reference_arena: dict | None       # TFLite Micro reference interpreter: head (tensor arena), tail, total
    reference_error: str | None = None     # why the reference interpreter could not run the model
    weights: WeightBytes | None = None     # AOT weight bytes (None when the model can't be compiled yet)
    tflm_weights: WeightBytes | None = None    # the same model on TFLite Micro: the whole flatbuffer
    tflite_constant_bytes: int = 0     # every constant tensor of the .tflite, as stored
    fit: Fit | None = None             # with a board: the fit check

    def to_json(self) -> dict:
        """``inspect --json``: schema ``tinydeploy.inspection`` version 1; sizes in bytes."""
        ref = self.reference_arena or {}
        return {"schema": SCHEMA, "version": VERSION, "model": self.graph.name, "source": str(self.graph.path),
                "operators": self.rows, "tensors": self.tensors,
                "weight_bytes": asdict(self.weights) if self.weights else None,
                "tflm_weight_bytes": asdict(self.tflm_weights) if self.tflm_weights else None,
                "tflite_constant_bytes": self.tflite_constant_bytes,
                "macs": sum(r["macs"] for r in self.rows),
                "arena": {"planned": self.arena_bytes, "tflm_tensor_arena": ref.get("head"),
                          "tflm_arena_used_bytes": ref.get("total")},
                "unsupported": self.unsupported, "reference_error": self.reference_error,
                "fit": dict(asdict(self.fit), fits=self.fit.fits) if self.fit else None}


def fit_check(result: Inspection, board) -> Fit | None:
    """``result``'s model on ``board`` (a platforms.boards.Board): ours when compiled, else TFLite Micro's
    (its arena_used_bytes as the arena); None when neither can run the model."""
    output_copy = result.graph.output_tensor().nbytes          # the firmware's output buffer
    if result.weights is not None:
        runtime, flash, arena = "aot", result.weights.total, result.arena_bytes
    elif result.reference_arena:
        runtime, flash, arena = "tflm", result.tflm_weights.total, result.reference_arena["total"]
    else:
        return None
    return Fit(board.name, runtime, flash, board.flash.size, arena + output_copy + board.stack, board.ram.size,
               arena, output_copy, board.stack, board.clock_hz)


def inspect(path, board=None) -> Inspection:
    """Everything `tinydeploy inspect` shows; with ``board`` (a Board) also the fit check."""
    g = graph_mod.load(path)
    rows = []
    for op in g.operators:
        constants = sum(g.tensors[i].nbytes for i in op.inputs if i >= 0 and g.tensors[i].is_constant)
        out = g.tensors[op.outputs[0]]
        rows.append(dict(index=op.index, op=op.op, output_shape=list(out.shape), macs=ops.macs(g, op),
                         tflite_constant_bytes=constants, weight_bytes=None, raw=None, requantization=None,
                         layout=None, arena_offset=None))
    tensors = [dict(index=t.index, name=t.name, shape=list(t.shape), dtype=t.dtype, quantization=_quant(t),
                    constant=t.is_constant, bytes=t.nbytes) for t in g.tensors]
    arena = unsupported = weights = None
    try:
        from tinydeploy.compiler.codegen import compile_model
        compiled = compile_model(path)
        arena = compiled.plan.arena_size
        weights = weight_bytes(compiled)
        for row, op in zip(rows, g.operators):
            row["arena_offset"] = compiled.plan.offsets.get(op.outputs[0])
        per_op = {step.op_index: step_weight_bytes(g, step) for step in compiled.steps}
        for row in rows:
            split = per_op.get(row["index"], NO_WEIGHTS)
            row.update(weight_bytes=split.total, raw=split.raw, requantization=split.requantization,
                       layout=split.layout)
    except TinyDeployError as exc:
        unsupported = str(exc)
    # Validated but perhaps not compilable: the reference then runs in its worker process (a crash stays there).
    usage, reason = reference.arena_usage_or_reason(g.flatbuffer)
    result = Inspection(g, rows, tensors, arena, unsupported, usage, reason, weights, flatbuffer_weight_bytes(g),
                        sum(t.nbytes for t in g.tensors if t.is_constant))
    if board is not None:
        result.fit = fit_check(result, board)
    return result

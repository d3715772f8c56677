"""`tinydeploy inspect`: what a .tflite contains and what it will cost on a microcontroller."""
from __future__ import annotations

from dataclasses import dataclass

from tinydeploy.compiler import ops
from tinydeploy.ir import graph as graph_mod

from tinydeploy.verify import reference
from tinydeploy.core.errors import TinyDeployError
from tinydeploy.ir.graph import Graph


def _quant(t) -> str:
    if not t.is_quantized:
        return "-"
    if t.scale.size > 1:
        return f"per-channel ({t.scale.size} scales, dim {t.quantized_dim})"
    return f"scale {float(t.scale[0]):.6g}, zp {int(t.zero_point[0])}"


@dataclass
class Inspection:
    graph: Graph
    rows: list[dict]
    tensors: list[dict]
    arena_bytes: int | None            # ours, None when the model can't be compiled yet
    unsupported: str | None
    reference_arena: dict | None
    reference_error: str | None = None     # why the reference interpreter could not run the model


def inspect(path) -> Inspection:
    g = graph_mod.load(path)
    rows = []
    for op in g.operators:
        weights = sum(g.tensors[i].nbytes for i in op.inputs if i >= 0 and g.tensors[i].is_constant)
        out = g.tensors[op.outputs[0]]
        rows.append(dict(index=op.index, op=op.op, output_shape=list(out.shape), macs=ops.macs(g, op), weight_bytes=weights))
    tensors = [dict(index=t.index, name=t.name, shape=list(t.shape), dtype=t.dtype, quantization=_quant(t),
                    constant=t.is_constant, bytes=t.nbytes) for t in g.tensors]
    arena = unsupported = None
    try:
        from tinydeploy.compiler.codegen import compile_model
        compiled = compile_model(path)
        arena = compiled.plan.arena_size
        for row, op in zip(rows, g.operators):
            row["arena_offset"] = compiled.plan.offsets.get(op.outputs[0])
    except TinyDeployError as exc:
        unsupported = str(exc)
    # Validated but perhaps not compilable: the reference then runs in its worker process (a crash stays there).
    usage, reason = reference.arena_usage_or_reason(g.flatbuffer)
    return Inspection(g, rows, tensors, arena, unsupported, usage, reason)

"""Lower graph operators to kernel calls: a dispatcher over the op registry (`compiler/ops`).

Each supported op becomes a `Step` from its family's lowering, which also
carries the aliasing contract the op registered. Anything unsupported stops
here with one line naming the op and its index, before any code is written.
"""
from __future__ import annotations

from tinydeploy.compiler import ops
from tinydeploy.compiler.ops.common import QUANTIZE_HINT, where
from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.core.errors import BadInput
from tinydeploy.ir.graph import Graph

IO_DTYPES = ("int8", "float32")


def lower(graph: Graph) -> list[Step]:
    """Kernel calls for every operator, or BadInput for the first one we can't run."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise BadInput(
            f"{graph.path}: the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
            "tinydeploy handles models with one input and one output")
    for role, tensor in (("input", graph.input_tensor()), ("output", graph.output_tensor())):
        if tensor.dtype not in IO_DTYPES:
            raise BadInput(
                f"{graph.path}: the model {role} '{tensor.name}' is {tensor.dtype}; tinydeploy takes int8 or "
                f"float32 model inputs and outputs. {QUANTIZE_HINT}")
    steps = []
    for op in graph.operators:
        spec = ops.lookup(op.op)
        if spec is None:
            raise BadInput(
                f"{where(graph, op)} is not supported (supported: {', '.join(ops.supported_ops())}); "
                "replace the op in the model before converting")
        step = spec.lower(graph, op)
        for t in step.inputs:                  # activations are read from the arena, which holds no constants
            if graph.tensors[t].is_constant:
                raise BadInput(f"{where(graph, op)}: constant input '{graph.tensors[t].name}' is not supported "
                               "where the op reads an activation")
        step.macs = spec.macs(graph, op)
        step.aliasing = spec.aliasing
        if spec.aliasing is Aliasing.STREAMING:
            step.stream_distance = spec.stream_distance(step)
        steps.append(step)
    return steps

"""Lower graph operators to kernel calls with host-computed constants.

Each supported op becomes a `Step`: which C kernel to call, the scalar fields
of its params struct, and the constant arrays (weights, folded biases,
multipliers) it points at. Anything unsupported stops here with one line
naming the op and its index, before any code is written.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import quant
from .errors import TinyDeployError
from .graph import Graph, Operator, Tensor, op_macs

SUPPORTED_OPS = ("FULLY_CONNECTED", "SOFTMAX", "RESHAPE")
QUANTIZE_HINT = ("Quantize it to full integer (`tinydeploy quantize`, or TFLiteConverter with TFLITE_BUILTINS_INT8 "
                 "and int8 inference_input_type/inference_output_type)")


@dataclass
class Step:
    """One kernel call in the generated invoke()."""
    op_index: int
    op: str
    kernel: str | None                  # None: the output shares the input's bytes
    params_type: str | None
    inputs: list[int]                   # activation tensors read
    outputs: list[int]                  # activation tensors written
    scalars: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)
    macs: int = 0

    @property
    def weight_bytes(self) -> int:
        return sum(a.nbytes for _, a in self.arrays.values())


def _where(graph: Graph, op: Operator) -> str:
    return f"{graph.path}: operator #{op.index} {op.op}"


def _require_int8(graph: Graph, op: Operator, tensor: Tensor, role: str) -> None:
    if tensor.dtype != "int8" or not tensor.is_quantized:
        kind = tensor.dtype if tensor.dtype != "int8" else "int8 without quantization parameters"
        raise TinyDeployError(
            f"{_where(graph, op)}: {role} tensor '{tensor.name}' is {kind}; the model is not fully "
            f"int8-quantized. {QUANTIZE_HINT}")


def _fully_connected(graph: Graph, op: Operator) -> Step:
    t = graph.tensors
    x, w = t[op.inputs[0]], t[op.inputs[1]]
    bias = t[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    y = t[op.outputs[0]]
    for tensor, role in ((x, "input"), (w, "weights"), (y, "output")):
        _require_int8(graph, op, tensor, role)
    if not w.is_constant:
        raise TinyDeployError(f"{_where(graph, op)}: weights are computed at run time; only constant weights are supported")
    if np.any(w.zero_point != 0):
        raise TinyDeployError(f"{_where(graph, op)}: weights have a non-zero zero point; int8 weights must be symmetric")
    if bias is not None and (bias.dtype != "int32" or not bias.is_constant):
        raise TinyDeployError(f"{_where(graph, op)}: bias must be a constant int32 tensor, not {bias.dtype}")
    out_depth, in_depth = w.data.shape[0], int(np.prod(w.data.shape[1:]))
    batches = x.size // in_depth
    if batches * in_depth != x.size or batches * out_depth != y.size:
        raise TinyDeployError(f"{_where(graph, op)}: input {x.shape} and weights {w.shape} do not fit together")
    weights = w.data.reshape(out_depth, in_depth).astype(np.int64)
    raw_bias = bias.data.astype(np.int64) if bias is not None else np.zeros(out_depth, np.int64)
    folded = raw_bias - int(x.zero_point[0]) * weights.sum(axis=1)
    folded = ((folded + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)   # int32 wrap-around, as on target
    per_channel = w.scale.size > 1
    mults, shifts = quant.conv_multipliers(x.scale[0], w.scale, y.scale[0])
    act_min, act_max = quant.activation_range(op.options.get("fusedActivationFunction", 0), y.scale[0], int(y.zero_point[0]))
    return Step(op.index, op.op, "td_fully_connected_s8", "td_fully_connected_params",
                [x.index], [y.index],
                scalars=dict(batches=batches, in_depth=in_depth, out_depth=out_depth,
                             output_offset=int(y.zero_point[0]), act_min=act_min, act_max=act_max,
                             per_channel=int(per_channel)),
                arrays=dict(weights=("int8_t", w.data.reshape(-1).astype(np.int8)),
                            bias=("int32_t", folded),
                            multiplier=("int32_t", np.asarray(mults, np.int32)),
                            shift=("int32_t", np.asarray(shifts, np.int32))),
                macs=op_macs(graph, op))


def _softmax(graph: Graph, op: Operator) -> Step:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(graph, op, x, "input")
    _require_int8(graph, op, y, "output")
    if int(y.zero_point[0]) != -128 or float(y.scale[0]) != 1.0 / 256:
        raise TinyDeployError(f"{_where(graph, op)}: int8 output must have scale 1/256 and zero point -128")
    depth = x.shape[-1]
    mult, shift, diff_min = quant.softmax_params(op.options.get("beta", 1.0), x.scale[0])
    return Step(op.index, op.op, "td_softmax_s8", "td_softmax_params", [x.index], [y.index],
                scalars=dict(rows=x.size // depth, depth=depth, input_multiplier=mult,
                             input_left_shift=shift, diff_min=diff_min))


def _reshape(graph: Graph, op: Operator) -> Step:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(graph, op, x, "input")
    if x.size != y.size:
        raise TinyDeployError(f"{_where(graph, op)}: reshape from {x.shape} to {y.shape} changes the element count")
    return Step(op.index, op.op, None, None, [x.index], [y.index])


_LOWER = {"FULLY_CONNECTED": _fully_connected, "SOFTMAX": _softmax, "RESHAPE": _reshape}


def lower(graph: Graph) -> list[Step]:
    """Kernel calls for every operator, or TinyDeployError for the first one we can't run."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinyDeployError(
            f"{graph.path}: the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
            "tinydeploy handles models with one input and one output")
    for role, tensor in (("input", graph.input_tensor()), ("output", graph.output_tensor())):
        if tensor.dtype != "int8":
            raise TinyDeployError(
                f"{graph.path}: the model {role} '{tensor.name}' is {tensor.dtype}, not int8; the model is not fully "
                f"quantized. {QUANTIZE_HINT}")
    steps = []
    for op in graph.operators:
        if op.op not in _LOWER:
            raise TinyDeployError(
                f"{_where(graph, op)} is not supported yet (supported: {', '.join(SUPPORTED_OPS)}); "
                "replace the op in the model or wait for the convolutional operator set")
        steps.append(_LOWER[op.op](graph, op))
    return steps

"""What every op family's lowering shares: one-line refusals, type checks, quantization and shape helpers."""
from __future__ import annotations

import numpy as np

from tinydeploy.compiler import quant
from tinydeploy.core.errors import BadInput
from tinydeploy.ir.graph import Graph, Operator, Tensor
from tinydeploy.ir.schema import Activation

QUANTIZE_HINT = ("Quantize it to full integer (`tinydeploy quantize`, or TFLiteConverter with TFLITE_BUILTINS_INT8 "
                 "and int8 inference_input_type/inference_output_type)")
INT8 = ("int8",)
MAX_RANK = 4                     # the kernels address tensors as 4-D
OPTIONAL = -1                    # TFLite's index of an absent optional input


def where(graph: Graph, op: Operator) -> str:
    return f"{graph.path}: operator #{op.index} {op.op}"


def refuse(graph: Graph, op: Operator, what: str) -> BadInput:
    return BadInput(f"{where(graph, op)}: {what}")


def require_int8(graph: Graph, op: Operator, tensor: Tensor, role: str) -> None:
    if tensor.dtype != "int8" or not tensor.is_quantized:
        kind = tensor.dtype if tensor.dtype != "int8" else "int8 without quantization parameters"
        raise refuse(graph, op, f"{role} tensor '{tensor.name}' is {kind}; the model is not fully "
                                f"int8-quantized. {QUANTIZE_HINT}")


def int8_io(graph: Graph, op: Operator, input_slot: int = 0, output_slot: int = 0) -> tuple[Tensor, Tensor]:
    """The op's input and output activations, both checked to be quantized int8."""
    x, y = graph.tensors[op.inputs[input_slot]], graph.tensors[op.outputs[output_slot]]
    require_int8(graph, op, x, "input")
    require_int8(graph, op, y, "output")
    return x, y


def require_same_shape(graph: Graph, op: Operator, x: Tensor, y: Tensor) -> None:
    """An element-wise op's output has its input's shape (the kernels write as many elements as they read)."""
    if x.shape != y.shape:
        raise refuse(graph, op, f"output shape {list(y.shape)} differs from the input shape {list(x.shape)}")


def zero_point(t: Tensor) -> int:
    return int(t.zero_point[0])


def same_quantization(a: Tensor, b: Tensor) -> bool:
    return float(a.scale[0]) == float(b.scale[0]) and zero_point(a) == zero_point(b)


def activation(graph: Graph, op: Operator, y: Tensor) -> tuple[int, int]:
    """Clamp bounds of the op's fused activation on output ``y``."""
    code = op.options.get("fusedActivationFunction", Activation.NONE)
    try:
        return quant.activation_range(Activation(code), y.scale[0], zero_point(y))
    except ValueError:
        name = Activation(code).name if code in Activation._value2member_map_ else code
        raise refuse(graph, op, f"fused activation {name} is not supported "
                                "(supported: NONE, RELU, RELU_N1_TO_1, RELU6)")


def as_int32(values: np.ndarray) -> np.ndarray:
    """int64 values wrapped to int32, as the target's int32 arithmetic would."""
    return ((values.astype(np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def constant_weights(graph: Graph, op: Operator, slot: int, dtypes: tuple[str, ...] = INT8) -> Tensor:
    """The symmetric constant weights in input ``slot``, of one of ``dtypes`` (int4 arrives unpacked to int8)."""
    w = graph.tensors[op.inputs[slot]]
    if w.dtype not in dtypes or not w.is_quantized:
        require_int8(graph, op, w, "weights")
    if not w.is_constant:
        raise refuse(graph, op, "weights computed at run time are not supported; only constant weights")
    if np.any(w.zero_point != 0):
        raise refuse(graph, op, "weights have a non-zero zero point; int8 weights must be symmetric")
    return w


def bias(graph: Graph, op: Operator, slot: int, channels: int) -> np.ndarray:
    """The constant int32 bias in input ``slot`` as int64, or zeros when the op has none."""
    if len(op.inputs) <= slot or op.inputs[slot] == OPTIONAL:
        return np.zeros(channels, np.int64)
    b = graph.tensors[op.inputs[slot]]
    if b.dtype != "int32" or not b.is_constant:
        raise refuse(graph, op, f"bias must be a constant int32 tensor, not {b.dtype}")
    if b.size != channels:
        raise refuse(graph, op, f"bias has {b.size} values for {channels} output channels")
    return b.data.reshape(-1).astype(np.int64)


def constant_ints(graph: Graph, op: Operator, slot: int, role: str) -> np.ndarray:
    t = graph.tensors[op.inputs[slot]]
    if not t.is_constant or t.dtype not in ("int32", "int64"):
        raise refuse(graph, op, f"{role} must be a constant int32 tensor")
    return t.data.astype(np.int64)


def require_rank(graph: Graph, op: Operator, t: Tensor, role: str) -> None:
    if len(t.shape) > MAX_RANK:
        raise refuse(graph, op, f"{role} shape {list(t.shape)} has more than {MAX_RANK} dimensions")


def shape4(shape: tuple[int, ...]) -> list[int]:
    """``shape`` padded with leading 1s to four dimensions."""
    return [1] * (MAX_RANK - len(shape)) + list(shape)


def strides(shape: list[int]) -> list[int]:
    """Element strides of a row-major tensor of ``shape``."""
    return [int(np.prod(shape[i + 1:])) for i in range(len(shape))]

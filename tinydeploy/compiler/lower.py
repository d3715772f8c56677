"""Lower graph operators to kernel calls with host-computed constants.

Each supported op becomes a `Step`: which C kernel to call, the scalar fields
of its params struct, and the constant arrays (weights, folded biases,
multipliers) it points at. Anything unsupported stops here with one line
naming the op and its index, before any code is written.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinydeploy.compiler import quant
from tinydeploy.core.errors import TinyDeployError
from tinydeploy.ir.graph import Graph, Operator, Tensor, op_macs

QUANTIZE_HINT = ("Quantize it to full integer (`tinydeploy quantize`, or TFLiteConverter with TFLITE_BUILTINS_INT8 "
                 "and int8 inference_input_type/inference_output_type)")


class ArrayRef(str):
    """A params field that points at one of the step's `arrays` (rendered as its C name)."""


@dataclass
class Step:
    """One kernel call in the generated invoke()."""
    op_index: int
    op: str
    kernel: str | None                  # None: the output shares the input's bytes
    params_type: str | None
    inputs: list[int]                   # activation tensors read
    outputs: list[int]                  # activation tensors written
    scalars: dict[str, int | float | list] = field(default_factory=dict)
    arrays: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)
    macs: int = 0
    operands: list[int | str] | None = None     # call arguments: tensor indices or names in `arrays`;
                                                # default inputs + outputs
    pointer_lists: dict[str, list[int]] = field(default_factory=dict)   # params fields holding tensor addresses
    in_place: bool = False                      # the output may take over a same-size input's bytes
    scratch_bytes: int = 0                      # arena bytes the kernel needs during the call ("scratch" operand)

    @property
    def streams(self) -> bool:
        """A windowed kernel that writes output pixels in order (the planner may overlap its output and input)."""
        return "win" in self.scalars

    @property
    def weight_bytes(self) -> int:
        return sum(a.nbytes for _, a in self.arrays.values())


def _where(graph: Graph, op: Operator) -> str:
    return f"{graph.path}: operator #{op.index} {op.op}"


def _refuse(graph: Graph, op: Operator, what: str) -> TinyDeployError:
    return TinyDeployError(f"{_where(graph, op)}: {what}")


def _require_int8(graph: Graph, op: Operator, tensor: Tensor, role: str) -> None:
    if tensor.dtype != "int8" or not tensor.is_quantized:
        kind = tensor.dtype if tensor.dtype != "int8" else "int8 without quantization parameters"
        raise _refuse(graph, op, f"{role} tensor '{tensor.name}' is {kind}; the model is not fully "
                                 f"int8-quantized. {QUANTIZE_HINT}")


def _int8_io(graph: Graph, op: Operator) -> tuple[Tensor, Tensor]:
    """The op's first input and its output, both checked to be quantized int8 activations."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(graph, op, x, "input")
    _require_int8(graph, op, y, "output")
    return x, y


def _zp(t: Tensor) -> int:
    return int(t.zero_point[0])


def _activation(graph: Graph, op: Operator, y: Tensor) -> tuple[int, int]:
    code = op.options.get("fusedActivationFunction", 0)
    try:
        return quant.activation_range(code, y.scale[0], _zp(y))
    except ValueError:
        names = {4: "TANH", 5: "SIGN_BIT"}
        raise _refuse(graph, op, f"fused activation {names.get(code, code)} is not supported "
                                 "(supported: NONE, RELU, RELU_N1_TO_1, RELU6)")


def _as_int32(values: np.ndarray) -> np.ndarray:
    """int64 values wrapped to int32, as the target's int32 arithmetic would."""
    return ((values.astype(np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def _weights(graph: Graph, op: Operator, index: int) -> Tensor:
    w = graph.tensors[index]
    _require_int8(graph, op, w, "weights")
    if not w.is_constant:
        raise _refuse(graph, op, "weights computed at run time are not supported; only constant weights")
    if np.any(w.zero_point != 0):
        raise _refuse(graph, op, "weights have a non-zero zero point; int8 weights must be symmetric")
    return w


def _bias(graph: Graph, op: Operator, channels: int) -> np.ndarray:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return np.zeros(channels, np.int64)
    bias = graph.tensors[op.inputs[2]]
    if bias.dtype != "int32" or not bias.is_constant:
        raise _refuse(graph, op, f"bias must be a constant int32 tensor, not {bias.dtype}")
    return bias.data.reshape(-1).astype(np.int64)


GEMM_ROWS = 4                    # rows interleaved per block, as td_gemm.c reads them


def gemm_weight_layout(w: np.ndarray) -> np.ndarray:
    """[rows, k] int8 -> td_gemm.c's order: rows padded to k % 4 == 0 with zeros, blocks of
    four rows interleaved by 4-byte chunks, the remaining rows plain."""
    rows, k = w.shape
    depth = -(-k // 4) * 4
    padded = np.zeros((rows, depth), np.int8)
    padded[:, :k] = w
    blocked = rows // GEMM_ROWS * GEMM_ROWS
    head = padded[:blocked].reshape(-1, GEMM_ROWS, depth // 4, 4).transpose(0, 2, 1, 3)
    return np.concatenate([head.reshape(-1), padded[blocked:].reshape(-1)])


INT32_LIMIT = 1 << 31


def _channel_bounds(per_row: np.ndarray, channels: int) -> np.ndarray:
    """Accumulator bounds per requantization channel: per row, or their maximum for one per-tensor scale."""
    return per_row if channels == len(per_row) else np.full(channels, per_row.max())


def rescale_records(mults: list[int], shifts: list[int], output_offset: int, acc_bound: np.ndarray,
                    constant_acc: dict[int, int] | None = None) -> tuple[np.ndarray, bool]:
    """Per-channel td_rescale records [multiplier, left, right, round] and whether td_rescale_fast is
    exact for every accumulator |acc| <= acc_bound[channel].

    With L = max(shift, 0) and R = max(-shift, 0): left = L + 1, right = R + 1 and round = 2^R +
    (output_offset << right). td_rescale_fast takes hi = SMMULR(acc << left, multiplier) (TFLite's
    rounding doubling high multiply of acc * 2^L) and (round + 2 hi - [hi < 0]) >> right, which is its
    rounding division by 2^R, ties away from zero, plus the output offset, as long as nothing overflows.
    For the fast path, a channel whose result is provably 0, or whose accumulator is a known constant
    (`constant_acc`: all its weights are 0), gets multiplier 0 and its result folded into `round`.
    The exact kernel path reads multiplier and left - right (= shift) only."""
    exact, fast_records, fast = [], [], True
    for channel, (m, shift, bound) in enumerate(zip(mults, shifts, (int(b) for b in acc_bound))):
        left, right = max(shift, 0), max(-shift, 0)
        exact.append([m, left + 1, right + 1, 0])
        hi = ((bound << left) * m >> 31) + 1                    # |rounding doubling high multiply| bound
        if constant_acc and channel in constant_acc:
            value = quant.multiply_by_quantized_multiplier(constant_acc[channel], m, shift) + output_offset
            fast_records.append([0, 1, 1, 1 + 2 * value])
            continue
        if right >= 1 and hi < 1 << (right - 1):                # always rounds to 0
            m, left, right, hi = 0, 0, 0, 0
        round_ = (1 << right) + (output_offset << (right + 1))
        fast &= (bound << (left + 1)) < INT32_LIMIT and 2 * hi + abs(round_) + 1 < INT32_LIMIT and right < 31
        fast_records.append([m, left + 1, right + 1, round_])
    return np.asarray(fast_records if fast else exact, np.int64).astype(np.int32), fast


def _constant_channels(weights: np.ndarray, bias: np.ndarray, channels: int) -> dict[int, int]:
    """Channels (per-channel quantization only) whose weights are all 0: their accumulator is the bias."""
    if channels != len(bias):
        return {}
    return {int(c): int(bias[c]) for c in np.flatnonzero(~weights.any(axis=1))}


def _gemm(x: Tensor, w: Tensor, y: Tensor, w2d: np.ndarray, bias: np.ndarray, act: tuple[int, int]):
    """td_gemm_params for weights ``w2d`` [rows, k], with the input offset folded into the bias."""
    rows = w2d.shape[0]
    wide = w2d.astype(np.int64)
    folded = bias - _zp(x) * wide.sum(axis=1)
    mults, shifts = quant.conv_multipliers(x.scale[0], w.scale, y.scale[0])
    rescale, fast = rescale_records(mults, shifts, _zp(y), _channel_bounds(
        np.abs(folded) + 128 * np.abs(wide).sum(axis=1), len(mults)), _constant_channels(wide, folded, len(mults)))
    params = dict(depth=-(-w2d.shape[1] // 4) * 4, rows=rows, act_min=act[0], act_max=act[1],
                  per_channel=int(len(mults) > 1), fast=int(fast), weights=ArrayRef("weights"),
                  bias=ArrayRef("bias"), rescale=ArrayRef("rescale"), output_offset=_zp(y))
    arrays = dict(weights=("uint32_t", gemm_weight_layout(w2d).view("<u4")), bias=("int32_t", _as_int32(folded)),
                  rescale=("td_rescale", rescale))
    return params, arrays


def _gemm_scratch(gemm: dict) -> int:
    """td_gemm.c's scratch: two columns unpacked (4 bytes per k), two gathered (1 each), 2 accumulators per row."""
    return 6 * gemm["depth"] + 8 * gemm["rows"]


def _fully_connected(graph: Graph, op: Operator) -> Step:
    x, y = _int8_io(graph, op)
    w = _weights(graph, op, op.inputs[1])
    out_depth, in_depth = w.data.shape[0], int(np.prod(w.data.shape[1:]))
    batches = x.size // in_depth
    if batches * in_depth != x.size or batches * out_depth != y.size:
        raise _refuse(graph, op, f"input {x.shape} and weights {w.shape} do not fit together")
    gemm, arrays = _gemm(x, w, y, w.data.reshape(out_depth, in_depth), _bias(graph, op, out_depth),
                         _activation(graph, op, y))
    return Step(op.index, op.op, "td_fully_connected_s8", "td_fully_connected_params", [x.index], [y.index],
                scalars=dict(batches=batches, in_depth=in_depth, gemm=gemm), arrays=arrays,
                operands=[x.index, y.index, "scratch"],
                scratch_bytes=0 if batches == 1 else _gemm_scratch(gemm),
                macs=op_macs(graph, op))


def _nhwc(graph: Graph, op: Operator, t: Tensor, role: str) -> tuple[int, int, int, int]:
    if len(t.shape) != 4:
        raise _refuse(graph, op, f"{role} shape {list(t.shape)} is not 4-D (NHWC)")
    return t.shape


def _window(graph: Graph, op: Operator, x: Tensor, y: Tensor, filter_h: int, filter_w: int) -> dict[str, int]:
    """Strides, dilations and the padding TFLite derives from SAME/VALID, checked against the output shape."""
    o = op.options
    n, in_h, in_w, in_c = _nhwc(graph, op, x, "input")
    _, out_h, out_w, out_c = _nhwc(graph, op, y, "output")
    stride_h, stride_w = o.get("strideH", 1), o.get("strideW", 1)
    dil_h, dil_w = o.get("dilationHFactor", 1) or 1, o.get("dilationWFactor", 1) or 1
    if min(stride_h, stride_w, dil_h, dil_w) < 1:
        raise _refuse(graph, op, f"stride {stride_h}x{stride_w} / dilation {dil_h}x{dil_w} must be positive")
    same = o.get("padding", 0) == 0
    pads = []
    for size, taps, stride, dil, out in ((in_h, filter_h, stride_h, dil_h, out_h), (in_w, filter_w, stride_w, dil_w, out_w)):
        effective = (taps - 1) * dil + 1
        expected = (size + stride - 1) // stride if same else (size + stride - effective) // stride
        if expected != out:
            raise _refuse(graph, op, f"output {list(y.shape)} does not match input {list(x.shape)} with a "
                                     f"{filter_h}x{filter_w} window, stride {stride_h}x{stride_w}, "
                                     f"{'SAME' if same else 'VALID'} padding")
        pads.append(max(0, (out - 1) * stride + effective - size) // 2)
    return dict(batches=n, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                filter_h=filter_h, filter_w=filter_w, stride_h=stride_h, stride_w=stride_w,
                dilation_h=dil_h, dilation_w=dil_w, pad_h=pads[0], pad_w=pads[1])


def _conv(graph: Graph, op: Operator) -> Step:
    x, y = _int8_io(graph, op)
    w = _weights(graph, op, op.inputs[1])
    depthwise = op.op == "DEPTHWISE_CONV_2D"
    if len(w.shape) != 4:
        raise _refuse(graph, op, f"weights shape {list(w.shape)} is not 4-D")
    if depthwise:
        _, fh, fw, out_c = w.shape
    else:
        out_c, fh, fw, _ = w.shape
    win = _window(graph, op, x, y, fh, fw)
    if win["out_c"] != out_c:
        raise _refuse(graph, op, f"weights {list(w.shape)} give {out_c} channels, the output has {win['out_c']}")
    if depthwise:
        group_in_c = out_c // win["in_c"]                 # the depth multiplier
        if group_in_c * win["in_c"] != out_c:
            raise _refuse(graph, op, f"{out_c} output channels are not a multiple of {win['in_c']} input channels")
    else:
        group_in_c = w.shape[3]                           # input channels each filter sees
        if win["in_c"] % group_in_c or out_c % (win["in_c"] // group_in_c):
            raise _refuse(graph, op, f"{win['in_c']} input channels cannot be split into groups of {group_in_c}")
    if w.scale.size not in (1, out_c):
        raise _refuse(graph, op, f"weights have {w.scale.size} scales for {out_c} output channels")
    act_min, act_max = _activation(graph, op, y)
    # An ungrouped convolution is a matrix product; so is a depthwise one over a single input channel
    # (each filter then sees the same one channel), with its [1, fh, fw, out_c] weights transposed.
    if (not depthwise and group_in_c == win["in_c"]) or (depthwise and win["in_c"] == 1):
        w2d = w.data.reshape(-1, out_c).T if depthwise else w.data.reshape(out_c, -1)
        gemm, arrays = _gemm(x, w, y, w2d, _bias(graph, op, out_c), (act_min, act_max))
        return Step(op.index, op.op, "td_conv_gemm_s8", "td_conv_gemm_params", [x.index], [y.index],
                    scalars=dict(win=win, pad_value=_zp(x), gemm=gemm), arrays=arrays,
                    operands=[x.index, y.index, "scratch"],
                    scratch_bytes=_gemm_scratch(gemm),
                    macs=op_macs(graph, op))
    mults, shifts = quant.conv_multipliers(x.scale[0], w.scale, y.scale[0])
    if len(mults) == 1:
        mults, shifts = mults * out_c, shifts * out_c
    bias = _bias(graph, op, out_c)
    per_channel_weights = (w.data.reshape(-1, out_c).T if depthwise else w.data.reshape(out_c, -1)).astype(np.int64)
    rescale, fast = rescale_records(mults, shifts, _zp(y), np.abs(bias) + 255 * np.abs(per_channel_weights).sum(axis=1),
                                    _constant_channels(per_channel_weights, bias, out_c))
    scalars = dict(win=win, input_offset=-_zp(x), output_offset=_zp(y), act_min=act_min, act_max=act_max)
    if depthwise and group_in_c == 1 and fh <= DEPTHWISE_MAX_FILTER_H:
        return _depthwise_rows(op, scalars, fast, per_channel_weights, bias, rescale, op_macs(graph, op))
    return Step(op.index, op.op, "td_depthwise_conv_s8" if depthwise else "td_conv_s8", "td_conv_params",
                [x.index], [y.index], scalars=dict(scalars, group_in_c=group_in_c),
                arrays=dict(weights=("int8_t", w.data.reshape(-1).astype(np.int8)),
                            bias=("int32_t", _as_int32(bias)), rescale=("td_rescale", rescale)),
                macs=op_macs(graph, op))


DEPTHWISE_MAX_FILTER_H = 16      # TD_DEPTHWISE_MAX_FILTER_H in td_kernels.h


def depthwise_weight_layout(per_channel: np.ndarray) -> np.ndarray:
    """[channels, taps] int8 -> td_depthwise.c's words: channels padded to a multiple of 4 with zeros,
    per group of four and tap the int16 pairs (c0, c2), (c1, c3) (low half first)."""
    channels, taps = per_channel.shape
    groups = -(-channels // 4)
    padded = np.zeros((groups * 4, taps), np.int64)
    padded[:channels] = per_channel
    quads = padded.reshape(groups, 4, taps).transpose(0, 2, 1)          # [group][tap][c0..c3]
    low, high = quads[..., [0, 1]], quads[..., [2, 3]]                   # (c0, c2) and (c1, c3)
    return ((low & 0xFFFF) | ((high & 0xFFFF) << 16)).astype(np.uint32).reshape(-1)


def depthwise_ring_bytes(win: dict) -> int:
    """td_depthwise.c's scratch: (filter_h - 1) * dilation_h + 1 unpacked rows of every padded column."""
    span = (win["out_w"] - 1) * win["stride_w"] + (win["filter_w"] - 1) * win["dilation_w"] + 1
    ring_rows = (win["filter_h"] - 1) * win["dilation_h"] + 1
    return ring_rows * span * -(-win["in_c"] // 4) * 8


def _depthwise_rows(op: Operator, scalars: dict, fast: bool, per_channel: np.ndarray, bias: np.ndarray,
                    rescale: np.ndarray, macs: int) -> Step:
    """DEPTHWISE_CONV_2D with depth multiplier 1: td_depthwise.c's ring of unpacked rows."""
    pad = -per_channel.shape[0] % 4
    unused = np.tile(np.asarray([[0, 1, 1, 0]], np.int32), (pad, 1))     # padding channels: never stored
    return Step(op.index, op.op, "td_depthwise_conv_s8_m1", "td_depthwise_params", op.inputs[:1], op.outputs[:1],
                scalars=dict(scalars, fast=int(fast)),
                arrays=dict(weights=("uint32_t", depthwise_weight_layout(per_channel)),
                            bias=("int32_t", _as_int32(np.concatenate([bias, np.zeros(pad, np.int64)]))),
                            rescale=("td_rescale", np.concatenate([rescale, unused]))),
                operands=[op.inputs[0], op.outputs[0], "scratch"], scratch_bytes=depthwise_ring_bytes(scalars["win"]),
                macs=macs)


def _pool(graph: Graph, op: Operator) -> Step:
    x, y = _int8_io(graph, op)
    if float(x.scale[0]) != float(y.scale[0]) or _zp(x) != _zp(y):
        raise _refuse(graph, op, "input and output quantization differ; pooling does not rescale")
    win = _window(graph, op, x, y, op.options.get("filterHeight", 1), op.options.get("filterWidth", 1))
    act_min, act_max = _activation(graph, op, y)
    kernel = "td_average_pool_s8" if op.op == "AVERAGE_POOL_2D" else "td_max_pool_s8"
    return Step(op.index, op.op, kernel, "td_pool_params", [x.index], [y.index],
                scalars=dict(win=win, act_min=act_min, act_max=act_max))


def _shape4(shape: tuple[int, ...]) -> list[int]:
    return [1] * (4 - len(shape)) + list(shape)


def _strides(shape: list[int]) -> list[int]:
    return [int(np.prod(shape[i + 1:])) for i in range(len(shape))]


def _broadcast_strides(graph: Graph, op: Operator, t: Tensor, out_shape: list[int]) -> list[int]:
    shape = _shape4(t.shape)
    for have, want in zip(shape, out_shape):
        if have not in (1, want):
            raise _refuse(graph, op, f"input shape {list(t.shape)} does not broadcast to the output {out_shape}")
    return [0 if have == 1 and want != 1 else s for have, want, s in zip(shape, out_shape, _strides(shape))]


ADD_TABLE_BYTES = 2 * 256 * 4         # td_add_s8's lookup tables: both inputs rescaled for every int8 code
ADD_TABLE_MIN_ELEMENTS = 1024         # below this, building the tables costs more than it saves


def _binary(graph: Graph, op: Operator) -> Step:
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    for t, role in ((a, "first input"), (b, "second input"), (y, "output")):
        _require_int8(graph, op, t, role)
    if max(len(a.shape), len(b.shape), len(y.shape)) > 4:
        raise _refuse(graph, op, "operands with more than 4 dimensions are not supported")
    out_shape = _shape4(y.shape)
    act_min, act_max = _activation(graph, op, y)
    scalars = dict(shape=out_shape, stride1=_broadcast_strides(graph, op, a, out_shape),
                   stride2=_broadcast_strides(graph, op, b, out_shape), input1_offset=-_zp(a),
                   input2_offset=-_zp(b), output_offset=_zp(y), act_min=act_min, act_max=act_max)
    if op.op == "ADD":
        params = quant.add_params(a.scale[0], b.scale[0], y.scale[0])
        if params["output_shift"] > 0:
            raise _refuse(graph, op, "the output scale is too small for the inputs' scales (rescale factor >= 1)")
        scalars.update(params)
    else:
        mult, shift = quant.quantize_multiplier(float(a.scale[0]) * float(b.scale[0]) / float(y.scale[0]))
        scalars.update(left_shift=0, input1_multiplier=0, input1_shift=0, input2_multiplier=0, input2_shift=0,
                       output_multiplier=mult, output_shift=shift)
    arrays, operands = {}, []
    for name, t in (("input1", a), ("input2", b)):
        if t.is_constant:
            arrays[name] = ("int8_t", t.data.reshape(-1).astype(np.int8))
            operands.append(name)
        else:
            operands.append(t.index)
    inputs = [t.index for t in (a, b) if not t.is_constant]
    if op.op == "MUL":
        return Step(op.index, op.op, "td_mul_s8", "td_binary_params", inputs, [y.index], scalars=scalars,
                    arrays=arrays, operands=operands + [y.index], in_place=True)
    tables = ADD_TABLE_BYTES if y.size >= ADD_TABLE_MIN_ELEMENTS else 0
    return Step(op.index, op.op, "td_add_s8", "td_binary_params", inputs, [y.index], scalars=scalars,
                arrays=arrays, operands=operands + [y.index, "scratch"], in_place=True, scratch_bytes=tables)


def _sigmoid(graph: Graph, op: Operator) -> Step:
    x, y = _int8_io(graph, op)
    logistic = op.op == "LOGISTIC"
    if logistic and _zp(y) != -128:
        raise _refuse(graph, op, f"int8 output must have zero point -128, not {_zp(y)}")
    mult, shift, radius = quant.sigmoid_input_params(x.scale[0])
    return Step(op.index, op.op, "td_logistic_s8" if logistic else "td_tanh_s8", "td_activation_params",
                [x.index], [y.index],
                scalars=dict(size=x.size, input_zero_point=_zp(x), input_range_radius=radius,
                             input_multiplier=mult, input_left_shift=shift), in_place=True)


def _quantize(graph: Graph, op: Operator) -> Step:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(graph, op, y, "output")
    base = dict(size=x.size, input_zero_point=0, output_zero_point=_zp(y), multiplier=0, shift=0, scale=1.0)
    if x.dtype == "float32":
        base.update(scale=float(y.scale[0]))
        return Step(op.index, op.op, "td_quantize_f32_s8", "td_quantize_params", [x.index], [y.index], scalars=base)
    if x.dtype == "int8" and x.is_quantized:
        mult, shift = quant.quantize_multiplier(float(x.scale[0]) / float(y.scale[0]))
        base.update(input_zero_point=_zp(x), multiplier=mult, shift=shift)
        return Step(op.index, op.op, "td_requantize_s8", "td_quantize_params", [x.index], [y.index],
                    scalars=base, in_place=True)
    raise _refuse(graph, op, f"quantizing {x.dtype} to {y.dtype} is not supported (float32 or int8 to int8 only)")


def _dequantize(graph: Graph, op: Operator) -> Step:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(graph, op, x, "input")
    if y.dtype != "float32":
        raise _refuse(graph, op, f"dequantizing to {y.dtype} is not supported (int8 to float32 only)")
    return Step(op.index, op.op, "td_dequantize_s8_f32", "td_quantize_params", [x.index], [y.index],
                scalars=dict(size=x.size, input_zero_point=_zp(x), output_zero_point=0, multiplier=0, shift=0,
                             scale=float(x.scale[0])))


def _constant_ints(graph: Graph, op: Operator, index: int, role: str) -> np.ndarray:
    t = graph.tensors[index]
    if not t.is_constant or t.dtype not in ("int32", "int64"):
        raise _refuse(graph, op, f"{role} must be a constant int32 tensor")
    return t.data.astype(np.int64)


def _mean(graph: Graph, op: Operator) -> Step:
    x, y = _int8_io(graph, op)
    if len(x.shape) > 4:
        raise _refuse(graph, op, f"input shape {list(x.shape)} has more than 4 dimensions")
    rank = len(x.shape)
    axes = sorted({int(a) % rank for a in _constant_ints(graph, op, op.inputs[1], "the axis input").reshape(-1)})
    shape = _shape4(x.shape)
    reduced = {a + 4 - rank for a in axes}
    outer = [1 if i in reduced else d for i, d in enumerate(shape)]
    inner = [d if i in reduced else 1 for i, d in enumerate(shape)]
    count = int(np.prod(inner))
    if int(np.prod(outer)) != y.size:
        raise _refuse(graph, op, f"output {list(y.shape)} does not match the mean of {list(x.shape)} over axes {axes}")
    # TFLite Micro rescales the zero-point-corrected sum once, with 1/count folded into the multiplier.
    mult, shift = quant.mean_sum_multiplier(*quant.quantize_multiplier(float(x.scale[0]) / float(y.scale[0])), count)
    return Step(op.index, op.op, "td_mean_s8", "td_mean_params", [x.index], [y.index],
                scalars=dict(outer=outer, inner=inner, stride=_strides(shape), count=count,
                             input_zero_point=_zp(x), output_zero_point=_zp(y), multiplier=mult, shift=shift))


def _pad(graph: Graph, op: Operator) -> Step:
    x, y = _int8_io(graph, op)
    if len(x.shape) > 4:
        raise _refuse(graph, op, f"input shape {list(x.shape)} has more than 4 dimensions")
    pads = _constant_ints(graph, op, op.inputs[1], "the paddings input").reshape(-1, 2)
    if pads.shape[0] != len(x.shape) or np.any(pads < 0):
        raise _refuse(graph, op, f"paddings {pads.tolist()} do not fit input shape {list(x.shape)}")
    value = _zp(y)
    if op.op == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        v = graph.tensors[op.inputs[2]]
        if not v.is_constant or v.dtype != "int8":
            raise _refuse(graph, op, "the padding value must be a constant int8 tensor")
        value = int(v.data.reshape(-1)[0])
    if float(x.scale[0]) != float(y.scale[0]) or _zp(x) != _zp(y):
        raise _refuse(graph, op, "input and output quantization differ; padding does not rescale")
    before = [0] * (4 - len(x.shape)) + [int(p) for p in pads[:, 0]]
    out_shape = [d + int(a) + int(b) for d, (a, b) in zip(x.shape, pads)]
    if out_shape != list(y.shape):
        raise _refuse(graph, op, f"padding {list(x.shape)} by {pads.tolist()} does not give the output {list(y.shape)}")
    return Step(op.index, op.op, "td_pad_s8", "td_pad_params", [x.index], [y.index],
                scalars=dict(in_shape=_shape4(x.shape), out_shape=_shape4(y.shape), before=before, value=value))


def _concatenation(graph: Graph, op: Operator) -> Step:
    y = graph.tensors[op.outputs[0]]
    _require_int8(graph, op, y, "output")
    rank = len(y.shape)
    axis = op.options.get("axis", 0) % max(rank, 1)
    if op.options.get("fusedActivationFunction", 0):
        raise _refuse(graph, op, "a fused activation on CONCATENATION is not supported")
    inputs = [graph.tensors[i] for i in op.inputs]
    for t in inputs:
        _require_int8(graph, op, t, "input")
        if t.is_constant:
            raise _refuse(graph, op, f"constant input '{t.name}' is not supported; only activations")
        if float(t.scale[0]) != float(y.scale[0]) or _zp(t) != _zp(y):
            raise _refuse(graph, op, f"input '{t.name}' is quantized differently from the output; "
                                     "concatenation does not rescale")
        if len(t.shape) != rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, y.shape)) if i != axis):
            raise _refuse(graph, op, f"input shape {list(t.shape)} does not fit output {list(y.shape)} on axis {axis}")
    outer = int(np.prod(y.shape[:axis]))
    chunks = np.asarray([int(np.prod(t.shape[axis:])) for t in inputs], np.int32)
    return Step(op.index, op.op, "td_concatenation_s8", "td_concat_params", [t.index for t in inputs], [y.index],
                scalars=dict(count=len(inputs), outer=outer), arrays=dict(chunk=("int32_t", chunks)),
                operands=[y.index], pointer_lists=dict(inputs=[t.index for t in inputs]))


def _softmax(graph: Graph, op: Operator) -> Step:
    x, y = _int8_io(graph, op)
    if _zp(y) != -128 or float(y.scale[0]) != 1.0 / 256:
        raise _refuse(graph, op, "int8 output must have scale 1/256 and zero point -128")
    depth = x.shape[-1]
    mult, shift, diff_min = quant.softmax_params(op.options.get("beta", 1.0), x.scale[0])
    return Step(op.index, op.op, "td_softmax_s8", "td_softmax_params", [x.index], [y.index],
                scalars=dict(rows=x.size // depth, depth=depth, input_multiplier=mult,
                             input_left_shift=shift, diff_min=diff_min))


def _reshape(graph: Graph, op: Operator) -> Step:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _require_int8(graph, op, x, "input")
    if x.size != y.size:
        raise _refuse(graph, op, f"reshape from {list(x.shape)} to {list(y.shape)} changes the element count")
    return Step(op.index, op.op, None, None, [x.index], [y.index])


_LOWER = {
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool, "MAX_POOL_2D": _pool, "ADD": _binary, "MUL": _binary, "MEAN": _mean,
    "PAD": _pad, "PADV2": _pad, "CONCATENATION": _concatenation, "RESHAPE": _reshape, "SOFTMAX": _softmax,
    "LOGISTIC": _sigmoid, "TANH": _sigmoid, "QUANTIZE": _quantize, "DEQUANTIZE": _dequantize,
}
SUPPORTED_OPS = tuple(_LOWER)
IO_DTYPES = ("int8", "float32")


def lower(graph: Graph) -> list[Step]:
    """Kernel calls for every operator, or TinyDeployError for the first one we can't run."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinyDeployError(
            f"{graph.path}: the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
            "tinydeploy handles models with one input and one output")
    for role, tensor in (("input", graph.input_tensor()), ("output", graph.output_tensor())):
        if tensor.dtype not in IO_DTYPES:
            raise TinyDeployError(
                f"{graph.path}: the model {role} '{tensor.name}' is {tensor.dtype}; tinydeploy takes int8 or "
                f"float32 model inputs and outputs. {QUANTIZE_HINT}")
    steps = []
    for op in graph.operators:
        if op.op not in _LOWER:
            raise TinyDeployError(
                f"{_where(graph, op)} is not supported (supported: {', '.join(SUPPORTED_OPS)}); "
                "replace the op in the model before converting")
        steps.append(_LOWER[op.op](graph, op))
    return steps

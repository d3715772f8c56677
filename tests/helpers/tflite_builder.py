"""Write small int8 .tflite models directly with the flatbuffer schema.

Tests use these to drive the kernels through shapes and quantization
parameters a trained model would rarely hit, without TensorFlow.
"""
from __future__ import annotations

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

from tinydeploy.verify import reference
from tinydeploy.compiler.codegen import CompiledModel, compile_model
from tinydeploy.verify.host import HostModel

_TYPES = {np.int8: s.TensorType.INT8, np.int32: s.TensorType.INT32, np.float32: s.TensorType.FLOAT32}
INT4 = "int4"                    # dtype of packed 4-bit constant tensors (values -8..7 given as int8)


def pack_int4(values: np.ndarray) -> np.ndarray:
    """TFLite's INT4 buffer: two values a byte, the first in the low nibble."""
    flat = np.asarray(values, np.int64).reshape(-1) & 0xF
    if flat.size % 2:
        flat = np.append(flat, 0)
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)


class ModelBuilder:
    """Add tensors and operators, then ``finish()`` for the flatbuffer bytes."""

    def __init__(self):
        self.buffers = [s.BufferT()]
        self.tensors: list = []
        self.operators: list = []
        self.opcodes: list[int] = []

    def tensor(self, shape, dtype=np.int8, scale=None, zero_point=None, data=None, quantized_dim=0, name=None) -> int:
        t = s.TensorT()
        t.shape = list(shape)
        t.type = s.TensorType.INT4 if dtype == INT4 else _TYPES[dtype]
        t.name = (name or f"t{len(self.tensors)}").encode()
        t.buffer = 0
        if data is not None:
            buf = s.BufferT()
            buf.data = pack_int4(data) if dtype == INT4 else \
                np.frombuffer(np.ascontiguousarray(data, dtype=dtype).tobytes(), dtype=np.uint8).copy()
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale = list(np.atleast_1d(np.asarray(scale, np.float32)))
            q.zeroPoint = list(np.atleast_1d(np.asarray(zero_point if zero_point is not None else 0, np.int64)))
            if len(q.zeroPoint) != len(q.scale):
                q.zeroPoint = [int(q.zeroPoint[0])] * len(q.scale)
            q.quantizedDimension = quantized_dim
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def buffer_array(self, index: int) -> np.ndarray:
        """The constant data of tensor `index` as a writable array of its type and shape."""
        t = self.tensors[index]
        dtype = next(k for k, v in _TYPES.items() if v == t.type)
        return self.buffers[t.buffer].data.view(dtype).reshape(t.shape)

    def operator(self, builtin: int, inputs, outputs, options_type=0, options=None) -> None:
        if builtin not in self.opcodes:
            self.opcodes.append(builtin)
        op = s.OperatorT()
        op.opcodeIndex = self.opcodes.index(builtin)
        op.inputs, op.outputs = list(inputs), list(outputs)
        op.builtinOptionsType, op.builtinOptions = options_type, options
        self.operators.append(op)

    def fully_connected(self, x: int, weights: int, bias: int, out: int, activation: int = 0) -> None:
        o = s.FullyConnectedOptionsT()
        o.fusedActivationFunction = activation
        self.operator(s.BuiltinOperator.FULLY_CONNECTED, [x, weights, bias], [out], s.BuiltinOptions.FullyConnectedOptions, o)

    def softmax(self, x: int, out: int, beta: float = 1.0) -> None:
        o = s.SoftmaxOptionsT()
        o.beta = beta
        self.operator(s.BuiltinOperator.SOFTMAX, [x], [out], s.BuiltinOptions.SoftmaxOptions, o)

    def reshape(self, x: int, out: int) -> None:
        o = s.ReshapeOptionsT()
        o.newShape = list(self.tensors[out].shape)
        self.operator(s.BuiltinOperator.RESHAPE, [x], [out], s.BuiltinOptions.ReshapeOptions, o)

    def conv_2d(self, x: int, weights: int, bias: int, out: int, stride=(1, 1), dilation=(1, 1), same=True,
                activation: int = 0) -> None:
        o = s.Conv2DOptionsT()
        o.padding = s.Padding.SAME if same else s.Padding.VALID
        o.strideH, o.strideW = stride
        o.dilationHFactor, o.dilationWFactor = dilation
        o.fusedActivationFunction = activation
        self.operator(s.BuiltinOperator.CONV_2D, [x, weights, bias], [out], s.BuiltinOptions.Conv2DOptions, o)

    def depthwise_conv_2d(self, x: int, weights: int, bias: int, out: int, multiplier: int, stride=(1, 1),
                          dilation=(1, 1), same=True, activation: int = 0) -> None:
        o = s.DepthwiseConv2DOptionsT()
        o.padding = s.Padding.SAME if same else s.Padding.VALID
        o.strideH, o.strideW = stride
        o.dilationHFactor, o.dilationWFactor = dilation
        o.depthMultiplier = multiplier
        o.fusedActivationFunction = activation
        self.operator(s.BuiltinOperator.DEPTHWISE_CONV_2D, [x, weights, bias], [out],
                      s.BuiltinOptions.DepthwiseConv2DOptions, o)

    def pool_2d(self, kind: str, x: int, out: int, window, stride, same: bool, activation: int = 0) -> None:
        o = s.Pool2DOptionsT()
        o.padding = s.Padding.SAME if same else s.Padding.VALID
        o.filterHeight, o.filterWidth = window
        o.strideH, o.strideW = stride
        o.fusedActivationFunction = activation
        op = s.BuiltinOperator.AVERAGE_POOL_2D if kind == "average" else s.BuiltinOperator.MAX_POOL_2D
        self.operator(op, [x], [out], s.BuiltinOptions.Pool2DOptions, o)

    def add(self, a: int, b: int, out: int, activation: int = 0) -> None:
        o = s.AddOptionsT()
        o.fusedActivationFunction = activation
        self.operator(s.BuiltinOperator.ADD, [a, b], [out], s.BuiltinOptions.AddOptions, o)

    def mul(self, a: int, b: int, out: int, activation: int = 0) -> None:
        o = s.MulOptionsT()
        o.fusedActivationFunction = activation
        self.operator(s.BuiltinOperator.MUL, [a, b], [out], s.BuiltinOptions.MulOptions, o)

    def mean(self, x: int, axes, out: int, keep_dims: bool) -> None:
        axis = self.tensor((len(axes),), np.int32, data=np.asarray(axes, np.int32))
        o = s.ReducerOptionsT()
        o.keepDims = keep_dims
        self.operator(s.BuiltinOperator.MEAN, [x, axis], [out], s.BuiltinOptions.ReducerOptions, o)

    def pad(self, x: int, paddings, out: int, value: int | None = None) -> None:
        """PAD with the output zero point, or PADV2 with ``value``."""
        pads = self.tensor((len(paddings), 2), np.int32, data=np.asarray(paddings, np.int32))
        if value is None:
            self.operator(s.BuiltinOperator.PAD, [x, pads], [out], s.BuiltinOptions.PadOptions, s.PadOptionsT())
        else:
            q = self.tensors[x].quantization
            fill = self.tensor((1,), np.int8, q.scale[0], q.zeroPoint[0], np.asarray([value], np.int8))
            self.operator(s.BuiltinOperator.PADV2, [x, pads, fill], [out], s.BuiltinOptions.PadV2Options,
                          s.PadV2OptionsT())

    def concatenation(self, inputs, out: int, axis: int) -> None:
        o = s.ConcatenationOptionsT()
        o.axis = axis
        self.operator(s.BuiltinOperator.CONCATENATION, inputs, [out], s.BuiltinOptions.ConcatenationOptions, o)

    def unary(self, name: str, x: int, out: int) -> None:
        """LOGISTIC, TANH, QUANTIZE or DEQUANTIZE (ops without options)."""
        self.operator(getattr(s.BuiltinOperator, name), [x], [out])

    def finish(self, inputs, outputs) -> bytes:
        model = s.ModelT()
        model.version = 3
        model.buffers = self.buffers
        codes = []
        for builtin in self.opcodes:
            c = s.OperatorCodeT()
            c.builtinCode = builtin
            c.deprecatedBuiltinCode = min(builtin, 127)
            c.version = 1
            codes.append(c)
        model.operatorCodes = codes
        sg = s.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.operators
        sg.inputs, sg.outputs = list(inputs), list(outputs)
        model.subgraphs = [sg]
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def random_fc_layer(b: ModelBuilder, rng: np.random.Generator, x: int, out_depth: int, per_channel: bool,
                    activation: int, int4: bool = False) -> int:
    """Append a FULLY_CONNECTED with random weights (int8, or packed int4 with one scale) and quantization;
    returns its output tensor."""
    in_t = b.tensors[x]
    in_depth = in_t.shape[-1]
    batches = int(np.prod(in_t.shape[:-1]))
    in_scale = float(in_t.quantization.scale[0])
    limit = 8 if int4 else 128
    w = rng.integers(-limit + (not int4), limit, size=(out_depth, in_depth)).astype(np.int8)
    w_scale = rng.uniform(0.002, 0.05, size=out_depth if per_channel else 1).astype(np.float32)
    if int4:
        w_scale *= 16
    weights = b.tensor((out_depth, in_depth), INT4 if int4 else np.int8, w_scale, 0, w)
    bias_scale = (np.float32(in_scale) * w_scale).astype(np.float32)
    bias = b.tensor((out_depth,), np.int32, bias_scale, 0, rng.integers(-5000, 5000, size=out_depth).astype(np.int32))
    out_scale = float(in_scale * np.mean(w_scale) * np.sqrt(in_depth) * rng.uniform(4, 40))
    out = b.tensor((batches, out_depth), np.int8, out_scale, int(rng.integers(-60, 60)))
    b.fully_connected(x, weights, bias, out, activation)
    return out


def random_input(model: CompiledModel, rng: np.random.Generator) -> np.ndarray:
    """Random int8 values, or floats spanning roughly the int8 range of a float input's QUANTIZE."""
    x = model.graph.input_tensor()
    q = rng.integers(-128, 128, size=x.size)
    if x.dtype == "float32":
        return (q * rng.uniform(0.001, 0.2)).astype(np.float32)
    return q.astype(np.int8)


def check_against_reference(tmp_path, flatbuffer: bytes, rng: np.random.Generator, vectors: int = 4) -> CompiledModel:
    """Compile the model for the host and compare every operator's output bytes with TFLite Micro."""
    path = tmp_path / "m.tflite"
    path.write_bytes(flatbuffer)
    model = compile_model(path)
    host = HostModel(model)
    for _ in range(vectors):
        x = random_input(model, rng)
        out, trace = host.invoke(x, trace=True)
        expected = reference.intermediates(flatbuffer, x, [st.outputs[0] for st in model.steps])
        for step in model.steps:
            np.testing.assert_array_equal(trace[step.op_index], np.ascontiguousarray(expected[step.outputs[0]]).view(np.int8),
                                          err_msg=f"operator #{step.op_index} {step.op}")
        np.testing.assert_array_equal(out.view(np.int8), reference.run(flatbuffer, x[None])[0].view(np.int8))
    return model

"""Post-training quantization of a float .tflite with LiteRT's quantizer (`ai-edge-quantizer`).

Its static int8 recipe (``recipe.static_wi8_ai8``: int8 weights per channel, int8 activations per
tensor, ranges from calibration) quantizes the graph's input and output tensors in place, so the
model it writes takes and gives int8 like one from TFLiteConverter with int8 inference types.
That is checked here, not assumed: a model whose input or output stayed float32 is refused.
Operators it leaves in float (ops it does not quantize, such as the SHAPE/STRIDED_SLICE/PACK a
dynamic batch adds) are named, so the caller can say so.

The quantizer calibrates through a signature; a .tflite without one (written by hand or by an
old tool) gets one naming its input and output, which changes nothing else in the model.
"""
from __future__ import annotations

import warnings

import numpy as np

from tinydeploy.core.errors import BadInput, MissingTool, TinyDeployError
from tinydeploy.ir.graph import Graph, parse
from tinydeploy.ir.schema import generated

SIGNATURE_KEY = "serving_default"           # the key TFLiteConverter gives a model's one signature
QUANTIZER = "ai-edge-quantizer"
INSTALL_HINT = "install it (`pip install ai-edge-quantizer`, or scripts/setup.sh)"
ACTIVATION_TYPES = ("int8", "int16", "uint8")   # a non-constant tensor of these types means "already quantized"


def already_quantized(graph: Graph) -> str | None:
    """Why ``graph`` is not a float model (None when it is one)."""
    activations = [t for t in graph.tensors if not t.is_constant and t.dtype in ACTIVATION_TYPES and t.is_quantized]
    if activations:
        return (f"it is already quantized ({activations[0].dtype} tensor '{activations[0].name}'); "
                "pass it to convert, build or run")
    weights = [t for t in graph.tensors if t.is_constant and t.dtype in ("int8", "int4") and t.is_quantized]
    if weights:
        return (f"its weights are already quantized ({weights[0].dtype} '{weights[0].name}', float activations: "
                "dynamic-range quantization); quantize the float model it was made from")
    return None


def float_operators(graph: Graph) -> list[str]:
    """``#index OP`` for every operator that reads or writes a float32 activation."""
    def is_float(i: int) -> bool:
        return i >= 0 and graph.tensors[i].dtype == "float32" and not graph.tensors[i].is_constant
    return [f"#{op.index} {op.op}" for op in graph.operators if any(map(is_float, op.inputs + op.outputs))]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _with_signature(flatbuffer: bytes) -> tuple[bytes, str, str]:
    """``flatbuffer`` with a signature (added when it has none), the signature's key and its input's name."""
    import flatbuffers
    s = generated()
    model = s.ModelT.InitFromPackedBuf(flatbuffer, 0)
    if model.signatureDefs:
        signature = model.signatureDefs[0]
        return flatbuffer, _text(signature.signatureKey), _text(signature.inputs[0].name)
    graph = model.subgraphs[0]

    def tensor_map(indices) -> list:
        maps = []
        for index in indices:
            m = s.TensorMapT()
            m.name, m.tensorIndex = graph.tensors[index].name, index
            maps.append(m)
        return maps
    signature = s.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = SIGNATURE_KEY, 0
    signature.inputs, signature.outputs = tensor_map(graph.inputs), tensor_map(graph.outputs)
    model.signatureDefs = [signature]
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), SIGNATURE_KEY, _text(signature.inputs[0].name)


def quantize_float_tflite(flatbuffer: bytes, calibration: np.ndarray, name: str) -> tuple[bytes, Graph]:
    """The full-integer version of the float model ``flatbuffer`` (int8 input and output), calibrated on
    ``calibration`` (``[n, *sample shape]``), and its parsed graph; ``name`` is the model's path for messages."""
    try:
        from ai_edge_quantizer import quantizer, recipe
    except ImportError:
        raise MissingTool(f"{name}: quantizing a float .tflite needs {QUANTIZER}, which is not installed; "
                          f"{INSTALL_HINT}")
    from tinydeploy.ml.train import silenced
    signed, signature_key, input_name = _with_signature(flatbuffer)
    try:
        with silenced(), warnings.catch_warnings():    # its progress bars, the LiteRT interpreter's log lines
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")   # its calibration mode
            qt = quantizer.Quantizer(signed, recipe.static_wi8_ai8())
            ranges = qt.calibrate({signature_key: [{input_name: row[None, ...]} for row in calibration]})
            quantized = bytes(qt.quantize(ranges, enable_progress_report=False).quantized_model)
    except Exception as exc:       # the quantizer raises many types; its own log went to /dev/null
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise TinyDeployError(f"{name}: {QUANTIZER} could not quantize the model ({type(exc).__name__}: {first})")
    graph = parse(quantized, name)
    for role, tensor in (("input", graph.input_tensor()), ("output", graph.output_tensor())):
        if tensor.dtype != "int8" or not tensor.is_quantized:
            raise BadInput(f"{name}: {QUANTIZER} left the model's {role} '{tensor.name}' {tensor.dtype}, not int8: "
                           "the op next to it is one it does not quantize; quantize the Keras model instead")
    return quantized, graph


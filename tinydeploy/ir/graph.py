"""Read a .tflite flatbuffer into a small graph IR.

The schema comes from the ``tflite-micro`` package, so reading a model needs
neither TensorFlow nor a C++ interpreter.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinydeploy.core.errors import BadInput
from tinydeploy.ir import schema, validate
from tinydeploy.ir.schema import TensorType

_DTYPES = {
    TensorType.FLOAT32: ("float32", np.float32), TensorType.FLOAT16: ("float16", np.float16),
    TensorType.INT32: ("int32", np.int32), TensorType.UINT8: ("uint8", np.uint8),
    TensorType.INT64: ("int64", np.int64), TensorType.BOOL: ("bool", np.bool_),
    TensorType.INT16: ("int16", np.int16), TensorType.INT8: ("int8", np.int8),
    TensorType.INT4: ("int4", np.int8),
}


@dataclass
class Tensor:
    """One tensor: shape, int8/int32/... type, quantization, constant data."""
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: np.ndarray            # float32, one per channel or a single value
    zero_point: np.ndarray       # int64, same length as scale
    quantized_dim: int
    data: np.ndarray | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(_DTYPES_BY_NAME[self.dtype])

    @property
    def nbytes(self) -> int:
        """Bytes the tensor takes in the flatbuffer (int4: two values per byte)."""
        if self.dtype == "int4":
            return -(-self.size // 2)
        return self.size * self.numpy_dtype.itemsize

    @property
    def is_quantized(self) -> bool:
        return self.scale.size > 0


_DTYPES_BY_NAME = {name: np_type for name, np_type in _DTYPES.values()}


@dataclass
class Operator:
    """One node: op name, tensor indices (-1 = absent optional input), options."""
    index: int
    op: str
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class Graph:
    """The model's main subgraph."""
    name: str
    path: Path
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    flatbuffer: bytes

    def input_tensor(self, i: int = 0) -> Tensor:
        return self.tensors[self.inputs[i]]

    def output_tensor(self, i: int = 0) -> Tensor:
        return self.tensors[self.outputs[i]]


def c_identifier(text: str) -> str:
    """A valid C identifier made from a file stem: `hello-world 2` -> `hello_world_2`."""
    ident = "".join(c if c.isalnum() else "_" for c in text).strip("_").lower() or "model"
    return ident if not ident[0].isdigit() else "m_" + ident


def load(path: str | Path) -> Graph:
    """Parse ``path`` into a Graph, or raise BadInput saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file; give the path to a .tflite model")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read it ({exc.strerror}); check its permissions")
    return parse(raw, path)


def parse(raw: bytes, path: str | Path = "<model>") -> Graph:
    """A Graph from the bytes of a .tflite, validated (`ir.validate`), or BadInput saying what is wrong."""
    path = Path(path)
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise BadInput(
            f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier); "
            "export the model with TFLiteConverter or `tinydeploy quantize`")
    try:
        layout = validate.check_layout(raw)
        model = None if layout else schema.generated().ModelT.InitFromPackedBuf(raw, 0)
    except Exception as exc:  # a corrupt buffer can fail anywhere inside the generated reader
        raise BadInput(f"{path}: the TFLite flatbuffer is corrupt ({type(exc).__name__} while reading it); "
                       "re-export the model")
    if layout:
        raise BadInput(f"{path}: the TFLite flatbuffer is corrupt ({layout}); re-export the model")
    validate.validate(model, raw, path)
    return _to_graph(model, raw, path)


def _buffer_data(model, raw: bytes, index: int) -> bytes | None:
    if index <= 0 or index >= len(model.buffers):
        return None
    buf = model.buffers[index]
    if buf.data is not None and len(buf.data):
        return bytes(np.asarray(buf.data, dtype=np.uint8))
    if getattr(buf, "offset", 0) and buf.offset > 1:
        return raw[buf.offset: buf.offset + buf.size]
    return None


def unpack_int4(packed: np.ndarray, count: int) -> np.ndarray:
    """TFLite's packed INT4 (two values a byte, the first in the low nibble) as sign-extended int8."""
    nibbles = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(-1)[:count].astype(np.int8)
    return np.where(nibbles > 7, nibbles - 16, nibbles).astype(np.int8)


def _decode(path: Path, index: int, blob: bytes, dtype: str, np_type, shape: tuple[int, ...]) -> np.ndarray:
    """A constant tensor's values (int4 unpacked to int8), checked against its shape."""
    count = int(np.prod(shape)) if shape else 1
    itemsize = np.dtype(np_type).itemsize
    expected = -(-count // 2) if dtype == "int4" else count * itemsize
    if len(blob) != expected:
        raise BadInput(f"{path}: tensor {index} holds {len(blob)} bytes of data, its shape {list(shape)} of "
                       f"{dtype} needs {expected}; the flatbuffer is corrupt: re-export the model")
    if dtype == "int4":
        return unpack_int4(np.frombuffer(blob, np.uint8), count).reshape(shape or ())
    return np.frombuffer(blob, dtype=np_type).reshape(shape or ())


def _to_graph(model, raw: bytes, path: Path) -> Graph:
    names = schema.builtin_op_names()
    sg = model.subgraphs[0]
    tensors = []
    for i, t in enumerate(sg.tensors or []):
        dtype, np_type = _DTYPES[t.type]
        q = t.quantization
        scale = np.asarray(q.scale if q is not None and q.scale is not None else [], dtype=np.float32)
        zp = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], dtype=np.int64)
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        blob = _buffer_data(model, raw, t.buffer)
        data = None
        if blob is not None:
            data = _decode(path, i, blob, dtype, np_type, shape)
        tensors.append(Tensor(i, validate.printable(t.name, limit=None), shape, dtype, scale, zp,
                              int(q.quantizedDimension) if q is not None else 0, data))
    operators = []
    for i, op in enumerate(sg.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = "CUSTOM:" + (code.customCode or b"?").decode(errors="replace")
        options = dict(vars(op.builtinOptions)) if op.builtinOptions is not None else {}
        operators.append(Operator(i, name, _ints(op.inputs), _ints(op.outputs), options))
    return Graph(c_identifier(path.stem), path, tensors, operators,
                 _ints(sg.inputs), _ints(sg.outputs), raw)


def _ints(values) -> list[int]:
    """A flatbuffer index vector (None when absent) as a list."""
    return [] if values is None else [int(x) for x in values]

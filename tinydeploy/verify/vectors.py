"""Test vectors baked into the firmware: from the model's test set when one was
saved beside it, otherwise reproducible pseudo-random inputs."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinydeploy.ir.graph import Graph


@dataclass
class Vectors:
    inputs: np.ndarray              # [count, input size], the model input's type (int8 or float32)
    labels: np.ndarray | None       # int class labels, when known
    origin: str                     # where they came from, for reports

    def fingerprint(self, flatbuffer: bytes) -> str:
        """Ties a firmware image to the model and vectors the host expects."""
        return f"{zlib.crc32(self.inputs.tobytes(), zlib.crc32(flatbuffer)):08x}"


def testset_path(model_path: Path) -> Path:
    """Where `tinydeploy quantize` stores the int8 test split of a model."""
    return Path(model_path).with_suffix(".testset.npz")


def xorshift32_bytes(count: int, state: int = 1) -> np.ndarray:
    """int8 bytes from xorshift32 (x ^= x<<13; x ^= x>>17; x ^= x<<5; byte = x >> 24)."""
    out = np.empty(count, dtype=np.int8)
    x = state
    for i in range(count):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = np.int8(np.uint8(x >> 24))
    return out


def load(model_path: Path, graph: Graph, count: int, testset: bool = True) -> Vectors:
    """``count`` vectors for the model at ``model_path``: its saved test split when
    ``testset`` and one exists, else xorshift32 inputs.

    A float32 input gets the xorshift bytes as quantized values, dequantized with
    the scale and zero point of the QUANTIZE op that reads it (or 1/64 and 0)."""
    x_tensor = graph.input_tensor()
    size = x_tensor.size
    sidecar = testset_path(model_path)
    if testset and sidecar.exists():
        data = np.load(sidecar)
        x = data["x"].reshape(len(data["x"]), -1)
        if x.shape[1] == size and x.dtype == x_tensor.numpy_dtype and len(x) > 0:
            take = min(count, len(x))
            return Vectors(x[:take], data["y"][:take].astype(np.int64), f"test split from {sidecar.name}")
    stream = xorshift32_bytes(count * size).reshape(count, size)
    if x_tensor.dtype == "float32":
        scale, zero_point = _quantize_params_of_consumer(graph, x_tensor.index)
        stream = ((stream.astype(np.float32) - zero_point) * np.float32(scale)).astype(np.float32)
    return Vectors(stream, None, "xorshift32 pseudo-random inputs, state 1")


def _quantize_params_of_consumer(graph: Graph, tensor: int) -> tuple[float, int]:
    for op in graph.operators:
        if op.op == "QUANTIZE" and op.inputs[0] == tensor:
            out = graph.tensors[op.outputs[0]]
            return float(out.scale[0]), int(out.zero_point[0])
    return 1.0 / 64, 0

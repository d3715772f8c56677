"""Test vectors baked into the firmware: from the model's test set when one was
saved beside it, otherwise reproducible pseudo-random inputs."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Vectors:
    inputs: np.ndarray              # int8 [count, input size]
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


def load(model_path: Path, input_size: int, count: int) -> Vectors:
    """``count`` vectors for the model at ``model_path``."""
    sidecar = testset_path(model_path)
    if sidecar.exists():
        data = np.load(sidecar)
        x = data["x"].reshape(len(data["x"]), -1)
        if x.shape[1] == input_size and len(x) > 0:
            take = min(count, len(x))
            return Vectors(x[:take].astype(np.int8), data["y"][:take].astype(np.int64),
                           f"test split from {sidecar.name}")
    stream = xorshift32_bytes(count * input_size)
    return Vectors(stream.reshape(count, input_size), None, "xorshift32 pseudo-random inputs, state 1")

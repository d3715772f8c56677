"""Update encodings: per-tensor symmetric quantization (8 or 4 bits, optional stochastic rounding),
top-k sparsification with error feedback, and the exact bytes each encoded update takes.

An encoded tensor is a few named arrays (what goes on the wire, e.g. in a Flower ArrayRecord):
``<name>.q`` (int8 codes; 4-bit codes packed two per byte as uint8; float32 values at 32 bits),
``<name>.scale`` (one float32, quantized encodings only) and ``<name>.idx`` (uint16 or uint32
positions, top-k only). ``payload_bytes`` sums their sizes: the payload, without the transport's
framing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinydeploy.core.errors import BadInput

BITS = (32, 8, 4)
QUANT_SUFFIX, SCALE_SUFFIX, INDEX_SUFFIX = ".q", ".scale", ".idx"
UINT16_POSITIONS = 1 << 16          # tensors up to this size index their top-k entries with uint16


@dataclass(frozen=True)
class Encoding:
    """How a device (or a gateway) encodes an update: ``bits`` per value (32: float32), ``topk``
    the share of each tensor's entries sent (0: all), ``stochastic`` rounding when quantizing."""
    bits: int = 32
    topk: float = 0.0
    stochastic: bool = False

    def __post_init__(self):
        if self.bits not in BITS:
            raise BadInput(f"--update-bits {self.bits}: choose one of {', '.join(map(str, BITS))}")
        if not 0.0 <= self.topk < 1.0:
            raise BadInput(f"--topk {self.topk}: give the share of entries to send, above 0 and below 1 (0: all)")

    @property
    def tag(self) -> str:
        """A short identifier: b8-k0.1 (-sr: stochastic rounding)."""
        return f"b{self.bits}-k{self.topk:g}" + ("-sr" if self.stochastic else "")

    @property
    def name(self) -> str:
        parts = [f"{self.bits}-bit"] + ([f"top-{100 * self.topk:g}%"] if self.topk else [])
        return " ".join(parts) + (" stochastic" if self.stochastic and self.bits < 32 else "")


def qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def quantize(x: np.ndarray, bits: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.float32]:
    """Symmetric per-tensor codes in [-qmax, qmax] (int8) and the scale (max |x| / qmax; 1 for an
    all-zero tensor). ``rng``: stochastic rounding (floor(x/scale + u), u uniform in [0, 1)),
    unbiased; without: round half to even."""
    x = np.asarray(x, np.float32)
    top = qmax(bits)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    scale = np.float32(peak / top) if peak > 0 else np.float32(1.0)
    q = x / scale
    q = np.floor(q + rng.random(x.shape, dtype=np.float32)) if rng is not None else np.rint(q)
    return np.clip(q, -top, top).astype(np.int8), scale


def dequantize(codes: np.ndarray, scale: np.float32) -> np.ndarray:
    return codes.astype(np.float32) * np.float32(scale)


def pack4(codes: np.ndarray) -> np.ndarray:
    """4-bit two's-complement codes, two per byte (the first in the low nibble)."""
    nibbles = (codes.astype(np.int16) & 0xF).astype(np.uint8).ravel()
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return nibbles[0::2] | (nibbles[1::2] << 4)


def unpack4(packed: np.ndarray, count: int) -> np.ndarray:
    nibbles = np.empty(packed.size * 2, np.uint8)
    nibbles[0::2], nibbles[1::2] = packed & 0xF, packed >> 4
    values = nibbles[:count].astype(np.int8)
    return np.where(values > 7, values - 16, values).astype(np.int8)


def topk_positions(x: np.ndarray, share: float) -> np.ndarray:
    """Flat positions of the ceil(share * n) entries of largest magnitude (at least one), ascending."""
    flat = np.abs(np.asarray(x).ravel())
    k = max(1, math.ceil(share * flat.size))
    if k >= flat.size:
        return np.arange(flat.size)
    return np.sort(np.argpartition(-flat, k - 1)[:k])


def encode_tensor(name: str, x: np.ndarray, enc: Encoding, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """The wire arrays of one tensor."""
    x = np.asarray(x, np.float32)
    out = {}
    values = x.ravel()
    if enc.topk:
        pos = topk_positions(x, enc.topk)
        out[name + INDEX_SUFFIX] = pos.astype(np.uint16 if x.size <= UINT16_POSITIONS else np.uint32)
        values = values[pos]
    if enc.bits == 32:
        out[name + QUANT_SUFFIX] = values.astype(np.float32)
    else:
        codes, scale = quantize(values, enc.bits, rng if enc.stochastic else None)
        out[name + QUANT_SUFFIX] = pack4(codes) if enc.bits == 4 else codes
        out[name + SCALE_SUFFIX] = np.array([scale], np.float32)
    return out


def decode_tensor(name: str, wire: dict[str, np.ndarray], shape: tuple[int, ...], bits: int) -> np.ndarray:
    """The float32 tensor ``encode_tensor`` sent (zeros where top-k left entries out)."""
    size = int(np.prod(shape))
    idx = wire.get(name + INDEX_SUFFIX)
    count = size if idx is None else idx.size
    q = wire[name + QUANT_SUFFIX]
    if bits == 32:
        values = q.astype(np.float32)
    else:
        codes = unpack4(q, count) if bits == 4 else q
        values = dequantize(codes, wire[name + SCALE_SUFFIX][0])
    if idx is None:
        return values.reshape(shape)
    out = np.zeros(size, np.float32)
    out[idx.astype(np.int64)] = values
    return out.reshape(shape)


def encode(update: dict[str, np.ndarray], enc: Encoding, residual: dict[str, np.ndarray] | None = None,
           rng: np.random.Generator | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Encode every tensor of ``update``; with top-k, error feedback: the ``residual`` (what earlier
    rounds left out) is added before selecting, and the new residual (what this one leaves out,
    quantization error included) is returned. Without top-k the residual is None."""
    wire, new_residual = {}, {} if enc.topk else None
    for name, x in update.items():
        x = np.asarray(x, np.float32)
        if enc.topk and residual is not None and name in residual:
            x = x + residual[name]
        arrays = encode_tensor(name, x, enc, rng)
        wire.update(arrays)
        if enc.topk:
            new_residual[name] = x - decode_tensor(name, arrays, x.shape, enc.bits)
    return wire, new_residual


def decode(wire: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]], bits: int) -> dict[str, np.ndarray]:
    return {name: decode_tensor(name, wire, shape, bits) for name, shape in shapes.items()}


def payload_bytes(wire: dict[str, np.ndarray]) -> int:
    return int(sum(a.nbytes for a in wire.values()))


def parse_encodings(bits: list[int], topk: list[float], stochastic: bool) -> list[Encoding]:
    """Every combination of the given bit widths and top-k shares, in the order given (the first is shipped)."""
    return [Encoding(b, k, stochastic) for b in (bits or [32]) for k in (topk or [0.0])]

"""The one check every model passes when it is read, before anything else touches it.

`check_layout` bounds the flatbuffer's vector lengths before the object API unpacks it (a flipped
length field must not become a billion-step loop); `validate` then checks the unpacked model:
every index in range, constant data the size its shape says, shapes, quantization and options
sane, the operators a DAG in file order (every tensor read is a constant, a model input or written
by exactly one earlier operator), input counts as the known ops take them. Each violation is one
line naming the tensor or operator; `validate` raises BadInput with the first one and the count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinydeploy.core.errors import BadInput
from tinydeploy.ir import schema
from tinydeploy.ir.schema import Activation, Padding, TensorType

SCHEMA_VERSION = 3                       # the TFLite schema version TFLite Micro reads
MAX_TENSOR_ELEMENTS = 1 << 24            # per tensor: far above any microcontroller model
MAX_TOTAL_BYTES = 1 << 31                # all tensors of a subgraph together
MAX_RANK = 6                             # TFLite Micro's own limit on dimensions
MAX_SUBGRAPHS = 64
MAX_TABLES = 1 << 20                     # buffers, tensors, operators, operator codes per vector
# Quantization scales outside these bounds only come from corruption; the reference refuses
# most of them (its requantization multipliers overflow) and so do we.
MIN_SCALE, MAX_SCALE = 2.0 ** -64, 2.0 ** 32
MAX_WINDOW = 1 << 16                     # strides, dilations and pooling windows
OPTIONAL = -1                            # TFLite's index of an absent optional input
UNLIMITED = 1 << 30
NAME_CHARS = 48                          # a tensor name in a message

INT_RANGES = {TensorType.INT8: (-128, 127), TensorType.UINT8: (0, 255), TensorType.INT16: (-32768, 32767),
              TensorType.INT4: (-8, 7), TensorType.INT32: (-(1 << 31), (1 << 31) - 1)}
ELEMENT_BYTES = {TensorType.FLOAT32: 4, TensorType.FLOAT16: 2, TensorType.INT32: 4, TensorType.UINT8: 1,
                 TensorType.INT64: 8, TensorType.BOOL: 1, TensorType.INT16: 2, TensorType.INT8: 1,
                 TensorType.INT4: 0.5}


@dataclass(frozen=True)
class Signature:
    """How a TFLite builtin op is called: input counts, which inputs may be absent, its options table."""
    min_inputs: int
    max_inputs: int
    optional: frozenset = frozenset()
    options: tuple[str, ...] = ("NONE",)    # the allowed builtin_options types


def _sig(lo, hi, optional=(), options=("NONE",)) -> Signature:
    return Signature(lo, hi, frozenset(optional), tuple(options))


# Every op tinydeploy lowers (tests/test_validate.py checks the registry against it); as TFLite Micro's
# kernels take them. Other ops are only checked for index ranges (the lowering refuses them anyway).
SIGNATURES = {
    "FULLY_CONNECTED": _sig(2, 3, {2}, ("FullyConnectedOptions",)),
    "CONV_2D": _sig(2, 3, {2}, ("Conv2DOptions",)),
    # Its bias may be left out but not marked absent: TFLite Micro's prepare then frees a null bias and crashes.
    "DEPTHWISE_CONV_2D": _sig(2, 3, (), ("DepthwiseConv2DOptions",)),
    "AVERAGE_POOL_2D": _sig(1, 1, (), ("Pool2DOptions",)),
    "MAX_POOL_2D": _sig(1, 1, (), ("Pool2DOptions",)),
    "ADD": _sig(2, 2, (), ("AddOptions",)),
    "MUL": _sig(2, 2, (), ("MulOptions",)),
    "CONCATENATION": _sig(1, UNLIMITED, (), ("ConcatenationOptions",)),
    "SOFTMAX": _sig(1, 1, (), ("SoftmaxOptions",)),
    "RESHAPE": _sig(1, 2, {1}, ("NONE", "ReshapeOptions")),
    "MEAN": _sig(2, 2, (), ("ReducerOptions",)),
    "PAD": _sig(2, 2, (), ("NONE", "PadOptions")),
    "PADV2": _sig(3, 3, (), ("NONE", "PadV2Options")),
    "QUANTIZE": _sig(1, 1, (), ("NONE", "QuantizeOptions")),
    "DEQUANTIZE": _sig(1, 1, (), ("NONE", "DequantizeOptions")),
    "LOGISTIC": _sig(1, 1), "TANH": _sig(1, 1), "RELU": _sig(1, 1), "RELU6": _sig(1, 1),
}
_WINDOW_FIELDS = ("strideH", "strideW", "dilationHFactor", "dilationWFactor", "filterHeight", "filterWidth")
DEFAULT_WEIGHTS_FORMAT = 0               # FullyConnectedOptionsWeightsFormat.DEFAULT


def printable(name: bytes | None, limit: int | None = NAME_CHARS) -> str:
    """A tensor name fit for a one-line message: decoded, control characters replaced, cut to ``limit``."""
    text = (name or b"").decode(errors="replace")
    if limit is not None and len(text) > limit:
        text = text[:limit - 3] + "..."
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)


def check_layout(raw: bytes) -> str | None:
    """A problem with the flatbuffer's top-level vectors (None if their lengths are plausible).

    Reads only length fields, so it is cheap; the object API would otherwise loop over a corrupt
    length (up to the file's size, nested)."""
    Model = schema.generated().Model
    model = Model.GetRootAs(raw, 0)
    limit = min(MAX_TABLES, len(raw) // 4)
    counts = dict(buffers=model.BuffersLength(), operator_codes=model.OperatorCodesLength(),
                  subgraphs=model.SubgraphsLength(), metadata=model.MetadataLength(),
                  signature_defs=model.SignatureDefsLength())
    if counts["subgraphs"] > MAX_SUBGRAPHS:
        return f"{counts['subgraphs']} subgraphs (at most {MAX_SUBGRAPHS})"
    for what, n in counts.items():
        if n > limit:
            return f"{n} {what.replace('_', ' ')} in a {len(raw)}-byte file"
    for s in range(counts["subgraphs"]):
        sg = model.Subgraphs(s)
        for what, n in (("tensors", sg.TensorsLength()), ("operators", sg.OperatorsLength())):
            if n > limit:
                return f"subgraph {s} has {n} {what} in a {len(raw)}-byte file"
    return None


class _Checker:
    def __init__(self, model, raw: bytes):
        self.model, self.raw = model, raw
        self.problems: list[str] = []
        self.names = schema.builtin_op_names()
        options = schema.generated().BuiltinOptions
        self.option_names = {getattr(options, n): n for n in dir(options) if not n.startswith("_")}

    def add(self, text: str) -> None:
        self.problems.append(text)

    def run(self) -> list[str]:
        m = self.model
        if m.version != SCHEMA_VERSION:
            self.add(f"schema version {m.version}; tinydeploy and TFLite Micro read version {SCHEMA_VERSION}")
        if not m.subgraphs:
            self.add("the model has no subgraph")
            return self.problems
        codes = self.operator_codes()
        buffers = self.buffer_sizes()
        main = m.subgraphs[0]
        for what, items in (("operators", main.operators), ("inputs", main.inputs), ("outputs", main.outputs)):
            if items is None or len(items) == 0:
                self.add(f"the main subgraph has no {what}")
        for s, sg in enumerate(m.subgraphs):
            self.subgraph(s, sg, codes, buffers)
        return self.problems

    def operator_codes(self) -> list[str | None]:
        names = []
        for i, code in enumerate(self.model.operatorCodes or []):
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            name = self.names.get(builtin)
            if name is None:
                self.add(f"operator code {i} has builtin code {builtin}, which no TFLite version defines")
            names.append(name)
        return names

    def buffer_sizes(self) -> list[int | None]:
        """Bytes of each buffer's data (None: empty, an activation's placeholder)."""
        sizes = []
        for i, buf in enumerate(self.model.buffers or []):
            offset = getattr(buf, "offset", 0) or 0
            if buf.data is not None and len(buf.data):
                sizes.append(len(buf.data))
            elif offset > 1:
                if offset + buf.size > len(self.raw):
                    self.add(f"buffer {i} lies at bytes {offset}..{offset + buf.size}, past the end of the "
                             f"{len(self.raw)}-byte file")
                    sizes.append(None)
                else:
                    sizes.append(int(buf.size) or None)
            else:
                sizes.append(None)
        return sizes

    def subgraph(self, s: int, sg, codes: list, buffers: list) -> None:
        where = "" if s == 0 else f"subgraph {s}: "
        tensors = sg.tensors or []
        constant = [self.tensor(where, i, t, buffers) for i, t in enumerate(tensors)]
        total = sum(_nbytes(t) for t in tensors if _shape_ok(t))
        if total > MAX_TOTAL_BYTES:
            self.add(f"{where}the tensors take {total:,} bytes in all (at most {MAX_TOTAL_BYTES:,})")
        n = len(tensors)
        label = lambda i: f"tensor {i} '{printable(tensors[i].name)}'"      # noqa: E731
        inputs = [int(x) for x in (sg.inputs if sg.inputs is not None else [])]
        outputs = [int(x) for x in (sg.outputs if sg.outputs is not None else [])]
        writer: dict[int, int] = {}
        for role, indices in (("input", inputs), ("output", outputs)):
            for k, t in enumerate(indices):
                if not 0 <= t < n:
                    self.add(f"{where}model {role} {k} is tensor {t}; the subgraph has {n} tensors")
                elif indices.count(t) > 1:
                    self.add(f"{where}{label(t)} is listed twice as a model {role}")
        for t in inputs:
            if 0 <= t < n:
                writer[t] = -1
                if constant[t]:
                    self.add(f"{where}model input {label(t)} is a constant")
        for i, op in enumerate(sg.operators or []):
            self.operator(where, i, op, codes, n, constant, writer, label)
        for t in outputs:
            if 0 <= t < n and writer.get(t, -1) < 0:
                self.add(f"{where}model output {label(t)} is not written by any operator")

    def tensor(self, where: str, i: int, t, buffers: list) -> bool:
        """Check one tensor; True when it holds constant data."""
        what = f"{where}tensor {i} '{printable(t.name)}'"
        if t.type not in ELEMENT_BYTES:
            name = TensorType(t.type).name if t.type in TensorType._value2member_map_ else str(t.type)
            self.add(f"{what} has type {name}, which tinydeploy does not handle")
            return False
        shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        if len(shape) > MAX_RANK:
            self.add(f"{what} has {len(shape)} dimensions (at most {MAX_RANK})")
            return False
        if any(d < 1 for d in shape):
            self.add(f"{what} has shape {shape}; every dimension must be positive")
            return False
        count = math.prod(shape)
        if count > MAX_TENSOR_ELEMENTS:
            self.add(f"{what} has shape {shape}: {count:,} elements (at most {MAX_TENSOR_ELEMENTS:,})")
            return False
        if t.isVariable:
            self.add(f"{what} is a variable (stateful) tensor; tinydeploy handles stateless models only")
        if t.sparsity is not None:
            self.add(f"{what} is stored sparse; tinydeploy reads dense tensors only")
        self.quantization(what, t, shape)
        if not 0 <= t.buffer < len(buffers):
            self.add(f"{what} uses buffer {t.buffer}; the model has {len(buffers)} buffers")
            return False
        size = buffers[t.buffer] if t.buffer > 0 else None
        if size is None:
            return False
        expected = _nbytes(t)
        if size != expected:
            self.add(f"{what} holds {size} bytes of data; its shape {shape} of {TensorType(t.type).name} needs "
                     f"{expected}")
        return True

    def quantization(self, what: str, t, shape: list[int]) -> None:
        q = t.quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return
        scale = np.asarray(q.scale, np.float64)
        zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], np.int64)
        bad = scale[~(np.isfinite(scale) & (scale >= MIN_SCALE) & (scale <= MAX_SCALE))]
        if bad.size:
            self.add(f"{what} has quantization scale {float(bad[0]):g}; scales must be finite and within "
                     f"[{MIN_SCALE:g}, {MAX_SCALE:g}]")
        if zp.size != scale.size:
            self.add(f"{what} has {scale.size} scales but {zp.size} zero points")
        low, high = INT_RANGES.get(t.type, (-(1 << 63), (1 << 63) - 1))
        out = zp[(zp < low) | (zp > high)]
        if out.size:
            self.add(f"{what} has zero point {int(out[0])}, outside [{low}, {high}] of its type")
        if scale.size == 1:
            return
        # Per channel. TFLite Micro ignores the dimension of a 1-D tensor (person_detect's biases say 3).
        dim = int(q.quantizedDimension) if len(shape) > 1 else 0
        if not 0 <= dim < len(shape):
            self.add(f"{what} has quantized dimension {dim}; its shape {shape} has {len(shape)} dimensions")
        elif scale.size != shape[dim]:
            self.add(f"{what} has {scale.size} per-channel scales; its dimension {dim} of {shape} needs "
                     f"{shape[dim]}")

    def operator(self, where: str, i: int, op, codes: list, n: int, constant: list, writer: dict, label) -> None:
        if not 0 <= op.opcodeIndex < len(codes):
            self.add(f"{where}operator #{i} uses operator code {op.opcodeIndex}; the model has {len(codes)}")
            return
        name = codes[op.opcodeIndex]
        if name is None:
            return
        what = f"{where}operator #{i} {name}"
        sig = SIGNATURES.get(name)
        ins = [int(x) for x in (op.inputs if op.inputs is not None else [])]
        outs = [int(x) for x in (op.outputs if op.outputs is not None else [])]
        if sig is not None:
            if not sig.min_inputs <= len(ins) <= sig.max_inputs:
                want = str(sig.min_inputs) if sig.min_inputs == sig.max_inputs else \
                    f"{sig.min_inputs} to {sig.max_inputs}" if sig.max_inputs < UNLIMITED else f"{sig.min_inputs} or more"
                self.add(f"{what} has {len(ins)} inputs; {name} takes {want}")
            if len(outs) > 1:
                self.add(f"{what} has {len(outs)} outputs; {name} has one")
            self.options(what, name, op, sig)
        if not outs:
            self.add(f"{what} has no outputs")
        ok = True
        for slot, t in enumerate(ins):
            if t == OPTIONAL and (sig is None or slot in sig.optional):
                continue
            if t == OPTIONAL:
                hint = "; leave the input out instead" if slot == len(ins) - 1 >= sig.min_inputs else ""
                self.add(f"{what} input {slot} is marked absent (-1); {name} needs a tensor there{hint}")
                continue
            if not 0 <= t < n:
                self.add(f"{what} input {slot} is tensor {t}; the subgraph has {n} tensors")
                ok = False
            elif not constant[t] and t not in writer:
                self.add(f"{what} reads {label(t)}, which is not a constant, not a model input and not written "
                         "by an earlier operator")
        for slot, t in enumerate(outs):
            if not 0 <= t < n:
                self.add(f"{what} output {slot} is tensor {t}; the subgraph has {n} tensors")
            elif constant[t]:
                self.add(f"{what} writes {label(t)}, which is a constant")
            elif t in writer:
                first = "it is a model input" if writer[t] < 0 else f"operator #{writer[t]} writes it too"
                self.add(f"{what} writes {label(t)}, but {first}")
            elif t in ins:
                self.add(f"{what} writes its own input {label(t)}")
            elif ok:
                writer[t] = i

    def options(self, what: str, name: str, op, sig: Signature) -> None:
        kind = self.option_names.get(op.builtinOptionsType, str(op.builtinOptionsType))
        if kind not in sig.options:
            self.add(f"{what} has builtin options {kind}; {name} takes {' or '.join(sig.options)}")
            return
        o = vars(op.builtinOptions) if op.builtinOptions is not None else {}
        if "fusedActivationFunction" in o and o["fusedActivationFunction"] not in Activation._value2member_map_:
            self.add(f"{what} has fused activation {o['fusedActivationFunction']}, which TFLite does not define")
        if "padding" in o and o["padding"] not in Padding._value2member_map_:
            self.add(f"{what} has padding {o['padding']}; TFLite defines SAME (0) and VALID (1)")
        for key in _WINDOW_FIELDS:
            if key in o and not 1 <= o[key] <= MAX_WINDOW:
                self.add(f"{what} has {key} {o[key]}; it must be within 1..{MAX_WINDOW}")
        if "quantizedBiasType" in o and o["quantizedBiasType"] not in TensorType._value2member_map_:
            self.add(f"{what} has quantized bias type {o['quantizedBiasType']}, which is no TFLite tensor type")
        if o.get("weightsFormat", DEFAULT_WEIGHTS_FORMAT) != DEFAULT_WEIGHTS_FORMAT:
            self.add(f"{what} has shuffled weights (format {o['weightsFormat']}); only the default layout is read")
        if "beta" in o and not (math.isfinite(o["beta"]) and o["beta"] > 0):
            self.add(f"{what} has softmax beta {o['beta']}; it must be finite and positive")


def _shape_ok(t) -> bool:
    shape = [int(d) for d in (t.shape if t.shape is not None else [])]
    return t.type in ELEMENT_BYTES and len(shape) <= MAX_RANK and all(d >= 1 for d in shape) \
        and math.prod(shape) <= MAX_TENSOR_ELEMENTS


def _nbytes(t) -> int:
    """Bytes of a tensor's data in the flatbuffer (int4: two values a byte)."""
    count = math.prod(int(d) for d in (t.shape if t.shape is not None else []))
    per = ELEMENT_BYTES[t.type]
    return -(-count // 2) if per == 0.5 else count * per


def problems(model, raw: bytes) -> list[str]:
    """Every violation in the unpacked model (a ModelT), one line each."""
    return _Checker(model, raw).run()


def validate(model, raw: bytes, path) -> None:
    """BadInput naming the first violation (and how many there are), or nothing."""
    found = problems(model, raw)
    if found:
        more = f" (and {len(found) - 1} more problems)" if len(found) > 1 else ""
        raise BadInput(f"{path}: {found[0]}{more}; the model is malformed: re-export it")

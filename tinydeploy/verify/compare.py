"""Read the firmware's line protocol and check every output byte against the
TFLite Micro reference interpreter."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinydeploy.verify import reference
from tinydeploy.core.errors import TinyDeployError
from tinydeploy.platforms.targets import Target


@dataclass
class RunResult:
    """What one run of the test firmware showed."""
    model: str
    board: str
    outputs: np.ndarray                # [vectors, output size] in the output's type, as the target computed them
    ticks: list[int]
    ticks_per_instruction: float | None
    counts_instructions: bool
    exit_status: int | None = None
    expected: np.ndarray | None = None
    labels: np.ndarray | None = None
    output_zero_point: int = 0
    mismatches: list[tuple[int, int, object, object]] = field(default_factory=list)   # vector, element, ours, ref
    layer_ticks: list[list[int]] = field(default_factory=list)   # per vector, ticks per operator (profiling builds)

    @property
    def instructions(self) -> list[int] | None:
        if not self.counts_instructions or not self.ticks_per_instruction:
            return None
        return [round(t / self.ticks_per_instruction) for t in self.ticks]

    @property
    def layer_instructions(self) -> list[int] | None:
        """Instructions per operator for the first vector (profiling builds on an instruction-counting target)."""
        if not self.layer_ticks or not self.counts_instructions or not self.ticks_per_instruction:
            return None
        return [round(t / self.ticks_per_instruction) for t in self.layer_ticks[0]]

    @property
    def mismatched_vectors(self) -> int:
        return len({m[0] for m in self.mismatches})

    def accuracy(self) -> float | None:
        """Share of vectors whose arg-max output equals the label (classifiers with labels only)."""
        if self.labels is None or len(self.labels) != len(self.outputs) or self.outputs.shape[1] < 2:
            return None
        return float(np.mean(np.argmax(self.outputs, axis=1) == self.labels))


def read_protocol(target: Target, fingerprint: str, out_size: int, count: int, timeout: float,
                  dtype: np.dtype = np.dtype(np.int8)):
    """Parse BEGIN/CAL/OUT/LAYERS/END lines; returns (outputs, ticks, ticks per instruction, layer ticks).

    ``out_size`` is in bytes; each output is returned as an array of ``dtype``."""
    outputs, ticks, layers, cal, begun = {}, {}, {}, None, False
    try:
        for line in target.lines(timeout):
            parts = line.strip().split()
            if len(parts) < 2 or parts[0] != "TD":
                continue
            kind = parts[1]
            if kind == "BEGIN":
                ident = dict(p.split("=", 1) for p in parts[3:] if "=" in p).get("id")
                if ident != fingerprint:
                    raise TinyDeployError(f"the firmware reports model/vector id {ident}, expected {fingerprint}; "
                                          "the board runs another build: rebuild and flash it")
                begun = True
            elif kind == "CAL" and begun:
                cal = int(parts[2]) / int(parts[3])
            elif kind == "OUT" and begun:
                data = bytes.fromhex(parts[4]) if len(parts) > 4 else b""
                if len(data) != out_size:
                    raise TinyDeployError(f"garbled output line for vector {parts[2]} ({len(data)} of {out_size} bytes); "
                                          "check the serial link (baud rate, cable)")
                outputs[int(parts[2])] = np.frombuffer(data, dtype=dtype)
                ticks[int(parts[2])] = int(parts[3])
            elif kind == "LAYERS" and begun:
                layers[int(parts[2])] = [int(v) for v in parts[3:]]
            elif kind == "END" and begun:
                target.finish(timeout)
                break
    except TimeoutError:
        raise TinyDeployError(f"no complete result within {timeout:.0f} s ({len(outputs)} of {count} vectors "
                              "reported); the firmware hung or crashed: raise --timeout, or check the board")
    if not begun or len(outputs) != count:
        raise TinyDeployError(f"the firmware stopped after {len(outputs)} of {count} vectors "
                              f"(exit status {target.exit_status}); see the project's build.log and rerun")
    order = sorted(outputs)
    return np.stack([outputs[i] for i in order]), [ticks[i] for i in order], cal, [layers[i] for i in sorted(layers)]


def run_and_verify(project: Path, target: Target, timeout: float = 120.0) -> RunResult:
    """Collect the firmware's outputs from ``target`` and compare them with the reference interpreter."""
    manifest = json.loads((project / "tinydeploy.json").read_text())
    saved = np.load(project / "vectors.npz")
    inputs, labels = saved["x"], saved["y"]
    out = manifest["model"]["output"]
    dtype = np.dtype(out["dtype"])
    outputs, ticks, cal, layers = read_protocol(target, manifest["fingerprint"], out["bytes"], len(inputs), timeout, dtype)
    flatbuffer = Path(manifest["model_path"]).read_bytes()
    expected = reference.run(flatbuffer, inputs).astype(dtype)
    result = RunResult(manifest["model"]["name"], manifest["board"], outputs, ticks, cal, target.counts_instructions,
                       target.exit_status, expected, labels if len(labels) else None,
                       manifest["model"]["output"]["zero_point"], layer_ticks=layers)
    differ = outputs.view(np.uint8).reshape(len(outputs), -1, dtype.itemsize) != \
        expected.view(np.uint8).reshape(len(expected), -1, dtype.itemsize)           # bit patterns, so NaN == NaN
    for v, e in zip(*np.nonzero(differ.any(axis=2))):
        result.mismatches.append((int(v), int(e), outputs[v, e].item(), expected[v, e].item()))
    return result

"""Check every output byte the firmware reported (verify/protocol.py reads the lines) against the
TFLite Micro reference interpreter."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinydeploy.core.resources import hold_project, release_project
from tinydeploy.verify import protocol, reference
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
    protocol_version: int | None = None                           # the firmware's TD BEGIN v=
    arena_used: int | None = None                                 # arena bytes the runtime reported using

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


def run_and_verify(project: Path, target: Target, timeout: float = 120.0) -> RunResult:
    """Collect the firmware's outputs from ``target`` and compare them with the reference interpreter.

    Holds the project's lock while it reads (another tinydeploy waits rather than re-render the project
    under a running emulator), and lets it go at the end: the render took it (render.render_project)."""
    hold_project(project)
    try:
        return _run_and_verify(project, target, timeout)
    finally:
        release_project(project)


def _run_and_verify(project: Path, target: Target, timeout: float) -> RunResult:
    manifest = json.loads((project / "tinydeploy.json").read_text())
    saved = np.load(project / "vectors.npz")
    inputs, labels = saved["x"], saved["y"]
    out = manifest["model"]["output"]
    dtype = np.dtype(out["dtype"])
    session = protocol.read(target, manifest["fingerprint"], out["bytes"], len(inputs), timeout, dtype)
    outputs = session.outputs
    flatbuffer = Path(manifest["model_path"]).read_bytes()
    expected = reference.run(flatbuffer, inputs).astype(dtype)
    result = RunResult(manifest["model"]["name"], manifest["board"], outputs, session.ticks,
                       session.ticks_per_instruction, target.counts_instructions, target.exit_status, expected,
                       labels if len(labels) else None, manifest["model"]["output"]["zero_point"],
                       layer_ticks=session.layer_ticks, protocol_version=session.version,
                       arena_used=session.arena_used)
    differ = outputs.view(np.uint8).reshape(len(outputs), -1, dtype.itemsize) != \
        expected.view(np.uint8).reshape(len(expected), -1, dtype.itemsize)           # bit patterns, so NaN == NaN
    for v, e in zip(*np.nonzero(differ.any(axis=2))):
        result.mismatches.append((int(v), int(e), outputs[v, e].item(), expected[v, e].item()))
    return result

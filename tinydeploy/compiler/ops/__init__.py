"""The op registry: one module per op family, each registering what it knows about its ops.

An op's registration declares the TFLite builtin ops it lowers, the activation
data types it takes, its multiply-accumulates, and its aliasing contract
(`Aliasing`); scratch bytes come from the lowering, from the same formula the
kernel's `td_*_scratch_bytes()` states in C. The planner reads the declaration
and never infers it. Adding a plain op means: a module here (found by itself:
every module of this package is imported), its C file and struct in the family
header, and its test.
"""
from __future__ import annotations

import importlib
import pkgutil
import threading
from dataclasses import dataclass
from typing import Callable

from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph, Operator

def no_macs(graph: Graph, op: Operator) -> int:
    return 0


@dataclass(frozen=True)
class OpSpec:
    """What tinydeploy knows about one or more TFLite builtin ops (the same lowering)."""
    names: tuple[str, ...]
    lower: Callable[[Graph, Operator], Step]
    dtypes: tuple[str, ...]                          # activation types the kernels take
    aliasing: Aliasing
    notes: str                                       # what is covered, for `tinydeploy ops` and the README
    macs: Callable[[Graph, Operator], int] = no_macs
    stream_distance: Callable[[Step], int] | None = None    # STREAMING ops: bytes of overlap allowed


_REGISTRY: dict[str, OpSpec] = {}
_LOADING = threading.Lock()          # compare compiles from several threads


def register(spec: OpSpec) -> OpSpec:
    """Add ``spec`` under each of its op names (one registration per op name)."""
    if spec.aliasing is Aliasing.STREAMING and spec.stream_distance is None:
        raise ValueError(f"{spec.names}: a streaming op must declare its stream distance")
    for name in spec.names:
        if name in _REGISTRY:
            raise ValueError(f"{name} is registered twice")
        _REGISTRY[name] = spec
    return spec


def _load() -> None:
    """Import every family module once (each registers its ops; helper modules register none)."""
    with _LOADING:
        if not _REGISTRY:
            for module in pkgutil.iter_modules(__path__):
                importlib.import_module(f"{__name__}.{module.name}")


def lookup(op_name: str) -> OpSpec | None:
    _load()
    return _REGISTRY.get(op_name)


def specs() -> list[OpSpec]:
    """Every registration once, in alphabetical order of op names."""
    _load()
    unique = {id(s): s for s in _REGISTRY.values()}
    return sorted(unique.values(), key=lambda s: s.names)


def supported_ops() -> tuple[str, ...]:
    _load()
    return tuple(_REGISTRY)


def macs(graph: Graph, op: Operator) -> int:
    """Multiply-accumulates of one inference of ``op`` (0 for ops without weights or not supported)."""
    spec = lookup(op.op)
    return spec.macs(graph, op) if spec else 0


def table() -> list[dict[str, str]]:
    """One row per registration: op names, data types, aliasing contract, what is covered."""
    return [dict(op=", ".join(s.names), dtypes=", ".join(s.dtypes), aliasing=s.aliasing.value, notes=s.notes)
            for s in specs()]


def markdown_table() -> str:
    """The supported-op table as Markdown (the README's copy is checked against it)."""
    lines = ["| op | data types | output aliasing | what is covered |", "|---|---|---|---|"]
    lines += [f"| {r['op']} | {r['dtypes']} | {r['aliasing']} | {r['notes']} |" for r in table()]
    return "\n".join(lines) + "\n"

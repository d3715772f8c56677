"""Static memory plan: where every activation tensor lives in the arena.

All activation tensors, the model's input and output included, live in one
static arena. Tensors whose lifetimes (first write .. last read, in operator
order) don't overlap share memory, so the input's bytes are reused once the
first layer has read them. A reshape shares its input's bytes, and an
elementwise op writes over a same-shape input that nobody reads after it
(in place). A kernel's scratch buffer lives for its one call. Placement is
greedy, largest buffer first, at the lowest offset that fits beside the
buffers already placed that are alive at the same time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .graph import Graph
from .lower import Step

ALIGNMENT = 4


@dataclass
class Buffer:
    tensors: list[int]               # the tensors sharing these bytes; empty for an op's scratch buffer
    size: int
    first: int
    last: int
    offset: int = 0
    scratch_of: int | None = None    # op index, for a scratch buffer


@dataclass
class MemoryPlan:
    offsets: dict[int, int]          # tensor -> byte offset in the arena
    buffers: list[Buffer]
    arena_size: int
    scratch: dict[int, int] = field(default_factory=dict)   # op index -> offset of its scratch buffer


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _can_overwrite(graph: Graph, group: dict[int, int], last_read: dict[int, int], t: int, out: int, step: int) -> bool:
    """True when step ``step`` may write ``out`` over input ``t``: same shape and type, and no later reader."""
    a, b = graph.tensors[t], graph.tensors[out]
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    root = group[t]
    return all(last_read.get(m, -1) <= step for m, r in group.items() if r == root)


def plan(graph: Graph, steps: list[Step]) -> MemoryPlan:
    """Place every activation tensor of ``steps``."""
    end = len(steps)
    last_read = {t: end for t in graph.outputs}
    for i, step in enumerate(steps):
        for t in step.inputs:
            last_read[t] = max(last_read.get(t, i), i)
    group: dict[int, int] = {}                   # tensor -> representative tensor
    for i, step in enumerate(steps):
        for t in step.inputs + step.outputs:
            group.setdefault(t, t)
        out = step.outputs[0]
        if step.kernel is None:                  # an aliasing reshape
            group[out] = group[step.inputs[0]]
        elif step.in_place:
            for t in step.inputs:
                if _can_overwrite(graph, group, last_read, t, out, i):
                    group[out] = group[t]
                    break
    offsets: dict[int, int] = {}
    spans: dict[int, list[int]] = {}
    sizes: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    for i, step in enumerate(steps):
        for t in step.inputs + step.outputs:
            root = group[t]
            span = spans.setdefault(root, [i, i])
            span[0], span[1] = min(span[0], i), max(span[1], i)
            sizes[root] = max(sizes.get(root, 0), graph.tensors[t].nbytes)
            if t not in members.setdefault(root, []):
                members[root].append(t)
    for t in graph.inputs:                       # alive from before the first op
        spans[group[t]][0] = -1
    for t in graph.outputs:                      # read by the caller after the last op
        spans[group[t]][1] = end

    buffers = [Buffer(members[r], _align(sizes[r]), spans[r][0], spans[r][1]) for r in spans]
    buffers += [Buffer([], _align(step.scratch_bytes), i, i, scratch_of=step.op_index)
                for i, step in enumerate(steps) if step.scratch_bytes]
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first)):
        live = sorted((p for p in placed if p.first <= buf.last and buf.first <= p.last), key=lambda p: p.offset)
        offset = 0
        for other in live:
            if offset + buf.size <= other.offset:
                break
            offset = max(offset, other.offset + other.size)
        buf.offset = offset
        placed.append(buf)
        for t in buf.tensors:
            offsets[t] = offset
    arena = max((b.offset + b.size for b in placed), default=0)
    scratch = {b.scratch_of: b.offset for b in placed if b.scratch_of is not None}
    return MemoryPlan(offsets, sorted(placed, key=lambda b: b.first), arena, scratch)

"""Static memory plan: where every activation tensor lives in the arena.

All activation tensors, the model's input and output included, live in one
static arena. Tensors whose lifetimes (first write .. last read, in operator
order) don't overlap share memory, so the input's bytes are reused once the
first layer has read them. Beyond that, each step's declared aliasing
(`Aliasing`, registered by its op; the planner never infers it) allows:

- SHARES_INPUT (RESHAPE): the output is the input's bytes;
- IN_PLACE (elementwise ops): the output takes over a same-shape, same-type
  input nobody reads after it;
- STREAMING (convolutions, pooling): when the op is its input's last reader,
  its output may *overlap* the input, starting `step.stream_distance` bytes
  before it (the op computes the distance from its geometry: output pixels are
  written in order, and no output byte may land on input bytes a later pixel
  still reads);
- a kernel's scratch buffer lives for its one call.

Placement is greedy, largest buffer first, at the lowest offset that fits
beside the buffers already placed that are alive at the same time, where a
windowed op's output and input may overlap as above. A few placement orders,
with and without overlaps, are tried and the smallest arena wins (greedy
placement has no guarantee that more freedom never hurts).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tinydeploy.compiler.step import Aliasing, Step
from tinydeploy.ir.graph import Graph

ALIGNMENT = 4


@dataclass
class Buffer:
    tensors: list[int]               # the tensors sharing these bytes; empty for an op's scratch buffer
    size: int
    first: int
    last: int
    offset: int = 0
    root: int | None = None          # the tensor group's representative
    scratch_of: int | None = None    # op index, for a scratch buffer


@dataclass
class MemoryPlan:
    offsets: dict[int, int]          # tensor -> byte offset in the arena
    buffers: list[Buffer]
    arena_size: int
    scratch: dict[int, int] = field(default_factory=dict)   # op index -> offset of its scratch buffer


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _can_overwrite(graph: Graph, group_last: dict[int, int], root: int, t: int, out: int, step: int) -> bool:
    """True when step ``step`` may write ``out`` over input ``t`` (of group ``root``): same shape and type,
    and no later reader."""
    a, b = graph.tensors[t], graph.tensors[out]
    return a.shape == b.shape and a.dtype == b.dtype and group_last[root] <= step


def plan(graph: Graph, steps: list[Step]) -> MemoryPlan:
    """Place every activation tensor of ``steps``."""
    end = len(steps)
    last_read = {t: end for t in graph.outputs}
    for i, step in enumerate(steps):
        for t in step.inputs:
            last_read[t] = max(last_read.get(t, i), i)
    group: dict[int, int] = {}                   # tensor -> representative tensor (same bytes)
    group_last: dict[int, int] = {}              # representative -> last step reading any of its tensors
    for i, step in enumerate(steps):
        for t in step.inputs + step.outputs:
            if t not in group:
                group[t] = t
                group_last[t] = last_read.get(t, -1)
        out = step.outputs[0]
        target = None
        if step.aliasing is Aliasing.SHARES_INPUT:
            target = group[step.inputs[0]]
        elif step.aliasing is Aliasing.IN_PLACE:
            target = next((group[t] for t in step.inputs
                           if _can_overwrite(graph, group_last, group[t], t, out, i)), None)
        if target is not None and group[out] == out and target != out:
            group[out] = target
            group_last[target] = max(group_last[target], group_last.pop(out))

    spans: dict[int, list[int]] = {}
    sizes: dict[int, int] = {}
    for i, step in enumerate(steps):
        for t in step.inputs + step.outputs:
            root = group[t]
            span = spans.setdefault(root, [i, i])
            span[0], span[1] = min(span[0], i), max(span[1], i)
            sizes[root] = max(sizes.get(root, 0), graph.tensors[t].nbytes)
    for t in graph.inputs:                       # alive from before the first op
        spans[group[t]][0] = -1
    for t in graph.outputs:                      # read by the caller after the last op
        spans[group[t]][1] = end

    # A windowed op that is its input's last reader may write its output overlapping the input.
    overlaps: dict[tuple[int, int], int] = {}    # (input group, output group) -> minimum distance
    for i, step in enumerate(steps):
        if step.aliasing is Aliasing.STREAMING and step.inputs:
            src, dst = group[step.inputs[0]], group[step.outputs[0]]
            if src != dst and group_last[src] <= i:
                overlaps[(src, dst)] = _align(step.stream_distance)

    members: dict[int, list[int]] = {}
    for t, root in group.items():
        members.setdefault(root, []).append(t)
    buffers = [Buffer(sorted(members[r]), _align(sizes[r]), spans[r][0], spans[r][1], root=r) for r in spans]
    buffers += [Buffer([], _align(step.scratch_bytes), i, i, scratch_of=step.op_index)
                for i, step in enumerate(steps) if step.scratch_bytes]
    plans = [_place(buffers, allowed, order) for allowed in ({}, overlaps) for order in _ORDERS]
    return min(plans, key=lambda p: p.arena_size)


def _fits(buf: Buffer, offset: int, other: Buffer, overlaps: dict[tuple[int, int], int]) -> bool:
    """``buf`` at ``offset`` is compatible with placed ``other``: disjoint, or an allowed overlap."""
    if offset + buf.size <= other.offset or other.offset + other.size <= offset:
        return True
    below = overlaps.get((other.root, buf.root))             # buf is the output of a windowed op reading other
    if below is not None and offset <= other.offset - below:
        return True
    above = overlaps.get((buf.root, other.root))             # buf is the input of a windowed op writing other
    return above is not None and other.offset <= offset - above


_ORDERS = (                                     # placement orders tried; the smallest arena wins
    lambda b: (-b.size, b.first),                # largest first, earlier first
    lambda b: (-b.size, -b.first),               # largest first, later first (an output lands below its input)
)


def _place(buffers: list[Buffer], overlaps: dict[tuple[int, int], int], order) -> MemoryPlan:
    """Greedy first fit in ``order``, honouring the allowed overlaps."""
    placed: list[Buffer] = []
    for template in sorted(buffers, key=order):
        buf = Buffer(template.tensors, template.size, template.first, template.last, root=template.root,
                     scratch_of=template.scratch_of)
        live = [p for p in placed if p.first <= buf.last and buf.first <= p.last]
        candidates = {0} | {p.offset + p.size for p in live}
        for p in live:
            if (p.root, buf.root) in overlaps:
                candidates.add(max(0, p.offset - overlaps[(p.root, buf.root)]))
            if (buf.root, p.root) in overlaps:
                candidates.add(p.offset + overlaps[(buf.root, p.root)])
        buf.offset = min(c for c in candidates if all(_fits(buf, c, p, overlaps) for p in live))
        placed.append(buf)
    offsets = {t: b.offset for b in placed for t in b.tensors}
    arena = max((b.offset + b.size for b in placed), default=0)
    scratch_at = {b.scratch_of: b.offset for b in placed if b.scratch_of is not None}
    return MemoryPlan(offsets, sorted(placed, key=lambda b: b.first), arena, scratch_at)

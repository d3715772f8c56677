"""Sliding-window geometry (convolutions and pooling), and how far a windowed op's output may overlap its input."""
from __future__ import annotations

import numpy as np

from tinydeploy.compiler.ops.common import refuse
from tinydeploy.compiler.step import Step
from tinydeploy.ir.graph import Graph, Operator, Tensor
from tinydeploy.ir.schema import Padding

NHWC = 4
PAIR_SLACK_PIXELS = 2            # kernels that write output pixels in pairs write through the next pixel


def nhwc(graph: Graph, op: Operator, t: Tensor, role: str) -> tuple[int, int, int, int]:
    if len(t.shape) != NHWC:
        raise refuse(graph, op, f"{role} shape {list(t.shape)} is not 4-D (NHWC)")
    return t.shape


def geometry(graph: Graph, op: Operator, x: Tensor, y: Tensor, filter_h: int, filter_w: int) -> dict[str, int]:
    """td_window: strides, dilations and the padding TFLite derives from SAME/VALID, checked against the output."""
    o = op.options
    n, in_h, in_w, in_c = nhwc(graph, op, x, "input")
    out_n, out_h, out_w, out_c = nhwc(graph, op, y, "output")
    if out_n != n:                       # TFLite Micro's kernels assert it; ours would read past the input
        raise refuse(graph, op, f"output {list(y.shape)} has {out_n} batches, the input {list(x.shape)} has {n}")
    stride_h, stride_w = o.get("strideH", 1), o.get("strideW", 1)
    dil_h, dil_w = o.get("dilationHFactor", 1) or 1, o.get("dilationWFactor", 1) or 1
    if min(stride_h, stride_w, dil_h, dil_w) < 1:
        raise refuse(graph, op, f"stride {stride_h}x{stride_w} / dilation {dil_h}x{dil_w} must be positive")
    same = o.get("padding", Padding.SAME) == Padding.SAME
    pads = []
    for size, taps, stride, dil, out in ((in_h, filter_h, stride_h, dil_h, out_h), (in_w, filter_w, stride_w, dil_w, out_w)):
        effective = (taps - 1) * dil + 1
        expected = (size + stride - 1) // stride if same else (size + stride - effective) // stride
        if expected != out:
            raise refuse(graph, op, f"output {list(y.shape)} does not match input {list(x.shape)} with a "
                                    f"{filter_h}x{filter_w} window, stride {stride_h}x{stride_w}, "
                                    f"{'SAME' if same else 'VALID'} padding")
        pads.append(max(0, (out - 1) * stride + effective - size) // 2)
    return dict(batches=n, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                filter_h=filter_h, filter_w=filter_w, stride_h=stride_h, stride_w=stride_w,
                dilation_h=dil_h, dilation_w=dil_w, pad_h=pads[0], pad_w=pads[1])


def overlap_distance(win: dict[str, int]) -> int:
    """Bytes by which the output of a kernel that writes pixels in order (two at a time at most) may start
    before its input: the smallest distance at which no output byte lands on input bytes a later pixel reads.

    Computed for the first batch; each later batch reads input one image further on and writes output one
    image further on, so its distances are the first batch's plus b * (output image - input image) bytes
    (every input byte of batch b lies below batch b + 1's), in closed form whatever the batch count."""
    oy = np.arange(win["out_h"])
    ox = np.arange(win["out_w"])
    first_y = _first_read(oy * win["stride_h"] - win["pad_h"], win["dilation_h"])
    first_x = _first_read(ox * win["stride_w"] - win["pad_w"], win["dilation_w"])
    low = ((first_y[:, None] * win["in_w"] + first_x[None, :]) * win["in_c"]).reshape(-1).astype(np.int64)
    still_needed = np.minimum.accumulate(low[::-1])[::-1]      # lowest input byte read by this pixel or later
    written = (np.arange(low.size, dtype=np.int64) + PAIR_SLACK_PIXELS) * win["out_c"]   # through the next pixel
    image = win["in_h"] * win["in_w"] * win["in_c"]
    if low.min() < 0 or low.max() >= image:       # windows reading outside the image: all batches at once
        low = (np.arange(win["batches"], dtype=np.int64)[:, None] * image + low[None, :]).reshape(-1)
        still_needed = np.minimum.accumulate(low[::-1])[::-1]
        written = (np.arange(low.size, dtype=np.int64) + PAIR_SLACK_PIXELS) * win["out_c"]
        return max(0, int(np.max(written - still_needed)))
    growth = low.size * win["out_c"] - image
    return max(0, int(np.max(written - still_needed)) + (win["batches"] - 1) * max(0, growth))


def step_overlap_distance(step: Step) -> int:
    """The stream distance of a windowed step (its td_window is the `win` scalar)."""
    return overlap_distance(step.scalars["win"])


def _first_read(origin: np.ndarray, dilation: int) -> np.ndarray:
    """First input coordinate a window starting at ``origin`` reads (its first tap inside)."""
    skipped = np.where(origin < 0, (-origin + dilation - 1) // dilation, 0)
    return origin + skipped * dilation

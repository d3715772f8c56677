"""The figures of `tinydeploy compare`, as PNG bytes (matplotlib's Agg renderer; no display, no pyplot state).

- ``overview_png``: four panels: firmware accuracy, flash (code and weights), estimated latency,
  and compression ratio against accuracy; one bar or marker per variant and board.
- ``pareto_png``: per board, accuracy against estimated latency and against flash, the
  Pareto front (no other variant is both more accurate and cheaper) drawn, the recommended
  variant starred, the variants that do not fit crossed out.
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinydeploy.analysis.compare import CompareResult, Row

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "h")
ESTIMATE_FOOTNOTE = ("Accuracy: arg-max of the firmware's own int8 outputs in QEMU. Latency: exact QEMU -icount "
                     "instruction counts at 1 instruction/cycle at each board's clock (an estimate, not cycles).")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=110)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    return buf.getvalue()


# Where a label may go around its point (pixels right, pixels up, alignment), in order of preference.
_OFFSETS = ((6, 3, "left"), (6, -14, "left"), (-6, 3, "right"), (-6, -14, "right"), (6, 15, "left"),
            (-6, 15, "right"), (6, -26, "left"), (-6, -26, "right"), (0, 27, "center"), (0, -38, "center"))


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def label_points(ax, items: list[tuple[float, float, str]], fontsize: float = 8, color: str = "#222222") -> None:
    """Name each point ``(x, y, text)`` beside it, trying a few positions so no two labels (or a label
    and a point) overlap. Call it once the axes' limits and the figure's layout are final."""
    ax.autoscale_view()
    dpi = ax.figure.dpi
    char_w, height = 0.58 * fontsize * dpi / 72, 1.25 * fontsize * dpi / 72

    def box(px, py, offset, width):
        dx, dy, ha = offset
        x0 = px + dx - {"left": 0.0, "right": width, "center": width / 2}[ha]
        return (x0, py + dy, x0 + width, py + dy + height)

    points = [tuple(ax.transData.transform((x, y))) for x, y, _ in items]
    taken = [(px - 5, py - 5, px + 5, py + 5) for px, py in points]
    for (x, y, text), (px, py) in zip(items, points):
        width = char_w * len(text)
        offset = next((o for o in _OFFSETS if not any(_overlaps(box(px, py, o, width), t) for t in taken)),
                      _OFFSETS[0])
        taken.append(box(px, py, offset, width))
        dx, dy, ha = offset
        ax.annotate(text, (x, y), xytext=(dx * 72 / dpi, dy * 72 / dpi), textcoords="offset points", ha=ha,
                    va="bottom", fontsize=fontsize, color=color)


def _board_legend(fig, boards: list[str]) -> None:
    from matplotlib.patches import Patch
    fig.legend(handles=[Patch(color=PALETTE[j % len(PALETTE)], label=b) for j, b in enumerate(boards)],
               loc="upper center", bbox_to_anchor=(0.5, 0.955), ncol=len(boards), fontsize=9, frameon=False,
               title="board", title_fontsize=9)


def _variants(result: CompareResult) -> list[str]:
    return list(dict.fromkeys(r.variant for r in result.rows))


def _row(result: CompareResult, variant: str, board: str) -> Row | None:
    return next((r for r in result.rows if r.variant == variant and r.board == board), None)


def _grouped(ax, result: CompareResult, value, ylabel: str, title: str, fmt: str, log: bool = False):
    """One group of bars per variant, one bar per board; 'not run' marked where a value is missing."""
    variants, boards = _variants(result), result.boards
    width = 0.8 / max(1, len(boards))
    values = []
    for j, board in enumerate(boards):
        xs, ys = [], []
        for i, v in enumerate(variants):
            r = _row(result, v, board)
            y = value(r) if r is not None and r.measurement is not None else None
            x = i - 0.4 + width * (j + 0.5)
            if y is None:
                ax.text(x, 0.02, "not run" if r is None or r.measurement is None else "n/a", rotation=90,
                        ha="center", va="bottom", fontsize=7, color="#888888", transform=ax.get_xaxis_transform())
                continue
            xs.append(x)
            ys.append(y)
        values += ys
        bars = ax.bar(xs, ys, width * 0.92, color=PALETTE[j % len(PALETTE)], label=board)
        for rect, y in zip(bars, ys):
            ax.annotate(fmt.format(y), (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                        xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(variants)))
    ax.set_xticklabels(variants, rotation=25, ha="right", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=10, fontweight="bold")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if log and values and min(values) > 0 and max(values) / min(values) > 30:
        ax.set_yscale("log")
        ax.set_ylim(top=max(values) * 4)
    elif values:
        ax.set_ylim(0, max(values) * 1.3)         # room for the labels and the legend
    return values


def overview_png(result: CompareResult) -> bytes:
    """The four-panel figure: accuracy, size, latency, compression vs accuracy."""
    fig = _figure(13, 9.5)
    axes = fig.subplots(2, 2)
    sample = f"{result.vectors} test vectors" if result.vectors else "whole test split"

    acc = _grouped(axes[0][0], result, lambda r: None if r.accuracy is None else 100 * r.accuracy,
                   "firmware int8 accuracy (%)", f"Accuracy (firmware outputs, {sample})", "{:.1f}")
    if acc:
        low, high = min(acc), max(acc)
        axes[0][0].set_ylim(max(0.0, low - max(5.0, 0.15 * (100 - low))), min(100.0, high + 0.1 * (high - low) + 3))

    ax = axes[0][1]
    variants, boards = _variants(result), result.boards
    width = 0.8 / max(1, len(boards))
    tallest = 0.0
    for j, board in enumerate(boards):
        for i, v in enumerate(variants):
            r = _row(result, v, board)
            x = i - 0.4 + width * (j + 0.5)
            if r is None or r.measurement is None or r.measurement.flash.code is None:
                ax.text(x, 0.02, "not run", rotation=90, ha="center", va="bottom", fontsize=7, color="#888888",
                        transform=ax.get_xaxis_transform())
                continue
            code, weights = r.measurement.flash.code / 1024, r.measurement.flash.weights / 1024
            tallest = max(tallest, code + weights)
            color = PALETTE[j % len(PALETTE)]
            ax.bar(x, code, width * 0.92, color=color, alpha=0.45)
            ax.bar(x, weights, width * 0.92, bottom=code, color=color, hatch="///", edgecolor="white")
            ax.annotate(f"{code + weights:.1f}", (x, code + weights), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
    from matplotlib.patches import Patch
    handles = [Patch(facecolor="#bbbbbb", label="code (light)"),
               Patch(facecolor="#555555", hatch="///", edgecolor="white", label="weights (hatched)")]
    ax.legend(handles=handles, fontsize=8, loc="upper right", ncol=len(handles))
    if tallest:
        ax.set_ylim(0, tallest * 1.25)
    ax.set_xticks(range(len(variants)))
    ax.set_xticklabels(variants, rotation=25, ha="right", fontsize=9)
    ax.set_ylabel("flash (KB), test vectors excluded", fontsize=9)
    ax.set_title("Size: flash = code + weights", fontsize=10, fontweight="bold")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)

    _grouped(axes[1][0], result, lambda r: r.latency_ms, "estimated ms per inference",
             "Latency (estimate: QEMU -icount instructions at 1 instr/cycle at the board clock)", "{:.3g}", log=True)

    ax = axes[1][1]
    labels: dict[str, tuple[float, float, str]] = {}
    ratios = []
    for j, board in enumerate(boards):
        pts = [(r.compression_ratio, 100 * r.accuracy, r.variant) for r in result.rows
               if r.board == board and r.compression_ratio and r.accuracy is not None]
        if not pts:
            continue
        ratios += [p[0] for p in pts]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=60 if j == 0 else 30,
                   marker=MARKERS[j % len(MARKERS)], color=PALETTE[j % len(PALETTE)], label=board, alpha=0.8,
                   zorder=3 - 0.1 * j)
        for p in pts:
            labels.setdefault(p[2], p)
    ax.set_xlabel("compression ratio vs baseline (baseline weight bytes / variant weight bytes, x)", fontsize=9)
    ax.set_ylabel("firmware int8 accuracy (%)", fontsize=9)
    ax.set_title("Compression vs accuracy (markers: boards)", fontsize=10, fontweight="bold")
    ax.grid(alpha=0.3, which="both")
    if ratios and max(ratios) / min(ratios) > 10:
        from matplotlib.ticker import FuncFormatter
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    if ax.collections:
        ax.legend(fontsize=8, loc="lower left", title="board", title_fontsize=8)
        ax.margins(x=0.2, y=0.2)

    not_run = [f"{r.variant} on {r.board}: {r.status}" for r in result.rows if r.measurement is None]
    footer = ESTIMATE_FOOTNOTE + ("\nNot run: " + "; ".join(not_run) if not_run else "")
    fig.suptitle(f"tinydeploy compare: {result.dataset} on {', '.join(result.boards)}", fontsize=13,
                 fontweight="bold")
    _board_legend(fig, boards)
    fig.text(0.01, -0.01, footer, fontsize=8, color="#444444", va="top", wrap=True)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    label_points(ax, list(labels.values()))
    return _png(fig)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower x and higher y, ``points`` as (x, y)), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _pareto_panel(ax, rows: list[Row], x_of, xlabel: str, title: str):
    from tinydeploy.analysis.compare import OK
    ok = [r for r in rows if r.status == OK and x_of(r) is not None and r.accuracy is not None]
    pts = [(x_of(r), 100 * r.accuracy) for r in ok]
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=45, color=PALETTE[0], label="fits, bit-exact", zorder=3)
    front = pareto_front(pts)
    if front:
        fx, fy = [pts[i][0] for i in front], [pts[i][1] for i in front]
        ax.step(fx, fy, where="post", color=PALETTE[0], alpha=0.6, linestyle="--")
        ax.scatter(fx, fy, s=150, facecolors="none", edgecolors=PALETTE[0], linewidths=1.5, zorder=3,
                   label="Pareto front (dashed)")
    labels = []
    for r, (x, y) in zip(ok, pts):
        labels.append((x, y, r.variant))
        if r.recommended:
            ax.scatter([x], [y], s=260, marker="*", color="#d62728", zorder=4, label="recommended")
    other = [r for r in rows if r.status != OK and r.measurement is not None and x_of(r) is not None
             and r.accuracy is not None]
    for r in other:
        ax.scatter([x_of(r)], [100 * r.accuracy], s=70, marker="x", color="#d62728", zorder=3, label=r.status)
        labels.append((x_of(r), 100 * r.accuracy, f"{r.variant} ({r.status})"))
    missing = [f"{r.variant} ({r.status})" for r in rows if r.measurement is None]
    if missing:
        ax.text(0.01, 0.99, "not on the plot: " + ", ".join(missing), transform=ax.transAxes, ha="left", va="top",
                fontsize=8, color="#d62728", wrap=True)
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize=8, loc="best")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("firmware int8 accuracy (%)", fontsize=9)
    ax.set_title(title, fontsize=10, fontweight="bold")
    ax.grid(alpha=0.3)
    ax.margins(x=0.2, y=0.2)
    return labels


def pareto_png(result: CompareResult) -> bytes:
    """Per board (one row each): accuracy against estimated latency, and against flash."""
    boards = result.boards
    fig = _figure(12.5, 4.3 * len(boards) + 0.6)
    axes = fig.subplots(len(boards), 2, squeeze=False)
    placements = []
    for i, board in enumerate(boards):
        rows = [r for r in result.rows if r.board == board]
        placements.append((axes[i][0], _pareto_panel(axes[i][0], rows, lambda r: r.latency_ms,
                                                     "estimated ms per inference (1 instr/cycle)",
                                                     f"{board}: accuracy vs estimated latency")))
        placements.append((axes[i][1], _pareto_panel(
            axes[i][1], rows, lambda r: None if r.flash_bytes is None else r.flash_bytes / 1024,
            "flash (KB, code + weights, test vectors excluded)", f"{board}: accuracy vs flash")))
    fig.suptitle("Accuracy against cost per board: up and to the left is better; ringed: the Pareto front "
                 "(no other variant is both more accurate and cheaper)", fontsize=11, fontweight="bold")
    fig.text(0.01, -0.01, ESTIMATE_FOOTNOTE, fontsize=8, color="#444444", va="top", wrap=True)
    fig.tight_layout()
    for ax, labels in placements:
        label_points(ax, labels)
    return _png(fig)

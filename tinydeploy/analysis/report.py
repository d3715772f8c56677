"""Human-readable tables of results; the machine-readable figures are analysis/measurement.py's Measurement."""
from __future__ import annotations

from rich.table import Table

from tinydeploy.pipeline import Firmware
from tinydeploy.platforms import boards
from tinydeploy.verify.compare import RunResult
from tinydeploy.analysis.measurement import Measurement, WeightBytes, measure, weight_bytes


TFLM_TENSOR_ARENA = "TFLite Micro tensor arena (reference interpreter; activations and scratch)"
ARENA_USED_NOTE = ("arena used: what the runtime on the device reports; TFLite Micro's arena_used_bytes() counts "
                   "its tensor arena and the interpreter's own state, the AOT code uses all of its arena")


def weights_row(t: Table, weights: WeightBytes, *blank: str) -> None:
    """The weight bytes and their split, as every table shows them."""
    t.add_row("  weights (flash)", f"{weights.total:,}", *blank)
    t.add_row("    raw weights / requantization records / layout and padding",
              f"{weights.raw:,} / {weights.requantization:,} / {weights.layout:,}", *blank)


def size_table(fw: Firmware) -> Table:
    board = fw.clock_board
    t = Table(title=f"{fw.model.name} on {board.name}", show_header=True)
    t.add_column("memory")
    t.add_column("used", justify="right")
    t.add_column("of", justify="right")
    t.add_column("%", justify="right")
    for label, used, cap in (("flash", fw.size.flash, board.flash.size), ("RAM", fw.size.ram, board.ram.size)):
        t.add_row(label, f"{used:,}", f"{cap:,}", f"{100 * used / cap:.1f}")
    t.add_row("  code (flash)", f"{fw.code_bytes:,}", "", "")
    weights_row(t, weight_bytes(fw.model), "", "")
    t.add_row("  test vectors (flash)", f"{fw.vector_bytes:,}", "", "")
    t.add_row("  arena (RAM)" if fw.model.runtime == "aot" else "  tensor arena reserved (RAM)",
              f"{fw.model.arena_bytes:,}", "", "")
    if fw.reference_arena is not None:
        t.add_row(f"  {TFLM_TENSOR_ARENA}", f"{fw.reference_arena:,}", "", "")
    return t


def run_table(fw: Firmware, m: Measurement | RunResult) -> Table:
    """`tinydeploy run`'s table; the figures come from the Measurement (built here from a RunResult),
    the boards' capacities from ``fw``."""
    if isinstance(m, RunResult):
        m = measure(fw, m)
    where = fw.board.name if fw.stands_in_for is None else f"{fw.stands_in_for.name} (emulated as {fw.board.name}, {fw.stands_in_for.proxy_relation})"
    board = fw.clock_board
    t = Table(title=f"tinydeploy run: {m.model} on {where}", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    if fw.stands_in_for is not None:
        t.add_row("proxy run", f"instructions counted on {fw.board.name}'s {fw.board.core} core; time, flash and "
                               f"RAM are {board.name}'s")
    t.add_row("vectors", f"{m.vectors} ({m.vector_origin})")
    verdict = "0 (bit-exact with TFLite Micro)" if not m.mismatches.values else \
        f"{m.mismatches.values} values in {m.mismatches.vectors} vectors"
    t.add_row("mismatches", verdict)
    if m.instructions:
        ins = m.instructions
        t.add_row("instructions/inference (min/median/max)", f"{ins.min:,} / {ins.median:,.0f} / {ins.max:,}")
        t.add_row("  note", "instruction count under QEMU -icount, not cycles")
        t.add_row(f"estimated ms at {m.estimated_time.clock_hz / 1e6:g} MHz ({m.board})",
                  f"{m.estimated_time.ms:.3f} (estimate: 1 instruction/cycle)")
    elif m.cycles:
        t.add_row("cycles/inference (median)", f"{m.cycles.median:,}")
    if m.macs:
        per_mac = f" ({m.instructions_per_mac:.2f} instructions/MAC)" if m.instructions_per_mac else ""
        t.add_row("MACs/inference", f"{m.macs:,}{per_mac}")
    arena = "arena" if m.runtime == "aot" else "tensor arena"
    weights = m.flash.weight_bytes or weight_bytes(fw.model)
    if m.flash.total is not None:
        t.add_row("flash used", f"{m.flash.total:,} of {board.flash.size:,} (code {m.flash.code:,}, "
                                f"weights {m.flash.weights:,}, test vectors {m.flash.vectors:,})")
    else:
        t.add_row("weights (flash)", f"{m.flash.weights:,}")
    t.add_row("  weights: raw / requantization records / layout and padding",
              f"{weights.raw:,} / {weights.requantization:,} / {weights.layout:,}")
    if m.ram.total is not None:
        t.add_row("RAM used", f"{m.ram.total:,} of {board.ram.size:,} ({arena} {m.ram.arena:,}, "
                              f"stack {m.ram.stack:,})")
    if m.ram.arena_used is not None and m.runtime == "tflm":
        t.add_row("arena_used_bytes (device: tensor arena in use + interpreter state)", f"{m.ram.arena_used:,}")
    if m.ram.tflm_arena is not None:
        t.add_row(f"{arena} vs {TFLM_TENSOR_ARENA}", f"{m.ram.arena:,} vs {m.ram.tflm_arena:,} bytes")
    if m.accuracy is not None:
        t.add_row("accuracy on the vectors' labels", f"{100 * m.accuracy:.1f}%")
    return t


def _count(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio(ours, theirs) -> str:
    return f"{ours / theirs:.3f}" if ours is not None and theirs else "-"


def bench_tables(measurements: list[Measurement], pairs: list[tuple[Measurement, Measurement]] = ()) -> list[Table]:
    """The figures of `tinydeploy bench`: one summary, the AOT/TFLM ratios of each (aot, tflm) pair
    measured side by side, layers if profiled."""
    proxied = [m for m in measurements if m.ran_on != m.board]
    notes = [ARENA_USED_NOTE, "weight bytes: raw weights + requantization records + layout and padding"]
    notes += [f"{m.board}: instructions counted on its proxy {m.ran_on} ({boards.get(m.board).proxy_relation}), "
              f"time at {m.board}'s clock"
              for m in {m.board: m for m in proxied}.values()]
    main = Table(title="tinydeploy bench (instruction counts under QEMU -icount, not cycles)",
                 caption="\n".join(notes), caption_justify="left")
    for col in ("model", "board", "runtime", "instructions", "instr/MAC", "est. ms", "arena (reserved)",
                "arena used", "code", "weight bytes", "raw + requant + layout"):
        main.add_column(col, justify="left" if col in ("model", "board", "runtime") else "right")
    for m in measurements:
        per_mac = f"{m.instructions_per_mac:.2f}" if m.instructions_per_mac else "-"
        ms = f"{m.estimated_time.ms:.2f}" if m.estimated_time else "-"
        w = m.flash.weight_bytes
        split = f"{w.raw:,} + {w.requantization:,} + {w.layout:,}" if w else "-"
        main.add_row(m.model, m.board, m.runtime, _count(m.instructions.median if m.instructions else None), per_mac,
                     ms, f"{m.ram.arena:,}", _count(m.ram.arena_used), _count(m.flash.code), f"{m.flash.weights:,}",
                     split)
    tables = [main]
    if pairs:
        ratio = Table(title="tinydeploy AOT / TensorFlow Lite Micro with CMSIS-NN, same model and core, "
                            "measured now (below 1: AOT is better)")
        for col in ("model", "board", "TFLM instr.", "AOT instr.", "instr.", "TFLM arena_used_bytes", "AOT arena",
                    "arena", "TFLM code", "AOT code", "code", "flash"):
            ratio.add_column(col, justify="left" if col in ("model", "board") else "right")
        for aot, tflm in pairs:
            aot_ins = aot.instructions.median if aot.instructions else None
            tflm_ins = tflm.instructions.median if tflm.instructions else None
            tflm_arena = tflm.ram.arena_used or tflm.ram.arena
            ratio.add_row(aot.model, aot.board, _count(tflm_ins), _count(aot_ins), _ratio(aot_ins, tflm_ins),
                          f"{tflm_arena:,}", f"{aot.ram.arena:,}", _ratio(aot.ram.arena, tflm_arena),
                          _count(tflm.flash.code), _count(aot.flash.code), _ratio(aot.flash.code, tflm.flash.code),
                          _ratio(aot.flash_without_vectors, tflm.flash_without_vectors))
        tables.append(ratio)
    for m in measurements:
        if not m.layers:
            continue
        layers = Table(title=f"{m.model} on {m.board}, per layer")
        for col in ("#", "op", "kernel", "output shape", "MACs", "instructions", "instr/MAC", "share"):
            layers.add_column(col, justify="left" if col in ("op", "kernel", "output shape") else "right")
        for layer in m.layers:
            per_mac = f"{layer.instructions / layer.macs:.2f}" if layer.macs else "-"
            layers.add_row(str(layer.index), layer.op, layer.kernel, str(layer.output_shape),
                           f"{layer.macs:,}", f"{layer.instructions:,}", per_mac, f"{100 * layer.share:.1f}%")
        tables.append(layers)
    return tables

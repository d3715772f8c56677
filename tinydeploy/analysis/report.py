"""Human-readable tables and machine-readable summaries of results."""
from __future__ import annotations

import statistics

from rich.table import Table

from tinydeploy.pipeline import Firmware
from tinydeploy.verify.compare import RunResult




def size_table(fw: Firmware) -> Table:
    t = Table(title=f"{fw.model.name} on {fw.board.name}", show_header=True)
    t.add_column("memory")
    t.add_column("used", justify="right")
    t.add_column("of", justify="right")
    t.add_column("%", justify="right")
    for label, used, cap in (("flash", fw.size.flash, fw.board.flash.size), ("RAM", fw.size.ram, fw.board.ram.size)):
        t.add_row(label, f"{used:,}", f"{cap:,}", f"{100 * used / cap:.1f}")
    t.add_row("  code (flash)", f"{fw.code_bytes:,}", "", "")
    t.add_row("  weights (flash)", f"{fw.model.weight_bytes:,}", "", "")
    t.add_row("  test vectors (flash)", f"{fw.vector_bytes:,}", "", "")
    t.add_row("  arena (RAM)", f"{fw.model.plan.arena_size:,}", "", "")
    if fw.reference_arena is not None:
        t.add_row("  TFLM tensor arena", f"{fw.reference_arena:,}", "", "")
    return t


def summary(fw: Firmware, result: RunResult) -> dict:
    """The run's figures as plain data (for --json and for CI)."""
    ins = result.instructions
    data = {
        "model": fw.model.name, "board": fw.clock_board.name, "ran_on": fw.board.name, "vectors": len(result.outputs),
        "mismatched_values": len(result.mismatches), "mismatched_vectors": result.mismatched_vectors,
        "flash_bytes": fw.size.flash if fw.size else None, "ram_bytes": fw.size.ram if fw.size else None,
        "code_bytes": fw.code_bytes if fw.size else None,
        "weight_bytes": fw.model.weight_bytes, "vector_bytes": fw.vector_bytes,
        "arena_bytes": fw.model.plan.arena_size, "reference_arena_bytes": fw.reference_arena, "macs": fw.model.macs,
        "accuracy": result.accuracy(),
    }
    if ins:
        med = statistics.median(ins)
        data.update(instructions_min=min(ins), instructions_median=med, instructions_max=max(ins),
                    instructions_per_mac=med / fw.model.macs if fw.model.macs else None,
                    estimated_ms_at_clock=1000.0 * med / fw.clock_board.clock_hz, clock_hz=fw.clock_board.clock_hz,
                    instruction_count_note="exact emulated instruction count (QEMU -icount), not cycles")
    else:
        data.update(cycles_median=statistics.median(result.ticks),
                    cycle_count_note="the board's cycle counter (SysTick, DWT or CCOUNT), not instructions")
    return data


def run_table(fw: Firmware, result: RunResult) -> Table:
    s = summary(fw, result)
    where = fw.board.name if fw.stands_in_for is None else f"{fw.stands_in_for.name} (emulated as {fw.board.name}, same core)"
    t = Table(title=f"tinydeploy run: {fw.model.name} on {where}", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("vectors", f"{s['vectors']} ({fw.vector_origin})")
    verdict = "0 (bit-exact with TFLite Micro)" if not result.mismatches else \
        f"{s['mismatched_values']} values in {s['mismatched_vectors']} vectors"
    t.add_row("mismatches", verdict)
    if "instructions_median" in s:
        t.add_row("instructions/inference (min/median/max)",
                  f"{s['instructions_min']:,} / {s['instructions_median']:,.0f} / {s['instructions_max']:,}")
        t.add_row("  note", "instruction count under QEMU -icount, not cycles")
        t.add_row(f"estimated ms at {fw.clock_board.clock_hz / 1e6:g} MHz ({fw.clock_board.name})",
                  f"{s['estimated_ms_at_clock']:.3f} (estimate: 1 instruction/cycle)")
    else:
        t.add_row("cycles/inference (median)", f"{s['cycles_median']:,}")
    if fw.model.macs:
        per_mac = f" ({s['instructions_per_mac']:.2f} instructions/MAC)" if s.get("instructions_per_mac") else ""
        t.add_row("MACs/inference", f"{fw.model.macs:,}{per_mac}")
    if fw.size:
        t.add_row("flash used", f"{s['flash_bytes']:,} of {fw.board.flash.size:,} (code {s['code_bytes']:,}, "
                                f"weights {s['weight_bytes']:,}, test vectors {s['vector_bytes']:,})")
        t.add_row("RAM used", f"{s['ram_bytes']:,} of {fw.board.ram.size:,} (arena {s['arena_bytes']:,}, "
                              f"stack {fw.board.stack:,})")
    if fw.reference_arena is not None:
        t.add_row("arena vs TFLite Micro", f"{s['arena_bytes']:,} vs {fw.reference_arena:,} bytes")
    if s["accuracy"] is not None:
        t.add_row("accuracy on the vectors' labels", f"{100 * s['accuracy']:.1f}%")
    return t


def bench_tables(data: dict) -> list[Table]:
    """The figures of `tinydeploy bench`: one summary, TFLM ratios where published, layers if profiled."""
    results = data["results"]
    main = Table(title="tinydeploy bench (instruction counts under QEMU -icount, not cycles)")
    for col in ("model", "board", "instructions", "instr/MAC", "est. ms", "arena", "code", "weights"):
        main.add_column(col, justify="left" if col in ("model", "board") else "right")
    for r in results:
        per_mac = f"{r['instructions_per_mac']:.2f}" if r["instructions_per_mac"] else "-"
        main.add_row(r["model"], r["board"], f"{r['instructions']:,}", per_mac, f"{r['estimated_ms']:.2f}",
                     f"{r['arena_bytes']:,}", f"{r['code_bytes']:,}", f"{r['weight_bytes']:,}")
    tables = [main]
    published = [r for r in results if "tflm" in r]
    if published:
        ratio = Table(title="against TFLite Micro on the same core (ours / theirs; below 1 is better)")
        for col in ("model", "TFLM ref instr.", "CMSIS-NN instr.", "instr. vs CMSIS-NN", "arena vs TFLM",
                    "code vs CMSIS-NN build"):
            ratio.add_column(col, justify="left" if col == "model" else "right")
        for r in published:
            t = r["tflm"]
            ratio.add_row(r["model"], f"{t['ref_instructions']:,}", f"{t['cmsis_instructions']:,}",
                          f"{r['instructions'] / t['cmsis_instructions']:.3f}", f"{r['arena_bytes'] / t['arena_bytes']:.3f}",
                          f"{r['code_bytes'] / t['cmsis_code_bytes']:.3f}")
        tables.append(ratio)
    for r in results:
        if not r.get("layers"):
            continue
        layers = Table(title=f"{r['model']} on {r['board']}, per layer")
        for col in ("#", "op", "kernel", "output shape", "MACs", "instructions", "instr/MAC", "share"):
            layers.add_column(col, justify="left" if col in ("op", "kernel", "output shape") else "right")
        for layer in r["layers"]:
            per_mac = f"{layer['instructions'] / layer['macs']:.2f}" if layer["macs"] else "-"
            layers.add_row(str(layer["index"]), layer["op"], layer["kernel"], str(layer["output_shape"]),
                           f"{layer['macs']:,}", f"{layer['instructions']:,}", per_mac, f"{100 * layer['share']:.1f}%")
        tables.append(layers)
    return tables

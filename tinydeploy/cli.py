"""tinydeploy's command line: a thin layer over the pipeline stages."""
from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from tinydeploy.core.errors import Interrupted, Mismatch, TinyDeployError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Take a neural network from data to verified microcontroller firmware.")
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

DEFAULT_BOARD = "mps2-an386"

# Declared once, used by every command that turns a model into firmware.
RUNTIME_OPTION = typer.Option("aot", "--runtime", help="aot (tinydeploy's compiled C), tflm (TensorFlow Lite Micro's "
                                                       "interpreter) or auto (aot when it takes every op, else tflm)")
TFLM_OPTION = typer.Option(None, "--tflm", metavar="DIR", help="TensorFlow Lite Micro source tree for --runtime "
                                                               "tflm/auto [$TINYDEPLOY_TFLM]")


def say(line: str) -> None:
    """A remark about what tinydeploy chose (stderr: stdout stays data)."""
    err.print(line, highlight=False, soft_wrap=True)


# Declared once, for every command whose -o is a folder it replaces as a whole.
FORCE_OPTION = typer.Option(False, "--force", help="replace the output folder even if tinydeploy did not make it "
                                                   "(it has no .tinydeploy file)")
FOLDER_OUTPUTS = ("convert", "build", "flash", "run", "compare", "federate")     # commands whose -o is a folder


def _check_outputs(name: str, kwargs: dict) -> None:
    """Refuse an output path that cannot be written before any long work (see core.resources)."""
    from tinydeploy.core import resources
    resources.check_output_file(kwargs.get("json_out"))
    output = kwargs.get("output")
    if output is not None:
        (resources.check_output_dir if name in FOLDER_OUTPUTS else resources.check_output_file)(output)


def _run_command(fn, kwargs: dict) -> None:
    """``fn`` with --force in effect, and with its tables on stderr when --json - takes stdout."""
    global console
    from tinydeploy.core import resources
    name = fn.__name__.rstrip("_")
    with resources.replacing_allowed(bool(kwargs.get("force"))):
        _check_outputs(name, kwargs)
        before = console
        if resources.is_stdout(kwargs.get("json_out")):
            console = err
        try:
            fn(**kwargs)
        finally:
            console = before


def command(fn):
    """Register ``fn`` as a command; user errors become one line on stderr and a non-zero exit."""
    @functools.wraps(fn)
    def wrapper(**kwargs):
        started = time.monotonic()
        try:
            _run_command(fn, kwargs)
        except TinyDeployError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code)
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(Interrupted.exit_code)
        err.print(f"[dim]{fn.__name__.rstrip('_')} took {time.monotonic() - started:.1f} s[/]")   # stdout stays data
    return app.command(name=fn.__name__.rstrip("_"))(wrapper)


@command
def train(dataset: str = typer.Option("iot-sensors", help="built-in dataset name (iot-sensors), a CSV path, or an "
                                                         ".npz with arrays x ([n, features], windows [n, t, c] or "
                                                         "images [n, h, w, c]) and y (integer labels)"),
          label: Optional[str] = typer.Option(None, help="CSV column holding the class"),
          arch: str = typer.Option("mlp", help="mlp (Dense 32-16), cloud (Dense 256-128-64, dropout 0.3), conv1d "
                                               "(1-D conv net for sensor windows) or dscnn (depthwise-separable "
                                               "CNN for images)"),
          output: Path = typer.Option(..., "-o", "--output", help="where to save the model (.keras)"),
          epochs: int = typer.Option(30, min=1)):
    """Train a small classifier and save it with its data split and feature scaling."""
    from tinydeploy.ml.train import train as train_model
    result = train_model(dataset, arch, output, label=label, epochs=epochs)
    console.print(f"saved {result.model_path} ({result.parameters:,} parameters); "
                  f"float test accuracy [bold]{100 * result.test_accuracy:.2f}%[/]")


@command
def quantize(model: Path = typer.Argument(..., help="trained .keras model"),
             output: Path = typer.Option(..., "-o", "--output", help=".tflite to write"),
             weights: str = typer.Option("int8", help="int8, or int4: packed 4-bit Dense weights (per tensor) "
                                                      "with int8 activations")):
    """Quantize to full-integer int8 (optionally 4-bit Dense weights) and report the accuracy lost."""
    from tinydeploy.ml.quantize import quantize as quantize_model
    r = quantize_model(model, output, weights=weights)
    t = Table(title=f"{r.tflite_path} ({r.tflite_bytes:,} bytes)")
    t.add_column("model")
    t.add_column("test accuracy", justify="right")
    t.add_row("float32 (Keras)", f"{100 * r.float_accuracy:.2f}%")
    kind = "int8" if r.weights == "int8" else "int4 weights, int8 activations"
    t.add_row(f"{kind} (TFLite Micro reference interpreter)", f"{100 * r.int8_accuracy:.2f}%")
    t.add_row("change", f"{100 * (r.int8_accuracy - r.float_accuracy):+.2f} points")
    console.print(t)


@command
def convert(model: Path = typer.Argument(..., help="int8 .tflite model"),
            output: Path = typer.Option(..., "-o", "--output", help="directory for the C library"),
            force: bool = FORCE_OPTION,
            runtime: str = RUNTIME_OPTION, tflm: Optional[Path] = TFLM_OPTION):
    """Turn a .tflite into a C library: the AOT model + kernels, or (--runtime tflm) the same C API on
    TensorFlow Lite Micro (the model array, its op resolver and arena; build TFLM beside it)."""
    from tinydeploy.runtimes import load_model
    compiled = load_model(model, runtime, tflm, say)
    compiled.write_library(output)
    if compiled.runtime == "tflm":
        console.print(f"wrote {output}/{compiled.name}.h, {compiled.name}.cc and {compiled.name}_tflite.c for TensorFlow "
                      f"Lite Micro in {compiled.tree}: {compiled.weight_bytes:,} bytes of flatbuffer, tensor arena "
                      f"{compiled.arena_bytes:,} bytes; compile with the defines and include paths in its model.json")
        return
    console.print(f"wrote {output}/{compiled.name}.h, {compiled.name}.c, {compiled.name}_tflite.c and kernels: "
                  f"{compiled.weight_bytes:,} bytes of weights, arena {compiled.arena_bytes:,} bytes (input and output included)")


@command
def build(model: Path = typer.Argument(..., help="int8 .tflite model"),
          board: str = typer.Option(DEFAULT_BOARD, help="board name or alias (see `tinydeploy boards`)"),
          output: Optional[Path] = typer.Option(None, "-o", "--output", help="project directory [build/<model>-<board>]"),
          force: bool = FORCE_OPTION,
          vectors: int = typer.Option(50, min=1, help="test vectors baked into the firmware"),
          runtime: str = RUNTIME_OPTION, tflm: Optional[Path] = TFLM_OPTION):
    """Render the firmware project for a board and build it with PlatformIO.

    Emulated boards build offline; real boards (esp32, nucleo_f446re, ...) build with your own
    PlatformIO platforms. Exit code 3: the project is rendered but this machine cannot build it."""
    from tinydeploy.pipeline import build_firmware
    from tinydeploy.analysis.report import size_table
    fw = build_firmware(model, board, output, vectors, runtime=runtime, tflm_dir=tflm, say=say)
    console.print(size_table(fw))
    console.print(f"firmware: {fw.elf}")


@command
def flash(model: Path = typer.Argument(..., help="int8 .tflite model"),
          board: str = typer.Option(..., help="a real board (see `tinydeploy boards`)"),
          output: Optional[Path] = typer.Option(None, "-o", "--output", help="project directory [build/<model>-<board>]"),
          force: bool = FORCE_OPTION,
          vectors: int = typer.Option(50, min=1, help="test vectors baked into the firmware"),
          port: Optional[str] = typer.Option(None, help="upload port [PlatformIO finds it]")):
    """Build for a real board and upload it (PlatformIO `run -t upload`); then `run --port` checks it."""
    from tinydeploy.pipeline import flash_firmware
    fw = flash_firmware(model, board, output, vectors, port)
    console.print(f"flashed {fw.project} to {fw.board.name}; check it with "
                  f"`tinydeploy run {model} --board {fw.board.name} --port <serial port>`")


@command
def run(model: Path = typer.Argument(..., help="int8 .tflite model"),
        board: str = typer.Option(DEFAULT_BOARD, help="board name or alias (see `tinydeploy boards`)"),
        vectors: int = typer.Option(50, min=1, help="how many test vectors to run"),
        output: Optional[Path] = typer.Option(None, "-o", "--output", help="project directory [build/<model>-<board>]"),
        force: bool = FORCE_OPTION,
        port: Optional[str] = typer.Option(None, help="serial port of a real, flashed board, instead of the emulator"),
        baud: int = typer.Option(115200, help="serial baud rate"),
        timeout: float = typer.Option(120.0, help="seconds before a silent firmware is declared hung"),
        emulator: str = typer.Option("qemu", help="qemu, or renode (when installed)"),
        json_out: Optional[Path] = typer.Option(None, "--json", help="also write the figures as a Measurement JSON file"),
        runtime: str = RUNTIME_OPTION, tflm: Optional[Path] = TFLM_OPTION):
    """Build, run in the emulator (or on a board) and check every output byte against TFLite Micro.

    A real board without --port runs on its emulated proxy (same core); the time is then
    estimated at the real board's clock."""
    from tinydeploy.core.resources import atomic_write
    from tinydeploy.pipeline import firmware_for_run, run_firmware
    from tinydeploy.analysis.report import run_table
    from tinydeploy.analysis.measurement import measure
    if emulator not in ("qemu", "renode"):
        raise TinyDeployError(f"unknown emulator '{emulator}'; use qemu or renode")
    fw = firmware_for_run(model, board, output, vectors, port,      # with --port: the board itself, flashed earlier
                          runtime=runtime, tflm_dir=tflm, say=say)
    result = run_firmware(fw, port=port, baudrate=baud, timeout=timeout, emulator=emulator)
    measured = measure(fw, result)
    console.print(run_table(fw, measured))
    if json_out:
        atomic_write(json_out, json.dumps(measured.to_json(), indent=2) + "\n")
    if result.mismatches:
        for v, b, ours, ref in result.mismatches[:10]:
            err.print(f"mismatch: vector {v} element {b}: firmware {ours}, reference {ref}")
        raise Mismatch(f"{len(result.mismatches)} output values differ from the TFLite Micro reference")


@command
def bench(models: list[Path] = typer.Argument(..., help="int8 .tflite models"),
          board: list[str] = typer.Option([DEFAULT_BOARD], "--board", help="board(s), repeat the option; a real board runs on its emulated proxy"),
          per_layer: bool = typer.Option(False, "--per-layer", help="also time every operator (a second build)"),
          json_out: Optional[Path] = typer.Option(None, "--json", help="write the Measurements as a bench JSON file"),
          baseline: Optional[Path] = typer.Option(None, "--baseline",
                                                  help="earlier --json output: exit 1 if anything got >2% worse"),
          runtime: list[str] = typer.Option(["aot"], "--runtime", help="aot, tflm or auto; repeat the option to "
                                                                       "measure several side by side"),
          vs: Optional[str] = typer.Option(None, "--vs", help="tflm: also build and measure TensorFlow Lite Micro "
                                                              "from the same model (same as --runtime aot --runtime tflm)"),
          tflm: Optional[Path] = TFLM_OPTION):
    """Instructions per inference, memory and flash per model, board and runtime; with --vs tflm, tinydeploy's
    AOT code and TensorFlow Lite Micro built from the same model, side by side."""
    from tinydeploy.analysis import bench as bench_mod
    from tinydeploy.core.resources import atomic_write
    from tinydeploy.analysis.report import bench_tables
    bench_mod.check_models(models)
    old = bench_mod.load_baseline(baseline) if baseline else None
    if vs not in (None, "tflm"):
        raise TinyDeployError(f"--vs {vs}: tinydeploy compares against tflm only")
    runtimes = list(dict.fromkeys(["aot", "tflm"] if vs else runtime))
    runs = [(m, b, r) for m in models for b in board for r in runtimes]
    results = [bench_mod.bench_one(m, b, per_layer, r, tflm, say) for m, b, r in runs]
    for table in bench_tables(results, bench_mod.side_by_side(results)):
        console.print(table)
    if json_out:
        atomic_write(json_out, json.dumps(bench_mod.as_json(results), indent=2) + "\n")
    if old is not None:
        worse = bench_mod.regressions(results, old)
        for line in worse:
            err.print(f"regression: {line}")
        if worse:
            raise Mismatch(f"{len(worse)} figures got more than 2% worse than {baseline}")
        console.print(f"no regression against {baseline} (tolerance 2%)")


@command
def compare(dataset: str = typer.Option("iot-sensors", help="built-in dataset (iot-sensors), a CSV (with --label) "
                                                            "or an .npz (arrays x, y)"),
            label: Optional[str] = typer.Option(None, help="CSV column holding the class"),
            board: list[str] = typer.Option([DEFAULT_BOARD], "--board", help="board(s), repeat the option; a real "
                                                                             "board runs on its emulated proxy"),
            output: Path = typer.Option(..., "-o", "--output", help="directory for the report (replaced as a whole)"),
            force: bool = FORCE_OPTION,
            config: Optional[Path] = typer.Option(None, "--config", help="variants YAML (techniques and parameters) "
                                                                         "[every technique, its defaults]"),
            quick: bool = typer.Option(False, "--quick", help="fewer epochs and the first 500 test vectors"),
            weights: Optional[str] = typer.Option(None, "--weights", help="cost weights, e.g. accuracy=1,latency=0.3,"
                                                                          "flash=0.3,energy=0.3 (the defaults)"),
            jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help="builds and emulator runs at once [CPUs]"),
            arch: Optional[str] = typer.Option(None, help="baseline architecture: mlp [default], cloud (the demo's "
                                                         "Dense 256-128-64, dropout 0.3), conv1d or dscnn"),
            epochs: Optional[int] = typer.Option(None, min=1, help="baseline training epochs [30; 5 with --quick]"),
            variant_epochs: Optional[int] = typer.Option(None, "--variant-epochs", min=1,
                                                         help="variants' fine-tuning epochs [5; 2 with --quick]"),
            vectors: Optional[int] = typer.Option(None, min=1, help="test vectors per run [the whole test split; "
                                                                    "500 with --quick]"),
            cache: Optional[Path] = typer.Option(None, "--cache", help="cache of trained models and firmware results "
                                                                       "[~/.cache/tinydeploy/compare]"),
            runtime: str = RUNTIME_OPTION, tflm: Optional[Path] = TFLM_OPTION):
    """Baseline vs compressed variants on each board: firmware accuracy, size, instructions, estimated
    time and energy, verified bit-exact; figures, an HTML report and a recommendation per board.

    Instruction counts are exact (QEMU -icount), not cycles; times assume 1 instruction per cycle at the
    board's clock and energies the board's active power (both estimates). Exit 1 if any output differs
    from the TFLite Micro reference."""
    from tinydeploy.analysis.compare import compare as run_compare, tables
    result = run_compare(dataset, board, output, label=label, config=config, quick=quick, weights=weights, jobs=jobs,
                         arch=arch, epochs=epochs, variant_epochs=variant_epochs, vectors=vectors, cache=cache,
                         console=err, runtime=runtime, tflm_dir=tflm)
    for item in tables(result):
        console.print(item)
    console.print(f"wrote {result.out}/: report.html, compare.json, compare.csv, table.txt, compare.png, pareto.png")
    if result.mismatched:
        for r in result.mismatched:
            err.print(f"mismatch: {r.variant} on {r.board}: {r.reason}")
        raise Mismatch(f"{len(result.mismatched)} variant/board runs differ from the TFLite Micro reference")


@command
def inspect(model: Path = typer.Argument(..., help=".tflite model")):
    """Ops, tensors and quantization, MACs and weight bytes per layer, planned arena."""
    from tinydeploy.analysis.inspect import inspect as inspect_model
    r = inspect_model(model)
    ops = Table(title=f"{model}: {len(r.rows)} operators")
    for col in ("#", "op", "output shape", "MACs", "weight bytes", "output at arena offset"):
        ops.add_column(col, justify="left" if col in ("op", "output shape") else "right")
    for row in r.rows:
        offset = row.get("arena_offset")
        ops.add_row(str(row["index"]), row["op"], str(row["output_shape"]), f"{row['macs']:,}", f"{row['weight_bytes']:,}",
                    "-" if offset is None else f"{offset:,}")
    ops.add_row("", "total", "", f"{sum(x['macs'] for x in r.rows):,}", f"{sum(x['weight_bytes'] for x in r.rows):,}", "")
    console.print(ops)
    tensors = Table(title="tensors")
    for col in ("#", "name", "shape", "type", "quantization", "bytes"):
        tensors.add_column(col)
    for t in r.tensors:
        tensors.add_row(str(t["index"]), t["name"][:48], str(t["shape"]), t["dtype"] + (" const" if t["constant"] else ""),
                        t["quantization"], f"{t['bytes']:,}")
    console.print(tensors)
    if r.arena_bytes is not None:
        console.print(f"planned arena: [bold]{r.arena_bytes:,}[/] bytes (all activations, input and output included)")
    else:
        console.print(f"[yellow]cannot plan this model yet:[/] {r.unsupported}")
    if r.reference_error:
        console.print(f"[yellow]TFLite Micro reference interpreter:[/] {r.reference_error}", highlight=False)
    if r.reference_arena:
        head = r.reference_arena.get("head", 0)
        console.print(f"TFLite Micro reference interpreter: tensor arena {head:,} bytes, "
                      f"plus {r.reference_arena.get('tail', 0):,} bytes of interpreter state "
                      f"= {r.reference_arena.get('total', 0):,} bytes arena_used_bytes")
        if r.arena_bytes is not None and head:
            verdict = "at most" if r.arena_bytes <= head else "MORE than"
            console.print(f"our arena is {verdict} the reference's tensor arena: {r.arena_bytes:,} vs {head:,} bytes "
                          f"({100 * (r.arena_bytes - head) / head:+.1f}%)")


@command
def ops(markdown: bool = typer.Option(False, "--markdown", help="print the table as Markdown (as in the README)")):
    """The supported operators: data types, output aliasing and what is covered (the op registry)."""
    from tinydeploy.compiler import ops as ops_mod
    if markdown:
        print(ops_mod.markdown_table(), end="")
        return
    t = Table(title="supported operators (int8 kernels byte-identical with TFLite Micro)")
    for col in ("op", "data types", "output aliasing", "what is covered"):
        t.add_column(col)
    for row in ops_mod.table():
        t.add_row(row["op"], row["dtypes"], row["aliasing"], row["notes"])
    console.print(t)


@command
def boards(renode: Optional[Path] = typer.Option(None, "--renode", metavar="DIR",
                                                 help="write <board>.repl and .resc for Renode into DIR (the shipped "
                                                      "ones: tinydeploy/resources/renode)"),
           schema: bool = typer.Option(False, "--schema", help="print every key a board file may have: type, "
                                                               "default and meaning"),
           directory: Optional[Path] = typer.Option(None, "--dir", help="read (and check) the board files in DIR "
                                                                        "instead of the shipped catalog")):
    """The board catalog (boards/*.yaml): what each board is and what this machine can do with it."""
    from rich.markup import escape
    from tinydeploy.core.resources import BOARDS
    from tinydeploy.platforms.boards import catalog, schema_rows
    from tinydeploy.platforms.registry import platform_for
    if schema:
        t = Table(title="board file keys (boards/<name>.yaml); nested keys are dotted: flash.size is flash: {size: ...}")
        for col in ("key", "type", "default", "meaning"):
            t.add_column(col)
        for row in schema_rows():
            t.add_row(*(escape(cell) for cell in row))
        console.print(t)
        return
    t = Table(title="boards (emulated: built offline and run in QEMU here; real: PlatformIO projects to flash)")
    for col in ("board", "kind", "core", "clock", "flash", "RAM", "emulator / proxy", "on this machine"):
        t.add_column(col)
    for b in catalog(directory or BOARDS).values():
        platform = platform_for(b)
        names = b.name + (" (default)" if b.name == DEFAULT_BOARD else "") + "".join(f", {a}" for a in b.aliases)
        core = b.core + (f" +{b.fpu} FPU" if b.fpu else "") + (" +DSP" if b.dsp else "")
        t.add_row(names, platform.kind, core, f"{b.clock_hz / 1e6:g} MHz", f"{b.flash.size // 1024:,} KB",
                  f"{b.ram.size // 1024:,} KB", platform.runs_on(), platform.status_here())
    console.print(t)
    if renode:
        from tinydeploy.platforms.renode import render_scripts
        console.print(f"wrote {len(render_scripts(renode, directory or BOARDS))} Renode files into {renode}")


@command
def doctor():
    """Say which tools are installed and what to install for the missing ones."""
    from tinydeploy.core.doctor import checks
    t = Table(title="tinydeploy doctor")
    for col in ("tool", "status", "needed for", "to install"):
        t.add_column(col)
    missing = 0
    for c in checks():
        missing += not c.found
        t.add_row(c.name, f"[green]{c.detail}[/]" if c.found else "[red]missing[/]", c.needed_for, "" if c.found else c.install)
    console.print(t)
    if missing:
        console.print(f"{missing} missing; the README's set-up command installs everything on Debian")


@command
def federate(dataset: str = typer.Option("iot-sensors", help="built-in dataset (iot-sensors) or a CSV (with --label)"),
             label: Optional[str] = typer.Option(None, help="CSV column holding the class"),
             devices: int = typer.Option(30, help="simulated devices (Flower SuperNodes)"),
             gateways: int = typer.Option(3, help="gateways; each averages its devices' updates"),
             fog: int = typer.Option(0, help="fog nodes between the gateways and the cloud (0: none)"),
             rounds: int = typer.Option(20, help="federated rounds"),
             profiles: Optional[str] = typer.Option(None, "--profiles", help="device profiles taken in turn: names "
                                                    "from resources/federated/profiles.yaml (comma-separated) or "
                                                    "a profiles YAML [its default mix]"),
             update_bits: list[int] = typer.Option([8], "--update-bits", help="bits per update value: 32, 8 or "
                                                   "4; repeat to compare (the first is shipped)"),
             topk: list[float] = typer.Option([0.0], "--topk", help="share of each tensor's entries sent, with "
                                              "error feedback (0: all); repeat to compare"),
             stochastic: bool = typer.Option(False, "--stochastic-rounding", help="round quantized updates "
                                             "stochastically (unbiased)"),
             partition: str = typer.Option("iid", help="iid, or dirichlet:ALPHA (non-IID labels, e.g. dirichlet:0.5)"),
             select: str = typer.Option("all", help="all (every device that holds the model) or resource (also "
                                                    "enough battery and within --deadline)"),
             deadline: Optional[float] = typer.Option(None, help="resource selection: seconds a device may take "
                                                                 "per round (estimate)"),
             local_epochs: Optional[int] = typer.Option(None, "--local-epochs", help="epochs per round on each "
                                                                                      "device [10]"),
             server_momentum: Optional[float] = typer.Option(None, "--server-momentum", help="cloud momentum "
                                                             "(FedAvgM) [0.5; 0: plain FedAvg]"),
             hidden: str = typer.Option("32,16", help="the MLP's hidden layer widths (tinydeploy's mlp: 32,16)"),
             quick: bool = typer.Option(False, "--quick", help="the firmware runs the first 500 test vectors"),
             vectors: Optional[int] = typer.Option(None, min=1, help="test vectors baked into the firmware "
                                                                      "[the whole test split]"),
             output: Path = typer.Option(..., "-o", "--output", help="directory for the results"),
             force: bool = FORCE_OPTION):
    """Federated learning across a fleet of microcontroller profiles on Flower (simulated on Ray), then the
    global model as int8 firmware for each profile's board, verified bit-exactly in QEMU.

    Bytes are the encoded payloads on each link; device time and energy are estimates from each board's
    measured instructions per MAC. Exit 1 if any firmware output differs from the TFLite Micro reference."""
    from tinydeploy.federated import report
    from tinydeploy.federated import run as federated_run
    try:
        widths = tuple(int(w) for w in hidden.split(","))
    except ValueError:
        raise TinyDeployError(f"--hidden {hidden}: give layer widths separated by commas, e.g. 32,16") from None
    result = federated_run.federate(
        dataset, output, devices=devices, gateways=gateways, rounds=rounds, profile_spec=profiles, bits=update_bits,
        topk=topk, stochastic=stochastic, partition_spec=partition, fog=fog, select=select, deadline_s=deadline,
        local_epochs=federated_run.LOCAL_EPOCHS if local_epochs is None else local_epochs,
        momentum=federated_run.SERVER_MOMENTUM if server_momentum is None else server_momentum, label=label,
        hidden=widths, quick=quick, vectors=vectors, console=err)
    for table in report.tables(result):
        console.print(table)
    console.print(f"wrote {result.out}/: federated.json, federated.png, rounds.txt, global.tflite, central.tflite, "
                  "central-same-learner.tflite, firmware/")
    if result.mismatched:
        raise Mismatch(f"{len(result.mismatched)} boards' firmware outputs differ from the TFLite Micro reference: "
                       + ", ".join(s.board for s in result.mismatched))


def main():
    app(prog_name="tinydeploy")


if __name__ == "__main__":
    sys.exit(main())

"""tinydeploy's command line: a thin layer over the pipeline stages."""
from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from inspect import Parameter, getdoc, signature
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.models import ParameterInfo

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


class _TerminalStage:
    def __init__(self, progress: Progress, task):
        self.progress, self.task = progress, task

    def advance(self, done: int) -> None:
        self.progress.update(self.task, completed=done)

    def describe(self, text: str) -> None:
        self.progress.update(self.task, description=escape(text))


class TerminalActivity:
    """Long work shown on stderr while it runs (rich), an analysis.bench.Activity: a spinner and what is being
    done, a bar for counted work, the time spent; a finished stage leaves one dim line with its duration.
    Stages run one at a time."""

    def __init__(self, out: Console):
        self.out = out

    @contextlib.contextmanager
    def stage(self, text: str, total: int | None = None):
        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if total:
            columns += [BarColumn(), MofNCompleteColumn()]
        started = time.monotonic()
        with Progress(*columns, TimeElapsedColumn(), console=self.out, transient=True) as progress:
            yield _TerminalStage(progress, progress.add_task(escape(text), total=total))
        self.out.print(f"[dim]{escape(text)}: {time.monotonic() - started:.1f} s[/]", highlight=False)


activity = None        # the running command's Activity (set by _run_command): TerminalActivity on a terminal
QUIET_OPTION = typer.Option(False, "--quiet", "-q", help="no progress on stderr: results, remarks and errors only")


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


def _run_command(fn, kwargs: dict, quiet: bool) -> None:
    """``fn`` with --force in effect, with its tables on stderr when --json - takes stdout, and its
    progress on stderr when that is a terminal (not with --quiet, nor when --json - makes stdout data)."""
    global console, activity
    from tinydeploy.analysis.bench import SILENT
    from tinydeploy.core import resources
    name = fn.__name__.rstrip("_")
    with resources.replacing_allowed(bool(kwargs.get("force"))):
        _check_outputs(name, kwargs)
        before = console
        json_on_stdout = resources.is_stdout(kwargs.get("json_out"))
        if json_on_stdout:
            console = err
        activity = TerminalActivity(err) if err.is_terminal and not (quiet or json_on_stdout) else SILENT
        try:
            fn(**kwargs)
        finally:
            console, activity = before, None


_ESCAPED: set[int] = set()          # help texts escaped once (options shared by several commands)


def _escaped_help(fn) -> str | None:
    """Help texts as Rich shows them literally: `[build/<model>-<board>]` is text, not a markup tag."""
    for param in signature(fn).parameters.values():
        info = param.default
        if isinstance(info, ParameterInfo) and info.help and id(info) not in _ESCAPED:
            info.help = escape(info.help)
            _ESCAPED.add(id(info))
    doc = getdoc(fn)
    return escape(doc) if doc else None


def command(fn):
    """Register ``fn`` as a command, with --quiet; user errors become one line on stderr and a non-zero exit."""
    @functools.wraps(fn)
    def wrapper(quiet: bool = False, **kwargs):
        started = time.monotonic()
        try:
            _run_command(fn, kwargs, quiet)
        except TinyDeployError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code)
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(Interrupted.exit_code)
        if not quiet:                                                            # stdout stays data
            err.print(f"[dim]{fn.__name__.rstrip('_')} took {time.monotonic() - started:.1f} s[/]")
    own = signature(fn, eval_str=True)
    quiet_param = Parameter("quiet", Parameter.KEYWORD_ONLY, default=QUIET_OPTION, annotation=bool)
    wrapper.__signature__ = own.replace(parameters=[*own.parameters.values(), quiet_param])
    wrapper.__annotations__ = {**fn.__annotations__, "quiet": bool}
    return app.command(name=fn.__name__.rstrip("_"), help=_escaped_help(fn))(wrapper)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version
        try:
            console.print(f"tinydeploy {version('tinydeploy')}", highlight=False)
        except PackageNotFoundError:
            console.print("tinydeploy (not installed as a package: no version recorded)", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                               help="print tinydeploy's version and exit")):
    """Take a neural network from data to verified microcontroller firmware."""


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
def quantize(model: Path = typer.Argument(..., help="float model: .keras, .h5, SavedModel folder or float .tflite"),
             output: Path = typer.Option(..., "-o", "--output", help=".tflite to write"),
             calibration: Optional[Path] = typer.Option(None, metavar="FILE", help="representative inputs: .npz "
                                                        "with an array x, .npy, or CSV of feature rows (the first "
                                                        "500 are used) [a model from `tinydeploy train`: its "
                                                        "training split]"),
             test: Optional[Path] = typer.Option(None, metavar="FILE", help="labelled inputs for the accuracy "
                                                 "report: .npz with x and y, or CSV with a --label column"),
             label: Optional[str] = typer.Option(None, metavar="COLUMN", help="CSV column holding the class "
                                                 "(an integer output position); dropped from a calibration CSV"),
             weights: str = typer.Option("int8", help="int8, or int4: packed 4-bit Dense weights (per tensor) "
                                                      "with int8 activations (Keras files)")):
    """Quantize to full-integer int8 (optionally 4-bit Dense weights) and report the accuracy lost."""
    from tinydeploy.ml.quantize import quantize as quantize_model
    r = quantize_model(model, output, weights=weights, calibration=calibration, test=test, label=label)
    say(f"calibrated with {r.quantizer} on {r.calibration_samples:,} samples from {r.calibration_origin}")
    if r.float_operators:
        say(f"note: operators still reading or writing float32: {', '.join(r.float_operators)}; "
            "tinydeploy's AOT runtime takes only full-integer operators (a fixed batch of 1 at export avoids "
            "SHAPE/STRIDED_SLICE/PACK)")
    if r.int8_accuracy is None:
        console.print(f"wrote {r.tflite_path} ({r.tflite_bytes:,} bytes); accuracy not measured: no test samples "
                      "(give --test FILE)")
        return
    t = Table(title=f"{r.tflite_path} ({r.tflite_bytes:,} bytes)",
              caption=f"{r.test_samples:,} test samples from {r.test_origin}")
    t.add_column("model")
    t.add_column("test accuracy", justify="right")
    t.add_row(r.float_kind, f"{100 * r.float_accuracy:.2f}%")
    kind = "int8" if r.weights == "int8" else "int4 weights, int8 activations"
    t.add_row(f"{kind} (TFLite Micro reference interpreter)", f"{100 * r.int8_accuracy:.2f}%")
    t.add_row("change", f"{100 * (r.int8_accuracy - r.float_accuracy):+.2f} points")
    console.print(t)


@command
def convert(models: list[Path] = typer.Argument(..., help="int8 .tflite model(s); several share one kernel set"),
            output: Path = typer.Option(..., "-o", "--output", help="directory for the C library"),
            force: bool = FORCE_OPTION,
            with_flatbuffer: bool = typer.Option(False, "--with-flatbuffer",
                                                 help="also write <name>_tflite.c, the .tflite as a C array "
                                                      "(TFLite Micro's library always has it)"),
            runtime: str = RUNTIME_OPTION, tflm: Optional[Path] = TFLM_OPTION):
    """Turn .tflite models into a C library that drops into CMake and Make builds: the AOT model + kernels, or
    (--runtime tflm) the same C API on TensorFlow Lite Micro (the model array, its op resolver and arena; build
    TFLM beside it). Several models get one kernel set (kernels/) and a folder each, to link into one image."""
    from tinydeploy.pipeline import convert_models
    from tinydeploy.compiler.codegen import cmake_target
    compiled = convert_models(models, output, runtime, tflm, with_flatbuffer, say)
    if compiled[0].runtime == "tflm":
        model = compiled[0]
        console.print(f"wrote {output}/{model.name}.h, {model.name}.cc and {model.name}_tflite.c for TensorFlow "
                      f"Lite Micro in {model.tree}: {model.weight_bytes:,} bytes of flatbuffer, tensor arena "
                      f"{model.arena_bytes:,} bytes; compile with the defines and include paths in its model.json")
        return
    for model in compiled:
        where = f"{output}/{model.name}" if len(compiled) > 1 else output
        flatbuffer = f", {model.name}_tflite.c" if with_flatbuffer else ""
        console.print(f"wrote {where}/{model.name}.h, {model.name}.c{flatbuffer}: {model.weight_bytes:,} bytes of "
                      f"weights, arena {model.arena_bytes:,} bytes (input and output included)")
    several = len(compiled) > 1
    kernels = f"one kernel set in {output}/kernels/" if several else "with the kernels"
    prefix = "TINYDEPLOY" if several else compiled[0].name.upper()
    console.print(f"{kernels}; build files {output}/CMakeLists.txt (add_subdirectory; target"
                  f"{'s' if several else ''} {', '.join(cmake_target(m) for m in compiled)}) and {output}/tinydeploy.mk "
                  f"(include; {prefix}_SRCS, {prefix}_INCLUDES, {prefix}_CFLAGS)")


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
    from tinydeploy.analysis.bench import building
    from tinydeploy.analysis.report import size_table
    with activity.stage(building(model, board, runtime)):
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
    with activity.stage(f"building {model.name} for {board} and uploading it (PlatformIO)"):
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
    from tinydeploy.pipeline import firmware_for_run
    from tinydeploy.analysis.bench import building, run_watched
    from tinydeploy.analysis.report import run_table
    from tinydeploy.analysis.measurement import check_fits_board, measure
    if emulator not in ("qemu", "renode"):
        raise TinyDeployError(f"unknown emulator '{emulator}'; use qemu or renode")
    with activity.stage(building(model, board, runtime)):
        fw = firmware_for_run(model, board, output, vectors, port,      # with --port: the board itself, flashed earlier
                              runtime=runtime, tflm_dir=tflm, say=say)
    check_fits_board(fw)                                                # a proxy run: the real board's flash and RAM
    result = run_watched(fw, activity, port=port, baudrate=baud, timeout=timeout, emulator=emulator)
    measured = measure(fw, result)
    console.print(run_table(fw, measured))
    if json_out:
        atomic_write(json_out, json.dumps(measured.to_json(), indent=2) + "\n")
    if result.mismatches:
        for v, b, ours, ref in result.mismatches[:10]:
            err.print(f"mismatch: vector {v} element {b}: firmware {ours}, reference {ref}")
        raise Mismatch(f"{len(result.mismatches)} output values differ from the TFLite Micro reference")


@command
def bench(models: list[Path] = typer.Argument(..., metavar="MODEL...", help="int8 .tflite models"),
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
    results = [bench_mod.bench_one(m, b, per_layer, r, tflm, say, activity) for m, b, r in runs]
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
def inspect(model: Path = typer.Argument(..., help=".tflite model"),
            board: Optional[str] = typer.Option(None, help="also check the model against this board's flash and "
                                                           "RAM (see `tinydeploy boards`)"),
            json_out: Optional[Path] = typer.Option(None, "--json", help="also write the inspection as JSON "
                                                                         "(- for stdout)")):
    """Ops, tensors and quantization, MACs and weight bytes per layer (the figure convert, run and bench
    report, split into raw weights, requantization records and layout), planned arena; with --board, the fit."""
    from tinydeploy.analysis.inspect import inspect as inspect_model
    from tinydeploy.core.resources import atomic_write, is_stdout
    from tinydeploy.platforms import boards
    target = boards.get(board) if board else None
    with activity.stage(f"compiling and planning {model.name}, and allocating it in the TFLite Micro reference"):
        r = inspect_model(model, target)
    if json_out:
        text = json.dumps(r.to_json(), indent=2) + "\n"
        if is_stdout(json_out):
            sys.stdout.write(text)
        else:
            atomic_write(json_out, text)
    compiled = r.weights is not None
    ops = Table(title=f"{model}: {len(r.rows)} operators")
    columns = ["#", "op", "output shape", "MACs", "weight bytes"]
    columns += ["raw", "requant.", "layout", "output at arena offset"] if compiled else []
    for col in columns:
        ops.add_column(col, justify="left" if col in ("op", "output shape") else "right")
    for row in r.rows:
        cells = [str(row["index"]), row["op"], str(row["output_shape"]), f"{row['macs']:,}"]
        if compiled:
            offset = row["arena_offset"]
            cells += [f"{row[k]:,}" for k in ("weight_bytes", "raw", "requantization", "layout")]
            cells.append("-" if offset is None else f"{offset:,}")
        else:
            cells.append(f"{row['tflite_constant_bytes']:,}")
        ops.add_row(*cells)
    total = ["", "total", "", f"{sum(x['macs'] for x in r.rows):,}"]
    if compiled:
        w = r.weights
        total += [f"{w.total:,}", f"{w.raw:,}", f"{w.requantization:,}", f"{w.layout:,}", ""]
    else:
        total.append(f"{r.tflite_constant_bytes:,}")
    ops.add_row(*total)
    console.print(ops)
    tensors = Table(title="tensors")
    for col in ("#", "name", "shape", "type", "quantization", "bytes"):
        tensors.add_column(col)
    for t in r.tensors:
        tensors.add_row(str(t["index"]), escape(t["name"][:48]), str(t["shape"]),
                        t["dtype"] + (" const" if t["constant"] else ""), t["quantization"], f"{t['bytes']:,}")
    console.print(tensors)
    if compiled:
        folded = r.tflite_constant_bytes - r.weights.raw
        console.print(f"weight bytes in flash (as convert, run and bench report them): [bold]{r.weights.total:,}[/] "
                      f"= {r.weights.described()}" + (f"; {folded:,} bytes of the .tflite's constants are folded "
                                                       "into operator parameters" if folded else ""), highlight=False)
        console.print(f"planned arena: [bold]{r.arena_bytes:,}[/] bytes (all activations, input and output included)")
    else:
        console.print(f"[yellow]cannot plan this model yet:[/] {escape(r.unsupported)}", highlight=False)
    tw = r.tflm_weights
    console.print(f"on TensorFlow Lite Micro (--runtime tflm): {tw.total:,} bytes of flatbuffer in flash = "
                  f"{tw.raw:,} raw weights + {tw.layout:,} graph, tensor metadata and alignment", highlight=False)
    if r.reference_error:
        console.print(f"[yellow]TFLite Micro reference interpreter:[/] {escape(r.reference_error)}", highlight=False)
    if r.reference_arena:
        head = r.reference_arena.get("head", 0)
        console.print(f"TFLite Micro reference interpreter: tensor arena {head:,} bytes (activations and scratch), "
                      f"plus {r.reference_arena.get('tail', 0):,} bytes of interpreter state "
                      f"= {r.reference_arena.get('total', 0):,} bytes arena_used_bytes")
        if r.arena_bytes is not None and head:
            verdict = "at most" if r.arena_bytes <= head else "MORE than"
            console.print(f"our arena is {verdict} the reference's tensor arena: {r.arena_bytes:,} vs {head:,} bytes "
                          f"({100 * (r.arena_bytes - head) / head:+.1f}%)")
    if target is not None:
        _print_fit(r.fit, target)


def _print_fit(fit, board) -> None:
    """`inspect --board`: the model's flash and RAM against the board's, or why there is no figure."""
    if fit is None:
        console.print(f"[yellow]no fit check for {board.name}:[/] neither tinydeploy nor the TFLite Micro "
                      "reference can run this model")
        return
    t = Table(title=f"fit on {board.name} ({fit.runtime}; {board.clock_hz / 1e6:g} MHz)")
    for col in ("memory", "needs", "board has", "%"):
        t.add_column(col, justify="left" if col == "memory" else "right")
    t.add_row("flash (weight bytes; code comes on top)", f"{fit.flash_needed:,}", f"{fit.flash_capacity:,}",
              f"{100 * fit.flash_needed / fit.flash_capacity:.1f}")
    t.add_row(f"RAM (arena {fit.arena:,} + output copy {fit.output_copy:,} + stack {fit.stack:,})",
              f"{fit.ram_needed:,}", f"{fit.ram_capacity:,}", f"{100 * fit.ram_needed / fit.ram_capacity:.1f}")
    console.print(t)
    console.print(f"fits {board.name}" if fit.fits else f"[bold red]does not fit {board.name}[/]", highlight=False)


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
    from tinydeploy.core.doctor import SETUP_COMMAND, checks, missing_summary
    t = Table(title="tinydeploy doctor")
    for col in ("tool", "status", "needed for", "to install", SETUP_COMMAND):
        t.add_column(col)
    found = checks()
    for c in found:
        t.add_row(c.name, f"[green]{escape(c.detail)}[/]" if c.found else "[red]missing[/]", c.needed_for,
                  "" if c.found else c.install, "installs it" if c.by_setup else "[yellow]cannot install it[/]")
    console.print(t)
    summary = missing_summary(found)
    if summary:
        console.print(summary, highlight=False)


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

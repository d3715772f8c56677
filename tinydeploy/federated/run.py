"""`tinydeploy federate`: partition the data across a fleet of device profiles, measure the model on
each board's firmware, train it federatedly on Flower's simulation engine (Ray), then ship it: int8
conversion, firmware for every profile's board, run in QEMU, verified bit-exactly against TFLite
Micro, accuracy from the firmware's own outputs; beside it the same model trained centrally.

``federate(...)`` is what the CLI calls; it returns a ``FederatedResult`` and writes into ``out``:
``federated.json`` (schema ``tinydeploy.federated``, report.py), ``rounds.txt`` (the tables),
``federated.png``, ``global.tflite`` / ``central.tflite`` (with their ``.testset.npz``), the
firmware projects under ``firmware/`` and Flower's outputs under ``flower/``.
"""
from __future__ import annotations

import io
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinydeploy.core.errors import BadInput, MissingTool, TinyDeployError
from tinydeploy.federated import encoding, mlp, partition, profiles
from tinydeploy.federated.costs import BoardFigures
from tinydeploy.federated.profiles import Device

CENTRAL_EPOCHS = 30                # the central baselines: `tinydeploy train`'s epochs
CENTRAL_HOW = "tinydeploy train --arch mlp (Keras, Adam 1e-3, batch 64, 30 epochs, early stopping), tinydeploy quantize"
SAME_LEARNER_HOW = "the clients' NumPy learner and settings (Adam 1e-2, batch 16), 30 epochs on the pooled split"
LOCAL_EPOCHS = 10                  # measured: 5 reaches 89.2% int8 in 10 rounds, 10 reaches 89.9%
SERVER_MOMENTUM = 0.5              # FedAvgM at the cloud (0: plain FedAvg)
LOCAL_LR = 1e-2
LOCAL_BATCH = 16
PROBE_VECTORS = 3                  # xorshift32 vectors for the pre-training firmware measurement
QUICK_VECTORS = 500                # --quick: firmware runs the first 500 test vectors
BUILD_JOBS = 2                     # firmware builds and emulator runs at once
CLIENT_CPUS = 1.0                  # Ray CPUs per ClientApp actor
SEED = 42


@dataclass
class Shipped:
    """The global model on one board: the firmware run's Measurement (accuracy from its outputs)."""
    board: str
    measurement: object               # analysis.measurement.Measurement
    mismatches: int


@dataclass
class FederatedResult:
    out: Path
    settings: dict
    devices: list[Device]
    samples: dict[int, int]
    figures: dict[str, BoardFigures]
    encodings: list[encoding.Encoding]
    histories: dict[str, list]               # tag -> [RoundRecord]
    final_float: dict[str, float]            # tag -> float test accuracy of the final global model
    central: dict                            # float_accuracy, int8_accuracy
    federated: dict                          # float_accuracy, int8_accuracy (reference interpreter), tag
    shipped: list[Shipped]
    timings: dict = field(default_factory=dict)

    @property
    def mismatched(self) -> list[Shipped]:
        return [s for s in self.shipped if s.mismatches]


def _check(gateways: int, rounds: int, fog: int, local_epochs: int) -> None:
    """The schedule's settings (the fleet's own are checked by profiles.fleet)."""
    if rounds < 1:
        raise BadInput(f"--rounds {rounds}: run at least one round")
    if local_epochs < 1:
        raise BadInput(f"--local-epochs {local_epochs}: train at least one epoch per round")
    if fog < 0 or fog > gateways:
        raise BadInput(f"--fog {fog}: give between 0 (no fog tier) and --gateways ({gateways}) fog nodes")


def _require_flower() -> None:
    import importlib.util
    if importlib.util.find_spec("flwr") is None or importlib.util.find_spec("ray") is None:
        raise MissingTool("federate needs Flower with its simulation engine: pip install 'tinydeploy[federated]' "
                          "(scripts/setup.sh installs it)")


# ---- the model as a .tflite ----------------------------------------------------------------------------------------

def keras_model(weights: dict[str, np.ndarray], ds):
    """The NumPy MLP as the Keras model tinydeploy.ml.train builds for "mlp" (Dense + ReLU layers, the
    "logits" Dense, a softmax), holding ``weights``."""
    from tinydeploy.ml.train import quiet_tensorflow
    tf = quiet_tensorflow()
    layers = tf.keras.layers
    names = [k[:-len("/kernel")] for k in weights if k.endswith("/kernel")]
    dense = [layers.Dense(weights[f"{n}/kernel"].shape[1], activation=None if n == "logits" else "relu", name=n)
             for n in names]
    model = tf.keras.Sequential([tf.keras.Input(ds.input_shape), *dense, layers.Softmax(name="softmax")])
    for n in names:
        model.get_layer(n).set_weights([weights[f"{n}/kernel"], weights[f"{n}/bias"]])
    return model


def to_tflite(weights: dict[str, np.ndarray], ds, path: Path) -> tuple[Path, float]:
    """The weights converted to full int8 at ``path`` (tinydeploy.ml.quantize) with the int8 test split
    beside it (what build/run bake in); returns the path and the int8 test accuracy measured with the
    TFLite Micro reference interpreter."""
    from tinydeploy.core.resources import atomic_write
    from tinydeploy.ml.quantize import convert, tflite_accuracy
    from tinydeploy.verify.vectors import testset_path
    flatbuffer = convert(keras_model(weights, ds), ds)
    atomic_write(path, flatbuffer)
    accuracy, x_q = tflite_accuracy(flatbuffer, ds)
    buf = io.BytesIO()
    np.savez(buf, x=x_q, y=ds.y_test)
    atomic_write(testset_path(path), buf.getvalue())
    return path, accuracy


def central_model(dataset: str, label: str | None, hidden, out: Path, seed: int):
    """The same model trained centrally the way `tinydeploy train` trains "mlp" (Keras), quantized the
    way `tinydeploy quantize` does: its QuantizeResult (float and int8 test accuracy)."""
    from tinydeploy.ml.quantize import quantize
    from tinydeploy.ml.train import train
    result = train(dataset, "mlp", out / "central.keras", label=label, epochs=CENTRAL_EPOCHS, seed=seed)
    return quantize(result.model_path, out / "central.tflite")


# ---- firmware ----------------------------------------------------------------------------------------------------

def precheck(tflite: Path, board: str) -> str | None:
    """Why the model cannot fit ``board`` (weights, arena and stack against its memory), or None."""
    from tinydeploy.compiler.codegen import compile_model
    from tinydeploy.platforms import boards
    from tinydeploy.platforms.registry import platform_for
    from tinydeploy.platforms.render import fit_check
    from tinydeploy.verify.vectors import Vectors
    model = compile_model(tflite)
    target = platform_for(boards.get(board)).emulation_target()
    none = Vectors(np.zeros((0, model.graph.input_tensor().size), np.int8), None, "none")
    try:
        fit_check(model, target, none)
    except BadInput as exc:
        return str(exc).split(": ", 1)[-1].split("; ")[0].replace(" + test vectors 0", "")
    return None


def _refused(board: str, why: str) -> BoardFigures:
    from tinydeploy.platforms import boards
    return BoardFigures(board, 0.0, 1, boards.get(board).clock_hz, None, False, why)


def probe(tflite: Path, board: str, out: Path) -> BoardFigures:
    """Build and run the (untrained) model on ``board``'s firmware: instructions per inference and
    whether it fits; a model the build refuses does not fit."""
    from tinydeploy.analysis.measurement import measure
    from tinydeploy.pipeline import build_for_emulation, run_firmware
    from tinydeploy.platforms import boards
    b = boards.get(board)
    try:
        fw = build_for_emulation(tflite, board, out / board, vectors=PROBE_VECTORS, testset=False)
        m = measure(fw, run_firmware(fw))
    except MissingTool:
        raise
    except TinyDeployError as exc:
        if "fit" in str(exc):
            return BoardFigures(board, 0.0, 1, b.clock_hz, None, False, str(exc).split(": ", 1)[-1])
        raise
    power = b.power.active_mw if b.power else None
    fits = (m.flash_without_vectors or 0) <= b.flash.size and (m.ram.total or 0) <= b.ram.size
    why = None if fits else f"needs {m.flash_without_vectors:,} bytes of flash and {m.ram.total:,} of RAM"
    return BoardFigures(board, float(m.instructions.median), m.macs, b.clock_hz, power, fits, why)


def ship(tflite: Path, board: str, out: Path, vectors: int) -> Shipped:
    """Build the global model for ``board``, run it in the emulator, verify every output byte."""
    from tinydeploy.analysis.measurement import measure
    from tinydeploy.pipeline import build_for_emulation, run_firmware
    fw = build_for_emulation(tflite, board, out / board, vectors=vectors)
    result = run_firmware(fw)
    return Shipped(board, measure(fw, result), len(result.mismatches))


# ---- the simulation ----------------------------------------------------------------------------------------------

def _simulate(plan, devices: int) -> None:
    """Run the ServerApp and ClientApp on Flower's simulation engine (Ray, on this machine)."""
    import sys
    import warnings
    os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    import ray
    from flwr.simulation import run_simulation
    from tinydeploy.federated import client, server
    for name in ("flwr", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Ray is started here (Flower uses a running one) so that its workers skip TensorFlow
    ray.init(num_cpus=max(1, min(os.cpu_count() or 1, BUILD_JOBS)), include_dashboard=False, logging_level="error",
             log_to_driver=False, configure_logging=True,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path), "FLWR_TELEMETRY_ENABLED": "0"},
                          "worker_process_setup_hook": "tinydeploy.federated.client.without_tensorflow"})
    backend = {"client_resources": {"num_cpus": CLIENT_CPUS, "num_gpus": 0.0}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_simulation(server.make_app(plan), client.app, num_supernodes=devices, backend_config=backend)
    finally:
        if ray.is_initialized():
            ray.shutdown()


def federate(dataset: str, out: Path, devices: int = 30, gateways: int = 3, rounds: int = 20,
             profile_spec: str | None = None, bits: list[int] | None = None, topk: list[float] | None = None,
             stochastic: bool = False, partition_spec: str = "iid", fog: int = 0, select: str = "all",
             deadline_s: float | None = None, local_epochs: int = LOCAL_EPOCHS, momentum: float = SERVER_MOMENTUM,
             label: str | None = None, hidden: tuple[int, ...] = mlp.HIDDEN,
             quick: bool = False, vectors: int | None = None, seed: int = SEED, console=None) -> FederatedResult:
    """The whole federated pipeline (see the module docstring); ``console``: a rich Console for progress."""
    from rich.console import Console
    from tinydeploy.federated import report
    from tinydeploy.federated.costs import SELECT
    console = console or Console(stderr=True)
    started = time.monotonic()
    timings: dict[str, float] = {}
    _check(gateways, rounds, fog, local_epochs)
    if not hidden or min(hidden) < 1:
        raise BadInput(f"--hidden {','.join(map(str, hidden))}: give one or more layer widths, e.g. 32,16")
    if not 0.0 <= momentum < 1.0:
        raise BadInput(f"--server-momentum {momentum}: give a value from 0 (plain FedAvg) up to, not including, 1")
    if select not in SELECT:
        raise BadInput(f"--select {select}: choose one of {', '.join(SELECT)}")
    encodings = encoding.parse_encodings(bits or [8], topk or [0.0], stochastic)
    chosen = profiles.choose(profile_spec)
    fleet_devices = profiles.fleet(chosen, devices, gateways)
    partition.parse(partition_spec)
    _require_flower()
    from tinydeploy.ml import data as data_mod
    ds = data_mod.load(dataset, label)
    parts = partition.split(ds.y_train, devices, partition_spec, seed)
    from tinydeploy.core.resources import fresh_dir
    out = fresh_dir(out)
    work = out / "work"
    (work / "devices").mkdir(parents=True)
    from tinydeploy.federated.client import device_file
    for d, idx in zip(fleet_devices, parts):
        np.savez(device_file(work / "devices", d.index), x=ds.x_train[idx], y=ds.y_train[idx], profile=d.profile.name)
    samples = {d.index: len(idx) for d, idx in zip(fleet_devices, parts)}
    initial = mlp.init_weights(ds.num_features, len(ds.classes), tuple(hidden), seed=seed)

    # measure the model on every profile's board before training: fit, instructions per MAC
    t = time.monotonic()
    probe_tflite, _ = to_tflite(initial, ds, work / "probe" / "initial.tflite")
    board_names = sorted({d.board.name for d in fleet_devices})
    refused = {b: why for b in board_names if (why := precheck(probe_tflite, b))}
    if len(refused) == len(board_names):
        raise BadInput("the model fits none of the fleet's boards (" + "; ".join(f"{b}: {w}" for b, w in refused.items())
                       + "); choose profiles with bigger boards or a smaller model (--hidden)")
    console.print(f"[bold]federate[/]: {devices} devices ({', '.join(p.name for p in chosen)}), {gateways} gateways"
                  f"{f', {fog} fog nodes' if fog else ''}, {rounds} rounds, {partition_spec} partition of "
                  f"{len(ds.y_train):,} training samples")
    with ThreadPoolExecutor(BUILD_JOBS) as pool:
        figures = dict(zip(board_names, pool.map(
            lambda b: _refused(b, refused[b]) if b in refused else probe(probe_tflite, b, work / "probe"), board_names)))
    timings["probe_s"] = time.monotonic() - t
    for b, f in figures.items():
        console.print(f"  {b}: " + (f"{f.instructions_per_inference:,.0f} instructions/inference, "
                                    f"{f.instructions_per_mac:.2f}/MAC (QEMU -icount)" if f.fits
                                    else f"[yellow]does not fit[/]: {f.why_not}"))
    if not any(f.fits for f in figures.values()):
        raise BadInput("the model fits none of the fleet's boards (" +
                       "; ".join(f"{b}: {f.why_not}" for b, f in figures.items()) + "); use boards with more memory")

    # central baselines: the same learner and settings on the pooled split (NumPy) ...
    t = time.monotonic()
    central_w = mlp.fit(initial, ds.x_train, ds.y_train, CENTRAL_EPOCHS, seed, LOCAL_LR, LOCAL_BATCH)
    central_float = mlp.evaluate(central_w, ds.x_test, ds.y_test)[1]
    timings["central_s"] = time.monotonic() - t

    # federated, on Flower's simulation engine
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from tinydeploy.federated import server
    from tinydeploy.federated.strategy import Fleet
    fleet = Fleet(fleet_devices, figures, samples,
                  fog_of_gateway=[g * fog // gateways for g in range(gateways)] if fog else None)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("round {task.completed}/{task.total}"),
                        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console, transient=False)
    tasks = {e.tag: progress.add_task(f"  {e.name:<22}", total=rounds, status="starting Ray") for e in encodings}

    def on_round(tag, r):
        progress.update(tasks[tag], completed=r.round,
                        status=f"accuracy {100 * r.accuracy:.1f}%, up {r.bytes['device_to_gateway']:,} B, "
                               f"{len(r.selected)} devices")

    plan = server.Plan(fleet, encodings, rounds, initial, ds.x_test, ds.y_test, work / "devices", out, local_epochs,
                       LOCAL_LR, LOCAL_BATCH, seed, momentum, select, deadline_s, on_round)
    t = time.monotonic()
    with progress:
        _simulate(plan, devices)
    timings["simulation_s"] = time.monotonic() - t
    missing = [e.tag for e in encodings if e.tag not in plan.results]
    if missing:
        raise TinyDeployError(f"the Flower simulation ended without a result for {', '.join(missing)} (see the log above)")

    # ship: int8, firmware for every board that holds it, QEMU, verified
    t = time.monotonic()
    primary = encodings[0].tag
    final_w = plan.results[primary][0]
    fed_tflite, fed_int8 = to_tflite(final_w, ds, out / "global.tflite")
    _, central_int8 = to_tflite(central_w, ds, out / "central-same-learner.tflite")
    trained = central_model(dataset, label, hidden, out, seed) if tuple(hidden) == mlp.HIDDEN else None
    count = vectors or (QUICK_VECTORS if quick else len(ds.y_test))
    fitting = [b for b, f in figures.items() if f.fits]
    with ThreadPoolExecutor(BUILD_JOBS) as pool:
        shipped = list(pool.map(lambda b: ship(fed_tflite, b, out / "firmware", count), fitting))
    timings["ship_s"] = time.monotonic() - t
    timings["total_s"] = time.monotonic() - started
    settings = dict(dataset=dataset, label=label, devices=devices, gateways=gateways, fog=fog, rounds=rounds,
                    partition=partition_spec, profiles=[p.name for p in chosen], select=select, deadline_s=deadline_s,
                    hidden=list(hidden), local_epochs=local_epochs, server_momentum=momentum, lr=LOCAL_LR, batch=LOCAL_BATCH,
                    central_epochs=CENTRAL_EPOCHS,
                    seed=seed, quick=quick, vectors=count)
    result = FederatedResult(
        out, settings, fleet_devices, samples, figures, encodings,
        {tag: hist for tag, (_, hist) in plan.results.items()},
        {tag: mlp.evaluate(w, ds.x_test, ds.y_test)[1] for tag, (w, _) in plan.results.items()},
        {"float_accuracy": trained.float_accuracy if trained else None,
         "int8_accuracy": trained.int8_accuracy if trained else None, "how": CENTRAL_HOW,
         "same_learner": {"float_accuracy": central_float, "int8_accuracy": central_int8, "how": SAME_LEARNER_HOW}},
        {"float_accuracy": mlp.evaluate(final_w, ds.x_test, ds.y_test)[1], "int8_accuracy": fed_int8,
         "encoding": encodings[0].name},
        shipped, timings)
    report.write(result)
    return result

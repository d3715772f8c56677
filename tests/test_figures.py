"""One set of figures: `inspect`, `convert`, `run` and `bench` report the same weight bytes with the same
split (raw weights, requantization records, layout), and a proxy run is reported and checked against the
real board's flash, RAM and clock.

How one number reaches all of them: `convert` and the firmware project take ``model.weight_bytes`` of the
compiled model (codegen), `run` and `bench` put ``measurement.weight_bytes(fw.model)`` into
Measurement.flash (its ``weights`` and ``weight_bytes``), and `inspect` calls the same function on the same
compilation. The seven shared models are checked at that seam (the model a firmware build renders, and the
figure its project manifest records) without building seven images; one small model then goes through the
real `run --json` and `bench --json` (built and run in QEMU) and must match `inspect --json` field for field."""
from __future__ import annotations

import dataclasses
import json

import pytest

from tinydeploy.analysis.inspect import inspect
from tinydeploy.analysis.measurement import Measurement, weight_bytes
from tinydeploy.pipeline import build_firmware
from tinydeploy.platforms import boards

from helpers import SHARED_MODEL_NAMES, assert_clean_failure, shared_model, tinydeploy

BIG_BOARD = "mps2-an386"                 # 4 MB of flash and RAM: every shared model renders for it
SMALL = "tflm/hello_world_int8.tflite"
PROXIED = "nucleo_f446re"                # no emulator: runs on netduinoplus2 (1 MB flash), has 512 KB itself
AD01 = "mlperf-tiny/ad01_int8.tflite"
AD01_TOO_MANY_VECTORS = 420              # 271 KB of weights + 420 x 640 B of vectors: > 512 KB, < 1 MB


def _inspect_json(model, *extra) -> dict:
    proc = tinydeploy("inspect", model, "--json", "-", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", SHARED_MODEL_NAMES)
def test_inspect_and_the_firmware_build_agree_on_weight_bytes(name, tmp_path):
    model = shared_model(name)
    seen = inspect(model)
    fw = build_firmware(model, BIG_BOARD, tmp_path / "fw", vectors=1, testset=False, build=False)   # what run builds
    measured = weight_bytes(fw.model)                          # what measure() writes into run and bench JSON
    manifest = json.loads((fw.project / "tinydeploy.json").read_text())["model"]["weight_bytes"]     # codegen's
    assert seen.weights == measured
    assert measured.total == fw.model.weight_bytes == manifest
    assert measured.raw + measured.requantization + measured.layout == measured.total
    assert min(measured.raw, measured.requantization, measured.layout) >= 0
    assert seen.weights.raw <= seen.tflite_constant_bytes      # the rest are folded into operator parameters
    assert sum(row["weight_bytes"] for row in seen.rows) == measured.total
    assert _inspect_json(model)["weight_bytes"] == dataclasses.asdict(measured)


def test_kws_weight_bytes_explained():
    """The issue's example: 24,376 bytes of constants in the .tflite, 35,904 in flash."""
    seen = inspect(shared_model("mlperf-tiny/kws_ref_model.tflite"))
    assert seen.tflite_constant_bytes == sum(t["bytes"] for t in seen.tensors if t["constant"])
    assert seen.weights.total == 35_904 and seen.tflite_constant_bytes == 24_376
    assert seen.weights.requantization > 0 and seen.weights.layout > 0


def test_inspect_board_fit_check():
    data = _inspect_json(shared_model("mlperf-tiny/kws_ref_model.tflite"), "--board", "NUCLEO-F446RE")
    fit = data["fit"]
    board = boards.get(PROXIED)
    assert fit["board"] == PROXIED and fit["runtime"] == "aot" and fit["fits"] is True
    assert fit["flash_capacity"] == board.flash.size and fit["ram_capacity"] == board.ram.size
    assert fit["flash_needed"] == data["weight_bytes"]["total"]
    assert fit["ram_needed"] == data["arena"]["planned"] + fit["output_copy"] + board.stack
    # vww's arena and stack exceed the micro:bit's 16 KB of RAM
    small = _inspect_json(shared_model("mlperf-tiny/vww_96_int8.tflite"), "--board", "microbit")["fit"]
    assert small["fits"] is False and small["ram_needed"] > small["ram_capacity"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("figures")


@pytest.fixture(scope="module")
def small_run(work):
    """`run --json` of the small model: (the process, its Measurement JSON)."""
    proc = tinydeploy("run", shared_model(SMALL), "--vectors", 2, "--json", work / "run.json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads((work / "run.json").read_text())


@pytest.mark.firmware
def test_run_and_bench_report_what_inspect_reports(work, small_run):
    model = shared_model(SMALL)
    inspected = _inspect_json(model)
    run, ran = small_run
    bench = tinydeploy("bench", model, "--json", work / "bench.json", cwd=work)
    assert bench.returncode == 0, bench.stderr
    [benched] = json.loads((work / "bench.json").read_text())["measurements"]
    for m in (ran, benched):
        assert m["flash"]["weight_bytes"] == inspected["weight_bytes"]
        assert m["flash"]["weights"] == inspected["weight_bytes"]["total"]
        assert m["flash"]["code"] + m["flash"]["weights"] + m["flash"]["vectors"] == m["flash"]["total"]
        assert m["ram"]["tflm_arena"] == inspected["arena"]["tflm_tensor_arena"]
    raw = f"{inspected['weight_bytes']['raw']:,}"
    assert raw in run.stdout and raw in bench.stdout            # the split is printed where weights are


@pytest.mark.firmware
def test_a_proxy_run_reports_the_real_board(work):
    run = tinydeploy("run", shared_model(SMALL), "--board", PROXIED, "--vectors", 2, "--json", work / "proxy.json",
                     cwd=work)
    assert run.returncode == 0, run.stderr
    m = Measurement.from_json(json.loads((work / "proxy.json").read_text()))
    real = boards.get(PROXIED)
    assert m.board == PROXIED and m.ran_on == real.proxy
    assert m.flash.capacity == real.flash.size and m.ram.capacity == real.ram.size
    assert m.estimated_time.clock_hz == real.clock_hz
    assert f"on {real.proxy}'s {real.core} core" in m.instructions.note and "not cycles" in m.instructions.note
    assert f"of {real.flash.size:,}" in run.stdout and f"of {real.ram.size:,}" in run.stdout
    assert f"instructions counted on {real.proxy}'s" in run.stdout


@pytest.mark.firmware
def test_a_proxy_run_is_refused_when_the_image_exceeds_the_real_board(work):
    """The image fits the proxy's 1 MB of flash, not the F446RE's 512 KB: one line, before it runs."""
    proc = tinydeploy("run", shared_model(AD01), "--board", PROXIED, "--vectors", AD01_TOO_MANY_VECTORS, cwd=work)
    assert_clean_failure(proc, "bytes of flash but nucleo_f446re has 524,288", "emulated proxy netduinoplus2")
    assert proc.returncode == 2


@pytest.mark.firmware
def test_measurements_from_before_the_new_fields_still_load(small_run):
    data = json.loads(json.dumps(small_run[1]))
    for part, key in (("flash", "weight_bytes"), ("flash", "capacity"), ("ram", "capacity")):
        del data[part][key]
    m = Measurement.from_json(data)
    assert m.flash.weight_bytes is None and m.flash.capacity is None and m.ram.capacity is None

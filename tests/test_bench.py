"""`tinydeploy bench`: figures from a real emulator run, per-layer profile, regression gate."""
from __future__ import annotations

import json

import pytest

from helpers import assert_clean_failure, shared_model, tinydeploy

pytestmark = pytest.mark.firmware




@pytest.fixture(scope="module")
def bench_json(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    proc = tinydeploy("bench", shared_model("mlperf-tiny/ad01_int8.tflite"), "--per-layer", "--json", work / "b.json",
                      cwd=work)
    assert proc.returncode == 0, proc.stderr
    return work, json.loads((work / "b.json").read_text()), proc.stdout


def test_figures_and_layers(bench_json):
    _, data, stdout = bench_json
    assert data["schema"] == "tinydeploy.bench" and data["version"] == 1 and data["input"] == "xorshift32 state 1"
    [entry] = data["measurements"]
    assert entry["schema"] == "tinydeploy.measurement" and entry["version"] == 1
    assert entry["model"] == "ad01_int8" and entry["board"] == "mps2-an386" and entry["ran_on"] == "mps2-an386"
    assert entry["runtime"] == "aot" and entry["vectors"] == 1 and entry["cycles"] is None
    instructions = entry["instructions"]
    assert instructions["min"] == instructions["median"] == instructions["max"]      # one vector
    assert "-icount" in instructions["note"] and "not cycles" in instructions["note"]
    assert entry["macs"] == 264192 and instructions["median"] > entry["macs"]
    assert entry["estimated_time"]["clock_hz"] == 25_000_000 and "estimate" in entry["estimated_time"]["note"]
    assert entry["estimated_time"]["ms"] == pytest.approx(1000 * instructions["median"] / 25e6)
    flash, ram = entry["flash"], entry["ram"]
    assert flash["code"] + flash["weights"] + flash["vectors"] == flash["total"]
    assert flash["vectors"] == 640 and flash["weights"] > 260_000
    assert ram["arena"] <= ram["tflm_arena"] and ram["total"] >= ram["arena"] + ram["stack"]
    assert entry["mismatches"] == {"values": 0, "vectors": 0}
    layers = entry["layers"]
    assert [layer["op"] for layer in layers] == ["FULLY_CONNECTED"] * 10
    assert [layer["index"] for layer in layers] == list(range(10))
    assert sum(layer["macs"] for layer in layers) == entry["macs"]
    assert layers[0]["output_shape"] == [1, 128] and layers[-1]["output_shape"] == [1, 640]
    assert sum(layer["share"] for layer in layers) == pytest.approx(1.0)
    # the layers account for the inference; the rest is invoke()'s copy of 640 bytes in and out
    assert 0.97 * instructions["median"] < sum(layer["instructions"] for layer in layers) < instructions["median"]
    assert ram["arena_used"] == ram["arena"]           # the AOT runtime uses all of its static arena
    assert "not cycles" in stdout


def test_bench_file_loads_as_measurements(bench_json):
    work, data, _ = bench_json
    from tinydeploy.analysis.bench import load_bench
    [m] = load_bench(work / "b.json")
    assert m.instructions.median == data["measurements"][0]["instructions"]["median"]
    assert m.flash_without_vectors == m.flash.code + m.flash.weights
    assert len(m.layers) == 10 and m.layers[0].kernel == "td_fully_connected_s8"


def test_baseline_gate(bench_json):
    work, data, _ = bench_json
    same = tinydeploy("bench", shared_model("mlperf-tiny/ad01_int8.tflite"), "--baseline", work / "b.json", cwd=work)
    assert same.returncode == 0 and "no regression" in same.stdout
    faster = json.loads(json.dumps(data))
    faster["measurements"][0]["instructions"]["median"] = int(data["measurements"][0]["instructions"]["median"] * 0.9)
    (work / "faster.json").write_text(json.dumps(faster))
    slower = tinydeploy("bench", shared_model("mlperf-tiny/ad01_int8.tflite"), "--baseline", work / "faster.json",
                        cwd=work)
    assert slower.returncode == 1
    regressed = [line for line in slower.stderr.splitlines() if line.startswith("regression:")]
    assert len(regressed) == 1, slower.stderr            # only the doctored figure
    assert regressed[0].startswith("regression: ad01_int8 on mps2-an386: instructions")


_DROP = object()


def _doctor(data, keys, value):
    *path, last = keys
    for key in path:
        data = data[key]
    if value is _DROP:
        del data[last]
    else:
        data[last] = value


@pytest.mark.parametrize("keys,value,needle", [
    (("version",), 2, "bench file version 2"),
    (("schema",), "tinydeploy bench", "not a tinydeploy bench file"),
    (("measurements", 0, "instructions", "median"), "fast", "measurements[0]: instructions.median: expected a number"),
    (("measurements", 0, "ram", "arena"), _DROP, "measurements[0]: missing field ram.arena"),
    (("measurements", 0, "flash", "bytes"), 1, "measurements[0]: unknown field flash.bytes"),
])
def test_a_bad_baseline_is_refused_in_one_line(bench_json, keys, value, needle):
    """Before anything is built: a baseline that is not a valid bench file is one line, exit 2."""
    work, data, _ = bench_json
    doctored = json.loads(json.dumps(data))
    _doctor(doctored, keys, value)
    (work / "bad.json").write_text(json.dumps(doctored))
    proc = tinydeploy("bench", shared_model("mlperf-tiny/ad01_int8.tflite"), "--baseline", work / "bad.json", cwd=work)
    assert_clean_failure(proc, needle, "regenerate")
    assert proc.returncode == 2


def test_a_baseline_from_before_the_schema_is_refused(tmp_path):
    (tmp_path / "old.json").write_text(json.dumps({"tool": "tinydeploy bench", "results": [{"model": "ad01_int8"}]}))
    proc = tinydeploy("bench", shared_model("mlperf-tiny/ad01_int8.tflite"), "--baseline", tmp_path / "old.json",
                      cwd=tmp_path)
    assert_clean_failure(proc, "not a tinydeploy bench file", "regenerate it with `tinydeploy bench")
    assert proc.returncode == 2

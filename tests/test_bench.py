"""`tinydeploy bench`: figures from a real emulator run, per-layer profile, regression gate."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import shared_model, tinydeploy

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
    [entry] = data["results"]
    assert entry["model"] == "ad01_int8" and entry["board"] == "mps2-an386"
    assert entry["macs"] == 264192 and entry["instructions"] > entry["macs"]
    assert entry["arena_bytes"] <= entry["reference_arena_bytes"]
    assert entry["code_bytes"] + entry["weight_bytes"] == entry["flash_bytes"]
    layers = entry["layers"]
    assert [layer["op"] for layer in layers] == ["FULLY_CONNECTED"] * 10
    # the layers account for the inference; the rest is invoke()'s copy of 640 bytes in and out
    assert 0.97 * entry["instructions"] < sum(layer["instructions"] for layer in layers) < entry["instructions"]
    assert entry["tflm"]["cmsis_instructions"] == 583248
    assert "against TFLite Micro" in stdout and "not cycles" in stdout


def test_baseline_gate(bench_json):
    work, data, _ = bench_json
    same = tinydeploy("bench", shared_model("mlperf-tiny/ad01_int8.tflite"), "--baseline", work / "b.json", cwd=work)
    assert same.returncode == 0 and "no regression" in same.stdout
    faster = json.loads(json.dumps(data))
    faster["results"][0]["instructions"] = int(data["results"][0]["instructions"] * 0.9)
    (work / "faster.json").write_text(json.dumps(faster))
    slower = tinydeploy("bench", shared_model("mlperf-tiny/ad01_int8.tflite"), "--baseline", work / "faster.json",
                        cwd=work)
    assert slower.returncode == 1
    assert "regression: ad01_int8 on mps2-an386: instructions" in slower.stderr

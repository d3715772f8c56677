"""Bad input: one clear line on stderr, a non-zero exit, no traceback, nothing half-written."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.tflite_builder import ModelBuilder, random_fc_layer
from helpers import assert_clean_failure, shared_model, tinydeploy




def write_model(b: ModelBuilder, x: int, y: int, path: Path) -> Path:
    path.write_bytes(b.finish([x], [y]))
    return path




def test_missing_file(tmp_path):
    proc = tinydeploy("convert", tmp_path / "nope.tflite", "-o", tmp_path / "out")
    assert_clean_failure(proc, "nope.tflite", "no such file")
    assert not (tmp_path / "out").exists()


def test_unreadable_file(tmp_path):
    path = tmp_path / "folder.tflite"          # exists, but cannot be read as a file (even by root)
    path.mkdir()
    proc = tinydeploy("inspect", path)
    assert_clean_failure(proc, "cannot read")


def test_not_a_flatbuffer(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("this is not a model at all")
    proc = tinydeploy("build", path, "-o", tmp_path / "proj")
    assert_clean_failure(proc, "not a TFLite flatbuffer")
    assert not (tmp_path / "proj").exists()


def test_corrupt_flatbuffer(tmp_path):
    raw = bytearray(shared_model("tflm/hello_world_int8.tflite").read_bytes())
    raw[8:200] = b"\xff" * 192
    path = tmp_path / "corrupt.tflite"
    path.write_bytes(bytes(raw))
    proc = tinydeploy("convert", path, "-o", tmp_path / "out")
    assert_clean_failure(proc, "corrupt.tflite")
    assert not (tmp_path / "out").exists()


def test_float_model(tmp_path):
    b = ModelBuilder()
    x = b.tensor((1, 4), np.float32)
    w = b.tensor((3, 4), np.float32, data=np.ones((3, 4), np.float32))
    bias = b.tensor((3,), np.float32, data=np.zeros(3, np.float32))
    y = b.tensor((1, 3), np.float32)
    b.fully_connected(x, w, bias, y)
    proc = tinydeploy("convert", write_model(b, x, y, tmp_path / "float.tflite"), "-o", tmp_path / "out")
    assert_clean_failure(proc, "operator #0 FULLY_CONNECTED", "float32", "not fully int8-quantized")
    assert not (tmp_path / "out").exists()


def _model_with_unsupported_op(tmp_path) -> Path:
    """FULLY_CONNECTED then HARD_SWISH, an op tinydeploy has no kernel for."""
    b = ModelBuilder()
    x = b.tensor((1, 8), np.int8, 0.05, 0)
    h = random_fc_layer(b, np.random.default_rng(0), x, 8, per_channel=False, activation=0)
    y = b.tensor((1, 8), np.int8, 0.05, 0)
    b.unary("HARD_SWISH", h, y)
    return write_model(b, x, y, tmp_path / "hard_swish.tflite")


def test_unsupported_op(tmp_path):
    proc = tinydeploy("build", _model_with_unsupported_op(tmp_path), "-o", tmp_path / "proj")
    assert_clean_failure(proc, "operator #1 HARD_SWISH", "not supported")
    assert not (tmp_path / "proj").exists()


def test_unsupported_fused_activation(tmp_path):
    b = ModelBuilder()
    x = b.tensor((1, 5, 5, 2), np.int8, 0.05, 0)
    w = b.tensor((3, 3, 3, 2), np.int8, 0.01, 0, np.ones((3, 3, 3, 2), np.int8))
    bias = b.tensor((3,), np.int32, 0.0005, 0, np.zeros(3, np.int32))
    y = b.tensor((1, 5, 5, 3), np.int8, 0.1, 0)
    b.conv_2d(x, w, bias, y, activation=4)          # TANH fused into the convolution
    proc = tinydeploy("convert", write_model(b, x, y, tmp_path / "conv_tanh.tflite"), "-o", tmp_path / "out")
    assert_clean_failure(proc, "operator #0 CONV_2D", "fused activation TANH is not supported")
    assert not (tmp_path / "out").exists()


def test_unsupported_broadcast_rank(tmp_path):
    b = ModelBuilder()
    x = b.tensor((1, 2, 2, 2, 2), np.int8, 0.05, 0)
    y = b.tensor((1, 2, 2, 2, 2), np.int8, 0.1, 0)
    b.add(x, x, y)
    proc = tinydeploy("build", write_model(b, x, y, tmp_path / "add5d.tflite"), "-o", tmp_path / "proj")
    assert_clean_failure(proc, "operator #0 ADD", "more than 4 dimensions")
    assert not (tmp_path / "proj").exists()


def test_unknown_board(tmp_path):
    proc = tinydeploy("build", shared_model("tflm/hello_world_int8.tflite"), "--board", "pdp11", "-o", tmp_path / "p")
    assert_clean_failure(proc, "unknown board 'pdp11'", "mps2-an386")
    assert not (tmp_path / "p").exists()


def test_model_too_big_for_board(tmp_path):
    proc = tinydeploy("build", shared_model("mlperf-tiny/ad01_int8.tflite"), "--board", "lm3s6965evb", "-o", tmp_path / "p")
    assert_clean_failure(proc, "flash", "262144")
    assert not (tmp_path / "p").exists()


def test_csv_without_label_column(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,kind\n1,2,x\n3,4,y\n")
    proc = tinydeploy("train", "--dataset", csv, "--label", "class", "-o", tmp_path / "m.keras")
    assert_clean_failure(proc, "no column 'class'", "kind")
    assert not (tmp_path / "m.keras").exists()


def test_failed_rebuild_keeps_previous_output(tmp_path):
    """A failing convert leaves an earlier good output untouched."""
    out = tmp_path / "lib"
    assert tinydeploy("convert", shared_model("tflm/hello_world_int8.tflite"), "-o", out).returncode == 0
    before = sorted(p.name for p in out.iterdir())
    proc = tinydeploy("convert", _model_with_unsupported_op(tmp_path), "-o", out)
    assert proc.returncode != 0
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_board_folder_without_boards(tmp_path):
    assert_clean_failure(tinydeploy("boards", "--dir", tmp_path / "empty"), "no board files")

"""TensorFlow Lite Micro as the second runtime: firmware rendered around TFLM's interpreter from the
tree in ../shared/tflm, built through the same PlatformIO platform, run in QEMU and checked byte for
byte against the reference interpreter; `--runtime auto` falling back to it; clear lines without it.

All TFLM firmware tests share one xdist group, so TFLM's sources compile once per board (its
objects go to the session's build cache) rather than once per worker."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tinydeploy.core.errors import BadInput, MissingTool
from tinydeploy.ir import graph as graph_mod
from tinydeploy.ir.schema import generated as schema
from tinydeploy.pipeline import build_firmware, run_firmware
from tinydeploy.runtimes import load_model, tflm

from helpers import ROOT, SHARED_MODEL_NAMES, shared_model, tinydeploy, unavailable, assert_clean_failure
from helpers.tflite_builder import ModelBuilder, random_fc_layer

TFLM_TREE = Path(os.environ.get("TINYDEPLOY_TFLM", ROOT.parent / "shared" / "tflm"))
KWS = "mlperf-tiny/kws_ref_model.tflite"
# Measured with this tree on mps2-an386 (../shared/tflm/README.md), and what TFLM must reproduce here.
KWS_TFLM_INSTRUCTIONS = 7_697_718
KWS_TFLM_ARENA_USED = 22_820
FIGURE_TOLERANCE = 0.001


@pytest.fixture(scope="module")
def tree() -> Path:
    if not (TFLM_TREE / tflm.RESOLVER_HEADER).exists():
        unavailable(f"no TensorFlow Lite Micro tree at {TFLM_TREE}")
    return TFLM_TREE


_built = {}


def tflm_firmware(tmp_path_factory, tree: Path, model: Path, board: str, vectors: int = 3):
    key = (str(model), board)
    if key not in _built:
        out = tmp_path_factory.mktemp("tflm") / f"{model.stem}-{board}"
        _built[key] = build_firmware(model, board, out, vectors, runtime="tflm", tflm_dir=tree, testset=False)
    return _built[key]


def test_resolver_registers_exactly_the_models_ops(tree):
    model = load_model(shared_model(KWS), "tflm", tree)
    used = {op.op for op in model.graph.operators}
    assert len(model.ops) == len(used)
    methods = tflm.resolver_methods(tree)
    assert sorted(model.ops) == sorted(methods[name.replace("_", "")] for name in used)
    sources = tflm.kernel_sources(tree, used)
    assert f"{tflm.KERNELS_DIR}/cmsis_nn/conv.cc" in sources            # CMSIS-NN's, as TFLM's make picks
    assert not any(s.endswith(("/svdf.cc", "/unidirectional_sequence_lstm.cc", "kernel_runner.cc")) for s in sources)
    assert model.arena_bytes % tflm.ARENA_ALIGNMENT == 0
    assert model.arena_bytes >= model.reference_usage["total"] + tflm.ARENA_MARGIN_MIN_BYTES


def test_library_has_the_same_c_api(tree, tmp_path):
    model = load_model(shared_model(KWS), "tflm", tree)
    model.write_library(tmp_path / "lib")
    header = (tmp_path / "lib" / f"{model.name}.h").read_text()
    for symbol in ("_init(void)", "_arena_used(void)", "_invoke(", "_input(void)", "_output(void)", "_run(void)"):
        assert model.name + symbol in header
    source = (tmp_path / "lib" / f"{model.name}.cc").read_text()
    assert f"MicroMutableOpResolver<{len(model.ops)}>" in source
    assert all(f"resolver->{op}()" in source for op in model.ops)


def test_no_tflm_tree_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYDEPLOY_TFLM", raising=False)
    with pytest.raises(MissingTool, match="--tflm DIR or set TINYDEPLOY_TFLM"):
        load_model(shared_model(KWS), "tflm")
    env = {k: v for k, v in os.environ.items() if k != "TINYDEPLOY_TFLM"}
    proc = tinydeploy("build", shared_model(KWS), "--runtime", "tflm", "-o", tmp_path / "p", env=env)
    assert proc.returncode == 2
    assert_clean_failure(proc, "TINYDEPLOY_TFLM")
    proc = tinydeploy("build", shared_model(KWS), "--runtime", "tflm", "--tflm", tmp_path, "-o", tmp_path / "p")
    assert proc.returncode == 2
    assert_clean_failure(proc, "not a TFLite Micro tree")
    assert not (tmp_path / "p").exists()


def test_non_arm_board_is_refused_before_rendering(tree, tmp_path):
    with pytest.raises(BadInput, match="CMSIS-NN kernels, which build only for Arm"):
        build_firmware(shared_model(KWS), "riscv32-virt", tmp_path / "p", 2, runtime="tflm", tflm_dir=tree)
    assert not (tmp_path / "p").exists()


def hard_swish_model(path: Path) -> Path:
    """FULLY_CONNECTED -> HARD_SWISH: an op TFLite Micro runs and tinydeploy's AOT compiler does not."""
    rng = np.random.default_rng(7)
    b = ModelBuilder()
    x = b.tensor((1, 16), np.int8, 0.05, 3)
    hidden = random_fc_layer(b, rng, x, 8, per_channel=False, activation=0)
    out = b.tensor((1, 8), np.int8, 0.03, -20)
    b.operator(schema().BuiltinOperator.HARD_SWISH, [hidden], [out])
    path.write_bytes(b.finish([x], [out]))
    return path



@pytest.mark.firmware
@pytest.mark.xdist_group("tflm")
@pytest.mark.parametrize("rel", SHARED_MODEL_NAMES)
def test_tflm_firmware_is_bit_exact(tmp_path_factory, tree, rel):
    """`run --runtime tflm` on mps2-an386: TFLM's own firmware matches its reference interpreter."""
    fw = tflm_firmware(tmp_path_factory, tree, shared_model(rel), "mps2-an386")
    result = run_firmware(fw)
    assert result.exit_status == 0 and len(result.outputs) == 3
    assert result.mismatches == []
    np.testing.assert_array_equal(result.outputs, result.expected)
    assert result.arena_used is not None and 0 < result.arena_used <= fw.model.arena_bytes
    assert fw.size.flash > fw.model.weight_bytes == len(graph_mod.load(shared_model(rel)).flatbuffer)


@pytest.mark.firmware
@pytest.mark.xdist_group("tflm")
def test_tflm_reproduces_its_published_kws_figures(tmp_path_factory, tree):
    """Within 0.1% of ../shared/tflm/README.md's measurement: same code, same core, same input."""
    fw = tflm_firmware(tmp_path_factory, tree, shared_model(KWS), "mps2-an386")
    result = run_firmware(fw)
    assert result.instructions[0] == pytest.approx(KWS_TFLM_INSTRUCTIONS, rel=FIGURE_TOLERANCE)
    assert result.arena_used == pytest.approx(KWS_TFLM_ARENA_USED, rel=FIGURE_TOLERANCE)


@pytest.mark.firmware
@pytest.mark.xdist_group("tflm")
def test_auto_falls_back_to_tflm_for_an_op_only_it_has(tmp_path, tree):
    model = hard_swish_model(tmp_path / "hard_swish.tflite")
    said = []
    fw = build_firmware(model, "mps2-an386", tmp_path / "p", 4, runtime="auto", tflm_dir=tree, say=said.append)
    assert fw.model.runtime == "tflm"
    assert len(said) == 1 and "runtime: tflm" in said[0] and "HARD_SWISH" in said[0]
    result = run_firmware(fw)
    assert result.mismatches == [] and len(result.outputs) == 4
    np.testing.assert_array_equal(result.outputs, result.expected)
    kws = load_model(shared_model(KWS), "auto", tree, said.append)
    assert kws.runtime == "aot" and len(said) == 1                 # AOT takes it: nothing to say


@pytest.mark.firmware
@pytest.mark.xdist_group("tflm")
def test_bench_vs_tflm_side_by_side(tmp_path, tree):
    proc = tinydeploy("bench", shared_model("tflm/hello_world_int8.tflite"), "--vs", "tflm", "--tflm", tree,
                      "--json", tmp_path / "b.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tinydeploy AOT / TensorFlow Lite Micro" in proc.stdout
    from tinydeploy.analysis.bench import load_bench, side_by_side
    measured = load_bench(tmp_path / "b.json")
    assert [m.runtime for m in measured] == ["aot", "tflm"]
    [(aot, theirs)] = side_by_side(measured)
    assert aot.mismatches.values == theirs.mismatches.values == 0
    assert aot.instructions.median < theirs.instructions.median
    assert theirs.ram.arena_used <= theirs.ram.arena

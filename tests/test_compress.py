"""Make it fit: every compression technique on real (small) training runs, checked for what it must
guarantee -- exact zeros, smaller tensors, reachable int8/int4 conversion, operators the compiler
takes -- with the measured figures printed (run with -s to see them), never ranked.

Training is bounded (a 5-epoch baseline, 1-2 fine-tuning epochs, 400-sample synthetic windows and
images), so the file runs in about two minutes on two cores."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tinydeploy.core.errors import BadInput
from tinydeploy.ml import data

from helpers import assert_clean_failure, require_module, tinydeploy

INT4_POINTS = 0.05        # int4 weights stay within 5 accuracy points of the same baseline at int8


# --- datasets (no TensorFlow) ----------------------------------------------------------------------

def windows_npz(path, n=400, t=24, c=3, seed=0):
    """Sensor windows: class k is a sine of k+1 periods per window, random phase, noisy."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    steps = np.arange(t) / t
    x = np.stack([np.stack([np.sin(2 * np.pi * (k + 1) * steps + rng.uniform(0, 6.3)) * (1 + ch) for ch in range(c)],
                           -1) for k in y])
    np.savez(path, x=(x + 0.3 * rng.standard_normal(x.shape)).astype(np.float32), y=y)
    return path


def images_npz(path, n=400, size=12, seed=0):
    """Images: horizontal stripes, vertical stripes, a checkerboard or nothing, noisy."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    h = np.arange(size)
    patterns = [np.tile((h % 2)[:, None], (1, size)), np.tile((h % 2)[None, :], (size, 1)),
                (h[:, None] + h[None, :]) % 2, np.zeros((size, size))]
    x = np.stack([patterns[k] for k in y])[..., None] + 0.4 * rng.standard_normal((n, size, size, 1))
    np.savez(path, x=x.astype(np.float32), y=y)
    return path


def test_npz_windows_and_images_standardised_per_channel(tmp_path):
    ds = data.load(str(windows_npz(tmp_path / "w.npz")))
    assert ds.input_shape == (24, 3) and ds.x_train.shape == (320, 24, 3) and ds.x_test.shape == (80, 24, 3)
    np.testing.assert_allclose(ds.x_train.mean(axis=(0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(axis=(0, 1)), 1, atol=1e-4)
    assert ds.mean.shape == (3,) and ds.classes == ["0", "1", "2"]
    img = data.load(str(images_npz(tmp_path / "i.npz")))
    assert img.input_shape == (12, 12, 1) and img.num_features == 144
    assert data.load("iot-sensors").input_shape == (20,)


def test_npz_labels_are_remapped(tmp_path):
    np.savez(tmp_path / "l.npz", x=np.random.default_rng(0).standard_normal((50, 4)), y=np.repeat([3, 7], 25))
    ds = data.load(str(tmp_path / "l.npz"))
    assert ds.classes == ["3", "7"] and set(np.unique(ds.y_train)) <= {0, 1}


@pytest.mark.parametrize("arrays, needle", [
    ({"x": np.zeros((10, 3))}, "no array y"),
    ({"x": np.zeros(10), "y": np.zeros(10, int)}, "expected [n, features]"),
    ({"x": np.zeros((10, 3)), "y": np.zeros(9, int)}, "one label per sample"),
    ({"x": np.zeros((10, 3)), "y": np.linspace(0, 1, 10)}, "integer class labels"),
    ({"x": np.full((10, 3), np.nan), "y": np.arange(10) % 2}, "NaN"),
    ({"x": np.zeros((10, 3)), "y": np.zeros(10, int)}, "only 1 class"),
])
def test_bad_npz_is_one_clear_error(tmp_path, arrays, needle):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(BadInput) as info:
        data.load(str(tmp_path / "bad.npz"))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_single_array_is_not_an_npz(tmp_path):
    with open(tmp_path / "one.npz", "wb") as fh:
        np.save(fh, np.zeros((10, 3)))
    with pytest.raises(BadInput, match="single array"):
        data.load(str(tmp_path / "one.npz"))


def test_bad_npz_from_the_cli(tmp_path):
    (tmp_path / "junk.npz").write_text("not a zip archive")
    proc = tinydeploy("train", "--dataset", tmp_path / "junk.npz", "-o", tmp_path / "m.keras")
    assert_clean_failure(proc, "junk.npz", "cannot read it as a NumPy .npz archive")
    assert not (tmp_path / "m.keras").exists()


# --- techniques on iot-sensors ---------------------------------------------------------------------

def report(name, **figures):
    print(f"\n[{name}] " + json.dumps(figures, default=float))


@pytest.fixture(scope="module")
def iot(tmp_path_factory):
    """The mlp baseline on iot-sensors (5 epochs) and its post-training int8 quantization."""
    require_module("tensorflow")
    from tinydeploy.ml.quantize import quantize
    from tinydeploy.ml.train import train
    root = tmp_path_factory.mktemp("iot")
    base = train("iot-sensors", "mlp", root / "baseline.keras", epochs=5)
    q = quantize(base.model_path, root / "baseline.tflite")
    report("baseline", float_accuracy=base.test_accuracy, parameters=base.parameters, int8_accuracy=q.int8_accuracy,
           tflite_bytes=q.tflite_bytes)
    return {"root": root, "train": base, "int8": q, "dataset": data.load("iot-sensors")}


def weight_tensors(tflite_path):
    """The constant weight tensor (input 1) of every FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D."""
    from tinydeploy.ir.graph import load
    g = load(tflite_path)
    return [g.tensors[op.inputs[1]] for op in g.operators
            if op.op in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")]


def assert_compiles(tflite_path):
    """Every operator is one tinydeploy supports, and the whole model compiles."""
    from tinydeploy.compiler import ops
    from tinydeploy.compiler.codegen import compile_model
    from tinydeploy.ir.graph import load
    used = {op.op for op in load(tflite_path).operators}
    assert used <= set(ops.supported_ops()), used - set(ops.supported_ops())
    compile_model(tflite_path)


def quantized(result, tmp_path, name, weights="int8"):
    from tinydeploy.ml.quantize import quantize
    q = quantize(result.model_path, tmp_path / f"{name}.tflite", weights=weights)
    return q


@pytest.mark.tensorflow
def test_magnitude_pruning_leaves_exact_zeros(iot, tmp_path):
    from tinydeploy.ml.compress.common import load_keras
    from tinydeploy.ml.compress.magnitude import PolynomialSchedule, prune_magnitude
    schedule = PolynomialSchedule(0.8, 0, 100, 0.0, 3, 10)
    assert schedule(0) == 0.0 and schedule(100) == pytest.approx(0.8) and 0 < schedule(50) < 0.8
    assert schedule(25) - schedule(0) > schedule(100) - schedule(75)            # fast first, slow near the end
    r = prune_magnitude(iot["train"].model_path, iot["dataset"], tmp_path / "pruned.keras", epochs=2, sparsity=0.6)
    assert r.sparsity == pytest.approx(0.6, abs=0.01) and r.target_sparsity == 0.6
    assert r.parameters == iot["train"].parameters and r.nonzero_parameters < 0.5 * r.parameters
    model = load_keras(r.model_path)                  # the saved kernels, not the in-memory ones
    kernels = [layer.kernel.numpy() for layer in model.layers if getattr(layer, "kernel", None) is not None]
    assert all(np.mean(k == 0) == pytest.approx(0.6, abs=0.01) for k in kernels)
    q = quantized(r, tmp_path, "pruned")
    for w in weight_tensors(q.tflite_path):           # exact zeros survive int8 (zero point 0)
        assert np.mean(w.data == 0) >= 0.59, w.name
    assert_compiles(q.tflite_path)
    report("magnitude_prune", float_accuracy=r.float_accuracy, int8_accuracy=q.int8_accuracy, sparsity=r.sparsity,
           nonzero_parameters=r.nonzero_parameters, tflite_bytes=q.tflite_bytes)


@pytest.mark.tensorflow
def test_structured_pruning_builds_a_smaller_model(iot, tmp_path):
    from tinydeploy.ml.compress.structured import prune_structured
    r = prune_structured(iot["train"].model_path, iot["dataset"], tmp_path / "narrow.keras", epochs=2, ratio=0.5)
    assert r.units_before == {"hidden_1": 32, "hidden_2": 16, "logits": 4}
    assert r.units_after == {"hidden_1": 16, "hidden_2": 8, "logits": 4}
    assert r.parameters == 20 * 16 + 16 + 16 * 8 + 8 + 8 * 4 + 4 < r.baseline_parameters
    q = quantized(r, tmp_path, "narrow")
    before = weight_tensors(iot["int8"].tflite_path)
    after = weight_tensors(q.tflite_path)
    assert len(before) == len(after)
    assert all(a.size < b.size for a, b in zip(after, before))
    assert q.tflite_bytes < iot["int8"].tflite_bytes
    assert_compiles(q.tflite_path)
    report("structured_prune", float_accuracy=r.float_accuracy, int8_accuracy=q.int8_accuracy, parameters=r.parameters,
           tflite_bytes=q.tflite_bytes)


@pytest.mark.tensorflow
def test_distillation_reports_student_with_and_without_teacher(iot, tmp_path):
    from tinydeploy.ml.compress.distill import distill
    r = distill(iot["train"].model_path, iot["dataset"], tmp_path / "student.keras", epochs=2, width=0.5,
                temperature=4.0, alpha=0.1)
    assert r.student_arch == "mlp" and r.parameters < r.teacher_parameters == iot["train"].parameters
    assert 0.25 < r.float_accuracy <= 1 and 0.25 < r.student_alone_accuracy <= 1
    assert r.teacher_accuracy == pytest.approx(iot["train"].test_accuracy, abs=1e-6)
    assert r.float_accuracy != r.student_alone_accuracy           # the teacher changed the training
    q = quantized(r, tmp_path, "student")
    assert_compiles(q.tflite_path)
    report("distill", student_accuracy=r.float_accuracy, student_alone_accuracy=r.student_alone_accuracy,
           teacher_accuracy=r.teacher_accuracy, parameters=r.parameters, int8_accuracy=q.int8_accuracy)


@pytest.mark.tensorflow
def test_distillation_loss_is_the_documented_formula():
    require_module("tensorflow")
    from tinydeploy.ml.compress.distill import distillation_loss
    rng = np.random.default_rng(1)
    student, teacher = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((5, 3)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 1, 2, 1, 0]]
    t, alpha = 3.0, 0.25

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    hard = -np.sum(labels * np.log(softmax(student)), axis=1)
    pt, ps = softmax(teacher / t), softmax(student / t)
    expected = alpha * hard + (1 - alpha) * t * t * np.sum(pt * np.log(pt / ps), axis=1)
    got = distillation_loss(3, t, alpha)(np.concatenate([labels, teacher], axis=1), student)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


@pytest.mark.tensorflow
def test_qat_converts_to_full_int8_and_is_compared_with_ptq(iot, tmp_path):
    from tinydeploy.ml.compress.qat import quantization_aware
    r = quantization_aware(iot["train"].model_path, iot["dataset"], tmp_path / "qat.keras", epochs=1)
    assert r.ptq_int8_accuracy == pytest.approx(iot["int8"].int8_accuracy, abs=1e-9)
    assert 0.25 < r.qat_int8_accuracy <= 1
    q = quantized(r, tmp_path, "qat")                 # reloaded from .keras: the fake-quant layers load
    assert q.int8_accuracy == pytest.approx(r.qat_int8_accuracy, abs=1e-9)
    from tinydeploy.ir.graph import load
    g = load(q.tflite_path)
    assert g.input_tensor().dtype == "int8" and g.output_tensor().dtype == "int8"
    weights = weight_tensors(q.tflite_path)
    assert all(w.dtype == "int8" and w.scale.size == 1 for w in weights)     # the per-tensor fake-quant grid
    assert_compiles(q.tflite_path)
    report("qat", float_accuracy=r.float_accuracy, qat_int8_accuracy=r.qat_int8_accuracy,
           ptq_int8_accuracy=r.ptq_int8_accuracy, qat_tflite_bytes=r.qat_tflite_bytes, ptq_tflite_bytes=r.ptq_tflite_bytes)


@pytest.mark.tensorflow
def test_low_rank_factorization_has_fewer_parameters(iot, tmp_path):
    from tinydeploy.ml.compress.low_rank import choose_rank, factorize
    assert choose_rank(np.array([3.0, 1.0, 1.0, 1.0]), None, 0.75) == 1       # 9/12 of the energy
    assert choose_rank(np.array([3.0, 1.0, 1.0, 1.0]), None, 0.76) == 2
    r = factorize(iot["train"].model_path, iot["dataset"], tmp_path / "lowrank.keras", epochs=2)
    assert r.ranks and r.parameters < r.baseline_parameters and r.parameter_reduction > 0
    q = quantized(r, tmp_path, "lowrank")
    from tinydeploy.ir.graph import load
    assert sum(op.op == "FULLY_CONNECTED" for op in load(q.tflite_path).operators) == 3 + len(r.ranks)
    assert_compiles(q.tflite_path)
    fixed = factorize(iot["train"].model_path, iot["dataset"], tmp_path / "rank4.keras", epochs=0, rank=4)
    assert fixed.ranks == {"hidden_1": 4, "hidden_2": 4} and fixed.kept == ["logits"]
    report("low_rank", float_accuracy=r.float_accuracy, int8_accuracy=q.int8_accuracy, ranks=r.ranks,
           parameters=r.parameters, parameter_reduction=r.parameter_reduction, tflite_bytes=q.tflite_bytes,
           rank4_without_fine_tuning=fixed.float_accuracy)


@pytest.mark.tensorflow
def test_int4_weights_are_int4_and_run_in_the_reference(iot, tmp_path):
    from tinydeploy.ml.compress.int4 import int4_weights
    from tinydeploy.ml.quantize import tflite_accuracy
    r = int4_weights(iot["train"].model_path, iot["dataset"], tmp_path / "w4.keras", epochs=1)
    q = quantized(r, tmp_path, "w4", weights="int4")
    weights = weight_tensors(q.tflite_path)
    assert len(weights) == 3 and all(w.dtype == "int4" and w.scale.size == 1 for w in weights)
    assert q.weights == "int4" and q.tflite_bytes < iot["int8"].tflite_bytes
    accuracy, _ = tflite_accuracy(q.tflite_path.read_bytes(), iot["dataset"])      # the reference runs it
    assert accuracy == q.int8_accuracy == pytest.approx(r.int4_accuracy, abs=1e-9)
    assert abs(q.int8_accuracy - iot["int8"].int8_accuracy) <= INT4_POINTS
    back = quantized(r, tmp_path, "w4_as_int8", weights="int8")       # the same model at 8 bits
    assert all(w.dtype == "int8" for w in weight_tensors(back.tflite_path))
    report("int4", float_accuracy=r.float_accuracy, int4_accuracy=q.int8_accuracy, tflite_bytes=q.tflite_bytes,
           baseline_int8_accuracy=iot["int8"].int8_accuracy, baseline_int8_bytes=iot["int8"].tflite_bytes)


@pytest.mark.tensorflow
def test_quantize_weights_int4_from_the_cli(iot, tmp_path):
    out = tmp_path / "cli_int4.tflite"
    proc = tinydeploy("quantize", iot["train"].model_path, "-o", out, "--weights", "int4")
    assert proc.returncode == 0, proc.stderr
    assert "int4 weights" in proc.stdout and all(w.dtype == "int4" for w in weight_tensors(out))
    proc = tinydeploy("quantize", iot["train"].model_path, "-o", tmp_path / "x.tflite", "--weights", "int3")
    assert_clean_failure(proc, "int3", "int8, int4")


@pytest.mark.tensorflow
def test_make_variant_entry_point(iot, tmp_path):
    from tinydeploy.ml.compress.defaults import DEFAULTS
    from tinydeploy.ml.compress.variants import TECHNIQUES, make_variant
    assert TECHNIQUES == ("baseline", "magnitude_prune", "structured_prune", "distill", "qat", "low_rank", "int4")
    assert set(DEFAULTS) == set(TECHNIQUES)
    base = make_variant("baseline", {}, "iot-sensors", None, iot["train"].model_path, tmp_path / "b.keras", epochs=1)
    assert base.model_path.exists() and data.spec_path(base.model_path).exists()
    assert base.float_accuracy == pytest.approx(iot["train"].test_accuracy, abs=1e-6) and base.weights == "int8"
    v = make_variant("structured_prune", {"ratio": 0.25}, "iot-sensors", None, iot["train"].model_path,
                     tmp_path / "s.keras", epochs=1)
    assert v.params == {**DEFAULTS["structured_prune"], "ratio": 0.25}
    assert v.notes["units_after"]["hidden_1"] == 24 and v.parameters < iot["train"].parameters
    assert data.load_for_model(v.model_path).x_test.shape == (2000, 20)
    with pytest.raises(BadInput, match="no parameter sparsity"):
        make_variant("low_rank", {"sparsity": 0.5}, "iot-sensors", None, iot["train"].model_path, tmp_path / "x.keras", 1)
    with pytest.raises(BadInput, match="unknown technique"):
        make_variant("hashing", {}, "iot-sensors", None, iot["train"].model_path, tmp_path / "x.keras", 1)


# --- conv1d and dscnn on synthetic windows and images ------------------------------------------------

@pytest.mark.tensorflow
def test_conv1d_converts_to_supported_ops_and_prunes(tmp_path):
    require_module("tensorflow")
    from tinydeploy.ir.graph import load
    from tinydeploy.ml.compress.magnitude import prune_magnitude
    from tinydeploy.ml.compress.structured import prune_structured
    from tinydeploy.ml.quantize import quantize
    from tinydeploy.ml.train import train
    npz = str(windows_npz(tmp_path / "w.npz"))
    base = train(npz, "conv1d", tmp_path / "c1.keras", epochs=3)
    q = quantize(base.model_path, tmp_path / "c1.tflite")
    assert [op.op for op in load(q.tflite_path).operators] == [
        "RESHAPE", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert_compiles(q.tflite_path)
    ds = data.load(npz)
    narrow = prune_structured(base.model_path, ds, tmp_path / "c1n.keras", epochs=1, ratio=0.5)
    assert narrow.units_after == {"conv_1": 8, "conv_2": 16, "logits": 3} and narrow.parameters < base.parameters
    qn = quantize(narrow.model_path, tmp_path / "c1n.tflite")
    assert_compiles(qn.tflite_path)
    sparse = prune_magnitude(base.model_path, ds, tmp_path / "c1s.keras", epochs=1, sparsity=0.5)
    assert sparse.sparsity == pytest.approx(0.5, abs=0.01)
    report("conv1d", float_accuracy=base.test_accuracy, int8_accuracy=q.int8_accuracy, parameters=base.parameters,
           structured_parameters=narrow.parameters, structured_accuracy=narrow.float_accuracy)


@pytest.mark.tensorflow
def test_dscnn_structured_pruning_and_qat(tmp_path):
    require_module("tensorflow")
    from tinydeploy.ir.graph import load
    from tinydeploy.ml.compress.qat import quantization_aware
    from tinydeploy.ml.compress.structured import prune_structured
    from tinydeploy.ml.quantize import quantize
    from tinydeploy.ml.train import train
    npz = str(images_npz(tmp_path / "i.npz"))
    base = train(npz, "dscnn", tmp_path / "ds.keras", epochs=3)
    q = quantize(base.model_path, tmp_path / "ds.tflite")
    assert [op.op for op in load(q.tflite_path).operators] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert_compiles(q.tflite_path)
    ds = data.load(npz)
    narrow = prune_structured(base.model_path, ds, tmp_path / "dsn.keras", epochs=1, ratio=0.5)
    assert narrow.units_after == {"conv_1": 4, "pointwise_1": 8, "pointwise_2": 16, "logits": 4} and narrow.parameters < base.parameters
    qn = quantize(narrow.model_path, tmp_path / "dsn.tflite")
    shapes = [w.shape for w in weight_tensors(qn.tflite_path)]
    assert shapes == [(4, 3, 3, 1), (1, 3, 3, 4), (8, 1, 1, 4), (1, 3, 3, 8), (16, 1, 1, 8), (4, 16)]
    assert_compiles(qn.tflite_path)
    qat = quantization_aware(base.model_path, ds, tmp_path / "dsq.keras", epochs=1)
    qq = quantize(qat.model_path, tmp_path / "dsq.tflite")
    assert all(w.scale.size == 1 for w in weight_tensors(qq.tflite_path))
    assert_compiles(qq.tflite_path)
    report("dscnn", float_accuracy=base.test_accuracy, int8_accuracy=q.int8_accuracy, parameters=base.parameters,
           structured_parameters=narrow.parameters, qat_int8_accuracy=qat.qat_int8_accuracy,
           ptq_int8_accuracy=qat.ptq_int8_accuracy)


@pytest.mark.tensorflow
@pytest.mark.firmware
def test_int4_dense_layers_of_a_conv_model_are_bit_exact_in_the_emulator(tmp_path):
    """A conv1d model tinydeploy trains, its FULLY_CONNECTED layer in int4 (the convolutions keep int8),
    built and run in QEMU on the Cortex-M4F: every output byte equals TFLite Micro's."""
    require_module("tensorflow")
    from tinydeploy.ml.compress.int4 import int4_weights
    from tinydeploy.ml.quantize import quantize
    from tinydeploy.ml.train import train
    from tinydeploy.pipeline import build_firmware, run_firmware
    npz = str(windows_npz(tmp_path / "w.npz"))
    base = train(npz, "conv1d", tmp_path / "c1.keras", epochs=3)
    four = int4_weights(base.model_path, data.load(npz), tmp_path / "c4.keras", epochs=1)
    runs = {}
    for weights, keras_path in (("int8", base.model_path), ("int4", four.model_path)):
        q = quantize(keras_path, tmp_path / f"c1-{weights}.tflite", weights=weights)
        fw = build_firmware(q.tflite_path, "mps2-an386", tmp_path / f"fw-{weights}", vectors=20)
        result = run_firmware(fw)
        assert result.mismatches == [] and len(result.outputs) == 20
        runs[weights] = (fw, result)
    fw4 = runs["int4"][0]
    kernels = {s.op: s.kernel for s in fw4.model.steps}
    assert kernels["FULLY_CONNECTED"] == "td_fully_connected_w4_s8" and kernels["CONV_2D"] == "td_conv_gemm_s8"
    assert {t.dtype for t in weight_tensors(fw4.model.graph.path)} == {"int4", "int8"}
    report("conv1d int4 firmware", **{w: dict(weight_bytes=fw.model.weight_bytes, flash=fw.size.flash,
                                                instructions=r.instructions[0]) for w, (fw, r) in runs.items()})

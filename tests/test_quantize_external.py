"""`quantize` on models tinydeploy did not train: a Keras model (.keras, .h5, SavedModel) and a float
.tflite, each with the user's calibration samples, then run bit-exact in QEMU; and the bad inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import assert_clean_failure, require_module, tinydeploy
from helpers.tflite_builder import ModelBuilder

FEATURES, CLASSES = 8, 3
IMAGE = (8, 8, 1)               # the float .tflite's input: a tiny one-channel image
TRAIN, CALIBRATION, TEST = 600, 200, 100
EPOCHS = 20
BOARD = "mps2-an386"            # the default emulated board


def _features(rng, n):
    """Features whose class is the arg-max of a fixed linear map: learnable in a few epochs."""
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    mapping = np.random.default_rng(7).normal(size=(FEATURES, CLASSES))
    return x, np.argmax(x @ mapping, axis=1).astype(np.int64)


def _images(rng, n):
    """Noise with a bright 4x4 square in the top-left, top-right or bottom-left corner (the class)."""
    y = rng.integers(0, CLASSES, n)
    x = rng.normal(0, 0.3, size=(n, *IMAGE)).astype(np.float32)
    for i, c in enumerate(y):
        r, col = [(0, 0), (0, 4), (4, 0)][c]
        x[i, r:r + 4, col:col + 4, 0] += 1.5
    return x, y.astype(np.int64)


def _train(model, x, y):
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=EPOCHS, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """A Keras MLP and a float conv .tflite trained here, without tinydeploy, with their sample files."""
    require_module("tensorflow")
    require_module("ai_edge_quantizer")
    from tinydeploy.ml.train import quiet_tensorflow
    tf = quiet_tensorflow()
    import keras
    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("outside")
    rng = np.random.default_rng(0)

    x, y = _features(rng, TRAIN + CALIBRATION + TEST)
    mlp = _train(keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(16, activation="relu"),
                                   keras.layers.Dense(CLASSES, activation="softmax")]), x[:TRAIN], y[:TRAIN])
    mlp.save(root / "mlp.keras")
    np.savez(root / "mlp_calibration.npz", x=x[TRAIN:TRAIN + CALIBRATION])
    np.savez(root / "mlp_test.npz", x=x[-TEST:], y=y[-TEST:])

    xi, yi = _images(rng, TRAIN + CALIBRATION + TEST)
    cnn = _train(keras.Sequential([keras.Input(IMAGE), keras.layers.Conv2D(4, 3, activation="relu"),
                                   keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                                   keras.layers.Dense(CLASSES, activation="softmax")]), xi[:TRAIN], yi[:TRAIN])
    inputs = keras.Input(IMAGE, batch_size=1)                # a fixed batch: no SHAPE ops in the graph
    float_tflite = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, cnn(inputs))).convert()
    (root / "cnn_float.tflite").write_bytes(float_tflite)
    np.savez(root / "cnn_calibration.npz", x=xi[TRAIN:TRAIN + CALIBRATION])
    np.savez(root / "cnn_test.npz", x=xi[-TEST:], y=yi[-TEST:])
    return {"root": root, "mlp": mlp}


def _run_all_vectors(tflite: Path, out: Path):
    """Build for the default board with every saved test vector, run in QEMU: verified bit-exact."""
    from tinydeploy.pipeline import build_firmware, run_firmware
    result = run_firmware(build_firmware(tflite, BOARD, out, vectors=TEST))
    assert result.mismatches == [] and len(result.outputs) == TEST
    assert result.labels is not None                 # the test split quantize saved beside the model
    return result


@pytest.mark.tensorflow
@pytest.mark.firmware
def test_keras_model_from_outside_with_calibration_runs_bit_exact(outside, tmp_path):
    root = outside["root"]
    out = tmp_path / "mlp.tflite"
    proc = tinydeploy("quantize", root / "mlp.keras", "-o", out, "--calibration", root / "mlp_calibration.npz",
                      "--test", root / "mlp_test.npz")
    assert proc.returncode == 0, proc.stderr
    assert f"TFLiteConverter on {CALIBRATION} samples" in proc.stderr
    int8_line = next(line for line in proc.stdout.splitlines() if "int8 (TFLite Micro reference" in line)
    result = _run_all_vectors(out, tmp_path / "fw")
    assert result.accuracy() > 0.8
    assert f"{100 * result.accuracy():.2f}%" in int8_line      # the reported figure is the firmware's


@pytest.mark.tensorflow
@pytest.mark.firmware
def test_float_tflite_with_calibration_runs_bit_exact(outside, tmp_path):
    from tinydeploy.ir.graph import load
    from tinydeploy.ml.quantize import quantize
    root = outside["root"]
    r = quantize(root / "cnn_float.tflite", tmp_path / "cnn.tflite", calibration=root / "cnn_calibration.npz",
                 test=root / "cnn_test.npz")
    assert r.quantizer == "ai-edge-quantizer" and r.calibration_samples == CALIBRATION
    assert r.float_operators == []
    graph = load(r.tflite_path)
    assert graph.input_tensor().dtype == "int8" and graph.output_tensor().dtype == "int8"
    assert r.float_accuracy > 0.9 and r.int8_accuracy >= r.float_accuracy - 0.05
    result = _run_all_vectors(r.tflite_path, tmp_path / "fw")
    assert result.accuracy() == r.int8_accuracy


@pytest.mark.tensorflow
def test_h5_and_saved_model(outside, tmp_path):
    from tinydeploy.ml.quantize import quantize
    root, mlp = outside["root"], outside["mlp"]
    mlp.save(tmp_path / "mlp.h5")
    from tinydeploy.ml.train import silenced
    with silenced():                                   # export prints its signatures
        mlp.export(tmp_path / "mlp_saved")
    for model in (tmp_path / "mlp.h5", tmp_path / "mlp_saved"):
        r = quantize(model, tmp_path / f"{model.stem}.tflite", calibration=root / "mlp_calibration.npz",
                     test=root / "mlp_test.npz")
        assert r.quantizer == "TFLiteConverter" and r.test_samples == TEST
        assert r.float_accuracy > 0.8 and r.int8_accuracy >= r.float_accuracy - 0.05, model


def _float_fc(tmp_path, weights: np.ndarray) -> Path:
    """A float FULLY_CONNECTED model with no signature, written without TensorFlow."""
    b = ModelBuilder()
    x = b.tensor((1, weights.shape[1]), np.float32)
    w = b.tensor(weights.shape, np.float32, data=weights)
    bias = b.tensor((weights.shape[0],), np.float32, data=np.zeros(weights.shape[0], np.float32))
    y = b.tensor((1, weights.shape[0]), np.float32)
    b.fully_connected(x, w, bias, y)
    path = tmp_path / "fc_float.tflite"
    path.write_bytes(b.finish([x], [y]))
    return path


def test_float_tflite_with_csv_samples(tmp_path):
    """CSV calibration rows (header, label column dropped) and a CSV test set with --label."""
    require_module("ai_edge_quantizer")
    from tinydeploy.ml.quantize import quantize
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(CLASSES, FEATURES)).astype(np.float32)
    model = _float_fc(tmp_path, weights)
    x = rng.normal(size=(TEST, FEATURES)).astype(np.float32)
    y = np.argmax(x @ weights.T, axis=1)               # the float model's own classes: float accuracy 100%
    header = ",".join([f"f{i}" for i in range(FEATURES)] + ["cls"])
    rows = [",".join([*map(str, row), str(label)]) for row, label in zip(x.tolist(), y)]
    csv = tmp_path / "samples.csv"
    csv.write_text("\n".join([header, *rows]) + "\n")
    r = quantize(model, tmp_path / "fc.tflite", calibration=csv, test=csv, label="cls")
    assert r.calibration_samples == TEST and r.test_samples == TEST
    assert r.float_accuracy == 1.0 and r.int8_accuracy >= 0.9
    saved = np.load(tmp_path / "fc.testset.npz")
    assert saved["x"].dtype == np.int8 and saved["x"].shape == (TEST, FEATURES)
    assert np.array_equal(saved["y"], y)


@pytest.fixture
def bad(tmp_path):
    """A float .tflite (8 features) and a valid calibration file beside it."""
    model = _float_fc(tmp_path, np.ones((CLASSES, FEATURES), np.float32))
    np.savez(tmp_path / "calibration.npz", x=np.zeros((10, FEATURES), np.float32))
    return tmp_path, model


def _refused(*args, needles):
    proc = tinydeploy("quantize", *args)
    assert proc.returncode == 2, proc.stderr
    assert_clean_failure(proc, *needles)


def test_missing_calibration_file(bad):
    root, model = bad
    _refused(model, "-o", root / "q.tflite", "--calibration", root / "nope.npz", needles=("nope.npz", "no such file"))
    assert not (root / "q.tflite").exists()


def test_ill_shaped_calibration_files(bad):
    root, model = bad
    np.savez(root / "no_x.npz", samples=np.zeros((4, FEATURES)))
    np.save(root / "flat.npy", np.zeros(FEATURES, np.float32))
    (root / "text.csv").write_text("a,b\n1,x\n")
    _refused(model, "-o", root / "q.tflite", "--calibration", root / "no_x.npz", needles=("no_x.npz", "no array x"))
    _refused(model, "-o", root / "q.tflite", "--calibration", root / "flat.npy", needles=("flat.npy", "one sample per row"))
    _refused(model, "-o", root / "q.tflite", "--calibration", root / "text.csv", needles=("text.csv:2", "not a number"))


def test_calibration_shape_mismatch(bad):
    root, model = bad
    np.savez(root / "wide.npz", x=np.zeros((10, FEATURES + 1), np.float32))
    _refused(model, "-o", root / "q.tflite", "--calibration", root / "wide.npz",
             needles=("wide.npz", f"shape [{FEATURES + 1}]", f"takes [{FEATURES}]"))


def test_keras_model_without_calibration(bad):
    root, _ = bad
    (root / "mine.keras").write_bytes(b"not read: the missing calibration is found first")
    _refused(root / "mine.keras", "-o", root / "q.tflite", needles=("--calibration FILE", "mine.dataset.json"))


def test_already_quantized_tflite(bad):
    root, _ = bad
    b = ModelBuilder()
    x = b.tensor((1, FEATURES), np.int8, 0.05, 0)
    w = b.tensor((CLASSES, FEATURES), np.int8, 0.01, 0, data=np.ones((CLASSES, FEATURES), np.int8))
    bias = b.tensor((CLASSES,), np.int32, 0.0005, 0, data=np.zeros(CLASSES, np.int32))
    y = b.tensor((1, CLASSES), np.int8, 0.1, 0)
    b.fully_connected(x, w, bias, y)
    (root / "int8.tflite").write_bytes(b.finish([x], [y]))
    _refused(root / "int8.tflite", "-o", root / "q.tflite", "--calibration", root / "calibration.npz",
             needles=("int8.tflite", "already quantized", "convert"))


def test_not_a_model(bad):
    root, _ = bad
    (root / "notes.txt").write_text("hello\n")
    (root / "folder").mkdir()
    (root / "fake.tflite").write_bytes(b"\0" * 64)
    for path, needle in ((root / "notes.txt", "not a model"), (root / "folder", "saved_model.pb"),
                         (root / "fake.tflite", "not a TFLite flatbuffer")):
        _refused(path, "-o", root / "q.tflite", "--calibration", root / "calibration.npz", needles=(path.name, needle))

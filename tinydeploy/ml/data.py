"""Datasets: the built-in IoT sensor demo set, a user's CSV, or a user's NumPy .npz archive.

A .npz holds two arrays: ``x`` (float features ``[n, features]``, sensor windows ``[n, t, c]`` or
images ``[n, h, w, c]``) and ``y`` (``[n]`` integer class labels). Every source is split 80/20
with the same seed and standardised per channel (the last axis) with the training part's mean
and standard deviation."""
from __future__ import annotations

import csv
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinydeploy.core.errors import BadInput
from tinydeploy.core.resources import atomic_write
from tinydeploy.ml import samples

BUILTIN = ("iot-sensors",)
SPLIT_SEED = 42


@dataclass
class Dataset:
    """A train/test split with standardised features and integer class labels.

    ``x_*`` are ``[n, *input_shape]``; ``mean``/``std`` have one value per channel (last axis)."""
    name: str
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    mean: np.ndarray
    std: np.ndarray
    spec: dict                # how to rebuild exactly this split (saved beside the model)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape: (features,), (t, c) or (h, w, c)."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_features(self) -> int:
        return int(np.prod(self.input_shape))


def _iot_sensors() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import make_classification
    x, y = make_classification(n_samples=10000, n_features=20, n_informative=15, n_redundant=5,
                               n_classes=4, random_state=42)
    return x.astype(np.float32), y.astype(np.int64), [str(c) for c in range(4)]


def _csv(path: Path, label: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not path.exists():
        raise BadInput(f"{path}: no such file; give a CSV file, an .npz file or one of the built-in datasets "
                       f"({', '.join(BUILTIN)})")
    if label is None:
        raise BadInput(f"{path}: say which column holds the class with --label COLUMN")
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInput(f"{path}: cannot read it as CSV ({exc}); save it as UTF-8 comma-separated text")
    if len(rows) < 2:
        raise BadInput(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if label not in header:
        raise BadInput(f"{path}: no column '{label}' (columns: {', '.join(header)}); pass --label with one of them")
    col = header.index(label)
    labels, features = [], []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise BadInput(f"{path}:{lineno}: {len(row)} fields where the header has {len(header)}")
        try:
            features.append([float(v) for i, v in enumerate(row) if i != col])
        except ValueError:
            raise BadInput(f"{path}:{lineno}: a feature is not a number; only numeric feature columns are supported")
        labels.append(row[col].strip())
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray(features, np.float32), np.asarray([index[v] for v in labels], np.int64), classes


NPZ_HINT = "save it with numpy.savez(path, x=features_windows_or_images, y=integer_labels)"


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not path.exists():
        raise BadInput(f"{path}: no such file; give an .npz file with arrays x and y")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise BadInput(f"{path}: cannot read it as a NumPy .npz archive ({type(exc).__name__}); {NPZ_HINT}")
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise BadInput(f"{path}: holds a single array (.npy), not an .npz archive of x and y; {NPZ_HINT}")
    with archive:
        missing = [k for k in ("x", "y") if k not in archive.files]
        if missing:
            raise BadInput(f"{path}: no array {' or '.join(missing)} (arrays: {', '.join(archive.files) or 'none'}); "
                           f"{NPZ_HINT}")
        try:
            x, y = archive["x"], archive["y"]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise BadInput(f"{path}: cannot read arrays x and y ({type(exc).__name__}); {NPZ_HINT}")
    if x.ndim not in (2, 3, 4):
        raise BadInput(f"{path}: x has shape {list(x.shape)}; expected [n, features], windows [n, t, c] "
                       "or images [n, h, w, c]")
    if y.ndim != 1 or len(y) != len(x):
        raise BadInput(f"{path}: y has shape {list(y.shape)}; expected one label per sample of x, i.e. [{len(x)}]")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise BadInput(f"{path}: y holds {y.dtype} values; it must hold integer class labels")
    x = samples.numeric(x, path, "x")
    values, y_index = np.unique(y, return_inverse=True)
    return x, y_index.astype(np.int64).reshape(-1), [str(v) for v in values.tolist()]


def load(name: str, label: str | None = None) -> Dataset:
    """The dataset called ``name`` (built-in) or at path ``name`` (.npz, or CSV with a ``label`` column)."""
    from sklearn.model_selection import train_test_split
    if name in BUILTIN:
        x, y, classes = _iot_sensors()
        spec = {"dataset": name}
    elif Path(name).suffix.lower() == ".npz":
        x, y, classes = _npz(Path(name))
        spec = {"dataset": str(Path(name).resolve())}
    else:
        x, y, classes = _csv(Path(name), label)
        spec = {"dataset": str(Path(name).resolve()), "label": label}
    if len(classes) < 2:
        raise BadInput(f"{name}: the labels have only {len(classes)} class; need at least two")
    if len(y) < 5:
        raise BadInput(f"{name}: {len(y)} samples are too few to split 80/20 into training and test data")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=SPLIT_SEED)
    channel_axes = tuple(range(x_train.ndim - 1))            # statistics per channel (the last axis)
    mean, std = x_train.mean(axis=channel_axes), x_train.std(axis=channel_axes)
    std[std == 0] = 1.0
    spec.update(mean=mean.tolist(), std=std.tolist(), classes=classes, test_size=0.2, random_state=SPLIT_SEED)
    scale = lambda a: ((a - mean) / std).astype(np.float32)
    return Dataset(name, scale(x_train), scale(x_test), y_train, y_test, classes, mean, std, spec)


def spec_path(model_path: Path) -> Path:
    """The dataset description saved beside a trained model."""
    return Path(model_path).with_suffix(".dataset.json")


def save_spec(dataset: Dataset, model_path: Path) -> None:
    atomic_write(spec_path(model_path), json.dumps(dataset.spec, indent=1))


def load_for_model(model_path: Path) -> Dataset | None:
    """The exact split and scaling a model was trained with, if it was trained by tinydeploy."""
    path = spec_path(model_path)
    if not path.exists():
        return None
    spec = json.loads(path.read_text())
    return load(spec["dataset"], spec.get("label"))

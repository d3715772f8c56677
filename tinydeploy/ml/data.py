"""Datasets: the built-in IoT sensor demo set, or a user's CSV."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinydeploy.core.errors import TinyDeployError
from tinydeploy.core.resources import atomic_write

BUILTIN = ("iot-sensors",)
SPLIT_SEED = 42


@dataclass
class Dataset:
    """A train/test split with standardised features and integer class labels."""
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
    def num_features(self) -> int:
        return self.x_train.shape[1]


def _iot_sensors() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import make_classification
    x, y = make_classification(n_samples=10000, n_features=20, n_informative=15, n_redundant=5,
                               n_classes=4, random_state=42)
    return x.astype(np.float32), y.astype(np.int64), [str(c) for c in range(4)]


def _csv(path: Path, label: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not path.exists():
        raise TinyDeployError(f"{path}: no such file; give a CSV file or one of the built-in datasets ({', '.join(BUILTIN)})")
    if label is None:
        raise TinyDeployError(f"{path}: say which column holds the class with --label COLUMN")
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TinyDeployError(f"{path}: cannot read it as CSV ({exc}); save it as UTF-8 comma-separated text")
    if len(rows) < 2:
        raise TinyDeployError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if label not in header:
        raise TinyDeployError(f"{path}: no column '{label}' (columns: {', '.join(header)}); pass --label with one of them")
    col = header.index(label)
    labels, features = [], []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise TinyDeployError(f"{path}:{lineno}: {len(row)} fields where the header has {len(header)}")
        try:
            features.append([float(v) for i, v in enumerate(row) if i != col])
        except ValueError:
            raise TinyDeployError(f"{path}:{lineno}: a feature is not a number; only numeric feature columns are supported")
        labels.append(row[col].strip())
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray(features, np.float32), np.asarray([index[v] for v in labels], np.int64), classes


def load(name: str, label: str | None = None) -> Dataset:
    """The dataset called ``name`` (built-in) or at path ``name`` (CSV with a ``label`` column)."""
    from sklearn.model_selection import train_test_split
    if name in BUILTIN:
        x, y, classes = _iot_sensors()
        spec = {"dataset": name}
    else:
        x, y, classes = _csv(Path(name), label)
        spec = {"dataset": str(Path(name).resolve()), "label": label}
    if len(classes) < 2:
        raise TinyDeployError(f"{name}: the label column has only {len(classes)} class; need at least two")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=SPLIT_SEED)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
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

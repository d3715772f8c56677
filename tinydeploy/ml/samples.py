"""Samples a user gives `quantize` for a model tinydeploy did not train.

* calibration inputs (``--calibration``): an .npz with an array ``x``, an .npy array, or a CSV
  of numeric feature rows (a header row is optional; the ``--label`` column is dropped if present);
* a labelled test set (``--test``): an .npz with arrays ``x`` and ``y``, or a CSV with a header
  row and a ``--label`` column.

Values are the model's inputs exactly as given (no scaling), one sample per row of ``x``: either
the model's sample shape (``[n, 28, 28, 1]`` for a ``[1, 28, 28, 1]`` input) or flat rows of as
many values (CSV rows always are). Labels are the positions of the model's outputs (integers).
"""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from tinydeploy.core.errors import BadInput

CALIBRATION_HINT = "an .npz with an array x of model inputs, an .npy array, or a CSV of numeric feature rows"
TEST_HINT = ("an .npz with arrays x (model inputs) and y (integer class labels), or a CSV with a header "
             "row and the class in the --label column")


def numeric(x: np.ndarray, path: Path, name: str) -> np.ndarray:
    """``x`` as float32 samples, or BadInput for an array that cannot be model inputs."""
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise BadInput(f"{path}: {name} holds {x.dtype} values; model inputs must be numbers")
    if x.ndim < 2:
        raise BadInput(f"{path}: {name} has shape {list(x.shape)}; expected one sample per row, [n, ...]")
    if 0 in x.shape:
        raise BadInput(f"{path}: {name} is empty (shape {list(x.shape)})")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise BadInput(f"{path}: {name} contains NaN or infinite values; clean or drop those samples")
    return x


def _labels(y: np.ndarray, count: int, path: Path) -> np.ndarray:
    if y.ndim != 1 or len(y) != count:
        raise BadInput(f"{path}: y has shape {list(y.shape)}; expected one integer label per sample, [{count}]")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise BadInput(f"{path}: y holds {y.dtype} values; it must hold integer class labels (output positions)")
    if np.any(y < 0):
        raise BadInput(f"{path}: y holds negative labels; labels are the positions of the model's outputs")
    return y.astype(np.int64)


def _load_array_file(path: Path, hint: str):
    """The NumPy object in ``path`` (an array for .npy, an NpzFile for .npz), or BadInput."""
    if not path.exists():
        raise BadInput(f"{path}: no such file; give {hint}")
    if path.is_dir():
        raise BadInput(f"{path}: is a folder; give {hint}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise BadInput(f"{path}: cannot read it as a NumPy file ({type(exc).__name__}); give {hint}")


def _npz_arrays(path: Path, names: tuple[str, ...], hint: str) -> list[np.ndarray]:
    archive = _load_array_file(path, hint)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise BadInput(f"{path}: holds a single array, not an .npz archive of {' and '.join(names)}; give {hint}")
    with archive:
        missing = [k for k in names if k not in archive.files]
        if missing:
            raise BadInput(f"{path}: no array {' or '.join(missing)} (arrays: {', '.join(archive.files) or 'none'}); "
                           f"give {hint}")
        try:
            return [archive[k] for k in names]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise BadInput(f"{path}: cannot read arrays {', '.join(names)} ({type(exc).__name__}); give {hint}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_rows(path: Path, hint: str) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """The header (None when the first row is all numbers) and the numbered data rows of a CSV."""
    if not path.exists():
        raise BadInput(f"{path}: no such file; give {hint}")
    try:
        with open(path, newline="") as fh:
            rows = [(n, row) for n, row in enumerate(csv.reader(fh), start=1) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInput(f"{path}: cannot read it as CSV ({exc}); save it as UTF-8 comma-separated text")
    if not rows:
        raise BadInput(f"{path}: is empty; give {hint}")
    first = rows[0][1]
    header = None if all(_is_number(v) for v in first) else [h.strip() for h in first]
    data = rows[1:] if header is not None else rows
    if not data:
        raise BadInput(f"{path}: has a header row but no data rows")
    width = len(header) if header is not None else len(first)
    for lineno, row in data:
        if len(row) != width:
            raise BadInput(f"{path}:{lineno}: {len(row)} fields where {'the header' if header else 'line 1'} "
                           f"has {width}")
    return header, data


def _csv_numbers(path: Path, data: list[tuple[int, list[str]]], skip: int | None) -> np.ndarray:
    try:
        return np.asarray([[float(v) for i, v in enumerate(row) if i != skip] for _, row in data], np.float32)
    except ValueError:
        bad = next(n for n, row in data if not all(_is_number(v) for i, v in enumerate(row) if i != skip))
        raise BadInput(f"{path}:{bad}: a feature is not a number; only numeric feature columns are supported")


def calibration_samples(path: Path, label: str | None = None) -> np.ndarray:
    """The calibration samples in ``path``, float32, one a row."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        (x,) = _npz_arrays(path, ("x",), CALIBRATION_HINT)
    elif suffix == ".npy":
        x = _load_array_file(path, CALIBRATION_HINT)
        if not isinstance(x, np.ndarray):
            raise BadInput(f"{path}: is an .npz archive, not a single .npy array; rename it to .npz")
    elif suffix == ".csv":
        header, data = _csv_rows(path, CALIBRATION_HINT)
        skip = header.index(label) if header is not None and label in header else None
        x = _csv_numbers(path, data, skip)
    else:
        raise BadInput(f"{path}: unknown calibration file type '{path.suffix}'; give {CALIBRATION_HINT}")
    return numeric(np.asarray(x), path, "x")


def labelled_samples(path: Path, label: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The labelled test samples in ``path``: float32 inputs and int64 labels."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        x, y = _npz_arrays(path, ("x", "y"), TEST_HINT)
    elif suffix == ".csv":
        if label is None:
            raise BadInput(f"{path}: say which column holds the class with --label COLUMN")
        header, data = _csv_rows(path, TEST_HINT)
        if header is None or label not in header:
            columns = ", ".join(header) if header else "none: the first row is numbers, not a header"
            raise BadInput(f"{path}: no column '{label}' (columns: {columns}); pass --label with one of them")
        col = header.index(label)
        x = _csv_numbers(path, data, col)
        try:
            values = [float(row[col]) for _, row in data]
        except ValueError:
            raise BadInput(f"{path}: column '{label}' holds names, not integer class labels; write the position "
                           "of the model's output for each class")
        if not all(v.is_integer() for v in values):
            raise BadInput(f"{path}: column '{label}' holds fractions; labels are integer output positions")
        y = np.asarray(values, np.int64)
    else:
        raise BadInput(f"{path}: unknown test file type '{path.suffix}'; give {TEST_HINT}")
    x = numeric(np.asarray(x), path, "x")
    return x, _labels(np.asarray(y), len(x), path)


def fit_input(x: np.ndarray, sample_shape: tuple[int | None, ...], origin: str | Path) -> np.ndarray:
    """``x`` (from ``origin``, for the message) as samples of ``sample_shape`` (None: any size), or BadInput.

    Flat rows are reshaped when the model's sample shape is known and has as many values."""
    got = tuple(x.shape[1:])
    if len(got) == len(sample_shape) and all(m is None or m == g for m, g in zip(sample_shape, got)):
        return x
    if None not in sample_shape and x.ndim == 2 and got[0] == int(np.prod(sample_shape)):
        return x.reshape((len(x), *sample_shape))
    wanted = [("?" if d is None else d) for d in sample_shape]
    raise BadInput(f"{origin}: samples have shape {list(got)} but the model takes {wanted}; give samples of "
                   f"shape {wanted}" + ("" if None in sample_shape else
                                        f" (or flat rows of {int(np.prod(sample_shape))} values)"))

"""`tinydeploy compare`: a baseline and its compressed variants, each quantized, built for each board,
run in the emulator and verified against TFLite Micro, side by side; and which one to deploy where.

``compare(dataset, boards, out, ...)`` returns a ``CompareResult`` and writes into ``out``
(atomically, replacing an earlier compare's output):

- ``table.txt``: the terminal tables;
- ``compare.json``: ``{"schema": "tinydeploy.compare", "version": 1, ..., "measurements": [...],
  "not_run": [...], "recommendations": [...]}``; each measurement is a ``tinydeploy.measurement``
  record (analysis/measurement.py) plus the fields in ``EXTRA_FIELDS`` (variant, technique,
  params, compression ratio, energy, ...); ``load_measurements(path)`` reads it back;
- ``compare.csv``: one row per variant and board, the unbuilt ones with their reason;
- ``compare.png`` (accuracy, size, latency, compression vs accuracy) and ``pareto.png``
  (accuracy against latency and flash, per board);
- ``report.html``: self-contained (figures embedded), for a CI job to keep;
- ``outputs/<variant>-<board>.npz``: the firmware's own outputs (``outputs``), the vectors'
  ``labels`` and the reference's ``expected`` outputs: the accuracy is recomputed from these;
- ``config.yaml``: the variants and settings as run.

Figures: the accuracy is the FIRMWARE's: arg-max of the outputs it computed on the baked-in
test vectors (the whole test split, or the first N of it: ``vectors``; ``--quick`` uses
QUICK_VECTORS); instructions are exact counts under QEMU -icount, not cycles; the time is an
estimate at 1 instruction per cycle at the board's clock; the energy an estimate, the board's
active power (its YAML's ``power``, with its source) times that time.

Nothing is retrained or rebuilt when its inputs did not change: trained models, quantized
models and firmware results are cached (``cache``, default ``<tinydeploy cache>/compare``) under a
hash of everything they depend on (dataset, architecture, technique, parameters, epochs, seed,
tinydeploy's version and a hash of the sources that make them). Failures are not cached.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError, \
    field_validator

from tinydeploy.analysis.measurement import ESTIMATE_NOTE, INSTRUCTIONS_NOTE, Measurement, read_json
from tinydeploy.analysis.recommend import FORMULA, Candidate, CostWeights, Recommendation, recommend
from tinydeploy.core.errors import BadInput, MissingTool, TinyDeployError
from tinydeploy.core.resources import atomic_dir, cache_dir

SCHEMA = "tinydeploy.compare"
VERSION = 1
FULL_EPOCHS = 30                 # the baseline's training
QUICK_EPOCHS = 5
VARIANT_EPOCHS = 5               # a variant's fine-tuning (or a student's training)
QUICK_VARIANT_EPOCHS = 2
QUICK_VECTORS = 500              # --quick: the first 500 vectors of the test split
CODE_RESERVE = 32 * 1024         # flash kept free for code when deciding how many test vectors to bake in
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ENERGY_NOTE = "estimate: the board's active power x the estimated time per inference"
EXTRA_FIELDS = ("variant", "technique", "params", "overrides", "weights_format", "parameters", "float_accuracy", "status",
                "compression_ratio", "energy", "fits", "cost", "recommended")
OUTPUT_MARKER = "compare.json"

# Row statuses
OK = "ok"
MISMATCH = "mismatch"               # built and ran, but outputs differ from the reference
NO_FIT = "does not fit"
NOT_BUILDABLE = "not buildable"     # quantized, but it does not compile, build or run
NOT_MADE = "not made"               # the variant could not be trained or quantized


# ---- the variants file ------------------------------------------------------------------------------------------

Scalar = Union[StrictBool, StrictInt, StrictFloat, StrictStr]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaselineSpec(_Config):
    """The model every variant is compared with (and derived from)."""
    arch: str = Field("mlp", description="mlp (Dense 32-16), cloud (Dense 256-128-64, dropout 0.3: the original "
                                         "demo's baseline), or another of tinydeploy.ml.train.ARCHS")
    epochs: Optional[StrictInt] = Field(None, ge=1, description=f"training epochs [{FULL_EPOCHS}; {QUICK_EPOCHS} with --quick]")

    @field_validator("arch")
    @classmethod
    def _arch(cls, value: str) -> str:
        archs = _archs()
        if value not in archs:
            raise ValueError(f"unknown architecture '{value}' (architectures: {', '.join(archs)})")
        return value


class VariantSpec(_Config):
    """One compressed variant: a technique of tinydeploy.ml.compress and its parameters."""
    technique: str = Field(..., description="a technique of tinydeploy.ml.compress (see its defaults module)")
    name: Optional[str] = Field(None, description="a short identifier (a-z, 0-9, _) [the technique]")
    params: dict[str, Union[Scalar, list[Scalar], None]] = Field(
        default_factory=dict, description="the technique's parameters, over its defaults (tinydeploy.ml.compress.defaults)")
    epochs: Optional[StrictInt] = Field(None, ge=1, description="fine-tuning (or training) epochs [the file's epochs]")

    @field_validator("technique")
    @classmethod
    def _technique(cls, value: str) -> str:
        if value == "baseline":
            raise ValueError("the baseline is always compared; set its arch and epochs under 'baseline:'")
        known = techniques()
        if value not in known:
            raise ValueError(f"unknown technique '{value}' (techniques: {', '.join(t for t in known if t != 'baseline')})")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (not NAME.match(value) or value == "baseline"):
            raise ValueError(f"name '{value}' must be a-z, 0-9 and _ (starting with a letter, at most 40) "
                             "and not 'baseline'")
        return value


class CompareConfig(_Config):
    """What `compare --config FILE` reads (YAML). Every key is optional."""
    baseline: BaselineSpec = Field(BaselineSpec(), description="the baseline model")
    epochs: Optional[StrictInt] = Field(None, ge=1, description="the variants' fine-tuning (or training) epochs "
                                                               f"[{VARIANT_EPOCHS}; {QUICK_VARIANT_EPOCHS} with --quick]")
    seed: StrictInt = Field(42, description="random seed for training")
    variants: Optional[list[VariantSpec]] = Field(None, description="the variants [every technique of "
                                                                    "tinydeploy.ml.compress, its default parameters]")


EXAMPLE_CONFIG = """\
# tinydeploy compare --config variants.yaml
baseline: {arch: mlp, epochs: 30}   # or arch: cloud (Dense 256-128-64, dropout 0.3)
epochs: 5                           # the variants' fine-tuning epochs
seed: 42
variants:
  - technique: magnitude_prune
    params: {sparsity: 0.5}
  - technique: magnitude_prune
    name: prune_90
    params: {sparsity: 0.9}
  - technique: int4
"""


def _config_problem(path: Path, exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        what = f"unknown key '{key}' (keys: baseline, epochs, seed, variants; a variant: technique, name, params, epochs)"
    elif first["type"] == "missing":
        what = f"missing key '{key}'"
    else:
        what = f"{key}: {msg[0].lower() + msg[1:]}"
    more = len(exc.errors()) - 1
    return f"{path}: {what}" + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def load_config(path: Path) -> CompareConfig:
    """Read and validate a variants file; any problem is one BadInput line naming the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path}: no such variants file; write one like:  variants: [{{technique: magnitude_prune}}]") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise BadInput(f"{path}: not valid YAML{f' at line {mark.line + 1}' if mark else ''}: "
                       f"{getattr(exc, 'problem', None) or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read it: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: a variants file is a mapping (baseline:, epochs:, variants: [...]), "
                       f"not {type(raw).__name__}")
    try:
        return CompareConfig.model_validate(raw)
    except ValidationError as exc:
        raise BadInput(_config_problem(path, exc)) from None


# ---- the variants module (written in parallel; found at call time) ----------------------------------------------

def _archs() -> tuple[str, ...]:
    from tinydeploy.ml.train import ARCHS
    return tuple(ARCHS)


def techniques() -> tuple[str, ...]:
    """The techniques tinydeploy.ml.compress offers, baseline first."""
    from tinydeploy.ml.compress.defaults import TECHNIQUES
    return TECHNIQUES


def make_variant_function():
    """``tinydeploy.ml.compress.variants.make_variant``."""
    from tinydeploy.ml.compress.variants import make_variant
    return make_variant


# ---- the cache --------------------------------------------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parent.parent
_DONE = "entry.json"


def key_of(*parts: Any) -> str:
    """A stable hash of JSON-serialisable ``parts``."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_hash(*parts: str) -> str:
    """A hash of tinydeploy's files under ``parts`` (folders or files of the package; none: all of it)."""
    digest = hashlib.sha256()
    roots = [PACKAGE / p for p in parts] if parts else [PACKAGE]
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
                continue
            digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def tinydeploy_version() -> str:
    try:
        from importlib.metadata import version
        return version("tinydeploy")
    except Exception:        # not installed (a bare checkout)
        return "unknown"


class Cache:
    """Entries ``<root>/<kind>/<key>/``, each complete or absent (written through atomic_dir);
    counts the hits and the entries made, per kind."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.hits: Counter = Counter()
        self.made: Counter = Counter()
        self._lock = threading.Lock()

    def get(self, kind: str, key: str) -> Path | None:
        entry = self.root / kind / key
        if (entry / _DONE).exists():
            with self._lock:
                self.hits[kind] += 1
            return entry
        return None

    @contextmanager
    def make(self, kind: str, key: str, meta: dict | None = None) -> Iterator[Path]:
        """Yield a fresh directory that becomes the entry if the block succeeds (then ``meta`` is stored)."""
        final = self.root / kind / key
        with atomic_dir(final) as tmp:
            yield tmp
            (tmp / _DONE).write_text(json.dumps({"key": key, "kind": kind, "made": time.time(), **(meta or {})},
                                                indent=1, default=str))
        with self._lock:
            self.made[kind] += 1

    def stats(self) -> dict[str, dict[str, int]]:
        kinds = sorted(set(self.hits) | set(self.made))
        return {k: {"hits": self.hits[k], "made": self.made[k]} for k in kinds}


# ---- results ----------------------------------------------------------------------------------------------------

@dataclass
class Variant:
    """One model of the comparison: the baseline or a variant, trained and quantized (or why not)."""
    name: str
    technique: str
    params: dict                              # every parameter, the technique's defaults filled in
    epochs: int
    overrides: dict = field(default_factory=dict)   # the parameters the variants file gave
    weights_format: str = "int8"          # "int8" | "int4"
    keras: Path | None = None
    tflite: Path | None = None
    float_accuracy: float | None = None
    reference_accuracy: float | None = None   # int8 accuracy in the TFLite Micro interpreter, whole test split
    parameters: int | None = None
    notes: dict = field(default_factory=dict)
    error: str | None = None                  # why it could not be made
    cached: bool = False
    seconds: dict = field(default_factory=dict)     # time spent training and quantizing it (this run)


@dataclass(frozen=True)
class Energy:
    """Estimated energy per inference: ``uj`` = ``power_mw`` x the estimated ms (mW x ms = uJ)."""
    uj: float
    power_mw: float
    source: str
    note: str = ENERGY_NOTE


@dataclass
class Row:
    """One variant on one board."""
    variant: str
    technique: str
    params: dict
    board: str
    status: str
    overrides: dict = field(default_factory=dict)
    reason: str | None = None
    measurement: Measurement | None = None
    parameters: int | None = None
    float_accuracy: float | None = None
    weights_format: str = "int8"
    compression_ratio: float | None = None
    energy: Energy | None = None
    fits: bool | None = None
    cost: float | None = None
    recommended: bool = False
    outputs: Path | None = None               # the firmware's outputs (npz) in the cache
    mismatch_examples: list = field(default_factory=list)
    cached: bool = False

    @property
    def ran(self) -> bool:
        return self.measurement is not None

    @property
    def accuracy(self) -> float | None:
        return self.measurement.accuracy if self.measurement else None

    @property
    def latency_ms(self) -> float | None:
        m = self.measurement
        return m.estimated_time.ms if m and m.estimated_time else None

    @property
    def instructions(self) -> float | None:
        m = self.measurement
        return m.instructions.median if m and m.instructions else None

    @property
    def flash_bytes(self) -> int | None:
        """Flash the deployment needs: the image without the baked-in test vectors."""
        return self.measurement.flash_without_vectors if self.measurement else None

    @property
    def mismatches(self) -> int | None:
        return self.measurement.mismatches.values if self.measurement else None

    def extra_json(self) -> dict:
        return {"variant": self.variant, "technique": self.technique, "params": self.params,
                "overrides": self.overrides,
                "weights_format": self.weights_format, "parameters": self.parameters,
                "float_accuracy": self.float_accuracy, "status": self.status,
                "compression_ratio": self.compression_ratio,
                "energy": dataclasses.asdict(self.energy) if self.energy else None, "fits": self.fits,
                "cost": self.cost, "recommended": self.recommended}


@dataclass
class CompareResult:
    """What `compare` found; the files it wrote are in ``files``."""
    out: Path
    dataset: str
    boards: list[str]
    variants: list[Variant]
    rows: list[Row]
    recommendations: list[Recommendation]
    weights: CostWeights
    quick: bool
    vectors: int | None                       # requested test vectors per run (None: the whole split)
    test_split: int | None                    # vectors in the test split
    files: dict[str, Path] = field(default_factory=dict)
    cache: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def row(self, variant: str, board: str) -> Row:
        return next(r for r in self.rows if r.variant == variant and r.board == board)

    @property
    def mismatched(self) -> list[Row]:
        return [r for r in self.rows if r.status == MISMATCH]

    def recommendation(self, board: str) -> Recommendation:
        return next(r for r in self.recommendations if r.board == board)


# ---- the steps --------------------------------------------------------------------------------------------------

def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return line if isinstance(exc, TinyDeployError) else f"{type(exc).__name__}: {line}".rstrip(": ")


def _dataset_source(dataset: str, label: str | None) -> str:
    """An identity of ``dataset`` for cache keys (a file's content hash), after checking it in one line:
    a built-in name, a CSV (with ``label``, its class column) or an .npz (arrays x and y)."""
    from tinydeploy.ml import data as data_mod
    if dataset in data_mod.BUILTIN:
        if label is not None:
            raise BadInput(f"--label is for a CSV dataset; {dataset} is built in and knows its classes")
        return f"builtin:{dataset}"
    path = Path(dataset)
    if not path.is_file():
        raise BadInput(f"{path}: no such dataset file; give a CSV or .npz file or a built-in dataset "
                       f"({', '.join(data_mod.BUILTIN)})")
    npz = path.suffix.lower() == ".npz"
    if npz and label is not None:
        raise BadInput(f"{path}: an .npz dataset holds its classes in its array y; --label is for a CSV column")
    if not npz and label is None:
        raise BadInput(f"{path}: say which column holds the class with --label COLUMN")
    data_mod.load(str(path), label)          # fails here, in one line, on a bad file or label
    return f"{'npz' if npz else 'csv'}:{file_hash(path)}:{label or ''}"


def _quantize(keras: Path, out: Path, weights_format: str):
    from tinydeploy.ml.quantize import quantize
    if weights_format == "int8":
        return quantize(keras, out)
    try:
        return quantize(keras, out, weights=weights_format)
    except TypeError as exc:
        if "weights" in str(exc):
            raise TinyDeployError(f"this tinydeploy's quantize has no {weights_format} option yet") from None
        raise


class _Maker:
    """Trains and quantizes the models, through the cache (in the calling thread: TensorFlow's state is global)."""

    def __init__(self, cache: Cache, dataset: str, label: str | None, dataset_id: str, seed: int):
        self.cache, self.dataset, self.label, self.dataset_id, self.seed = cache, dataset, label, dataset_id, seed
        self.ml_hash = source_hash("ml")
        self.version = tinydeploy_version()
        self.baseline_key: str | None = None
        self.baseline_keras: Path | None = None
        self._make_variant = None

    def baseline(self, arch: str, epochs: int) -> Variant:
        key = key_of("baseline", self.dataset_id, arch, epochs, self.seed, self.ml_hash, self.version)
        entry = self.cache.get("trained", key)
        cached = entry is not None
        started = time.monotonic()
        if entry is None:
            from tinydeploy.ml.train import train
            with self.cache.make("trained", key) as tmp:
                r = train(self.dataset, arch, tmp / "model.keras", label=self.label, epochs=epochs, seed=self.seed)
                (tmp / "result.json").write_text(json.dumps({"float_accuracy": r.test_accuracy,
                                                             "parameters": r.parameters, "weights": "int8",
                                                             "notes": {"arch": arch}}))
            entry = self.cache.root / "trained" / key
        self.baseline_key, self.baseline_keras = key, entry / "model.keras"
        v = Variant("baseline", "baseline", {"arch": arch}, epochs, overrides={"arch": arch})
        v.seconds["train"] = time.monotonic() - started
        return self._finish(v, key, entry, cached)

    def variant(self, v: Variant) -> Variant:
        key = key_of("variant", v.technique, v.params, v.epochs, self.seed, self.baseline_key, self.dataset_id,
                     self.ml_hash, self.version)
        entry = self.cache.get("trained", key)
        cached = entry is not None
        started = time.monotonic()
        if entry is None:
            if self._make_variant is None:
                self._make_variant = make_variant_function()
            with self.cache.make("trained", key) as tmp:
                r = self._make_variant(v.technique, dict(v.params), self.dataset, self.label, self.baseline_keras,
                                       tmp / "model.keras", v.epochs, seed=self.seed)
                made = Path(r.model_path)
                if made.resolve() != (tmp / "model.keras").resolve():     # written elsewhere: keep a copy
                    shutil.copy2(made, tmp / "model.keras")
                    spec_file = made.with_suffix(".dataset.json")
                    if spec_file.exists():
                        shutil.copy2(spec_file, tmp / "model.dataset.json")
                (tmp / "result.json").write_text(json.dumps(
                    {"float_accuracy": r.float_accuracy, "parameters": r.parameters,
                     "weights": getattr(r, "weights", "int8"), "params": getattr(r, "params", None) or v.params,
                     "notes": getattr(r, "notes", None) or {}}, default=str))
            entry = self.cache.root / "trained" / key
        v.seconds["train"] = time.monotonic() - started
        return self._finish(v, key, entry, cached)

    def _finish(self, v: Variant, trained_key: str, entry: Path, cached: bool) -> Variant:
        info = json.loads((entry / "result.json").read_text())
        v.keras, v.float_accuracy, v.parameters = entry / "model.keras", info["float_accuracy"], info["parameters"]
        v.weights_format, v.notes = info.get("weights", "int8"), info.get("notes", {})
        if info.get("params") and v.technique != "baseline":
            v.params = dict(info["params"])
        key = key_of("quantized", trained_key, v.name, v.weights_format, self.ml_hash, self.version)
        q_entry = self.cache.get("quantized", key)
        q_cached = q_entry is not None
        started = time.monotonic()
        if q_entry is None:
            with self.cache.make("quantized", key) as tmp:
                q = _quantize(v.keras, tmp / f"{v.name}.tflite", v.weights_format)
                (tmp / "result.json").write_text(json.dumps({"int8_accuracy": q.int8_accuracy,
                                                             "tflite_bytes": q.tflite_bytes}))
            q_entry = self.cache.root / "quantized" / key
        v.tflite = q_entry / f"{v.name}.tflite"
        v.reference_accuracy = json.loads((q_entry / "result.json").read_text())["int8_accuracy"]
        v.cached = cached and q_cached
        v.seconds["quantize"] = time.monotonic() - started
        return v


@dataclass
class _Built:
    """What one firmware job gave (a Row is made from it once every job is done)."""
    status: str
    reason: str | None = None
    measurement: Measurement | None = None
    outputs: Path | None = None
    weight_bytes: int | None = None
    mismatch_examples: list = field(default_factory=list)
    cached: bool = False
    fits: bool | None = None


def _board_facts(board) -> dict:
    """The board's YAML as it matters to the firmware (its power figure does not)."""
    return board.model_dump(mode="json", exclude={"power", "description"})


def _fits_named_board(m: Measurement, board) -> tuple[bool, str | None]:
    flash = m.flash_without_vectors
    if flash is not None and flash > board.flash.size:
        return False, f"needs {flash:,} bytes of flash (without test vectors), {board.name} has {board.flash.size:,}"
    if m.ram.total is not None and m.ram.total > board.ram.size:
        return False, f"needs {m.ram.total:,} bytes of RAM, {board.name} has {board.ram.size:,}"
    return True, None


def _keep_log(exc: Exception, project: Path, keep: Path) -> Exception:
    """The failure, its message without the (temporary) project path, the build log kept at ``keep``."""
    line = _first_line(exc)
    log = project / "build.log"
    if log.exists():
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(log, keep)
        line = line.replace(f"(full log: {log})", f"(build log: {keep})")
    line = line.replace(f"{project}: ", "").replace(str(project), "<project>")
    if isinstance(exc, TinyDeployError):
        return type(exc)(line, exc.exit_code)
    return TinyDeployError(line)


def _trim(project: Path) -> None:
    """Drop a cached project's object files (most of its bytes); the sources and the ELF stay."""
    for path in (project / ".pio").rglob("*"):
        if path.suffix in (".o", ".a", ".d") and path.is_file():
            path.unlink()


def _firmware_job(variant: Variant, board_name: str, vectors: int | None, cache: Cache, build_hash: str,
                  version: str, runtime: str = "aot", tflm_dir: Path | None = None) -> _Built:
    """Compile, build for the board (or its emulated proxy), run in QEMU, verify; through the cache."""
    from tinydeploy.runtimes import load_model
    from tinydeploy.platforms import boards as boards_mod
    from tinydeploy.platforms.registry import platform_for
    from tinydeploy.platforms.render import fit_check
    from tinydeploy.verify import vectors as vectors_mod
    board = boards_mod.get(board_name)
    target = platform_for(board).emulation_target()
    try:
        model = load_model(variant.tflite, runtime, tflm_dir)
    except MissingTool:
        raise
    except Exception as exc:            # an operator or type the compiler does not support (yet): int4, ...
        return _Built(NOT_BUILDABLE, "does not compile: " + _first_line(exc).replace(f"{variant.tflite}: ", ""))
    testset = vectors_mod.testset_path(variant.tflite)
    with np.load(testset) as data:
        split = len(data["x"])
    wanted = min(vectors or split, split)
    row_bytes = model.graph.input_tensor().nbytes
    budget = target.flash.size - model.weight_bytes - CODE_RESERVE
    count = max(1, min(wanted, budget // row_bytes if budget > 0 else 1))
    key = key_of("firmware", file_hash(variant.tflite), variant.tflite.name, file_hash(testset), count,
                 _board_facts(board), _board_facts(target), build_hash, version, model.runtime,
                 str(getattr(model, "tree", "")))
    entry = cache.get("firmware", key)
    cached = entry is not None
    if entry is None:
        from tinydeploy.analysis.measurement import measure
        from tinydeploy.pipeline import build_for_emulation, run_firmware
        vecs = vectors_mod.load(variant.tflite, model.graph, count)
        try:
            fit_check(model, target, vecs)
        except BadInput as exc:
            line = _first_line(exc).replace(f"{variant.tflite}: ", "")
            return _Built(NO_FIT, line.replace(", fewer --vectors,", ","), weight_bytes=model.weight_bytes, fits=False)
        try:
            with cache.make("firmware", key) as tmp:
                try:
                    fw = build_for_emulation(variant.tflite, board.name, tmp / "project", vectors=count,
                                             runtime=runtime, tflm_dir=tflm_dir)
                    result = run_firmware(fw)
                except Exception as exc:
                    raise _keep_log(exc, tmp / "project", cache.root / "logs" / f"{variant.name}-{board.name}-{key}.log")
                measured = measure(fw, result)
                _trim(tmp / "project")
                np.savez(tmp / "outputs.npz", outputs=result.outputs,
                         labels=result.labels if result.labels is not None else np.zeros(0, np.int64),
                         expected=result.expected)
                (tmp / "result.json").write_text(json.dumps(
                    {"measurement": measured.to_json(), "weight_bytes": model.weight_bytes,
                     "mismatches": [list(map(str, m)) for m in result.mismatches[:10]]}, indent=1))
        except MissingTool:
            raise
        except TinyDeployError as exc:
            line = _first_line(exc)
            if "does not fit" in line:
                return _Built(NO_FIT, line, weight_bytes=model.weight_bytes, fits=False)
            return _Built(NOT_BUILDABLE, line, weight_bytes=model.weight_bytes)
        except Exception as exc:        # a firmware that hangs or crashes in the emulator, ...
            return _Built(NOT_BUILDABLE, _first_line(exc), weight_bytes=model.weight_bytes)
        entry = cache.root / "firmware" / key
    saved = json.loads((entry / "result.json").read_text())
    measured = Measurement.from_json(saved["measurement"], str(entry / "result.json"))
    fits, why = _fits_named_board(measured, board)
    status = MISMATCH if measured.mismatches.values else (OK if fits else NO_FIT)
    reason = why if not fits else None
    if measured.mismatches.values:
        reason = (f"{measured.mismatches.values} output values in {measured.mismatches.vectors} vectors differ "
                  "from the TFLite Micro reference")
    if wanted > count:
        reason = (reason + "; " if reason else "") + \
            f"{count} of {wanted} test vectors baked in (the rest would not fit the flash)"
    return _Built(status, reason, measured, entry / "outputs.npz", saved.get("weight_bytes"),
                  saved.get("mismatches", []), cached, fits)


# ---- compare ----------------------------------------------------------------------------------------------------

def _resolve_variants(config: CompareConfig, epochs: int, where: str) -> tuple[list[Variant], list[str]]:
    """The variants to make (not made yet), their parameters resolved over the technique's defaults
    and checked (one BadInput line naming ``where`` and the variant), and notes for the report."""
    from tinydeploy.ml.compress import defaults
    notes = []
    if config.variants is not None:
        specs = list(config.variants)
    else:
        specs = [VariantSpec(technique=t) for t in techniques() if t != "baseline"]
    variants = []
    for spec, name in zip(specs, _names(specs)):
        try:
            params = defaults.resolve(spec.technique, dict(spec.params))
        except TinyDeployError as exc:
            raise BadInput(f"{where}: variant {name}: {exc}") from None
        variants.append(Variant(name, spec.technique, params, spec.epochs or config.epochs or epochs,
                                overrides=dict(spec.params)))
    return variants, notes


def _names(specs: list[VariantSpec]) -> list[str]:
    names, seen = [], Counter()
    explicit = [s.name for s in specs if s.name]
    duplicate = next((n for n, k in Counter(explicit).items() if k > 1), None)
    if duplicate:
        raise BadInput(f"two variants are named '{duplicate}'; give each a different name")
    for s in specs:
        if s.name:
            names.append(s.name)
            continue
        seen[s.technique] += 1
        name = s.technique if seen[s.technique] == 1 else f"{s.technique}_{seen[s.technique]}"
        while name in explicit or name in names:
            seen[s.technique] += 1
            name = f"{s.technique}_{seen[s.technique]}"
        names.append(name)
    return names


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out}: exists and is not a directory; give -o a directory for the report")
    if out.is_dir() and any(out.iterdir()) and not (out / OUTPUT_MARKER).exists():
        raise BadInput(f"{out}: a directory with other files in it; compare replaces its output directory, "
                       "so give a new or empty one (or an earlier compare's)")


def _progress(console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=console is None, transient=False)


def compare(dataset: str = "iot-sensors", boards: Sequence[str] = ("mps2-an386",), out: Path | str = "compare", *,
            label: str | None = None, config: Path | str | CompareConfig | None = None, quick: bool = False,
            weights: CostWeights | str | None = None, jobs: int | None = None, arch: str | None = None,
            epochs: int | None = None, variant_epochs: int | None = None, vectors: int | None = None,
            seed: int | None = None, cache: Path | str | None = None, console=None, runtime: str = "aot",
            tflm_dir: Path | str | None = None) -> CompareResult:
    """Train the baseline and its variants on ``dataset``, quantize each, build each for each of
    ``boards``, run each in the emulator, verify every output against TFLite Micro, and write the
    report into ``out`` (see the module's docstring).

    ``config``: a variants YAML file (or a CompareConfig; without one, every technique of
    tinydeploy.ml.compress with its default parameters); ``quick``: fewer epochs (QUICK_EPOCHS for
    the baseline, QUICK_VARIANT_EPOCHS for the variants) and the first QUICK_VECTORS test vectors;
    ``weights``: the cost's weights (analysis/recommend.py); ``jobs``: firmware builds and runs at
    once [the CPU count]; ``arch``, ``epochs`` (the baseline's), ``variant_epochs``, ``seed`` and
    ``vectors`` override the config file and ``quick``; ``cache``: where trained models and
    firmware results are kept [<tinydeploy cache>/compare]; ``console``: a rich Console for the
    progress bars (None: quiet); ``runtime`` (aot, tflm, auto) and ``tflm_dir``: what runs the models on
    the boards. Bad input is one BadInput line, raised before anything is trained."""
    from tinydeploy.platforms import boards as boards_mod
    started = time.monotonic()
    out = Path(out)
    _check_out(out)
    if not boards:
        raise BadInput("give at least one --board")
    if runtime == "tflm":
        from tinydeploy.runtimes import tflm
        tflm_dir = tflm.find_tree(tflm_dir)          # no TFLM tree: one line now, not after training
    board_objs = [boards_mod.get(b) for b in boards]
    board_objs = list({b.name: b for b in board_objs}.values())
    board_names = [b.name for b in board_objs]
    weights = weights if isinstance(weights, CostWeights) else CostWeights.parse(weights)
    where = "variants"
    if isinstance(config, CompareConfig):
        cfg = config
    elif config is not None:
        cfg, where = load_config(Path(config)), str(config)
    else:
        cfg = CompareConfig()
    if arch is not None and arch not in _archs():
        raise BadInput(f"unknown architecture '{arch}'; choose one of: {', '.join(_archs())}")
    for name, value in (("epochs", epochs), ("variant-epochs", variant_epochs), ("vectors", vectors),
                        ("jobs", jobs)):
        if value is not None and value < 1:
            raise BadInput(f"--{name} must be at least 1, got {value}")
    arch = arch or cfg.baseline.arch
    seed = cfg.seed if seed is None else seed
    base_epochs = epochs or cfg.baseline.epochs or (QUICK_EPOCHS if quick else FULL_EPOCHS)
    if quick and not epochs:
        base_epochs = min(base_epochs, QUICK_EPOCHS)
    if vectors is None and quick:
        vectors = QUICK_VECTORS
    store = Cache(Path(cache) if cache else cache_dir() / "compare")
    dataset_id = _dataset_source(dataset, label)
    dataset_arg = dataset if dataset_id.startswith("builtin:") else str(Path(dataset).resolve())
    pending, notes = _resolve_variants(cfg, VARIANT_EPOCHS, where)
    for v in pending:
        if variant_epochs:
            v.epochs = variant_epochs
        elif quick:
            v.epochs = min(v.epochs, QUICK_VARIANT_EPOCHS)
    import importlib.util
    if importlib.util.find_spec("tensorflow") is None:
        raise MissingTool("compare trains models and needs TensorFlow: pip install 'tinydeploy[train]'")

    jobs = jobs or os.cpu_count() or 1
    build_hash, version = source_hash(), tinydeploy_version()
    maker = _Maker(store, dataset_arg, label, dataset_id, seed)
    made: list[Variant] = []
    built: dict[tuple[str, str], _Built] = {}
    timings: dict[str, float] = {}
    with _progress(console) as progress, ThreadPoolExecutor(max_workers=jobs) as pool:
        t_models = progress.add_task("train + quantize", total=1 + len(pending))
        t_fw = progress.add_task("build + run in QEMU", total=0)
        futures = {}

        def submit(v: Variant):
            for b in board_names:
                progress.update(t_fw, total=progress.tasks[t_fw].total + 1)
                fut = pool.submit(_firmware_job, v, b, vectors, store, build_hash, version, runtime, tflm_dir)
                fut.add_done_callback(lambda _f: progress.advance(t_fw))
                futures[(v.name, b)] = fut

        progress.update(t_models, description="train + quantize: baseline")
        base = maker.baseline(arch, base_epochs)
        made.append(base)
        submit(base)
        progress.advance(t_models)
        for v in pending:
            progress.update(t_models, description=f"train + quantize: {v.name}")
            try:
                v = maker.variant(v)
            except (KeyboardInterrupt, MissingTool):
                raise
            except Exception as exc:      # one variant failing is reported, not fatal
                v.error = _first_line(exc)
            made.append(v)
            if v.error is None:
                submit(v)
            progress.advance(t_models)
        progress.update(t_models, description="train + quantize")
        timings["models_s"] = time.monotonic() - started
        for key, fut in futures.items():
            built[key] = fut.result()
    timings["models_and_firmware_s"] = time.monotonic() - started

    rows = _rows(made, board_names, built, board_objs)
    recommendations = _recommend(rows, board_names, weights)
    from tinydeploy.verify.vectors import testset_path
    with np.load(testset_path(base.tflite)) as data:
        split = len(data["x"])
    if vectors and vectors < split:
        notes.append(f"accuracy on the first {vectors} of the {split} test vectors (a sample; the full run uses all)")
    else:
        notes.append(f"accuracy on the whole test split ({split} vectors)")
    effective = {"dataset": dataset, "label": label, "boards": board_names, "quick": quick, "seed": seed,
                 "vectors": vectors, "weights": weights.as_dict(), "baseline": {"arch": arch, "epochs": base.epochs},
                 "variants": [{"name": v.name, "technique": v.technique, "params": v.overrides, "epochs": v.epochs}
                              for v in made[1:]]}
    result = CompareResult(out, dataset, board_names, made, rows, recommendations, weights, quick, vectors, split,
                           cache=store.stats(), timings=timings, notes=notes, config=effective)
    write_outputs(result)
    result.timings["total_s"] = time.monotonic() - started
    return result


def _rows(made: list[Variant], board_names: list[str], built: dict, board_objs) -> list[Row]:
    powers = {b.name: b.power for b in board_objs}
    base_weights = next((b.weight_bytes for (v, _), b in built.items() if v == "baseline" and b.weight_bytes), None)
    rows = []
    for v in made:
        for board in board_names:
            common = dict(variant=v.name, technique=v.technique, params=v.params, overrides=v.overrides, board=board,
                          parameters=v.parameters, float_accuracy=v.float_accuracy, weights_format=v.weights_format)
            if v.error is not None:
                rows.append(Row(status=NOT_MADE, reason=v.error, **common))
                continue
            b = built[(v.name, board)]
            ratio = base_weights / b.weight_bytes if base_weights and b.weight_bytes else None
            energy = None
            power = powers.get(board)
            if b.measurement and b.measurement.estimated_time and power is not None:
                energy = Energy(power.active_mw * b.measurement.estimated_time.ms, power.active_mw, power.source)
            rows.append(Row(status=b.status, reason=b.reason, measurement=b.measurement, compression_ratio=ratio,
                            energy=energy, fits=b.fits, outputs=b.outputs, mismatch_examples=b.mismatch_examples,
                            cached=b.cached, **common))
    return rows


def candidates_for(rows: list[Row]) -> list[Candidate]:
    out = []
    for r in rows:
        why = None if r.status == OK else f"{r.status}" + (f": {r.reason}" if r.reason else "")
        out.append(Candidate(r.variant, r.accuracy, r.latency_ms, r.flash_bytes, r.energy.uj if r.energy else None,
                             fits=bool(r.fits) and r.ran, verified=r.ran and r.mismatches == 0, why_not=why))
    return out


def _recommend(rows: list[Row], board_names: list[str], weights: CostWeights) -> list[Recommendation]:
    recs = []
    for board in board_names:
        on_board = [r for r in rows if r.board == board]
        rec = recommend(board, candidates_for(on_board), weights)
        for r in on_board:
            r.cost = rec.costs.get(r.variant)
            r.recommended = r.variant == rec.variant
        recs.append(rec)
    return recs


# ---- output -----------------------------------------------------------------------------------------------------

def params_text(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) if params else "-"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:,.1f}"


def tables(result: CompareResult) -> list:
    """The terminal tables (rich): one per board, then the recommendations and the notes."""
    from rich.table import Table
    from rich.text import Text
    from tinydeploy.platforms import boards as boards_mod
    items = []
    for board_name in result.boards:
        board = boards_mod.get(board_name)
        power = board.power
        t = Table(title=f"{board_name} ({board.clock_hz / 1e6:g} MHz, {board.flash.size // 1024:,} KB flash, "
                        f"{board.ram.size // 1024:,} KB RAM)",
                  caption="instructions: exact counts under QEMU -icount, not cycles; ms: estimate at 1 "
                          "instruction/cycle; uJ: estimate, active power x ms ("
                          + (f"{power.active_mw:g} mW, {power.source}" if power else "no power figure for this board")
                          + ")", caption_justify="left")
        for col in ("variant", "technique (params)", "parameters", "int8 acc. (firmware)", "mismatches",
                    "code KB", "weights KB", "arena B", "instructions", "est. ms", "est. uJ", "compression",
                    "fits", "cost"):
            t.add_column(col, justify="left" if col in ("variant", "technique (params)", "fits") else "right")
        for r in (r for r in result.rows if r.board == board_name):
            m = r.measurement
            name = r.variant + (" *" if r.recommended else "")
            tech = r.technique + ("" if not r.overrides else f" ({params_text(r.overrides)})")
            if m is None:
                t.add_row(name, tech, _count(r.parameters), "-", "-", "-", "-", "-", "-", "-", "-", "-",
                          r.status, "-")
                continue
            t.add_row(name, tech, _count(r.parameters), _pct(m.accuracy), f"{m.mismatches.values}",
                      _kb(m.flash.code), _kb(m.flash.weights), f"{m.ram.arena:,}", _count(r.instructions),
                      "-" if r.latency_ms is None else f"{r.latency_ms:.4f}",
                      "-" if r.energy is None else f"{r.energy.uj:.3f}",
                      "-" if r.compression_ratio is None else f"{r.compression_ratio:.2f}x",
                      "yes" if r.status == OK else r.status, "-" if r.cost is None else f"{r.cost:.3f}")
        items.append(t)
        for r in (r for r in result.rows if r.board == board_name and r.reason):
            items.append(Text(f"  {r.variant}: {r.status}: {r.reason}"))
    items.append(Text("recommendation (* in the tables; cost weights " + str(result.weights) + "):", style="bold"))
    for rec in result.recommendations:
        items.append(Text(f"  {rec.board}: {rec.reason}"))
    for note in result.notes:
        items.append(Text(f"note: {note}", style="dim"))
    return items


def _count(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table_text(result: CompareResult) -> str:
    from rich.console import Console
    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None, force_terminal=False)
    for item in tables(result):
        console.print(item)
    return buf.getvalue()


CSV_COLUMNS = ("variant", "technique", "params", "board", "status", "reason", "parameters", "weights_format",
               "float_accuracy", "firmware_accuracy", "vectors", "vector_origin", "mismatches", "flash_total",
               "flash_code", "flash_weights", "flash_vectors", "flash_without_vectors", "ram_total", "arena",
               "instructions_median", "clock_hz", "estimated_ms", "energy_uj", "power_mw", "power_source",
               "compression_ratio", "fits", "cost", "recommended")


def csv_rows(result: CompareResult) -> list[dict]:
    out = []
    for r in result.rows:
        m = r.measurement
        out.append({
            "variant": r.variant, "technique": r.technique, "params": json.dumps(r.params, sort_keys=True),
            "board": r.board, "status": r.status, "reason": r.reason or "", "parameters": r.parameters,
            "weights_format": r.weights_format, "float_accuracy": r.float_accuracy,
            "firmware_accuracy": m.accuracy if m else None, "vectors": m.vectors if m else None,
            "vector_origin": m.vector_origin if m else None, "mismatches": m.mismatches.values if m else None,
            "flash_total": m.flash.total if m else None, "flash_code": m.flash.code if m else None,
            "flash_weights": m.flash.weights if m else None, "flash_vectors": m.flash.vectors if m else None,
            "flash_without_vectors": r.flash_bytes, "ram_total": m.ram.total if m else None,
            "arena": m.ram.arena if m else None, "instructions_median": r.instructions,
            "clock_hz": m.estimated_time.clock_hz if m and m.estimated_time else None,
            "estimated_ms": r.latency_ms, "energy_uj": r.energy.uj if r.energy else None,
            "power_mw": r.energy.power_mw if r.energy else None,
            "power_source": r.energy.source if r.energy else None, "compression_ratio": r.compression_ratio,
            "fits": r.fits, "cost": r.cost, "recommended": r.recommended})
    return out


def as_json(result: CompareResult) -> dict:
    measurements, not_run = [], []
    for r in result.rows:
        if r.measurement is not None:
            entry = {**r.measurement.to_json(), **r.extra_json()}
            if r.reason:
                entry["reason"] = r.reason
            measurements.append(entry)
        else:
            not_run.append({"variant": r.variant, "technique": r.technique, "params": r.params, "board": r.board,
                            "status": r.status, "reason": r.reason})
    return {"schema": SCHEMA, "version": VERSION, "dataset": result.dataset, "boards": result.boards,
            "quick": result.quick, "vectors": result.vectors, "test_split": result.test_split,
            "notes": {"accuracy": "firmware int8 accuracy: arg-max of the firmware's own outputs on the test "
                                  "vectors baked into it", "instructions": INSTRUCTIONS_NOTE,
                      "estimated_time": ESTIMATE_NOTE, "energy": ENERGY_NOTE,
                      "compression_ratio": "baseline weight bytes / variant weight bytes", "other": result.notes},
            "cost": {"weights": result.weights.as_dict(), "formula": FORMULA},
            "variants": [{"name": v.name, "technique": v.technique, "params": v.params, "epochs": v.epochs,
                          "weights_format": v.weights_format, "parameters": v.parameters,
                          "float_accuracy": v.float_accuracy, "reference_int8_accuracy": v.reference_accuracy,
                          "notes": v.notes, "error": v.error, "cached": v.cached, "seconds": v.seconds}
                         for v in result.variants],
            "measurements": measurements, "not_run": not_run,
            "recommendations": [rec.to_json() for rec in result.recommendations],
            "cache": result.cache, "timings": result.timings}


def load_measurements(path: Path) -> list[Measurement]:
    """The Measurements of a compare.json, each validated against the measurement schema (one line if not)."""
    data = read_json(path, "compare")
    again = "regenerate it with `tinydeploy compare ... -o DIR`"
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("version") != VERSION:
        raise BadInput(f"{path}: not a tinydeploy compare file version {VERSION}; {again}")
    entries = data.get("measurements")
    if not isinstance(entries, list):
        raise BadInput(f"{path}: no 'measurements' list; {again}")
    skip = set(EXTRA_FIELDS) | {"reason"}
    return [Measurement.from_json({k: v for k, v in e.items() if k not in skip} if isinstance(e, dict) else e,
                                  f"{path}: measurements[{i}]", again) for i, e in enumerate(entries)]


def write_outputs(result: CompareResult) -> None:
    """Every file of the report, into result.out at once (atomic_dir)."""
    from tinydeploy.analysis import html as html_mod
    from tinydeploy.analysis import plots
    started = time.monotonic()
    with atomic_dir(result.out) as tmp:
        (tmp / "outputs").mkdir()
        for r in result.rows:
            if r.outputs is not None and r.outputs.exists():
                shutil.copy2(r.outputs, tmp / "outputs" / f"{r.variant}-{r.board}.npz")
        (tmp / "table.txt").write_text(table_text(result))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in csv_rows(result):
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        (tmp / "compare.csv").write_text(buf.getvalue())
        (tmp / "config.yaml").write_text(yaml.safe_dump(result.config, sort_keys=False))
        figure = plots.overview_png(result)
        pareto = plots.pareto_png(result)
        (tmp / "compare.png").write_bytes(figure)
        (tmp / "pareto.png").write_bytes(pareto)
        (tmp / "report.html").write_text(html_mod.report(result, figure, pareto))
        result.timings["report_s"] = time.monotonic() - started
        (tmp / OUTPUT_MARKER).write_text(json.dumps(as_json(result), indent=1, default=str) + "\n")
    names = ("compare.json", "compare.csv", "table.txt", "compare.png", "pareto.png", "report.html", "config.yaml",
             "outputs")
    result.files = {n: result.out / n for n in names}

"""Where tinydeploy's own resources live (package data, found through importlib.resources),
the user's cache, and writing outputs atomically."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

# The package's data (boards/, templates/, firmware/, renode/) ships inside the wheel. An installed
# wheel or a source checkout is a real directory, so the files can be copied and symlinked.
RESOURCES = Path(str(resources.files("tinydeploy") / "resources"))
TEMPLATES = RESOURCES / "templates"
FIRMWARE = RESOURCES / "firmware"
KERNELS = FIRMWARE / "kernels"
BOARDS = RESOURCES / "boards"
RENODE = RESOURCES / "renode"
TFLM_FIGURES = RESOURCES / "tflm_figures.json"


def cache_dir() -> Path:
    """Per-user cache (PlatformIO core, reference figures)."""
    base = os.environ.get("TINYDEPLOY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tinydeploy")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_dir(target: Path):
    """Yield a fresh temporary directory that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write(target: Path, data: bytes | str) -> None:
    """Write a file through a temporary name and rename it into place."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, target)

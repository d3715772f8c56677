"""Where tinydeploy's own resources live (package data, found through importlib.resources),
the user's cache, and writing outputs: atomically, following the umask, never over a folder
the user made, with one clear line when the file system says no."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import shutil
import sys
import tempfile
import threading
from importlib import resources
from pathlib import Path

from tinydeploy.core.errors import OutputError

# The package's data (boards/, templates/, firmware/, renode/) ships inside the wheel. An installed
# wheel or a source checkout is a real directory, so the files can be copied and symlinked.
RESOURCES = Path(str(resources.files("tinydeploy") / "resources"))
TEMPLATES = RESOURCES / "templates"
FIRMWARE = RESOURCES / "firmware"
KERNELS = FIRMWARE / "kernels"
BOARDS = RESOURCES / "boards"
RENODE = RESOURCES / "renode"

# Every folder tinydeploy writes as a whole carries this file; a folder without it is the user's.
MARKER = ".tinydeploy"
MARKER_TEXT = "Made by tinydeploy: the next convert/build/run/compare into this folder replaces it as a whole.\n"
# Folders made before the marker existed: a project's manifest, a model library's kernels, a compare report.
LEGACY_SIGNS = ("tinydeploy.json", "td_simd.h", "compare.json")
STDOUT = "-"                       # `--json -`: write to standard output
FILE_MODE, DIR_MODE = 0o666, 0o777  # before the umask, as open() and mkdir() create them
INSTALLATION_KEY_LENGTH = 12

_REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
            errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
            errno.EPERM: "the operation is not permitted there", errno.ENOTDIR: "a parent is a file, not a folder",
            errno.ENOENT: "files cannot be created there",
            errno.EISDIR: "it is a folder", errno.EEXIST: "a file of that name is in the way"}
# Errors that are the file system's, wherever in a block they happen (writes report no file name).
_FILESYSTEM_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)

_force = False


def cache_dir() -> Path:
    """Per-user cache (PlatformIO core, reference figures)."""
    base = os.environ.get("TINYDEPLOY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tinydeploy")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_cache_dir() -> Path:
    """Compiled objects shared by every project built with the same compiler and flags (TFLM's):
    $TINYDEPLOY_BUILD_CACHE, else under the user cache."""
    return Path(os.environ.get("TINYDEPLOY_BUILD_CACHE") or cache_dir() / "build-cache")


def installation_key() -> str:
    """A short hash of this installation (its resources folder and package version): caches keyed by
    it are never shared by two checkouts or two versions of tinydeploy on one machine."""
    try:
        from importlib.metadata import version
        package_version = version("tinydeploy")
    except Exception:        # a bare checkout on PYTHONPATH
        package_version = "unknown"
    text = f"{RESOURCES.resolve()}\n{package_version}"
    return hashlib.sha256(text.encode()).hexdigest()[:INSTALLATION_KEY_LENGTH]


# ---- outputs ----------------------------------------------------------------------------------------------------

def is_stdout(path) -> bool:
    """True for ``-``, the path that means standard output."""
    return path is not None and str(path) == STDOUT


def umask() -> int:
    """The process's umask, read without changing it (other threads may be creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_guard:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_umask_guard = threading.Lock()


def output_error(target: Path, exc: OSError) -> OutputError:
    """One line for an OSError met while writing ``target``."""
    blocker = _file_in_the_way(Path(target))
    if blocker is not None:
        reason = f"{blocker} is a file, not a folder"
    else:
        reason = _REASONS.get(exc.errno, exc.strerror or str(exc))
        if exc.strerror and reason.lower() != exc.strerror.lower():
            reason += f" ({exc.strerror.lower()})"
    return OutputError(f"cannot write {target}: {reason}; choose another output path")


def _file_in_the_way(target: Path) -> Path | None:
    """The nearest existing ancestor of ``target`` when it is not a folder."""
    for parent in target.absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


@contextlib.contextmanager
def replacing_allowed(allowed: bool = True):
    """Within the block (a command given --force), folders without the marker may be replaced too."""
    global _force
    before, _force = _force, _force or allowed
    try:
        yield
    finally:
        _force = before


def made_by_tinydeploy(folder: Path) -> bool:
    return any((folder / name).exists() for name in (MARKER, *LEGACY_SIGNS))


def _probe_parent(target: Path) -> None:
    """Make ``target``'s parent and create (then remove) a file in it, or raise one line."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.probe.", dir=target.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise output_error(target, exc) from None


def check_output_dir(target: Path) -> None:
    """Refuse, before any long work, a folder tinydeploy may not replace or cannot write."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise OutputError(f"cannot write the folder {target}: a file of that name is in the way; "
                          "choose another output path")
    if target.is_dir() and not _force and any(target.iterdir()) and not made_by_tinydeploy(target):
        raise OutputError(f"{target} exists and was not made by tinydeploy (no {MARKER} file), so it is not "
                          "replaced; choose a new folder, or pass --force to replace it as a whole")
    _probe_parent(target)


def check_output_file(target: Path | str | None) -> None:
    """Refuse, before any long work, a file path that cannot be written (``-`` and None pass)."""
    if target is None or is_stdout(target):
        return
    target = Path(target)
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a folder; give a file name")
    _probe_parent(target)


def _chmod(path: Path, mode: int) -> None:
    os.chmod(path, mode & ~umask())


def _marked_tmp_dir(target: Path) -> Path:
    """A new folder beside ``target`` holding the marker, or one line (OutputError)."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        _chmod(tmp, DIR_MODE)
        (tmp / MARKER).write_text(MARKER_TEXT)
    except OSError as exc:
        raise output_error(target, exc) from None
    return tmp


def fresh_dir(target: Path) -> Path:
    """``target`` replaced now by an empty folder marked as tinydeploy's, for a command that fills it as it
    works and keeps what it wrote if it fails (federate: Flower's logs); the same checks as atomic_dir."""
    target = Path(target)
    check_output_dir(target)
    _replace_dir(_marked_tmp_dir(target), target)
    return target


@contextlib.contextmanager
def atomic_dir(target: Path):
    """Yield a fresh temporary directory that replaces ``target`` only if the block succeeds.

    ``target`` must be new, empty, or made by tinydeploy (its ``.tinydeploy`` marker), unless
    replacing_allowed(); file-system errors become one line (OutputError)."""
    target = Path(target)
    check_output_dir(target)
    tmp = _marked_tmp_dir(target)
    try:
        yield tmp
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        inside = any(str(name).startswith(str(tmp)) for name in (exc.filename, exc.filename2) if name)
        if inside or exc.errno in _FILESYSTEM_FULL:
            raise output_error(target, exc) from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _replace_dir(tmp, target)


def _replace_dir(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``, the old ``target`` (if any) moved aside first and then removed."""
    old = None
    try:
        if target.exists() or target.is_symlink():
            old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
            target.rename(old)
        tmp.rename(target)
    except OSError as exc:
        if old is not None and not target.exists():
            old.rename(target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(target, exc) from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write(target: Path | str, data: bytes | str) -> None:
    """Write a file through a temporary name and rename it into place (mode per the umask);
    ``-`` writes to standard output."""
    if is_stdout(target):
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        sys.stdout.flush()
        return
    target = Path(target)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), FILE_MODE & ~umask())
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise output_error(target, exc) from None
    except BaseException:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---- one tinydeploy at a time per project folder ----------------------------------------------------------------

_held: dict[Path, int] = {}            # project folder -> the open lock file this process holds
_held_guard = threading.Lock()


def lock_file(project: Path) -> Path:
    """The lock beside ``project`` (not in it: the folder itself is replaced by every render)."""
    project = Path(project).absolute()
    return project.with_name(f".{project.name}.lock")


def hold_project(project: Path, say=None) -> None:
    """Take ``project``'s lock and keep it until release_project() or the end of the process (a no-op
    when this process holds it already); when another process holds it, say so and wait for it."""
    key = Path(project).absolute()
    with _held_guard:
        if key in _held:
            return
        path = lock_file(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise output_error(Path(project), exc) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                (say or _say)(f"waiting for another tinydeploy (pid {holder}) that is building or running "
                              f"{project} ...")
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        _held[key] = fd


def release_project(project: Path) -> None:
    """Let other processes have ``project`` again."""
    with _held_guard:
        fd = _held.pop(Path(project).absolute(), None)
    if fd is not None:
        os.close(fd)          # closing the descriptor drops the flock


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

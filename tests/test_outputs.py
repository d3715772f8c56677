"""Outputs: a user's folder is never replaced without --force, file-system errors are one line and
exit 2 before any long work, modes follow the umask, `--json -` is standard output."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

from tinydeploy.core import resources
from tinydeploy.core.errors import OutputError

from helpers import assert_clean_failure, shared_model, tinydeploy

MODEL = "tflm/hello_world_int8.tflite"
UNWRITABLE = "/proc/tinydeploy-test"        # tests run as root: chmod does not stop root, /proc does


def _user_folder(tmp_path):
    folder = tmp_path / "myfirmware" / "src"
    folder.mkdir(parents=True)
    (folder / "main.c").write_text("int main(void) { return 0; }\n")
    (folder / "notes.txt").write_text("my notes\n")
    return folder


def _contents(folder):
    return {p.name: p.read_text() for p in folder.iterdir()}


@pytest.mark.parametrize("command", ["convert", "build"])
def test_a_users_folder_survives_and_force_replaces_it(tmp_path, command):
    folder = _user_folder(tmp_path)
    before = _contents(folder)
    proc = tinydeploy(command, shared_model(MODEL), "-o", folder)
    assert_clean_failure(proc, str(folder), "not made by tinydeploy", "--force")
    assert proc.returncode == 2 and _contents(folder) == before
    if command == "convert":            # (a build with --force replaces it the same way, through atomic_dir)
        assert tinydeploy(command, shared_model(MODEL), "-o", folder, "--force").returncode == 0
        assert "main.c" not in _contents(folder) and (folder / resources.MARKER).exists()


def test_a_folder_tinydeploy_made_is_replaced(tmp_path):
    out = tmp_path / "lib"
    assert tinydeploy("convert", shared_model(MODEL), "-o", out).returncode == 0
    (out / "stale.c").write_text("/* left over */\n")
    assert tinydeploy("convert", shared_model(MODEL), "-o", out).returncode == 0
    assert not (out / "stale.c").exists() and (out / "hello_world_int8.c").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".lib.")]      # no temporary left behind


@pytest.mark.parametrize("args", [
    ("convert", "{model}", "-o", f"{UNWRITABLE}/lib"),
    ("build", "{model}", "-o", f"{UNWRITABLE}/project"),
    ("convert", "{model}", "-o", "{file}/lib"),
    ("bench", "{model}", "--json", f"{UNWRITABLE}/b.json"),
    ("bench", "{model}", "--json", "{file}/b.json"),
    ("run", "{model}", "--json", "{file}/m.json"),
    ("compare", "-o", "{file}/out"),
])
def test_an_unwritable_output_is_one_line_before_any_work(tmp_path, args):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    proc = tinydeploy(*(a.format(model=shared_model(MODEL), file=blocker) for a in args), cwd=tmp_path)
    assert_clean_failure(proc, "cannot write", "choose another output path")
    assert proc.returncode == 2
    assert " took " not in proc.stderr and not (tmp_path / "build").exists()      # refused before it started


def test_a_file_in_the_way_of_the_folder(tmp_path):
    target = tmp_path / "lib"
    target.write_text("mine\n")
    assert_clean_failure(tinydeploy("convert", shared_model(MODEL), "-o", target), "a file of that name")
    assert target.read_text() == "mine\n"


def test_a_full_disk_while_writing_is_one_line_and_leaves_the_old_output(tmp_path):
    out = tmp_path / "out"
    with resources.atomic_dir(out) as tmp:
        (tmp / "a").write_text("first\n")
    with pytest.raises(OutputError, match="the disk is full"):
        with resources.atomic_dir(out):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert (out / "a").read_text() == "first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_interrupted_block_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with resources.atomic_dir(tmp_path / "out") as tmp:
            (tmp / "half").write_text("half\n")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_outputs_follow_the_umask(tmp_path):
    script = ("import sys; from pathlib import Path; from tinydeploy.core import resources as r\n"
              "with r.atomic_dir(Path(sys.argv[1]) / 'dir') as tmp: (tmp / 'f').write_text('x')\n"
              "r.atomic_write(Path(sys.argv[1]) / 'file.json', '{}')\n")
    for mask, dir_mode, file_mode in ((0o022, 0o755, 0o644), (0o027, 0o750, 0o640)):
        where = tmp_path / f"{mask:o}"
        where.mkdir()
        subprocess.run([sys.executable, "-c", script, str(where)], check=True, umask=mask)
        assert (os.stat(where / "dir").st_mode & 0o777) == dir_mode
        assert (os.stat(where / "file.json").st_mode & 0o777) == file_mode
        assert (os.stat(where / "dir" / "f").st_mode & 0o777) == file_mode


@pytest.mark.firmware
def test_json_dash_is_standard_output_and_nothing_else(tmp_path):
    proc = tinydeploy("run", shared_model(MODEL), "--vectors", "2", "-o", tmp_path / "p", "--json", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    measured = json.loads(proc.stdout)                   # the whole of stdout is the one JSON document
    assert measured["schema"] == "tinydeploy.measurement" and measured["vectors"] == 2
    assert "instructions/inference" in proc.stderr        # the table went to stderr
    assert not (tmp_path / "-").exists()

"""A tool that talks while it works: progress on a terminal's stderr (rich), none when stderr is piped, with
--quiet or with --json - (stdout is then data); and the CLI's own papercuts (help text, --version, doctor)."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys

import pytest

from helpers import shared_model, tinydeploy

MODEL = "tflm/hello_world_int8.tflite"        # three small layers: a quick build
VECTORS = 3
TERMINAL_COLUMNS = "160"                      # wide enough that stage texts stay on one line
READ_CHUNK = 65536
POLL_S = 0.2


def on_terminal(*args, cwd) -> tuple[int, str, str]:
    """The CLI with its stderr on a pseudo-terminal (as in a user's shell) and stdout piped:
    (exit code, stdout, everything written to the terminal)."""
    master, slave = os.openpty()
    env = dict(os.environ, COLUMNS=TERMINAL_COLUMNS, TERM="xterm")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "tinydeploy.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    os.close(slave)
    terminal = bytearray()
    while True:                       # drain the terminal while the command runs (a full pty would block it)
        if select.select([master], [], [], POLL_S)[0]:
            try:
                data = os.read(master, READ_CHUNK)
            except OSError:           # the child closed its end
                break
            if not data:
                break
            terminal += data
        elif proc.poll() is not None:
            break
    os.close(master)
    stdout = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(), stdout, terminal.decode(errors="replace")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("progress")


@pytest.mark.firmware
def test_run_shows_its_stages_and_counts_the_vectors_on_a_terminal(work):
    code, stdout, terminal = on_terminal("run", shared_model(MODEL), "--vectors", VECTORS, cwd=work)
    assert code == 0, terminal
    assert "building aot firmware for hello_world_int8.tflite on mps2-an386" in terminal
    assert f"running {VECTORS} vectors on mps2-an386 in qemu" in terminal
    assert f"{VECTORS}/{VECTORS}" in terminal                      # the bar's count once every vector reported
    assert "checking every output against the TFLite Micro reference" in terminal
    assert "\x1b[" in terminal                                     # drawn live (escape sequences), not logged
    assert "bit-exact" in stdout and "building" not in stdout      # stdout stays the result


@pytest.mark.firmware
def test_bench_per_layer_shows_both_builds_and_the_profiling_run(work):
    code, stdout, terminal = on_terminal("bench", shared_model(MODEL), "--per-layer", cwd=work)
    assert code == 0, terminal
    assert "building aot firmware for hello_world_int8.tflite" in terminal
    assert "building profiling firmware for hello_world_int8.tflite" in terminal
    assert "running 1 vector on mps2-an386 in qemu" in terminal
    assert "profiling every layer of 1 vector on mps2-an386" in terminal
    assert "per layer" in stdout


@pytest.mark.firmware
def test_build_shows_progress_and_quiet_silences_it(work):
    code, _, terminal = on_terminal("build", shared_model(MODEL), cwd=work)
    assert code == 0 and "building aot firmware" in terminal
    code, stdout, terminal = on_terminal("build", shared_model(MODEL), "--quiet", cwd=work)
    assert code == 0 and "firmware:" in stdout
    assert "building" not in terminal and " took " not in terminal and "\x1b[?25l" not in terminal


@pytest.mark.firmware
def test_no_progress_with_json_on_stdout(work):
    code, stdout, terminal = on_terminal("run", shared_model(MODEL), "--vectors", VECTORS, "--json", "-", cwd=work)
    assert code == 0, terminal
    assert json.loads(stdout)["mismatches"] == {"values": 0, "vectors": 0}      # nothing but the JSON
    assert "building" not in terminal and "running" not in terminal and "\x1b[?25l" not in terminal


@pytest.mark.firmware
def test_no_progress_when_stderr_is_piped(work):
    proc = tinydeploy("run", shared_model(MODEL), "--vectors", VECTORS, cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "building" not in proc.stderr and "running" not in proc.stderr and "\x1b" not in proc.stderr


# ---- the CLI's papercuts -----------------------------------------------------------------------------------------

def test_help_shows_square_brackets_and_plain_metavars():
    run_help = tinydeploy("run", "--help", env=dict(os.environ, COLUMNS="200"))
    assert "[build/<model>-<board>]" in run_help.stdout
    assert "[$TINYDEPLOY_TFLM]" in run_help.stdout and "--quiet" in run_help.stdout
    bench_help = tinydeploy("bench", "--help", env=dict(os.environ, COLUMNS="200"))
    assert "MODEL..." in bench_help.stdout and "list[" not in bench_help.stdout


def test_version():
    from importlib.metadata import version
    proc = tinydeploy("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"tinydeploy {version('tinydeploy')}"


def test_doctor_says_what_the_setup_cannot_install():
    from tinydeploy.core import doctor
    checks = doctor.checks()
    assert [c.name for c in checks if not c.by_setup] == ["renode"]
    proc = tinydeploy("doctor", env=dict(os.environ, COLUMNS="250"))
    assert proc.returncode == 0
    renode = next(c for c in checks if c.name == "renode")
    if not renode.found:
        assert "`bash scripts/setup.sh` cannot install renode (not packaged for Debian" in proc.stdout
    missing = doctor.missing_summary([doctor.Check("qemu-system-arm", False, "missing", "run", "apt-get install x"),
                                      doctor.Check("renode", False, "missing", "renode runs", doctor.RENODE_INSTALL,
                                                   by_setup=False)])
    assert missing.startswith("2 missing: `bash scripts/setup.sh` installs qemu-system-arm; "
                              "`bash scripts/setup.sh` cannot install renode")

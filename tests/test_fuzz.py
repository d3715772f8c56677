"""Hostile input: mutated shared models never crash tinydeploy (a bounded run of `tinydeploy.verify.fuzz`).

Each mutant goes through `inspect` and `convert` in this process; the result is a clean refusal (one
TinyDeployError line) or an accepted model whose host-built outputs equal the reference interpreter's
byte for byte. No traceback, no signal, no hang (a per-mutant timeout). A few go through the CLI as
subprocesses. `scripts/fuzz.sh` runs the long campaign (10,000 mutants) with the same code."""
from __future__ import annotations

import signal
from collections import Counter

import pytest

from helpers import SHARED_MODEL_NAMES, shared_model, tinydeploy
from tinydeploy.verify import fuzz, reference

SEED = 16                    # the campaign in the README used seed 0: these are other mutants
MUTANTS = 70                 # about 40 s on one core
CLI_MUTANTS = 3              # each runs inspect and convert as subprocesses
MUTANT_TIMEOUT_S = 30        # one mutant: inspect, convert, host build, both runs
CLI_TIMEOUT_S = 60
CLEAN_EXITS = (0, 2)         # success, bad input


class MutantTimeout(BaseException):
    """A mutant took longer than MUTANT_TIMEOUT_S (BaseException: `fuzz.check` must not catch it)."""


@pytest.fixture(scope="module")
def models():
    return [shared_model(name) for name in SHARED_MODEL_NAMES]


def _alarm(signum, frame):
    raise MutantTimeout


def test_mutants_in_process(models, monkeypatch):
    monkeypatch.setattr(reference, "WORKER_TIMEOUT_S", fuzz.REFERENCE_TIMEOUT_S)
    previous = signal.signal(signal.SIGALRM, _alarm)
    outcomes, failures = Counter(), []
    try:
        for index in range(MUTANTS):
            name, data, what = fuzz.mutant(models, SEED, index)
            signal.setitimer(signal.ITIMER_REAL, MUTANT_TIMEOUT_S)
            try:
                outcome = fuzz.check(data, name, SEED + index)
            except MutantTimeout:
                outcome = fuzz.Outcome("hang", f"over {MUTANT_TIMEOUT_S} s")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            outcomes[outcome.category] += 1
            if outcome.category in fuzz.FAILURES:
                failures.append(f"mutant {index} of {name} ({what}): {outcome.category}: {outcome.detail}")
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert not failures, "\n".join(failures)
    assert outcomes["accepted"] and outcomes["refused"], outcomes     # both paths were exercised


def test_mutants_through_the_cli(models, tmp_path):
    for index in range(CLI_MUTANTS):
        name, data, what = fuzz.mutant(models, SEED, MUTANTS + index)
        path = tmp_path / f"{name}_{index}.tflite"
        path.write_bytes(data)
        for args in (("inspect", path), ("convert", path, "-o", tmp_path / f"out{index}")):
            proc = tinydeploy(*args, timeout=CLI_TIMEOUT_S)
            context = f"{args[0]} on mutant {index} of {name} ({what}): exit {proc.returncode}\n{proc.stderr}"
            assert proc.returncode in CLEAN_EXITS, context          # a negative code is a signal
            assert "Traceback" not in proc.stdout + proc.stderr, context
            if proc.returncode:
                assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1, context


def test_mutation_is_deterministic(models):
    assert fuzz.mutant(models, SEED, 3) == fuzz.mutant(models, SEED, 3)

"""`tinydeploy compare`: baseline and variants built and run on two boards, figures recomputed from the
firmware's own outputs, a recommendation per board; the cost function and the cache on their own."""
from __future__ import annotations

import csv
import json
import os
import re

import numpy as np
import pytest

from helpers import assert_clean_failure, require_module, tinydeploy
from tinydeploy.analysis import compare as compare_mod
from tinydeploy.analysis.plots import pareto_front
from tinydeploy.analysis.recommend import Candidate, CostWeights, costs, recommend
from tinydeploy.core.errors import BadInput
from tinydeploy.platforms import boards

BOARDS = ("mps2-an386", "lm3s6965evb")


# ---- the cost function and the recommendation -------------------------------------------------------------------

def test_weights_parse_keep_defaults_and_refuse_bad_ones_in_one_line():
    assert CostWeights.parse(None) == CostWeights()
    w = CostWeights.parse("latency=2, energy=0")
    assert (w.accuracy, w.latency, w.flash, w.energy) == (1.0, 2.0, CostWeights().flash, 0.0)
    for bad, needle in (("speed=1", "KEY=NUMBER"), ("latency=fast", "not a number"), ("flash=-1", ">= 0"),
                        ("accuracy=0,latency=0,flash=0,energy=0", "every weight is 0"), ("latency", "KEY=NUMBER")):
        with pytest.raises(BadInput, match=needle) as info:
            CostWeights.parse(bad)
        assert "\n" not in str(info.value)


def test_cost_terms_follow_the_documented_formula():
    cands = [Candidate("big", 0.90, 2.0, 20_000, 24.0), Candidate("small", 0.85, 1.0, 10_000, 12.0)]
    table = costs(cands, CostWeights(accuracy=1, latency=1, flash=1, energy=1))
    # accuracy: (a_best - a) / (1 - a_best); the rest: value / largest among the candidates
    assert table["big"]["accuracy"] == 0 and table["small"]["accuracy"] == pytest.approx(0.05 / 0.10)
    assert table["big"]["latency"] == 1 and table["small"]["latency"] == pytest.approx(0.5)
    assert table["small"]["flash"] == pytest.approx(0.5) and table["small"]["energy"] == pytest.approx(0.5)
    assert table["big"]["total"] == pytest.approx(3.0) and table["small"]["total"] == pytest.approx(2.0)


def test_the_weights_decide_and_the_reason_is_one_sentence():
    cands = [Candidate("accurate", 0.95, 4.0, 40_000, None), Candidate("fast", 0.90, 1.0, 10_000, None)]
    by_accuracy = recommend("b", cands, CostWeights(accuracy=1, latency=0, flash=0, energy=0))
    by_speed = recommend("b", cands, CostWeights(accuracy=0.1, latency=1, flash=0, energy=0))
    assert by_accuracy.variant == "accurate" and by_speed.variant == "fast"
    assert by_speed.reason.count(". ") == 0 and by_speed.reason.endswith(".") and "fast" in by_speed.reason
    assert "-5.0 points vs accurate" in by_speed.reason


def test_only_variants_that_fit_and_ran_bit_exact_are_recommended():
    cands = [Candidate("best_but_big", 0.99, 0.1, 999_999, 1.0, fits=False, why_not="does not fit: needs 1 MB"),
             Candidate("wrong", 0.99, 0.1, 1_000, 1.0, verified=False, why_not="mismatch: 3 values differ"),
             Candidate("ok", 0.70, 5.0, 50_000, 9.0)]
    rec = recommend("lm3s6965evb", cands, CostWeights())
    assert rec.variant == "ok" and set(rec.costs) == {"ok"}
    assert rec.excluded == {"best_but_big": "does not fit: needs 1 MB", "wrong": "mismatch: 3 values differ"}
    none = recommend("lm3s6965evb", cands[:2], CostWeights())
    assert none.variant is None and "does not fit" in none.reason and "\n" not in none.reason


def test_ties_go_to_the_more_accurate():
    cands = [Candidate("a", 0.80, 1.0, 100, None), Candidate("b", 0.80, 1.0, 100, None)]
    assert recommend("x", cands, CostWeights()).variant == "a"


def test_pareto_front():
    points = [(1.0, 0.70), (2.0, 0.80), (2.5, 0.75), (3.0, 0.90), (1.0, 0.60)]
    assert pareto_front(points) == [0, 1, 3]


# ---- the variants file, the cache, the boards' power ------------------------------------------------------------

@pytest.mark.parametrize("text,needle", [
    ("variants: [{technique: prune}]", "unknown technique 'prune'"),
    ("variantz: []", "unknown key 'variantz'"),
    ("variants: [{technique: int4, name: Bad-Name}]", "name 'Bad-Name'"),
    ("baseline: {arch: huge}", "unknown architecture 'huge'"),
    ("[1, 2]", "a variants file is a mapping"),
    ("variants: [{technique: baseline}]", "always compared"),
    ("variants: [{technique: qat,", "not valid YAML"),
])
def test_a_bad_variants_file_is_one_line(tmp_path, text, needle):
    path = tmp_path / "v.yaml"
    path.write_text(text)
    with pytest.raises(BadInput) as info:
        compare_mod.load_config(path)
    assert needle in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_the_example_config_is_valid(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text(compare_mod.EXAMPLE_CONFIG)
    cfg = compare_mod.load_config(path)
    assert [v.technique for v in cfg.variants] == ["magnitude_prune", "magnitude_prune", "int4"]
    assert compare_mod._names(list(cfg.variants)) == ["magnitude_prune", "prune_90", "int4"]


def test_cache_entries_are_complete_or_absent_and_counted(tmp_path):
    cache = compare_mod.Cache(tmp_path)
    key = compare_mod.key_of("trained", {"technique": "qat", "epochs": 2}, 42)
    assert key == compare_mod.key_of("trained", {"epochs": 2, "technique": "qat"}, 42)     # order-free
    assert cache.get("trained", key) is None
    with pytest.raises(RuntimeError):
        with cache.make("trained", key) as tmp:
            (tmp / "model.keras").write_text("half")
            raise RuntimeError("training failed")
    assert cache.get("trained", key) is None and not (tmp_path / "trained" / key).exists()    # failures not kept
    with cache.make("trained", key) as tmp:
        (tmp / "model.keras").write_text("weights")
    entry = cache.get("trained", key)
    assert entry is not None and (entry / "model.keras").read_text() == "weights"
    assert cache.stats() == {"trained": {"hits": 1, "made": 1}}


def test_a_model_that_does_not_compile_is_reported_not_raised(tmp_path):
    bogus = tmp_path / "int4.tflite"
    bogus.write_bytes(b"not a flatbuffer")
    variant = compare_mod.Variant("int4", "int4", {}, 1, tflite=bogus)
    built = compare_mod._firmware_job(variant, "mps2-an386", 10, compare_mod.Cache(tmp_path / "c"), "h", "v")
    assert built.status == compare_mod.NOT_BUILDABLE and "TFL3" in built.reason and "\n" not in built.reason


def test_boards_state_their_power_as_an_estimate_with_its_source():
    for name in BOARDS:
        power = boards.get(name).power
        assert power is not None and power.active_mw > 0 and power.source.startswith("estimate:")


def test_compare_refuses_bad_input_in_one_line(tmp_path):
    assert_clean_failure(tinydeploy("compare", "--board", "nope", "-o", tmp_path / "o", cwd=tmp_path), "unknown board")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me")
    assert_clean_failure(tinydeploy("compare", "-o", tmp_path / "busy", cwd=tmp_path), "was not made by tinydeploy")
    assert (tmp_path / "busy" / "mine.txt").exists()


# ---- the real thing ---------------------------------------------------------------------------------------------

# The tests of the real run share one quick_compare: on one xdist worker, so it runs once.
ONE_COMPARE_RUN = pytest.mark.xdist_group("compare")


@pytest.fixture(scope="module")
def quick_compare(tmp_path_factory):
    require_module("tensorflow")
    work = tmp_path_factory.mktemp("compare")
    args = ["compare", "--dataset", "iot-sensors", "--quick", "--jobs", "2", "-o", work / "out",
            "--cache", work / "cache"]
    for b in BOARDS:
        args += ["--board", b]
    sources = (compare_mod.source_hash(), compare_mod.source_hash("ml"))
    proc = tinydeploy(*args, cwd=work, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, proc, sources


def _csv(out):
    with open(out / "compare.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@ONE_COMPARE_RUN
@pytest.mark.tensorflow
@pytest.mark.firmware
def test_quick_compare_writes_every_file(quick_compare):
    work, proc, _ = quick_compare
    out = work / "out"
    for name in ("compare.json", "compare.csv", "table.txt", "compare.png", "pareto.png", "report.html",
                 "config.yaml"):
        assert (out / name).stat().st_size > 0, name
    for png in ("compare.png", "pareto.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / png).stat().st_size > 20_000
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and not re.search(r'(src|href)="(http|file|/)', html)
    assert "estimate" in html and "not cycles" in html
    data = json.loads((out / "compare.json").read_text())
    assert data["schema"] == "tinydeploy.compare" and data["quick"] and data["vectors"] == compare_mod.QUICK_VECTORS
    assert len(compare_mod.load_measurements(out / "compare.json")) == len(data["measurements"])
    assert "recommendation" in proc.stdout and "not cycles" in proc.stdout


@ONE_COMPARE_RUN
@pytest.mark.tensorflow
@pytest.mark.firmware
def test_every_variant_ran_bit_exact_and_accuracy_is_the_firmwares(quick_compare):
    work, _, _ = quick_compare
    out = work / "out"
    data = json.loads((out / "compare.json").read_text())
    expected = ["baseline"] + [t for t in compare_mod.techniques() if t != "baseline"]
    rows = _csv(out)
    assert sorted({r["variant"] for r in rows}) == sorted(expected)
    assert {(r["variant"], r["board"]) for r in rows} == {(v, b) for v in expected for b in BOARDS}
    table = (out / "table.txt").read_text()
    for r in rows:
        assert r["status"] == compare_mod.OK, r
        assert r["mismatches"] == "0" and r["fits"] == "True"
        saved = np.load(out / "outputs" / f"{r['variant']}-{r['board']}.npz")
        outputs, labels = saved["outputs"], saved["labels"]
        assert len(outputs) == len(labels) == int(r["vectors"]) == compare_mod.QUICK_VECTORS
        np.testing.assert_array_equal(outputs, saved["expected"])          # bit-exact with TFLite Micro
        recomputed = float(np.mean(np.argmax(outputs, axis=1) == labels))
        assert float(r["firmware_accuracy"]) == recomputed
        assert f"{100 * recomputed:.2f}%" in table
        assert float(r["instructions_median"]) > 0 and float(r["estimated_ms"]) > 0 and float(r["energy_uj"]) > 0
    for m in data["measurements"]:
        assert m["mismatches"] == {"values": 0, "vectors": 0}
        assert m["instructions"]["note"].startswith("exact instruction count under QEMU -icount")
        assert m["energy"]["note"].startswith("estimate") and m["energy"]["source"].startswith("estimate")
        if m["variant"] == "baseline":
            assert m["compression_ratio"] == 1.0


@ONE_COMPARE_RUN
@pytest.mark.tensorflow
@pytest.mark.firmware
def test_a_recommendation_per_board_that_fits(quick_compare):
    work, _, _ = quick_compare
    data = json.loads((work / "out" / "compare.json").read_text())
    recs = {r["board"]: r for r in data["recommendations"]}
    assert set(recs) == set(BOARDS)
    fits = {(r["variant"], r["board"]): r for r in _csv(work / "out")}
    for board, rec in recs.items():
        assert rec["variant"] is not None and rec["reason"].startswith(rec["variant"]) and "\n" not in rec["reason"]
        row = fits[(rec["variant"], board)]
        assert row["status"] == compare_mod.OK and row["recommended"] == "True"
        assert int(row["flash_without_vectors"]) <= boards.get(board).flash.size
        assert int(row["ram_total"]) <= boards.get(board).ram.size


@ONE_COMPARE_RUN
@pytest.mark.tensorflow
@pytest.mark.firmware
def test_a_second_run_retrains_and_rebuilds_nothing(quick_compare):
    work, _, sources = quick_compare
    if sources != (compare_mod.source_hash(), compare_mod.source_hash("ml")):
        pytest.skip("tinydeploy's sources changed since the first run: the cache is right to rebuild")
    cache = work / "cache"
    models = sorted(cache.glob("trained/*/model.keras")) + sorted(cache.glob("quantized/*/*.tflite"))
    elves = sorted(cache.glob("firmware/*/project/.pio/build/*/firmware.elf"))
    assert models and elves
    before = {p: os.stat(p).st_mtime_ns for p in models + elves}
    result = compare_mod.compare("iot-sensors", BOARDS, work / "again", quick=True, jobs=2, cache=cache)
    made = {kind: figures["made"] for kind, figures in result.cache.items()}
    assert made == {"firmware": 0, "quantized": 0, "trained": 0}, result.cache
    assert result.cache["trained"]["hits"] == len(result.variants)
    assert {p: os.stat(p).st_mtime_ns for p in models + elves} == before
    first = {(r["variant"], r["board"]): r["firmware_accuracy"] for r in _csv(work / "out")}
    again = {(r.variant, r.board): "" if r.accuracy is None else str(r.accuracy) for r in result.rows}
    assert again == first

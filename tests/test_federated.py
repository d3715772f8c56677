"""`tinydeploy federate`: the aggregation math exactly (quantize/dequantize, 4-bit packing, top-k with
error feedback, hierarchical = flat weighted average), the profiles and partitions, every bad input
as one line, and the CI run: 30 devices, 3 gateways, 10 rounds on Flower's simulation engine, the
global int8 model verified in QEMU on two boards and within 3 points of the same model trained centrally."""
from __future__ import annotations

import json
import time
from fractions import Fraction

import numpy as np
import pytest

from helpers import assert_clean_failure, require_module, tinydeploy
from tinydeploy.core.errors import BadInput
from tinydeploy.federated import encoding, hierarchy, mlp, partition, profiles
from tinydeploy.federated.encoding import Encoding

ACCURACY_GAP_POINTS = 3.0


# ---- encoding ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [8, 4])
def test_quantize_round_trips_multiples_of_the_scale_exactly(bits):
    top = encoding.qmax(bits)
    codes = np.arange(-top, top + 1, dtype=np.int8)
    scale = np.float32(0.125)                                   # a power of two: every product is exact
    x = codes.astype(np.float32) * scale
    q, s = encoding.quantize(x, bits)
    assert s == scale and np.array_equal(q, codes)
    assert np.array_equal(encoding.dequantize(q, s), x)


def test_quantize_error_is_at_most_half_a_step_and_stochastic_rounding_picks_a_neighbour():
    x = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    q, s = encoding.quantize(x, 8)
    assert np.max(np.abs(encoding.dequantize(q, s) - x)) <= s / 2 * (1 + 1e-6)
    qs, s2 = encoding.quantize(x, 8, np.random.default_rng(1))
    assert s2 == s
    assert set(np.unique(qs.astype(int) - np.floor(x / s).astype(int))) <= {0, 1}


def test_an_all_zero_tensor_quantizes_to_zeros():
    q, s = encoding.quantize(np.zeros(5, np.float32), 4)
    assert s == 1.0 and not q.any()


def test_four_bit_codes_pack_two_per_byte_and_unpack_exactly():
    codes = np.array([-7, 7, 0, -1, 3, -4, 5], np.int8)       # an odd count
    packed = encoding.pack4(codes)
    assert packed.dtype == np.uint8 and packed.size == 4
    assert np.array_equal(encoding.unpack4(packed, codes.size), codes)


def test_payload_bytes_of_each_encoding():
    update = {"k": np.ones((10, 20), np.float32), "b": np.ones(20, np.float32)}
    size = lambda enc: encoding.payload_bytes(encoding.encode(update, enc)[0])
    assert size(Encoding(32)) == 4 * 220
    assert size(Encoding(8)) == 220 + 2 * 4                        # codes + one float32 scale per tensor
    assert size(Encoding(4)) == 100 + 10 + 2 * 4
    assert size(Encoding(8, 0.1)) == (20 + 2) * (1 + 2) + 2 * 4     # values + uint16 positions, ceil(0.1 n)


def test_topk_keeps_the_largest_entries_and_error_feedback_loses_nothing():
    rng = np.random.default_rng(3)
    enc = Encoding(32, 0.25)
    residual, sent_total, delta_total = None, np.zeros(16, np.float32), np.zeros(16, np.float32)
    for _ in range(5):
        delta = rng.integers(-50, 50, 16).astype(np.float32)          # small integers: every sum is exact
        wire, new_residual = encoding.encode({"w": delta}, enc, residual)
        sent = encoding.decode(wire, {"w": (16,)}, 32)["w"]
        acc = delta + (residual["w"] if residual else 0)
        kept = np.flatnonzero(sent)
        assert len(wire["w.idx"]) == 4 and np.min(np.abs(acc[kept])) >= np.max(np.abs(np.delete(acc, kept)))
        assert np.array_equal(sent + new_residual["w"], acc)            # what is not sent is carried over
        residual = new_residual
        sent_total += sent
        delta_total += delta
    assert np.array_equal(sent_total + residual["w"], delta_total)


def test_bad_encodings_are_one_line():
    with pytest.raises(BadInput, match="--update-bits 16"):
        Encoding(16)
    with pytest.raises(BadInput, match="--topk 1.5"):
        Encoding(8, 1.5)


# ---- hierarchy -----------------------------------------------------------------------------------------------------

def _fractions(rng, shape):
    return np.array([Fraction(int(v), int(d)) for v, d in zip(rng.integers(-99, 99, np.prod(shape)),
                                                             rng.integers(1, 17, np.prod(shape)))],
                    dtype=object).reshape(shape)


def test_hierarchical_weighted_average_equals_the_flat_one_exactly():
    rng = np.random.default_rng(7)
    updates = [{"k": _fractions(rng, (3, 2)), "b": _fractions(rng, (2,))} for _ in range(11)]
    weights = [int(w) for w in rng.integers(1, 500, 11)]
    gateways = [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3]
    fog = [0, 0, 1, 1]
    flat = hierarchy.weighted_average(updates, weights)
    for tiers in ([gateways], [gateways, fog]):
        tree = hierarchy.hierarchical_average(updates, weights, tiers)
        for name in flat:
            assert all(a == b for a, b in zip(tree[name].ravel(), flat[name].ravel()))   # Fractions: exact


def test_a_tier_weights_each_parent_by_its_childrens_samples():
    updates = [{"w": np.array([Fraction(v)])} for v in (1, 2, 10)]
    by_parent, w = hierarchy.tier(updates, [1, 3, 4], [0, 0, 1])
    assert w == {0: 4, 1: 4}
    assert by_parent[0]["w"][0] == Fraction(7, 4) and by_parent[1]["w"][0] == 10


# ---- the learner, profiles, partitions ----------------------------------------------------------------------------

def test_mlp_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    w = {k: v.astype(np.float64) for k, v in mlp.init_weights(5, 3, hidden=(4,), seed=1).items()}
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)
    g = mlp.gradients(w, x, y)
    key, i = "hidden_1/kernel", (2, 1)
    eps = 1e-6
    plus, minus = {k: v.copy() for k, v in w.items()}, {k: v.copy() for k, v in w.items()}
    plus[key][i] += eps
    minus[key][i] -= eps
    numeric = (mlp.evaluate(plus, x, y)[0] - mlp.evaluate(minus, x, y)[0]) / (2 * eps)
    assert g[key][i] == pytest.approx(numeric, rel=1e-3, abs=1e-5)


def test_devices_take_the_profiles_in_turn_and_gateways_in_blocks():
    fleet = profiles.fleet(profiles.choose("m4f-ble,m3-802154"), 7, 2)
    assert [d.board.name for d in fleet[:3]] == ["mps2-an386", "lm3s6965evb", "mps2-an386"]
    assert [d.gateway for d in fleet] == [0, 0, 0, 0, 1, 1, 1]
    assert fleet[0].profile.battery.joules == pytest.approx(230 * 3.0 * 3.6)


def test_dirichlet_partition_covers_every_sample_once_and_skews_labels():
    y = np.repeat(np.arange(4), 500)
    iid_parts = partition.split(y, 10, "iid", 0)
    parts = partition.split(y, 10, "dirichlet:0.1", 0)
    for ps in (iid_parts, parts):
        assert np.array_equal(np.sort(np.concatenate(ps)), np.arange(len(y)))
    top_share = lambda ps: np.mean([np.bincount(y[p], minlength=4).max() / len(p) for p in ps])
    assert top_share(parts) > top_share(iid_parts) + 0.2


def test_bad_partitions_and_fleets_are_one_line():
    for spec in ("dirichlet", "dirichlet:0", "zipf:1"):
        with pytest.raises(BadInput, match="--partition"):
            partition.parse(spec)
    with pytest.raises(BadInput, match="--gateways 5 is more than --devices 4"):
        profiles.fleet(profiles.choose(None), 4, 5)
    with pytest.raises(BadInput, match="unknown profile 'nope'"):
        profiles.choose("nope")


def test_a_profile_with_an_unknown_board_is_one_line(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text("default: [a]\nprofiles:\n  - name: a\n    board: no-such-board\n"
                    "    battery: {mah: 100, volts: 3.0, source: x}\n"
                    "    link: {name: wifi, up_kbps: 1000, down_kbps: 1000, source: x}\n")
    with pytest.raises(BadInput, match="profile 'a' names an unknown board 'no-such-board'"):
        profiles.choose(str(path))
    path.write_text("default: [a]\nprofiles:\n  - name: a\n    board: microbit\n    battery: {mah: 100}\n"
                    "    link: {name: wifi, up_kbps: 1000, down_kbps: 1000, source: x}\n")
    with pytest.raises(BadInput, match=r"fleet.yaml: profiles.0.battery.volts: field required"):
        profiles.choose(str(path))


def test_selection_skips_devices_that_do_not_fit_are_drained_or_too_slow():
    require_module("flwr")
    from tinydeploy.federated.costs import BoardFigures
    from tinydeploy.federated.strategy import Fleet, HierarchicalFedAvg, MIN_BATTERY_SHARE
    devices = profiles.fleet(profiles.choose("m4f-ble,m0-lora,m3-802154"), 6, 2)
    figures = {"mps2-an386": BoardFigures("mps2-an386", 4000.0, 1000, 25_000_000, 12.0, True),
               "microbit": BoardFigures("microbit", 9000.0, 1000, 16_000_000, None, True),
               "lm3s6965evb": BoardFigures("lm3s6965evb", 0.0, 1, 50_000_000, None, False, "too big")}
    fleet = Fleet(devices, figures, {d.index: 100 for d in devices}, nodes={d.index: 100 + d.index for d in devices})
    everyone = HierarchicalFedAvg(fleet, Encoding(8), local_epochs=1)
    assert [d.index for d in everyone.candidates(1300, 5100)] == [0, 1, 3, 4]       # lm3s6965evb: does not fit
    # 1,300 bytes over LoRa at 5.5 kbit/s take 1.9 s, over BLE at 200 kbit/s 0.05 s
    fast = HierarchicalFedAvg(fleet, Encoding(8), local_epochs=1, select="resource", deadline_s=1.0)
    assert [d.index for d in fast.candidates(1300, 0)] == [0, 3]
    fast.battery_j[3] = 0.5 * MIN_BATTERY_SHARE * devices[3].profile.battery.joules
    assert [d.index for d in fast.candidates(1300, 0)] == [0]


# ---- the command line --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["--devices", "2", "--gateways", "3"], "--gateways 3 is more than --devices 2"),
    (["--rounds", "0"], "--rounds 0: run at least one round"),
    (["--profiles", "m4f-ble,zigbee"], "unknown profile 'zigbee'"),
    (["--update-bits", "16"], "--update-bits 16"),
    (["--partition", "dirichlet:-1"], "--partition dirichlet:-1"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    proc = tinydeploy("federate", *args, "-o", tmp_path / "out", timeout=120)
    assert proc.returncode == 2
    assert_clean_failure(proc, needle)


def test_unknown_board_in_a_profiles_file_is_one_line(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text("default: [a]\nprofiles:\n  - name: a\n    board: no-such-board\n"
                    "    battery: {mah: 100, volts: 3.0, source: x}\n"
                    "    link: {name: wifi, up_kbps: 1000, down_kbps: 1000, source: x}\n")
    proc = tinydeploy("federate", "--profiles", path, "-o", tmp_path / "out", timeout=120)
    assert proc.returncode == 2
    assert_clean_failure(proc, "names an unknown board 'no-such-board'")


@pytest.mark.firmware
@pytest.mark.tensorflow
def test_a_model_that_fits_no_device_is_one_line(tmp_path):
    """A model too big for the fleet's only board (lm3s6965evb: 256 KB of flash) stops before training."""
    require_module("tensorflow")
    require_module("flwr")
    proc = tinydeploy("federate", "--devices", "2", "--gateways", "1", "--rounds", "1", "--profiles", "m3-802154",
                      "--hidden", "1024,256", "-o", tmp_path / "out", timeout=300)
    assert proc.returncode == 2
    assert_clean_failure(proc, "fits none of the fleet's boards", "lm3s6965evb")


def _mlp_shapes(features, classes):
    return [w.shape for w in mlp.init_weights(features, classes).values()]


# ---- the CI run ----------------------------------------------------------------------------------------------------

@pytest.mark.firmware
@pytest.mark.tensorflow
def test_federate_quick_ships_verified_firmware_within_3_points_of_central(tmp_path):
    require_module("tensorflow")
    require_module("flwr")
    out = tmp_path / "fed"
    started = time.monotonic()
    proc = tinydeploy("federate", "--dataset", "iot-sensors", "--devices", "30", "--gateways", "3", "--rounds", "10",
                      "--quick", "-o", out, timeout=900)
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "federated.json").read_text())
    assert data["schema"] == "tinydeploy.federated" and data["version"] == 1
    (enc,) = data["encodings"]
    assert enc["bits"] == 8 and [r["round"] for r in enc["rounds"]] == list(range(1, 11))
    assert all(r["selected"] == list(range(30)) for r in enc["rounds"])
    # bytes: 30 devices' 8-bit updates (a byte per weight and a float32 scale per tensor); three gateways
    # forward float32 averages, and the downlink carries the float32 weights
    params = sum(np.prod(s) for s in _mlp_shapes(20, 4))
    for r in enc["rounds"]:
        assert r["bytes"]["device_to_gateway"] == 30 * (params + 4 * 6)
        assert r["bytes"]["gateway_to_cloud"] == r["bytes"]["cloud_to_gateway"] == 3 * 4 * params
        assert r["bytes"]["gateway_to_device"] == 30 * 4 * params
    assert enc["rounds"][-1]["accuracy"] > enc["rounds"][0]["accuracy"]
    boards = {m["board"]: m for m in data["firmware"]}
    assert set(boards) == {"mps2-an386", "lm3s6965evb"}
    for m in boards.values():
        assert m["schema"] == "tinydeploy.measurement" and m["vectors"] == 500
        assert m["mismatches"] == {"values": 0, "vectors": 0}
        assert 0.5 < m["accuracy"] <= 1.0
    # the firmware's accuracy is its own outputs' arg-max; recompute it from the reference on the same vectors
    from tinydeploy.verify import reference
    with np.load(out / "global.testset.npz") as t:
        expected = reference.run((out / "global.tflite").read_bytes(), t["x"][:500])
        recomputed = float(np.mean(np.argmax(expected, axis=1) == t["y"][:500]))
    assert boards["mps2-an386"]["accuracy"] == pytest.approx(recomputed)
    fed, central = data["federated"]["int8_accuracy"], data["central"]["int8_accuracy"]
    same = data["central"]["same_learner"]["int8_accuracy"]
    print(f"federated int8 {100 * fed:.2f}%, central (tinydeploy train) int8 {100 * central:.2f}%, "
          f"central (the clients' learner) int8 {100 * same:.2f}%, wall {wall:.1f} s")
    assert fed >= central - ACCURACY_GAP_POINTS / 100
    assert (out / "federated.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "federated vs the same model trained centrally" in proc.stdout


def test_a_users_folder_is_not_replaced(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n")
    proc = tinydeploy("federate", "--devices", "2", "--gateways", "1", "-o", mine, timeout=120)
    assert proc.returncode == 2
    assert_clean_failure(proc, "was not made by tinydeploy")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me\n"

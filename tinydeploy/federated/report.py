"""The federated run's outputs: terminal tables (rich), ``federated.png`` (accuracy and cumulative
device uplink bytes per round, one line per update encoding) and ``federated.json``.

``federated.json``: ``{"schema": "tinydeploy.federated", "version": 1, "settings", "fleet": [{device,
profile, board, gateway, samples, fits}], "boards": [{board, instructions_per_inference, macs,
instructions_per_mac, clock_hz, active_mw, fits, why_not}] (the probe firmware's figures),
"encodings": [{name, bits, topk, stochastic, final_accuracy, bytes_up, bytes_down, rounds: [{round,
selected, bytes: {link: bytes}, train_loss, accuracy, loss, round_s, device_energy_mj}]}],
"central": {float_accuracy, int8_accuracy, how,
same_learner: {float_accuracy, int8_accuracy, how}}, "federated": {float_accuracy, int8_accuracy, encoding},
"firmware": [tinydeploy.measurement records, one per board, accuracy from the firmware's outputs],
"notes": {...}}``. Bytes are payloads (encoded arrays) without transport framing; times and
energies are estimates (costs.NOTE).
"""
from __future__ import annotations

import dataclasses
import io
import json

from rich.console import Console
from rich.table import Table

from tinydeploy.core.resources import atomic_write
from tinydeploy.federated import costs

SCHEMA = "tinydeploy.federated"
VERSION = 1
BYTES_NOTE = "payload bytes of the encoded arrays on each link (no transport framing); downlink: float32 weights"
ACCURACY_NOTE = ("firmware: arg-max of the firmware's own int8 outputs in QEMU on the baked-in test vectors; "
                 "int8_accuracy: TFLite Micro reference interpreter on the whole test split")


def _up(r) -> int:
    return sum(v for k, v in r.bytes.items() if k.endswith(("_to_gateway", "_to_fog", "_to_cloud"))
               and k.split("_to_")[0] in ("device", "gateway", "fog"))


def _down(r) -> int:
    return sum(v for k, v in r.bytes.items() if k.split("_to_")[0] in ("cloud", "fog", "gateway")
               and k.split("_to_")[1] in ("gateway", "device", "fog"))


def rounds_table(result, enc) -> Table:
    hist = result.histories[enc.tag]
    links = list(hist[0].bytes) if hist else []
    t = Table(title=f"rounds: {enc.name} updates (bytes per link; time and energy are estimates)")
    for col in ("round", "devices", "accuracy", "loss", *links, "round s (est.)", "device mJ (est.)"):
        t.add_column(col, justify="right")
    for r in hist:
        t.add_row(str(r.round), str(len(r.selected)), f"{100 * r.accuracy:.2f}%", f"{r.loss:.4f}",
                  *(f"{r.bytes[k]:,}" for k in links), f"{r.round_s:.3f}",
                  "-" if r.device_energy_mj is None else f"{r.device_energy_mj:.1f}")
    return t


def tradeoff_table(result) -> Table:
    t = Table(title=f"update encodings after {result.settings['rounds']} rounds (float accuracy of the global model "
                    "on the test split; bytes summed over all rounds)")
    for col in ("encoding", "accuracy", "device->gateway bytes", "vs 32-bit", "upper-tier up bytes", "downlink bytes"):
        t.add_column(col, justify="right" if col != "encoding" else "left")
    base = None
    rows = []
    for enc in result.encodings:
        hist = result.histories[enc.tag]
        dev = sum(r.bytes["device_to_gateway"] for r in hist)
        rows.append((enc, dev, sum(_up(r) for r in hist) - dev, sum(_down(r) for r in hist)))
        if enc.bits == 32 and not enc.topk:
            base = dev
    for enc, dev, upper, down in rows:
        t.add_row(enc.name, f"{100 * result.final_float[enc.tag]:.2f}%", f"{dev:,}",
                  f"{dev / base:.3f}x" if base else "-", f"{upper:,}", f"{down:,}")
    return t


def shipped_table(result) -> Table:
    t = Table(title=f"the global model ({result.federated['encoding']} updates) as int8 firmware, verified in QEMU")
    for col in ("board", "ran on", "vectors", "mismatches", "firmware accuracy", "instructions/inference",
                "flash (no vectors)", "RAM"):
        t.add_column(col, justify="right" if col not in ("board", "ran on") else "left")
    for s in result.shipped:
        m = s.measurement
        t.add_row(m.board, m.ran_on, str(m.vectors), str(m.mismatches.values),
                  "-" if m.accuracy is None else f"{100 * m.accuracy:.2f}%",
                  f"{m.instructions.median:,.0f}" if m.instructions else "-",
                  f"{m.flash_without_vectors:,}" if m.flash_without_vectors is not None else "-",
                  f"{m.ram.total:,}" if m.ram.total is not None else "-")
    return t


def accuracy_table(result) -> Table:
    t = Table(title="federated vs the same model trained centrally (test split)")
    for col in ("model", "float", "int8 (TFLite Micro reference)", "int8 firmware (per board)"):
        t.add_column(col, justify="right" if col != "model" else "left")
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}%"
    fw = ", ".join(f"{s.board} {100 * s.measurement.accuracy:.2f}%" for s in result.shipped
                   if s.measurement.accuracy is not None)
    fed, central, same = result.federated, result.central, result.central["same_learner"]
    t.add_row(f"federated ({fed['encoding']} updates)", pct(fed["float_accuracy"]), pct(fed["int8_accuracy"]), fw)
    if central["int8_accuracy"] is not None:
        t.add_row("central: tinydeploy train (Keras)", pct(central["float_accuracy"]), pct(central["int8_accuracy"]), "")
        t.add_row("  federated - central", "", f"{100 * (fed['int8_accuracy'] - central['int8_accuracy']):+.2f} points", "")
    t.add_row("central: the clients' learner and settings", pct(same["float_accuracy"]), pct(same["int8_accuracy"]), "")
    t.add_row("  federated - that", "", f"{100 * (fed['int8_accuracy'] - same['int8_accuracy']):+.2f} points", "")
    return t


def tables(result) -> list[Table]:
    return [rounds_table(result, result.encodings[0]), tradeoff_table(result), accuracy_table(result),
            shipped_table(result)]


def figure_png(result) -> bytes:
    """Accuracy vs round and cumulative device->gateway bytes vs round, one line per encoding."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 4.2), dpi=110)
    acc, cum = fig.subplots(1, 2)
    for enc in result.encodings:
        hist = result.histories[enc.tag]
        rounds = [r.round for r in hist]
        acc.plot(rounds, [100 * r.accuracy for r in hist], marker="o", ms=3, label=enc.name)
        total, ys = 0, []
        for r in hist:
            total += r.bytes["device_to_gateway"]
            ys.append(total)
        cum.plot(rounds, ys, marker="o", ms=3, label=enc.name)
    for value, name, style in ((result.central["float_accuracy"], "central, tinydeploy train", "--"),
                               (result.central["same_learner"]["float_accuracy"], "central, clients' learner", ":")):
        if value is not None:
            acc.axhline(100 * value, color="#555555", ls=style, lw=1, label=f"{name} ({100 * value:.1f}%)")
    acc.set(xlabel="round", ylabel="test accuracy (%)", title="global model accuracy (float)")
    cum.set(xlabel="round", ylabel="bytes", title="cumulative device -> gateway bytes", yscale="log")
    for ax in (acc, cum):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.text(0.01, -0.02, BYTES_NOTE, fontsize=7, color="#444444")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def to_json(result) -> dict:
    encodings = []
    for enc in result.encodings:
        hist = result.histories[enc.tag]
        encodings.append({"name": enc.name, "bits": enc.bits, "topk": enc.topk, "stochastic": enc.stochastic,
                          "final_accuracy": result.final_float[enc.tag],
                          "bytes_up": sum(_up(r) for r in hist), "bytes_down": sum(_down(r) for r in hist),
                          "rounds": [dataclasses.asdict(r) for r in hist]})
    return {
        "schema": SCHEMA, "version": VERSION, "settings": result.settings,
        "fleet": [{"device": d.index, "profile": d.profile.name, "board": d.board.name, "gateway": d.gateway,
                   "samples": result.samples[d.index], "fits": result.figures[d.board.name].fits}
                  for d in result.devices],
        "boards": [{**dataclasses.asdict(f), "instructions_per_mac": f.instructions_per_mac if f.fits else None}
                   for f in result.figures.values()],
        "encodings": encodings, "central": result.central, "federated": result.federated,
        "firmware": [s.measurement.to_json() for s in result.shipped],
        "timings_s": result.timings,
        "notes": {"bytes": BYTES_NOTE, "estimates": costs.NOTE, "accuracy": ACCURACY_NOTE},
    }


def write(result) -> None:
    out = result.out
    atomic_write(out / "federated.json", json.dumps(to_json(result), indent=1) + "\n")
    atomic_write(out / "federated.png", figure_png(result))
    text = Console(file=io.StringIO(), width=200, record=True)
    for t in tables(result):
        text.print(t)
    atomic_write(out / "rounds.txt", text.export_text())

"""Per-device estimates of a round's local training and radio cost, from figures measured on each
board's firmware in the emulator (instructions per inference, MACs) and the profile's battery and link.

Training is estimated, not measured: forward + backward ~ TRAIN_FACTOR x the forward pass's MACs
per sample and epoch, at the instructions per MAC the board's int8 inference firmware took (exact
counts under QEMU -icount), 1 instruction per cycle at the board's clock. Radio time is the
payload bytes over the link's throughput; energies are the board's active power and the radio's
tx/rx power times those times (null where the YAML gives no power figure).
"""
from __future__ import annotations

from dataclasses import dataclass

from tinydeploy.federated.profiles import Device

SELECT = ("all", "resource")        # device selection: every device that holds the model, or also by battery and time
TRAIN_FACTOR = 3                   # forward + backward ~ 3 x forward
BITS_PER_BYTE = 8
NOTE = (f"estimate: local training = {TRAIN_FACTOR} x forward MACs per sample and epoch at the board's measured "
        "instructions per MAC (int8 inference firmware under QEMU -icount), 1 instruction per cycle at its clock; "
        "radio = payload bytes / link throughput; energy = active power x time (board YAML, profile link)")


@dataclass(frozen=True)
class BoardFigures:
    """What the probe firmware measured on one board (for the time its clock gives)."""
    board: str
    instructions_per_inference: float
    macs: int
    clock_hz: int
    active_mw: float | None
    fits: bool
    why_not: str | None = None

    @property
    def instructions_per_mac(self) -> float:
        return self.instructions_per_inference / self.macs


@dataclass(frozen=True)
class DeviceRound:
    """One device's estimated cost for one round."""
    train_s: float
    up_s: float
    down_s: float
    energy_mj: float | None

    @property
    def total_s(self) -> float:
        return self.train_s + self.up_s + self.down_s


def device_round(device: Device, figures: BoardFigures, samples: int, epochs: int, bytes_up: int,
                 bytes_down: int) -> DeviceRound:
    """A device's training, upload and download time and its energy in one round (estimates)."""
    link = device.profile.link
    instructions = TRAIN_FACTOR * figures.macs * figures.instructions_per_mac * samples * epochs
    train_s = instructions / figures.clock_hz
    up_s = bytes_up * BITS_PER_BYTE / (link.up_kbps * 1000)
    down_s = bytes_down * BITS_PER_BYTE / (link.down_kbps * 1000)
    parts = [(figures.active_mw, train_s), (link.tx_mw, up_s), (link.rx_mw, down_s)]
    energy = None if any(mw is None for mw, _ in parts) else sum(mw * s for mw, s in parts)   # mW x s = mJ
    return DeviceRound(train_s, up_s, down_s, energy)

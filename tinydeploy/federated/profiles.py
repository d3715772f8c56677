"""Device profiles: which board a simulated device is, its battery and its radio link.

The profiles live in a small YAML file (``resources/federated/profiles.yaml``, or a user's),
validated like the board files: an unknown key, a wrong type or a board the catalog does not
know is one BadInput line naming the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from tinydeploy.core.errors import BadInput
from tinydeploy.core.resources import RESOURCES
from tinydeploy.platforms import boards

PROFILES = RESOURCES / "federated" / "profiles.yaml"
JOULES_PER_MWH = 3.6

Float = Annotated[float, Strict()] | Annotated[int, Strict()]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Battery(_Schema):
    """The device's battery."""
    mah: Float = Field(..., gt=0, description="capacity (mAh)")
    volts: Float = Field(..., gt=0, description="nominal voltage (V)")
    source: str = Field(..., min_length=1, description="where the figures come from")

    @property
    def joules(self) -> float:
        return float(self.mah) * float(self.volts) * JOULES_PER_MWH


class Link(_Schema):
    """The device's radio link to its gateway."""
    name: str = Field(..., min_length=1, description="what the link is (BLE, 802.15.4, LoRa, ...)")
    up_kbps: Float = Field(..., gt=0, description="device-to-gateway throughput (kbit/s)")
    down_kbps: Float = Field(..., gt=0, description="gateway-to-device throughput (kbit/s)")
    tx_mw: Optional[Float] = Field(None, gt=0, description="radio power while sending (mW); null: not estimated")
    rx_mw: Optional[Float] = Field(None, gt=0, description="radio power while receiving (mW); null: not estimated")
    source: str = Field(..., min_length=1, description="where the figures come from")


class Profile(_Schema):
    """One kind of device: a board of the catalog with a battery and a link."""
    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="the profile's name, as --profiles takes it")
    board: str = Field(..., description="a board of the catalog (`tinydeploy boards`)")
    battery: Battery
    link: Link


class ProfileFile(_Schema):
    """A profiles file: the profiles and the default fleet mix."""
    profiles: list[Profile] = Field(..., min_length=1)
    default: list[str] = Field(..., min_length=1, description="profile names the default fleet takes in turn")


@dataclass(frozen=True)
class Device:
    """One simulated device: its index, profile, board and gateway."""
    index: int
    profile: Profile
    board: boards.Board
    gateway: int


def _one_line(path: Path, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the file"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{path}: {where}: {msg[0].lower() + msg[1:]}"


def load(path: Path = PROFILES) -> ProfileFile:
    """Read and validate a profiles file; every profile's board must be in the catalog."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the profiles file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    try:
        parsed = ProfileFile.model_validate(raw)
    except ValidationError as exc:
        raise BadInput(_one_line(path, exc)) from None
    known = boards.catalog()
    for p in parsed.profiles:
        if p.board not in known and not any(p.board in b.aliases for b in known.values()):
            raise BadInput(f"{path}: profile '{p.name}' names an unknown board '{p.board}'; known boards: "
                           f"{', '.join(known)} (see `tinydeploy boards`)")
    names = {p.name for p in parsed.profiles}
    for name in parsed.default:
        if name not in names:
            raise BadInput(f"{path}: default names an unknown profile '{name}' (profiles: {', '.join(sorted(names))})")
    return parsed


def choose(spec: str | None) -> list[Profile]:
    """The fleet's profiles: ``spec`` is None (the shipped default mix), comma-separated names of
    shipped profiles, or the path of a profiles YAML (its default mix)."""
    if spec and (spec.endswith((".yaml", ".yml")) or Path(spec).exists()):
        parsed = load(Path(spec))
        names = parsed.default
    else:
        parsed = load()
        names = [n.strip() for n in spec.split(",") if n.strip()] if spec else parsed.default
    by_name = {p.name: p for p in parsed.profiles}
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        raise BadInput(f"--profiles: unknown profile '{unknown[0] if unknown else spec}'; shipped profiles: "
                       f"{', '.join(by_name)} (or give a profiles YAML file)")
    return [by_name[n] for n in names]


def fleet(profiles: list[Profile], devices: int, gateways: int) -> list[Device]:
    """``devices`` devices taking the profiles in turn, split into ``gateways`` contiguous groups."""
    if devices < 1:
        raise BadInput(f"--devices {devices}: a fleet needs at least one device")
    if gateways < 1:
        raise BadInput(f"--gateways {gateways}: give at least one gateway")
    if gateways > devices:
        raise BadInput(f"--gateways {gateways} is more than --devices {devices}: every gateway needs at least one device")
    resolved = {p.name: boards.get(p.board) for p in profiles}
    return [Device(i, profiles[i % len(profiles)], resolved[profiles[i % len(profiles)].name], i * gateways // devices)
            for i in range(devices)]

"""The board catalog: one YAML file per board in boards/, no code per board."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import TinyDeployError
from .paths import BOARDS

_UART_DEFINES = {"cmsdk": "TD_UART_CMSDK", "pl011": "TD_UART_PL011"}
_EXIT_DEFINES = {"semihosting": "TD_EXIT_SEMIHOSTING", "spin": "TD_EXIT_SPIN"}
_TOOLCHAINS = {"arm": "arm-none-eabi-"}


@dataclass(frozen=True)
class Memory:
    origin: int
    size: int


@dataclass(frozen=True)
class Board:
    """A board's facts as the YAML states them."""
    name: str
    description: str
    core: str
    arch: str
    clock_hz: int
    flash: Memory
    ram: Memory
    uart: dict
    exit: str
    fpu: str | None = None
    dsp: bool = False
    emulator: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def toolchain_prefix(self) -> str:
        return _TOOLCHAINS[self.arch]

    @property
    def cpu_flags(self) -> list[str]:
        flags = [f"-mcpu={self.core}", "-mthumb"]
        if self.fpu:
            flags += ["-mfloat-abi=hard", f"-mfpu={self.fpu}"]
        return flags

    @property
    def defines(self) -> list[str]:
        """Preprocessor flags that select this board's drivers in firmware/bsp."""
        return ["-DTD_CORE_CORTEXM", f"-D{_UART_DEFINES[self.uart['kind']]}",
                f"-DTD_UART_BASE={int(self.uart['base']):#x}u", f"-D{_EXIT_DEFINES[self.exit]}",
                f"-DTD_BOARD_CLOCK_HZ={self.clock_hz}u"]

    @property
    def qemu(self) -> dict | None:
        return (self.emulator or {}).get("qemu")


def _parse(path: Path) -> Board:
    try:
        raw = yaml.safe_load(path.read_text())
        mem = {k: Memory(int(raw[k]["origin"]), int(raw[k]["size"])) for k in ("flash", "ram")}
        board = Board(name=str(raw["name"]), description=str(raw.get("description", raw["name"])),
                      core=str(raw["core"]), arch=str(raw["arch"]), clock_hz=int(raw["clock_hz"]),
                      uart=dict(raw["uart"]), exit=str(raw.get("exit", "spin")), fpu=raw.get("fpu"),
                      dsp=bool(raw.get("dsp", False)), emulator=dict(raw.get("emulator") or {}), path=path, **mem)
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise TinyDeployError(f"{path}: not a valid board description ({type(exc).__name__}: {exc}); "
                              "compare it with boards/mps2-an386.yaml")
    if board.arch not in _TOOLCHAINS or board.uart.get("kind") not in _UART_DEFINES or board.exit not in _EXIT_DEFINES:
        raise TinyDeployError(f"{path}: arch '{board.arch}', uart kind '{board.uart.get('kind')}' or exit "
                              f"'{board.exit}' is not one tinydeploy has drivers for "
                              f"(arch: {sorted(_TOOLCHAINS)}, uart: {sorted(_UART_DEFINES)}, exit: {sorted(_EXIT_DEFINES)})")
    return board


def catalog(directory: Path = BOARDS) -> dict[str, Board]:
    """All boards, by name."""
    boards = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        board = _parse(path)
        boards[board.name] = board
    return boards


def get(name: str) -> Board:
    """The board called ``name``, or a TinyDeployError listing the known ones."""
    boards = catalog()
    if name not in boards:
        raise TinyDeployError(f"unknown board '{name}'; known boards: {', '.join(boards)} (see `tinydeploy boards`)")
    return boards[name]

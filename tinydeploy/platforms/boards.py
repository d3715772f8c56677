"""The board catalog: one YAML file per board in boards/, no code per board.

Two kinds of board:

- emulated: tinydeploy's own start-up code, drivers and linker script, built
  with the system cross compiler through the offline PlatformIO platform in
  firmware/platform, and run in QEMU (`emulator.qemu`);
- real: a project for one of PlatformIO's standard platforms (`platformio`),
  built with the user's own PlatformIO installation and flashed over USB; its
  `proxy` names an emulated board with the same core, which `run` uses for an
  instruction count when no serial port is given.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tinydeploy.core.errors import TinyDeployError
from tinydeploy.core.resources import BOARDS

_UART_DEFINES = {"cmsdk": "TD_UART_CMSDK", "pl011": "TD_UART_PL011", "nrf": "TD_UART_NRF",
                 "stm32": "TD_UART_STM32", "ns16550": "TD_UART_NS16550"}
_EXIT_DEFINES = {"semihosting": "TD_EXIT_SEMIHOSTING", "sifive_test": "TD_EXIT_SIFIVE_TEST", "spin": "TD_EXIT_SPIN"}
_TOOLCHAINS = {"arm": "arm-none-eabi-", "riscv": "riscv64-unknown-elf-"}
_CORE_DEFINES = {"arm": "TD_CORE_CORTEXM", "riscv": "TD_CORE_RISCV"}
_APT_PACKAGES = {"arm": "gcc-arm-none-eabi", "riscv": "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf"}


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
    uart: dict = field(default_factory=dict)
    exit: dict = field(default_factory=dict)
    fpu: str | None = None
    dsp: bool = False
    abi: str | None = None
    stack: int = 4096
    emulator: dict = field(default_factory=dict)
    platformio: dict = field(default_factory=dict)
    proxy: str | None = None
    aliases: tuple[str, ...] = ()
    path: Path | None = None

    @property
    def emulated(self) -> bool:
        return bool(self.qemu)

    @property
    def toolchain_prefix(self) -> str:
        return _TOOLCHAINS[self.arch]

    @property
    def cpu_flags(self) -> list[str]:
        """Compiler flags for the core."""
        if self.arch == "riscv":      # picolibc's specs also give the compiler its headers
            return [f"-march={self.core}_zicsr", f"-mabi={self.abi or 'ilp32'}", "--specs=picolibc.specs"]
        flags = [f"-mcpu={self.core}", "-mthumb"]
        if self.fpu:
            flags += ["-mfloat-abi=hard", f"-mfpu={self.fpu}"]
        return flags

    @property
    def link_flags(self) -> list[str]:
        """Linker flags: the core (RISC-V links against the base ISA's multilib) and the C library."""
        if self.arch == "riscv":
            return [f"-march={self.core}", f"-mabi={self.abi or 'ilp32'}", "--specs=picolibc.specs"]
        return self.cpu_flags + ["--specs=nano.specs", "--specs=nosys.specs"]

    @property
    def defines(self) -> list[str]:
        """Preprocessor flags that select this board's drivers in firmware/bsp."""
        flags = [f"-D{_CORE_DEFINES[self.arch]}", f"-D{_UART_DEFINES[self.uart['kind']]}",
                 f"-DTD_UART_BASE={int(self.uart['base']):#x}u", f"-D{_EXIT_DEFINES[self.exit['kind']]}",
                 f"-DTD_BOARD_CLOCK_HZ={self.clock_hz}u"]
        if "base" in self.exit:
            flags.append(f"-DTD_EXIT_BASE={int(self.exit['base']):#x}u")
        return flags

    @property
    def qemu(self) -> dict | None:
        return (self.emulator or {}).get("qemu")

    def missing_tools(self) -> list[str]:
        """What this machine lacks to build and run this (emulated) board, as install hints."""
        missing = []
        if shutil.which(self.toolchain_prefix + "gcc") is None:
            missing.append(f"{self.toolchain_prefix}gcc (apt-get install {_APT_PACKAGES[self.arch]})")
        binary = (self.qemu or {}).get("binary", "qemu-system-arm")
        if shutil.which(binary) is None:
            package = "qemu-system-arm" if binary.endswith("arm") else "qemu-system-misc"
            missing.append(f"{binary} (apt-get install {package})")
        return missing


def _memory(raw: dict, key: str) -> Memory:
    return Memory(int(raw[key].get("origin", 0)), int(raw[key]["size"]))


def _parse(path: Path) -> Board:
    try:
        raw = yaml.safe_load(path.read_text())
        exit_ = raw.get("exit", "spin")
        exit_ = dict(exit_) if isinstance(exit_, dict) else {"kind": str(exit_)}
        board = Board(name=str(raw["name"]), description=str(raw.get("description", raw["name"])),
                      core=str(raw["core"]), arch=str(raw["arch"]), clock_hz=int(raw["clock_hz"]),
                      flash=_memory(raw, "flash"), ram=_memory(raw, "ram"), uart=dict(raw.get("uart") or {}),
                      exit=exit_, fpu=raw.get("fpu"), dsp=bool(raw.get("dsp", False)), abi=raw.get("abi"),
                      stack=int(raw.get("stack", 4096)), emulator=dict(raw.get("emulator") or {}),
                      platformio=dict(raw.get("platformio") or {}), proxy=raw.get("proxy"),
                      aliases=tuple(raw.get("aliases") or ()), path=path)
    except (KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:
        raise TinyDeployError(f"{path}: not a valid board description ({type(exc).__name__}: {exc}); "
                              "compare it with boards/mps2-an386.yaml")
    if board.emulated:
        if (board.arch not in _TOOLCHAINS or board.uart.get("kind") not in _UART_DEFINES
                or board.exit["kind"] not in _EXIT_DEFINES):
            raise TinyDeployError(
                f"{path}: arch '{board.arch}', uart kind '{board.uart.get('kind')}' or exit '{board.exit['kind']}' "
                f"is not one tinydeploy has drivers for (arch: {sorted(_TOOLCHAINS)}, uart: {sorted(_UART_DEFINES)}, "
                f"exit: {sorted(_EXIT_DEFINES)})")
    elif not {"platform", "board", "framework"} <= set(board.platformio):
        raise TinyDeployError(f"{path}: a board needs either emulator.qemu or platformio "
                              "{platform, board, framework}; compare it with boards/esp32dev.yaml")
    return board


def catalog(directory: Path = BOARDS) -> dict[str, Board]:
    """All boards, by name."""
    boards = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        board = _parse(path)
        boards[board.name] = board
    return boards


def get(name: str) -> Board:
    """The board called ``name`` (or with ``name`` as an alias), or a TinyDeployError listing the known ones."""
    boards = catalog()
    if name in boards:
        return boards[name]
    for board in boards.values():
        if name in board.aliases:
            return board
    raise TinyDeployError(f"unknown board '{name}'; known boards: {', '.join(boards)} (see `tinydeploy boards`)")


def emulation_target(board: Board) -> Board:
    """The emulated board that runs code for ``board``: itself, or its proxy with the same core."""
    if board.emulated:
        return board
    if not board.proxy:
        raise TinyDeployError(f"{board.name} ({board.core}) has no emulated proxy on this machine; run it on the board: "
                              f"`tinydeploy flash --board {board.name}`, then `tinydeploy run --board {board.name} "
                              "--port /dev/ttyUSB0`")
    return get(board.proxy)


def status_here(board: Board) -> str:
    """What this machine can do with ``board``, in a few words."""
    if board.emulated:
        missing = board.missing_tools()
        return "build + run" if not missing else "missing " + ", ".join(m.split(" ")[0] for m in missing)
    from tinydeploy.platforms.platformio import platform_installed          # build imports this module
    if platform_installed(board):
        return "build + flash"
    proxy = f"; run via {board.proxy}" if board.proxy else ""
    return f"render only (no '{board.platformio['platform']}' platform){proxy}"

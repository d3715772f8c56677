"""The one interface every kind of board is driven through (after microTVM's Project API).

A ``Platform`` wraps one board and knows how to turn a compiled model into a project for
it, build and flash that project, measure the image, and open a transport that yields the
firmware's protocol lines; it also says what this machine can do with the board and which
emulated board runs its code. ``registry.platform_for(board)`` picks the implementation:

- ``EmulatedPlatform`` (platforms/emulated.py): tinydeploy's own start-up code and linker
  script, built offline through the local PlatformIO platform, run in QEMU (or Renode);
- ``ArduinoPlatform`` (platforms/arduino.py): an Arduino project for one of PlatformIO's
  standard platforms, built with the user's PlatformIO, flashed over USB, read over serial.

Nothing outside the implementations asks which kind a board is.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from tinydeploy.core.errors import BadInput
from tinydeploy.platforms.boards import Board
from tinydeploy.platforms.targets import SerialTarget, Target

if TYPE_CHECKING:
    from tinydeploy.compiler.codegen import CompiledModel
    from tinydeploy.verify.vectors import Vectors


@dataclass
class SizeReport:
    """Bytes used by the firmware image, by region."""
    flash: int
    ram: int
    sections: dict[str, int]

    def as_dict(self) -> dict:
        return {"flash": self.flash, "ram": self.ram, "sections": self.sections}


class Platform(ABC):
    """How tinydeploy renders, builds, flashes, measures and talks to one board."""
    kind: ClassVar[str]                          # the catalogue's "kind" column
    emulators: ClassVar[tuple[str, ...]] = ()    # emulators that run the board itself (`run --emulator`)

    def __init__(self, board: Board):
        self.board = board

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.board.name})"

    @classmethod
    @abstractmethod
    def handles(cls, board: Board) -> bool:
        """True when this implementation drives ``board`` (the first in registry.PLATFORMS that does, wins)."""

    # ---- the project's life -------------------------------------------------------------------------------

    @abstractmethod
    def render(self, model: CompiledModel, vectors: Vectors, out_dir: Path, profile: bool = False) -> Path:
        """Write the complete project for ``model`` with ``vectors`` baked in into ``out_dir``; returns it.
        ``profile`` times every operator (TD LAYERS lines)."""

    @abstractmethod
    def build(self, project: Path) -> Path:
        """Build the rendered project; returns the ELF. CannotBuildHere when this machine cannot."""

    @abstractmethod
    def flash(self, project: Path, port: str | None = None) -> None:
        """Put the built image on the board (``port``: the upload port, or let the tools find it)."""

    def check_flashable(self) -> None:
        """Raise before any work when ``flash`` cannot apply to this board."""

    @abstractmethod
    def size(self, project: Path, elf: Path) -> SizeReport:
        """Flash and RAM the built image uses."""

    def open_transport(self, elf: Path | None, port: str | None = None, baudrate: int = 115200,
                       emulator: str = "qemu") -> Target:
        """Where the firmware's protocol lines come from: the board on ``port`` (flashed earlier), or,
        without a port, the image ``elf`` started in ``emulator``."""
        if port:
            return SerialTarget(port, baudrate)
        if emulator not in self.emulators:
            raise BadInput(f"board '{self.board.name}' has no emulator{'' if not self.emulators else ' ' + emulator}; "
                           "run it on the board with --port")
        return self.start_emulator(elf, emulator)

    def start_emulator(self, elf: Path, emulator: str) -> Target:
        """Start ``elf`` in ``emulator`` (one of ``emulators``)."""
        raise NotImplementedError

    # ---- what this machine can do with it -----------------------------------------------------------------

    @abstractmethod
    def missing_tools(self) -> list[str]:
        """What this machine lacks to build (and run) for the board, each with how to install it."""

    @abstractmethod
    def can_build_here(self) -> bool:
        """True when `build` can work on this machine."""

    @abstractmethod
    def status_here(self) -> str:
        """What this machine can do with the board, in a few words (the catalogue's last column)."""

    @abstractmethod
    def emulation_target(self) -> Board:
        """The emulated board that runs code for this board: itself, or a proxy with the same core."""

    @abstractmethod
    def runs_on(self) -> str:
        """Where its code runs, for the catalogue: "qemu <machine>", "proxy <board>", "none"."""

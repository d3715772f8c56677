"""Which platform drives a board: the first implementation in PLATFORMS that handles it."""
from __future__ import annotations

from tinydeploy.core.errors import BadInput
from tinydeploy.platforms.arduino import ArduinoPlatform
from tinydeploy.platforms.base import Platform
from tinydeploy.platforms.boards import Board
from tinydeploy.platforms.emulated import EmulatedPlatform

PLATFORMS: tuple[type[Platform], ...] = (EmulatedPlatform, ArduinoPlatform)


def platform_for(board: Board) -> Platform:
    """The platform implementation for ``board``."""
    for cls in PLATFORMS:
        if cls.handles(board):
            return cls(board)
    raise BadInput(f"{board.path or board.name}: no platform can build this board "  # the schema makes this unreachable
                   "(it needs emulator.qemu or platformio); see `tinydeploy boards --schema`")

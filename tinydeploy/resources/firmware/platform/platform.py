"""PlatformIO development platform for tinydeploy's emulated boards.

Boards come from the project's boards_dir (rendered from boards/*.yaml); the
toolchain is whatever cross GCC the board names, found on PATH.
"""
from platformio.public import PlatformBase


class TinydeployemulatedPlatform(PlatformBase):
    """No packages to install: everything comes from the system."""

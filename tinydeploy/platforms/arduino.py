"""Real boards: an Arduino project for one of PlatformIO's standard platforms (espressif32,
ststm32, ...), built with the user's own PlatformIO installation once its platform is
there, flashed over USB and read over serial. Without a board, its code runs on its
`proxy`: an emulated board with the same core."""
from __future__ import annotations

from pathlib import Path

from tinydeploy.core.errors import BadInput, CannotBuildHere
from tinydeploy.core.resources import FIRMWARE
from tinydeploy.platforms import boards, platformio, render
from tinydeploy.platforms.base import Platform, SizeReport
from tinydeploy.platforms.boards import Board
from tinydeploy.runtimes import tflm


class ArduinoPlatform(Platform):
    """A board PlatformIO's own platform builds (its YAML has platformio {platform, board, framework})."""
    kind = "real"

    @classmethod
    def handles(cls, board: Board) -> bool:
        return board.platformio is not None

    @property
    def pio_platform(self) -> str:
        return self.board.platformio.platform

    # ---- the project's life -------------------------------------------------------------------------------

    def render(self, model, vectors, out_dir: Path, profile: bool = False) -> Path:
        def board_files(env, ctx: dict, project: Path) -> list[Path]:
            on_tflm = model.runtime == "tflm"
            ctx = dict(ctx, lib_deps=list(tflm.LIBRARIES) if on_tflm else [],
                       build_flags=tflm.build_flags(model.tree) if on_tflm else [])
            (project / "platformio.ini").write_text(env.get_template("arduino/platformio.ini.j2").render(ctx))
            (project / "src" / "main.cpp").write_text(env.get_template("arduino/main.cpp.j2").render(ctx))
            return [FIRMWARE / "bsp" / "td_board.h"]         # the glue in main.cpp implements it
        return render.render_project(model, self.board, vectors, out_dir, profile, board_files)

    def build(self, project: Path) -> Path:
        if not self.can_build_here():
            board = self.board
            toolchain = board.platformio.toolchain or "its toolchain"
            raise CannotBuildHere(
                f"{board.name}: PlatformIO's '{self.pio_platform}' platform ({toolchain}, {board.core}) is not "
                f"installed in {platformio.user_platformio_core()} and cannot be downloaded from this machine; the "
                f"project is ready in {project}: on a machine with internet run `pio run -d {project} -t upload`")
        return platformio.run_build(project, platformio.user_platformio_env(), self.board.name)

    def flash(self, project: Path, port: str | None = None) -> None:
        platformio.upload_project(project, port)

    def size(self, project: Path, elf: Path) -> SizeReport:
        return platformio.summary_size(project)

    # ---- what this machine can do with it -----------------------------------------------------------------

    def missing_tools(self) -> list[str]:
        if self.can_build_here():
            return []
        return [f"PlatformIO's '{self.pio_platform}' platform (pio pkg install -g -p {self.pio_platform}, "
                "on a machine with internet)"]

    def can_build_here(self) -> bool:
        return platformio.platform_installed(self.pio_platform)

    def status_here(self) -> str:
        if self.can_build_here():
            return "build + flash"
        proxy = f"; run via {self.board.proxy}" if self.board.proxy else ""
        return f"render only (no '{self.pio_platform}' platform){proxy}"

    def emulation_target(self) -> Board:
        board = self.board
        if not board.proxy:
            raise BadInput(f"{board.name} ({board.core}) has no emulated proxy on this machine; run it on the board: "
                           f"`tinydeploy flash --board {board.name}`, then `tinydeploy run --board {board.name} "
                           "--port /dev/ttyUSB0`")
        return boards.get(board.proxy, board.path.parent if board.path else boards.BOARDS)   # from its own catalogue

    def runs_on(self) -> str:
        return f"proxy {self.board.proxy}" if self.board.proxy else "none"
